//! Tickets: numbers, filing of inbound mail (new ticket, follow-up, note), and staff's basic
//! operations.
pub mod alerts;
pub mod budget;
pub mod clock;
pub mod handover;
pub mod incident_link;
pub mod ingest;
pub mod notices;
pub mod ops;
pub mod problems;
pub mod staff_reply;
pub mod status_notice;

use jiff::Timestamp;
use sqlx::AnyConnection;

use crate::store::{StoreError, tickets};

pub use crate::store::tickets::TicketState as State;

/// `n` consecutive ticket numbers, Znuny/OTRS's date-based scheme: `YYYYMMDD` (Europe/Berlin),
/// then the two-digit instance id, then a per-day counter of at least six digits, e.g.
/// `2026112310000012`. The counter is taken in the caller's transaction, so numbers are unique
/// on both backends however many instances file at once.
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
    Ok(tickets::reserve_counter(conn, &day, n)
        .await?
        .map(|value| format!("{day}{instance_id:02}{value:06}"))
        .collect())
}
