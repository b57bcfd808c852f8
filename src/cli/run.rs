//! `poststelle run`: the daemon.
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::runtime::Builder;
use tokio::signal::unix::{SignalKind, signal};

use super::{Access, Global, load_config, make_reply_key, open_store, runtime};

/// Runs the daemon on a multi-threaded runtime until SIGTERM or SIGINT.
pub(super) fn run(g: &Global) -> Result<ExitCode> {
    let mut cfg = load_config(g)?;
    runtime(Builder::new_multi_thread())?.block_on(async {
        let store = open_store(&cfg, Access::Create).await?;
        make_reply_key(&mut cfg)?;
        let cfg = Arc::new(cfg);
        // Installed before the daemon starts, so that a SIGTERM sent right after start-up
        // shuts it down instead of killing the process.
        let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
        // Logged under the binary's name as before the CLI moved into modules, so that log
        // filters and searches keep finding it.
        let stop = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!(target: "poststelle", "SIGTERM received"),
                _ = tokio::signal::ctrl_c() => tracing::info!(target: "poststelle", "SIGINT received"),
            }
        };
        poststelle::app::run(cfg.clone(), store, stop).await?;
        Ok(ExitCode::SUCCESS)
    })
}
