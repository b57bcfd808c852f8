//! `poststelle maintenance …`: schedule, list, show, change, cancel and finish maintenance of
//! a platform; every change is announced to its lists through the outbox.
use std::io::Write;
use std::process::ExitCode;

use anyhow::{Result, bail};
use jiff::Timestamp;
use poststelle::announce::{self, Announced, Change, Plan};
use poststelle::config::Config;
use poststelle::maintenance::Rule;
use poststelle::store::Store;
use poststelle::store::announcements::{self as stored, Maintenance};
use serde_json::{Value, json};

use super::MaintenanceCmd;
use super::output::{line, when};

pub(super) async fn maintenance(
    cfg: &Config,
    store: &Store,
    cmd: &MaintenanceCmd,
) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    let now = Timestamp::now();
    match cmd {
        MaintenanceCmd::Schedule {
            platform,
            start,
            end,
            reason,
            impact,
            lists,
            emergency,
            json,
        } => {
            let plan = Plan {
                platform: platform.clone(),
                start: *start,
                end: *end,
                reason: reason.clone(),
                impact: impact.clone(),
                lists: lists.clone(),
                emergency: *emergency,
            };
            let done = announce::schedule(store, cfg, plan, now).await?;
            report(&mut out, store, &done, "scheduled", *json).await?;
        }
        MaintenanceCmd::List { json } => {
            let all = stored::maintenances(store).await?;
            if *json {
                for m in &all {
                    writeln!(out, "{}", as_json(m))?;
                }
            } else if all.is_empty() {
                writeln!(out, "no maintenance")?;
            } else {
                writeln!(
                    out,
                    "{:>4}  {:<16} {:<10} {:<23}  {:<23}  REASON",
                    "ID", "PLATFORM", "STATE", "START", "END"
                )?;
                for m in &all {
                    writeln!(
                        out,
                        "{:>4}  {:<16} {:<10} {:<23}  {:<23}  {}{}",
                        m.id,
                        line(&m.platform),
                        m.state.as_str(),
                        when(poststelle::time::stored(m.starts_at)),
                        when(poststelle::time::stored(m.ends_at)),
                        if m.emergency { "[emergency] " } else { "" },
                        line(&m.reason)
                    )?;
                }
            }
        }
        MaintenanceCmd::Show { id, json } => {
            let Some(m) = stored::maintenances(store)
                .await?
                .into_iter()
                .find(|m| m.id == *id)
            else {
                bail!("there is no maintenance {id}; `poststelle maintenance list` shows them");
            };
            let notices = stored::announcements(store, m.id).await?;
            let window = stored::window(store, m.id).await?;
            if *json {
                let mut v = as_json(&m);
                v["announcements"] = notices.iter().map(super::announcements::row_json).collect();
                v["excluded_from_availability"] = json!(window.is_some());
                writeln!(out, "{v}")?;
            } else {
                writeln!(out, "maintenance {} ({})", m.id, m.state.as_str())?;
                writeln!(out, "  platform:   {}", line(&m.platform))?;
                writeln!(
                    out,
                    "  start:      {}",
                    when(poststelle::time::stored(m.starts_at))
                )?;
                writeln!(
                    out,
                    "  end:        {}",
                    when(poststelle::time::stored(m.ends_at))
                )?;
                writeln!(out, "  reason:     {}", line(&m.reason))?;
                writeln!(out, "  impact:     {}", line(&m.impact))?;
                writeln!(out, "  lists:      {}", m.lists.join(", "))?;
                writeln!(
                    out,
                    "  emergency:  {}",
                    if m.emergency { "yes" } else { "no" }
                )?;
                writeln!(out, "  sequence:   {}", m.sequence)?;
                writeln!(
                    out,
                    "  availability report: {}",
                    match window {
                        Some(_) => "window excluded (announced maintenance)",
                        None => "not excluded",
                    }
                )?;
                writeln!(out, "  announcements:")?;
                for a in &notices {
                    writeln!(out, "    {}", super::announcements::row_line(a))?;
                }
            }
        }
        MaintenanceCmd::Change {
            id,
            start,
            end,
            reason,
            impact,
            emergency,
            json,
        } => {
            let change = Change {
                start: *start,
                end: *end,
                reason: reason.clone(),
                impact: impact.clone(),
                emergency: *emergency,
            };
            let done = announce::change(store, cfg, *id, change, now).await?;
            report(&mut out, store, &done, "changed", *json).await?;
        }
        MaintenanceCmd::Cancel { id, json } => {
            let done = announce::cancel(store, cfg, *id, now).await?;
            report(&mut out, store, &done, "cancelled", *json).await?;
        }
        MaintenanceCmd::Done { id, json } => {
            let done = announce::finish(store, cfg, *id, now).await?;
            report(&mut out, store, &done, "done", *json).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn as_json(m: &Maintenance) -> Value {
    json!({
        "id": m.id,
        "platform": m.platform,
        "start": poststelle::time::stored(m.starts_at).to_string(),
        "end": poststelle::time::stored(m.ends_at).to_string(),
        "reason": m.reason,
        "impact": m.impact,
        "lists": m.lists,
        "emergency": m.emergency,
        "state": m.state,
        "sequence": m.sequence,
        "created_at": poststelle::time::stored(m.created_at).to_string(),
        "changed_at": poststelle::time::stored(m.changed_at).to_string(),
    })
}

/// What an operation did: the maintenance, the rule it met (or bypassed) and its mails.
async fn report(
    out: &mut impl Write,
    store: &Store,
    done: &Announced,
    what: &str,
    json: bool,
) -> Result<()> {
    let m = stored::maintenances(store)
        .await?
        .into_iter()
        .find(|m| m.id == done.maintenance);
    if json {
        let mut v = m.as_ref().map(as_json).unwrap_or_else(|| json!({}));
        v["announcement"] = json!(done.announcement);
        v["notice"] = json!(done.kind);
        v["fan_out"] = json!(done.fan_out);
        writeln!(out, "{v}")?;
        return Ok(());
    }
    if let Some(m) = &m {
        writeln!(
            out,
            "maintenance {} {what}: {} from {} to {} (calendar sequence {})",
            m.id,
            line(&m.platform),
            when(poststelle::time::stored(m.starts_at)),
            when(poststelle::time::stored(m.ends_at)),
            m.sequence
        )?;
    }
    if let Some(lead) = &done.lead_time {
        let rule = match lead.rule {
            Rule::InsideRegularWindow => "inside a regular window",
            Rule::OutsideRegularWindow => "outside the regular windows",
        };
        if lead.bypassed() {
            writeln!(
                out,
                "emergency: announced {} day(s) ahead where {rule} asks {} (the notice says so)",
                lead.days_ahead,
                lead.rule.days()
            )?;
        } else {
            writeln!(
                out,
                "lead time: {} day(s) ahead, {rule}: at least {} asked",
                lead.days_ahead,
                lead.rule.days()
            )?;
        }
    }
    let f = &done.fan_out;
    writeln!(
        out,
        "announcement {} ({}): {} mail(s) enqueued for {} address(es); skipped {} flagged for bouncing, {} unsubscribed",
        done.announcement,
        done.kind.as_str(),
        f.enqueued,
        f.reached,
        f.skipped_flagged,
        f.skipped_unsubscribed
    )?;
    Ok(())
}
