//! `poststelle sla …`: a window into the deadline engine and its calendars.
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use jiff::Timestamp;
use jiff::civil::Date;
use poststelle::config::{Config, Platform};
use poststelle::jobs::{escalation, report};
use poststelle::sla::{self, Calendar};
use poststelle::store::Store;

use super::{Global, SlaCmd, load_config, with_store};

/// Runs an `sla` command; only `escalate` and `report` open the store.
pub(super) fn sla(g: &Global, cmd: &SlaCmd) -> Result<ExitCode> {
    match cmd {
        SlaCmd::Deadline {
            calendar,
            class,
            received,
        } => {
            let cfg = load_config(g)?;
            let cal = calendar_named(&cfg, calendar)?;
            let due = sla::deadline(&cal, *class, *received)
                .with_context(|| format!("computing the deadline on calendar \"{calendar}\""))?;
            writeln!(std::io::stdout().lock(), "{}", local_rfc3339(&cal, due))?;
            Ok(ExitCode::SUCCESS)
        }
        SlaCmd::Calendar { name, year } => {
            let cfg = load_config(g)?;
            let cal = calendar_named(&cfg, name)?;
            write_calendar(&mut std::io::stdout().lock(), &cal, *year)?;
            Ok(ExitCode::SUCCESS)
        }
        SlaCmd::Escalate => with_store(g, async |cfg, store| escalate(cfg, store).await),
        SlaCmd::Report {
            calendar,
            platform,
            from,
            to,
            target,
            json,
            csv,
        } => {
            // Checked before the configuration and the store, so that a typo costs nothing.
            if from > to {
                bail!("--from {from} is after --to {to}");
            }
            if let Some(name) = platform {
                // Before the store: an unknown platform must not create one.
                let cfg = load_config(g)?;
                platform_named(&cfg, name)?;
            }
            with_store(g, async |cfg, store| {
                let now = Timestamp::now();
                let r = match (platform, calendar) {
                    (Some(name), _) => {
                        let p = platform_named(cfg, name)?;
                        let cal = calendar_named(cfg, &p.calendar)?;
                        let target = target.unwrap_or(p.availability_target);
                        report::platform_report(store, p, &cal, *from, *to, target, now).await?
                    }
                    (None, Some(name)) => {
                        let cal = calendar_named(cfg, name)?;
                        let target = target.unwrap_or(DEFAULT_TARGET);
                        report::report(store, &cal, *from, *to, target, now).await?
                    }
                    (None, None) => bail!("name a --calendar or a --platform"),
                };
                let mut out = std::io::stdout().lock();
                if *json {
                    serde_json::to_writer_pretty(&mut out, &r)?;
                    writeln!(out)?;
                } else if *csv {
                    write_csv(&mut out, &r)?;
                } else {
                    write_report(&mut out, &r)?;
                }
                Ok(ExitCode::SUCCESS)
            })
        }
    }
}

async fn escalate(cfg: &Config, store: &Store) -> Result<ExitCode> {
    let notices = escalation::escalate_due(store, cfg, Timestamp::now()).await?;
    let mut out = std::io::stdout().lock();
    for n in &notices {
        writeln!(
            out,
            "{} class {} {} → {}",
            n.ticket,
            n.severity,
            n.kind.as_str(),
            n.recipient.as_deref().unwrap_or("(no escalation address)")
        )?;
    }
    writeln!(out, "{} notice(s) written to the outbox", notices.len())?;
    Ok(ExitCode::SUCCESS)
}

fn hours(seconds: i64) -> String {
    format!("{:.2}", seconds as f64 / 3600.0)
}

fn write_report(out: &mut impl Write, r: &sla::report::Report) -> Result<()> {
    match &r.platform {
        Some(platform) => writeln!(
            out,
            "Availability of platform {platform} on calendar {}, {} – {} (target {} %, announced maintenance excluded; outages: its incidents)",
            r.calendar, r.from, r.to, r.total.target_percent
        )?,
        None => {
            writeln!(
                out,
                "Availability on calendar {}, {} – {} (target {} %, announced maintenance excluded)",
                r.calendar, r.from, r.to, r.total.target_percent
            )?;
            writeln!(
                out,
                "Reaction deadlines per class (C1–C4): met/breached/open (no reaction yet)"
            )?;
        }
    }
    let mut head = format!(
        "{:<8} {:>10} {:>8} {:>8} {:>8} {:<6}",
        "PERIOD", "SERVICE h", "MAINT h", "OUTAGE h", "AVAIL %", "TARGET"
    );
    if r.platform.is_none() {
        head += &format!("  {:>11} {:>11} {:>11} {:>11}", "C1", "C2", "C3", "C4");
    }
    writeln!(out, "{}", head.trim_end())?;
    for p in r.months.iter().chain([&r.total]) {
        let mut row = format!(
            "{:<8} {:>10} {:>8} {:>8} {:>8.3} {:<6}",
            p.period,
            hours(p.service_seconds),
            hours(p.maintenance_seconds),
            hours(p.outage_seconds),
            p.availability_percent,
            if p.target_met { "met" } else { "MISSED" },
        );
        if let Some(classes) = &p.reactions {
            row.push(' ');
            for c in classes {
                row += &format!(" {:>11}", format!("{}/{}/{}", c.met, c.breached, c.open));
            }
        }
        writeln!(out, "{}", row.trim_end())?;
    }
    if let Some(problems) = &r.problems {
        writeln!(
            out,
            "Problems (recurring incidents) of the period: {}",
            if problems.is_empty() { "none" } else { "" }
        )?;
        for p in problems {
            writeln!(
                out,
                "  problem {:>4}  {:<6}  {} incident(s)  opened {}{}  {}",
                p.id,
                p.state,
                p.occurrences,
                super::output::when(p.opened_at),
                p.closed_at
                    .map(|c| format!(", closed {}", super::output::when(c)))
                    .unwrap_or_default(),
                super::output::line(&p.title)
            )?;
        }
    }
    Ok(())
}

fn write_csv(out: &mut impl Write, r: &sla::report::Report) -> Result<()> {
    let mut w = csv::Writer::from_writer(out);
    let mut head = vec![
        "period",
        "service_seconds",
        "maintenance_seconds",
        "outage_seconds",
        "availability_percent",
        "target_percent",
        "target_met",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    if r.platform.is_none() {
        for c in 1..=4 {
            for k in ["met", "breached", "open"] {
                head.push(format!("class{c}_{k}"));
            }
        }
    }
    w.write_record(&head)?;
    for p in r.months.iter().chain([&r.total]) {
        let mut row = vec![
            p.period.clone(),
            p.service_seconds.to_string(),
            p.maintenance_seconds.to_string(),
            p.outage_seconds.to_string(),
            p.availability_percent.to_string(),
            p.target_percent.to_string(),
            p.target_met.to_string(),
        ];
        for c in p.reactions.iter().flatten() {
            row.extend([
                c.met.to_string(),
                c.breached.to_string(),
                c.open.to_string(),
            ]);
        }
        w.write_record(&row)?;
    }
    w.flush()?;
    Ok(())
}

/// The target of a calendar's report unless `--target` gives one (MISSION §4, ekom21).
const DEFAULT_TARGET: f64 = 97.5;

fn platform_named<'c>(cfg: &'c Config, name: &str) -> Result<&'c Platform> {
    if let Some(p) = cfg.settings.platform(name) {
        return Ok(p);
    }
    let known: Vec<&str> = cfg
        .settings
        .platforms
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    if known.is_empty() {
        bail!(
            "unknown platform \"{name}\": the configuration defines no platforms; add a [[platform]] table with name = \"{name}\""
        )
    }
    bail!(
        "unknown platform \"{name}\"; use one of: {} (or add a [[platform]] table with name = \"{name}\")",
        known.join(", ")
    )
}

fn calendar_named(cfg: &Config, name: &str) -> Result<Arc<Calendar>> {
    let cals = &cfg.settings.sla.calendars;
    match cals.get(name) {
        Some(c) => Ok(Arc::clone(c)),
        None => bail!(
            "unknown calendar \"{name}\"; use one of: {} (or define [calendars.{name}] in the configuration)",
            cals.names().collect::<Vec<_>>().join(", ")
        ),
    }
}

/// RFC 3339 with the calendar's UTC offset at that instant (`+01:00` or `+02:00` in Berlin).
fn local_rfc3339(cal: &Calendar, t: Timestamp) -> String {
    t.display_with_offset(cal.time_zone().to_offset(t))
        .to_string()
}

fn write_calendar(out: &mut impl Write, cal: &Calendar, year: i16) -> Result<()> {
    let spec = cal.spec();
    let holidays = spec.holidays.map_or("no public holidays".to_string(), |s| {
        format!("public holidays of {s}")
    });
    writeln!(out, "calendar {} — {holidays}, Europe/Berlin", spec.name)?;
    writeln!(out, "weekly hours:")?;
    for (day, spans) in ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        .iter()
        .zip(&spec.weekly)
    {
        let hours = if spans.is_empty() {
            "closed".to_string()
        } else {
            spans
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        writeln!(out, "  {day}  {hours}")?;
    }
    let tz = cal.time_zone();
    let start = Date::new(year, 1, 1)?.to_zoned(tz.clone())?.timestamp();
    let end = Date::new(year, 12, 31)?
        .tomorrow()?
        .to_zoned(tz.clone())?
        .timestamp();
    // Service hours are wall-clock hours: these days are an hour shorter or longer.
    let switches: Vec<String> = tz
        .following(start)
        .take_while(|t| t.timestamp() < end)
        .map(|t| {
            let before = tz.to_offset(t.timestamp() - jiff::SignedDuration::from_secs(1));
            format!(
                "{} ({} → {})",
                t.timestamp().to_zoned(tz.clone()).date(),
                before,
                t.offset()
            )
        })
        .collect();
    if !switches.is_empty() {
        writeln!(out, "clock changes in {year}: {}", switches.join(", "))?;
    }
    writeln!(out, "closed days in {year}:")?;
    for (date, why) in cal.closed_days(year) {
        writeln!(out, "  {date} {}  {why}", date.strftime("%a"))?;
    }
    let open: Vec<_> = spec
        .open
        .iter()
        .filter_map(|o| o.day.in_year(year).map(|d| (d, o)))
        .collect();
    if !open.is_empty() {
        writeln!(out, "extra open days in {year}:")?;
        for (date, o) in open {
            let hours = o.hours.as_ref().map_or("weekly hours".to_string(), |h| {
                h.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            });
            writeln!(out, "  {date} {}  {hours}", date.strftime("%a"))?;
        }
    }
    Ok(())
}
