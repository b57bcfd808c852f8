//! `[[platform]]` tables: the services whose maintenance and incidents are announced, each
//! with its availability calendar, the distribution lists its notices go to, and its regular
//! maintenance windows.
//!
//! ```toml
//! [[platform]]
//! name = "zidkor"
//! description = "ZIDKOR-Plattform Rheinland-Pfalz"
//! calendar = "rlp"
//! lists = ["zidkor-nutzer", "zidkor-kommunen"]
//! maintenance_windows = ["Wed 19:00-23:00", "last Sat 14:00-19:00"]
//! availability_target = 98.0
//! ```
use serde::Deserialize;
use toml::Spanned;

use super::{Diagnostics, SourceText, at, calendars};
use crate::lists::check_list_name;
use crate::maintenance::{RegularWindow, default_windows};
use crate::sla::Calendars;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPlatform {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    /// The calendar availability is measured over; default `sla.calendar`.
    calendar: Option<Spanned<String>>,
    /// Distribution lists its notices go to when none are named.
    #[serde(default)]
    lists: Vec<Spanned<String>>,
    /// Default: Wednesdays 19:00–23:00 and the last Saturday of the month 14:00–19:00.
    maintenance_windows: Option<Vec<Spanned<String>>>,
    /// Percent of the calendar's service time the platform must be available.
    #[serde(default = "default_target")]
    availability_target: Spanned<f64>,
    /// "confirm" (default): an incident monitoring opens is told to the lists once an
    /// operator confirms it; "auto": at once.
    alert_notices: Option<Spanned<String>>,
}

fn default_target() -> Spanned<f64> {
    Spanned::new(0..0, 97.5)
}

/// A platform (Plattform, Fachverfahren): what maintenance and incident notices speak of.
#[derive(Debug, Clone)]
pub struct Platform {
    pub name: String,
    pub description: String,
    /// Name of the calendar its availability is measured over (built in or `[calendars.*]`).
    pub calendar: String,
    /// Names of the distribution lists its notices go to by default, checked as names only:
    /// the lists live in the store, which `check` does not open.
    pub lists: Vec<String>,
    /// Announced maintenance inside one of these needs 7 days' notice, outside 14.
    pub maintenance_windows: Vec<RegularWindow>,
    /// Availability target in percent (0 < target ≤ 100).
    pub availability_target: f64,
    /// Incidents that monitoring alerts open are told to the lists without an operator's
    /// `incident confirm` (`alert_notices = "auto"`).
    pub alert_notices_auto: bool,
}

/// The longest platform name, as for lists: it appears in headers and on the command line.
const MAX_NAME: usize = 64;

fn is_platform_name(name: &str) -> bool {
    name.len() <= MAX_NAME
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

pub(super) fn validate(
    raw: &[Spanned<RawPlatform>],
    calendars: &Calendars,
    default_calendar: &str,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Vec<Platform> {
    let mut platforms: Vec<Platform> = Vec::new();
    for table in raw {
        let offset = table.span().start;
        let p = table.get_ref();
        let name = p.name.get_ref().trim().to_string();
        if !is_platform_name(&name) {
            diags.push(
                src,
                at(&p.name).or(Some(offset)),
                format!(
                    "platform name \"{name}\" is not usable on the command line and in mail headers"
                ),
                format!(
                    "use lower-case letters a-z, digits, '-' and '_', beginning with a letter or \
                     digit, at most {MAX_NAME} characters, e.g. name = \"zidkor\""
                ),
            );
        }
        if platforms.iter().any(|o| o.name == name) {
            diags.push(
                src,
                at(&p.name).or(Some(offset)),
                format!("platform \"{name}\" is defined twice"),
                "remove or rename one of the [[platform]] tables",
            );
        }
        let what = format!("platform \"{name}\"");
        let calendar = match &p.calendar {
            Some(c) => {
                let c_name = c.get_ref().trim();
                calendars::need_calendar(calendars, c_name, at(c), &what, src, diags);
                c_name.to_string()
            }
            None => default_calendar.to_string(),
        };
        let mut lists: Vec<String> = Vec::new();
        for l in &p.lists {
            match check_list_name(l.get_ref()) {
                Ok(list) if lists.contains(&list) => diags.push(
                    src,
                    at(l),
                    format!("{what} names the list \"{list}\" twice"),
                    "name every list once",
                ),
                Ok(list) => lists.push(list),
                Err(e) => diags.push(
                    src,
                    at(l),
                    format!("{what}: {e}"),
                    "name a list as `poststelle lists list` shows it (see README.md, section \
                     'Platforms and announcements')",
                ),
            }
        }
        let maintenance_windows = match &p.maintenance_windows {
            None => default_windows(),
            Some(windows) => windows
                .iter()
                .filter_map(|w| match w.get_ref().parse::<RegularWindow>() {
                    Ok(window) => Some(window),
                    Err(e) => {
                        diags.push(
                            src,
                            at(w),
                            format!(
                                "{what}: maintenance window \"{}\": {}",
                                w.get_ref(),
                                e.problem
                            ),
                            "write a window like \"Wed 19:00-23:00\", \"last Sat 14:00-19:00\" \
                                 or \"first Mon 06:00-08:00\" (see README.md, section \
                                 'Platforms and announcements')",
                        );
                        None
                    }
                })
                .collect(),
        };
        let target = *p.availability_target.get_ref();
        if !(target > 0.0 && target <= 100.0) {
            diags.push(
                src,
                at(&p.availability_target),
                format!("{what}: availability_target = {target} is no share of the service time"),
                "give a percentage above 0 and at most 100, e.g. 97.5",
            );
        }
        let alert_notices_auto = match p.alert_notices.as_ref().map(|a| a.get_ref().trim()) {
            None | Some("confirm") => false,
            Some("auto") => true,
            Some(other) => {
                diags.push(
                    src,
                    p.alert_notices.as_ref().and_then(at),
                    format!("{what}: alert_notices = \"{other}\" is unknown"),
                    "write \"confirm\" (an operator confirms an incident monitoring opened \
                     before its lists hear of it, `poststelle incident confirm ID`) or \"auto\" \
                     (they hear of it at once)",
                );
                false
            }
        };
        platforms.push(Platform {
            name,
            description: p.description.trim().to_string(),
            calendar,
            lists,
            maintenance_windows,
            availability_target: target,
            alert_notices_auto,
        });
    }
    platforms
}
