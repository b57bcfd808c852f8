//! The test harness: everything the integration tests share, by concern, so that a test file
//! holds tests and the set-up they have in common is written once.
//!
//! - [`config`]: the shipped configuration, configurations written for one test, and the
//!   configuration text of a daemon with IMAP mailboxes.
//! - [`mail`]: mail built byte by byte, requests, the shipped samples, what the classifier
//!   makes of a mail.
//! - [`db`]: a fresh database per test on SQLite and PostgreSQL (`both!`), scalar queries.
//! - [`tickets`]: tickets opened by filing a request and changed as `tickets set` does.
//! - [`bin`]: the `poststelle` binary as a command.
//! - [`daemon`]: `poststelle run` as a process, waiting for a condition, the servers that
//!   tests/run.sh starts.
//! - [`imap`]: IMAP from the test's side (also included by benches/daemon.rs).
use std::path::{Path, PathBuf};

pub mod alerts;
pub mod bin;
pub mod config;
pub mod daemon;
pub mod db;
pub mod imap;
pub mod mail;
pub mod tickets;

/// The repository: the shipped configuration, rules, templates and samples.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The test corpus of real-world mail (tests/corpus).
pub fn corpus() -> PathBuf {
    repo().join("tests/corpus")
}
