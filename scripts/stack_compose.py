#!/usr/bin/env python3
"""Writes the Compose file of the stack test (scripts/check-stack.sh).

Reads the stack as `docker-compose config` resolves docker/docker-compose.yml with the test
override docker/stack-test.yml (given on stdin), and leaves out what cannot run on a machine
without an image registry, where Consul, Grafana and Jaeger cannot be installed:

* the services consul, grafana and jaeger, every `depends_on` naming them, and the swarm's
  TGE_SWARM_CONSUL_URL (the swarm then discovers its processes through Redis);
* the redis-cluster profile's services (the cluster is proven by scripts/check-ops.sh);
* every `build` section: images are built beforehand by scripts/images.sh, never here.

The monitoring profile's Prometheus and Alertmanager are kept and join the default set.
Compose 1.29 cannot remove a service or a dependency in an override file, hence this script.

    docker-compose -f docker/docker-compose.yml -f docker/stack-test.yml config \
        | python3 scripts/stack_compose.py > stack.yml
"""

import sys

import yaml

LEFT_OUT = {"consul", "grafana", "jaeger", "redis-1", "redis-2", "redis-3", "redis-cluster-init"}


def main() -> int:
    stack = yaml.safe_load(sys.stdin)
    if not isinstance(stack, dict) or "services" not in stack:
        print("stack_compose: stdin is not a Compose file (no services)", file=sys.stderr)
        return 1
    services = stack["services"]
    missing = LEFT_OUT - {"redis-1", "redis-2", "redis-3", "redis-cluster-init"} - set(services)
    if missing:
        print(f"stack_compose: the stack has no service {sorted(missing)}: update LEFT_OUT", file=sys.stderr)
        return 1
    for name in LEFT_OUT:
        services.pop(name, None)
    for name, service in services.items():
        service.pop("build", None)
        service.pop("profiles", None)
        depends = service.get("depends_on")
        if isinstance(depends, dict):
            for gone in LEFT_OUT & set(depends):
                del depends[gone]
            if not depends:
                del service["depends_on"]
        elif isinstance(depends, list):
            service["depends_on"] = [d for d in depends if d not in LEFT_OUT]
        env = service.get("environment")
        if isinstance(env, dict) and "TGE_SWARM_CONSUL_URL" in env:
            env["TGE_SWARM_CONSUL_URL"] = ""
        if not service.get("image"):
            print(f"stack_compose: service {name} names no image", file=sys.stderr)
            return 1
    volumes = stack.get("volumes") or {}
    for gone in ("consuldata", "grafanadata", "jaegerdata", "redis1data", "redis2data", "redis3data"):
        volumes.pop(gone, None)
    yaml.safe_dump(stack, sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
