//! Support for the figures that run the real `tge-swarm` binary: finding it, starting a role
//! with a config file, reading its RSS and its Prometheus metrics.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use swarm_shared::config::Config;

/// The release `tge-swarm` beside this harness (`scripts/bench.sh` builds both).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let path = exe.parent().unwrap().join("tge-swarm");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --release -p swarm-queen --bin tge-swarm` (scripts/bench.sh does)",
        path.display()
    );
    path
}

/// A free loopback port.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Writes `config` as the TOML file the processes read.
pub fn write_config(dir: &Path, config: &Config) -> PathBuf {
    let path = dir.join("tge-swarm.toml");
    std::fs::write(&path, toml::to_string(config).unwrap()).unwrap();
    path
}

/// A running `tge-swarm` process, killed when dropped.
pub struct Process {
    pub child: Child,
    pub name: String,
}

impl Process {
    /// Starts `tge-swarm <args>` with `env`, logging to `<dir>/<name>.log`.
    pub fn start(dir: &Path, name: &str, args: &[&str], env: &[(&str, String)]) -> Process {
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let mut command = Command::new(binary());
        command
            .args(args)
            .env_remove("TGE_SWARM_CONSUL_URL")
            .env("TGE_SWARM_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        for (key, value) in env {
            command.env(key, value);
        }
        Process {
            child: command.spawn().unwrap(),
            name: name.to_owned(),
        }
    }

    /// Starts `tge-swarm run` (everything in one process) with the config file at `config`
    /// and the harness' admin key.
    pub fn run_swarm(dir: &Path, config: &Path) -> Process {
        Process::start(
            dir,
            "run",
            &["run"],
            &[
                ("TGE_SWARM_CONFIG", config.display().to_string()),
                ("TGE_SWARM_ADMIN_KEY", swarm_tests::ADMIN_KEY.to_owned()),
            ],
        )
    }

    /// Resident set size in bytes (`VmRSS`).
    pub fn rss(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_else(|err| panic!("{} is gone: {err}", self.name));
        let line = status
            .lines()
            .find(|line| line.starts_with("VmRSS:"))
            .expect("VmRSS in /proc/<pid>/status");
        let kilobytes: u64 = line
            .split_whitespace()
            .nth(1)
            .and_then(|value| value.parse().ok())
            .expect("VmRSS in kB");
        kilobytes * 1024
    }

    /// Panics with the log's tail if the process has exited.
    pub fn check_alive(&mut self, dir: &Path) {
        if let Some(status) = self.child.try_wait().unwrap() {
            let log =
                std::fs::read_to_string(dir.join(format!("{}.log", self.name))).unwrap_or_default();
            let tail: String = log
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n");
            panic!("{} exited with {status}:\n{tail}", self.name);
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// GETs `url` until it answers 2xx or `limit` passes.
pub async fn wait_http(http: &reqwest::Client, url: &str, limit: Duration) {
    let started = Instant::now();
    loop {
        if let Ok(response) = http.get(url).send().await
            && response.status().is_success()
        {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "{url} did not answer within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The sum of every sample of `metric` (any labels) whose label set contains `labels`, from
/// Prometheus' text format.
pub fn metric_sum(text: &str, metric: &str, labels: &str) -> f64 {
    let mut sum = 0.0;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(metric) else {
            continue;
        };
        if !(rest.starts_with('{') || rest.starts_with(' ')) || !rest.contains(labels) {
            continue;
        }
        if let Some(value) = rest
            .rsplit(' ')
            .next()
            .and_then(|value| value.parse::<f64>().ok())
        {
            sum += value;
        }
    }
    sum
}

/// Empties the Redis database of `url` (a figure's own database), so nothing of an earlier run
/// is recovered.
pub fn flush_redis(url: &str) {
    let status = Command::new("redis-cli")
        .args(["-u", url, "flushdb"])
        .stdout(Stdio::null())
        .status()
        .expect("redis-cli runs (package redis-tools)");
    assert!(status.success(), "flushing {url}");
}
