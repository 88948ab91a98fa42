#!/bin/sh
# Entry point of the Debian-built Postgres image (docker/images/postgres.Dockerfile): the part
# of the official image's behaviour the stack relies on, written for Debian's packages.
#   First start (no PG_VERSION in PGDATA): initdb with POSTGRES_USER (default postgres) and
#   POSTGRES_PASSWORD (required), password authentication over the network, POSTGRES_DB
#   (default: the user's name) created, then every /docker-entrypoint-initdb.d/*.sql run in it
#   by psql with ON_ERROR_STOP, on a server that listens only on its Unix socket.
#   Every start: `postgres ...` runs as the postgres user, listening on every address.
set -eu

PGDATA="${PGDATA:-/var/lib/postgresql/data}"
export PGDATA

if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 0700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ "${1:-}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
    : "${POSTGRES_PASSWORD:?postgres image: set POSTGRES_PASSWORD (the stack reads it from docker/.env)}"
    user="${POSTGRES_USER:-postgres}"
    db="${POSTGRES_DB:-$user}"
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    initdb --username="$user" --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 > /dev/null
    rm -f "$pwfile"
    {
        echo "listen_addresses = '*'"
        echo "unix_socket_directories = '/var/run/postgresql'"
    } >> "$PGDATA/postgresql.conf"
    echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
    pg_ctl -D "$PGDATA" -w -o "-c listen_addresses=''" start > /dev/null
    if [ "$db" != postgres ]; then
        psql -X -v ON_ERROR_STOP=1 -U "$user" -d postgres -q -c "CREATE DATABASE \"$db\""
    fi
    for script in /docker-entrypoint-initdb.d/*.sql; do
        [ -e "$script" ] || continue
        echo "postgres image: running $script"
        psql -X -v ON_ERROR_STOP=1 -U "$user" -d "$db" -q -f "$script"
    done
    pg_ctl -D "$PGDATA" -m fast -w stop > /dev/null
    echo "postgres image: cluster initialised in $PGDATA"
fi

exec "$@"
