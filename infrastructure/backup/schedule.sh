#!/bin/sh
# Runs backup.sh every day at BACKUP_TIME (HH:MM, in the container's TZ, 02:00 by default).
# A failed backup is logged and retried the next day; the service keeps running.
set -eu
BACKUP_TIME=${BACKUP_TIME:-02:00}
case "$BACKUP_TIME" in
    [0-2][0-9]:[0-5][0-9]) ;;
    *) echo "schedule: BACKUP_TIME must be HH:MM, got '$BACKUP_TIME'" >&2; exit 1 ;;
esac
echo "schedule: daily backup at $BACKUP_TIME ($(date +%Z))"
last=""
while true; do
    today=$(date +%Y-%m-%d)
    if [ "$(date +%H:%M)" = "$BACKUP_TIME" ] && [ "$last" != "$today" ]; then
        last=$today
        backup.sh || echo "schedule: backup failed; next attempt tomorrow at $BACKUP_TIME" >&2
    fi
    sleep 20
done
