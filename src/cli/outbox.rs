//! `poststelle outbox …`: outgoing mail.
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use poststelle::config::Config;
use poststelle::outbox::sender::{Mailer, Outcome, Sender, Watch};
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
        OutboxCmd::Send { limit } => send(cfg, store, limit.map_or(i64::MAX, i64::from)).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Sends what is due now through the configured transport, as the daemon's sender does, with
/// a progress bar on a terminal when there is much to send. Ctrl-C claims nothing more and
/// finishes the mails in flight, so that none is sent twice later.
async fn send(cfg: &Config, store: &Store, limit: i64) -> Result<()> {
    let mailer = Mailer::from_settings(&cfg.settings.outbox, &cfg.settings.data_dir)
        .context("setting up the mail transport")?;
    let sender = Sender {
        store,
        config: cfg,
        mailer: &mailer,
    };
    // A sender of this host killed half-way (SIGKILL, a crash) left its claims: free them now
    // instead of after outbox.claim_seconds.
    let instance = cfg.settings.instance_id;
    let freed = store
        .release_dead_claims(|h| poststelle::holder::is_gone(h, instance))
        .await?;
    if freed > 0 {
        tracing::info!(
            rows = freed,
            "released outgoing mail claimed by a process that is gone"
        );
    }
    let pending = store.outbox_pending().await?.min(limit);
    let bar = progress_bar(pending);
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    let ctrl_c = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::Relaxed);
        }
    });
    let stop = || interrupted.load(Ordering::Relaxed);
    let each = |_: Outcome| bar.inc(1);
    let watch = Watch {
        stop: Some(&stop),
        each: Some(&each),
    };
    let s = sender.send_watched(limit, watch).await;
    ctrl_c.abort();
    bar.finish_and_clear();
    let s = s?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{} sent, {} temporary failure(s), {} permanent failure(s)",
        s.sent, s.temporary_failures, s.permanent_failures
    )?;
    if s.uncertain > 0 {
        writeln!(
            out,
            "{} uncertain: handed to the server without its answer recorded (a sender killed, \
             a connection broken), held so as not to send them twice; \
             `poststelle outbox list --state uncertain` lists them",
            s.uncertain
        )?;
    }
    if let Some(dir) = mailer.sent_dir()
        && s.sent > 0
    {
        writeln!(out, "written to {}", dir.display())?;
    }
    if stop() {
        writeln!(
            out,
            "interrupted: the rest waits in the outbox (poststelle outbox send, or the daemon)"
        )?;
    }
    Ok(())
}

/// A progress bar on a terminal when there is much to send; nothing on a pipe.
fn progress_bar(mails: i64) -> ProgressBar {
    let terminal = std::io::stderr().is_terminal() && std::io::stdout().is_terminal();
    if mails < 200 || !terminal {
        return ProgressBar::hidden();
    }
    let style = ProgressStyle::with_template("{bar:40} {pos}/{len} mails, {per_sec}, {eta} left")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(mails as u64).with_style(style)
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
