//! `poststelle incident …`: open, update, resolve, list, show and link incidents of a
//! platform; every notice goes to its lists and to the requesters of linked tickets through
//! the outbox, and its outage to the availability report.
use std::io::Write;
use std::process::ExitCode;

use anyhow::{Result, bail};
use jiff::Timestamp;
use poststelle::announce::incident::{self, Announced, Report};
use poststelle::config::Config;
use poststelle::store::Store;
use poststelle::store::announcements::{self as announcements, About};
use poststelle::store::incidents::{self as stored, Incident};
use serde_json::{Value, json};

use super::IncidentCmd;
use super::output::{line, when};

pub(super) async fn incident(cfg: &Config, store: &Store, cmd: &IncidentCmd) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let now = Timestamp::now();
    match cmd {
        IncidentCmd::Open {
            platform,
            title,
            impact,
            class,
            lists,
            tickets,
            since,
            actor,
            json,
        } => {
            let report = Report {
                platform: platform.clone(),
                title: title.clone(),
                impact: impact.clone(),
                class: *class,
                lists: lists.clone(),
                tickets: tickets.clone(),
                since: *since,
            };
            let done = incident::open(store, cfg, report, &actor.actor, now).await?;
            print_done(&mut out, store, &done, "opened", *json).await?;
        }
        IncidentCmd::Update {
            id,
            text,
            actor,
            json,
        } => {
            let done = incident::update(store, cfg, *id, text, &actor.actor, now).await?;
            print_done(&mut out, store, &done, "updated", *json).await?;
        }
        IncidentCmd::Resolve {
            id,
            at,
            text,
            actor,
            json,
        } => {
            let done =
                incident::resolve(store, cfg, *id, *at, text.as_deref(), &actor.actor, now).await?;
            print_done(&mut out, store, &done, "resolved", *json).await?;
        }
        IncidentCmd::List { json } => {
            let all = stored::incidents(store).await?;
            if *json {
                for i in &all {
                    writeln!(out, "{}", as_json(i))?;
                }
            } else if all.is_empty() {
                writeln!(out, "no incident")?;
            } else {
                writeln!(
                    out,
                    "{:>4}  {:<16} {:<8} {:>5}  {:<23}  {:<23}  TITLE",
                    "ID", "PLATFORM", "STATE", "CLASS", "SINCE", "RESOLVED"
                )?;
                for i in &all {
                    writeln!(
                        out,
                        "{:>4}  {:<16} {:<8} {:>5}  {:<23}  {:<23}  {}",
                        i.id,
                        line(&i.platform),
                        i.state.as_str(),
                        i.class,
                        when(poststelle::time::stored(i.started_at)),
                        i.resolved_at
                            .map(poststelle::time::stored)
                            .map(when)
                            .unwrap_or_default(),
                        line(&i.title)
                    )?;
                }
            }
        }
        IncidentCmd::Show { id, json } => show(&mut out, store, *id, *json).await?,
        IncidentCmd::Confirm { id, actor, json } => {
            match incident::confirm(store, cfg, *id, &actor.actor, now).await? {
                Some(done) => print_done(&mut out, store, &done, "confirmed", *json).await?,
                None => {
                    if *json {
                        let i = find(store, *id).await?;
                        writeln!(out, "{}", as_json(&i))?;
                    } else {
                        writeln!(
                            out,
                            "incident {id} was confirmed before; nothing sent again"
                        )?;
                    }
                }
            }
        }
        IncidentCmd::Link {
            id,
            tickets,
            actor,
            json,
        } => {
            let done = incident::link(store, cfg, *id, tickets, &actor.actor, now).await?;
            if *json {
                writeln!(out, "{}", json!(done))?;
            } else {
                if !done.linked.is_empty() {
                    writeln!(
                        out,
                        "incident {id}: linked {}",
                        done.linked
                            .iter()
                            .map(|n| line(n))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )?;
                }
                if !done.already.is_empty() {
                    writeln!(
                        out,
                        "incident {id}: linked before: {}",
                        done.already
                            .iter()
                            .map(|n| line(n))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )?;
                }
                if done.raised {
                    writeln!(
                        out,
                        "incident {id} is now class 2 (betriebsbehindernd): enough light reports are linked"
                    )?;
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn as_json(i: &Incident) -> Value {
    json!({
        "id": i.id,
        "platform": i.platform,
        "title": i.title,
        "impact": i.impact,
        "class": i.class,
        "lists": i.lists,
        "state": i.state,
        "since": poststelle::time::stored(i.started_at).to_string(),
        "resolved_at": i.resolved_at.map(|t| poststelle::time::stored(t).to_string()),
        "raised_at": i.raised_at.map(|t| poststelle::time::stored(t).to_string()),
        "outage": i.outage_id,
        "created_at": poststelle::time::stored(i.created_at).to_string(),
        "changed_at": poststelle::time::stored(i.changed_at).to_string(),
        "alert_key": i.alert_key,
        "confirmed_at": i.confirmed_at.map(|t| poststelle::time::stored(t).to_string()),
        "confirmed_by": i.confirmed_by,
        "announced_state": i.announced_state,
    })
}

async fn find(store: &Store, id: i64) -> Result<Incident> {
    let mut conn = store.pool().acquire().await?;
    match stored::incident(&mut conn, id).await? {
        Some(i) => Ok(i),
        None => bail!("there is no incident {id}; `poststelle incident list` shows them"),
    }
}

async fn show(out: &mut impl Write, store: &Store, id: i64, json: bool) -> Result<()> {
    let i = find(store, id).await?;
    let events = stored::events(store, id).await?;
    let linked = {
        let mut conn = store.pool().acquire().await?;
        stored::linked_tickets(&mut conn, id).await?
    };
    let notices = announcements::announcements_about(store, About::Incident(id)).await?;
    if json {
        let mut v = as_json(&i);
        v["timeline"] = events
            .iter()
            .map(|e| {
                json!({ "kind": e.kind, "text": e.text, "actor": e.actor,
                        "at": poststelle::time::stored(e.at).to_string() })
            })
            .collect();
        v["tickets"] = linked
            .iter()
            .map(|t| {
                json!({ "number": t.number, "subject": t.subject, "severity": t.severity,
                        "state": t.state, "requester": t.requester, "linked_by": t.linked_by,
                        "linked_at": poststelle::time::stored(t.linked_at).to_string() })
            })
            .collect();
        v["announcements"] = notices.iter().map(super::announcements::row_json).collect();
        writeln!(out, "{v}")?;
        return Ok(());
    }
    writeln!(out, "incident {} ({})", i.id, i.state.as_str())?;
    writeln!(out, "  platform:   {}", line(&i.platform))?;
    writeln!(out, "  title:      {}", line(&i.title))?;
    writeln!(out, "  impact:     {}", line(&i.impact))?;
    writeln!(
        out,
        "  class:      {}{}",
        i.class,
        match i.raised_at {
            Some(t) => format!(" (raised {})", when(poststelle::time::stored(t))),
            None => String::new(),
        }
    )?;
    writeln!(
        out,
        "  since:      {}",
        when(poststelle::time::stored(i.started_at))
    )?;
    if let Some(t) = i.resolved_at {
        writeln!(out, "  resolved:   {}", when(poststelle::time::stored(t)))?;
    }
    writeln!(out, "  lists:      {}", i.lists.join(", "))?;
    if let Some(key) = &i.alert_key {
        writeln!(out, "  opened by:  monitoring ({})", line(key))?;
    }
    writeln!(
        out,
        "  notices:    {}",
        match (i.confirmed_at, &i.confirmed_by) {
            (Some(t), by) => format!(
                "confirmed {}{}",
                when(poststelle::time::stored(t)),
                by.as_deref()
                    .map(|b| format!(" by {}", line(b)))
                    .unwrap_or_default()
            ),
            (None, _) => format!(
                "waiting for `poststelle incident confirm {}` (the lists have heard nothing)",
                i.id
            ),
        }
    )?;
    for (key, state, flapping) in poststelle::store::alerts::of_incident(store, i.id).await? {
        writeln!(
            out,
            "  alert:      {} ({state}{})",
            line(&key),
            if flapping {
                ", flapping: notices wait"
            } else {
                ""
            }
        )?;
    }
    writeln!(
        out,
        "  availability report: outage {}",
        match i.resolved_at {
            Some(_) => "recorded from start to restoration",
            None => "running",
        }
    )?;
    writeln!(out, "  timeline:")?;
    for e in &events {
        let words: Vec<String> = [line(&e.text), format!("({})", line(&e.actor))]
            .into_iter()
            .filter(|w| !w.is_empty() && w != "()")
            .collect();
        writeln!(
            out,
            "    {}  {:<8} {}",
            when(poststelle::time::stored(e.at)),
            e.kind,
            words.join(" ")
        )?;
    }
    writeln!(
        out,
        "  tickets:{}",
        if linked.is_empty() { " none" } else { "" }
    )?;
    for t in &linked {
        writeln!(
            out,
            "    {}  class {}  {:<8} {}  (by {})",
            t.number,
            t.severity,
            t.state,
            line(&t.subject),
            line(&t.linked_by)
        )?;
    }
    writeln!(out, "  announcements:")?;
    for a in &notices {
        writeln!(out, "    {}", super::announcements::row_line(a))?;
    }
    Ok(())
}

/// What an operation did: the incident and its mails.
async fn print_done(
    out: &mut impl Write,
    store: &Store,
    done: &Announced,
    what: &str,
    json: bool,
) -> Result<()> {
    let i = find(store, done.incident).await?;
    if json {
        let mut v = as_json(&i);
        v["announcement"] = json!(done.announcement);
        v["notice"] = json!(done.notice);
        v["fan_out"] = json!(done.fan_out);
        v["requesters"] = json!(done.requesters);
        v["threaded"] = json!(done.threaded);
        writeln!(out, "{v}")?;
        return Ok(());
    }
    writeln!(
        out,
        "incident {} {what}: {} — {} (class {}, since {}{})",
        i.id,
        line(&i.platform),
        line(&i.title),
        i.class,
        when(poststelle::time::stored(i.started_at)),
        match i.resolved_at {
            Some(t) => format!(", resolved {}", when(poststelle::time::stored(t))),
            None => String::new(),
        }
    )?;
    let f = &done.fan_out;
    writeln!(
        out,
        "announcement {} ({}): {} mail(s) enqueued for {} address(es); skipped {} flagged for bouncing, {} unsubscribed",
        done.announcement,
        done.notice.as_str(),
        f.enqueued,
        f.reached,
        f.skipped_flagged,
        f.skipped_unsubscribed
    )?;
    if done.requesters > 0 {
        writeln!(
            out,
            "requesters of linked tickets: {} mail(s) on their tickets",
            done.requesters
        )?;
    }
    Ok(())
}
