//! [`Registry`] on Redis: service discovery for a distributed swarm without Consul.
//!
//! Each service has two keys with the same hash tag, so that one script reaches both on a
//! Redis cluster: `swarm:registry:{<service>}:instances`, a hash of instance id to the
//! instance's JSON, and `swarm:registry:{<service>}:passing`, a sorted set of instance id to
//! the time its TTL check expires, in milliseconds of the Redis server's clock (`TIME`), so
//! the hosts' clocks never matter. `pass` writes the instance again with its new expiry: an
//! instance lost with Redis' data (a restart without persistence) is back at the next pass,
//! as the Consul adapter re-registers. `healthy` drops instances whose check expired, so
//! processes killed without deregistering do not accumulate.
//!
//! The service of an id is remembered by the process that registered it: `pass` and
//! `deregister` of an id this process never registered are answered as the embedded
//! registry answers them (not found, and nothing to do).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use fred::prelude::*;

use super::super::{Registry, ServiceInstance};
use super::{RedisSettings, unavailable};
use crate::error::{Error as SwarmError, Result};

/// Registers an instance: written, and not passing until its first pass.
const REGISTER: &str = r"
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
";

/// Passes an instance's check: written again, expiring `ARGV[3]` ms from the server's now.
const PASS: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[1])
return 1
";

/// Removes an instance.
const DEREGISTER: &str = r"
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
";

/// The instances whose check has not expired, after dropping those whose check has.
const HEALTHY: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. now)
if #expired > 0 then
  redis.call('HDEL', KEYS[1], unpack(expired))
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. now)
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], now, '+inf')
if #ids == 0 then
  return {}
end
return redis.call('HMGET', KEYS[1], unpack(ids))
";

/// An instance's JSON, as stored. A struct of strings, a list and a string map: serialising
/// it cannot fail.
fn json(instance: &ServiceInstance) -> String {
    serde_json::to_string(instance).unwrap_or_default()
}

fn keys(service: &str) -> Vec<String> {
    vec![
        format!("swarm:registry:{{{service}}}:instances"),
        format!("swarm:registry:{{{service}}}:passing"),
    ]
}

/// The registry on Redis.
pub struct RedisRegistry {
    client: Client,
    /// Instances this process registered, with their TTL.
    known: Mutex<HashMap<String, (ServiceInstance, Duration)>>,
}

impl std::fmt::Debug for RedisRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRegistry").finish_non_exhaustive()
    }
}

impl RedisRegistry {
    /// Connects; fails (naming the URL without its password) if Redis cannot be reached now.
    pub async fn connect(settings: &RedisSettings) -> Result<RedisRegistry> {
        Ok(RedisRegistry {
            client: settings.connect().await?,
            known: Mutex::new(HashMap::new()),
        })
    }

    fn known(&self, id: &str) -> Option<(ServiceInstance, Duration)> {
        self.known
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(id)
            .cloned()
    }

    async fn run(&self, script: &'static str, service: &str, args: Vec<String>) -> Result<Value> {
        self.client
            .eval::<Value, _, _, _>(script, keys(service), args)
            .await
            .map_err(unavailable)
    }
}

#[async_trait]
impl Registry for RedisRegistry {
    async fn register(&self, instance: &ServiceInstance, ttl: Duration) -> Result<()> {
        // Remembered first: if Redis is down now, the first pass after it is back writes it.
        self.known
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(instance.id.clone(), (instance.clone(), ttl));
        let args = vec![instance.id.clone(), json(instance)];
        self.run(REGISTER, &instance.service, args).await?;
        Ok(())
    }

    async fn deregister(&self, id: &str) -> Result<()> {
        let Some((instance, _)) = self.known(id) else {
            return Ok(());
        };
        self.run(DEREGISTER, &instance.service, vec![id.to_owned()])
            .await?;
        self.known
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .remove(id);
        Ok(())
    }

    async fn pass(&self, id: &str) -> Result<()> {
        let Some((instance, ttl)) = self.known(id) else {
            return Err(SwarmError::not_found("service instance", id));
        };
        let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let args = vec![id.to_owned(), json(&instance), ttl_ms.to_string()];
        self.run(PASS, &instance.service, args).await?;
        Ok(())
    }

    async fn healthy(&self, service: &str) -> Result<Vec<ServiceInstance>> {
        let found = self.run(HEALTHY, service, Vec::new()).await?;
        let values = match found {
            Value::Array(values) => values,
            Value::Null => Vec::new(),
            other => {
                return Err(SwarmError::unavailable(
                    "redis",
                    format!("the registry script answered {other:?}, not a list"),
                ));
            }
        };
        let mut healthy = Vec::with_capacity(values.len());
        for value in values {
            // An instance deregistered between the two reads of the script is nil: gone.
            let Some(text) = value.as_string() else {
                continue;
            };
            match serde_json::from_str::<ServiceInstance>(&text) {
                Ok(instance) if instance.service == service => healthy.push(instance),
                Ok(_) => {}
                Err(err) => {
                    // Written by something other than this adapter: skipped with a warning.
                    tracing::warn!(%service, error = %err, "unreadable registry entry skipped");
                }
            }
        }
        healthy.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(healthy)
    }
}
