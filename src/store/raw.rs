//! Raw mail as it arrived, one row per message filed (duplicates excepted): the bytes, where
//! the message came from, and what filing made of it. Quarantined mail is a row with outcome
//! [`RawOutcome::Quarantined`], listed and replayed from here.
use sqlx::{AnyConnection, FromRow, Row};

use super::buffer::{Val, WriteBuffer};
use super::tickets::fetch_in;
use super::{Store, StoreError};

/// What filing made of a message (`raw_messages.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RawOutcome {
    NewTicket,
    FollowUp,
    Note,
    Ignored,
    Quarantined,
    /// Was quarantined, then filed again by `quarantine replay` under a row of its own.
    Replayed,
    /// A staff answer relayed to the requester.
    StaffAnswer,
    /// A mail to a reply address, or a staff answer without one, that changed nothing.
    Refused,
}

impl RawOutcome {
    const ALL: [RawOutcome; 8] = [
        RawOutcome::StaffAnswer,
        RawOutcome::Refused,
        RawOutcome::NewTicket,
        RawOutcome::FollowUp,
        RawOutcome::Note,
        RawOutcome::Ignored,
        RawOutcome::Quarantined,
        RawOutcome::Replayed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RawOutcome::NewTicket => "new_ticket",
            RawOutcome::FollowUp => "follow_up",
            RawOutcome::Note => "note",
            RawOutcome::Ignored => "ignored",
            RawOutcome::Quarantined => "quarantined",
            RawOutcome::Replayed => "replayed",
            RawOutcome::StaffAnswer => "staff_answer",
            RawOutcome::Refused => "refused",
        }
    }
}

impl TryFrom<String> for RawOutcome {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| format!("unknown outcome {s:?} in raw_messages"))
    }
}

/// A message to store ([`WriteBuffer::raw_message`]).
#[derive(Debug, Clone)]
pub struct NewRaw<'a> {
    pub id: i64,
    pub source_key: &'a str,
    pub dedup_key: &'a str,
    pub message_id: Option<&'a str>,
    pub content_hash: &'a str,
    pub bytes: &'a [u8],
    /// The whole message's size (more than `bytes` holds when only its header is kept).
    pub size: i64,
    pub received_at: i64,
    pub outcome: RawOutcome,
    pub reason: &'a str,
    pub ticket_id: Option<i64>,
}

impl WriteBuffer {
    pub fn raw_message(&mut self, r: NewRaw<'_>) {
        self.push(
            "raw_messages",
            &[
                "id",
                "source_key",
                "dedup_key",
                "message_id",
                "content_hash",
                "size",
                "bytes",
                "received_at",
                "outcome",
                "reason",
                "ticket_id",
            ],
            vec![
                Val::Int(r.id),
                Val::Text(r.source_key.into()),
                Val::Text(r.dedup_key.into()),
                Val::OptText(r.message_id.map(str::to_string)),
                Val::Text(r.content_hash.into()),
                Val::Int(r.size),
                Val::Blob(r.bytes.to_vec()),
                Val::Int(r.received_at),
                Val::Text(r.outcome.as_str().into()),
                Val::Text(r.reason.into()),
                Val::OptInt(r.ticket_id),
            ],
        );
    }
}

/// A quarantined message as `quarantine list` shows it.
#[derive(Debug, Clone, FromRow)]
pub struct QuarantineRow {
    pub id: i64,
    pub source_key: String,
    pub size: i64,
    pub reason: String,
    pub received_at: i64,
}

impl Store {
    /// The bytes of a stored message (the original attached to staff copies and forwards).
    pub async fn raw_bytes(&self, id: i64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT bytes FROM raw_messages WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?,
        )
    }

    /// The bytes of the raw messages `ids` of at most `max_size` octets each, in one
    /// statement: the sender reads the originals of a claim's staff copies at once instead of
    /// one round trip each. Larger ones and those no longer stored are missing from the map.
    pub async fn raw_bytes_of(
        &self,
        ids: &[i64],
        max_size: i64,
    ) -> Result<std::collections::HashMap<i64, Vec<u8>>, StoreError> {
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let mut conn = self.pool().acquire().await?;
        let rows = fetch_in(&mut conn, self.backend(), ids, |ph| {
            raw_bytes_of_sql(ph, max_size)
        })
        .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, r.try_get("bytes")?)))
            .collect()
    }

    pub async fn quarantined(&self) -> Result<Vec<QuarantineRow>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, source_key, size, reason, received_at FROM raw_messages \
             WHERE outcome = 'quarantined' ORDER BY id",
        )
        .fetch_all(self.pool())
        .await?)
    }

    /// The bytes, source and size of a quarantined message (of an oversized one the bytes are
    /// only its header).
    pub async fn quarantined_message(
        &self,
        id: i64,
    ) -> Result<Option<(Vec<u8>, String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT bytes, source_key, size FROM raw_messages \
             WHERE id = $1 AND outcome = 'quarantined'",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?)
    }
}

/// Moves a quarantined message's row out of the way of its replay: a new source and dedup key,
/// so that filing it again does not find it as a duplicate of itself. `false` when it is no
/// longer quarantined (replayed meanwhile).
pub async fn make_way_for_replay(conn: &mut AnyConnection, id: i64) -> Result<bool, StoreError> {
    let done = sqlx::query(
        "UPDATE raw_messages SET source_key = $1, dedup_key = $1, outcome = 'replayed' \
         WHERE id = $2 AND outcome = 'quarantined'",
    )
    .bind(format!("replayed:{id}"))
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// A message quarantined outside a filing batch: one over the size limit (only its header is
/// kept, `size` is the whole message's) or one that failed on its own.
#[derive(Debug, Clone)]
pub struct QuarantineEntry<'a> {
    pub source_key: &'a str,
    pub dedup_key: &'a str,
    pub content_hash: &'a str,
    pub bytes: &'a [u8],
    pub size: i64,
    pub reason: &'a str,
    pub at: i64,
}

impl Store {
    /// Records a quarantined message, so that `quarantine list` shows it; `false` when its
    /// source was recorded before (found again after a crash before its move).
    pub async fn record_quarantined(&self, e: &QuarantineEntry<'_>) -> Result<bool, StoreError> {
        let _gate = self.write_gate().await;
        let done = sqlx::query(
            "INSERT INTO raw_messages (source_key, dedup_key, message_id, content_hash, size, \
             bytes, received_at, outcome, reason, ticket_id) \
             VALUES ($1, $2, NULL, $3, $4, $5, $6, 'quarantined', $7, NULL) ON CONFLICT DO NOTHING",
        )
        .bind(e.source_key)
        .bind(e.dedup_key)
        .bind(e.content_hash)
        .bind(e.size)
        .bind(e.bytes)
        .bind(e.at)
        .bind(e.reason)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() > 0)
    }
}

/// The raw messages among `ph` of at most `max_size` octets (an integer, not a text).
pub(super) fn raw_bytes_of_sql(ph: &str, max_size: i64) -> String {
    format!("SELECT id, bytes FROM raw_messages WHERE id IN ({ph}) AND size <= {max_size}")
}
