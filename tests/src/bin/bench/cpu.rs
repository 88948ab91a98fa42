//! CPU time per process around a run, read from Linux's `/proc`, for the per-document profile
//! of the distributed pipeline: where the two cores go, process by process, Postgres and
//! Redis included. Written by hand: a few fields of `/proc/<pid>/stat`.

use serde_json::{Value, json};

use crate::process::Process;
use crate::round;

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on Linux).
const USER_HZ: f64 = 100.0;

/// `(command name, seconds of CPU)` of one process: its own user and system time and its
/// reaped children's (a Postgres backend that exited is counted in the postmaster's).
fn read(pid: &str) -> Option<(String, f64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let command = stat[open + 1..close].to_owned();
    let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // After `)`: state is index 0; utime, stime, cutime, cstime are 11 to 14.
    let ticks: f64 = fields
        .get(11..15)?
        .iter()
        .map(|field| field.parse::<f64>().ok())
        .sum::<Option<f64>>()?;
    Some((command, ticks / USER_HZ))
}

/// Seconds of CPU one process has used so far (its own and its reaped children's), 0 when
/// it is gone.
pub fn process_seconds(pid: u32) -> f64 {
    read(&pid.to_string()).map_or(0.0, |(_, seconds)| seconds)
}

/// The machine's CPU time so far, in seconds summed over its cores, from the first line of
/// `/proc/stat`: what the soak samples each minute to tell the machine's other load, and a
/// hypervisor's (steal), from the swarm's own.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Machine {
    /// Every state's time.
    pub total: f64,
    /// Idle, waiting for I/O excluded.
    pub idle: f64,
    /// Idle while some I/O was outstanding.
    pub iowait: f64,
    /// Taken by the hypervisor for other guests.
    pub steal: f64,
}

impl Machine {
    /// Reads `/proc/stat` now; `None` off Linux or if its first line is not the `cpu` total.
    pub fn now() -> Option<Self> {
        Self::parse(&std::fs::read_to_string("/proc/stat").ok()?)
    }

    /// Parses the text of `/proc/stat`: `cpu  user nice system idle iowait irq softirq
    /// steal guest guest_nice` in `USER_HZ` ticks (guest time is already in user time).
    fn parse(stat: &str) -> Option<Self> {
        let line = stat.lines().next()?.strip_prefix("cpu ")?;
        let ticks: Vec<f64> = line
            .split_whitespace()
            .map(|field| field.parse::<f64>().ok())
            .collect::<Option<_>>()?;
        let at = |index: usize| ticks.get(index).copied().unwrap_or(0.0) / USER_HZ;
        Some(Self {
            total: (0..8).map(at).sum(),
            idle: at(3),
            iowait: at(4),
            steal: at(7),
        })
    }

    /// Between `self` (earlier) and `later`: the cores kept busy (not idle, not waiting on
    /// I/O, not stolen), and the shares of all cores' time spent waiting on I/O and stolen.
    pub fn since(&self, later: &Self, seconds: f64) -> (f64, f64, f64) {
        let total = (later.total - self.total).max(f64::MIN_POSITIVE);
        let idle = later.idle - self.idle;
        let iowait = later.iowait - self.iowait;
        let steal = later.steal - self.steal;
        let busy = total - idle - iowait - steal;
        (busy / seconds, iowait / total, steal / total)
    }
}

/// Seconds of CPU used so far: each swarm process by name, every process named `postgres`
/// and every `redis-server` together, and this harness.
pub fn snapshot(processes: &[Process]) -> Vec<(String, f64)> {
    let mut entries: Vec<(String, f64)> = processes
        .iter()
        .map(|process| {
            let seconds = read(&process.child.id().to_string()).map_or(0.0, |(_, s)| s);
            (process.name.clone(), seconds)
        })
        .collect();
    let (mut postgres, mut redis) = (0.0, 0.0);
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
            else {
                continue;
            };
            match read(pid) {
                Some((command, seconds)) if command == "postgres" => postgres += seconds,
                Some((command, seconds)) if command == "redis-server" => redis += seconds,
                _ => {}
            }
        }
    }
    entries.push(("postgres (every backend)".into(), postgres));
    entries.push(("redis-server".into(), redis));
    entries.push(("bench harness".into(), read("self").map_or(0.0, |(_, s)| s)));
    entries
}

/// Microseconds of CPU per document of each entry between two snapshots, their sum, the
/// share of the machine's cores they kept busy, and the rate two cores allow at that cost.
pub fn profile(
    before: &[(String, f64)],
    after: &[(String, f64)],
    documents: usize,
    seconds: f64,
) -> Value {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    let documents = documents.max(1) as f64;
    let mut total = 0.0;
    let mut by_process = serde_json::Map::new();
    for ((name, then), (_, now)) in before.iter().zip(after) {
        let used = (now - then).max(0.0);
        total += used;
        by_process.insert(name.clone(), json!(round(used * 1e6 / documents)));
    }
    let per_document = total * 1e6 / documents;
    json!({
        "us_per_document": by_process,
        "total_us_per_document": round(per_document),
        "cores": cores,
        "busy_share_of_cores": round(total / (seconds * cores)),
        "ceiling_docs_per_second": round(cores * 1e6 / per_document.max(f64::MIN_POSITIVE)),
        "note": "CPU time from /proc/<pid>/stat (utime+stime+cutime+cstime) around the timed run, divided by its documents; the ceiling is what the cores give at that cost if every one were busy",
    })
}

#[cfg(test)]
mod tests {
    use super::Machine;

    #[test]
    fn the_machine_line_of_proc_stat_is_read_in_seconds_and_shares() {
        let earlier = Machine::parse("cpu  100 0 100 700 50 0 0 50 0 0\ncpu0 1 2 3\n").unwrap();
        assert_eq!(earlier.total, 10.0);
        assert_eq!(
            (earlier.idle, earlier.iowait, earlier.steal),
            (7.0, 0.5, 0.5)
        );
        // A minute later on two cores: 120 s in all, 30 of them busy, 6 waiting, 12 stolen.
        let later = Machine::parse("cpu  2100 0 1100 7900 650 0 0 1250 0 0\n").unwrap();
        let (busy_cores, iowait, steal) = earlier.since(&later, 60.0);
        assert!((busy_cores - 0.5).abs() < 1e-9, "{busy_cores}");
        assert!((iowait - 0.05).abs() < 1e-9, "{iowait}");
        assert!((steal - 0.1).abs() < 1e-9, "{steal}");
        assert_eq!(Machine::parse("intr 1 2 3\n"), None);
        assert_eq!(Machine::parse("cpu  1 two 3\n"), None);
    }
}
