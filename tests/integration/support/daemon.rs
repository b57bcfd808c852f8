//! `poststelle run` as a process, and what tests of it wait for and talk to: the servers that
//! tests/run.sh starts (addresses in the environment), the metrics listener, the database.
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use poststelle::store::Store;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::bin::poststelle;
use super::config::TempConfig;

/// The address (or path) tests/run.sh exported in `var`.
pub fn env(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| {
        panic!(
            "${var} is not set: run the tests with tests/run.sh, which starts Dovecot and OpenSMTPD"
        )
    })
}

pub fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {addr}"))
}

/// A tag no earlier run used, for Message-IDs and subjects.
pub fn unique() -> String {
    format!("{}", jiff::Timestamp::now().as_microsecond())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

pub struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    pub fn start(cfg: &TempConfig, name: &str) -> Daemon {
        Self::start_with(cfg, name, &[])
    }

    pub fn start_with(cfg: &TempConfig, name: &str, envs: &[(&str, &str)]) -> Daemon {
        let log = cfg.dir.path().join(format!("{name}.log"));
        let child = poststelle()
            .arg("--config")
            .arg(cfg.path())
            .arg("run")
            .env("RUST_LOG", "info")
            .envs(envs.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start poststelle run");
        Daemon { child, log }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then the exit status (or `None` if it did not exit within `limit`).
    pub fn term(&mut self, limit: Duration) -> Option<ExitStatus> {
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(ok.success());
        let start = Instant::now();
        while start.elapsed() < limit {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// SIGTERM; the daemon must exit 0 within the 10 s deadline (plus slack).
    pub fn stop_ok(&mut self) {
        let status = self.term(Duration::from_secs(12));
        assert!(
            status.is_some_and(|s| s.success()),
            "exit 0 within the deadline: {status:?}\n{}",
            self.log()
        );
    }

    pub fn kill9(&mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reap");
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits for `cond`, failing the test with `what` after `limit`.
pub async fn until<F, Fut>(limit: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !cond().await {
        assert!(start.elapsed() < limit, "timed out after {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The SQLite store in a daemon's data directory.
pub async fn sqlite_of(cfg: &TempConfig) -> Store {
    Store::open(&Store::default_url(&cfg.dir.path().join("data")))
        .await
        .expect("store")
}

/// One HTTP/1.0 GET; returns status code and body.
pub async fn http_get(addr: &str, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.expect("HTTP connect");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut buf = String::new();
    s.read_to_string(&mut buf).await.expect("read");
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body.to_string())
}
