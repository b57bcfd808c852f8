//! The outbox: every outgoing mail is a row written in the same transaction as the change that
//! causes it, rendered at that moment, and sent later by [`sender`]. A row's state is an
//! [`OutboxState`]; the loop brake holds automatic replies back as Suppressed.
pub mod relay;
pub mod sender;

use jiff::Timestamp;
use serde_json::json;
use sqlx::AnyConnection;

use std::collections::HashMap;

use crate::config::Config;
use crate::store::audit::audit;
use crate::store::buffer::WriteBuffer;
use crate::store::outbox::{NewOutboundArticle, NewOutbox, OutboxState};
use crate::store::{self, Backend, StoreError};

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
    /// To staff: a pending ticket's `pending until` has come.
    Reminder,
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
            Kind::Reminder => "reminder",
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
    store::outbox::recent_auto_replies(conn, backend, recipients, since).await
}

/// Whether the loop brake holds an automatic reply to `recipient` back, and why:
/// `ingest.auto_reply_limit_per_hour` of them went to it within the hour, `stored` of them
/// (from [`recent_auto_replies`]) and the rest in `buf`.
pub fn loop_brake(
    buf: &WriteBuffer,
    config: &Config,
    recipient: &str,
    stored: i64,
) -> Option<String> {
    let limit = config.settings.ingest.auto_reply_limit_per_hour;
    let recent = stored + buf.auto_replies.get(recipient).copied().unwrap_or(0);
    (recent >= i64::from(limit)).then(|| {
        format!(
            "loop brake: {recent} automatic replies to {recipient} in the last hour \
             (ingest.auto_reply_limit_per_hour = {limit})"
        )
    })
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

    let mut state = OutboxState::Scheduled;
    let mut last_error: Option<String> = None;
    if mail.kind.is_auto_reply()
        && let Some(why) = loop_brake(buf, config, mail.recipient, stored_auto_replies)
    {
        state = OutboxState::Suppressed;
        tracing::warn!(
            recipient = mail.recipient,
            why,
            "automatic reply suppressed"
        );
        last_error = Some(why);
    }

    let rendered = config
        .templates
        .render(mail.template, &s.language, mail.context);
    let (subject, text, html) = match rendered {
        Ok(r) => (r.subject, r.text, r.html),
        Err(e) => {
            state = OutboxState::PermanentFailure;
            last_error = Some(format!("template {}: {e}", mail.template));
            (String::new(), String::new(), None)
        }
    };
    let refs = (!mail.references.is_empty()).then(|| mail.references.join(" "));

    if mail.kind.is_auto_reply() && state != OutboxState::Suppressed {
        *buf.auto_replies
            .entry(mail.recipient.to_string())
            .or_default() += 1;
    }
    buf.outbox(NewOutbox {
        ticket_id: mail.ticket_id,
        kind: mail.kind.as_str(),
        template: mail.template.into(),
        recipient: mail.recipient.into(),
        message_id: message_id.clone(),
        in_reply_to: mail.in_reply_to.map(str::to_string),
        refs,
        subject: subject.clone(),
        body_text: text.clone(),
        body_html: html,
        auto_submitted: mail.kind.auto_submitted(),
        raw_message_id: mail.attach_raw,
        state,
        last_error: last_error.clone(),
        at,
    });

    if let Some(ticket_id) = mail.ticket_id {
        if state != OutboxState::Suppressed {
            buf.outbound_article(NewOutboundArticle {
                id: article_ids.next(),
                ticket_id,
                message_id: message_id.clone(),
                sender: s.outbox.from.clone(),
                subject,
                body: text,
                at,
            });
        }
        audit(
            buf,
            at,
            Some(ticket_id),
            None,
            "poststelle",
            if state == OutboxState::Suppressed {
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
