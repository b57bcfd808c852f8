//! Tickets: numbers, filing of inbound mail (new ticket, follow-up, note), and staff's basic
//! operations.
pub mod ingest;
pub mod ops;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use sqlx::AnyConnection;

use crate::store::StoreError;

/// The time zone of every date a person sees.
pub fn berlin() -> TimeZone {
    TimeZone::get("Europe/Berlin").unwrap_or(TimeZone::UTC)
}

/// A ticket's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    New,
    Open,
    Pending,
    Closed,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::New => "new",
            State::Open => "open",
            State::Pending => "pending",
            State::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<State> {
        [State::New, State::Open, State::Pending, State::Closed]
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// The next ticket number, Znuny/OTRS's date-based scheme: `YYYYMMDD` (Europe/Berlin) + the
/// two-digit instance id + a per-day counter of at least six digits, e.g. `2026112310000012`.
/// The counter row is incremented in the caller's transaction, so numbers are unique on both
/// backends however many instances file at once.
pub async fn next_number(
    conn: &mut AnyConnection,
    instance_id: u8,
    now: Timestamp,
) -> Result<String, StoreError> {
    let day = now.to_zoned(berlin()).strftime("%Y%m%d").to_string();
    let value: i64 = sqlx::query_scalar(
        "INSERT INTO ticket_counters (day, value) VALUES ($1, 1) \
         ON CONFLICT (day) DO UPDATE SET value = ticket_counters.value + 1 RETURNING value",
    )
    .bind(&day)
    .fetch_one(&mut *conn)
    .await?;
    Ok(format!("{day}{instance_id:02}{value:06}"))
}
