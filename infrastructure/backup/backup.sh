#!/bin/sh
# One backup of a tge-swarm deployment, as a folder BACKUP_DIR/tge-swarm-<UTC time>/:
#   postgres.dump          pg_dump (custom format) of the whole database: events, sources,
#                          companies, documents, memory entries and snapshots, desired state,
#                          API keys, supervisor actions
#   redis.rdb              an RDB snapshot of Redis (work queues, memory mirror, metrics)
#   memory-entries.jsonl   the shared memory and its synthesis snapshots as JSON lines, readable
#   memory-snapshots.jsonl without a restore
#   config.tar.gz          the folders in CONFIG_PATHS (colon-separated), if set
#   MANIFEST               row counts per table, Redis key count, SHA-256 of every file
# The folder is written as <name>.partial and renamed when complete. Backups older than
# BACKUP_RETENTION_DAYS (30) days are deleted. With BACKUP_S3_URI set, the folder is also
# uploaded there as a tarball (aws CLI; credentials from the usual AWS_* variables).
#
# Needs: DATABASE_URL (postgres://...), REDIS_URL (redis://[:password@]host:port/db); pg_dump,
# pg_restore, psql and redis-cli on PATH.
set -eu

die() {
    echo "backup: $*" >&2
    exit 1
}

: "${DATABASE_URL:?backup: set DATABASE_URL (postgres://user:pass@host:5432/db)}"
: "${REDIS_URL:?backup: set REDIS_URL (redis://default:pass@host:6379/0)}"
BACKUP_DIR=${BACKUP_DIR:-./backups}
RETENTION_DAYS=${BACKUP_RETENTION_DAYS:-30}
case "$RETENTION_DAYS" in
    '' | *[!0-9]*) die "BACKUP_RETENTION_DAYS must be a whole number of days, got '$RETENTION_DAYS'" ;;
esac
for tool in pg_dump pg_restore psql redis-cli; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
done

stamp=$(date -u +%Y%m%dT%H%M%SZ)
name="tge-swarm-$stamp"
target="$BACKUP_DIR/$name"
work="$target.partial"
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT

# The tables whose row counts the manifest records and restore.sh checks.
TABLES="sources companies documents detections tge_events event_sources feedback memory_entries memory_snapshots desired_state supervisor_actions api_keys"

pg_dump --format=custom --no-owner --no-privileges --file "$work/postgres.dump" "$DATABASE_URL" \
    || die "pg_dump of $(echo "$DATABASE_URL" | sed 's|//[^@]*@|//***@|') failed"
psql "$DATABASE_URL" -X -q -At -v ON_ERROR_STOP=1 \
    -c "SELECT row_to_json(m)::text FROM memory_entries m ORDER BY namespace, key" \
    -o "$work/memory-entries.jsonl" || die "exporting memory_entries failed"
psql "$DATABASE_URL" -X -q -At -v ON_ERROR_STOP=1 \
    -c "SELECT row_to_json(s)::text FROM memory_snapshots s ORDER BY id" \
    -o "$work/memory-snapshots.jsonl" || die "exporting memory_snapshots failed"
redis-cli -u "$REDIS_URL" --no-auth-warning --rdb "$work/redis.rdb" > "$work/redis-cli.log" 2>&1 \
    || die "redis-cli --rdb failed: $(tail -1 "$work/redis-cli.log")"
rm -f "$work/redis-cli.log"

if [ -n "${CONFIG_PATHS:-}" ]; then
    # Word splitting on ':' is intended: CONFIG_PATHS is a colon-separated list.
    old_ifs=$IFS
    IFS=:
    # shellcheck disable=SC2086
    tar -czf "$work/config.tar.gz" $CONFIG_PATHS || die "archiving CONFIG_PATHS ($CONFIG_PATHS) failed"
    IFS=$old_ifs
fi

# Row counts from the dump itself (its COPY blocks: one line per row), so that they describe
# the same snapshot as the dump while the swarm keeps writing; counted in the database, they
# could include rows written after pg_dump's snapshot, and restore.sh would then refuse the
# backup.
pg_restore --data-only --file - "$work/postgres.dump" \
    | awk '/^COPY / { table = $2; sub(/^public\./, "", table); rows = 0; inside = 1; next }
           inside && $0 == "\\." { print table, rows; inside = 0; next }
           inside { rows++ }' > "$work/rows.txt" \
    || die "reading the row counts back from the dump failed"
{
    echo "created $stamp"
    for table in $TABLES; do
        count=$(awk -v t="$table" '$1 == t { print $2 }' "$work/rows.txt")
        [ -n "$count" ] || die "table $table is not in the dump"
        echo "table $table $count"
    done
    echo "redis_keys $(redis-cli -u "$REDIS_URL" --no-auth-warning dbsize)"
} > "$work/MANIFEST"
rm -f "$work/rows.txt"
(cd "$work" && sha256sum postgres.dump redis.rdb memory-entries.jsonl memory-snapshots.jsonl \
    $( [ -f config.tar.gz ] && echo config.tar.gz ) > SHA256SUMS)

mv "$work" "$target"
trap - EXIT
echo "backup: wrote $target"

if [ -n "${BACKUP_S3_URI:-}" ]; then
    command -v aws >/dev/null 2>&1 || die "BACKUP_S3_URI is set but the aws CLI is not installed"
    tar -C "$BACKUP_DIR" -czf "$target.tar.gz" "$name"
    aws s3 cp --only-show-errors "$target.tar.gz" "${BACKUP_S3_URI%/}/$name.tar.gz" \
        || die "uploading to $BACKUP_S3_URI failed (the local backup $target is kept)"
    rm -f "$target.tar.gz"
    echo "backup: uploaded ${BACKUP_S3_URI%/}/$name.tar.gz"
fi

# Retention: whole backups older than RETENTION_DAYS days, and partial ones left by a crash.
find "$BACKUP_DIR" -mindepth 1 -maxdepth 1 -type d -name 'tge-swarm-*' -mtime +"$RETENTION_DAYS" \
    -print -exec rm -rf {} + | sed 's/^/backup: removed expired /'
