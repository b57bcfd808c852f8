//! The sender: claims due outbox rows, builds each mail with lettre (every value from incoming
//! mail goes through lettre's header encoders, so CR/LF cannot add a header), sends it through
//! SMTP or the file transport and records the result. Temporary failures come back with
//! exponential backoff and jitter; permanent ones stay visible as such.
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use lettre::message::header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::{AsyncSmtpTransportBuilder, PoolConfig};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::{Config, OutboxSettings, SmtpTls, Transport};
use crate::store::outbox::{Attempt, Claimed, OutboxState};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("SMTP server {host}: {source}")]
    Smtp {
        host: String,
        source: lettre::transport::smtp::Error,
    },
    #[error("CA file {path}: {source}")]
    CaFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("CA file {path}: {message}")]
    CaCert { path: PathBuf, message: String },
    /// The file transport's directory cannot be made: what, where and the fix.
    #[error(transparent)]
    SentDir(crate::diag::Problem),
}

/// Where mail goes.
pub enum Mailer {
    /// Each mail as `<Message-ID>.eml` in `dir`: a mail sent again after a crash (between
    /// writing it and recording it as sent) replaces its own file instead of adding a second.
    File { dir: PathBuf },
    Smtp {
        builder: Box<AsyncSmtpTransportBuilder>,
        /// Replaced by a fresh one (new connections) after a temporary failure.
        transport: tokio::sync::RwLock<AsyncSmtpTransport<Tokio1Executor>>,
    },
}

impl Mailer {
    pub fn from_settings(settings: &OutboxSettings, data_dir: &Path) -> Result<Mailer, SetupError> {
        match &settings.transport {
            Transport::File => {
                let dir = data_dir.join("sent");
                std::fs::create_dir_all(&dir).map_err(|e| {
                    SetupError::SentDir(crate::diag::Problem::at_path(
                        "create the directory for sent mail (outbox.transport = \"file\")",
                        &dir,
                        crate::diag::Wanted::Directory,
                        &e,
                    ))
                })?;
                Ok(Mailer::File { dir })
            }
            Transport::Smtp(smtp) => {
                let host = smtp.host.clone();
                let err = |source| SetupError::Smtp {
                    host: host.clone(),
                    source,
                };
                let tls_params = match &smtp.ca_file {
                    None => TlsParameters::new(smtp.host.clone()).map_err(err)?,
                    Some(path) => {
                        let pem = std::fs::read(path).map_err(|source| SetupError::CaFile {
                            path: path.clone(),
                            source,
                        })?;
                        let cert = Certificate::from_pem(&pem).map_err(|e| SetupError::CaCert {
                            path: path.clone(),
                            message: e.to_string(),
                        })?;
                        TlsParameters::builder(smtp.host.clone())
                            .add_root_certificate(cert)
                            .build()
                            .map_err(err)?
                    }
                };
                let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
                    .port(smtp.port)
                    .timeout(Some(smtp.timeout))
                    .pool_config(PoolConfig::new().max_size(smtp.pool_size));
                b = match smtp.tls {
                    SmtpTls::Starttls => b.tls(Tls::Required(tls_params)),
                    SmtpTls::Implicit => b.tls(Tls::Wrapper(tls_params)),
                    SmtpTls::None => b.tls(Tls::None),
                };
                if let (Some(user), Some(pass)) = (&smtp.username, &smtp.password) {
                    b = b.credentials(Credentials::new(user.clone(), pass.clone()));
                }
                Ok(Mailer::Smtp {
                    transport: tokio::sync::RwLock::new(b.clone().build()),
                    builder: Box::new(b),
                })
            }
        }
    }

    async fn send(&self, msg: Message, message_id: &str) -> Result<(), SendError> {
        match self {
            Mailer::File { dir } => {
                let name = file_name(message_id);
                // Written aside and renamed: a crash mid-write leaves no half mail under the
                // real name (names starting with a dot are not mail).
                let part = dir.join(format!(".{name}.part"));
                let io = |e: std::io::Error| {
                    SendError::Temporary(format!("file transport {}: {e}", dir.display()))
                };
                tokio::fs::write(&part, msg.formatted()).await.map_err(io)?;
                tokio::fs::rename(&part, dir.join(name)).await.map_err(io)
            }
            Mailer::Smtp { builder, transport } => {
                let first = transport.read().await.send(msg.clone()).await;
                let e = match first {
                    Ok(_) => return Ok(()),
                    Err(e) if e.is_permanent() => return Err(SendError::Permanent(e.to_string())),
                    // lettre refuses 8-bit mail to a server without 8BITMIME.
                    Err(e) if e.is_client() && !msg.formatted().is_ascii() => {
                        return Err(SendError::Needs8BitMime(e.to_string()));
                    }
                    Err(e) => e,
                };
                // Servers limit what one connection may do ("452 Too many messages sent")
                // and answer every later mail on it the same way; the pool would keep handing
                // that connection out. Drop the pool and try once more on a new connection.
                tracing::debug!(error = %e, "temporary SMTP failure; retrying on a new connection");
                *transport.write().await = (**builder).clone().build();
                transport
                    .read()
                    .await
                    .send(msg)
                    .await
                    .map(|_| ())
                    .map_err(|e| {
                        if e.is_permanent() {
                            SendError::Permanent(e.to_string())
                        } else {
                            SendError::Temporary(e.to_string())
                        }
                    })
            }
        }
    }

    /// The directory of the file transport, if that is the transport.
    pub fn sent_dir(&self) -> Option<&Path> {
        match self {
            Mailer::File { dir, .. } => Some(dir),
            Mailer::Smtp { .. } => None,
        }
    }
}

enum SendError {
    Temporary(String),
    Permanent(String),
    /// The mail holds 8-bit text (an original) and the server takes none.
    Needs8BitMime(String),
}

/// What one pass of the sender did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub sent: usize,
    pub temporary_failures: usize,
    pub permanent_failures: usize,
}

/// Sends what is due.
pub struct Sender<'a> {
    pub store: &'a Store,
    pub config: &'a Config,
    pub mailer: &'a Mailer,
}

impl Sender<'_> {
    /// Claims up to `limit` due rows and sends them, one after the other.
    pub async fn send_due(&self, limit: i64) -> Result<Summary, StoreError> {
        let claim = self.config.settings.outbox.claim;
        let now = Timestamp::now().as_microsecond();
        let until = now + claim.as_micros() as i64;
        // A row still being sent when its claim runs out may be sent by another instance too:
        // rows not begun before half the claim is used up are handed back instead.
        let begin_by = now + (claim / 2).as_micros() as i64;
        let holder = crate::holder::this_process(self.config.settings.instance_id);
        let rows = self.store.claim_outbox(now, until, limit, &holder).await?;
        let mut summary = Summary::default();
        for (i, c) in rows.iter().enumerate() {
            if Timestamp::now().as_microsecond() > begin_by {
                let rest: Vec<i64> = rows[i..].iter().map(|c| c.id).collect();
                self.store.unclaim_outbox(&rest, &holder).await?;
                break;
            }
            let mut result = self.build_and_send(c, false).await;
            if let Err(SendError::Needs8BitMime(e)) = &result {
                tracing::info!(outbox = c.id, error = %e, "the SMTP server takes no 8-bit mail (no 8BITMIME): sending the original base64-encoded");
                result = self.build_and_send(c, true).await;
            }
            self.record(c, result, &mut summary).await?;
        }
        Ok(summary)
    }

    /// Builds the mail of a row and sends it; `seven_bit` sends an original as base64.
    async fn build_and_send(&self, c: &Claimed, seven_bit: bool) -> Result<(), SendError> {
        let msg = self.build(c, seven_bit).await?;
        self.mailer.send(msg, &c.message_id).await
    }

    async fn build(&self, c: &Claimed, seven_bit: bool) -> Result<Message, SendError> {
        let s = &self.config.settings;
        let from: Mailbox = format!("{} <{}>", quote_name(&s.outbox.from_name), s.outbox.from)
            .parse()
            .map_err(|e| SendError::Permanent(format!("sender address {}: {e}", s.outbox.from)))?;
        let to: Mailbox = c
            .recipient
            .parse()
            .map_err(|e| SendError::Permanent(format!("recipient {}: {e}", c.recipient)))?;
        let mut b = Message::builder();
        // A notice's envelope sender names the mail (VERP): its bounce comes back to an
        // address that says which member and announcement it belongs to.
        if c.list_id.is_some()
            && let Some(sender) =
                crate::verp::bounce_address(&s.outbox.bounce_address, &c.message_id)
        {
            let sender: lettre::Address = sender
                .parse()
                .map_err(|e| SendError::Permanent(format!("envelope sender {sender}: {e}")))?;
            let envelope = lettre::address::Envelope::new(Some(sender), vec![to.email.clone()])
                .map_err(|e| SendError::Permanent(format!("envelope: {e}")))?;
            b = b.envelope(envelope);
        }
        let mut b = b
            .from(from)
            .to(to)
            .subject(c.subject.clone())
            .message_id(Some(format!("<{}>", c.message_id)))
            .date_now();
        b = self.staff_headers(b, c).await?;
        if let Some(irt) = &c.in_reply_to {
            b = b.in_reply_to(format!("<{irt}>"));
        }
        if let Some(refs) = &c.refs {
            let refs: Vec<String> = refs.split_whitespace().map(|r| format!("<{r}>")).collect();
            b = b.references(refs.join(" "));
        }
        let mut headers = vec![
            ("Auto-Submitted", c.auto_submitted.clone()),
            // Asks Exchange and Outlook not to answer automatic mail with automatic mail.
            ("X-Auto-Response-Suppress", "All".to_string()),
            (s.loop_header.as_str(), format!("{:02}", s.instance_id)),
        ];
        if let Some(list_id) = &c.list_id {
            // A notice to a distribution list (RFC 2919); bulk keeps vacation replies away.
            headers.push(("List-Id", list_id.clone()));
            headers.push(("Precedence", "bulk".to_string()));
        }
        for (name, value) in headers {
            let name = HeaderName::new_from_ascii(name.to_string())
                .map_err(|e| SendError::Permanent(format!("header {name}: {e}")))?;
            b = b.raw_header(HeaderValue::new(name, value));
        }
        let original = match c.raw_message_id {
            Some(id) => self
                .store
                .raw_bytes(id)
                .await
                .map_err(|e| SendError::Temporary(e.to_string()))?,
            None => None,
        };
        let text = SinglePart::plain(c.body_text.clone());
        if super::relay::is_relay(c) {
            return self.relayed(b, text, original);
        }
        let calendar = c.ical.as_deref().map(calendar_part).transpose()?;
        let msg = match (&c.body_html, original, calendar) {
            (html, None, Some(cal)) => {
                let mixed = match html {
                    None => MultiPart::mixed().singlepart(text),
                    Some(html) => MultiPart::mixed().multipart(
                        MultiPart::alternative()
                            .singlepart(text)
                            .singlepart(SinglePart::html(html.clone())),
                    ),
                };
                b.multipart(mixed.singlepart(cal))
            }
            (None, None, _) => b.singlepart(text),
            (Some(html), None, _) => b.multipart(
                MultiPart::alternative()
                    .singlepart(text)
                    .singlepart(SinglePart::html(html.clone())),
            ),
            (html, Some(bytes), _) => {
                let att = original_attachment(bytes, seven_bit)?;
                let mixed = match html {
                    None => MultiPart::mixed().singlepart(text),
                    Some(html) => MultiPart::mixed().multipart(
                        MultiPart::alternative()
                            .singlepart(text)
                            .singlepart(SinglePart::html(html.clone())),
                    ),
                };
                b.multipart(mixed.singlepart(att))
            }
        };
        msg.map_err(|e| SendError::Permanent(format!("building the mail: {e}")))
    }

    /// Reply-To with the ticket's token on mail to staff; the Cc's of a relayed answer.
    async fn staff_headers(
        &self,
        mut b: lettre::message::MessageBuilder,
        c: &Claimed,
    ) -> Result<lettre::message::MessageBuilder, SendError> {
        let reply_to = super::relay::reply_to(self.store, self.config, c)
            .await
            .map_err(|e| SendError::Temporary(e.to_string()))?;
        if let Some(a) = reply_to {
            let m: Mailbox = a
                .parse()
                .map_err(|e| SendError::Permanent(format!("reply address {a}: {e}")))?;
            b = b.reply_to(m);
        }
        for a in super::relay::cc(c) {
            let m: Mailbox = a
                .parse()
                .map_err(|e| SendError::Permanent(format!("Cc {a}: {e}")))?;
            b = b.cc(m);
        }
        Ok(b)
    }

    /// A relayed staff answer: its text, and the attachments of the staff member's mail.
    fn relayed(
        &self,
        b: lettre::message::MessageBuilder,
        text: SinglePart,
        original: Option<Vec<u8>>,
    ) -> Result<Message, SendError> {
        let parts = original
            .as_deref()
            .map(super::relay::attachments)
            .unwrap_or_default();
        let msg = if parts.is_empty() {
            b.singlepart(text)
        } else {
            let mixed = parts
                .into_iter()
                .fold(MultiPart::mixed().singlepart(text), |m, p| m.singlepart(p));
            b.multipart(mixed)
        };
        msg.map_err(|e| SendError::Permanent(format!("building the mail: {e}")))
    }

    async fn record(
        &self,
        c: &Claimed,
        result: Result<(), SendError>,
        summary: &mut Summary,
    ) -> Result<(), StoreError> {
        let now = Timestamp::now().as_microsecond();
        let attempts = c.attempts + 1;
        let max = i64::from(self.config.settings.outbox.max_attempts);
        let (state, error, next) = match result {
            Ok(()) => {
                summary.sent += 1;
                tracing::info!(outbox = c.id, message_id = %c.message_id, to = %c.recipient, "sent");
                (OutboxState::Sent, None, now)
            }
            Err(SendError::Needs8BitMime(e)) => {
                summary.permanent_failures += 1;
                tracing::error!(outbox = c.id, to = %c.recipient, error = %e, "permanent failure");
                (
                    OutboxState::PermanentFailure,
                    Some(format!(
                        "the SMTP server takes no 8-bit mail (8BITMIME): {e}"
                    )),
                    now,
                )
            }
            Err(SendError::Permanent(e)) => {
                summary.permanent_failures += 1;
                tracing::error!(outbox = c.id, to = %c.recipient, error = %e, "permanent failure");
                (OutboxState::PermanentFailure, Some(e), now)
            }
            Err(SendError::Temporary(e)) if attempts >= max => {
                summary.permanent_failures += 1;
                tracing::error!(outbox = c.id, to = %c.recipient, error = %e, attempts, "giving up");
                (
                    OutboxState::PermanentFailure,
                    Some(format!("gave up after {attempts} attempts: {e}")),
                    now,
                )
            }
            Err(SendError::Temporary(e)) => {
                summary.temporary_failures += 1;
                let delay = backoff(attempts);
                tracing::warn!(outbox = c.id, to = %c.recipient, error = %e, retry_in_s = delay.as_secs(), "temporary failure");
                (
                    OutboxState::TemporaryFailure,
                    Some(e),
                    now + delay.as_micros() as i64,
                )
            }
        };
        self.store
            .record_attempt(
                c.id,
                &Attempt {
                    state,
                    attempts,
                    error: error.as_deref(),
                    next_attempt_at: next,
                    at: now,
                },
            )
            .await
    }
}

/// The original as an attachment named `original.eml` (for clients that save it). As
/// `message/rfc822` Outlook and Thunderbird open it as a mail. RFC 2046 (5.2.1) allows only
/// 7bit, 8bit or binary for that type, never base64 or quoted-printable, so the original goes
/// as it came, with its line ends made CRLF: 7bit when it is ASCII, else 8bit — any octets but
/// NUL, lines of at most 998 octets (RFC 2045 2.8), which an SMTP server that offers
/// 8BITMIME takes (RFC 6152; every current one does, and lettre declares `BODY=8BITMIME`).
/// An original that 8bit cannot carry — NUL, or a line longer than SMTP allows — would need
/// `binary` and so BINARYMIME with BDAT (RFC 3030), which lettre does not speak; that one, and
/// every original when `seven_bit` is asked for (a server without 8BITMIME), goes base64 as
/// `application/octet-stream`.
fn original_attachment(bytes: Vec<u8>, seven_bit: bool) -> Result<SinglePart, SendError> {
    let (body, ct) = match as_message(&bytes) {
        Some((crlf, encoding)) if !seven_bit || encoding == ContentTransferEncoding::SevenBit => (
            Body::dangerous_pre_encoded(crlf, encoding),
            "message/rfc822",
        ),
        _ => (
            Body::new_with_encoding(bytes, ContentTransferEncoding::Base64)
                .map_err(|_| SendError::Permanent("cannot encode the original".into()))?,
            "application/octet-stream",
        ),
    };
    let ct = ContentType::parse(ct).map_err(|e| SendError::Permanent(e.to_string()))?;
    Ok(Attachment::new("original.eml".into()).body(body, ct))
}

/// A maintenance notice's calendar entry as `wartung.ics`, `text/calendar` with
/// `method=PUBLISH`: mail programs offer to add it and update it in place by its UID.
fn calendar_part(ical: &str) -> Result<SinglePart, SendError> {
    let ct = ContentType::parse(crate::ical::CONTENT_TYPE)
        .map_err(|e| SendError::Permanent(format!("calendar content type: {e}")))?;
    Ok(Attachment::new("wartung.ics".into()).body(ical.to_string(), ct))
}

/// The longest line 7bit and 8bit bodies may have, without its CRLF (RFC 2045 2.7, 2.8).
const MAX_LINE: usize = 998;

/// A message as the body of a `message/rfc822` part: its bytes with every line ending in CRLF
/// (bare LF and bare CR become CRLF, as SMTP carries them anyway), and `7bit` or `8bit`.
/// `None` when neither can carry it: a NUL, or a line over [`MAX_LINE`] octets.
fn as_message(bytes: &[u8]) -> Option<(Vec<u8>, ContentTransferEncoding)> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 32);
    let mut line = 0;
    let mut ascii = true;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            0 => return None,
            b'\r' | b'\n' => {
                // CRLF, bare CR or bare LF: one line end.
                if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                out.extend_from_slice(b"\r\n");
                line = 0;
            }
            b => {
                line += 1;
                if line > MAX_LINE {
                    return None;
                }
                ascii &= b.is_ascii();
                out.push(b);
            }
        }
        i += 1;
    }
    let encoding = if ascii {
        ContentTransferEncoding::SevenBit
    } else {
        ContentTransferEncoding::EightBit
    };
    Some((out, encoding))
}

/// 1 min, 2 min, 4 min, … capped at 6 h, each ±20 % so that many failed rows do not return
/// all at once.
pub fn backoff(attempts: i64) -> Duration {
    let base = 60u64
        .saturating_mul(1u64 << (attempts.clamp(1, 20) - 1) as u32)
        .min(6 * 3600);
    let jitter = 0.8 + fastrand::f64() * 0.4;
    Duration::from_secs_f64(base as f64 * jitter)
}

/// The file transport's name for a mail: its Message-ID, with anything but letters, digits
/// and `@._+-=` replaced, so that no Message-ID can name a path elsewhere.
fn file_name(message_id: &str) -> String {
    let safe: String = message_id
        .chars()
        .take(200)
        .map(|c| {
            if c.is_ascii_alphanumeric() || "@._+-=".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = safe.trim_start_matches('.');
    format!("{}.eml", if safe.is_empty() { "_" } else { safe })
}

/// A display name as RFC 5322 wants it when it holds specials.
fn quote_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
        .collect();
    format!("\"{clean}\"")
}

#[cfg(test)]
mod tests {
    use super::{ContentTransferEncoding, MAX_LINE, as_message, file_name};

    #[test]
    fn an_original_travels_as_7bit_or_8bit_with_crlf_line_ends() {
        let (crlf, enc) = as_message(b"Subject: a\nX: b\r\n\r\nbody\rend").expect("fits");
        assert_eq!(crlf, b"Subject: a\r\nX: b\r\n\r\nbody\r\nend");
        assert_eq!(enc, ContentTransferEncoding::SevenBit);
        let (bytes, enc) =
            as_message(b"Subject: B\xfcro\r\n\r\nGr\xc3\xbc\xc3\x9fe").expect("fits");
        assert_eq!(bytes, b"Subject: B\xfcro\r\n\r\nGr\xc3\xbc\xc3\x9fe");
        assert_eq!(enc, ContentTransferEncoding::EightBit);
        let line = vec![b'x'; MAX_LINE];
        assert!(as_message(&line).is_some(), "998 octets fit");
        assert!(as_message(&[line.as_slice(), b"x"].concat()).is_none());
        assert!(as_message(b"Subject: a\r\n\r\nNUL \0 here").is_none());
    }

    #[test]
    fn file_names_come_from_the_message_id_and_stay_in_the_directory() {
        assert_eq!(
            file_name("0193a1b2c3d4@kommunal-it.example"),
            "0193a1b2c3d4@kommunal-it.example.eml"
        );
        assert_eq!(file_name("../../etc/passwd"), "_.._etc_passwd.eml");
        assert_eq!(file_name("a/b\\c d"), "a_b_c_d.eml");
        assert_eq!(file_name(""), "_.eml");
        assert_eq!(file_name("..."), "_.eml");
    }
}
