//! What the sender adds for staff work by mail (issue 17): the reply address with the ticket's
//! token on every mail to staff, and the Cc's and attachments of a relayed staff answer.
//!
//! The reply address is derived when the mail is built rather than stored with the row: it is
//! a function of the ticket number and the current key, so there is nothing to store, rows
//! written before the key existed (or before `[reply]` was configured) get it too, and after a
//! key rotation queued mail carries tokens of the new key.
use lettre::message::header::ContentType;
use lettre::message::{Attachment, SinglePart};
use mail_parser::MimeHeaders;

use crate::config::Config;
use crate::store::outbox::Claimed;

/// Kinds of mail that go to staff and so carry the reply address: the staff copy, the
/// escalations and on-call alarms (both `escalation`), and the pending reminders. Forwards go
/// to other desks and systems, which are no queue's staff: an answer from them would only be
/// refused.
const TO_STAFF: [&str; 3] = ["staff_copy", "escalation", "reminder"];

/// The reply address of a mail to staff (`None` for other mail, or while there is no key),
/// with the ticket number the claim read for the row.
pub fn reply_to(config: &Config, c: &Claimed) -> Option<String> {
    if !TO_STAFF.contains(&c.kind.as_str()) || config.settings.reply.keys.is_none() {
        return None;
    }
    c.ticket_number
        .as_deref()
        .and_then(|n| config.settings.reply.address(n))
}

/// The Cc recipients of a row.
pub fn cc(c: &Claimed) -> impl Iterator<Item = &str> {
    c.cc.as_deref().unwrap_or("").split_whitespace()
}

/// Whether the row is a relayed staff answer, whose raw message gives its attachments.
pub fn is_relay(c: &Claimed) -> bool {
    c.kind == crate::store::relay::KIND
}

/// The attachments of a staff member's answer as parts of the relayed mail: each with its
/// name and type, base64-encoded by lettre. Inline parts of an HTML body (images of a
/// signature, say) are not relayed: the relayed answer is text.
pub fn attachments(raw: &[u8]) -> Vec<SinglePart> {
    let Some(msg) = mail_parser::MessageParser::default().parse(raw) else {
        return Vec::new();
    };
    msg.attachments()
        .filter(|part| {
            !part
                .content_disposition()
                .is_some_and(|d| d.ctype().eq_ignore_ascii_case("inline"))
                || part.attachment_name().is_some()
        })
        .map(|part| {
            let name = part
                .attachment_name()
                .map(clean_name)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| "anhang".to_string());
            let ct = part
                .content_type()
                .map(|t| match t.subtype() {
                    Some(sub) => format!("{}/{}", t.ctype(), sub),
                    None => t.ctype().to_string(),
                })
                .and_then(|t| ContentType::parse(&t).ok())
                .unwrap_or(
                    ContentType::parse("application/octet-stream").unwrap_or_else(|_| {
                        unreachable!("application/octet-stream is a content type")
                    }),
                );
            Attachment::new(name).body(part.contents().to_vec(), ct)
        })
        .collect()
}

/// A file name without control characters or path separators.
fn clean_name(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '/' || c == '\\' { '_' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}
