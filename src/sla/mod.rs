//! Service levels: calendars of service hours ([`calendar`], [`holidays`]) and the reaction
//! deadlines computed on them ([`deadline`]); platforms' regular maintenance windows ([`window`]).
//!
//! The support contracts count reaction times in *service* hours ("Stunden =
//! Arbeitsstunden"): the clock runs only inside a calendar's service intervals, in
//! Europe/Berlin with its daylight-saving switches.
pub mod calendar;
pub mod deadline;
pub mod holidays;
pub mod report;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use jiff::SignedDuration;

pub use calendar::{Calendar, CalendarSpec};
pub use deadline::{Deadline, deadline};

#[derive(Debug, Clone, thiserror::Error)]
pub enum SlaError {
    #[error(
        "calendar \"{calendar}\" has no service hours on any day, so no deadline is ever reached"
    )]
    NoServiceHours { calendar: String },
    #[error(
        "year {year} is outside the years service calendars cover ({}–{})",
        calendar::MIN_YEAR,
        calendar::MAX_YEAR
    )]
    OutOfRange { year: i64 },
    #[error("the time zone Europe/Berlin is not available: {0}")]
    TimeZone(jiff::Error),
    #[error("date or time out of range: {0}")]
    Time(#[from] jiff::Error),
}

/// Incident class (Störungsklasse), MISSION §2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Class {
    /// betriebsverhindernde Störung: 2 service hours.
    Verhindernd = 1,
    /// betriebsbehindernde Störung: 8 service hours.
    Behindernd = 2,
    /// leichte Störung: 16 service hours.
    Leicht = 3,
    /// sonstige Anfrage: by the close of the 2nd service day after the day of receipt.
    Sonstige = 4,
}

impl Class {
    pub const ALL: [Class; 4] = [
        Class::Verhindernd,
        Class::Behindernd,
        Class::Leicht,
        Class::Sonstige,
    ];

    /// The class of a ticket's severity (1–4).
    pub fn from_severity(severity: i64) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.number() == severity)
    }

    pub fn number(self) -> i64 {
        self as i64
    }

    pub fn name(self) -> &'static str {
        match self {
            Class::Verhindernd => "verhindernd",
            Class::Behindernd => "behindernd",
            Class::Leicht => "leicht",
            Class::Sonstige => "sonstige",
        }
    }

    /// The reaction budget in service time; `None` for class 4, whose deadline is a day.
    pub fn budget(self) -> Option<SignedDuration> {
        match self {
            Class::Verhindernd => Some(SignedDuration::from_hours(2)),
            Class::Behindernd => Some(SignedDuration::from_hours(8)),
            Class::Leicht => Some(SignedDuration::from_hours(16)),
            Class::Sonstige => None,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.number(), self.name())
    }
}

impl FromStr for Class {
    type Err = String;

    /// `1`–`4` or the German name (`verhindernd`, `betriebsverhindernd`, …).
    fn from_str(s: &str) -> Result<Class, String> {
        let s = s.trim().to_lowercase();
        let name = s.strip_prefix("betriebs").unwrap_or(&s);
        Class::ALL
            .into_iter()
            .find(|c| c.number().to_string() == s || c.name() == name)
            .ok_or_else(|| {
                format!("\"{s}\" is no incident class: use 1–4 or verhindernd, behindernd, leicht, sonstige")
            })
    }
}

/// The calendars a configuration knows by name: the built-in ones and its own.
#[derive(Debug, Clone, Default)]
pub struct Calendars {
    by_name: BTreeMap<String, Arc<Calendar>>,
}

impl Calendars {
    /// `hessen` and `rlp`.
    pub fn builtin() -> Result<Calendars, SlaError> {
        let tz = crate::time::berlin().map_err(SlaError::TimeZone)?;
        let mut cals = Calendars::default();
        for spec in [CalendarSpec::hessen(), CalendarSpec::rlp()] {
            cals.insert(Calendar::new(spec, tz.clone())?);
        }
        Ok(cals)
    }

    /// Adds a calendar, replacing one of the same name.
    pub fn insert(&mut self, cal: Calendar) {
        self.by_name.insert(cal.name().to_string(), Arc::new(cal));
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Calendar>> {
        self.by_name.get(name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}
