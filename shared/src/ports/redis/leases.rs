//! Partition leases on Redis ([`WorkQueue::lease_round`](crate::ports::WorkQueue::lease_round)):
//! one Lua script, so a round is atomic and takes one round trip. Members live in a sorted set
//! scored by their expiry; each lease is a plain key holding its holder's name with a TTL, so
//! an operator can read both with `redis-cli` (`ZRANGE`, `GET`, `PTTL`). Times are the Redis
//! server's (`TIME`), so the processes' clocks never have to agree.

use std::time::Duration;

use fred::prelude::*;

use super::unavailable;
use crate::error::{Error, Result};
use crate::ports::LeaseRound;

/// KEYS[1] the member set, KEYS[2..] the leases; ARGV: the consumer, the TTL in ms (0 leaves),
/// and one `1` or `0` per lease for wanted or not.
const ROUND: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local me = ARGV[1]
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if ttl > 0 then
  redis.call('ZADD', KEYS[1], now + ttl, me)
  redis.call('PEXPIRE', KEYS[1], ttl * 2)
else
  redis.call('ZREM', KEYS[1], me)
end
local held = {}
for i = 2, #KEYS do
  local want = ttl > 0 and string.sub(ARGV[3], i - 1, i - 1) == '1'
  local current = redis.call('GET', KEYS[i])
  if want and ((not current) or current == me) then
    redis.call('SET', KEYS[i], me, 'PX', ttl)
    table.insert(held, i - 2)
  elseif current == me then
    redis.call('DEL', KEYS[i])
  end
end
return {redis.call('ZRANGE', KEYS[1], 0, -1), held}
"#;

/// One lease round for `consumer` in the member set `group`.
pub(super) async fn round(
    client: &Client,
    group: &str,
    consumer: &str,
    ttl: Duration,
    leases: &[String],
    wanted: &[bool],
) -> Result<LeaseRound> {
    let mut keys = Vec::with_capacity(leases.len() + 1);
    keys.push(group.to_owned());
    keys.extend(leases.iter().cloned());
    let mask: String = (0..leases.len())
        .map(|index| {
            if wanted.get(index).copied().unwrap_or(false) {
                '1'
            } else {
                '0'
            }
        })
        .collect();
    let ttl_ms = ttl.as_millis().min(u128::from(u32::MAX)).to_string();
    let reply: Value = client
        .eval(ROUND, keys, vec![consumer.to_owned(), ttl_ms, mask])
        .await
        .map_err(unavailable)?;
    let mut parts = reply.into_array().into_iter();
    let (Some(members), Some(held)) = (parts.next(), parts.next()) else {
        return Err(Error::unavailable(
            "redis",
            "the lease script answered without its members and leases",
        ));
    };
    let mut members: Vec<String> = members
        .into_array()
        .into_iter()
        .filter_map(|member| member.as_string())
        .collect();
    members.sort_unstable();
    let held = held
        .into_array()
        .into_iter()
        .filter_map(|index| index.as_u64())
        .filter_map(|index| usize::try_from(index).ok())
        .filter(|index| *index < leases.len())
        .collect();
    Ok(LeaseRound { members, held })
}
