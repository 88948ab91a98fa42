#!/usr/bin/env bash
# Builds every image of the Compose stack from nothing but Debian's packages, for machines
# with a Docker engine and no image registry (nothing is pulled):
#
#   tge-swarm/debian:bookworm      debootstrap (minbase) of Debian bookworm, `docker import`ed
#   tge-swarm/redis:local          docker/images/redis.Dockerfile        on that base
#   tge-swarm/postgres:local       docker/images/postgres.Dockerfile     (PostgreSQL 15)
#   tge-swarm/prometheus:local     docker/images/prometheus.Dockerfile
#   tge-swarm/alertmanager:local   docker/images/alertmanager.Dockerfile
#   tge-swarm/haproxy:local        docker/images/haproxy.Dockerfile
#   tge-swarm/tools:local          docker/images/tools.Dockerfile        (python3, openssl, curl)
#   tge-swarm-backup:latest        docker/backup.Dockerfile              (without the aws CLI)
#   tge-swarm:latest               docker/Dockerfile, stage `prebuilt`: the host's binary
#
# The swarm image takes a binary built on the host (the Rust image cannot be pulled): by
# default target/debug/tge-swarm as scripts/test.sh builds it (`cargo test --workspace
# --no-run`, run here too: a no-op after the tests), or --binary PATH (a release build, say).
# It is copied without its debug info to target/docker/tge-swarm, the stage's input.
#
# Cached: the base image carries a label with the hash of what made it and is rebuilt only
# when that changes (or with --rebuild-base); the other images come from Docker's layer
# cache. A second run takes seconds.
#
#   scripts/images.sh [--binary PATH] [--rebuild-base] [--no-swarm]
#
# --no-swarm builds everything but the swarm image (no binary needed yet).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
BASE_IMAGE="tge-swarm/debian:$SUITE"
BINARY=""
REBUILD_BASE=0
SWARM=1
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) BINARY="$2"; shift 2 ;;
        --rebuild-base) REBUILD_BASE=1; shift ;;
        --no-swarm) SWARM=0; shift ;;
        *) echo "images: unknown argument $1 (see the header of scripts/images.sh)" >&2; exit 2 ;;
    esac
done

step() { echo "==> images: $*"; }
die() { echo "images: $*" >&2; exit 1; }

command -v docker >/dev/null 2>&1 || die "docker is not installed (the stack needs a Docker engine)"
# One build at a time: .ci/run starts one in the background while the tests run, and the
# stack test's own call then waits for it and finds everything cached.
exec 9> /tmp/tge-swarm-images.lock
if ! flock -n 9; then
    step "waiting for another scripts/images.sh to finish"
    flock 9
fi
docker info >/dev/null 2>&1 || die "the Docker engine does not answer (docker info failed): is dockerd running?"

# ---------------------------------------------------------------- the Debian base
# What makes the base: a change here rebuilds it.
BASE_RECIPE="suite=$SUITE variant=minbase mirror=$MIRROR security=$SECURITY_MIRROR recipe=2"
BASE_KEY="$(printf '%s' "$BASE_RECIPE" | sha256sum | cut -c1-16)"
have_key="$(docker image inspect --format '{{ index .Config.Labels "tge-swarm.base-key" }}' "$BASE_IMAGE" 2>/dev/null || true)"
if [ "$REBUILD_BASE" = 0 ] && [ "$have_key" = "$BASE_KEY" ]; then
    step "$BASE_IMAGE is up to date (key $BASE_KEY)"
else
    if ! command -v debootstrap >/dev/null 2>&1; then
        step "apt-get install debootstrap"
        # Waits for dpkg's lock: .ci/run builds the images while the tests install what they need.
        if [ "$(id -u)" = 0 ]; then apt-get -o DPkg::Lock::Timeout=300 install -y -q debootstrap >/dev/null; else sudo apt-get -o DPkg::Lock::Timeout=300 install -y -q debootstrap >/dev/null; fi
    fi
    [ "$(id -u)" = 0 ] || die "debootstrap needs root (run as root or with sudo)"
    ROOTFS="$(mktemp -d /tmp/tge-swarm-rootfs.XXXXXX)"
    trap 'rm -rf "$ROOTFS"' EXIT
    step "debootstrap --variant=minbase $SUITE from $MIRROR"
    started=$SECONDS
    debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" > "$ROOTFS.log" 2>&1 \
        || { tail -20 "$ROOTFS.log"; die "debootstrap failed (log above)"; }
    rm -f "$ROOTFS.log"
    cat > "$ROOTFS/etc/apt/sources.list" <<SOURCES
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
SOURCES
    # As Debian's own container images: no recommended packages, no documentation.
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' \
        > "$ROOTFS/etc/apt/apt.conf.d/90tge-swarm-no-recommends"
    rm -rf "$ROOTFS"/var/lib/apt/lists/* "$ROOTFS"/var/cache/apt/*.bin "$ROOTFS"/var/cache/apt/archives/*.deb
    step "docker import $BASE_IMAGE"
    tar -C "$ROOTFS" --numeric-owner -c . | docker import \
        --change "LABEL tge-swarm.base-key=$BASE_KEY" \
        --change 'ENV LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive' \
        --change 'CMD ["/bin/bash"]' \
        - "$BASE_IMAGE" > /dev/null
    rm -rf "$ROOTFS"
    trap - EXIT
    step "base built in $((SECONDS - started)) s"
fi

# ---------------------------------------------------------------- the services
# Built side by side: most of their time is spent downloading and unpacking packages.
LOGS="$(mktemp -d /tmp/tge-swarm-images.XXXXXX)"
build() { # image, dockerfile, context, build args...
    local image=$1 dockerfile=$2 context=$3
    shift 3
    local started=$SECONDS log
    log="$LOGS/$(echo "$image" | tr '/:' '__').log"
    if docker build -q --network host -f "$dockerfile" --build-arg "BASE=$BASE_IMAGE" "$@" \
        -t "$image" "$context" > "$log" 2>&1; then
        step "$image ($((SECONDS - started)) s)"
    else
        cat "$log" >&2
        echo "images: building $image from $dockerfile failed (above)" >&2
        return 1
    fi
}
started=$SECONDS
PIDS=()
for service in redis postgres prometheus alertmanager haproxy tools; do
    build "tge-swarm/$service:local" "docker/images/$service.Dockerfile" docker/images &
    PIDS+=($!)
done
build tge-swarm-backup:latest docker/backup.Dockerfile "$ROOT" --build-arg AWS_CLI= &
PIDS+=($!)
failed=0
for pid in "${PIDS[@]}"; do
    wait "$pid" || failed=1
done
rm -rf "$LOGS"
[ "$failed" = 0 ] || die "an image failed to build (above)"
step "service images ready in $((SECONDS - started)) s"

# ---------------------------------------------------------------- the swarm
if [ "$SWARM" = 1 ]; then
    if [ -z "$BINARY" ]; then
        if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
            # shellcheck disable=SC1091
            . "$HOME/.cargo/env"
        fi
        step "cargo test --workspace --locked --no-run (the tge-swarm binary as the tests build it)"
        cargo test --workspace --locked --no-run > /tmp/tge-swarm-image-cargo.log 2>&1 \
            || { tail -30 /tmp/tge-swarm-image-cargo.log; die "the build failed (above)"; }
        BINARY="$ROOT/target/debug/tge-swarm"
    fi
    [ -x "$BINARY" ] || die "no tge-swarm binary at $BINARY"
    mkdir -p target/docker
    # Copied only when it changed, so the image's COPY layer stays cached.
    objcopy --strip-debug "$BINARY" target/docker/tge-swarm.new
    if cmp -s target/docker/tge-swarm.new target/docker/tge-swarm; then
        rm target/docker/tge-swarm.new
    else
        mv target/docker/tge-swarm.new target/docker/tge-swarm
    fi
    docker build -q --network host -f docker/Dockerfile --target prebuilt \
        --build-arg "RUNTIME_BASE=$BASE_IMAGE" -t tge-swarm:latest "$ROOT" > /tmp/tge-swarm-image-build.log 2>&1 \
        || { cat /tmp/tge-swarm-image-build.log; die "building tge-swarm:latest (stage prebuilt) failed (above)"; }
    step "tge-swarm:latest from $BINARY ($(du -h target/docker/tge-swarm | cut -f1) stripped)"
fi
