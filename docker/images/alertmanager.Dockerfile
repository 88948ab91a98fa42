# Alertmanager from Debian's package (scripts/images.sh), at /bin/alertmanager where the
# stack's entry point (render.sh, then exec) expects the official image's binary.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends prometheus-alertmanager wget \
    && rm -rf /var/lib/apt/lists/* \
    && ln -s /usr/bin/prometheus-alertmanager /usr/local/bin/alertmanager \
    && ln -sf /usr/bin/prometheus-alertmanager /bin/alertmanager \
    && mkdir -p /alertmanager /etc/alertmanager \
    && chown prometheus:prometheus /alertmanager
WORKDIR /alertmanager
VOLUME ["/alertmanager"]
# The package's own system user: Debian gives it whatever uid is free, so it is named.
# hadolint ignore=DL3066
USER prometheus
EXPOSE 9093
ENTRYPOINT ["/usr/bin/prometheus-alertmanager"]
CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]
