# Prometheus from Debian's package (scripts/images.sh). The stack passes its flags as the
# command; data goes to /prometheus, as in the official image.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends prometheus wget \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /prometheus /etc/prometheus \
    && chown prometheus:prometheus /prometheus
WORKDIR /prometheus
VOLUME ["/prometheus"]
# The package's own system user: Debian gives it whatever uid is free, so it is named.
# hadolint ignore=DL3066
USER prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
