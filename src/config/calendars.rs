//! `[calendars.NAME]` tables: custom service calendars, validated into [`Calendars`] next to the
//! built-in `hessen` and `rlp`.
//!
//! ```toml
//! [calendars.kdz]
//! hours = { mon-thu = "07:30-12:00, 13:00-17:00", fri = "07:30-13:00" }
//! holidays = "RP"
//! closed = ["rosenmontag", "12-24", "12-31", "2026-06-05"]
//! open = ["2026-12-27 09:00-12:00"]
//! maintenance_is_closed = true   # announced maintenance stops the reaction clock
//! ```
use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use super::{Diagnostics, SourceText, at};
use crate::sla::calendar::{CalendarSpec, DayRule, OpenDay, parse_spans};
use crate::sla::holidays::State;
use crate::sla::{Calendar, Calendars};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCalendar {
    /// Day or day range (`mon`, `mon-fri`) → intervals (`"07:00-12:00, 13:00-17:00"`).
    #[serde(default)]
    hours: BTreeMap<String, Spanned<String>>,
    /// State code whose public holidays close the service.
    holidays: Option<Spanned<String>>,
    #[serde(default)]
    closed: Vec<Spanned<String>>,
    #[serde(default)]
    open: Vec<Spanned<String>>,
    /// Announced maintenance is no service time for reaction deadlines.
    #[serde(default)]
    maintenance_is_closed: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSla {
    /// Calendar of queues that name none.
    #[serde(default = "default_calendar")]
    pub calendar: Spanned<String>,
    /// Share of the reaction budget at which the escalation address is warned.
    #[serde(default = "default_warn")]
    pub warn_at_percent: Spanned<u8>,
    /// A breach hands the ticket to the queue named by `escalate_to`.
    #[serde(default)]
    pub escalation_moves_ticket: bool,
}

impl Default for RawSla {
    fn default() -> Self {
        Self {
            calendar: default_calendar(),
            warn_at_percent: default_warn(),
            escalation_moves_ticket: false,
        }
    }
}

fn default_calendar() -> Spanned<String> {
    Spanned::new(0..0, "hessen".into())
}
fn default_warn() -> Spanned<u8> {
    Spanned::new(0..0, 75)
}

/// Settings of the SLA clock.
#[derive(Debug, Clone)]
pub struct SlaSettings {
    pub calendars: Calendars,
    /// Calendar of queues that name none.
    pub default_calendar: String,
    pub warn_at_percent: u8,
    /// When the deadline of a ticket whose queue has `escalate_to` passes, the ticket moves to
    /// that queue (the hand-over copy is the breach notice) instead of staying where it is
    /// with a notice to the next level.
    pub escalation_moves_ticket: bool,
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/// `mon`, `mon-fri`: the weekday indexes (Monday = 0) a key of `hours` names.
fn day_range(key: &str) -> Option<Vec<usize>> {
    let index = |d: &str| DAYS.iter().position(|x| x.eq_ignore_ascii_case(d.trim()));
    match key.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (index(a)?, index(b)?);
            (a <= b).then(|| (a..=b).collect())
        }
        None => Some(vec![index(key)?]),
    }
}

pub(super) fn validate(
    raw: &BTreeMap<String, Spanned<RawCalendar>>,
    sla: &RawSla,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> SlaSettings {
    let mut calendars = match Calendars::builtin() {
        Ok(c) => c,
        Err(e) => {
            diags.push(
                src,
                None,
                e.to_string(),
                "install the time-zone database (Debian: apt-get install tzdata)",
            );
            Calendars::default()
        }
    };
    for (name, table) in raw {
        let offset = table.span().start;
        if CalendarSpec::builtin(name).is_some() {
            diags.push(
                src,
                Some(offset),
                format!("[calendars.{name}] would replace the built-in calendar \"{name}\""),
                format!(
                    "give your calendar another name, e.g. [calendars.{name}-local], and name it in the queues"
                ),
            );
            continue;
        }
        if let Some(spec) = spec(name, table.get_ref(), offset, src, diags) {
            let Ok(tz) = crate::time::berlin() else {
                continue;
            };
            match Calendar::new(spec, tz) {
                Ok(cal) => calendars.insert(cal),
                Err(e) => diags.push(
                    src,
                    Some(offset),
                    e.to_string(),
                    "give it weekly hours, e.g. hours = { mon-fri = \"08:00-16:00\" }",
                ),
            }
        }
    }
    let default_calendar = sla.calendar.get_ref().trim().to_string();
    need_calendar(
        &calendars,
        &default_calendar,
        at(&sla.calendar),
        "sla.calendar",
        src,
        diags,
    );
    let warn = *sla.warn_at_percent.get_ref();
    if !(1..=99).contains(&warn) {
        diags.push(
            src,
            at(&sla.warn_at_percent),
            format!("sla.warn_at_percent is {warn}, but a warning must come before the breach"),
            "use a share from 1 to 99 (default 75)",
        );
    }
    SlaSettings {
        calendars,
        default_calendar,
        warn_at_percent: warn,
        escalation_moves_ticket: sla.escalation_moves_ticket,
    }
}

/// Reports a calendar name that neither the built-ins nor `[calendars.*]` define.
pub(super) fn need_calendar(
    calendars: &Calendars,
    name: &str,
    offset: Option<usize>,
    what: &str,
    src: &SourceText,
    diags: &mut Diagnostics,
) {
    if calendars.get(name).is_none() {
        diags.push(
            src,
            offset,
            format!("{what} names the unknown calendar \"{name}\""),
            format!(
                "use one of: {}, or define it in a [calendars.{name}] table",
                calendars.names().collect::<Vec<_>>().join(", ")
            ),
        );
    }
}

fn spec(
    name: &str,
    raw: &RawCalendar,
    offset: usize,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Option<CalendarSpec> {
    let before = diags.len();
    let mut weekly: [Vec<_>; 7] = Default::default();
    let mut seen = [false; 7];
    for (key, value) in &raw.hours {
        let Some(days) = day_range(key) else {
            diags.push(
                src,
                at(value),
                format!(
                    "calendars.{name}.hours has the key \"{key}\", which is no day or day range"
                ),
                "use mon, tue, wed, thu, fri, sat, sun or a range such as mon-fri",
            );
            continue;
        };
        match parse_spans(value.get_ref()) {
            Ok(spans) => {
                for d in days {
                    if std::mem::replace(&mut seen[d], true) {
                        diags.push(
                            src,
                            at(value),
                            format!("calendars.{name}.hours gives {} twice", DAYS[d]),
                            "name every day in one key only (several intervals go into one string, separated by commas)",
                        );
                    }
                    weekly[d] = spans.clone();
                }
            }
            Err(e) => diags.push(
                src,
                at(value),
                format!("calendars.{name}.hours.{key}: {e}"),
                "write intervals like \"07:00-12:00, 13:00-17:00\" (24:00 closes at midnight)",
            ),
        }
    }
    let holidays = raw.holidays.as_ref().and_then(|h| {
        let state = h.get_ref().parse::<State>().ok();
        if state.is_none() {
            diags.push(
                src,
                at(h),
                format!(
                    "calendars.{name}.holidays \"{}\" is no German state code",
                    h.get_ref()
                ),
                format!("use one of {}", State::ALL.map(State::code).join(" ")),
            );
        }
        state
    });
    let day_fix = "write a date (2026-06-05), a day of every year (12-24) or a day relative to Easter (easter-48, rosenmontag)";
    let mut closed = Vec::new();
    for c in &raw.closed {
        match DayRule::parse(c.get_ref()) {
            Ok(rule) => closed.push((rule, format!("closed ({})", c.get_ref().trim()))),
            Err(e) => diags.push(src, at(c), format!("calendars.{name}.closed: {e}"), day_fix),
        }
    }
    let mut open = Vec::new();
    for o in &raw.open {
        match OpenDay::parse(o.get_ref()) {
            Ok(day) => open.push(day),
            Err(e) => diags.push(
                src,
                at(o),
                format!("calendars.{name}.open: {e}"),
                format!("{day_fix}, optionally followed by hours: \"2026-12-27 09:00-12:00\""),
            ),
        }
    }
    if raw.hours.is_empty() && open.iter().all(|o: &OpenDay| o.hours.is_none()) {
        diags.push(
            src,
            Some(offset),
            format!("calendar \"{name}\" has no service hours"),
            "add hours = { mon-fri = \"08:00-16:00\" } (or the hours you serve)",
        );
    }
    (diags.len() == before).then(|| CalendarSpec {
        name: name.to_string(),
        weekly,
        holidays,
        closed,
        open,
        maintenance_is_closed: raw.maintenance_is_closed,
    })
}
