//! `[announcements]`: how notices to distribution lists treat their members.
//!
//! ```toml
//! [announcements]
//! bounce_limit = 3
//! ```
use serde::Deserialize;
use toml::Spanned;

use super::{Diagnostics, SourceText, at};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawAnnouncements {
    bounce_limit: Spanned<i64>,
}

impl Default for RawAnnouncements {
    fn default() -> Self {
        Self {
            bounce_limit: Spanned::new(0..0, i64::from(DEFAULT_BOUNCE_LIMIT)),
        }
    }
}

/// Three failures: one full mailbox or a server down for days bounces once or twice, an
/// address that is gone bounces every time.
const DEFAULT_BOUNCE_LIMIT: u32 = 3;
/// More than this is no limit a person means: the member would bounce for years.
const MAX_BOUNCE_LIMIT: i64 = 1000;

#[derive(Debug, Clone)]
pub struct AnnouncementSettings {
    /// After this many notices bounced (failure reports, each notice counted once), a member is
    /// flagged and later notices skip it.
    pub bounce_limit: u32,
}

pub(super) fn validate(
    raw: &RawAnnouncements,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> AnnouncementSettings {
    let limit = *raw.bounce_limit.get_ref();
    let bounce_limit = match u32::try_from(limit) {
        Ok(n) if (1..=MAX_BOUNCE_LIMIT).contains(&limit) => n,
        _ => {
            diags.push(
                src,
                at(&raw.bounce_limit),
                format!("announcements.bounce_limit = {limit} is no number of bounces"),
                format!(
                    "use a number from 1 to {MAX_BOUNCE_LIMIT}: after that many bounced notices a \
                     member is flagged and skipped (default {DEFAULT_BOUNCE_LIMIT})"
                ),
            );
            DEFAULT_BOUNCE_LIMIT
        }
    };
    AnnouncementSettings { bounce_limit }
}
