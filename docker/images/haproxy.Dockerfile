# HAProxy from Debian's package (scripts/images.sh): the stack's haproxy.cfg at the official
# image's path, run in the foreground as `haproxy`, logging to stdout.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends haproxy wget \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /usr/local/etc/haproxy /var/lib/haproxy \
    && chown haproxy:haproxy /var/lib/haproxy
# The package's own system user: Debian gives it whatever uid is free, so it is named.
# hadolint ignore=DL3066
USER haproxy
EXPOSE 80 443 8404
STOPSIGNAL SIGUSR1
CMD ["haproxy", "-W", "-db", "-f", "/usr/local/etc/haproxy/haproxy.cfg"]
