# The backup service of the Compose stack: pg_dump/pg_restore (Postgres 15), redis-cli and the
# aws CLI for the optional S3 upload, with infrastructure/backup/*.sh on PATH.
FROM postgres:15-alpine
RUN apk add --no-cache redis aws-cli
COPY infrastructure/backup/backup.sh infrastructure/backup/restore.sh infrastructure/backup/schedule.sh /usr/local/bin/
ENTRYPOINT []
CMD ["schedule.sh"]
