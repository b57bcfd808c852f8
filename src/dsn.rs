//! What a bounce says about the mail it returns (issue 16, item 6): the delivery status
//! notification's per-recipient `Action` and `Status` (RFC 3464 §2.3), and the Message-IDs of
//! the returned mail (a `message/rfc822` or `message/global` part, or `text/rfc822-headers`
//! with only its header), read from the raw bytes. Pure: no store, no configuration.
//!
//! Only a failure is a bounce that counts: MTAs send `Action: delayed` reports while they
//! still retry (OpenSMTPD after 4 hours, Exchange after 24), and the same mail's `failed`
//! report comes days later. A report of a mail delivered to some recipients and failed for
//! others (an address that expanded to several mailboxes) is no failure of the address.
use std::sync::LazyLock;

use mail_parser::{MessageParser, MimeHeaders, PartType};
use regex::Regex;

/// What the report's recipients add up to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A recipient failed for good and none was delivered.
    Failed(Recipient),
    /// The MTA is still trying (`Action: delayed`, or a 4.x.x Status without an Action).
    Delayed(Recipient),
    /// Delivered, relayed or expanded for at least one recipient.
    Delivered,
    /// A status part without a recipient block that says anything.
    Unreadable,
}

impl Delivery {
    pub fn as_str(&self) -> &'static str {
        match self {
            Delivery::Failed(_) => "failed",
            Delivery::Delayed(_) => "delayed",
            Delivery::Delivered => "delivered",
            Delivery::Unreadable => "unreadable",
        }
    }
}

/// The RFC 3464 `Action` of one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
    Delivered,
    Relayed,
    Expanded,
}

impl Action {
    fn parse(value: &str) -> Option<Action> {
        // "failed (bad destination mailbox address)": the keyword, then what MTAs add.
        let word = value
            .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
            .next()?;
        Some(match word.to_ascii_lowercase().as_str() {
            "failed" | "failure" => Action::Failed,
            "delayed" => Action::Delayed,
            "delivered" => Action::Delivered,
            "relayed" => Action::Relayed,
            "expanded" => Action::Expanded,
            _ => return None,
        })
    }
}

/// One per-recipient block of a delivery status part.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recipient {
    /// `Final-Recipient` (else `Original-Recipient`), the address type taken off.
    pub address: Option<String>,
    pub action: Option<Action>,
    /// `Status`: `5.1.1`.
    pub status: Option<String>,
    /// `Diagnostic-Code`, the type taken off, at most [`MAX_DIAGNOSTIC`] characters.
    pub diagnostic: Option<String>,
}

impl Recipient {
    /// The action, or what the Status class says when an MTA left the Action out.
    fn effective(&self) -> Option<Action> {
        self.action
            .or_else(|| match self.status.as_deref()?.as_bytes().first()? {
                b'5' => Some(Action::Failed),
                b'4' => Some(Action::Delayed),
                b'2' => Some(Action::Delivered),
                _ => None,
            })
    }
}

/// What is kept of a diagnostic: enough for a person to see why, not a whole SMTP transcript.
pub const MAX_DIAGNOSTIC: usize = 300;

/// What a bounce's bytes say.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    /// A `message/delivery-status` (or `global-delivery-status`) part was found.
    pub has_status: bool,
    /// Its per-recipient blocks, in order.
    pub recipients: Vec<Recipient>,
    /// Message-IDs (without angle brackets) of the mail returned with the report.
    pub returned_ids: Vec<String>,
}

impl Report {
    /// What the recipients add up to; `None` without a status part.
    pub fn delivery(&self) -> Option<Delivery> {
        if !self.has_status {
            return None;
        }
        let with = |a: Action| {
            self.recipients
                .iter()
                .find(|r| r.effective() == Some(a))
                .cloned()
        };
        let delivered = [Action::Delivered, Action::Relayed, Action::Expanded]
            .into_iter()
            .any(|a| with(a).is_some());
        Some(match (with(Action::Failed), delivered) {
            (Some(r), false) => Delivery::Failed(r),
            (_, true) => Delivery::Delivered,
            (None, false) => match with(Action::Delayed) {
                Some(r) => Delivery::Delayed(r),
                None => Delivery::Unreadable,
            },
        })
    }
}

/// A `Message-ID:` line of a mail copied into a bounce's text (qmail, old Exim and some
/// gateways return the original inline, not as a part of its own).
static INLINE_ID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?im)^[ \t>]*message-id:[ \t]*<([^<>\s]{1,250})>").expect("static regex")
});

/// Reads the report of a bounce. Anything unreadable is left out: a report that cannot be
/// read has no status part and returns no Message-ID.
pub fn read(raw: &[u8]) -> Report {
    let raw = skip_mbox_line(raw);
    // Old Mac mail tools end lines with CR alone, which mail-parser does not read as lines.
    let lf: Vec<u8>;
    let raw = if raw.contains(&b'\r') && !raw.contains(&b'\n') {
        lf = raw
            .iter()
            .map(|&b| if b == b'\r' { b'\n' } else { b })
            .collect();
        &lf[..]
    } else {
        raw
    };
    let parser = MessageParser::default();
    // mail-parser panicked on crafted input before (src/message.rs): such a report is read as
    // none.
    let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parser.parse(raw)));
    let Ok(Some(msg)) = parsed else {
        return Report::default();
    };
    let mut report = Report::default();
    // `parts` is this message's own tree; a returned message's parts are inside its part and
    // are not walked, so a bounce of a bounce reports only its own status.
    for part in msg.parts.iter().skip(1) {
        let Some(ct) = part.content_type() else {
            continue;
        };
        let (ctype, sub) = (ct.ctype(), ct.subtype().unwrap_or(""));
        if let PartType::Message(inner) = &part.body {
            if let Some(id) = inner.message_id() {
                push_id(&mut report.returned_ids, id);
            }
        } else if ctype.eq_ignore_ascii_case("message")
            && (sub.eq_ignore_ascii_case("delivery-status")
                || sub.eq_ignore_ascii_case("global-delivery-status"))
        {
            report.has_status = true;
            report
                .recipients
                .extend(recipients(&String::from_utf8_lossy(part.contents())));
        } else if ((ctype.eq_ignore_ascii_case("text")
            && sub.eq_ignore_ascii_case("rfc822-headers"))
            || (ctype.eq_ignore_ascii_case("message")
                && sub.eq_ignore_ascii_case("global-headers")))
            && let Some(id) = parser
                .parse_headers(part.contents())
                .and_then(|h| h.message_id().map(str::to_string))
        {
            push_id(&mut report.returned_ids, &id);
        }
    }
    if report.returned_ids.is_empty() {
        let body = &raw[header_len(raw)..];
        for c in INLINE_ID.captures_iter(&String::from_utf8_lossy(body)) {
            push_id(&mut report.returned_ids, &c[1]);
        }
    }
    report
}

fn push_id(ids: &mut Vec<String>, id: &str) {
    let id = id.trim().trim_matches(['<', '>']).trim();
    if !id.is_empty() && !ids.iter().any(|i| i == id) {
        ids.push(id.to_string());
    }
}

/// mbox files and some samples begin with a `From ` line, which is no header field.
fn skip_mbox_line(raw: &[u8]) -> &[u8] {
    let trimmed = raw.trim_ascii_start();
    if trimmed.starts_with(b"From ") {
        let end = trimmed
            .iter()
            .position(|&b| b == b'\n')
            .map_or(trimmed.len(), |i| i + 1);
        return &trimmed[end..];
    }
    raw
}

/// Where the top-level header ends (after its blank line).
fn header_len(raw: &[u8]) -> usize {
    let lf = raw.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    lf.into_iter().chain(crlf).min().unwrap_or(raw.len())
}

/// The per-recipient blocks of a delivery status part's text: field groups separated by blank
/// lines, folded lines joined. The per-message block (Reporting-MTA, Arrival-Date) has none
/// of the recipient fields and is left out.
fn recipients(text: &str) -> Vec<Recipient> {
    let mut out = Vec::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut flush = |fields: &mut Vec<(String, String)>| {
        if let Some(r) = recipient(fields) {
            out.push(r);
        }
        fields.clear();
    };
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            flush(&mut fields);
        } else if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = fields.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            fields.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
        }
    }
    flush(&mut fields);
    out
}

fn recipient(fields: &[(String, String)]) -> Option<Recipient> {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let typed = |v: &str| {
        // "rfc822; anna@example.org", "smtp; 550 5.1.1 …": the type before the semicolon.
        let v = v.split_once(';').map_or(v, |(_, rest)| rest).trim();
        (!v.is_empty()).then(|| v.to_string())
    };
    let address = get("final-recipient")
        .or_else(|| get("original-recipient"))
        .and_then(typed)
        .map(|a| a.trim_matches(['<', '>']).to_string());
    let action = get("action").and_then(Action::parse);
    let status = get("status").and_then(status_code);
    if address.is_none() && action.is_none() && status.is_none() {
        return None;
    }
    let diagnostic = get("diagnostic-code").and_then(typed).map(|d| {
        let d = d.split_whitespace().collect::<Vec<_>>().join(" ");
        match d.char_indices().nth(MAX_DIAGNOSTIC) {
            Some((i, _)) => format!("{}…", &d[..i]),
            None => d,
        }
    });
    Some(Recipient {
        address,
        action,
        status,
        diagnostic,
    })
}

/// `5.1.1` out of `5.1.1 (bad destination mailbox address)`; none when it is no status code.
fn status_code(value: &str) -> Option<String> {
    let code = value.split_whitespace().next()?;
    let mut parts = code.split('.');
    let class = parts.next()?;
    let ok = matches!(class, "2" | "4" | "5")
        && parts.clone().count() == 2
        && parts.all(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()));
    ok.then(|| code.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(status_part: &str, returned: &str) -> Vec<u8> {
        format!(
            "From: MAILER-DAEMON@mx.example\r\nTo: support+b1@example.org\r\n\
             Subject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\n\
             Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\r\n\
             --B\r\nContent-Type: text/plain\r\n\r\nSorry.\r\n\
             --B\r\nContent-Type: message/delivery-status\r\n\r\n{status_part}\r\n\
             --B\r\nContent-Type: message/rfc822\r\n\r\n{returned}\r\n--B--\r\n"
        )
        .into_bytes()
    }

    const RETURNED: &str = "Message-ID: <0193-abc@example.org>\r\nSubject: Wartung\r\n\r\nText\r\n";

    #[test]
    fn a_failure_names_its_recipient_status_and_the_returned_mail() {
        let raw = report(
            "Reporting-MTA: dns; mx.example\r\n\r\nFinal-Recipient: rfc822; anna@kommune.example\r\n\
             Action: failed\r\nStatus: 5.1.1 (user unknown)\r\nDiagnostic-Code: smtp; 550 5.1.1\r\n  <anna@kommune.example>: no such user\r\n",
            RETURNED,
        );
        let r = read(&raw);
        assert_eq!(r.returned_ids, ["0193-abc@example.org"]);
        let Some(Delivery::Failed(rcpt)) = r.delivery() else {
            panic!("{r:?}");
        };
        assert_eq!(rcpt.address.as_deref(), Some("anna@kommune.example"));
        assert_eq!(rcpt.status.as_deref(), Some("5.1.1"));
        assert_eq!(
            rcpt.diagnostic.as_deref(),
            Some("550 5.1.1 <anna@kommune.example>: no such user")
        );
    }

    #[test]
    fn delayed_partial_and_status_only_reports_read_as_rfc_3464_says() {
        let delayed = report(
            "Final-Recipient: rfc822; a@x.example\r\nAction: delayed\r\nStatus: 4.4.7\r\n",
            RETURNED,
        );
        assert!(matches!(
            read(&delayed).delivery(),
            Some(Delivery::Delayed(_))
        ));
        let partial = report(
            "Final-Recipient: rfc822; a@x.example\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n\
             Final-Recipient: rfc822; b@x.example\r\nAction: delivered\r\nStatus: 2.0.0\r\n",
            RETURNED,
        );
        assert_eq!(read(&partial).delivery(), Some(Delivery::Delivered));
        let no_action = report(
            "Final-Recipient: rfc822; a@x.example\r\nStatus: 5.2.2\r\n",
            RETURNED,
        );
        assert!(matches!(
            read(&no_action).delivery(),
            Some(Delivery::Failed(_))
        ));
        let nothing = report("Reporting-MTA: dns; mx.example\r\n", RETURNED);
        assert_eq!(read(&nothing).delivery(), Some(Delivery::Unreadable));
    }

    #[test]
    fn mail_without_a_status_part_has_no_delivery_but_its_inline_copy_is_found() {
        let raw = b"From: MAILER-DAEMON@x\nSubject: failure notice\n\n\
            Hi. This is the qmail-send program.\n\n--- Below this line is a copy of the message.\n\n\
            Message-ID: <0193-abc@example.org>\nSubject: x\n\nbody\n";
        let r = read(raw);
        assert_eq!(r.delivery(), None);
        assert_eq!(r.returned_ids, ["0193-abc@example.org"]);
    }

    #[test]
    fn a_report_with_cr_line_ends_reads_alike() {
        let raw = report(
            "Final-Recipient: rfc822; a@x.example\r\nAction: failed\r\nStatus: 5.1.1\r\n",
            RETURNED,
        );
        let cr: Vec<u8> = String::from_utf8(raw.clone())
            .expect("ascii")
            .replace("\r\n", "\r")
            .into_bytes();
        assert_eq!(read(&cr), read(&raw));
        assert!(matches!(read(&cr).delivery(), Some(Delivery::Failed(_))));
    }

    #[test]
    fn status_codes_are_checked() {
        assert_eq!(status_code("5.7.1"), Some("5.7.1".into()));
        assert_eq!(status_code("550"), None);
        assert_eq!(status_code("3.1.1"), None);
        assert_eq!(status_code("5.1.1234"), None);
    }
}
