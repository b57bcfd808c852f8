//! The message model: what poststelle needs to know of one mail, decoded from its raw bytes by
//! mail-parser. Decoding never panics; a message with no header at all is a [`ParseError`] and
//! goes to quarantine.
use std::borrow::Cow;

use mail_parser::{Address, HeaderName, HeaderValue, MessageParser, MimeHeaders};

/// Why a message could not be read at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("the message is empty")]
    Empty,
    #[error("no RFC 5322 header was found; this is not an e-mail message")]
    NoHeaders,
}

/// A mailbox from an address header: the display name (decoded) and the address, lower-cased.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: String,
}

impl Mailbox {
    pub fn domain(&self) -> &str {
        self.address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }

    pub fn local_part(&self) -> &str {
        self.address
            .rsplit_once('@')
            .map(|(l, _)| l)
            .unwrap_or(&self.address)
    }
}

/// The envelope sender as the delivering MTA recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReturnPath {
    Missing,
    /// `Return-Path: <>`: the null sender of bounces and of RFC 3834 automatic replies.
    Null,
    Address(String),
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Attachment {
    pub name: Option<String>,
    pub content_type: String,
    pub size: usize,
}

/// MIME structure that tells machine-made reports from human mail.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Structure {
    /// `report-type` of a `multipart/report` part (empty when the parameter is missing).
    pub report_type: Option<String>,
    /// A `message/delivery-status` (or global / disposition / feedback) part is present.
    pub has_status_part: bool,
}

/// One inbound mail, decoded.
#[derive(Debug, Clone)]
pub struct InboundMessage {
    /// Without angle brackets.
    pub message_id: Option<String>,
    pub from: Option<Mailbox>,
    pub sender: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    pub reply_to: Vec<Mailbox>,
    pub return_path: ReturnPath,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// Seconds since the Unix epoch, from the Date header.
    pub date: Option<i64>,
    /// Decoded (RFC 2047, any charset), unfolded.
    pub subject: String,
    /// text/plain parts, or HTML converted to text when there is no plain part.
    pub body: String,
    pub attachments: Vec<Attachment>,
    pub size: usize,
    /// Top-level header fields in order: lower-cased name and decoded, unfolded value.
    pub headers: Vec<(String, String)>,
    pub structure: Structure,
}

impl InboundMessage {
    pub fn parse(raw: &[u8]) -> Result<InboundMessage, ParseError> {
        if raw.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(ParseError::Empty);
        }
        let raw = cr_to_lf(skip_preamble(raw));
        let raw: &[u8] = &raw;
        if !starts_with_field(raw) {
            return Err(ParseError::NoHeaders);
        }
        let msg = MessageParser::default()
            .parse(raw)
            .ok_or(ParseError::NoHeaders)?;
        if msg.headers().is_empty() {
            return Err(ParseError::NoHeaders);
        }

        let headers: Vec<(String, String)> = msg
            .headers()
            .iter()
            .map(|h| {
                let name = h.name().to_ascii_lowercase();
                let value = header_text(&h.value, raw, h.offset_start(), h.offset_end());
                (name, value)
            })
            .collect();

        let subject = headers
            .iter()
            .find(|(n, _)| n == "subject")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();

        let body = {
            let mut body = String::new();
            for i in 0..msg.text_body.len() {
                if let Some(text) = msg.body_text(i) {
                    if !body.is_empty() {
                        body.push('\n');
                    }
                    body.push_str(&text);
                }
            }
            body
        };

        let attachments = msg
            .attachments()
            .map(|part| Attachment {
                name: part.attachment_name().map(str::to_string),
                content_type: part
                    .content_type()
                    .map(|ct| match ct.subtype() {
                        Some(sub) => format!("{}/{}", ct.ctype(), sub),
                        None => ct.ctype().to_string(),
                    })
                    .unwrap_or_else(|| "application/octet-stream".into())
                    .to_ascii_lowercase(),
                size: part.len(),
            })
            .collect();

        // Only top-level parts: a bounced original nested in message/rfc822 keeps its own parts.
        let mut structure = Structure::default();
        for part in &msg.parts {
            let Some(ct) = part.content_type() else {
                continue;
            };
            let (ctype, sub) = (ct.ctype(), ct.subtype().unwrap_or(""));
            if ctype.eq_ignore_ascii_case("multipart") && sub.eq_ignore_ascii_case("report") {
                structure.report_type.get_or_insert_with(|| {
                    ct.attribute("report-type")
                        .unwrap_or("")
                        .to_ascii_lowercase()
                });
            } else if ctype.eq_ignore_ascii_case("message")
                && [
                    "delivery-status",
                    "global-delivery-status",
                    "disposition-notification",
                    "global-disposition-notification",
                    "feedback-report",
                ]
                .iter()
                .any(|s| sub.eq_ignore_ascii_case(s))
            {
                structure.has_status_part = true;
            }
        }

        let return_path = match msg.header(HeaderName::ReturnPath) {
            None => ReturnPath::Missing,
            Some(v) => {
                let addr = match v {
                    HeaderValue::Text(t) => t.to_string(),
                    HeaderValue::TextList(l) => {
                        l.first().map(|t| t.to_string()).unwrap_or_default()
                    }
                    HeaderValue::Address(a) => a
                        .first()
                        .and_then(|a| a.address())
                        .unwrap_or("")
                        .to_string(),
                    _ => String::new(),
                };
                let addr = addr
                    .trim()
                    .trim_matches(['<', '>'])
                    .trim()
                    .to_ascii_lowercase();
                if addr.is_empty() {
                    ReturnPath::Null
                } else {
                    ReturnPath::Address(addr)
                }
            }
        };

        Ok(InboundMessage {
            message_id: msg.message_id().map(clean_id),
            from: msg.from().and_then(first_mailbox),
            sender: msg.sender().and_then(first_mailbox),
            to: msg.to().map(mailboxes).unwrap_or_default(),
            cc: msg.cc().map(mailboxes).unwrap_or_default(),
            reply_to: msg.reply_to().map(mailboxes).unwrap_or_default(),
            return_path,
            in_reply_to: id_list(msg.in_reply_to()),
            references: id_list(msg.references()),
            date: msg.date().map(|d| d.to_timestamp()),
            subject,
            body,
            attachments,
            size: raw.len(),
            headers,
            structure,
        })
    }

    /// The first value of a header field, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of a header field, by case-insensitive name.
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The sender's address, lower-case.
    pub fn from_address(&self) -> Option<&str> {
        self.from.as_ref().map(|m| m.address.as_str())
    }

    /// To and Cc recipients.
    pub fn recipients(&self) -> impl Iterator<Item = &Mailbox> {
        self.to.iter().chain(self.cc.iter())
    }
}

/// Blank lines before the header and an mbox `From ` separator line are not part of the
/// message (RFC 5322 starts with a field); exports and some gateways leave them in.
fn skip_preamble(raw: &[u8]) -> &[u8] {
    let start = raw
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(raw.len());
    let raw = &raw[start..];
    if raw.starts_with(b"From ") {
        let end = raw
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
            .unwrap_or(raw.len());
        let rest = &raw[end..];
        return rest
            .strip_prefix(b"\r\n")
            .or_else(|| rest.strip_prefix(b"\n"))
            .or_else(|| rest.strip_prefix(b"\r"))
            .unwrap_or(rest);
    }
    raw
}

/// RFC 5322: a message begins with a header field, `name:` with a name of printable ASCII
/// (the obsolete syntax allows blanks before the colon).
fn starts_with_field(raw: &[u8]) -> bool {
    let name_len = raw
        .iter()
        .take_while(|&&b| (33..=126).contains(&b) && b != b':')
        .count();
    name_len > 0
        && raw[name_len..]
            .iter()
            .find(|&&b| b != b' ' && b != b'\t')
            .is_some_and(|&b| b == b':')
}

/// Classic Mac files end lines with a bare CR, which no mail parser reads as a line end; such
/// a message (CR but no LF at all) is rewritten with LF.
fn cr_to_lf(raw: &[u8]) -> Cow<'_, [u8]> {
    if raw.contains(&b'\r') && !raw.contains(&b'\n') {
        Cow::Owned(
            raw.iter()
                .map(|&b| if b == b'\r' { b'\n' } else { b })
                .collect(),
        )
    } else {
        Cow::Borrowed(raw)
    }
}

/// The text of a header as a person would read it: decoded where mail-parser decoded it, else
/// the raw value unfolded. Raw 8-bit bytes that are not UTF-8 are read as windows-1252, the
/// charset German mail clients used before UTF-8.
fn header_text(value: &HeaderValue<'_>, raw: &[u8], start: u32, end: u32) -> String {
    let raw_value = raw.get(start as usize..end as usize).unwrap_or_default();
    let decoded: Option<Cow<'_, str>> = match value {
        HeaderValue::Text(t) => Some(Cow::Borrowed(t.as_ref())),
        HeaderValue::TextList(l) => Some(Cow::Owned(
            l.iter().map(|t| t.as_ref()).collect::<Vec<_>>().join(", "),
        )),
        _ => None,
    };
    match decoded {
        Some(text) if !(text.contains('\u{FFFD}') && std::str::from_utf8(raw_value).is_err()) => {
            text.trim().to_string()
        }
        _ => unfold(&decode_8bit(raw_value)),
    }
}

fn decode_8bit(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => {
            let (text, _, _) = encoding_rs::WINDOWS_1252.decode(bytes);
            text
        }
    }
}

fn unfold(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last_space = false;
    for c in s.chars() {
        if c == '\r' || c == '\n' {
            continue;
        }
        let space = c == ' ' || c == '\t';
        if space && last_space {
            continue;
        }
        out.push(if space { ' ' } else { c });
        last_space = space;
    }
    out.trim().to_string()
}

fn clean_id(id: &str) -> String {
    id.trim().trim_matches(['<', '>']).trim().to_string()
}

fn id_list(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(t) => vec![clean_id(t)],
        HeaderValue::TextList(l) => l.iter().map(|t| clean_id(t)).collect(),
        _ => Vec::new(),
    }
    .into_iter()
    .filter(|id| !id.is_empty())
    .collect()
}

fn mailboxes(addr: &Address<'_>) -> Vec<Mailbox> {
    addr.iter()
        .filter_map(|a| {
            let address = a.address()?.trim().to_ascii_lowercase();
            (!address.is_empty()).then(|| Mailbox {
                name: a
                    .name()
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty()),
                address,
            })
        })
        .collect()
}

fn first_mailbox(addr: &Address<'_>) -> Option<Mailbox> {
    mailboxes(addr).into_iter().next()
}
