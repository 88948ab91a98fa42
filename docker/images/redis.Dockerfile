# Redis from Debian's package, for the Compose stack on machines that build every image from
# Debian's packages (scripts/images.sh). Runs as the official image does: as `redis`, in /data
# (the stack's redis.conf keeps its AOF and snapshots in the working directory).
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends redis-server redis-tools \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /data /usr/local/etc/redis \
    && chown redis:redis /data
WORKDIR /data
VOLUME ["/data"]
# The package's own system user: Debian gives it whatever uid is free, so it is named.
# hadolint ignore=DL3066
USER redis
EXPOSE 6379
CMD ["redis-server"]
