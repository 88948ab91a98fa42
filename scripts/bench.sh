#!/usr/bin/env bash
# Benchmarks: builds the release bench harness and runs it. Writes target/bench/report.json
# and prints a table; every figure sits beside a baseline measured in the same run.
#   scripts/bench.sh [--docs N]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p swarm-tests --bin bench
exec target/release/bench "$@"
