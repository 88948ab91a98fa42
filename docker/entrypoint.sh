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
exec /usr/local/bin/tge-swarm "$@"
