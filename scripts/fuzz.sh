#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets) for a while with cargo fuzz (libFuzzer, nightly
# Rust), starting from the corpus kept in fuzz/corpus/<target>. New inputs go to a scratch
# directory, so the kept corpus changes only by hand. Any crash fails the run and leaves its
# input in fuzz/artifacts/<target>/. Run by .ci/run.
#
#   scripts/fuzz.sh [--seconds N] [TARGET ...]      (default: 20 s each, every target)
#   scripts/fuzz.sh --build-only                    (install cargo-fuzz if needed, build, stop)
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_EACH=20
TARGETS=()
BUILD_ONLY=0
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) SECONDS_EACH="$2"; shift 2 ;;
        --build-only) BUILD_ONLY=1; shift ;;
        -*) echo "fuzz: unknown option $1" >&2; exit 2 ;;
        *) TARGETS+=("$1"); shift ;;
    esac
done

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi
rustup run nightly rustc --version > /dev/null 2>&1 \
    || { echo "fuzz: cargo fuzz needs the nightly toolchain (rustup toolchain install nightly)" >&2; exit 1; }
if ! cargo fuzz --version > /dev/null 2>&1; then
    echo "==> cargo install cargo-fuzz"
    cargo install --locked cargo-fuzz
fi
if [ ${#TARGETS[@]} -eq 0 ]; then
    mapfile -t TARGETS < <(cargo +nightly fuzz list)
fi

echo "==> cargo +nightly fuzz build"
cargo +nightly fuzz build
if [ "$BUILD_ONLY" = 1 ]; then
    echo "fuzz: built"
    exit 0
fi
SCRATCH="$(mktemp -d)"
trap 'rm -rf "$SCRATCH"' EXIT
for target in "${TARGETS[@]}"; do
    mkdir -p "$SCRATCH/$target"
    echo "==> fuzz $target for ${SECONDS_EACH}s"
    if ! cargo +nightly fuzz run "$target" "$SCRATCH/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
        > "$SCRATCH/$target.log" 2>&1; then
        grep -E -A6 "panicked at|^Failing input|Output of .std::fmt::Debug" "$SCRATCH/$target.log" >&2 || true
        tail -n 8 "$SCRATCH/$target.log" >&2
        echo "fuzz: $target failed; its input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E 'stat::number_of_executed_units|stat::peak_rss_mb' "$SCRATCH/$target.log" || true
done
echo "fuzz: ok"
