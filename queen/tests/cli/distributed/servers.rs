//! Private Redis and Postgres servers the tests can stop, kill and restart, and the
//! signals and file modes they need.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::*;

/// A redis-server of this test, persisting with an append-only file fsynced on every write.
pub(crate) struct PrivateRedis {
    port: u16,
    dir: PathBuf,
}

impl PrivateRedis {
    pub(crate) fn start(dir: &Path) -> PrivateRedis {
        let redis = PrivateRedis {
            port: free_port(),
            dir: dir.join("redis"),
        };
        std::fs::create_dir_all(&redis.dir).unwrap();
        redis.launch();
        redis
    }

    pub(crate) fn launch(&self) {
        run_quiet(
            Command::new("redis-server")
                .args(["--daemonize", "yes", "--bind", "127.0.0.1", "--save", ""])
                .args(["--appendonly", "yes", "--appendfsync", "always"])
                .arg("--port")
                .arg(self.port.to_string())
                .arg("--dir")
                .arg(&self.dir)
                .arg("--logfile")
                .arg(self.dir.join("redis.log")),
        );
        eventually(Duration::from_secs(10), "redis to answer", || {
            self.cli(&["ping"]).contains("PONG")
        });
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    pub(crate) fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .arg("-p")
            .arg(self.port.to_string())
            .args(args)
            .output()
            .expect("redis-cli runs");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// The entries of `queue` pending under `consumer` (empty text when none), in the queue
    /// and in its partitions (`{<queue>}:<p>`: the data quality queue is partitioned).
    pub(crate) fn pending(&self, queue: &str, consumer: &str) -> String {
        let partitions = self.cli(&["KEYS", &format!("{{{queue}}}:[0-9]*")]);
        let mut out = String::new();
        for stream in std::iter::once(queue).chain(partitions.lines().map(str::trim)) {
            if stream.is_empty() {
                continue;
            }
            let pending = self.cli(&["XPENDING", stream, "swarm", "-", "+", "10", consumer]);
            // A stream not read yet has no group: nothing pending there.
            if !pending.contains("NOGROUP") && !pending.starts_with("ERR") {
                out.push_str(&pending);
            }
        }
        out
    }

    /// `SHUTDOWN` (the AOF is already on disk), then waits until the port is closed.
    pub(crate) fn stop(&self) {
        let _ = self.cli(&["shutdown"]);
        eventually(Duration::from_secs(10), "redis to stop", || {
            std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err()
        });
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        let _ = self.cli(&["shutdown", "nosave"]);
    }
}

/// A Postgres cluster of this test.
pub(crate) struct PrivatePostgres {
    port: u16,
    data: PathBuf,
    bin: PathBuf,
    user: Option<String>,
}

impl PrivatePostgres {
    pub(crate) fn start(dir: &Path) -> PrivatePostgres {
        let bin = std::env::var("TGE_SWARM_TEST_PG_BIN").expect(
            "TGE_SWARM_TEST_PG_BIN is not set: run scripts/test.sh, which finds the Postgres binaries",
        );
        let user = std::env::var("TGE_SWARM_TEST_PG_USER").ok();
        let postgres = PrivatePostgres {
            port: free_port(),
            data: dir.join("pg"),
            bin: PathBuf::from(bin),
            user,
        };
        std::fs::create_dir_all(&postgres.data).unwrap();
        if let Some(user) = &postgres.user {
            // Postgres runs as its own user: it must reach and own its directory.
            set_mode(dir, 0o777);
            run_quiet(Command::new("chown").arg(user).arg(&postgres.data));
        }
        run_quiet(&mut postgres.command(
            "initdb",
            &[
                "-D",
                path_str(&postgres.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
            ],
        ));
        postgres.launch();
        postgres
    }

    pub(crate) fn command(&self, tool: &str, args: &[&str]) -> Command {
        let program = self.bin.join(tool);
        match &self.user {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(program).args(args);
                command
            }
            None => {
                let mut command = Command::new(program);
                command.args(args);
                command
            }
        }
    }

    pub(crate) fn launch(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            path_str(&self.data)
        );
        let log = self.data.join("log");
        run_quiet(&mut self.command(
            "pg_ctl",
            &[
                "-D",
                path_str(&self.data),
                "-o",
                &options,
                "-l",
                path_str(&log),
                "-w",
                "start",
            ],
        ));
    }

    pub(crate) fn stop(&self) {
        run_quiet(&mut self.command(
            "pg_ctl",
            &["-D", path_str(&self.data), "-m", "fast", "-w", "stop"],
        ));
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .command(
                "pg_ctl",
                &["-D", path_str(&self.data), "-m", "immediate", "stop"],
            )
            .output();
    }
}

pub(crate) fn signal(pid: u32, which: &str) {
    let _ = Command::new("kill")
        .arg(which)
        .arg(pid.to_string())
        .status();
}

pub(crate) fn path_str(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

pub(crate) fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}
