#!/usr/bin/env bash
# The stack test: brings up the Compose stack (docker/docker-compose.yml) from images built
# here from Debian's packages (scripts/images.sh), with the test override docker/stack-test.yml
# and without Consul, Grafana and Jaeger (scripts/stack_compose.py: they cannot be installed
# on a machine without an image registry), and proves it. Run by .ci/run.
#
#  1. up: every service healthy in `docker-compose ps`; migrate ran once and exited 0; the
#     queen lists every agent of every container healthy.
#  2. Fixture feeds, served by a container on the stack's egress network (5 feeds, one of them
#     slow), become events exactly once, read through HAProxy over :80 and over TLS on :443.
#  3. Prometheus scrapes every swarm container, the agents through the queen's /sd/targets;
#     with the memory coordinator stopped, TgeSwarmProcessDown fires and reaches the webhook
#     sink container through Alertmanager.
#  4. Node loss: SIGKILL of the process of the keyword and data-quality containers while they
#     hold new work, and of the scraping container while it fetches the slow feed; Compose
#     restarts them; every announcement ends up exactly once.
#  5. Partition: the keyword container is cut from the data network for 30 s; its /readyz
#     names the missing store and bus meanwhile; after reconnecting, nothing is lost.
#  6. Scale and rolling restart: --scale keyword=3; the new replicas appear in /sd/targets,
#     /api/v1/agents and Prometheus; then every agent container is restarted one at a time
#     under new load: nothing lost.
#  7. Redis (AOF) and Postgres restarts inside the stack: nothing lost.
#  8. Backup with the stack's backup service, restore into a fresh stack as the README says;
#     the fresh stack serves the same events and adds none.
#
# Every figure (seconds to healthy, to recover, counts) is printed at the end and written to
# target/stack-report.txt. KEEP_STACK=1 leaves the stack running for a look afterwards.
#
#   scripts/check-stack.sh [--binary PATH]      (PATH: the tge-swarm binary for the image)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

IMAGE_ARGS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) IMAGE_ARGS+=(--binary "$2"); shift 2 ;;
        *) echo "check-stack: unknown argument $1" >&2; exit 2 ;;
    esac
done

step() { echo "==> stack: $*"; }
die() { echo "check-stack: $*" >&2; exit 1; }
REPORT=()
report() { REPORT+=("$*"); echo "    $*"; }

command -v docker-compose >/dev/null 2>&1 || die "docker-compose is not installed (apt-get install docker-compose)"
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check pyyaml

# ---------------------------------------------------------------- images
step "images (scripts/images.sh)"
started=$SECONDS
scripts/images.sh "${IMAGE_ARGS[@]}"
report "images built or found in the cache: $((SECONDS - started)) s"

# ---------------------------------------------------------------- the stack's files
WORK="$(mktemp -d /tmp/tge-swarm-stack.XXXXXX)"
chmod 755 "$WORK"
PROJECT="tgestack$$"
PROJECT2="${PROJECT}r"
mkdir -p "$WORK/feeds"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
HTTP_PORT=$(free_port)
HTTPS_PORT=$(free_port)
QUEEN_METRICS_PORT=$(free_port)
ADMIN_KEY="stack-$(openssl rand -hex 16)"
# Subnets no network of this engine holds: the Compose file fixes its frontend and backend
# subnets (the queen trusts HAProxy's X-Forwarded-For from them), so a network another stack,
# or a stale one the engine failed to remove, holds on the defaults would stop `up` with "Pool
# overlaps". The restored stack of step 8 gets a pair of its own, chosen when it is made.
free_subnets() { # -> two free /24s, "frontend backend"
    local pair
    pair=$(python3 scripts/stack_probe.py subnets 2) || die "no free subnets for the stack (above)"
    [ "$(wc -w <<< "$pair")" = 2 ] || die "stack_probe.py subnets printed '$pair'"
    echo "$pair"
}
cat > "$WORK/stack.env" <<ENV
POSTGRES_PASSWORD=pg-$(openssl rand -hex 12)
REDIS_PASSWORD=redis-$(openssl rand -hex 12)
TGE_SWARM_ADMIN_KEY=$ADMIN_KEY
ALERT_WEBHOOK_URL=http://sink:9000/alertmanager
# Grafana is left out of the test stack; Compose still resolves its settings.
GRAFANA_ADMIN_PASSWORD=unused-$(openssl rand -hex 8)
STACK_FEEDS_DIR=$WORK/feeds
BIND_ADDRESS=127.0.0.1
HTTP_PORT=$HTTP_PORT
HTTPS_PORT=$HTTPS_PORT
QUEEN_API_PORT=$(free_port)
QUEEN_METRICS_PORT=$QUEEN_METRICS_PORT
MEMORY_METRICS_PORT=$(free_port)
TGE_SWARM_IMAGE=tge-swarm:latest
TGE_SWARM_LOG=info
ENV
stack_file() { # "frontend backend" subnets, out; and the file's services, one a line, in out.services
    local frontend backend
    read -r frontend backend <<< "$1"
    # Given in the environment too: Compose 1.x lets the environment win over --env-file.
    FRONTEND_SUBNET=$frontend BACKEND_SUBNET=$backend TGE_SWARM_TRUSTED_PROXIES="$frontend,$backend" \
        docker-compose --env-file "$WORK/stack.env" -f docker/docker-compose.yml -f docker/stack-test.yml \
        --profile monitoring config > "$WORK/resolved.yml"
    python3 scripts/stack_compose.py < "$WORK/resolved.yml" > "$2"
    docker-compose -f "$2" config --services > "$2.services"
    [ -s "$2.services" ] || die "$2 names no service"
}
SUBNETS=$(free_subnets)
stack_file "$SUBNETS" "$WORK/stack.yml"
dc() { docker-compose -p "$PROJECT" -f "$WORK/stack.yml" "$@"; }
dc2() { docker-compose -p "$PROJECT2" -f "$WORK/stack2.yml" "$@"; }

remove_volumes() { # project: its volumes that are left, removed
    docker volume ls -q --filter "label=com.docker.compose.project=$1" | xargs -r docker volume rm > /dev/null 2>&1 || true
}

cleanup() {
    local status=$?
    if [ $status -ne 0 ]; then
        echo "check-stack: failed; the stack's state and recent logs:" >&2
        dc ps 2>/dev/null || true
        dc logs --no-color --tail 40 2>/dev/null | tail -400 || true
        if [ -f "$WORK/stack2.yml" ]; then
            dc2 ps 2>/dev/null || true
            dc2 logs --no-color --tail 40 2>/dev/null | tail -400 || true
        fi
    fi
    if [ "${KEEP_STACK:-0}" = 1 ]; then
        echo "check-stack: KEEP_STACK=1: left running; docker-compose -p $PROJECT -f $WORK/stack.yml down -v"
        [ -f "$WORK/stack2.yml" ] && echo "    and docker-compose -p $PROJECT2 -f $WORK/stack2.yml down -v"
        return
    fi
    dc down -v --remove-orphans -t 5 > /dev/null 2>&1 || true
    [ -f "$WORK/stack2.yml" ] && { dc2 down -v --remove-orphans -t 5 > /dev/null 2>&1 || true; }
    # Compose 1.29's down stops at a network it cannot remove, before the volumes.
    remove_volumes "$PROJECT"
    remove_volumes "$PROJECT2"
    rm -rf "$WORK"
}
trap cleanup EXIT

BASE="http://127.0.0.1:$HTTP_PORT"
TLS="https://127.0.0.1:$HTTPS_PORT"
PROM="$BASE/prometheus"
SD="http://127.0.0.1:$QUEEN_METRICS_PORT/sd/targets"
AGENTS=(scraping keyword api-reliability performance data-quality)

wait_for() { # what, seconds, command... ; sets WAITED to the seconds it took
    local what=$1 seconds=$2
    shift 2
    local start=$SECONDS deadline=$((SECONDS + seconds)) out=""
    until out=$("$@" 2>&1); do
        if [ $SECONDS -ge $deadline ]; then
            echo "check-stack: timed out after ${seconds}s waiting for $what; last: $out" >&2
            return 1
        fi
        sleep 1
    done
    WAITED=$((SECONDS - start))
    [ -z "$out" ] || echo "    $out"
}

# Every container of the project: one-shot services exited 0, the others healthy (every
# long-running service has a health check), but for the services in STOPPED, stopped on
# purpose.
STOPPED=""
all_healthy() { # project [service...: these must have a container; by default every one]
    local bad=()
    local id name state health exit_code service seen=" "
    for id in $(docker ps -aq --filter "label=com.docker.compose.project=$1"); do
        read -r name state health exit_code service < <(docker inspect -f \
            '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}} {{.State.ExitCode}} {{index .Config.Labels "com.docker.compose.service"}}' "$id")
        seen+="$service "
        case " $STOPPED " in *" $service "*) continue ;; esac
        case "$name" in
            *_migrate_* | *_certs_*) [ "$state" = exited ] && [ "$exit_code" = 0 ] || bad+=("$name:$state:$exit_code") ;;
            *) [ "$state" = running ] && [ "$health" = healthy ] || bad+=("$name:$state:$health") ;;
        esac
    done
    # Every service of the file the project was started from has a container: an `up` that
    # created nothing is not a healthy stack.
    local file=$WORK/stack.yml wanted
    [ "$1" = "$PROJECT" ] || file=$WORK/stack2.yml
    wanted=("${@:2}")
    [ ${#wanted[@]} -gt 0 ] || mapfile -t wanted < "$file.services"
    [ ${#wanted[@]} -gt 0 ] || { echo "no services listed for $1"; return 1; }
    for service in "${wanted[@]}"; do
        case "$seen" in *" $service "*) ;; *) bad+=("$service:no-container") ;; esac
    done
    [ ${#bad[@]} -eq 0 ] || { echo "not yet: ${bad[*]}"; return 1; }
}

exactly_once() { # the API over :80 and :443 hold every announcement of expected.txt once
    python3 scripts/stack_probe.py events "$BASE" "$WORK/feeds/expected.txt" \
        && python3 scripts/stack_probe.py events "$TLS" "$WORK/feeds/expected.txt" --insecure
}

feeds() { # batches
    python3 tests/fixtures/stack/feeds.py "$WORK/feeds" "$1"
    chmod 644 "$WORK"/feeds/*
    ANNOUNCED=$(wc -l < "$WORK/feeds/expected.txt")
}

container() { # service -> the id of its (first) container
    dc ps -q "$1" | head -1
}

ip_on() { # network (backend, egress, ...), container id -> the container's address on it
    docker inspect -f "{{ (index .NetworkSettings.Networks \"${PROJECT}_$1\").IPAddress }}" "$2"
}

readyz_of() { # container id, port -> its /readyz answer, from a container on the backend network
    docker run --rm --network "${PROJECT}_backend" tge-swarm/tools:local \
        curl -sS --max-time 8 "http://$(ip_on backend "$1"):$2/readyz" || true
}

# ---------------------------------------------------------------- 1. up
feeds 2
step "docker-compose up ($(dc config --services | wc -l) services; Consul, Grafana and Jaeger left out)"
started=$SECONDS
UP_START=$SECONDS
dc up -d --quiet-pull > "$WORK/up.log" 2>&1 || { cat "$WORK/up.log"; die "docker-compose up failed (its output above)"; }
grep -v "^Creating\|^Starting" "$WORK/up.log" || true
wait_for "every service healthy" 300 all_healthy "$PROJECT"
report "up: every service healthy after $((SECONDS - started)) s"
dc ps
migrations=$(docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" --filter "label=com.docker.compose.service=migrate" | wc -l)
migrate_state=$(docker inspect -f '{{.State.ExitCode}} {{.RestartCount}}' "$(container migrate)")
[ "$migrations" = 1 ] && [ "$migrate_state" = "0 0" ] \
    || die "migrate: $migrations containers, exit code and restarts '$migrate_state' (want one run, exit 0)"
report "migrate: ran once, exit 0"
wait_for "the queen to list every agent healthy" 90 \
    python3 scripts/stack_probe.py agents "$BASE" scraping=1 keyword=1 api-reliability=1 performance=1 data-quality=1
report "agents: all 5 kinds healthy, one process each"

# ---------------------------------------------------------------- 2. exactly once
step "fixture announcements become events exactly once (HAProxy :80 and TLS :443)"
wait_for "$ANNOUNCED events" 180 exactly_once
report "feeds: $ANNOUNCED announcements -> $ANNOUNCED events, each once, over :80 and :443, by $((SECONDS - UP_START)) s after docker-compose up"

# ---------------------------------------------------------------- 3. Prometheus and alerts
step "Prometheus scrapes every swarm container (agents through /sd/targets)"
wait_for "the agents in /sd/targets" 60 python3 scripts/stack_probe.py targets "$SD" \
    scraping=1 keyword=1 api-reliability=1 performance=1 data-quality=1
wait_for "Prometheus to scrape them" 120 python3 scripts/stack_probe.py prometheus "$PROM" \
    tge-swarm-agents=5 tge-swarm-queen=1 tge-swarm-memory-coordinator=1 prometheus=1 alertmanager=1
report "prometheus: 5 agents (via /sd/targets), queen and memory coordinator up after $WAITED s"
step "memory coordinator stopped: TgeSwarmProcessDown must reach the sink through Alertmanager"
dc stop -t 10 memory-coordinator
STOPPED="memory-coordinator"
ALERT_FROM=$SECONDS

# ---------------------------------------------------------------- 4. node loss
step "node loss: SIGKILL of keyword and data-quality holding work, scraping mid-fetch"
# SIGKILL to each container's process from the host, as a crash or the OOM killer sends it:
# `docker kill` would record a manual stop, after which Docker's restart policy (the
# stack's `restart: unless-stopped`) leaves the container down.
pid_of() { docker inspect -f '{{.State.Pid}}' "$(container "$1")"; }
KILLED=("$(container keyword)" "$(container data-quality)" "$(container scraping)")
KEYWORD_PID=$(pid_of keyword)
QUALITY_PID=$(pid_of data-quality)
SCRAPING_PID=$(pid_of scraping)
REDIS_ID=$(container redis)
FEEDS_IP=$(ip_on egress "$(container feeds)")
feeds 4
# Keyword and data quality die the moment either stage holds work delivered and not yet
# acknowledged (polled inside the Redis container as fast as redis-cli answers: a stage holds
# a batch for a few hundred milliseconds).
# The quality queue is partitioned (swarm:queue:quality, {swarm:queue:quality}:1, ...): its
# pending entries are summed over every partition in one call.
QUALITY_PENDING="local n = 0
local keys = redis.call('KEYS', '{swarm:queue:quality}:[0-9]*')
table.insert(keys, 'swarm:queue:quality')
for _, k in ipairs(keys) do
  if redis.call('TYPE', k).ok == 'stream' then
    local ok, p = pcall(redis.call, 'XPENDING', k, 'swarm')
    if ok then n = n + p[1] end
  end
end
return n"
held=$(docker exec -e QUALITY_PENDING="$QUALITY_PENDING" "$REDIS_ID" sh -c '
    i=0
    while [ $i -lt 20000 ]; do
        c=$(redis-cli --no-auth-warning -a "$REDIS_PASSWORD" XPENDING swarm:queue:classify swarm | head -1)
        q=$(redis-cli --no-auth-warning -a "$REDIS_PASSWORD" EVAL "$QUALITY_PENDING" 0)
        if [ "${c:-0}" -gt 0 ] 2>/dev/null || [ "${q:-0}" -gt 0 ] 2>/dev/null; then
            echo "$c classify and $q quality entries"
            exit 0
        fi
        i=$((i + 1))
    done
    exit 1') || die "keyword and data quality never held work while the new batch went through"
started=$SECONDS
kill -KILL "$KEYWORD_PID" "$QUALITY_PID"
report "killed keyword and data-quality (SIGKILL) holding $held unacknowledged"
# The scraper dies while it fetches the slow feed (the feed server counts requests in flight).
wait_for "a slow fetch in flight" 30 sh -c "curl -fsS --max-time 2 http://$FEEDS_IP:8000/_inflight | grep 'inflight=[1-9]'"
kill -KILL "$SCRAPING_PID"
sleep 0.5
report "killed scraping (SIGKILL) mid-fetch: feed server after the kill: $(curl -fsS --max-time 2 "http://$FEEDS_IP:8000/_inflight")"
wait_for "the killed containers restarted and healthy" 120 all_healthy "$PROJECT"
restarts=$(docker inspect -f '{{.RestartCount}}' "${KILLED[@]}" | tr '\n' ' ')
report "node loss: restarted by Docker, the stack's restart policy (restart counts $restarts), healthy after $((SECONDS - started)) s"
wait_for "$ANNOUNCED events after the kills" 180 exactly_once
report "node loss: $ANNOUNCED announcements -> $ANNOUNCED events, each once, $((SECONDS - started)) s after the kill"

# ---------------------------------------------------------------- 5. partition
step "partition: keyword cut from the data network for 30 s"
feeds 5
KEYWORD=$(container keyword)
started=$SECONDS
docker network disconnect "${PROJECT}_data" "$KEYWORD"
sleep 8
readyz_of "$KEYWORD" 8011 > "$WORK/readyz.json"
python3 scripts/stack_probe.py readyz "$WORK/readyz.json" store \
    || die "keyword's /readyz did not name the store while cut off: $(cat "$WORK/readyz.json")"
python3 scripts/stack_probe.py readyz "$WORK/readyz.json" bus \
    || die "keyword's /readyz did not name the bus while cut off: $(cat "$WORK/readyz.json")"
report "partition: /readyz while cut off: $(head -c 300 "$WORK/readyz.json")"
sleep $((30 - (SECONDS - started)))
docker network connect "${PROJECT}_data" "$KEYWORD"
started=$SECONDS
keyword_ready() { readyz_of "$KEYWORD" 8011 | grep '"status":"ready"'; }
wait_for "keyword ready again" 120 keyword_ready
report "partition: keyword ready $WAITED s after reconnecting"
wait_for "$ANNOUNCED events after the partition" 180 exactly_once
report "partition: $ANNOUNCED announcements -> $ANNOUNCED events, each once, $((SECONDS - started)) s after reconnecting"

# ---------------------------------------------------------------- 3 (end). the alert
step "TgeSwarmProcessDown at the sink"
wait_for "the alert at the webhook sink" $((300 - (SECONDS - ALERT_FROM))) sh -c \
    "docker exec $(container sink) curl -fsS http://127.0.0.1:9000/received > '$WORK/sink.jsonl' && python3 scripts/stack_probe.py alert '$WORK/sink.jsonl' TgeSwarmProcessDown"
report "alert: TgeSwarmProcessDown reached the sink through Alertmanager $((SECONDS - ALERT_FROM)) s after the memory coordinator stopped (rule: for 1m; group_wait 30 s)"
dc start memory-coordinator
STOPPED=""
wait_for "the memory coordinator healthy again" 90 all_healthy "$PROJECT"

# ---------------------------------------------------------------- 6. scale and rolling restart
step "scale: keyword=3"
started=$SECONDS
dc up -d --no-recreate --scale keyword=3 > "$WORK/scale.log" 2>&1 || { cat "$WORK/scale.log"; die "docker-compose up --scale keyword=3 failed"; }
wait_for "three keyword containers healthy" 120 all_healthy "$PROJECT"
wait_for "three keyword processes in /sd/targets" 60 python3 scripts/stack_probe.py targets "$SD" \
    scraping=1 keyword=3 api-reliability=1 performance=1 data-quality=1
wait_for "three keyword processes in /api/v1/agents" 60 python3 scripts/stack_probe.py agents "$BASE" \
    scraping=1 keyword=3 api-reliability=1 performance=1 data-quality=1
wait_for "Prometheus to scrape the new replicas" 120 python3 scripts/stack_probe.py prometheus "$PROM" tge-swarm-agents=7
report "scale: keyword=3 healthy, in /sd/targets, /api/v1/agents and scraped by Prometheus $((SECONDS - started)) s after the command"
step "rolling restart of every agent container under load"
feeds 6
started=$SECONDS
for service in "${AGENTS[@]}"; do
    for id in $(dc ps -q "$service"); do
        docker restart -t 30 "$id" > /dev/null
        wait_for "$service ($id) healthy after its restart" 120 all_healthy "$PROJECT"
    done
done
report "rolling restart: 7 agent containers, one at a time, $((SECONDS - started)) s"
wait_for "$ANNOUNCED events after the rolling restart" 180 exactly_once
report "rolling restart: $ANNOUNCED announcements -> $ANNOUNCED events, each once"

# ---------------------------------------------------------------- 7. Redis and Postgres
step "Redis and Postgres restarts"
[ "$(dc exec -T redis sh -c 'redis-cli --no-auth-warning -a "$REDIS_PASSWORD" config get appendonly' | tail -1 | tr -d '\r')" = yes ] \
    || die "Redis runs without AOF"
feeds 7
started=$SECONDS
dc restart -t 10 redis
wait_for "Redis and the swarm healthy after Redis' restart" 120 all_healthy "$PROJECT"
report "redis restart: stack healthy again after $((SECONDS - started)) s"
started=$SECONDS
dc restart -t 10 postgres
wait_for "Postgres and the swarm healthy after Postgres' restart" 120 all_healthy "$PROJECT"
report "postgres restart: stack healthy again after $((SECONDS - started)) s"
wait_for "$ANNOUNCED events after the restarts" 180 exactly_once
report "redis and postgres restarts: $ANNOUNCED announcements -> $ANNOUNCED events, each once"

# ---------------------------------------------------------------- 8. backup and restore
step "backup with the stack's backup service"
dc exec -T backup backup.sh > "$WORK/backup.log" 2>&1 || { cat "$WORK/backup.log"; die "backup.sh failed in the stack"; }
BACKUP_NAME=$(dc exec -T backup sh -c 'ls -1 /backups | grep "^tge-swarm-" | grep -v partial | tail -1' | tr -d '\r')
[ -n "$BACKUP_NAME" ] || die "no backup in the backups volume"
docker cp "$(container backup):/backups/$BACKUP_NAME" "$WORK/$BACKUP_NAME"
report "backup: $BACKUP_NAME, $(du -sh "$WORK/$BACKUP_NAME" | cut -f1)"
curl -fsS "$BASE/api/v1/events?page_size=200&sources_per_event=0" \
    | python3 -c 'import json,sys; [print(e["id"], e["project"], e["token"]) for e in json.load(sys.stdin)["events"]]' \
    | sort > "$WORK/events-before.txt"
if ! dc down -v -t 10 > "$WORK/down.log" 2>&1; then
    # Seen twice (2026-12-07): the engine kept a network with "active endpoints" no container
    # owned. Every container is gone by now, so the stale endpoints are disconnected by force and
    # the networks removed; the fresh stack has subnets of its own, so it never depends on this.
    cat "$WORK/down.log"
    for net in $(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT"); do
        for endpoint in $(docker network inspect -f '{{range $id, $c := .Containers}}{{$c.Name}} {{end}}' "$net"); do
            docker network disconnect -f "$net" "$endpoint" || true
        done
        docker network rm "$net" || true
    done
    if dc down -v -t 10 > "$WORK/down.log" 2>&1; then
        report "teardown: docker-compose down failed on stale network endpoints; removed by force"
    else
        # The engine's bookkeeping of a network is left behind: said in the report. The restore
        # below uses a project, volumes and subnets of its own, so it does not depend on it.
        cat "$WORK/down.log"
        report "teardown: WARNING: the engine kept a network of $PROJECT after a forced removal (output above)"
        remove_volumes "$PROJECT"
    fi
fi
SUBNETS2=$(free_subnets)
stack_file "$SUBNETS2" "$WORK/stack2.yml"
step "restore into a fresh stack (project $PROJECT2), as the README says"
started=$SECONDS
dc2 up -d backup > "$WORK/up2.log" 2>&1 || { cat "$WORK/up2.log"; die "docker-compose up of the fresh stack's backup service failed"; }
wait_for "the fresh stack's Postgres, Redis and backup service" 120 all_healthy "$PROJECT2" postgres redis backup
BACKUP2=$(dc2 ps -q backup)
docker cp "$WORK/$BACKUP_NAME" "$BACKUP2:/backups/$BACKUP_NAME"
dc2 stop -t 10 redis
dc2 run --rm --no-deps -v "${PROJECT2}_redisdata:/redis-data" -e REDIS_DATA_DIR=/redis-data \
    backup restore.sh "/backups/$BACKUP_NAME" > "$WORK/restore.log" 2>&1 \
    || { cat "$WORK/restore.log"; die "restore.sh failed"; }
dc2 up -d > "$WORK/up2.log" 2>&1 || { cat "$WORK/up2.log"; die "docker-compose up of the restored stack failed"; }
wait_for "the restored stack healthy" 300 all_healthy "$PROJECT2"
wait_for "the restored stack's API" 60 curl -fsS -o /dev/null "$BASE/api/v1/events?page_size=1"
sleep 10 # the fresh stack reads the same feeds again: it must add nothing
curl -fsS "$BASE/api/v1/events?page_size=200&sources_per_event=0" \
    | python3 -c 'import json,sys; [print(e["id"], e["project"], e["token"]) for e in json.load(sys.stdin)["events"]]' \
    | sort > "$WORK/events-after.txt"
diff "$WORK/events-before.txt" "$WORK/events-after.txt" > "$WORK/events.diff" \
    || { cat "$WORK/events.diff"; die "the restored stack's events differ from the backed-up stack's"; }
exactly_once
report "restore: fresh stack healthy with the same $(wc -l < "$WORK/events-after.txt") events $((SECONDS - started)) s after it was created; no event added on re-reading the feeds"

echo
echo "==> stack: every check passed"
mkdir -p target
printf '%s\n' "${REPORT[@]}" | tee target/stack-report.txt
