//! This process's CPU and memory use, for the scaling triggers (CPU above 80 % for 10 min,
//! memory above 90 % for 5 min). Read from Linux's `/proc` (and the cgroup v2 memory limit when the process
//! runs in a container). Written by hand: two numbers from three small text files do not
//! justify a system-information crate, and `unsafe` (for `sysconf`) is forbidden here.
//! Elsewhere than Linux both readings are `None` and those triggers never fire.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Clock ticks per second of `/proc/<pid>/stat` times: `USER_HZ`, fixed at 100 by the Linux
/// ABI on every architecture tge-swarm ships for.
const USER_HZ: f64 = 100.0;

/// Readings are refreshed at most this often, however many actors ask.
const REFRESH: Duration = Duration::from_secs(1);

/// One reading.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ProcessLoad {
    /// CPU time over wall time since the previous reading, as a percentage of all cores.
    pub cpu_percent: Option<f64>,
    /// Resident memory as a percentage of the limit (cgroup `memory.max`, else `MemTotal`).
    pub memory_percent: Option<f64>,
}

struct Sampler {
    last: Option<(Instant, f64)>,
    reading: ProcessLoad,
    read_at: Option<Instant>,
}

static SAMPLER: Mutex<Sampler> = Mutex::new(Sampler {
    last: None,
    reading: ProcessLoad {
        cpu_percent: None,
        memory_percent: None,
    },
    read_at: None,
});

/// Seconds of CPU (user + system) this process has used.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) may hold spaces; fields count from after its `)`.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After `)`: state is index 0, so utime (field 14) is index 11 and stime index 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// Parses `Key:   123 kB` from a `/proc` status-style file, in bytes.
fn kib_field(text: &str, key: &str) -> Option<f64> {
    let line = text.lines().find(|line| line.starts_with(key))?;
    let value: f64 = line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(value * 1024.0)
}

fn memory_percent() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let rss = kib_field(&status, "VmRSS:")?;
    let cgroup_limit = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|text| text.trim().parse::<f64>().ok());
    let limit = match cgroup_limit {
        Some(limit) => limit,
        None => kib_field(&std::fs::read_to_string("/proc/meminfo").ok()?, "MemTotal:")?,
    };
    (limit > 0.0).then(|| rss * 100.0 / limit)
}

/// The process's load now (cached for a second).
pub fn process_load() -> ProcessLoad {
    let now = Instant::now();
    let mut sampler = SAMPLER.lock().unwrap_or_else(|poison| poison.into_inner());
    if sampler
        .read_at
        .is_some_and(|at| now.saturating_duration_since(at) < REFRESH)
    {
        return sampler.reading;
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let cpu = cpu_seconds();
    let cpu_percent = match (sampler.last, cpu) {
        (Some((then, before)), Some(used)) => {
            let wall = now.saturating_duration_since(then).as_secs_f64();
            (wall > 0.0).then(|| ((used - before).max(0.0) * 100.0 / (wall * cores)).min(100.0))
        }
        _ => None,
    };
    if let Some(used) = cpu {
        sampler.last = Some((now, used));
    }
    sampler.reading = ProcessLoad {
        cpu_percent,
        memory_percent: memory_percent(),
    };
    sampler.read_at = Some(now);
    sampler.reading
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(target_os = "linux")]
    fn readings_come_from_proc() {
        let first = process_load();
        assert!(first.memory_percent.is_some_and(|p| p > 0.0 && p < 100.0));
        // Burn a little CPU, then read again past the refresh interval.
        std::thread::sleep(REFRESH);
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert_ne!(x, 1);
        let second = process_load();
        let cpu = second
            .cpu_percent
            .expect("a second reading has a CPU figure");
        assert!((0.0..=100.0).contains(&cpu), "{cpu}");
    }

    #[test]
    fn status_fields_parse() {
        let text = "Name:\tx\nVmRSS:\t    2072 kB\n";
        assert_eq!(kib_field(text, "VmRSS:"), Some(2072.0 * 1024.0));
        assert_eq!(kib_field(text, "VmSwap:"), None);
    }
}
