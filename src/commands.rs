//! The commands that work on the store: ingest, tickets, outbox, quarantine.
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::{Context, Result};
use poststelle::config::Config;
use poststelle::outbox::sender::{Mailer, Sender};
use poststelle::store::Store;
use poststelle::ticket::ingest::{Incoming, Ingestor, Outcome, SourceKey};
use poststelle::ticket::ops;

use crate::{IngestArgs, OutboxCmd, QuarantineCmd, TicketsCmd, expand};

pub async fn ingest(cfg: &Config, store: &Store, args: &IngestArgs) -> Result<ExitCode> {
    let mut files = Vec::new();
    let mut failed = false;
    for p in &args.paths {
        match expand(p) {
            Ok(f) => files.extend(f),
            Err(e) => {
                eprintln!("error: {e:#}");
                failed = true;
            }
        }
    }
    let bar = if files.len() >= 100 && std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new(files.len() as u64).with_style(
            indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} messages, {per_sec}, {eta} left",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        )
    } else {
        indicatif::ProgressBar::hidden()
    };
    let ingestor = Ingestor::new(store, cfg);
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for chunk in files.chunks(args.batch.max(1)) {
        let mut raws = Vec::with_capacity(chunk.len());
        for f in chunk {
            match std::fs::read(f) {
                Ok(raw) => {
                    let key = std::fs::canonicalize(f).unwrap_or_else(|_| f.clone());
                    raws.push((raw, SourceKey::file(&key.to_string_lossy()), f));
                }
                Err(e) => {
                    eprintln!("error: {}: {e}", f.display());
                    failed = true;
                }
            }
        }
        let items: Vec<Incoming<'_>> = raws
            .iter()
            .map(|(raw, key, _)| Incoming {
                raw,
                source: key.clone(),
            })
            .collect();
        let outcomes = ingestor.ingest_batch(&items).await?;
        for ((_, _, path), o) in raws.iter().zip(&outcomes) {
            *counts.entry(o.label()).or_default() += 1;
            if args.json {
                let mut v = serde_json::to_value(o)?;
                v["path"] = serde_json::json!(path.display().to_string());
                writeln!(out, "{v}")?;
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    if !args.json {
        let n = |k: &str| counts.get(k).copied().unwrap_or(0);
        writeln!(
            out,
            "{} new ticket(s), {} follow-up(s), {} note(s), {} ignored, {} duplicate(s), {} quarantined",
            n("new_ticket"),
            n("follow_up"),
            n("note"),
            n("ignored"),
            n("duplicate"),
            n("quarantined")
        )?;
    }
    out.flush()?;
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

pub async fn tickets(cfg: &Config, store: &Store, cmd: &TicketsCmd) -> Result<ExitCode> {
    match cmd {
        TicketsCmd::List { state, queue, json } => {
            let list = ops::list_tickets(store, state.as_deref(), queue.as_deref()).await?;
            let mut out = std::io::stdout().lock();
            if *json {
                for t in &list {
                    writeln!(out, "{}", serde_json::to_string(t)?)?;
                }
            } else {
                writeln!(
                    out,
                    "{:<18} {:<8} {:<20} {:>5} {:>8}  SUBJECT",
                    "NUMBER", "STATE", "QUEUE", "CLASS", "ARTICLES"
                )?;
                for t in &list {
                    writeln!(
                        out,
                        "{:<18} {:<8} {:<20} {:>5} {:>8}  {}",
                        t.number, t.state, t.queue, t.severity, t.articles, t.subject
                    )?;
                }
            }
        }
        TicketsCmd::Show { number, json } => {
            let t = ops::show_ticket(store, number).await?;
            let mut out = std::io::stdout().lock();
            if *json {
                writeln!(out, "{}", serde_json::to_string_pretty(&t)?)?;
            } else {
                let s = &t.summary;
                writeln!(
                    out,
                    "Ticket {}  [{}]  queue {}  class {}",
                    s.number, s.state, s.queue, s.severity
                )?;
                writeln!(out, "Subject:   {}", s.subject)?;
                writeln!(out, "Requester: {}", s.requester)?;
                writeln!(out, "Created:   {}", s.created)?;
                if let Some(l) = &s.linked_to {
                    writeln!(out, "Linked to: {l}")?;
                }
                if let Some(c) = &t.sla {
                    writeln!(
                        out,
                        "Deadline:  {} (class {}, calendar {}; warning at {})",
                        c.due, c.class, c.calendar, c.warn_at
                    )?;
                    match (&c.reacted, c.met) {
                        (Some(at), Some(met)) => writeln!(
                            out,
                            "Reaction:  {at} by {} — {} after {} min of service time",
                            c.reacted_by.as_deref().unwrap_or("?"),
                            if met { "met" } else { "BREACHED" },
                            c.service_used_minutes.unwrap_or(0)
                        )?,
                        _ => writeln!(out, "Reaction:  none yet")?,
                    }
                }
                writeln!(out, "\nArticles:")?;
                for a in &t.articles {
                    writeln!(
                        out,
                        "  {} {:<8} {} — {}",
                        a.created,
                        a.kind,
                        a.sender.as_deref().unwrap_or("-"),
                        a.subject
                    )?;
                }
                writeln!(out, "\nOutgoing mail:")?;
                for o in &t.outbox {
                    writeln!(
                        out,
                        "  #{} {:<15} {:<17} to {} — {}",
                        o.id, o.kind, o.state, o.recipient, o.subject
                    )?;
                }
                writeln!(out, "\nAudit:")?;
                for a in &t.audit {
                    writeln!(
                        out,
                        "  {} {:<10} {:<18} {}",
                        a.at, a.actor, a.event, a.detail
                    )?;
                }
            }
        }
        TicketsCmd::Set {
            number,
            status,
            severity,
            queue,
            note,
            actor,
        } => {
            ops::set_ticket(
                store,
                cfg,
                number,
                ops::Change {
                    state: status.as_deref(),
                    severity: *severity,
                    queue: queue.as_deref(),
                    note: note.as_deref(),
                    actor,
                },
            )
            .await?;
            println!("ticket {number} updated");
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn outbox(cfg: &Config, store: &Store, cmd: &OutboxCmd) -> Result<ExitCode> {
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
        OutboxCmd::Send { limit } => {
            let mailer = Mailer::from_settings(&cfg.settings.outbox, &cfg.settings.data_dir)
                .context("setting up the mail transport")?;
            let sender = Sender {
                store,
                config: cfg,
                mailer: &mailer,
            };
            let s = sender.send_due(*limit).await?;
            println!(
                "{} sent, {} temporary failure(s), {} permanent failure(s)",
                s.sent, s.temporary_failures, s.permanent_failures
            );
            if let Some(dir) = mailer.sent_dir()
                && s.sent > 0
            {
                println!("written to {}", dir.display());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn quarantine(cfg: &Config, store: &Store, cmd: &QuarantineCmd) -> Result<ExitCode> {
    match cmd {
        QuarantineCmd::List { json } => {
            for q in ops::list_quarantine(store).await? {
                if *json {
                    println!("{}", serde_json::to_string(&q)?);
                } else {
                    println!(
                        "#{:<6} {} {:>9} bytes  {}  {}",
                        q.id, q.received, q.size, q.source, q.reason
                    );
                }
            }
        }
        QuarantineCmd::Show { id } => {
            let bytes = ops::quarantined_bytes(store, *id).await?;
            std::io::stdout().lock().write_all(&bytes)?;
        }
        QuarantineCmd::Replay { id } => {
            let outcome = ops::replay_quarantined(store, cfg, *id).await?;
            println!("{}", serde_json::to_string(&outcome)?);
            if matches!(outcome, Outcome::Quarantined { .. }) {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
