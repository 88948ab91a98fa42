#!/bin/sh
# Entry point of the tge-swarm image: `docker run IMAGE queen | agent <kind> | memory-coordinator
# | run | migrate | check-config | ...`.
#
# A distributed process needs a node name that is unique in the swarm and stable across its
# restarts; the container's host name is both (one per replica, kept by `docker restart`), and
# peers (the queen's supervisor, Prometheus) reach the process by it on the stack's networks.
set -eu
if [ -z "${TGE_SWARM_NODE_NAME:-}" ]; then
    TGE_SWARM_NODE_NAME="$(hostname)"
    export TGE_SWARM_NODE_NAME
fi
# The Compose stack passes REDIS_PASSWORD and leaves TGE_SWARM_REDIS_URL empty unless the
# operator points it elsewhere (a Redis cluster): then the stack's own Redis is meant. The
# password is percent-encoded for the URL.
if [ -z "${TGE_SWARM_REDIS_URL:-}" ] && [ -n "${REDIS_PASSWORD:-}" ]; then
    password=$(printf '%s' "$REDIS_PASSWORD" | od -An -tx1 -v | tr -d ' \n' | sed 's/../%&/g')
    TGE_SWARM_REDIS_URL="redis://:${password}@redis:6379/0"
    export TGE_SWARM_REDIS_URL
fi
unset REDIS_PASSWORD
exec /usr/local/bin/tge-swarm "$@"
