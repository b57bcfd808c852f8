//! `[status_notices]`: how often the requester of an open class-1 or class-2 ticket hears of
//! it without anything having changed (issue 17, item 4). Which queues send notices at all,
//! and to which observers, is said per `[[queue]]` (`status_notices`, `observers`).
//!
//! ```toml
//! [status_notices]
//! update_every_service_hours = 4
//! ```
use serde::Deserialize;
use toml::Spanned;

use super::{Diagnostics, SourceText, at};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawStatusNotices {
    update_every_service_hours: Spanned<i64>,
}

impl Default for RawStatusNotices {
    fn default() -> Self {
        Self {
            update_every_service_hours: Spanned::new(0..0, i64::from(DEFAULT_UPDATE_HOURS)),
        }
    }
}

/// Four service hours: half a class-1 ticket's working day between two mails (seed 001:
/// "regularly about the state of the work").
const DEFAULT_UPDATE_HOURS: u32 = 4;
/// A service year has about 2,500 hours; more than that is no interval a person means.
const MAX_UPDATE_HOURS: i64 = 2_500;

#[derive(Debug, Clone)]
pub struct StatusNoticeSettings {
    /// Service hours between two updates of an open class-1 or class-2 ticket to its
    /// requester; 0: no periodic updates.
    pub update_every_service_hours: u32,
}

pub(super) fn validate(
    raw: &RawStatusNotices,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> StatusNoticeSettings {
    let hours = *raw.update_every_service_hours.get_ref();
    let update_every_service_hours = match u32::try_from(hours) {
        Ok(n) if hours <= MAX_UPDATE_HOURS => n,
        _ => {
            diags.push(
                src,
                at(&raw.update_every_service_hours),
                format!("status_notices.update_every_service_hours = {hours} is no interval"),
                format!(
                    "use a number of service hours from 1 to {MAX_UPDATE_HOURS}, or 0 for no \
                     periodic updates (default {DEFAULT_UPDATE_HOURS})"
                ),
            );
            DEFAULT_UPDATE_HOURS
        }
    };
    StatusNoticeSettings {
        update_every_service_hours,
    }
}
