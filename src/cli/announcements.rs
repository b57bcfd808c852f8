//! `poststelle announcements status ID`: where the mails of one notice stand — sent, pending,
//! failed, bounced — and, with `--wait`, a progress bar until none is pending. Also the one
//! place that prints an announcement's row for `maintenance show` and `incident show`.
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, bail};
use poststelle::store::Store;
use poststelle::store::announcements::{self as stored, AnnouncementRow, AnnouncementStatus};
use serde_json::{Value, json};

use super::AnnouncementsCmd;
use super::output::{line, when};

/// How often `--wait` looks again.
const POLL: Duration = Duration::from_millis(500);

pub(super) async fn announcements(store: &Store, cmd: &AnnouncementsCmd) -> Result<ExitCode> {
    match cmd {
        AnnouncementsCmd::Status { id, json, wait } => status(store, *id, *json, *wait).await,
    }
}

async fn status(store: &Store, id: i64, as_json: bool, wait: bool) -> Result<ExitCode> {
    let mut s = current(store, id).await?;
    if wait && s.row.pending > 0 {
        s = wait_for(store, id, s).await?;
    }
    let undelivered = stored::undelivered(store, id).await?;
    let mut out = std::io::stdout().lock();
    if as_json {
        let mut v = row_json(&s.row);
        v["maintenance"] = json!(s.maintenance_id);
        v["incident"] = json!(s.incident_id);
        v["platform"] = json!(s.platform);
        v["undelivered"] = serde_json::to_value(&undelivered)?;
        writeln!(out, "{v}")?;
        return Ok(ExitCode::SUCCESS);
    }
    let about = match (s.maintenance_id, s.incident_id) {
        (Some(m), _) => format!("maintenance {m}"),
        (_, Some(i)) => format!("incident {i}"),
        _ => "nothing".to_string(),
    };
    writeln!(
        out,
        "announcement {} ({}, {about}, platform {}, sequence {})",
        s.row.id,
        s.row.kind,
        line(&s.platform),
        s.row.sequence
    )?;
    writeln!(
        out,
        "  written:  {}",
        when(poststelle::time::stored(s.row.created_at))
    )?;
    writeln!(out, "  mails:    {}", s.row.mails)?;
    writeln!(out, "  sent:     {}", s.row.sent)?;
    writeln!(out, "  pending:  {}", s.row.pending)?;
    writeln!(out, "  failed:   {}", s.row.failed)?;
    writeln!(out, "  uncertain: {}", s.row.uncertain)?;
    writeln!(out, "  bounced:  {}", s.row.bounced)?;
    if !undelivered.is_empty() {
        writeln!(out, "  not delivered:")?;
        for u in &undelivered {
            let what = match u.state.as_str() {
                "sent" => "bounced".to_string(),
                "temporary_failure" => format!("waiting to retry (attempt {})", u.attempts),
                "suppressed" => "held back".to_string(),
                "uncertain" => "uncertain, held".to_string(),
                _ => "failed".to_string(),
            };
            writeln!(
                out,
                "    {}  {what}: {}",
                line(&u.recipient),
                line(u.error.as_deref().unwrap_or(""))
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn current(store: &Store, id: i64) -> Result<AnnouncementStatus> {
    match stored::announcement_status(store, id).await? {
        Some(s) => Ok(s),
        None => bail!(
            "there is no announcement {id}; `poststelle maintenance show ID` and \
             `poststelle incident show ID` list the announcements of each"
        ),
    }
}

/// Polls until no mail of the announcement is pending (the daemon, or `outbox send`, sends
/// them), with a progress bar on a terminal.
async fn wait_for(store: &Store, id: i64, mut s: AnnouncementStatus) -> Result<AnnouncementStatus> {
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(u64::try_from(s.row.mails).unwrap_or(0));
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} mails done ({per_sec}, {eta} left) {msg}",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    loop {
        let done = s.row.mails - s.row.pending;
        bar.set_position(u64::try_from(done).unwrap_or(0));
        bar.set_message(format!("{} failed", s.row.failed));
        if s.row.pending == 0 {
            break;
        }
        tokio::time::sleep(POLL).await;
        s = current(store, id).await?;
    }
    bar.finish_and_clear();
    Ok(s)
}

/// An announcement's row for `--json` (instants in RFC 3339, UTC).
pub(super) fn row_json(a: &AnnouncementRow) -> Value {
    json!({
        "id": a.id, "kind": a.kind, "sequence": a.sequence,
        "created_at": poststelle::time::stored(a.created_at).to_string(),
        "mails": a.mails, "sent": a.sent, "pending": a.pending,
        "failed": a.failed, "uncertain": a.uncertain, "bounced": a.bounced,
    })
}

/// An announcement's row for people, one line.
pub(super) fn row_line(a: &AnnouncementRow) -> String {
    format!(
        "{:>4}  {:<10} {}  {} mail(s): {} sent, {} pending, {} failed, {} bounced, {} uncertain",
        a.id,
        a.kind,
        when(poststelle::time::stored(a.created_at)),
        a.mails,
        a.sent,
        a.pending,
        a.failed,
        a.bounced,
        a.uncertain
    )
}
