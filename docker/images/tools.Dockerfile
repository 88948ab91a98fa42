# A small tools image for the stack test (scripts/check-stack.sh) and the `certs` one-shot
# service: Python (fixture feeds, webhook sink), openssl, curl.
ARG BASE=debian:bookworm-slim
FROM ${BASE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 openssl curl ca-certificates \
    && rm -rf /var/lib/apt/lists/*
CMD ["python3", "--version"]
