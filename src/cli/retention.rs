//! `poststelle retention …`: apply the deletion concept now, or see what it is.
use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use jiff::Timestamp;
use poststelle::config::Config;
use poststelle::jobs::retention::{self, Options, Report};
use poststelle::store::Store;
use poststelle::store::retention as sql;

use super::RetentionCmd;
use super::output::when;

pub(super) async fn retention(cfg: &Config, store: &Store, cmd: &RetentionCmd) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match cmd {
        RetentionCmd::Run {
            dry_run,
            vacuum,
            json,
            now,
            actor,
        } => {
            let now = now.unwrap_or_else(Timestamp::now);
            let opts = Options {
                dry_run: *dry_run,
                ..Options::default()
            };
            let report = retention::run(store, cfg, now, opts, &actor.actor, None).await?;
            let vacuumed = if *vacuum {
                Some(vacuum_store(store).await?)
            } else {
                None
            };
            if *json {
                let mut v = serde_json::to_value(&report)?;
                if let Some((before, after)) = vacuumed {
                    v["vacuum"] =
                        serde_json::json!({ "bytes_before": before, "bytes_after": after });
                }
                writeln!(out, "{v}")?;
            } else {
                write_report(&mut out, cfg, &report)?;
                if let Some((before, after)) = vacuumed {
                    writeln!(out, "VACUUM: {} → {}", mb(before), mb(after))?;
                }
            }
        }
        RetentionCmd::Status { json } => {
            let last = sql::last_run(store, retention::JOB).await?;
            let r = &cfg.settings.retention;
            if *json {
                let queues: Vec<_> = cfg
                    .settings
                    .queues
                    .iter()
                    .map(|q| {
                        serde_json::json!({
                            "queue": q.name,
                            "days": q.retention.days.unwrap_or(r.days),
                            "anonymise_after_days": q.retention.anonymise_after_days.unwrap_or(r.anonymise_after_days),
                        })
                    })
                    .collect();
                let v = serde_json::json!({
                    "enabled": retention::enabled(cfg),
                    "run_at": r.run_at.to_string(),
                    "quarantine_days": r.quarantine_days,
                    "sent_mail_days": r.sent_mail_days,
                    "queues": queues,
                    "last_run": last.as_ref().map(|(s, f, sum)| serde_json::json!({
                        "started": poststelle::time::stored(*s),
                        "finished": f.map(poststelle::time::stored),
                        "summary": sum.as_deref().and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok()),
                    })),
                });
                writeln!(out, "{v}")?;
            } else {
                if !retention::enabled(cfg) {
                    writeln!(
                        out,
                        "retention is off: {} keeps everything ([retention] in README \"Retention and data subject requests\")",
                        cfg.origin
                    )?;
                }
                let days = |d: u32| {
                    if d == 0 {
                        "for ever".to_string()
                    } else {
                        format!("{d} days")
                    }
                };
                writeln!(
                    out,
                    "{:<22} {:<14} {:<14}",
                    "QUEUE", "TEXTS KEPT", "ANONYMISED AFTER"
                )?;
                for q in &cfg.settings.queues {
                    writeln!(
                        out,
                        "{:<22} {:<14} {:<14}",
                        q.name,
                        days(q.retention.days.unwrap_or(r.days)),
                        days(
                            q.retention
                                .anonymise_after_days
                                .unwrap_or(r.anonymise_after_days)
                        ),
                    )?;
                }
                writeln!(
                    out,
                    "mail on no ticket: {}; texts of sent mail: {}",
                    days(r.quarantine_days),
                    days(r.sent_mail_days)
                )?;
                writeln!(
                    out,
                    "the daemon runs it daily at {} (Europe/Berlin)",
                    r.run_at.strftime("%H:%M")
                )?;
                match last {
                    None => writeln!(out, "it has not run yet")?,
                    Some((started, finished, _)) => writeln!(
                        out,
                        "last run started {}{}",
                        when(poststelle::time::stored(started)),
                        match finished {
                            Some(f) => format!(", finished {}", when(poststelle::time::stored(f))),
                            None => ", not finished (stopped, or running now)".into(),
                        }
                    )?,
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `VACUUM` and the file's size before and after.
pub(super) async fn vacuum_store(store: &Store) -> Result<(u64, u64)> {
    let size = || {
        store
            .sqlite_file()
            .and_then(|p| std::fs::metadata(p).ok())
            .map_or(0, |m| m.len())
    };
    let before = size();
    sql::vacuum(store).await?;
    Ok((before, size()))
}

pub(super) fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1_000_000.0)
}

fn days(d: u32) -> String {
    if d == 0 {
        "kept".into()
    } else {
        format!("{d} d")
    }
}

fn write_report(out: &mut impl Write, cfg: &Config, r: &Report) -> Result<()> {
    writeln!(
        out,
        "retention as of {}{}",
        when(r.now),
        if r.dry_run {
            " — dry run: this would go, nothing was changed"
        } else {
            ""
        }
    )?;
    writeln!(
        out,
        "{:<22} {:>6} {:>6}  {:>8} {:>10} {:>10} {:>9} {:>8} {:>11}",
        "QUEUE",
        "TEXTS",
        "ANON",
        "TICKETS",
        "RAW MAILS",
        "RAW MB",
        "ARTICLES",
        "MAILS",
        "ANONYMISED"
    )?;
    for q in &r.queues {
        let name = q.queue.clone().unwrap_or_else(|| {
            if r.queues.len() > 1 {
                "(the others)".into()
            } else {
                "(all queues)".into()
            }
        });
        writeln!(
            out,
            "{:<22} {:>6} {:>6}  {:>8} {:>10} {:>10.1} {:>9} {:>8} {:>11}",
            name,
            days(q.days),
            days(q.anonymise_after_days),
            q.purged.tickets,
            q.purged.raw_messages,
            q.purged.raw_bytes as f64 / 1_000_000.0,
            q.purged.articles,
            q.purged.outbox,
            q.anonymised
        )?;
    }
    let s = &cfg.settings.retention;
    if s.quarantine_days > 0 {
        writeln!(
            out,
            "mail on no ticket older than {} days: {} quarantined deleted, {} others' bytes deleted ({})",
            s.quarantine_days,
            r.quarantine_deleted,
            r.unfiled_purged,
            mb(r.unfiled_bytes.max(0) as u64)
        )?;
    }
    if s.sent_mail_days > 0 {
        writeln!(
            out,
            "texts of mail sent more than {} days ago: {}",
            s.sent_mail_days, r.sent_mail_purged
        )?;
    }
    if !r.dry_run {
        writeln!(
            out,
            "{} transaction(s) in {:.2} s{}",
            r.transactions,
            r.seconds,
            if r.interrupted {
                "; stopped before the end"
            } else {
                ""
            }
        )?;
    }
    if !retention::enabled(cfg) {
        writeln!(
            out,
            "retention is off in {}: nothing is ever deleted",
            cfg.origin
        )?;
    }
    Ok(())
}
