#!/usr/bin/env bash
# Benchmarks: builds the release bench harness and the release `tge-swarm`, provides Redis and
# Postgres (as scripts/test.sh does: the local servers when they answer, throwaway ones
# otherwise), and runs every figure. Writes target/bench/report.json and prints a table;
# every figure sits beside a baseline measured in the same run. Loopback only.
#   scripts/bench.sh [--only FIGURE,...] [--docs N] [--pipeline-docs N] [--probes N]
#                    [--faults N] [--footprint-docs N] [--retention-docs N] [--events-docs N]
#                    [--seconds N] [--out FILE]
#   The soak (an hour; only when named: --only soak [--soak-minutes N] [--soak-sources N]
#   [--soak-rate DOCS_PER_S] [--soak-pin]) also draws target/bench/soak.png with python3-matplotlib.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$(pwd)"

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
command -v cargo >/dev/null 2>&1 || { echo "scripts/bench.sh: cargo not found; install Rust (https://rustup.rs)" >&2; exit 1; }

# shellcheck source=scripts/servers.sh
. "$ROOT/scripts/servers.sh"
command -v redis-benchmark >/dev/null 2>&1 || apt_install redis-tools
case " $* " in
    *" soak "*|*",soak"*|*"soak,"*)
        /usr/bin/python3 -c 'import matplotlib' 2>/dev/null || apt_install python3-matplotlib \
            || echo "==> python3-matplotlib did not install: the soak's samples are kept, its chart is not drawn" ;;
esac

echo "==> redis: $TGE_SWARM_TEST_REDIS_URL"
echo "==> postgres: $TGE_SWARM_TEST_DATABASE_URL"
echo "==> cargo build --release (bench, tge-swarm)"
cargo build --release --locked -p swarm-tests --bin bench -p swarm-queen --bin tge-swarm
target/release/bench "$@"
