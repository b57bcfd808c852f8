//! `[alerts]` and `[problems]`: how monitoring mail becomes incidents (issue 19) — the
//! Störungsklasse each severity word of the monitoring systems stands for, when a key that
//! changes state too often counts as flapping, which keys are incidents of a platform — and
//! when repeated incidents make a problem.
//!
//! ```toml
//! [alerts]
//! classes = { critical = 1, warning = 2 }   # over the built-in words
//! flapping_changes = 5
//! flapping_window_minutes = 60
//!
//! [[alerts.platform]]
//! key = '^icinga:web0\d\.portal\.'
//! platform = "portal"
//!
//! [problems]
//! count = 3
//! window_days = 7
//! ```
use std::collections::BTreeMap;

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use super::{Diagnostics, Platform, SourceText, at};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawAlerts {
    classes: BTreeMap<String, Spanned<i64>>,
    flapping_changes: Spanned<i64>,
    flapping_window_minutes: Spanned<i64>,
    #[serde(rename = "platform")]
    platforms: Vec<RawKeyPlatform>,
}

impl Default for RawAlerts {
    fn default() -> Self {
        Self {
            classes: BTreeMap::new(),
            flapping_changes: Spanned::new(0..0, DEFAULT_FLAPPING_CHANGES),
            flapping_window_minutes: Spanned::new(0..0, DEFAULT_FLAPPING_MINUTES),
            platforms: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawKeyPlatform {
    key: Spanned<String>,
    platform: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawProblems {
    count: Spanned<i64>,
    window_days: Spanned<i64>,
}

impl Default for RawProblems {
    fn default() -> Self {
        Self {
            count: Spanned::new(0..0, DEFAULT_PROBLEM_COUNT),
            window_days: Spanned::new(0..0, DEFAULT_PROBLEM_DAYS),
        }
    }
}

/// Nagios and Icinga call a check flapping at about a quarter of its last 21 results
/// changing state; five changes within an hour is that for a check every three minutes.
const DEFAULT_FLAPPING_CHANGES: i64 = 5;
const DEFAULT_FLAPPING_MINUTES: i64 = 60;
/// ITIL's rule of thumb for problem management: the third recurrence within a week.
const DEFAULT_PROBLEM_COUNT: i64 = 3;
const DEFAULT_PROBLEM_DAYS: i64 = 7;

/// The severity words of Icinga 2 and Nagios (CRITICAL, WARNING, UNKNOWN, DOWN), Checkmk
/// (CRIT, WARN, UNKN), Zabbix (Disaster, High, Average, Warning, Information, Not
/// classified) and Alertmanager's customary `severity` label (critical, warning, info, page),
/// and the class (MISSION §2) each stands for.
const BUILT_IN_CLASSES: [(&str, u8); 20] = [
    ("critical", 1),
    ("crit", 1),
    ("down", 1),
    ("unreachable", 1),
    ("unreach", 1),
    ("disaster", 1),
    ("page", 1),
    ("high", 2),
    ("warning", 2),
    ("warn", 2),
    ("error", 2),
    ("average", 3),
    ("unknown", 3),
    ("unkn", 3),
    ("minor", 3),
    ("information", 4),
    ("info", 4),
    ("not classified", 4),
    ("none", 4),
    ("notice", 4),
];

/// How monitoring mail is filed (`[alerts]`).
#[derive(Debug, Clone)]
pub struct AlertSettings {
    /// Störungsklasse per severity word (lower case): the built-in words with the
    /// configuration's over them.
    pub classes: BTreeMap<String, u8>,
    /// More state changes than this within `flapping_window` make a key flapping; 0: never.
    pub flapping_changes: u32,
    /// In microseconds.
    pub flapping_window: i64,
    /// Key patterns and the platform whose incident a matching key is, in order.
    pub platforms: Vec<(Regex, String)>,
}

impl AlertSettings {
    /// The class a severity word stands for, if the word is known.
    pub fn class_of(&self, word: &str) -> Option<u8> {
        self.classes.get(&word.trim().to_lowercase()).copied()
    }

    /// The platform of the first `[[alerts.platform]]` whose pattern matches `key`.
    pub fn platform_of(&self, key: &str) -> Option<&str> {
        self.platforms
            .iter()
            .find(|(re, _)| re.is_match(key))
            .map(|(_, p)| p.as_str())
    }
}

/// When repeated incidents make a problem (`[problems]`).
#[derive(Debug, Clone, Copy)]
pub struct ProblemSettings {
    /// Incidents with one fingerprint that make a problem; 0: never.
    pub count: u32,
    /// Within this many days.
    pub window_days: u32,
}

impl ProblemSettings {
    /// The window in microseconds.
    pub fn window(&self) -> i64 {
        i64::from(self.window_days) * 86_400_000_000
    }
}

pub(super) fn validate_alerts(
    raw: &RawAlerts,
    platforms: &[Platform],
    src: &SourceText,
    diags: &mut Diagnostics,
) -> AlertSettings {
    let mut classes: BTreeMap<String, u8> = BUILT_IN_CLASSES
        .iter()
        .map(|(w, c)| (w.to_string(), *c))
        .collect();
    for (word, class) in &raw.classes {
        let v = *class.get_ref();
        match u8::try_from(v) {
            Ok(c @ 1..=4) => {
                classes.insert(word.trim().to_lowercase(), c);
            }
            _ => diags.push(
                src,
                at(class),
                format!("alerts.classes: \"{word}\" = {v} is no Störungsklasse"),
                "give 1 (betriebsverhindernd), 2 (betriebsbehindernd), 3 (leicht) or 4 \
                 (sonstige Anfrage)",
            ),
        }
    }
    let changes = *raw.flapping_changes.get_ref();
    let flapping_changes = match u32::try_from(changes) {
        Ok(n) if n != 1 && n <= 1000 => n,
        _ => {
            diags.push(
                src,
                at(&raw.flapping_changes),
                format!("alerts.flapping_changes = {changes} is no count of state changes"),
                format!(
                    "give how many changes of one key within the window are still normal (a \
                     problem and its recovery are two), at least 2, or 0 to never call a key \
                     flapping (default {DEFAULT_FLAPPING_CHANGES})"
                ),
            );
            DEFAULT_FLAPPING_CHANGES as u32
        }
    };
    let minutes = *raw.flapping_window_minutes.get_ref();
    let flapping_window = if (1..=7 * 24 * 60).contains(&minutes) {
        minutes * 60_000_000
    } else {
        diags.push(
            src,
            at(&raw.flapping_window_minutes),
            format!("alerts.flapping_window_minutes = {minutes} is no window"),
            format!("give minutes from 1 to 10080 (a week), default {DEFAULT_FLAPPING_MINUTES}"),
        );
        DEFAULT_FLAPPING_MINUTES * 60_000_000
    };
    let mut mapped = Vec::new();
    for p in &raw.platforms {
        let pattern = p.key.get_ref();
        let re = match crate::classify::fieldset::compile_one(pattern) {
            Ok(re) => Some(re),
            Err(e) => {
                diags.push(
                    src,
                    at(&p.key),
                    format!(
                        "alerts.platform: key = {pattern:?} is no valid regex: {}",
                        crate::classify::nutzerkonto::one_line(&e.to_string())
                    ),
                    "correct the regular expression (syntax: https://docs.rs/regex/latest/regex/#syntax)",
                );
                None
            }
        };
        let name = p.platform.get_ref().trim().to_string();
        if !platforms.iter().any(|q| q.name == name) {
            let known: Vec<&str> = platforms.iter().map(|q| q.name.as_str()).collect();
            diags.push(
                src,
                at(&p.platform),
                format!("alerts.platform: platform = \"{name}\" names no [[platform]]"),
                if known.is_empty() {
                    format!("add a [[platform]] table with name = \"{name}\"")
                } else {
                    format!("name one of: {}", known.join(", "))
                },
            );
        }
        if let Some(re) = re {
            mapped.push((re, name));
        }
    }
    AlertSettings {
        classes,
        flapping_changes,
        flapping_window,
        platforms: mapped,
    }
}

pub(super) fn validate_problems(
    raw: &RawProblems,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> ProblemSettings {
    let n = *raw.count.get_ref();
    let count = match u32::try_from(n) {
        Ok(c) if c != 1 && c <= 1000 => c,
        _ => {
            diags.push(
                src,
                at(&raw.count),
                format!("problems.count = {n} is no number of incidents"),
                format!(
                    "give how many incidents with one fingerprint make a problem, at least 2, or \
                     0 for no problem records (default {DEFAULT_PROBLEM_COUNT})"
                ),
            );
            DEFAULT_PROBLEM_COUNT as u32
        }
    };
    let d = *raw.window_days.get_ref();
    let window_days = match u32::try_from(d) {
        Ok(days @ 1..=366) => days,
        _ => {
            diags.push(
                src,
                at(&raw.window_days),
                format!("problems.window_days = {d} is no window"),
                format!("give days from 1 to 366 (default {DEFAULT_PROBLEM_DAYS})"),
            );
            DEFAULT_PROBLEM_DAYS as u32
        }
    };
    ProblemSettings { count, window_days }
}
