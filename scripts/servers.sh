# Sourced by scripts/test.sh and scripts/bench.sh: provides Redis and Postgres and exports
# TGE_SWARM_TEST_REDIS_URL, TGE_SWARM_TEST_DATABASE_URL, TGE_SWARM_TEST_PG_BIN (and
# TGE_SWARM_TEST_PG_USER when running as root).
#
# Uses Redis on 127.0.0.1:6379 and Postgres on 127.0.0.1:5432 when they answer (or the URLs
# already exported); otherwise starts throwaway ones (installing redis-server / postgresql
# with apt-get if missing) and stops them at exit (TGE_SWARM_TEST_THROWAWAY=1 forces
# throwaway servers even when local ones answer). The caller must not set its own EXIT trap:
# it appends to STARTED instead (`redis:PORT`, `postgres:DATADIR`, `pid:PID`, `database:NAME`),
# and cleanup stops or drops those in order.

WORK="$(mktemp -d /tmp/tge-swarm-servers.XXXXXX)"
STARTED=()
cleanup() {
    for what in "${STARTED[@]:-}"; do
        case "$what" in
            redis:*) redis-cli -p "${what#redis:}" shutdown nosave >/dev/null 2>&1 || true ;;
            postgres:*) run_as_postgres "$PG_BIN/pg_ctl" -D "${what#postgres:}" -m immediate stop >/dev/null 2>&1 || true ;;
            pid:*) kill "${what#pid:}" >/dev/null 2>&1 || true ;;
            database:*) psql "$TGE_SWARM_TEST_DATABASE_URL" -X -q -c "DROP DATABASE IF EXISTS ${what#database:} WITH (FORCE)" >/dev/null 2>&1 || true ;;
        esac
    done
    rm -rf "$WORK"
}
trap cleanup EXIT

# apt-get waits for dpkg's locks (another apt-get, such as .ci/run building the stack's
# images beside the tests, may hold them) rather than failing at once. `apt-get update` does
# not wait for the lists' lock, so a run that failed on a held lock is tried again (at most
# six times, 20 s apart); any other failure is returned at once.
apt_get() {
    local sudo=()
    [ "$(id -u)" -eq 0 ] || sudo=(sudo)
    local attempt errors status
    errors="$(mktemp)"
    for attempt in 1 2 3 4 5 6; do
        status=0
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 "$@" 2>"$errors" || status=$?
        cat "$errors" >&2
        if [ "$status" -eq 0 ]; then
            rm -f "$errors"
            return 0
        fi
        if ! grep -qE "Could not get lock|Unable to acquire|Unable to lock" "$errors"; then
            rm -f "$errors"
            return "$status"
        fi
        echo "==> apt-get $1: a lock is held by another apt-get (attempt $attempt); trying again in 20 s"
        sleep 20
    done
    rm -f "$errors"
    return 1
}

apt_install() {
    echo "==> installing $* with apt-get"
    apt_get update -qq && apt_get install -y -qq "$@"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# Postgres refuses to run as root: run its binaries as the postgres user when we are root.
run_as_postgres() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# --- binaries (the chaos test starts private servers too) ---
command -v redis-server >/dev/null 2>&1 || apt_install redis-server
PG_BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)"
if [ -z "$PG_BIN" ] || [ ! -x "$PG_BIN/postgres" ]; then
    apt_install postgresql
    PG_BIN="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)"
fi
export TGE_SWARM_TEST_PG_BIN="$PG_BIN"
if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
    export TGE_SWARM_TEST_PG_USER=postgres
fi

# --- Redis ---
if [ -z "${TGE_SWARM_TEST_REDIS_URL:-}" ]; then
    if [ "${TGE_SWARM_TEST_THROWAWAY:-0}" != 1 ] && redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; then
        export TGE_SWARM_TEST_REDIS_URL="redis://127.0.0.1:6379/0"
    else
        port="$(free_port)"
        echo "==> starting a throwaway redis-server on port $port"
        redis-server --daemonize yes --bind 127.0.0.1 --port "$port" --save "" --appendonly no \
            --dir "$WORK" --logfile "$WORK/redis.log"
        STARTED+=("redis:$port")
        for _ in $(seq 50); do redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
        export TGE_SWARM_TEST_REDIS_URL="redis://127.0.0.1:$port/0"
    fi
fi

# --- Postgres ---
if [ -z "${TGE_SWARM_TEST_DATABASE_URL:-}" ]; then
    if [ "${TGE_SWARM_TEST_THROWAWAY:-0}" != 1 ] && "$PG_BIN/pg_isready" -h 127.0.0.1 -p 5432 -q 2>/dev/null \
        && psql "postgres://postgres@127.0.0.1:5432/postgres" -Atc "select 1" >/dev/null 2>&1; then
        export TGE_SWARM_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres"
    else
        port="$(free_port)"
        data="$WORK/pg"
        mkdir -p "$data"
        chmod 777 "$WORK"
        [ "$(id -u)" -eq 0 ] && chown postgres "$data"
        echo "==> starting a throwaway postgres on port $port"
        run_as_postgres "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
        run_as_postgres "$PG_BIN/pg_ctl" -D "$data" -o "-p $port -k $data -c listen_addresses=127.0.0.1" \
            -l "$data/log" -w start >/dev/null
        STARTED+=("postgres:$data")
        export TGE_SWARM_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
    fi
fi

