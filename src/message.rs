//! The message model: what poststelle needs to know of one mail, decoded from its raw bytes by
//! mail-parser. Decoding never panics; a message with no header at all is a [`ParseError`] and
//! goes to quarantine.
use std::borrow::Cow;
use std::ops::Range;
use std::sync::LazyLock;

use mail_parser::{Address, Header, HeaderName, HeaderValue, MessageParser, MimeHeaders};

/// Why a message could not be read at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("the message is empty")]
    Empty,
    #[error("no RFC 5322 header was found; this is not an e-mail message")]
    NoHeaders,
    /// A structure no person's mail has and whose parsing would take time growing faster
    /// than the message (see [`Limits`]).
    #[error("the message is too complex to read: {0}")]
    TooComplex(String),
    #[error("the message has {size} bytes, over the limit of {limit} (ingest.max_message_size)")]
    TooLarge { size: u64, limit: u64 },
    #[error("the mail parser failed on this message (a bug in it; kept for a later version)")]
    ParserFailed,
}

/// What a message may hold before it is quarantined unread. mail-parser's time grows with the
/// square of some counts: each multipart part whose boundary never comes scans the rest of
/// the message again (10,000 such parts in 0.6 MB took 4.8 s), and RFC 2231 parameter
/// continuations are joined one by one (200,000 took 11.5 s); a million header fields take a
/// gigabyte. People's mail stays far below these: a dozen multipart levels, a few parameters
/// per part, at most a few hundred header fields (long Received chains included).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `multipart/…` content types in the whole message, nested ones included.
    pub multiparts: usize,
    /// Parameters (`;`) of Content-Type and Content-Disposition fields, all parts together.
    pub content_parameters: usize,
    /// Fields of the message's own header.
    pub header_fields: usize,
}

impl Limits {
    pub const DEFAULT: Limits = Limits {
        multiparts: 64,
        content_parameters: 4_000,
        header_fields: 2_000,
    };

    /// One pass over the bytes, before any parsing: the counts [`Limits`] caps.
    pub fn check(&self, raw: &[u8]) -> Result<(), ParseError> {
        let mut multiparts = 0usize;
        let mut parameters = 0usize;
        let mut header_fields = 0usize;
        let mut in_top_header = true;
        // Whether the current field (with its folded lines) is a Content-Type/-Disposition.
        let mut content_field = false;
        // Lines found with memchr's vector search, most of them passed by on their first
        // letter: 1.4 µs per 4 KB mail against 16 µs for mail-parser's own parse
        // (benches/classify.rs, prescan_4k).
        let mut start = 0;
        let ends = memchr::memchr_iter(b'\n', raw).chain(std::iter::once(raw.len()));
        for end in ends {
            let line = &raw[start..end];
            start = end + 1;
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let folded = line.first().is_some_and(|&b| b == b' ' || b == b'\t');
            if line.is_empty() {
                in_top_header = false;
                content_field = false;
                continue;
            }
            if !folded && in_top_header {
                header_fields += 1;
            }
            // mail-parser drops blanks in and around a field name (`Content- Type :`) and
            // reads a blank-led first line of a part's header as a field: so does this count,
            // or such spellings would pass it by and reach the quadratic path.
            // A blank-led line otherwise continues the field before it, whatever it holds.
            match content_field_name(line) {
                Some(true) => content_field = true,
                _ if !folded => content_field = false,
                _ => {}
            }
            if content_field {
                multiparts += count_ignore_case(line, b"multipart/");
                parameters += line.iter().filter(|&&b| b == b';').count();
            }
        }
        let over = |what: &str, n: usize, max: usize| {
            Err(ParseError::TooComplex(format!(
                "{n} {what} (at most {max})"
            )))
        };
        if multiparts > self.multiparts {
            return over("multipart parts", multiparts, self.multiparts);
        }
        if parameters > self.content_parameters {
            return over(
                "Content-Type/-Disposition parameters",
                parameters,
                self.content_parameters,
            );
        }
        if header_fields > self.header_fields {
            return over("header fields", header_fields, self.header_fields);
        }
        Ok(())
    }
}

/// The header of a raw message (up to and with the blank line that ends it), at most 256 KiB:
/// what is kept of a message too large to keep whole.
pub fn header_of(raw: &[u8]) -> &[u8] {
    const MAX: usize = 256 * 1024;
    let scan = &raw[..raw.len().min(MAX)];
    let end = scan
        .windows(2)
        .position(|w| w == b"\n\n")
        .map(|i| i + 2)
        .into_iter()
        .chain(
            scan.windows(4)
                .position(|w| w == b"\r\n\r\n")
                .map(|i| i + 4),
        )
        .min()
        .unwrap_or(scan.len());
    &raw[..end]
}

/// Whether `line` starts a header field, and if so whether it is a Content-Type or
/// Content-Disposition field: the name before the colon (at most 64 bytes) with every blank
/// taken out, compared without case. `None` when the line has no field name.
fn content_field_name(line: &[u8]) -> Option<bool> {
    // Most lines start with something else: decided by their first letter.
    let first = line.iter().find(|&&b| b != b' ' && b != b'\t')?;
    if !first.eq_ignore_ascii_case(&b'c') {
        return Some(false);
    }
    let colon = line.iter().take(64).position(|&b| b == b':')?;
    let mut name = [0u8; 64];
    let mut len = 0;
    for &b in &line[..colon] {
        match b {
            b' ' | b'\t' => {}
            33..=126 => {
                name[len] = b.to_ascii_lowercase();
                len += 1;
            }
            _ => return None,
        }
    }
    let name = &name[..len];
    (!name.is_empty()).then_some(name == b"content-type" || name == b"content-disposition")
}

fn count_ignore_case(line: &[u8], needle: &[u8]) -> usize {
    if line.len() < needle.len() {
        return 0;
    }
    line.windows(needle.len())
        .filter(|w| w.eq_ignore_ascii_case(needle))
        .count()
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
    /// A `message/delivery-status` (or global, or feedback-report) part is present.
    pub has_status_part: bool,
    /// The `Disposition` field of a `message/disposition-notification` part (RFC 8098), lower
    /// case and unfolded: what a read receipt reports (`manual-action/MDN-sent-manually;
    /// displayed`). Empty when the part has no such field, `None` without such a part.
    pub disposition: Option<String>,
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
    headers: Headers,
    pub structure: Structure,
}

/// The top-level header fields, all names and values in one string: one allocation for the
/// text of a whole header instead of two per field.
#[derive(Debug, Clone, Default)]
struct Headers {
    text: String,
    /// Per field, in order: where its name ends and its value ends in `text` (each begins
    /// where the one before ends).
    bounds: Vec<(u32, u32)>,
}

impl Headers {
    fn with_capacity(fields: usize, bytes: usize) -> Headers {
        Headers {
            text: String::with_capacity(bytes),
            bounds: Vec::with_capacity(fields),
        }
    }

    /// Ends a field whose name ends at `name_end` and whose value is the rest of `text`.
    fn close(&mut self, name_end: usize) {
        self.bounds
            .push((to_u32(name_end), to_u32(self.text.len())));
    }

    /// Per field, in order: where its name and its value lie in `text`.
    fn spans(&self) -> impl Iterator<Item = (Range<usize>, Range<usize>)> + '_ {
        let mut start = 0;
        self.bounds.iter().map(move |&(name_end, value_end)| {
            let (name_end, value_end) = (name_end as usize, value_end as usize);
            let spans = (start..name_end, name_end..value_end);
            start = value_end;
            spans
        })
    }

    /// The values of the fields named `name` (any case). Called a few dozen times per
    /// message by loop detection and rules, so names are compared by length first and
    /// values sliced only for a field that matches.
    fn values<'a, 'n>(&'a self, name: &'n str) -> impl Iterator<Item = &'a str> + use<'a, 'n> {
        self.spans()
            .filter(move |(n, _)| {
                n.len() == name.len()
                    && self.text.as_bytes()[n.clone()].eq_ignore_ascii_case(name.as_bytes())
            })
            .map(|(_, v)| &self.text[v])
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.spans().map(|(n, v)| (&self.text[n], &self.text[v]))
    }
}

/// Offsets into a message, which mail-parser keeps as `u32` too.
fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The fields mail-parser must parse for poststelle: addresses, ids, the date, the subject and
/// the MIME fields that shape the body. Every other field only needs its raw value, which
/// [`push_header`] reads from the offsets mail-parser records for any field; parsing e.g.
/// Received fields into their parts took an eighth of all parsing time.
fn parser(date: bool) -> MessageParser {
    let p = MessageParser::new()
        .with_mime_headers()
        .header_comma_separated(HeaderName::ContentLanguage)
        .header_address(HeaderName::From)
        .header_address(HeaderName::Sender)
        .header_address(HeaderName::ReplyTo)
        .header_address(HeaderName::To)
        .header_address(HeaderName::Cc)
        .with_message_ids()
        .header_id(HeaderName::ReturnPath)
        .header_text(HeaderName::Subject)
        .header_text(HeaderName::Comments)
        .header_comma_separated(HeaderName::Keywords)
        .default_header_ignore();
    if date {
        p.header_date(HeaderName::Date)
    } else {
        p
    }
}

static PARSER: LazyLock<MessageParser> = LazyLock::new(|| parser(true));

/// mail-parser's date parser reads the two bytes after the first letter of an alphabetic zone
/// unseen: for a one- or two-letter zone at the end of the field (`UT`, military `Z`, both
/// allowed by RFC 5322 4.3) that is the line break, and the field after the Date is swallowed.
/// Such a message is parsed again without the Date, which then goes through the date parser
/// alone, where what follows is the end of the text.
static PARSER_WITHOUT_DATE: LazyLock<MessageParser> = LazyLock::new(|| parser(false));

static DATE_PARSER: LazyLock<MessageParser> = LazyLock::new(|| {
    MessageParser::new()
        .header_date(HeaderName::Date)
        .default_header_ignore()
});

/// mail-parser on `raw`, with a panic inside it turned into an error: a message that makes the
/// parser panic is quarantined like any unreadable one, instead of failing its batch again at
/// every attempt and so blocking the mailbox. (Fuzzing found one: mail-parser 0.11.9 asserts
/// "Invalid part ID, could not find multipart" in debug builds, src/parsers/message.rs:485.)
fn parse_guarded<'x>(
    parser: &MessageParser,
    raw: &'x [u8],
) -> Result<mail_parser::Message<'x>, ParseError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parser.parse(raw)))
        .map_err(|_| ParseError::ParserFailed)?
        .ok_or(ParseError::NoHeaders)
}

/// Whether a Date field took in the line of the field after it (see [`PARSER_WITHOUT_DATE`]).
fn swallowed_next_field(h: &Header<'_>, raw: &[u8]) -> bool {
    h.name == HeaderName::Date
        && raw
            .get(h.offset_start() as usize..h.offset_end() as usize)
            .unwrap_or_default()
            .trim_ascii_end()
            .windows(2)
            .any(|w| w[0] == b'\n' && !w[1].is_ascii_whitespace())
}

/// A Date field's value as a Unix timestamp; `None` when it is no date.
fn parse_date(value: &str) -> Option<i64> {
    let field = format!("Date: {}\r\n\r\n", value.trim());
    DATE_PARSER
        .parse_headers(field.as_bytes())
        .and_then(|m| m.date().map(|d| d.to_timestamp()))
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
        Limits::DEFAULT.check(raw)?;
        let mut msg = parse_guarded(&PARSER, raw)?;
        if msg.headers().iter().any(|h| swallowed_next_field(h, raw)) {
            msg = parse_guarded(&PARSER_WITHOUT_DATE, raw)?;
        }
        if msg.headers().is_empty() {
            return Err(ParseError::NoHeaders);
        }

        let header_bytes = msg.headers().last().map_or(0, |h| h.offset_end() as usize);
        let mut headers = Headers::with_capacity(msg.headers().len(), header_bytes);
        for h in msg.headers() {
            push_header(&mut headers, h, raw);
        }

        let subject = headers
            .iter()
            .find(|(n, _)| *n == "subject")
            .map(|(_, v)| v.to_string())
            .unwrap_or_default();

        let body = {
            let mut body = String::new();
            for (i, &id) in msg.text_body.iter().enumerate() {
                let legacy = msg
                    .parts
                    .get(id as usize)
                    .and_then(|part| undeclared_legacy_text(part, raw));
                if let Some(text) = legacy.map(Cow::Owned).or_else(|| msg.body_text(i)) {
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
                name: attachment_name(part, raw),
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
        let mut mdn_original = None;
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
            } else if !ctype.eq_ignore_ascii_case("message") {
                continue;
            } else if [
                "disposition-notification",
                "global-disposition-notification",
            ]
            .iter()
            .any(|s| sub.eq_ignore_ascii_case(s))
            {
                if structure.disposition.is_none() {
                    let (disposition, original) = mdn_fields(part.contents());
                    structure.disposition = Some(disposition);
                    mdn_original = original;
                }
            } else if [
                "delivery-status",
                "global-delivery-status",
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
                // Sendmail records the null reverse-path as `<MAILER-DAEMON@its host>`.
                let local = addr.rsplit_once('@').map_or(addr.as_str(), |(l, _)| l);
                if addr.is_empty() || local == "mailer-daemon" {
                    ReturnPath::Null
                } else {
                    ReturnPath::Address(addr)
                }
            }
        };

        let date = match msg.date() {
            Some(d) => Some(d.to_timestamp()),
            None => headers.values("date").next().and_then(parse_date),
        };
        let mut message = InboundMessage {
            message_id: msg.message_id().map(clean_id),
            from: address_field(&msg, HeaderName::From, raw)
                .into_iter()
                .next(),
            sender: address_field(&msg, HeaderName::Sender, raw)
                .into_iter()
                .next(),
            to: address_field(&msg, HeaderName::To, raw),
            cc: address_field(&msg, HeaderName::Cc, raw),
            reply_to: address_field(&msg, HeaderName::ReplyTo, raw),
            return_path,
            // A read receipt names the mail it is about in its report (RFC 8098 §3.2.5);
            // clients that write no In-Reply-To leave it only there.
            in_reply_to: match id_list(msg.in_reply_to()) {
                ids if ids.is_empty() => mdn_original.into_iter().collect(),
                ids => ids,
            },
            references: id_list(msg.references()),
            date,
            subject,
            body,
            attachments,
            size: raw.len(),
            headers,
            structure,
        };
        message.scrub();
        Ok(message)
    }

    /// One rule for what no text may hold, in every field that is stored or sent: NUL
    /// becomes U+FFFD, the mark for an undecodable character (PostgreSQL refuses NUL in
    /// text, and an address with it must be recognisably invalid, not silently shortened).
    /// Bytes that are not valid in their charset were already decoded to U+FFFD, or read as
    /// windows-1252 where no charset was declared (see `push_header`).
    fn scrub(&mut self) {
        fn text(s: &mut String) {
            if s.contains('\0') {
                *s = s.replace('\0', "\u{FFFD}");
            }
        }
        fn mailbox(m: &mut Mailbox) {
            text(&mut m.address);
            if let Some(n) = &mut m.name {
                text(n);
            }
        }
        self.message_id.iter_mut().for_each(text);
        self.from.iter_mut().for_each(mailbox);
        self.sender.iter_mut().for_each(mailbox);
        for list in [&mut self.to, &mut self.cc, &mut self.reply_to] {
            list.iter_mut().for_each(mailbox);
        }
        self.in_reply_to.iter_mut().for_each(text);
        self.references.iter_mut().for_each(text);
        text(&mut self.subject);
        text(&mut self.body);
        for a in &mut self.attachments {
            a.name.iter_mut().for_each(text);
            text(&mut a.content_type);
        }
        if let ReturnPath::Address(a) = &mut self.return_path {
            text(a);
        }
    }

    /// The first value of a header field, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.values(name).next()
    }

    /// Every value of a header field, by case-insensitive name.
    pub fn header_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers.values(name)
    }

    /// Every top-level header field in order: lower-cased name and decoded, unfolded value.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers.iter()
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

/// What a disposition notification's body (RFC 8098 §3.2) says: its `Disposition` field,
/// lower case with folded lines joined (empty when there is none), and its
/// `Original-Message-ID`, without angle brackets. Only the first 4 KiB are read: these
/// fields come among a handful of short ones.
fn mdn_fields(body: &[u8]) -> (String, Option<String>) {
    let text = String::from_utf8_lossy(&body[..body.len().min(4096)]);
    let mut disposition = None;
    let mut original = None;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let mut value = value.trim().to_string();
        while let Some(more) = lines.next_if(|l| l.starts_with([' ', '\t'])) {
            value.push(' ');
            value.push_str(more.trim());
        }
        let name = name.trim();
        if name.eq_ignore_ascii_case("disposition") {
            disposition.get_or_insert(value.to_ascii_lowercase());
        } else if name.eq_ignore_ascii_case("original-message-id") {
            let id = clean_id(&value);
            if !id.is_empty() {
                original.get_or_insert(id);
            }
        }
    }
    (disposition.unwrap_or_default(), original)
}

/// The UTF-8 byte-order mark, which Windows tools write at the start of a text file.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// A UTF-8 byte-order mark, blank lines before the header and an mbox `From ` separator line
/// are not part of the message (RFC 5322 starts with a field); Windows tools, exports and
/// some gateways leave them in. A message cannot begin with an empty header (From and Date
/// are required), so blank lines first can only be such a leftover.
fn skip_preamble(raw: &[u8]) -> &[u8] {
    let mut raw = raw.trim_ascii_start();
    while let Some(rest) = raw.strip_prefix(BOM) {
        raw = rest.trim_ascii_start();
    }
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

/// Appends a field to `headers`: its lower-cased name and its text as a person would read it,
/// decoded where mail-parser decoded it, else the raw value unfolded. Raw 8-bit bytes that are
/// not UTF-8 are read as windows-1252, the charset German mail clients used before UTF-8.
///
/// The value is what it would be had mail-parser's default parser read the field (which is
/// what rules were written against), although [`PARSER`] skips most fields: a field that
/// parser reads as raw text is the trimmed raw value, any other field that it does not decode
/// to text is the raw value unfolded.
fn push_header(headers: &mut Headers, h: &Header<'_>, raw: &[u8]) {
    let start = headers.text.len();
    headers.text.push_str(h.name());
    headers.text[start..].make_ascii_lowercase();
    let name_end = headers.text.len();
    let raw_value = raw
        .get(h.offset_start() as usize..h.offset_end() as usize)
        .unwrap_or_default();
    let text = &mut headers.text;
    match &h.value {
        HeaderValue::Text(t)
            if !(t.contains('\u{FFFD}') && std::str::from_utf8(raw_value).is_err()) =>
        {
            text.push_str(t.trim());
        }
        HeaderValue::TextList(l)
            if !(l.iter().any(|t| t.contains('\u{FFFD}'))
                && std::str::from_utf8(raw_value).is_err()) =>
        {
            let joined = text.len();
            for (i, t) in l.iter().enumerate() {
                if i > 0 {
                    text.push_str(", ");
                }
                text.push_str(t);
            }
            trim_tail(text, joined);
        }
        HeaderValue::Empty if raw_by_default(&h.name) => match std::str::from_utf8(raw_value) {
            Ok(value) => text.push_str(value.trim()),
            Err(_) => unfold_into(text, &decode_8bit(raw_value)),
        },
        _ => unfold_into(text, &decode_8bit(raw_value)),
    }
    headers.close(name_end);
}

/// Trims what was appended to `text` from `from` on, as `str::trim` would.
fn trim_tail(text: &mut String, from: usize) {
    let tail = &text[from..];
    let trimmed = tail.trim();
    if trimmed.len() != tail.len() {
        let trimmed = trimmed.to_string();
        text.truncate(from);
        text.push_str(&trimmed);
    }
}

/// Whether mail-parser's default parser reads this field as raw text (every field it has no
/// parser of its own for). Mirrors the `match` in mail-parser's `parse_headers`.
fn raw_by_default(name: &HeaderName<'_>) -> bool {
    !matches!(
        name,
        HeaderName::Subject
            | HeaderName::Comments
            | HeaderName::ContentDescription
            | HeaderName::ContentLocation
            | HeaderName::ContentTransferEncoding
            | HeaderName::From
            | HeaderName::To
            | HeaderName::Cc
            | HeaderName::Bcc
            | HeaderName::ReplyTo
            | HeaderName::Sender
            | HeaderName::ResentTo
            | HeaderName::ResentFrom
            | HeaderName::ResentBcc
            | HeaderName::ResentCc
            | HeaderName::ResentSender
            | HeaderName::ListArchive
            | HeaderName::ListHelp
            | HeaderName::ListId
            | HeaderName::ListOwner
            | HeaderName::ListPost
            | HeaderName::ListSubscribe
            | HeaderName::ListUnsubscribe
            | HeaderName::Date
            | HeaderName::ResentDate
            | HeaderName::MessageId
            | HeaderName::References
            | HeaderName::InReplyTo
            | HeaderName::ReturnPath
            | HeaderName::ContentId
            | HeaderName::ResentMessageId
            | HeaderName::Keywords
            | HeaderName::ContentLanguage
            | HeaderName::Received
            | HeaderName::ContentType
            | HeaderName::ContentDisposition
    )
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

/// Appends `s` to `out` without line breaks, every run of blanks as one space, trimmed.
fn unfold_into(out: &mut String, s: &str) {
    let start = out.len();
    out.reserve(s.len());
    let mut last_space = false;
    // Start of the run of ordinary characters not yet copied. Line breaks and blanks are
    // ASCII, so every run begins and ends on a character boundary; copying runs rather than
    // characters makes this a few memcpys for a typical folded field.
    let mut run = 0;
    for (i, b) in s.bytes().enumerate() {
        if matches!(b, b'\r' | b'\n' | b' ' | b'\t') {
            if run < i {
                out.push_str(&s[run..i]);
                last_space = false;
            }
            run = i + 1;
            if (b == b' ' || b == b'\t') && !last_space {
                out.push(' ');
                last_space = true;
            }
        }
    }
    out.push_str(&s[run..]);
    trim_tail(out, start);
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

/// The mailboxes of the (last, as mail-parser reads it) address field `name`. Names follow
/// [`decode_8bit`]'s rule like every other text: a field in raw 8-bit bytes that are not
/// UTF-8 is read again as windows-1252 for its names. Its addresses keep U+FFFD for those
/// bytes: an address is not text to be guessed at, and one that is not what its server knows
/// must be recognisably invalid (see `diag::is_plausible_address`).
fn address_field(msg: &mail_parser::Message<'_>, name: HeaderName<'_>, raw: &[u8]) -> Vec<Mailbox> {
    let Some(h) = msg.headers().iter().rev().find(|h| h.name == name) else {
        return Vec::new();
    };
    let Some(addr) = h.value.as_address() else {
        return Vec::new();
    };
    let mut list = mailboxes(addr);
    let undecoded = |m: &Mailbox| m.name.as_deref().is_some_and(|n| n.contains('\u{FFFD}'));
    if list.iter().any(undecoded)
        && let Some(HeaderValue::Address(legacy)) = reread_as_legacy(h, raw)
    {
        let names = mailboxes(&legacy);
        if names.len() == list.len() {
            for (m, legacy) in list.iter_mut().zip(names) {
                m.name = legacy.name;
            }
        }
    }
    list
}

/// A part's file name, by the same rule as [`address_field`]'s names.
fn attachment_name(part: &mail_parser::MessagePart<'_>, raw: &[u8]) -> Option<String> {
    let name = part.attachment_name()?;
    if !name.contains('\u{FFFD}') {
        return Some(name.to_string());
    }
    let legacy = |field: HeaderName<'_>, attribute: &str| {
        let h = part.headers.iter().find(|h| h.name == field)?;
        match reread_as_legacy(h, raw)? {
            HeaderValue::ContentType(ct) => ct.attribute(attribute).map(str::to_string),
            _ => None,
        }
    };
    legacy(HeaderName::ContentDisposition, "filename")
        .or_else(|| legacy(HeaderName::ContentType, "name"))
        .or_else(|| Some(name.to_string()))
}

/// A field whose raw value holds 8-bit bytes that are not UTF-8, parsed again from its value
/// read as windows-1252; `None` for a field in UTF-8 (whose U+FFFD came from a declared
/// charset, e.g. an encoded word, and stays).
fn reread_as_legacy(h: &Header<'_>, raw: &[u8]) -> Option<HeaderValue<'static>> {
    let value = raw.get(h.offset_start() as usize..h.offset_end() as usize)?;
    if std::str::from_utf8(value).is_ok() {
        return None;
    }
    let (text, _, _) = encoding_rs::WINDOWS_1252.decode(value);
    let field = format!("{}:{}\n\n", h.name(), text.trim_end());
    let parsed = LEGACY_PARSER.parse_headers(field.as_bytes())?;
    let value = parsed.headers().first()?.value.clone().into_owned();
    Some(value)
}

static LEGACY_PARSER: LazyLock<MessageParser> = LazyLock::new(MessageParser::default);

/// The text of a part that declares no charset and whose bytes are not UTF-8, read as
/// windows-1252 ([`decode_8bit`]'s rule); `None` for every other part, whose text
/// mail-parser decoded (a declared charset's invalid bytes stay U+FFFD).
fn undeclared_legacy_text(part: &mail_parser::MessagePart<'_>, raw: &[u8]) -> Option<String> {
    let (text, html) = match &part.body {
        mail_parser::PartType::Text(t) => (t, false),
        mail_parser::PartType::Html(t) => (t, true),
        _ => return None,
    };
    if !text.contains('\u{FFFD}')
        || part
            .content_type()
            .is_some_and(|ct| ct.attribute("charset").is_some())
    {
        return None;
    }
    let body = raw.get(part.raw_body_offset() as usize..part.raw_end_offset() as usize)?;
    let bytes = match part.encoding {
        mail_parser::Encoding::None => Cow::Borrowed(body),
        mail_parser::Encoding::QuotedPrintable => {
            Cow::Owned(mail_parser::decoders::quoted_printable::quoted_printable_decode(body)?)
        }
        mail_parser::Encoding::Base64 => {
            Cow::Owned(mail_parser::decoders::base64::base64_decode(body)?)
        }
    };
    if std::str::from_utf8(&bytes).is_ok() {
        return None;
    }
    let (text, _, _) = encoding_rs::WINDOWS_1252.decode(&bytes);
    let text = text.trim_end_matches(['\r', '\n']);
    Some(if html {
        mail_parser::decoders::html::html_to_text(text)
    } else {
        text.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a field's value was when every field went through mail-parser's default parser:
    /// the reference [`push_header`] must agree with.
    fn default_parser_text(value: &HeaderValue<'_>, raw_value: &[u8]) -> String {
        let decoded: Option<Cow<'_, str>> = match value {
            HeaderValue::Text(t) => Some(Cow::Borrowed(t.as_ref())),
            HeaderValue::TextList(l) => Some(Cow::Owned(
                l.iter().map(|t| t.as_ref()).collect::<Vec<_>>().join(", "),
            )),
            _ => None,
        };
        match decoded {
            Some(text)
                if !(text.contains('\u{FFFD}') && std::str::from_utf8(raw_value).is_err()) =>
            {
                text.trim().to_string()
            }
            _ => {
                let mut out = String::new();
                unfold_into(&mut out, &decode_8bit(raw_value));
                out
            }
        }
    }

    fn assert_headers_as_default_parser_reads_them(raw: &[u8], what: &str) {
        let Ok(msg) = InboundMessage::parse(raw) else {
            return;
        };
        let raw = cr_to_lf(skip_preamble(raw));
        let reference = MessageParser::default().parse(&raw[..]).expect("parses");
        // Where the default parser's Date swallowed the next field (see
        // `PARSER_WITHOUT_DATE`), it is no reference.
        if reference
            .headers()
            .iter()
            .any(|h| swallowed_next_field(h, &raw))
        {
            return;
        }
        let expected: Vec<(String, String)> = reference
            .headers()
            .iter()
            .map(|h| {
                let raw_value = raw
                    .get(h.offset_start() as usize..h.offset_end() as usize)
                    .unwrap_or_default();
                (
                    h.name().to_ascii_lowercase(),
                    default_parser_text(&h.value, raw_value),
                )
            })
            .collect();
        let actual: Vec<(String, String)> = msg
            .headers()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        assert_eq!(actual, expected, "{what}");
    }

    /// The character-by-character definition [`unfold_into`] must agree with.
    fn unfold_reference(s: &str) -> String {
        let mut out = String::new();
        let mut last_space = false;
        for c in s.chars().filter(|c| !matches!(c, '\r' | '\n')) {
            let space = c == ' ' || c == '\t';
            if !(space && last_space) {
                out.push(if space { ' ' } else { c });
            }
            last_space = space;
        }
        out.trim().to_string()
    }

    #[test]
    fn unfolding_removes_breaks_and_collapses_blanks() {
        for s in [
            "",
            "   ",
            "a",
            "from a.example\r\n\tby b.example;  Mon",
            "a \r\n b",
            "a\r\nb",
            "\t lead and trail \t",
            "Gr\u{fc}\u{df}e\r\n  aus \u{a0}K\u{f6}ln\u{a0}",
            "\u{a0}x\u{a0}",
            "x\n\n\n  \t\ty",
            "\u{1F600} \u{1F600}\t\t",
        ] {
            let mut out = String::from("prefix:");
            unfold_into(&mut out, s);
            assert_eq!(out, format!("prefix:{}", unfold_reference(s)), "{s:?}");
        }
    }

    /// Every field of every mail of the corpus reads as it did with the default parser.
    #[test]
    fn a_date_with_a_short_zone_keeps_the_field_after_it() {
        // 2006-04-22 17:14:50 UTC; RFC 5322 4.3 zones UT and Z are +0000, and the others keep
        // working as before.
        for (zone, offset) in [
            ("UT", 0),
            ("Z", 0),
            ("GMT", 0),
            ("EST", -5 * 3600),
            ("+0200 (CEST)", 2 * 3600),
        ] {
            let raw = format!(
                "Date: Sat, 22 Apr 2006 17:14:50 {zone}\r\nSubject: Drucker defekt\r\n\
                 From: Amt <amt@stadt-a.example>\r\n\r\nText\r\n"
            );
            let m = InboundMessage::parse(raw.as_bytes()).expect("parses");
            assert_eq!(m.subject, "Drucker defekt", "after Date with {zone}");
            assert_eq!(m.from_address(), Some("amt@stadt-a.example"), "{zone}");
            assert_eq!(m.date, Some(1_145_726_090 - offset), "{zone}");
        }
        let raw = b"Date: kein Datum\r\nSubject: x\r\n\r\nText\r\n";
        let m = InboundMessage::parse(raw).expect("parses");
        assert_eq!((m.subject.as_str(), m.date), ("x", None));
    }

    #[test]
    fn header_values_as_with_the_default_parser() {
        fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
            for entry in std::fs::read_dir(dir).expect("corpus directory").flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, out);
                } else {
                    out.push(path);
                }
            }
        }
        let mut files = Vec::new();
        walk(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus"),
            &mut files,
        );
        assert!(files.len() > 400, "the corpus is missing");
        for path in &files {
            let raw = std::fs::read(path).expect("read");
            assert_headers_as_default_parser_reads_them(&raw, &path.display().to_string());
        }
        // Fields the corpus may lack: raw 8-bit text, folds, encoded words, empty values,
        // unknown fields of every kind, lists, ids.
        let fields = [
            "X-Note: caf\u{e9} \r\n  folded\t\tand   spaced  ",
            "X-Latin: Gr\u{fc}\u{df}e",
            "Received: from a.example (a.example [10.0.0.1])\r\n\tby b.example; Mon, 2 Nov 2026 10:00:00 +0100",
            "Received: garbage ((( \"",
            "List-Id: Liste <liste.example.org>",
            "List-Unsubscribe: <mailto:x@example.org>,\r\n <https://example.org/u>",
            "Keywords: eins, zwei,\r\n drei",
            "Comments: =?utf-8?q?F=C3=BCr_Sie?=",
            "Resent-Date: nonsense",
            "Resent-From: =?iso-8859-1?q?M=FCller?= <m@example.org>",
            "Bcc:",
            "X-Empty:   ",
            "MIME-Version: 1.0 (generated)",
            "Content-Language: de-DE, en",
            "References: <a@b> <c@d>\r\n <e@f>",
            "X-Encoded: =?utf-8?b?w4RyZ2Vy?=",
            "X-Nbsp: \u{a0}wert\u{a0}",
        ];
        for field in fields {
            let mut raw = format!("From: a@example.org\r\n{field}\r\nSubject: x\r\n\r\nText\r\n")
                .into_bytes();
            assert_headers_as_default_parser_reads_them(&raw, field);
            // The same in windows-1252, not UTF-8.
            if let (text, _, false) =
                encoding_rs::WINDOWS_1252.encode(&String::from_utf8_lossy(&raw))
            {
                raw = text.into_owned();
                assert_headers_as_default_parser_reads_them(&raw, field);
            }
        }
    }

    /// One rule for bytes that are not valid text: undeclared 8-bit bytes that are not UTF-8
    /// are windows-1252 in every text (names, subject, header values, a body part without
    /// charset, also quoted-printable, a file name); bytes invalid in a declared charset are
    /// U+FFFD; an address or id with such bytes keeps U+FFFD, and so is invalid.
    #[test]
    fn undecodable_bytes_follow_one_rule_in_every_field() {
        let mut raw: Vec<u8> = Vec::new();
        raw.extend_from_slice(
            b"From: J\xfcrgen M\xfcller <j\xfcrgen@example.org>\r\n\
              To: support@example.org\r\n\
              Cc: =?utf-8?q?Kaputt_=FC?= <c@example.org>, \"G\xf6tz\" <g@example.org>\r\n\
              Subject: Gr\xfc\xdfe\r\nX-Note: \xc4rger\r\nMessage-ID: <a\xfcb@example.org>\r\n\
              Content-Type: multipart/mixed; boundary=B\r\n\r\n\
              --B\r\nContent-Type: text/plain\r\n\r\nOhne charset: \xe4\xf6\xfc\r\n\
              --B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nFalsches UTF-8: \xe4\r\n\
              --B\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\
              \r\nQP: =E4=\r\n=FC\r\n\
              --B\r\nContent-Type: application/pdf\r\n\
              Content-Disposition: attachment; filename=\"\xe4nderung.pdf\"\r\n\r\nx\r\n--B--\r\n",
        );
        let m = InboundMessage::parse(&raw).expect("parses");
        let from = m.from.as_ref().expect("from");
        assert_eq!(from.name.as_deref(), Some("Jürgen Müller"));
        assert_eq!(from.address, "j\u{FFFD}rgen@example.org");
        assert!(!crate::diag::is_plausible_address(&from.address));
        let names: Vec<_> = m.cc.iter().map(|c| c.name.as_deref()).collect();
        assert_eq!(names, [Some("Kaputt \u{FFFD}"), Some("Götz")]);
        assert_eq!(m.subject, "Grüße");
        assert_eq!(m.header("x-note"), Some("Ärger"));
        assert_eq!(m.message_id.as_deref(), Some("a\u{FFFD}b@example.org"));
        assert_eq!(
            m.body,
            "Ohne charset: äöü\nFalsches UTF-8: \u{FFFD}\nQP: äü"
        );
        assert_eq!(m.attachments[0].name.as_deref(), Some("änderung.pdf"));
        // The same message in UTF-8 reads the same where the rule allows.
        let utf8 = InboundMessage::parse(
            "From: Jürgen Müller <j@example.org>\r\nSubject: Grüße\r\n\r\nOhne charset: äöü\r\n"
                .as_bytes(),
        )
        .expect("parses");
        assert_eq!(
            utf8.from.and_then(|f| f.name).as_deref(),
            Some("Jürgen Müller")
        );
        assert_eq!(utf8.body.trim_end(), "Ohne charset: äöü");
    }
}
