//! What a hand-over of a ticket to another queue reads (issue 17, item 5): the ticket as the
//! copy for the new queue names it, its history — the requester's mails, the notes and the
//! answers relayed to the requester, oldest first — and whether the requester was already
//! told the contact person of a Nutzerkonto service.
use std::collections::HashMap;

use sqlx::{AnyConnection, FromRow, Row};

use super::StoreError;
use super::relay::KIND as RELAYED;
use crate::message::Attachment;

/// A ticket as the hand-over copy names it.
#[derive(Debug, Clone, FromRow)]
pub struct HandedTicket {
    pub number: String,
    pub subject: String,
    pub severity: i64,
    pub requester: String,
    pub requester_name: Option<String>,
    pub created_at: i64,
    /// When the request arrived, as its reaction clock has it.
    pub received_at: Option<i64>,
    pub nk_state: Option<String>,
    pub nk_origin: Option<String>,
    pub nk_betreff: Option<String>,
}

pub async fn ticket(conn: &mut AnyConnection, id: i64) -> Result<HandedTicket, StoreError> {
    Ok(sqlx::query_as(
        "SELECT t.number, t.subject, t.severity, t.requester, t.requester_name, t.created_at, \
         s.received_at, t.nk_state, t.nk_origin, t.nk_betreff \
         FROM tickets t LEFT JOIN ticket_sla s ON s.ticket_id = t.id WHERE t.id = $1",
    )
    .bind(id)
    .fetch_one(&mut *conn)
    .await?)
}

/// The Nutzerkonto Betreff of a ticket, `None` for a ticket that is no Nutzerkonto question.
pub async fn nutzerkonto_betreff(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<Option<String>, StoreError> {
    Ok(
        sqlx::query_scalar::<_, Option<String>>("SELECT nk_betreff FROM tickets WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// One article of a ticket's history.
#[derive(Debug, Clone)]
pub struct HistoryRow {
    /// `inbound`, `note`, or `answer` (a staff answer relayed to the requester).
    pub kind: &'static str,
    pub sender: Option<String>,
    pub subject: String,
    /// At most the `max_chars` characters asked for.
    pub body: String,
    /// The body is longer than `body`.
    pub shortened: bool,
    pub created_at: i64,
    pub raw_message_id: Option<i64>,
    pub attachments: Vec<Attachment>,
}

/// The ticket's articles that are its history, oldest first: what came in (inbound mail and
/// notes) and the staff answers relayed to the requester. Our automatic mail — the
/// acknowledgement, automatic replies, staff copies, escalations — is left out: it repeats
/// what came in or says nothing about the matter. Each body is cut after `max_chars`
/// characters in the database, so a huge mail is not read whole for a copy that quotes its
/// start.
pub async fn history(
    conn: &mut AnyConnection,
    id: i64,
    max_chars: usize,
) -> Result<Vec<HistoryRow>, StoreError> {
    let keep = i64::try_from(max_chars)
        .unwrap_or(i64::MAX)
        .saturating_add(1);
    let rows = sqlx::query(
        "SELECT a.id, a.kind, a.sender, a.subject, SUBSTR(a.body, 1, CAST($2 AS INTEGER)) AS body, a.created_at, \
         a.raw_message_id FROM articles a LEFT JOIN outbox o ON o.message_id = a.message_id \
         WHERE a.ticket_id = $1 AND (a.kind <> 'outbound' OR o.kind = $3) \
         ORDER BY a.created_at, a.id",
    )
    .bind(id)
    .bind(keep)
    .bind(RELAYED)
    .fetch_all(&mut *conn)
    .await?;
    let mut attachments: HashMap<i64, Vec<Attachment>> = HashMap::new();
    for row in sqlx::query(
        "SELECT x.article_id, x.name, x.content_type, x.size FROM attachments x \
         JOIN articles a ON a.id = x.article_id WHERE a.ticket_id = $1 ORDER BY x.id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    {
        let size: i64 = row.try_get("size")?;
        attachments
            .entry(row.try_get("article_id")?)
            .or_default()
            .push(Attachment {
                name: row.try_get("name")?,
                content_type: row.try_get("content_type")?,
                size: usize::try_from(size).unwrap_or(0),
            });
    }
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let article: i64 = row.try_get("id")?;
        let kind: String = row.try_get("kind")?;
        let mut body: String = row.try_get("body")?;
        let shortened = body.chars().count() > max_chars;
        if shortened {
            let end = body
                .char_indices()
                .nth(max_chars)
                .map_or(body.len(), |(i, _)| i);
            body.truncate(end);
        }
        out.push(HistoryRow {
            kind: match kind.as_str() {
                "inbound" => "inbound",
                "note" => "note",
                _ => "answer",
            },
            sender: row.try_get("sender")?,
            subject: row.try_get("subject")?,
            body,
            shortened,
            created_at: row.try_get("created_at")?,
            raw_message_id: row.try_get("raw_message_id")?,
            attachments: attachments.remove(&article).unwrap_or_default(),
        });
    }
    Ok(out)
}

/// The Message-ID of the requester's mail the ticket began with and of the most recent one,
/// for threading a mail to the requester.
pub async fn thread(
    conn: &mut AnyConnection,
    id: i64,
) -> Result<(Option<String>, Option<String>), StoreError> {
    let ids: Vec<String> = sqlx::query_scalar(
        "SELECT message_id FROM articles WHERE ticket_id = $1 AND kind = 'inbound' \
         AND message_id IS NOT NULL ORDER BY created_at, id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    Ok((ids.first().cloned(), ids.last().cloned()))
}

/// When mail with `template` went (or is about) to go to the ticket's requester, its
/// Message-ID: mail the loop brake held back never reached anyone and does not count.
pub async fn requester_mail_with(
    conn: &mut AnyConnection,
    id: i64,
    template: &str,
) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT o.message_id FROM outbox o JOIN tickets t ON t.id = o.ticket_id \
         WHERE o.ticket_id = $1 AND o.template = $2 AND o.recipient = t.requester \
         AND o.state <> 'suppressed' ORDER BY o.id LIMIT 1",
    )
    .bind(id)
    .bind(template)
    .fetch_optional(&mut *conn)
    .await?)
}
