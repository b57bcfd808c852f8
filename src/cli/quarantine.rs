//! `poststelle quarantine …`: messages that could not be filed.
use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use poststelle::config::Config;
use poststelle::diag::for_terminal;
use poststelle::store::Store;
use poststelle::ticket::ingest::Outcome;
use poststelle::ticket::ops;

use super::QuarantineCmd;
use super::output::{line, when};

pub(super) async fn quarantine(
    cfg: &Config,
    store: &Store,
    cmd: &QuarantineCmd,
) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match cmd {
        QuarantineCmd::List { json } => {
            let list = ops::list_quarantine(store).await?;
            if *json {
                for q in &list {
                    writeln!(out, "{}", serde_json::to_string(q)?)?;
                }
            } else if list.is_empty() {
                writeln!(out, "no quarantined messages")?;
            } else {
                writeln!(
                    out,
                    "{:<7} {:<23} {:>10}  SOURCE — REASON",
                    "ID", "RECEIVED", "BYTES"
                )?;
                for q in &list {
                    writeln!(
                        out,
                        "#{:<6} {:<23} {:>10}  {} — {}",
                        q.id,
                        when(q.received),
                        q.size,
                        line(&q.source),
                        line(&q.reason)
                    )?;
                }
            }
        }
        QuarantineCmd::Show { id, raw } => {
            let bytes = ops::quarantined_bytes(store, *id).await?;
            if *raw {
                out.write_all(&bytes)?;
            } else {
                out.write_all(for_terminal(&bytes).as_bytes())?;
            }
        }
        QuarantineCmd::Replay { id, json } => {
            let outcome = ops::replay_quarantined(store, cfg, *id).await?;
            if *json {
                writeln!(out, "{}", serde_json::to_string(&outcome)?)?;
            } else {
                writeln!(out, "{}", replayed(*id, &outcome))?;
            }
            // Still unreadable after the fix: a script replaying in a loop must see it.
            if matches!(outcome, Outcome::Quarantined { .. }) {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What a replay did, in words.
fn replayed(id: i64, outcome: &Outcome) -> String {
    match outcome {
        Outcome::NewTicket {
            number,
            linked_to: None,
        } => format!("message #{id} filed: new ticket {number}"),
        Outcome::NewTicket {
            number,
            linked_to: Some(old),
        } => format!("message #{id} filed: new ticket {number}, linked to ticket {old}"),
        Outcome::FollowUp { number, reopened } => format!(
            "message #{id} filed: follow-up to ticket {number}{}",
            if *reopened {
                ", which is open again"
            } else {
                ""
            }
        ),
        Outcome::Note { number } => {
            format!("message #{id} filed: machine mail, kept as a note on ticket {number}")
        }
        Outcome::Ignored { reason } => format!("message #{id} filed and ignored: {reason}"),
        Outcome::Duplicate { number, .. } => format!(
            "message #{id} was filed before{}; nothing changed",
            number
                .as_deref()
                .map(|n| format!(" (ticket {n})"))
                .unwrap_or_default()
        ),
        Outcome::Quarantined { reason } => format!(
            "message #{id} still cannot be filed and stays in the quarantine as #{id}: {reason}"
        ),
        Outcome::StaffAnswer { number } => {
            format!("message #{id} filed: staff answer relayed on ticket {number}")
        }
        Outcome::Refused { reason, .. } => {
            format!("message #{id} filed and refused, nothing changed: {reason}")
        }
    }
}
