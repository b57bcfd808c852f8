//! Retention (issue 20, item 1): once a day the daemon deletes what the deletion concept says
//! may go — the texts of tickets closed longer than `retention.days` (or their queue's
//! `retention_days`), then the addresses, names and subjects of those closed longer than
//! `anonymise_after_days`, raw mail on no ticket after `quarantine_days`, and the texts of
//! sent mail after `sent_mail_days`. `poststelle retention run [--dry-run]` does the same on
//! demand, or counts what would go.
//!
//! Never stalls filing: the work is done in chunks of a hundred tickets (or a few hundred
//! mails), each in a transaction of its own, with a pause between them in which a mailbox's
//! batch takes the write lock (SQLite has one writer at a time). Every deletion is audited
//! with what kind of thing went and how much, never with what it said. On SQLite deleted
//! content is overwritten in the file (`secure_delete`) and the WAL truncated after a run, so
//! the bytes leave the disk without a `VACUUM`; that only gives the space back.
use std::time::{Duration, Instant};

use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use serde::Serialize;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, RetentionSettings};
use crate::store::audit::audit;
use crate::store::buffer::WriteBuffer;
use crate::store::retention::{self as sql, Counts, Queues, Step};
use crate::store::{Store, StoreError};

/// The job's name in `job_runs`.
pub const JOB: &str = "retention";

/// How the work is cut.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Count what would go and change nothing.
    pub dry_run: bool,
    /// Tickets per transaction (mails per transaction are four times as many).
    pub chunk: usize,
    /// Rest between two transactions, for the writers waiting behind them.
    pub pause: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            dry_run: false,
            chunk: DEFAULT_CHUNK,
            pause: DEFAULT_PAUSE,
        }
    }
}

/// A hundred tickets (a few hundred mails) per transaction keep it at a few tens of
/// milliseconds on SQLite, shorter than a mailbox batch of 100 mails.
const DEFAULT_CHUNK: usize = 100;
/// Long enough for a waiting mailbox batch to take the lock (the write gate is fair within
/// the process; another process polls with SQLite's busy handler, in steps of up to 100 ms).
const DEFAULT_PAUSE: Duration = Duration::from_millis(25);

/// What a run did (or, dry, would do) to the tickets of one queue, or of every queue without
/// periods of its own (`queue` None).
#[derive(Debug, Clone, Serialize)]
pub struct QueueReport {
    pub queue: Option<String>,
    /// 0: kept for ever.
    pub days: u32,
    pub anonymise_after_days: u32,
    /// Tickets closed before this lose their texts; before `anonymise_before` their
    /// addresses, names and subjects too.
    pub purge_before: Option<Timestamp>,
    pub anonymise_before: Option<Timestamp>,
    pub purged: Counts,
    pub anonymised: i64,
}

/// What a run did, or would do.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub now: Timestamp,
    pub queues: Vec<QueueReport>,
    /// Sum over the queues.
    pub purged: Counts,
    pub anonymised: i64,
    /// Quarantined mail deleted, and the bytes of other mail on no ticket.
    pub quarantine_deleted: i64,
    pub unfiled_purged: i64,
    pub unfiled_bytes: i64,
    /// Mails whose texts were deleted after `sent_mail_days`.
    pub sent_mail_purged: i64,
    pub transactions: usize,
    /// Stopped by shutdown before everything due was done.
    pub interrupted: bool,
    /// SQLite: whether the WAL could be truncated afterwards (a reader holding an old
    /// snapshot prevents it; the next checkpoint finishes it).
    pub wal_truncated: Option<bool>,
    pub seconds: f64,
}

impl Report {
    /// Whether anything went (or would).
    pub fn changed(&self) -> bool {
        self.purged.tickets
            + self.anonymised
            + self.quarantine_deleted
            + self.unfiled_purged
            + self.sent_mail_purged
            > 0
    }
}

/// Whether the configuration deletes anything at all.
pub fn enabled(config: &Config) -> bool {
    let r = &config.settings.retention;
    r.days + r.anonymise_after_days + r.quarantine_days + r.sent_mail_days > 0
        || config.settings.queues.iter().any(|q| {
            q.retention.days.unwrap_or(0) + q.retention.anonymise_after_days.unwrap_or(0) > 0
        })
}

/// One set of periods and the queues it applies to.
struct Group {
    queue: Option<String>,
    days: u32,
    anonymise: u32,
}

fn groups(config: &Config) -> (Vec<Group>, Vec<String>) {
    let r: &RetentionSettings = &config.settings.retention;
    let mut own = Vec::new();
    let mut out = Vec::new();
    for q in &config.settings.queues {
        if q.retention.days.is_some() || q.retention.anonymise_after_days.is_some() {
            own.push(q.name.clone());
            out.push(Group {
                queue: Some(q.name.clone()),
                days: q.retention.days.unwrap_or(r.days),
                anonymise: q
                    .retention
                    .anonymise_after_days
                    .unwrap_or(r.anonymise_after_days),
            });
        }
    }
    out.push(Group {
        queue: None,
        days: r.days,
        anonymise: r.anonymise_after_days,
    });
    (out, own)
}

/// `days` calendar days in Berlin before `now` (a day across a clock change has 23 or 25
/// hours); `None` for 0, kept for ever.
pub fn before(now: Timestamp, days: u32, tz: &TimeZone) -> Result<Option<Timestamp>, StoreError> {
    if days == 0 {
        return Ok(None);
    }
    let z = now.to_zoned(tz.clone());
    Ok(Some(z.checked_sub(i64::from(days).days())?.timestamp()))
}

/// Applies retention as of `now` (or counts it, dry). `actor` is who the audit names;
/// `cancel` stops it between two transactions.
pub async fn run(
    store: &Store,
    config: &Config,
    now: Timestamp,
    opts: Options,
    actor: &str,
    cancel: Option<&CancellationToken>,
) -> Result<Report, StoreError> {
    let started = Instant::now();
    let tz = crate::time::berlin()?;
    let at = now.as_microsecond();
    let chunk = opts.chunk.max(1) as i64;
    let stopped = || cancel.is_some_and(CancellationToken::is_cancelled);
    let (groups, own) = groups(config);
    let mut report = Report {
        dry_run: opts.dry_run,
        now,
        queues: Vec::new(),
        purged: Counts::default(),
        anonymised: 0,
        quarantine_deleted: 0,
        unfiled_purged: 0,
        unfiled_bytes: 0,
        sent_mail_purged: 0,
        transactions: 0,
        interrupted: false,
        wal_truncated: None,
        seconds: 0.0,
    };
    let mut pause = false;
    for g in &groups {
        let queues = match &g.queue {
            Some(q) => Queues::Only(q),
            None => Queues::Except(&own),
        };
        let mut qr = QueueReport {
            queue: g.queue.clone(),
            days: g.days,
            anonymise_after_days: g.anonymise,
            purge_before: before(now, g.days, &tz)?,
            anonymise_before: before(now, g.anonymise, &tz)?,
            purged: Counts::default(),
            anonymised: 0,
        };
        // Texts first: anonymising comes later than purging (the configuration makes sure),
        // so the tickets it takes have lost their texts in the step before.
        for (step, cutoff) in [
            (Step::Purge, qr.purge_before),
            (Step::Anonymise, qr.anonymise_before),
        ] {
            let Some(cutoff) = cutoff else { continue };
            let cutoff = cutoff.as_microsecond();
            if opts.dry_run {
                let c = sql::count_due(store, step, queues, cutoff).await?;
                match step {
                    Step::Purge => qr.purged += c,
                    Step::Anonymise => qr.anonymised += c.tickets,
                }
                continue;
            }
            loop {
                if stopped() {
                    report.interrupted = true;
                    break;
                }
                if pause {
                    tokio::time::sleep(opts.pause).await;
                }
                pause = true;
                let mut tx = store.begin_write().await?;
                let due = sql::due_tickets(&mut tx, step, queues, cutoff, chunk).await?;
                if due.is_empty() {
                    tx.rollback().await?;
                    break;
                }
                let ids: Vec<i64> = due.iter().map(|t| t.id).collect();
                let mut buf = WriteBuffer::default();
                let purged = sql::purge_tickets(&mut tx, &ids, at).await?;
                let anonymised = match step {
                    Step::Anonymise => Some(sql::anonymise_tickets(&mut tx, &ids, at).await?),
                    Step::Purge => None,
                };
                for t in &due {
                    let p = purged.get(&t.id).copied().unwrap_or_default();
                    let mut detail = json!({
                        "queue": t.queue,
                        "closed_at": crate::time::stored(t.closed_at).to_string(),
                        "raw_messages": p.raw_messages, "bytes": p.raw_bytes,
                        "articles": p.articles, "attachments": p.attachments, "outbox": p.outbox,
                    });
                    let event = match (&anonymised, step) {
                        (Some(a), Step::Anonymise) => {
                            let a = a.get(&t.id).copied().unwrap_or_default();
                            detail["rule"] =
                                json!(format!("anonymise_after_days = {}", g.anonymise));
                            detail["anonymised"] = serde_json::to_value(a).unwrap_or_default();
                            "ticket_anonymised"
                        }
                        _ => {
                            detail["rule"] = json!(format!("retention_days = {}", g.days));
                            "ticket_purged"
                        }
                    };
                    audit(&mut buf, at, Some(t.id), None, actor, event, &detail);
                    tracing::info!(ticket = %t.number, queue = %t.queue, event, raw = p.raw_messages, bytes = p.raw_bytes, "retention");
                }
                sql::flush(&mut tx, store.backend(), &mut buf).await?;
                tx.commit().await?;
                report.transactions += 1;
                for p in purged.values() {
                    // A ticket anonymised but purged before counts only as anonymised.
                    if step == Step::Purge || p.raw_messages + p.articles + p.outbox > 0 {
                        qr.purged += *p;
                    }
                }
                if step == Step::Anonymise {
                    qr.anonymised += due.len() as i64;
                }
                if (due.len() as i64) < chunk {
                    break;
                }
            }
        }
        report.purged += qr.purged;
        report.anonymised += qr.anonymised;
        report.queues.push(qr);
    }

    let r = &config.settings.retention;
    if let Some(cutoff) = before(now, r.quarantine_days, &tz)? {
        let cutoff = cutoff.as_microsecond();
        if opts.dry_run {
            let (quarantined, others, bytes) = sql::count_unfiled(store, cutoff).await?;
            report.quarantine_deleted = quarantined;
            report.unfiled_purged = others;
            report.unfiled_bytes = bytes;
        } else {
            let days = r.quarantine_days;
            let c = Cut {
                cutoff,
                at,
                chunk: chunk * 4,
                days,
            };
            unfiled(store, &mut report, c, opts, actor, &stopped).await?;
        }
    }
    if let Some(cutoff) = before(now, r.sent_mail_days, &tz)? {
        let cutoff = cutoff.as_microsecond();
        if opts.dry_run {
            report.sent_mail_purged = sql::count_sent(store, cutoff).await?;
        } else {
            let days = r.sent_mail_days;
            let c = Cut {
                cutoff,
                at,
                chunk: chunk * 4,
                days,
            };
            sent(store, &mut report, c, opts, actor, &stopped).await?;
        }
    }
    if !opts.dry_run && report.changed() {
        report.wal_truncated = match store.backend() {
            crate::store::Backend::Sqlite => Some(sql::truncate_wal(store).await?),
            crate::store::Backend::Postgres => None,
        };
        let mut buf = WriteBuffer::default();
        let summary = summary(&report);
        audit(&mut buf, at, None, None, actor, "retention_run", &summary);
        let mut tx = store.begin_write().await?;
        sql::flush(&mut tx, store.backend(), &mut buf).await?;
        tx.commit().await?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// What the audit and `job_runs` keep of a run: counts only.
pub fn summary(r: &Report) -> serde_json::Value {
    json!({
        "purged": r.purged, "anonymised": r.anonymised,
        "quarantine_deleted": r.quarantine_deleted, "unfiled_purged": r.unfiled_purged,
        "unfiled_bytes": r.unfiled_bytes, "sent_mail_purged": r.sent_mail_purged,
        "transactions": r.transactions, "interrupted": r.interrupted,
    })
}

/// Where a step of mail cuts: before `cutoff`, at `at`, `chunk` mails a transaction, after
/// `days` (for the audit).
#[derive(Debug, Clone, Copy)]
struct Cut {
    cutoff: i64,
    at: i64,
    chunk: i64,
    days: u32,
}

async fn unfiled(
    store: &Store,
    report: &mut Report,
    Cut {
        cutoff,
        at,
        chunk,
        days,
    }: Cut,
    opts: Options,
    actor: &str,
    stopped: &(dyn Fn() -> bool + Sync),
) -> Result<(), StoreError> {
    loop {
        if stopped() {
            report.interrupted = true;
            return Ok(());
        }
        tokio::time::sleep(opts.pause).await;
        let mut tx = store.begin_write().await?;
        let rows = sql::due_unfiled(&mut tx, cutoff, chunk).await?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(());
        }
        sql::drop_raw(&mut tx, &rows, at).await?;
        let mut buf = WriteBuffer::default();
        for r in &rows {
            let deleted = r.outcome == "quarantined";
            let detail = json!({
                "raw_message": r.id, "outcome": r.outcome, "bytes": r.bytes,
                "received_at": crate::time::stored(r.received_at).to_string(),
                "rule": format!("quarantine_days = {days}"),
            });
            let (raw, event) = if deleted {
                (None, "raw_mail_deleted")
            } else {
                (Some(r.id), "raw_mail_purged")
            };
            audit(&mut buf, at, None, raw, actor, event, &detail);
            if deleted {
                report.quarantine_deleted += 1;
            } else {
                report.unfiled_purged += 1;
            }
            report.unfiled_bytes += r.bytes;
        }
        sql::flush(&mut tx, store.backend(), &mut buf).await?;
        tx.commit().await?;
        report.transactions += 1;
        tracing::info!(mails = rows.len(), "retention: mail on no ticket deleted");
        if (rows.len() as i64) < chunk {
            return Ok(());
        }
    }
}

async fn sent(
    store: &Store,
    report: &mut Report,
    Cut {
        cutoff,
        at,
        chunk,
        days,
    }: Cut,
    opts: Options,
    actor: &str,
    stopped: &(dyn Fn() -> bool + Sync),
) -> Result<(), StoreError> {
    loop {
        if stopped() {
            report.interrupted = true;
            return Ok(());
        }
        tokio::time::sleep(opts.pause).await;
        let mut tx = store.begin_write().await?;
        let rows = sql::due_sent(&mut tx, cutoff, chunk).await?;
        if rows.is_empty() {
            tx.rollback().await?;
            return Ok(());
        }
        let ids: Vec<i64> = rows.iter().map(|r| r.0).collect();
        sql::purge_sent(&mut tx, &ids, at).await?;
        // One audit line per ticket, and one for the mails on none (notices to lists).
        let mut by_ticket: std::collections::BTreeMap<Option<i64>, Vec<i64>> = Default::default();
        for (id, ticket) in &rows {
            by_ticket.entry(*ticket).or_default().push(*id);
        }
        let mut buf = WriteBuffer::default();
        for (ticket, ids) in by_ticket {
            let detail = json!({ "outbox": ids, "rule": format!("sent_mail_days = {days}") });
            audit(
                &mut buf,
                at,
                ticket,
                None,
                actor,
                "sent_mail_purged",
                &detail,
            );
        }
        sql::flush(&mut tx, store.backend(), &mut buf).await?;
        tx.commit().await?;
        report.transactions += 1;
        report.sent_mail_purged += rows.len() as i64;
        if (rows.len() as i64) < chunk {
            return Ok(());
        }
    }
}

/// Today's start of the daily run (`retention.run_at`, Berlin), or yesterday's when that is
/// still ahead: the run that `now` falls due after.
pub fn last_due(now: Timestamp, settings: &RetentionSettings, tz: &TimeZone) -> Timestamp {
    let z = now.to_zoned(tz.clone());
    let today = z.date().to_datetime(settings.run_at);
    let at = |d: jiff::civil::DateTime| {
        tz.to_ambiguous_zoned(d)
            .compatible()
            .map(|z| z.timestamp())
            .unwrap_or(now)
    };
    let t = at(today);
    if t <= now {
        t
    } else {
        today.checked_sub(1.day()).map(at).unwrap_or(now)
    }
}

/// How often the loop looks whether the day's run is due: a restart, or a day the daemon was
/// down at `run_at`, finds it within this.
const LOOK_EVERY: Duration = Duration::from_secs(600);

/// The daemon's loop: once a day at `retention.run_at` (or at the first look after it, when
/// the daemon was down then), claimed in `job_runs` so that one instance runs it.
pub async fn run_daily(store: Store, config: std::sync::Arc<Config>, cancel: CancellationToken) {
    if !enabled(&config) {
        return;
    }
    let Ok(tz) = crate::time::berlin() else {
        return;
    };
    while !cancel.is_cancelled() {
        let now = Timestamp::now();
        let due = last_due(now, &config.settings.retention, &tz);
        match sql::claim_daily(&store, JOB, due.as_microsecond(), now.as_microsecond()).await {
            Ok(true) => {
                tracing::info!("retention: the day's run starts");
                match run(
                    &store,
                    &config,
                    now,
                    Options::default(),
                    "poststelle",
                    Some(&cancel),
                )
                .await
                {
                    Ok(r) => {
                        tracing::info!(
                            purged = r.purged.tickets,
                            anonymised = r.anonymised,
                            quarantine_deleted = r.quarantine_deleted,
                            unfiled = r.unfiled_purged,
                            sent_mail = r.sent_mail_purged,
                            seconds = r.seconds,
                            "retention: the day's run is done"
                        );
                        let end = Timestamp::now().as_microsecond();
                        if let Err(e) = sql::finish_daily(&store, JOB, end, &summary(&r)).await {
                            tracing::warn!(error = %e, "retention: recording the run failed");
                        }
                    }
                    Err(e) => tracing::error!(
                        error = %e,
                        "retention: the run failed; the rest waits for tomorrow's run or `poststelle retention run`"
                    ),
                }
            }
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "retention: claiming the day's run failed"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = tokio::time::sleep(LOOK_EVERY) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_calendar_days_in_berlin() {
        let tz = crate::time::berlin().expect("tz");
        // 2026-03-29 12:00 CEST back to 2026-03-28 12:00 CET: 23 hours across the switch.
        let now: Timestamp = "2026-03-29T10:00:00Z".parse().expect("instant");
        let b = before(now, 1, &tz).expect("ok").expect("some");
        assert_eq!(b.to_string(), "2026-03-28T11:00:00Z");
        assert_eq!(before(now, 0, &tz).expect("ok"), None);
    }

    #[test]
    fn the_run_falls_due_at_run_at_berlin_time() {
        let tz = crate::time::berlin().expect("tz");
        let s = RetentionSettings::default();
        let t = |s: &str| s.parse::<Timestamp>().expect("instant");
        // 03:00 CET is 02:00 UTC.
        assert_eq!(
            last_due(t("2026-12-03T02:30:00Z"), &s, &tz),
            t("2026-12-03T02:00:00Z")
        );
        assert_eq!(
            last_due(t("2026-12-03T01:30:00Z"), &s, &tz),
            t("2026-12-02T02:00:00Z")
        );
    }
}
