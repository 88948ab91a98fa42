#!/bin/sh
# Restores one backup made by backup.sh:
#   restore.sh BACKUP_FOLDER
# Postgres: into DATABASE_URL, which must hold no tables (a fresh database); RESTORE_FORCE=1
#   drops what is there first. The row counts of the restored tables are checked against the
#   backup's MANIFEST.
# Redis: Redis loads its data only at start, so restore writes the snapshot into
#   REDIS_DATA_DIR (the stopped Redis server's `dir`), both as dump.rdb (`appendonly no`) and
#   as the base of a fresh append-only file (`appendonly yes`; REDIS_AOF_DIRNAME and
#   REDIS_AOF_FILENAME if redis.conf changes appenddirname/appendfilename). What was there is
#   replaced. Start Redis afterwards. Without REDIS_DATA_DIR the Redis part is skipped, with a
#   warning.
# The files are checked against SHA256SUMS first; nothing is written if one differs.
set -eu

die() {
    echo "restore: $*" >&2
    exit 1
}

[ $# -eq 1 ] || die "usage: restore.sh BACKUP_FOLDER"
backup=$1
[ -d "$backup" ] || die "$backup is not a folder"
[ -f "$backup/MANIFEST" ] || die "$backup has no MANIFEST: not a complete backup"
: "${DATABASE_URL:?restore: set DATABASE_URL to the Postgres database to restore into}"
for tool in pg_restore psql sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
done

(cd "$backup" && sha256sum -c --quiet SHA256SUMS) || die "$backup: checksums do not match SHA256SUMS"

# Tables only: the views an extension brings (pg_stat_statements, which the stack's
# init.sql creates in every fresh database) are not data.
tables=$(psql "$DATABASE_URL" -X -q -At -v ON_ERROR_STOP=1 \
    -c "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'") \
    || die "cannot reach the target database"
clean=""
if [ "$tables" != "0" ]; then
    [ "${RESTORE_FORCE:-0}" = "1" ] \
        || die "the target database holds $tables tables; restore into an empty database or set RESTORE_FORCE=1 to replace them"
    clean="--clean --if-exists"
fi
# shellcheck disable=SC2086
pg_restore --no-owner --no-privileges --exit-on-error $clean -d "$DATABASE_URL" "$backup/postgres.dump" \
    || die "pg_restore failed"

status=0
while read -r what table expected; do
    [ "$what" = "table" ] || continue
    actual=$(psql "$DATABASE_URL" -X -q -At -v ON_ERROR_STOP=1 -c "SELECT count(*) FROM $table")
    if [ "$actual" != "$expected" ]; then
        echo "restore: $table has $actual rows, the backup had $expected" >&2
        status=1
    fi
done < "$backup/MANIFEST"
[ "$status" = 0 ] || die "restored row counts differ from the MANIFEST"
echo "restore: Postgres restored from $backup (row counts match the MANIFEST)"

if [ -n "${REDIS_DATA_DIR:-}" ]; then
    [ -d "$REDIS_DATA_DIR" ] || die "REDIS_DATA_DIR $REDIS_DATA_DIR is not a folder"
    aof_dir="$REDIS_DATA_DIR/${REDIS_AOF_DIRNAME:-appendonlydir}"
    aof_name=${REDIS_AOF_FILENAME:-appendonly.aof}
    # For `appendonly no`: the snapshot Redis loads at start.
    cp "$backup/redis.rdb" "$REDIS_DATA_DIR/dump.rdb.tmp"
    mv "$REDIS_DATA_DIR/dump.rdb.tmp" "$REDIS_DATA_DIR/dump.rdb"
    # For `appendonly yes` (the stack's redis.conf): Redis 7 loads only its append-only files
    # then, so the snapshot becomes the base of a fresh multi-part AOF, named by its manifest.
    rm -rf "$aof_dir"
    mkdir -p "$aof_dir"
    cp "$backup/redis.rdb" "$aof_dir/$aof_name.1.base.rdb"
    printf 'file %s seq 1 type b\n' "$aof_name.1.base.rdb" > "$aof_dir/$aof_name.manifest"
    # Written as root (the backup container), read and appended to by the Redis server's own
    # user: the files take the data folder's owner, or Redis cannot open its next AOF file.
    if [ "$(id -u)" = 0 ]; then
        owner=$(stat -c '%u:%g' "$REDIS_DATA_DIR")
        chown "$owner" "$REDIS_DATA_DIR/dump.rdb"
        chown -R "$owner" "$aof_dir"
    fi
    echo "restore: Redis snapshot written to $REDIS_DATA_DIR (dump.rdb and $aof_dir); start Redis now"
else
    echo "restore: REDIS_DATA_DIR not set: Redis not restored (the snapshot is $backup/redis.rdb)" >&2
fi
