//! `poststelle outbox …`: outgoing mail.
use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use poststelle::config::Config;
use poststelle::outbox::sender::{Mailer, Sender};
use poststelle::store::Store;
use poststelle::ticket::ops;

use super::OutboxCmd;

pub(super) async fn outbox(cfg: &Config, store: &Store, cmd: &OutboxCmd) -> Result<ExitCode> {
    match cmd {
        OutboxCmd::List { state, json } => {
            let rows = ops::list_outbox(store, state.as_deref(), None).await?;
            let mut out = std::io::stdout().lock();
            for r in &rows {
                if *json {
                    writeln!(out, "{}", serde_json::to_string(r)?)?;
                } else {
                    writeln!(
                        out,
                        "#{:<6} {:<18} {:<15} {:<17} {:>2}x  to {} — {}{}",
                        r.id,
                        r.ticket.as_deref().unwrap_or("-"),
                        r.kind,
                        r.state,
                        r.attempts,
                        r.recipient,
                        r.subject,
                        r.last_error
                            .as_deref()
                            .map(|e| format!("  [{e}]"))
                            .unwrap_or_default()
                    )?;
                }
            }
        }
        OutboxCmd::Retry { id } => {
            ops::retry_outbox(store, *id).await?;
            println!("outbox row {id} scheduled");
        }
        OutboxCmd::Send { limit } => send(cfg, store, *limit).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Sends what is due now through the configured transport, as the daemon's sender does.
async fn send(cfg: &Config, store: &Store, limit: i64) -> Result<()> {
    let mailer = Mailer::from_settings(&cfg.settings.outbox, &cfg.settings.data_dir)
        .context("setting up the mail transport")?;
    let sender = Sender {
        store,
        config: cfg,
        mailer: &mailer,
    };
    let s = sender.send_due(limit).await?;
    println!(
        "{} sent, {} temporary failure(s), {} permanent failure(s)",
        s.sent, s.temporary_failures, s.permanent_failures
    );
    if let Some(dir) = mailer.sent_dir()
        && s.sent > 0
    {
        println!("written to {}", dir.display());
    }
    Ok(())
}
