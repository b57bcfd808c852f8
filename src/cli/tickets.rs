//! `poststelle tickets …`: list, show and change tickets.
use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use poststelle::config::Config;
use poststelle::store::Store;
use poststelle::ticket::ops::{self, TicketView};

use super::TicketsCmd;

pub(super) async fn tickets(cfg: &Config, store: &Store, cmd: &TicketsCmd) -> Result<ExitCode> {
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
                write_header(&mut out, &t)?;
                write_history(&mut out, &t)?;
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
            let change = ops::Change {
                state: status.as_deref(),
                severity: *severity,
                queue: queue.as_deref(),
                note: note.as_deref(),
                actor,
            };
            ops::set_ticket(store, cfg, number, change).await?;
            println!("ticket {number} updated");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// What the ticket is and where its reaction clock stands.
fn write_header(out: &mut impl Write, t: &TicketView) -> Result<()> {
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
    Ok(())
}

/// What came in, what went out and who changed what.
fn write_history(out: &mut impl Write, t: &TicketView) -> Result<()> {
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
    Ok(())
}
