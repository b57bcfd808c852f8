//! Staff answers relayed to the requester (issue 17, item 2): what a relay needs to know of
//! its ticket (requester, the Cc's of the first mail, the requester's last mail) and the
//! relayed mail's outbox row, which — unlike other rows — has Cc recipients.
use std::collections::HashMap;

use sqlx::{AnyConnection, Row};

use super::buffer::{Val, WriteBuffer};
use super::outbox::OutboxState;
use super::tickets::fetch_in;
use super::{Backend, StoreError};

/// The `outbox.kind` of a relayed staff answer; the sender attaches the attachments of its raw
/// message (the staff member's mail) instead of the whole message.
pub const KIND: &str = "staff_answer";

/// What a relayed answer needs of its ticket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayFacts {
    pub requester: String,
    /// The Cc's of the ticket's first mail (participants with role `cc`).
    pub cc: Vec<String>,
    /// The Message-ID of the most recent mail filed on the ticket (the requester's, or a Cc's).
    pub last_mail: Option<String>,
    /// The Message-ID of the ticket's first mail, the root of its thread.
    pub first_mail: Option<String>,
}

pub(super) fn requesters_sql(ph: &str) -> String {
    format!("SELECT id, requester FROM tickets WHERE id IN ({ph})")
}

pub(super) fn cc_sql(ph: &str) -> String {
    format!(
        "SELECT ticket_id, address FROM participants WHERE ticket_id IN ({ph}) \
         AND role = 'cc' ORDER BY address"
    )
}

pub(super) fn thread_sql(ph: &str) -> String {
    format!(
        "SELECT ticket_id, message_id FROM articles WHERE ticket_id IN ({ph}) \
         AND kind = 'inbound' AND message_id IS NOT NULL ORDER BY id"
    )
}

/// [`RelayFacts`] of each ticket in `ticket_ids`: three statements for a whole batch.
pub async fn relay_facts(
    conn: &mut AnyConnection,
    backend: Backend,
    ticket_ids: &[i64],
) -> Result<HashMap<i64, RelayFacts>, StoreError> {
    let mut out: HashMap<i64, RelayFacts> = HashMap::new();
    if ticket_ids.is_empty() {
        return Ok(out);
    }
    for row in fetch_in(conn, backend, ticket_ids, requesters_sql).await? {
        out.entry(row.try_get("id")?).or_default().requester = row.try_get("requester")?;
    }
    for row in fetch_in(conn, backend, ticket_ids, cc_sql).await? {
        out.entry(row.try_get("ticket_id")?)
            .or_default()
            .cc
            .push(row.try_get("address")?);
    }
    for row in fetch_in(conn, backend, ticket_ids, thread_sql).await? {
        let f = out.entry(row.try_get("ticket_id")?).or_default();
        let id: String = row.try_get("message_id")?;
        f.first_mail.get_or_insert_with(|| id.clone());
        f.last_mail = Some(id);
    }
    Ok(out)
}

/// A relayed answer's outbox row ([`WriteBuffer::relay_outbox`]).
#[derive(Debug, Clone)]
pub struct RelayRow {
    pub ticket_id: i64,
    pub recipient: String,
    pub cc: Vec<String>,
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub refs: Option<String>,
    pub subject: String,
    pub body_text: String,
    /// The staff member's mail, whose attachments go along.
    pub raw_message_id: i64,
    pub at: i64,
}

const RELAY_COLUMNS: &[&str] = &[
    "ticket_id",
    "kind",
    "recipient",
    "cc",
    "message_id",
    "in_reply_to",
    "refs",
    "subject",
    "body_text",
    "auto_submitted",
    "raw_message_id",
    "state",
    "attempts",
    "next_attempt_at",
    "created_at",
];

impl WriteBuffer {
    pub fn relay_outbox(&mut self, r: RelayRow) {
        let cc = (!r.cc.is_empty()).then(|| r.cc.join(" "));
        self.push(
            "outbox",
            RELAY_COLUMNS,
            vec![
                Val::Int(r.ticket_id),
                Val::Text(KIND.into()),
                Val::Text(r.recipient),
                Val::OptText(cc),
                Val::Text(r.message_id),
                Val::OptText(r.in_reply_to),
                Val::OptText(r.refs),
                Val::Text(r.subject),
                Val::Text(r.body_text),
                // A person's answer, relayed: not automatic (RFC 3834).
                Val::Text("no".into()),
                Val::Int(r.raw_message_id),
                Val::Text(OutboxState::Scheduled.as_str().into()),
                Val::Int(0),
                Val::Int(r.at),
                Val::Int(r.at),
            ],
        );
    }
}
