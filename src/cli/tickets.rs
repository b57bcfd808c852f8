//! `poststelle tickets …`: list, show and change tickets.
use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use poststelle::config::Config;
use poststelle::store::Store;
use poststelle::ticket::State;
use poststelle::ticket::ingest::Outcome;
use poststelle::ticket::ops::{self, TicketSummary, TicketView};

use super::TicketsCmd;
use super::output::{block, detail, line, when};

pub(super) async fn tickets(cfg: &Config, store: &Store, cmd: &TicketsCmd) -> Result<ExitCode> {
    match cmd {
        TicketsCmd::List {
            state,
            queue,
            limit,
            after,
            json,
        } => {
            let state: Option<State> = state.map(Into::into);
            let page =
                ops::list_tickets(store, state, queue.as_deref(), after.as_deref(), *limit).await?;
            let list = &page.tickets;
            // A queue no longer configured may still hold tickets; only one that is neither
            // configured nor holds any is a typo.
            if let Some(q) = queue
                && list.is_empty()
                && after.is_none()
                && cfg.settings.queue(q).is_none()
            {
                bail!(
                    "unknown queue \"{q}\"; the queues of {} are: {}",
                    cfg.origin,
                    ops::queue_names(cfg)
                );
            }
            let mut out = std::io::stdout().lock();
            if *json {
                for t in list {
                    writeln!(out, "{}", serde_json::to_string(t)?)?;
                }
                if let Some(next) = &page.next {
                    writeln!(out, "{}", serde_json::json!({ "next": next }))?;
                }
            } else if list.is_empty() {
                let mut filter = String::new();
                if let Some(s) = state {
                    filter.push_str(&format!(" in state {}", s.as_str()));
                }
                if let Some(q) = queue {
                    filter.push_str(&format!(" in queue {q}"));
                }
                if let Some(a) = after {
                    filter.push_str(&format!(" after {a}"));
                }
                writeln!(out, "no tickets{filter}")?;
            } else {
                write_list(&mut out, list)?;
                if let Some(next) = &page.next {
                    writeln!(out, "more: --after {next}")?;
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
            level,
            assign,
            pending_until,
            note,
            contact_reply,
            service,
            actor,
        } => {
            let change = ops::Change {
                state: status.map(Into::into),
                severity: *severity,
                queue: queue.as_deref(),
                level: *level,
                assignee: assign.as_deref(),
                pending_until: *pending_until,
                note: note.as_deref(),
                contact_reply: *contact_reply,
                service: service.as_deref(),
                escalated: None,
                actor,
            };
            let applied = ops::set_ticket(store, cfg, number, change).await?;
            let mut out = std::io::stdout().lock();
            if applied.is_empty() {
                writeln!(
                    out,
                    "ticket {number} unchanged: it already has the values given"
                )?;
            } else {
                let what: Vec<String> = applied.iter().map(ToString::to_string).collect();
                writeln!(out, "ticket {number}: {}", what.join(", "))?;
            }
        }
        TicketsCmd::Create {
            queue,
            class,
            requester,
            name,
            subject,
            file,
            actor,
            json,
        } => {
            let body = read_text(file, "the request")?;
            let number = ops::create_ticket(
                store,
                cfg,
                ops::NewByHand {
                    queue,
                    severity: *class,
                    requester,
                    name: name.as_deref(),
                    subject,
                    body: &body,
                    actor,
                },
            )
            .await?;
            let mut out = std::io::stdout().lock();
            if *json {
                writeln!(out, "{}", serde_json::json!({ "number": number }))?;
            } else {
                writeln!(
                    out,
                    "ticket {number} opened in queue {queue}, class {class}, for {requester}"
                )?;
            }
        }
        TicketsCmd::Reply {
            number,
            file,
            actor,
        } => {
            let body = read_text(file, "the answer")?;
            let outcome = ops::reply(store, cfg, number, &body, actor.as_deref()).await?;
            let mut out = std::io::stdout().lock();
            match outcome {
                Outcome::StaffAnswer { number } => {
                    let t = ops::show_ticket(store, &number).await?;
                    writeln!(
                        out,
                        "ticket {number}: answer filed; state {}, queue {}, class {}",
                        t.summary.state, t.summary.queue, t.summary.severity
                    )?;
                }
                Outcome::Refused { reason, .. } => {
                    bail!("ticket {number}: the answer was refused: {reason}")
                }
                other => bail!("ticket {number}: the answer was filed as {}", other.label()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A text file, or stdin for `-`.
fn read_text(file: &std::path::Path, what: &str) -> Result<String> {
    if file.as_os_str() == "-" {
        let mut b = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut b)
            .with_context(|| format!("reading {what} from stdin"))?;
        Ok(b)
    } else {
        std::fs::read_to_string(file)
            .with_context(|| format!("reading {what} from {} (UTF-8 text)", file.display()))
    }
}

fn write_list(out: &mut impl Write, list: &[TicketSummary]) -> Result<()> {
    writeln!(
        out,
        "{:<18} {:<8} {:<20} {:>5} {:>8}  {:<23}  SUBJECT",
        "NUMBER", "STATE", "QUEUE", "CLASS", "ARTICLES", "CREATED"
    )?;
    for t in list {
        writeln!(
            out,
            "{:<18} {:<8} {:<20} {:>5} {:>8}  {:<23}  {}",
            t.number,
            t.state,
            t.queue,
            t.severity,
            t.articles,
            when(t.created),
            line(&t.subject)
        )?;
    }
    Ok(())
}

/// What the ticket is and where its reaction clock stands.
fn write_header(out: &mut impl Write, t: &TicketView) -> Result<()> {
    let s = &t.summary;
    writeln!(
        out,
        "Ticket {}  [{}]  queue {}  class {}",
        s.number, s.state, s.queue, s.severity
    )?;
    writeln!(out, "Subject:   {}", line(&s.subject))?;
    writeln!(out, "Requester: {}", line(&s.requester))?;
    writeln!(out, "Created:   {}", when(s.created))?;
    if let Some(c) = &t.category {
        writeln!(out, "Category:  {}", line(c))?;
    }
    if let Some(l) = &s.linked_to {
        writeln!(out, "Linked to: {l}")?;
    }
    if let Some(a) = &s.assignee {
        writeln!(out, "Assigned:  {}", line(a))?;
    }
    if let Some(p) = s.pending_until {
        writeln!(out, "Pending until: {}", when(p))?;
    }
    if let Some(c) = &t.sla {
        writeln!(
            out,
            "Deadline:  {} (class {}, calendar {}; warning at {})",
            when(c.due),
            c.class,
            c.calendar,
            when(c.warn_at)
        )?;
        match (c.reacted, c.met) {
            (Some(at), Some(met)) => writeln!(
                out,
                "Reaction:  {} by {} — {} after {} min of service time",
                when(at),
                c.reacted_by.as_deref().map_or("?".into(), line),
                if met { "met" } else { "BREACHED" },
                c.service_used_minutes.unwrap_or(0)
            )?,
            _ => writeln!(out, "Reaction:  none yet")?,
        }
    }
    Ok(())
}

/// What came in, what went out and who changed what; every article with its text.
fn write_history(out: &mut impl Write, t: &TicketView) -> Result<()> {
    writeln!(out, "\nArticles:")?;
    for a in &t.articles {
        let subject = if a.subject.is_empty() {
            String::new()
        } else {
            format!(" — {}", line(&a.subject))
        };
        writeln!(
            out,
            "  {}  {:<8} {}{subject}",
            when(a.created),
            a.kind,
            a.sender.as_deref().map_or("-".into(), line),
        )?;
        write!(out, "{}", block(&a.body, "      "))?;
    }
    writeln!(out, "\nOutgoing mail:")?;
    if t.outbox.is_empty() {
        writeln!(out, "  none")?;
    }
    for o in &t.outbox {
        writeln!(
            out,
            "  #{} {:<15} {:<17} to {} — {}",
            o.id,
            o.kind,
            o.state,
            line(&o.recipient),
            line(&o.subject)
        )?;
    }
    writeln!(out, "\nAudit:")?;
    for a in &t.audit {
        writeln!(
            out,
            "  {}  {:<10} {:<18} {}",
            when(a.at),
            line(&a.actor),
            a.event,
            detail(&a.detail)
        )?;
    }
    Ok(())
}
