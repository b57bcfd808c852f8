//! Tickets: numbers, filing of inbound mail (new ticket, follow-up, note), and staff's basic
//! operations.
pub mod clock;
pub mod ingest;
mod lookup;
pub mod ops;

use jiff::Timestamp;
use sqlx::AnyConnection;

use crate::store::StoreError;

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
    let mut numbers = reserve_numbers(conn, instance_id, now, 1).await?;
    numbers
        .pop()
        .ok_or(StoreError::IdsExhausted("ticket_counters"))
}

/// `n` consecutive ticket numbers (see [`next_number`]) with one statement. The counter row
/// stays locked (PostgreSQL) or the database write-locked (SQLite) until the caller's
/// transaction ends, so no two transactions get the same numbers; reserve as late as possible.
pub async fn reserve_numbers(
    conn: &mut AnyConnection,
    instance_id: u8,
    now: Timestamp,
    n: usize,
) -> Result<Vec<String>, StoreError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    let day = now
        .to_zoned(crate::time::berlin()?)
        .strftime("%Y%m%d")
        .to_string();
    let n = n as i64;
    let last: i64 = sqlx::query_scalar(
        "INSERT INTO ticket_counters (day, value) VALUES ($1, $2) \
         ON CONFLICT (day) DO UPDATE SET value = ticket_counters.value + excluded.value RETURNING value",
    )
    .bind(&day)
    .bind(n)
    .fetch_one(&mut *conn)
    .await?;
    Ok((last - n + 1..=last)
        .map(|value| format!("{day}{instance_id:02}{value:06}"))
        .collect())
}
