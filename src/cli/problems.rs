//! `poststelle problems …` and `poststelle alerts list`: recurring incidents recorded as
//! problems (problem management), and the monitoring's alert keys.
use std::io::Write;
use std::process::ExitCode;

use anyhow::{Result, bail};
use jiff::Timestamp;
use poststelle::config::Config;
use poststelle::store::Store;
use poststelle::store::alerts as alert_rows;
use poststelle::store::problems::{self as stored, ProblemRow};
use serde_json::{Value, json};

use super::output::{line, when};
use super::{AlertsCmd, ProblemsCmd};

fn at(t: i64) -> String {
    poststelle::time::stored(t).to_string()
}

fn as_json(p: &ProblemRow) -> Value {
    json!({
        "id": p.id,
        "fingerprint": p.fingerprint,
        "title": p.title,
        "queue": p.queue,
        "platform": p.platform,
        "state": p.state,
        "opened_at": at(p.opened_at),
        "notified_to": p.notified_to,
        "notified_at": p.notified_at.map(at),
        "closed_at": p.closed_at.map(at),
        "closed_by": p.closed_by,
        "close_note": p.close_note,
        "occurrences": p.occurrences,
        "tickets": p.tickets,
    })
}

pub(super) async fn problems(_cfg: &Config, store: &Store, cmd: &ProblemsCmd) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match cmd {
        ProblemsCmd::List {
            state,
            platform,
            json,
        } => {
            let all = stored::problems(store, state.as_deref(), platform.as_deref()).await?;
            if *json {
                for p in &all {
                    writeln!(out, "{}", as_json(p))?;
                }
            } else if all.is_empty() {
                writeln!(out, "no problem")?;
            } else {
                writeln!(
                    out,
                    "{:>4}  {:<6}  {:<14} {:<12} {:>5}  {:<23}  TITLE",
                    "ID", "STATE", "QUEUE", "PLATFORM", "COUNT", "OPENED"
                )?;
                for p in &all {
                    writeln!(
                        out,
                        "{:>4}  {:<6}  {:<14} {:<12} {:>5}  {:<23}  {}",
                        p.id,
                        p.state,
                        line(&p.queue),
                        line(p.platform.as_deref().unwrap_or("-")),
                        p.occurrences,
                        when(poststelle::time::stored(p.opened_at)),
                        line(&p.title)
                    )?;
                }
            }
        }
        ProblemsCmd::Show { id, json } => {
            let Some(p) = stored::problem(store, *id).await? else {
                bail!("there is no problem {id}; `poststelle problems list` shows them");
            };
            let tickets = stored::tickets_of(store, *id).await?;
            if *json {
                let mut v = as_json(&p);
                v["incidents"] = tickets
                    .iter()
                    .map(|t| {
                        json!({ "number": t.number, "subject": t.subject, "state": t.state,
                                "severity": t.severity, "at": at(t.at) })
                    })
                    .collect();
                writeln!(out, "{v}")?;
                return Ok(ExitCode::SUCCESS);
            }
            writeln!(out, "problem {} ({})", p.id, p.state)?;
            writeln!(out, "  title:      {}", line(&p.title))?;
            writeln!(out, "  queue:      {}", line(&p.queue))?;
            if let Some(pl) = &p.platform {
                writeln!(out, "  platform:   {}", line(pl))?;
            }
            writeln!(
                out,
                "  opened:     {}",
                when(poststelle::time::stored(p.opened_at))
            )?;
            match (&p.notified_to, p.notified_at) {
                (Some(to), Some(t)) => writeln!(
                    out,
                    "  told:       {} ({})",
                    line(to),
                    when(poststelle::time::stored(t))
                )?,
                _ => writeln!(
                    out,
                    "  told:       nobody (the queue has no escalation address)"
                )?,
            }
            if let Some(t) = p.closed_at {
                writeln!(
                    out,
                    "  closed:     {} by {}{}",
                    when(poststelle::time::stored(t)),
                    line(p.closed_by.as_deref().unwrap_or("")),
                    p.close_note
                        .as_deref()
                        .map(|n| format!(": {}", line(n)))
                        .unwrap_or_default()
                )?;
            }
            writeln!(out, "  incidents ({}):", tickets.len())?;
            for t in &tickets {
                writeln!(
                    out,
                    "    {}  {}  class {}  {:<8} {}",
                    when(poststelle::time::stored(t.at)),
                    t.number,
                    t.severity,
                    t.state,
                    line(&t.subject)
                )?;
            }
        }
        ProblemsCmd::Close {
            id,
            note,
            actor,
            json,
        } => {
            let now = Timestamp::now();
            let closed =
                poststelle::ticket::problems::close(store, *id, &actor.actor, note.as_deref(), now)
                    .await?;
            if !closed {
                match stored::problem(store, *id).await? {
                    None => {
                        bail!("there is no problem {id}; `poststelle problems list` shows them")
                    }
                    Some(p) => bail!("problem {id} is {} already", p.state),
                }
            }
            if *json {
                if let Some(p) = stored::problem(store, *id).await? {
                    writeln!(out, "{}", as_json(&p))?;
                }
            } else {
                writeln!(
                    out,
                    "problem {id} closed; incidents of its kind count afresh from now"
                )?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn alerts(store: &Store, cmd: &AlertsCmd) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let AlertsCmd::List { json } = cmd;
    let all = alert_rows::all(store).await?;
    if *json {
        for a in &all {
            writeln!(
                out,
                "{}",
                json!({
                    "key": a.alert_key, "queue": a.queue, "platform": a.platform,
                    "ticket": a.number, "ticket_state": a.ticket_state,
                    "incident": a.incident_id, "state": a.state, "severity": a.severity,
                    "problem_at": at(a.problem_at), "recovered_at": a.recovered_at.map(at),
                    "acknowledged_at": a.acknowledged_at.map(at), "mails": a.mails,
                    "repeats": a.repeats, "flapping_since": a.flapping_since.map(at),
                    "last_mail_at": at(a.last_mail_at),
                })
            )?;
        }
    } else if all.is_empty() {
        writeln!(out, "no alert")?;
    } else {
        writeln!(
            out,
            "{:<10} {:>6}  {:<18} {:<9} {:<23}  KEY",
            "STATE", "MAILS", "TICKET", "INCIDENT", "SINCE"
        )?;
        for a in &all {
            let since = match a.recovered_at {
                Some(t) => t,
                None => a.problem_at,
            };
            writeln!(
                out,
                "{:<10} {:>6}  {:<18} {:<9} {:<23}  {}{}",
                a.state,
                a.mails,
                a.number,
                a.incident_id
                    .map(|i| i.to_string())
                    .unwrap_or_else(|| "-".into()),
                when(poststelle::time::stored(since)),
                line(&a.alert_key),
                if a.flapping_since.is_some() {
                    "  (flapping)"
                } else {
                    ""
                }
            )?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
