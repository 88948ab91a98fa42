#!/usr/bin/env bash
# The README's test command: builds and runs every test of the workspace (unit tests, the
# adapter contract suites, and the end-to-end tests over a local HTTP server).
#
# The embedded swarm needs no servers; the Redis, Postgres and Consul adapters (and the
# server provisioning they need) arrive with the distributed-swarm work.
set -euo pipefail

cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 || { echo "scripts/test.sh: cargo not found; install Rust (https://rustup.rs)" >&2; exit 1; }

# Two test threads per binary: the end-to-end tests each run a whole swarm.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-2}"

echo "==> cargo test --workspace --locked"
cargo test --workspace --locked
