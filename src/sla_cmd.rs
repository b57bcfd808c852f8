//! `poststelle sla …`: a window into the deadline engine and its calendars.
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use jiff::Timestamp;
use poststelle::config::Config;
use poststelle::sla::{self, Calendar, Class};

#[derive(Subcommand)]
pub enum SlaCmd {
    /// Print the reaction deadline of a report as RFC 3339 with the Europe/Berlin offset
    Deadline {
        /// A built-in (hessen, rlp) or configured calendar
        #[arg(long)]
        calendar: String,
        /// 1–4 or verhindernd, behindernd, leicht, sonstige
        #[arg(long)]
        class: Class,
        /// When the report arrived, RFC 3339 (2026-11-25T10:00:00+01:00)
        #[arg(long)]
        received: Timestamp,
    },
    /// List a calendar's weekly hours and the days it is closed in a year
    Calendar {
        name: String,
        #[arg(long)]
        year: i16,
    },
}

pub fn run(cfg: &Config, cmd: &SlaCmd) -> Result<ExitCode> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cmd {
        SlaCmd::Deadline {
            calendar,
            class,
            received,
        } => {
            let cal = calendar_named(cfg, calendar)?;
            let due = sla::deadline(&cal, *class, *received)
                .with_context(|| format!("computing the deadline on calendar \"{calendar}\""))?;
            writeln!(out, "{}", local_rfc3339(&cal, due))?;
        }
        SlaCmd::Calendar { name, year } => {
            let cal = calendar_named(cfg, name)?;
            write_calendar(&mut out, &cal, *year)?;
        }
    }
    Ok(ExitCode::SUCCESS)
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
pub fn local_rfc3339(cal: &Calendar, t: Timestamp) -> String {
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
