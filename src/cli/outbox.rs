//! `poststelle outbox …`: outgoing mail.
use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result};
use poststelle::config::Config;
use poststelle::outbox::sender::{Mailer, Sender};
use poststelle::store::Store;
use poststelle::store::outbox::OutboxState;
use poststelle::ticket::ops::{self, OutboxView};

use super::OutboxCmd;
use super::output::{line, when};

pub(super) async fn outbox(cfg: &Config, store: &Store, cmd: &OutboxCmd) -> Result<ExitCode> {
    match cmd {
        OutboxCmd::List { state, json } => {
            let state: Option<OutboxState> = state.map(Into::into);
            let rows = ops::list_outbox(store, state, None).await?;
            let mut out = std::io::stdout().lock();
            if *json {
                for r in &rows {
                    writeln!(out, "{}", serde_json::to_string(r)?)?;
                }
            } else if rows.is_empty() {
                match state {
                    Some(s) => writeln!(out, "no outgoing mail in state {}", s.as_str())?,
                    None => writeln!(out, "no outgoing mail")?,
                }
            } else {
                write_list(&mut out, &rows)?;
            }
        }
        OutboxCmd::Retry { id } => {
            ops::retry_outbox(store, *id).await?;
            writeln!(
                std::io::stdout().lock(),
                "outgoing mail #{id} scheduled to be sent at once"
            )?;
        }
        OutboxCmd::Send { limit } => send(cfg, store, i64::from(*limit)).await?,
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
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{} sent, {} temporary failure(s), {} permanent failure(s)",
        s.sent, s.temporary_failures, s.permanent_failures
    )?;
    if let Some(dir) = mailer.sent_dir()
        && s.sent > 0
    {
        writeln!(out, "written to {}", dir.display())?;
    }
    Ok(())
}

/// One line per mail; when it is tried next only where it still waits to be sent.
fn write_list(out: &mut impl Write, rows: &[OutboxView]) -> Result<()> {
    writeln!(
        out,
        "{:<7} {:<18} {:<15} {:<17} {:>5}  {:<23}  TO — SUBJECT",
        "ID", "TICKET", "KIND", "STATE", "TRIES", "NEXT ATTEMPT"
    )?;
    let waiting = [
        OutboxState::Scheduled.as_str(),
        OutboxState::TemporaryFailure.as_str(),
    ];
    for r in rows {
        let next = if waiting.contains(&r.state.as_str()) {
            when(r.next_attempt)
        } else {
            "-".into()
        };
        let error = r
            .last_error
            .as_deref()
            .map(|e| format!("  [{}]", line(e)))
            .unwrap_or_default();
        writeln!(
            out,
            "#{:<6} {:<18} {:<15} {:<17} {:>5}  {:<23}  {} — {}{error}",
            r.id,
            r.ticket.as_deref().unwrap_or("-"),
            r.kind,
            r.state,
            r.attempts,
            next,
            line(&r.recipient),
            line(&r.subject),
        )?;
    }
    Ok(())
}
