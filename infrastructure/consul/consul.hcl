# Consul agent of the tge-swarm stack: one server that is also the agent every swarm process
# registers with (TGE_SWARM_CONSUL_URL=http://consul:8500). For a production cluster run three
# servers (bootstrap_expect = 3, retry_join) and a client agent per host, and turn on ACLs
# (TGE_SWARM_CONSUL_TOKEN carries the token).
datacenter = "tge"
data_dir   = "/consul/data"
log_level  = "INFO"

server           = true
bootstrap_expect = 1
client_addr      = "0.0.0.0"

ui_config {
  enabled = true
}

ports {
  http = 8500
  dns  = 8600
}

# /v1/agent/metrics?format=prometheus, scraped by the `consul` job.
telemetry {
  prometheus_retention_time = "1h"
  disable_hostname          = true
}

# Instances of killed processes leave on their own (the swarm registers each with
# DeregisterCriticalServiceAfter = 1m); keep the catalog small.
reconnect_timeout = "8h"
