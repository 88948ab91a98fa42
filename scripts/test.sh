#!/usr/bin/env bash
# The README's test command: builds and runs every test of the workspace (unit tests, the
# adapter contract suites on embedded adapters, real Redis and real Postgres, and the
# end-to-end tests, including the multi-process chaos test).
#
# Servers: uses Redis on 127.0.0.1:6379 and Postgres on 127.0.0.1:5432 when they answer (or
# the URLs in TGE_SWARM_TEST_REDIS_URL / TGE_SWARM_TEST_DATABASE_URL); otherwise starts
# throwaway ones (installing redis-server / postgresql with apt-get if missing) and stops them
# at exit (TGE_SWARM_TEST_THROWAWAY=1 forces throwaway servers even when local ones answer).
# The chaos test also needs the redis-server and Postgres binaries: it starts private
# servers of its own so it can restart them. The browser test needs Chromium and chromedriver
# (installed with apt-get when missing).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$(pwd)"

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 || { echo "scripts/test.sh: cargo not found; install Rust (https://rustup.rs)" >&2; exit 1; }

# shellcheck source=scripts/servers.sh
. "$ROOT/scripts/servers.sh"

# The browser test of the web view drives headless Chromium through chromedriver.
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
    apt_install chromium chromium-driver
fi

echo "==> redis: $TGE_SWARM_TEST_REDIS_URL"
echo "==> postgres: $TGE_SWARM_TEST_DATABASE_URL"

# Two test threads per binary: the end-to-end tests each run a whole swarm.
export RUST_TEST_THREADS="${RUST_TEST_THREADS:-2}"

echo "==> cargo test --workspace --locked"
cd "$ROOT"
cargo test --workspace --locked
