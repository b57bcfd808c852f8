//! The outbox: every outgoing mail is a row written in the same transaction as the change that
//! causes it, rendered at that moment, and sent later by [`sender`]. A row is Scheduled, Sent,
//! TemporaryFailure, PermanentFailure, or Suppressed (held back by the loop brake).
pub mod sender;

use jiff::Timestamp;
use serde_json::json;
use sqlx::AnyConnection;

use std::collections::HashMap;

use sqlx::Row;

use crate::config::Config;
use crate::store::buffer::{Val, WriteBuffer};
use crate::store::{Backend, MAX_PARAMS, StoreError, placeholders};
use crate::ticket::ingest::audit;

/// Why a mail is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The acknowledgement of a new ticket to its requester.
    Acknowledgement,
    /// Another automatic reply to a requester (e.g. the EfA-Outbound contact person).
    AutoReply,
    /// The routed copy for the queue's staff.
    StaffCopy,
    Forward,
    Escalation,
    Notice,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Acknowledgement => "acknowledgement",
            Kind::AutoReply => "auto_reply",
            Kind::StaffCopy => "staff_copy",
            Kind::Forward => "forward",
            Kind::Escalation => "escalation",
            Kind::Notice => "notice",
        }
    }

    /// Replies to a person are `auto-replied` (RFC 3834); everything else is a notice.
    pub fn auto_submitted(self) -> &'static str {
        match self {
            Kind::Acknowledgement | Kind::AutoReply => "auto-replied",
            _ => "auto-generated",
        }
    }

    fn is_auto_reply(self) -> bool {
        matches!(self, Kind::Acknowledgement | Kind::AutoReply)
    }
}

/// Columns of an outbound article row, its reserved id first.
const ARTICLE_COLUMNS_WITH_ID: [&str; 8] = [
    "id",
    "ticket_id",
    "kind",
    "message_id",
    "sender",
    "subject",
    "body",
    "created_at",
];

/// Row states.
pub const SCHEDULED: &str = "scheduled";
pub const SENT: &str = "sent";
pub const TEMPORARY_FAILURE: &str = "temporary_failure";
pub const PERMANENT_FAILURE: &str = "permanent_failure";
pub const SUPPRESSED: &str = "suppressed";

/// A mail to enqueue.
pub struct NewMail<'a> {
    pub ticket_id: Option<i64>,
    pub kind: Kind,
    pub template: &'a str,
    pub recipient: &'a str,
    /// Message-ID (without `<>`) of the mail this one answers.
    pub in_reply_to: Option<&'a str>,
    pub references: Vec<String>,
    pub context: &'a serde_json::Value,
    /// Attach this raw message (the original, for staff copies and forwards).
    pub attach_raw: Option<i64>,
}

/// Renders and writes one outbox row (and the outbound article on its ticket); returns the
/// new mail's Message-ID. Rendering errors do not fail the transaction: the row is recorded as
/// a permanent failure with the error, visible in `outbox list`.
pub async fn enqueue(
    conn: &mut AnyConnection,
    buf: &mut WriteBuffer,
    config: &Config,
    now: Timestamp,
    mail: NewMail<'_>,
) -> Result<String, StoreError> {
    let stored = if mail.kind.is_auto_reply() {
        let backend = Backend::of(conn);
        recent_auto_replies(conn, backend, &[mail.recipient], now)
            .await?
            .remove(mail.recipient)
            .unwrap_or(0)
    } else {
        0
    };
    Ok(enqueue_buffered(
        buf,
        config,
        now,
        mail,
        stored,
        &mut std::iter::empty(),
    ))
}

/// Automatic replies written to each of `recipients` in the hour before `now` (held-back ones
/// not counted), for the loop brake: one query for a whole batch. Recipients with none are
/// missing from the map.
pub async fn recent_auto_replies(
    conn: &mut AnyConnection,
    backend: Backend,
    recipients: &[&str],
    now: Timestamp,
) -> Result<HashMap<String, i64>, StoreError> {
    let since = now.as_microsecond() - 3_600_000_000;
    let mut counts = HashMap::new();
    for chunk in recipients.chunks(MAX_PARAMS - 1) {
        let sql = format!(
            "SELECT recipient, COUNT(*) FROM outbox WHERE recipient IN ({}) \
             AND kind IN ('acknowledgement', 'auto_reply') AND state <> 'suppressed' \
             AND created_at > {} GROUP BY recipient",
            placeholders(backend, 1, chunk.len()),
            placeholders(backend, chunk.len() + 1, 1),
        );
        // Only placeholders are formatted in; the statement differs with the list's length.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).persistent(false);
        for r in chunk {
            q = q.bind(*r);
        }
        for row in q.bind(since).fetch_all(&mut *conn).await? {
            counts.insert(row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?);
        }
    }
    Ok(counts)
}

/// [`enqueue`] without a database round trip: the row, its article and audit line go to the
/// buffer. `stored_auto_replies` is the recipient's count from [`recent_auto_replies`]; the
/// loop brake adds the automatic replies already in the buffer. The outbound article takes its
/// id from `article_ids` (ids the caller reserved), else the next free one.
pub fn enqueue_buffered(
    buf: &mut WriteBuffer,
    config: &Config,
    now: Timestamp,
    mail: NewMail<'_>,
    stored_auto_replies: i64,
    article_ids: &mut dyn Iterator<Item = i64>,
) -> String {
    let s = &config.settings;
    let at = now.as_microsecond();
    // Time-ordered (UUIDv7, 74 random bits): new ids land at the end of the unique indexes on
    // outbox and articles instead of on a random page each, which a batch would all dirty.
    let message_id = format!("{}@{}", uuid::Uuid::now_v7(), s.outbox.message_id_domain);

    let mut state = SCHEDULED;
    let mut last_error: Option<String> = None;
    if mail.kind.is_auto_reply() {
        let recent =
            stored_auto_replies + buf.auto_replies.get(mail.recipient).copied().unwrap_or(0);
        if recent >= i64::from(s.ingest.auto_reply_limit_per_hour) {
            state = SUPPRESSED;
            last_error = Some(format!(
                "loop brake: {recent} automatic replies to {} in the last hour",
                mail.recipient
            ));
            tracing::warn!(
                recipient = mail.recipient,
                recent,
                "automatic reply suppressed"
            );
        }
    }

    let rendered = config
        .templates
        .render(mail.template, &s.language, mail.context);
    let (subject, text, html) = match rendered {
        Ok(r) => (r.subject, r.text, r.html),
        Err(e) => {
            state = PERMANENT_FAILURE;
            last_error = Some(format!("template {}: {e}", mail.template));
            (String::new(), String::new(), None)
        }
    };
    let refs = (!mail.references.is_empty()).then(|| mail.references.join(" "));

    if mail.kind.is_auto_reply() && state != SUPPRESSED {
        *buf.auto_replies
            .entry(mail.recipient.to_string())
            .or_default() += 1;
    }
    buf.push(
        "outbox",
        &[
            "ticket_id",
            "kind",
            "template",
            "recipient",
            "message_id",
            "in_reply_to",
            "refs",
            "subject",
            "body_text",
            "body_html",
            "auto_submitted",
            "raw_message_id",
            "state",
            "attempts",
            "next_attempt_at",
            "last_error",
            "created_at",
        ],
        vec![
            Val::OptInt(mail.ticket_id),
            Val::Text(mail.kind.as_str().into()),
            Val::Text(mail.template.into()),
            Val::Text(mail.recipient.into()),
            Val::Text(message_id.clone()),
            Val::OptText(mail.in_reply_to.map(str::to_string)),
            Val::OptText(refs),
            Val::Text(subject.clone()),
            Val::Text(text.clone()),
            Val::OptText(html),
            Val::Text(mail.kind.auto_submitted().into()),
            Val::OptInt(mail.attach_raw),
            Val::Text(state.into()),
            Val::Int(0),
            Val::Int(at),
            Val::OptText(last_error.clone()),
            Val::Int(at),
        ],
    );

    if let Some(ticket_id) = mail.ticket_id {
        if state != SUPPRESSED {
            let row = vec![
                Val::Int(ticket_id),
                Val::Text("outbound".into()),
                Val::Text(message_id.clone()),
                Val::Text(s.outbox.from.clone()),
                Val::Text(subject),
                Val::Text(text),
                Val::Int(at),
            ];
            match article_ids.next() {
                Some(id) => buf.push("articles", &ARTICLE_COLUMNS_WITH_ID, {
                    let mut r = Vec::with_capacity(8);
                    r.push(Val::Int(id));
                    r.extend(row);
                    r
                }),
                None => buf.push("articles", &ARTICLE_COLUMNS_WITH_ID[1..], row),
            }
        }
        audit(
            buf,
            at,
            Some(ticket_id),
            None,
            "poststelle",
            if state == SUPPRESSED {
                "mail_suppressed"
            } else {
                "mail_enqueued"
            },
            &json!({ "kind": mail.kind.as_str(), "to": mail.recipient, "template": mail.template,
                     "message_id": message_id, "error": last_error }),
        );
    }
    message_id
}
