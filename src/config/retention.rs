//! `[retention]`: how long the store keeps what it holds about people (issue 20, item 1). A
//! `[[queue]]` may keep its tickets longer or shorter (`retention_days`,
//! `anonymise_after_days`). 0 keeps for ever, which is the default: how long a desk may keep
//! citizens' mail is the provider's deletion concept, not poststelle's to guess.
//!
//! ```toml
//! [retention]
//! days = 365                  # raw mail, attachments and texts of closed tickets
//! anonymise_after_days = 730  # then addresses, names and subjects as well
//! quarantine_days = 30        # mail filed on no ticket: quarantined, ignored, refused
//! sent_mail_days = 90         # the texts of mail sent
//! run_at = "03:00"            # Europe/Berlin
//! ```
use jiff::civil::Time;
use serde::Deserialize;
use toml::Spanned;

use super::{Diagnostics, SourceText, at};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawRetention {
    days: Spanned<i64>,
    anonymise_after_days: Spanned<i64>,
    quarantine_days: Spanned<i64>,
    sent_mail_days: Spanned<i64>,
    run_at: Spanned<String>,
}

impl Default for RawRetention {
    fn default() -> Self {
        let zero = || Spanned::new(0..0, 0);
        Self {
            days: zero(),
            anonymise_after_days: zero(),
            quarantine_days: zero(),
            sent_mail_days: zero(),
            run_at: Spanned::new(0..0, DEFAULT_RUN_AT.into()),
        }
    }
}

/// At night, after the day's mail and before the desk opens at 07:00 (hessen, rlp).
const DEFAULT_RUN_AT: &str = "03:00";
/// A hundred years: more is no period a deletion concept means.
const MAX_DAYS: i64 = 36_500;

/// How long what is stored is kept, in days; 0: for ever.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionSettings {
    /// Raw mail, attachment names, article texts and the texts of a ticket's mail, counted
    /// from the day its ticket was closed (or resolved), unless its queue says otherwise.
    pub days: u32,
    /// The ticket's addresses, names and subjects, counted as `days`; what the reports need
    /// (number, times, class, queue, deadline) stays.
    pub anonymise_after_days: u32,
    /// Raw mail filed on no ticket: quarantined (deleted), ignored or refused (bytes deleted).
    pub quarantine_days: u32,
    /// The texts of mail sent (or given up or suppressed), counted from when it was written.
    pub sent_mail_days: u32,
    /// When the daemon applies it each day, Europe/Berlin.
    pub run_at: Time,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            days: 0,
            anonymise_after_days: 0,
            quarantine_days: 0,
            sent_mail_days: 0,
            run_at: Time::constant(3, 0, 0, 0),
        }
    }
}

/// A queue's own periods (`[[queue]] retention_days`, `anonymise_after_days`); `None`: the
/// `[retention]` default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueRetention {
    pub days: Option<u32>,
    pub anonymise_after_days: Option<u32>,
}

fn days(v: &Spanned<i64>, key: &str, what: &str, src: &SourceText, diags: &mut Diagnostics) -> u32 {
    let n = *v.get_ref();
    match u32::try_from(n) {
        Ok(d) if n <= MAX_DAYS => d,
        _ => {
            diags.push(
                src,
                at(v),
                format!("{key} = {n} is no number of days"),
                format!(
                    "use a number of days from 1 to {MAX_DAYS} ({what}), or 0 to keep for ever"
                ),
            );
            0
        }
    }
}

/// Content must not go before the ticket can no longer reopen, and anonymising (which deletes
/// the content too) must not come before the content's own end.
fn check_order(
    name: &str,
    content: u32,
    anonymise: u32,
    reopen_days: u32,
    offset: Option<usize>,
    src: &SourceText,
    diags: &mut Diagnostics,
) {
    let forever = |d: u32| if d == 0 { u32::MAX } else { d };
    if content > 0 && content < reopen_days {
        diags.push(
            src,
            offset,
            format!(
                "{name}: the texts of closed tickets would go after {content} days, while a \
                 follow-up within ingest.reopen_days = {reopen_days} still reopens them"
            ),
            format!("keep them at least {reopen_days} days, or shorten ingest.reopen_days"),
        );
    }
    if anonymise > 0 && forever(anonymise) < forever(content) {
        diags.push(
            src,
            offset,
            format!(
                "{name}: anonymising after {anonymise} days deletes the texts as well, before \
                 their own period ({})",
                if content == 0 {
                    "for ever".to_string()
                } else {
                    format!("{content} days")
                }
            ),
            format!(
                "make anonymise_after_days at least the retention days, or set the retention \
                 days to at most {anonymise}"
            ),
        );
    }
}

pub(super) fn validate(
    raw: &RawRetention,
    reopen_days: u32,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> RetentionSettings {
    let content = days(
        &raw.days,
        "retention.days",
        "texts of closed tickets",
        src,
        diags,
    );
    let anonymise = days(
        &raw.anonymise_after_days,
        "retention.anonymise_after_days",
        "addresses and names of closed tickets",
        src,
        diags,
    );
    check_order(
        "retention",
        content,
        anonymise,
        reopen_days,
        at(&raw.days).or(at(&raw.anonymise_after_days)),
        src,
        diags,
    );
    let run_at = match raw.run_at.get_ref().trim().parse::<Time>() {
        Ok(t) => t,
        Err(_) => {
            diags.push(
                src,
                at(&raw.run_at),
                format!(
                    "retention.run_at = {:?} is no time of day",
                    raw.run_at.get_ref()
                ),
                format!("write hours and minutes, Europe/Berlin, e.g. \"{DEFAULT_RUN_AT}\""),
            );
            RetentionSettings::default().run_at
        }
    };
    RetentionSettings {
        days: content,
        anonymise_after_days: anonymise,
        quarantine_days: days(
            &raw.quarantine_days,
            "retention.quarantine_days",
            "mail filed on no ticket",
            src,
            diags,
        ),
        sent_mail_days: days(
            &raw.sent_mail_days,
            "retention.sent_mail_days",
            "texts of mail sent",
            src,
            diags,
        ),
        run_at,
    }
}

/// A queue's own periods (its `retention_days` and `anonymise_after_days`), checked against
/// each other and the defaults they replace.
#[allow(clippy::too_many_arguments)]
pub(super) fn validate_queue(
    name: &str,
    retention_days: Option<&Spanned<i64>>,
    anonymise_after_days: Option<&Spanned<i64>>,
    defaults: &RetentionSettings,
    reopen_days: u32,
    offset: Option<usize>,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> QueueRetention {
    let key = |k: &str| format!("queue \"{name}\": {k}");
    let own = QueueRetention {
        days: retention_days.map(|v| {
            days(
                v,
                &key("retention_days"),
                "texts of its closed tickets",
                src,
                diags,
            )
        }),
        anonymise_after_days: anonymise_after_days.map(|v| {
            days(
                v,
                &key("anonymise_after_days"),
                "addresses and names of its closed tickets",
                src,
                diags,
            )
        }),
    };
    if own != QueueRetention::default() {
        let at_key = retention_days
            .and_then(at)
            .or(anonymise_after_days.and_then(at))
            .or(offset);
        check_order(
            &format!("queue \"{name}\""),
            own.days.unwrap_or(defaults.days),
            own.anonymise_after_days
                .unwrap_or(defaults.anonymise_after_days),
            reopen_days,
            at_key,
            src,
            diags,
        );
    }
    own
}
