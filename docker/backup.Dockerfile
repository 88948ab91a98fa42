# The backup service of the Compose stack: pg_dump/pg_restore (Postgres 15) and redis-cli
# from Debian's packages, with infrastructure/backup/*.sh on PATH, and the aws CLI for the
# optional S3 upload (--build-arg AWS_CLI= leaves it out; backup.sh then refuses
# BACKUP_S3_URI with that reason). scripts/images.sh builds it on its own Debian base.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
ARG AWS_CLI=awscli
RUN apt-get update \
    && apt-get install -y --no-install-recommends postgresql-client-15 redis-tools ca-certificates ${AWS_CLI} \
    && rm -rf /var/lib/apt/lists/*
COPY infrastructure/backup/backup.sh infrastructure/backup/restore.sh infrastructure/backup/schedule.sh /usr/local/bin/
ENTRYPOINT []
CMD ["schedule.sh"]
