//! The sender: claims due outbox rows, builds each mail with lettre (every value from incoming
//! mail goes through lettre's header encoders, so CR/LF cannot add a header), sends it through
//! SMTP or the file transport and records the result. Temporary failures come back with
//! exponential backoff and jitter; permanent ones stay visible as such.
//!
//! Sent once (RFC 1047): the only mails whose fate a sender cannot know are those whose end of
//! data (the final `.`) may have reached the server while the server's answer was never
//! recorded. Before a mail's data goes out, its row is marked (committed before the data,
//! `Handover`; beside a SQLite store in a database of the marks' own, `store::marks`, else
//! `outbox.handed_at`); the result clears the mark. A row a new claim finds marked was
//! handed over by a sender that died before recording what came of it, and a connection that
//! breaks after the data leaves the same doubt: under `outbox.after_crash = "hold"` such a
//! mail becomes `uncertain`, shown and counted everywhere, and goes again only when a person
//! says so (`poststelle outbox retry`); under `"resend"` it goes again at once. Beside a
//! SQLite store the server's answer is journaled on the mark before the store has it, so a
//! sender killed in between leaves the answer, which the next claim records.
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use lettre::Message;
use lettre::address::Envelope;
use lettre::message::header::{
    self, ContentTransferEncoding, ContentType, HeaderName, HeaderValue,
};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::{Data, Mail, Rcpt};
use lettre::transport::smtp::extension::{ClientId, Extension, MailBodyParameter, MailParameter};

use crate::config::{
    AfterCrash, Config, OutboxSettings, SaslMechanism, SmtpSettings, SmtpTls, Transport,
};

use crate::store::marks::Mark;
use crate::store::outbox::{Claimed, OutboxState, Recorded, SenderWrite};
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

/// Mails the file transport writes at once: enough to overlap one file's write with the next
/// mail's building, more would only contend for the disk.
const FILE_PARALLEL: usize = 4;

/// Where mail goes, how many mails go at once and how fast notices may go.
pub struct Mailer {
    way: Way,
    /// Mails in flight at once: `outbox.smtp.pool_size` (lettre's pool keeps that many
    /// connections open), [`FILE_PARALLEL`] for the file transport.
    parallel: usize,
    /// `outbox.notice_rate_per_second` for rows with `list_id`.
    pace: Pace,
    /// `parallel` permits: a mail holds one while it is built and sent, not while its result
    /// is written, so that a connection goes on with the next mail at once.
    sending: tokio::sync::Semaphore,
    /// The last notices built, by their text (`body_id`): the next member's mail of the same
    /// notice is a copy with its own header fields, not a new MIME encoding of the same text,
    /// HTML and calendar entry.
    notices: std::sync::Mutex<Vec<(i64, Message)>>,
    /// `outbox.after_crash`: a mail the server may have taken is held or sent again.
    after_crash: AfterCrash,
}

/// Notice texts kept built: the languages of the notices being sent.
const NOTICES_KEPT: usize = 8;

enum Way {
    /// Each mail as `<Message-ID>.eml` in `dir`: a mail sent again after a crash (between
    /// writing it and recording it as sent) replaces its own file instead of adding a second.
    File {
        dir: PathBuf,
    },
    Smtp(Box<Smtp>),
}

/// SMTP connections kept open between mails: at most one per parallel send, so
/// `outbox.smtp.pool_size` of them. lettre's own pool sends a NOOP before every reuse and
/// leaves Nagle's algorithm on, so that the lone `.` that ends each mail waits for the
/// server's delayed ACK (40 ms a mail); here a reused connection goes straight to MAIL FROM
/// and the socket sends at once (TCP_NODELAY).
struct Smtp {
    settings: SmtpSettings,
    tls: TlsParameters,
    hello: ClientId,
    idle: std::sync::Mutex<Vec<(Session, tokio::time::Instant)>>,
}

/// An open SMTP connection and whether its server takes pipelined commands (RFC 2920).
struct Session {
    conn: AsyncSmtpConnection,
    pipelining: bool,
}

/// A connection idle this long is closed rather than reused: servers drop idle sessions
/// (OpenSMTPD after 5 minutes, Postfix after 5), and a mail begun on a dead one costs a retry.
const MAX_IDLE: Duration = Duration::from_secs(60);

type SmtpError = lettre::transport::smtp::Error;

impl Smtp {
    fn new(smtp: &SmtpSettings) -> Result<Smtp, SetupError> {
        let err = |source| SetupError::Smtp {
            host: smtp.host.clone(),
            source,
        };
        let tls = match &smtp.ca_file {
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
        Ok(Smtp {
            settings: smtp.clone(),
            tls,
            hello: ClientId::default(),
            idle: std::sync::Mutex::new(Vec::new()),
        })
    }

    async fn connect(&self) -> Result<Session, SmtpFail> {
        let s = &self.settings;
        let addr = (s.host.as_str(), s.port);
        let (mut conn, pipelining) = match s.tls {
            // TLS from the first byte: lettre's own socket (Nagle's algorithm stays on), and
            // its EHLO answer is not ours to read, so no pipelining.
            SmtpTls::Implicit => {
                let conn = AsyncSmtpConnection::connect_tokio1(
                    addr,
                    Some(s.timeout),
                    &self.hello,
                    Some(self.tls.clone()),
                    None,
                )
                .await?;
                (conn, false)
            }
            SmtpTls::Starttls | SmtpTls::None => {
                let tcp = tokio::time::timeout(s.timeout, tokio::net::TcpStream::connect(addr))
                    .await
                    .map_err(|_| lettre_io(std::io::ErrorKind::TimedOut.into()))?
                    .map_err(lettre_io)?;
                tcp.set_nodelay(true).map_err(lettre_io)?;
                let (tap, greeting) = Tap::new(tcp);
                let mut conn = tokio::time::timeout(
                    s.timeout,
                    AsyncSmtpConnection::connect_with_transport(Box::new(tap), &self.hello),
                )
                .await
                .map_err(|_| lettre_io(std::io::ErrorKind::TimedOut.into()))??;
                let pipelining = greeting.pipelining();
                if s.tls == SmtpTls::Starttls {
                    conn.starttls(self.tls.clone(), &self.hello).await?;
                }
                (conn, pipelining)
            }
        };
        if let (Some(o), Some(user)) = (&s.oauth, &s.username) {
            oauth_auth(&mut conn, s, o, user).await?;
        } else if let (Some(user), Some(pass)) = (&s.username, &s.password) {
            conn.auth(
                &[Mechanism::Plain, Mechanism::Login],
                &Credentials::new(user.clone(), pass.clone()),
            )
            .await?;
        }
        Ok(Session { conn, pipelining })
    }

    /// Sends one mail on an idle connection (or a new one when `fresh` or none is idle) and
    /// keeps the connection for the next unless it broke. The whole exchange is bounded by
    /// `outbox.smtp.timeout_seconds` per step. [`SmtpFail::Unanswered`] when the data went
    /// out (`handover` marked) and no answer of the server's came back.
    async fn send(
        &self,
        envelope: &Envelope,
        bytes: &[u8],
        fresh: bool,
        handover: &Handover<'_>,
    ) -> Result<(), SmtpFail> {
        let reuse = if fresh {
            None
        } else {
            let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
            let now = tokio::time::Instant::now();
            idle.retain(|(_, since)| now.duration_since(*since) < MAX_IDLE);
            idle.pop().map(|(c, _)| c)
        };
        let mut session = match reuse {
            Some(c) => c,
            None => self.connect().await?,
        };
        handover.handed.store(false, Ordering::Relaxed);
        // MAIL, RCPT, DATA and the message: four steps of the server's, two round trips when
        // pipelined.
        let exchange = exchange(
            &mut session.conn,
            session.pipelining,
            envelope,
            bytes,
            handover,
        );
        let sent = match tokio::time::timeout(self.settings.timeout * 4, exchange).await {
            Ok(sent) => sent,
            Err(_) => Err(lettre_io(std::io::ErrorKind::TimedOut.into())),
        };
        if sent.is_ok() && !session.conn.has_broken() {
            self.idle
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((session, tokio::time::Instant::now()));
        }
        match sent {
            // A 4xx or 5xx to the data is the server's no; anything else after the data went
            // out — the connection broke, the answer timed out or made no sense — leaves open
            // whether the server took the mail.
            Err(e) if handover.handed.load(Ordering::Relaxed) && !e.is_answer() => {
                Err(SmtpFail::Unanswered(Box::new(e)))
            }
            sent => sent,
        }
    }
}

/// Why `check --connect` could not log in to the relay.
#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error("{0}")]
    Failed(String),
}

/// `check --connect`: connects and logs in to the relay the way the sender does (TLS, then
/// the password or the OAuth token), then says QUIT.
pub async fn try_login(settings: &SmtpSettings) -> Result<(), LoginError> {
    let smtp = Smtp::new(settings)?;
    let mut session = smtp
        .connect()
        .await
        .map_err(|e| LoginError::Failed(e.to_string()))?;
    let _ = session.conn.quit().await;
    Ok(())
}

/// AUTH with the provider's token (XOAUTH2 or OAUTHBEARER); a refused token is dropped from
/// the cache, so that the retry of the mail logs in with a new one. A refusal and a token
/// that cannot be had are both [`SmtpFail::Login`]: temporary, since they say nothing about
/// the mail (the provider may be back, the administrator may fix the app), told with the
/// provider's name and the fix.
async fn oauth_auth(
    conn: &mut AsyncSmtpConnection,
    s: &SmtpSettings,
    o: &crate::config::OAuthLogin,
    user: &str,
) -> Result<(), SmtpFail> {
    let tokens = crate::oauth::tokens(&o.provider);
    let token = tokens
        .get()
        .await
        .map_err(|e| SmtpFail::Login(e.to_string()))?;
    let refused = |why: String| {
        SmtpFail::Login(format!(
            "AUTH {} as {user} with a token of OAuth provider \"{}\" refused: {why}; \
             fix: check username of [outbox.smtp] and that the app of [[oauth]] \"{}\" may send \
             as that mailbox (Microsoft 365: SMTP.SendAsApp, Add-MailboxPermission)",
            o.mechanism.name(),
            o.provider.name,
            o.provider.name,
        ))
    };
    let login = async {
        token_auth(conn, o.mechanism, s, user, token.access.expose())
            .await
            .map_err(refused)
    };
    // The exchange is three commands at most.
    let login = match tokio::time::timeout(s.timeout * 3, login).await {
        Ok(l) => l,
        Err(_) => Err(refused(format!(
            "no answer within {} s",
            (s.timeout * 3).as_secs()
        ))),
    };
    if let Err(e) = login {
        let _ = tokens.renew(&token).await;
        return Err(e);
    }
    tracing::debug!(provider = %o.provider.name, mechanism = o.mechanism.name(), "SMTP login with an OAuth token");
    Ok(())
}

/// AUTH with a token: XOAUTH2, or OAUTHBEARER (RFC 7628), which lettre lacks. The response
/// goes on a line of its own after the server's empty 334, never on the AUTH line: RFC 4954
/// §4 keeps the AUTH line to SMTP's 512 octets, which a token exceeds (Entra's take some
/// 2,000 octets, base64'd once more), and Dovecot refuses a longer one ("500 5.5.2 Line too
/// long"); the extra round trip is paid once per connection. A refusal comes as a 334
/// challenge with the server's JSON error, answered with the mechanism's acknowledgement
/// (^A for OAUTHBEARER, an empty line for XOAUTH2), after which the server says 535: the
/// error is the JSON's status and that answer.
async fn token_auth(
    conn: &mut AsyncSmtpConnection,
    mechanism: SaslMechanism,
    s: &SmtpSettings,
    user: &str,
    token: &str,
) -> Result<(), String> {
    use crate::oauth::sasl;
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let response = b64.encode(sasl::initial_response(
        mechanism, user, token, &s.host, s.port,
    ));
    let name = mechanism.name();
    let answer = match conn.command(format!("AUTH {name}\r\n")).await {
        Ok(r) if r.has_code(334) => conn.command(format!("{response}\r\n")).await,
        Ok(r) => return Err(format!("unexpected answer {} to AUTH {name}", r.code())),
        // 504: the server does not offer the mechanism.
        Err(e) => return Err(e.to_string()),
    };
    match answer {
        Ok(r) if r.has_code(235) => Ok(()),
        Ok(r) if r.has_code(334) => {
            let status = r
                .first_line()
                .and_then(sasl::error_status)
                .unwrap_or_else(|| "an error without status".into());
            let ack = b64.encode(sasl::error_ack(mechanism));
            match conn.command(format!("{ack}\r\n")).await {
                Err(e) => Err(format!("{status} ({e})")),
                Ok(r) => Err(format!("{status} (then {} instead of a refusal)", r.code())),
            }
        }
        Ok(r) => Err(format!("unexpected answer {}", r.code())),
        Err(e) => Err(e.to_string()),
    }
}

/// The first octets a connection reads — the server's greeting and its answer to lettre's
/// EHLO — kept to learn whether it offers PIPELINING: lettre keeps only the EHLO keywords it
/// knows, and PIPELINING is none of them, and a second EHLO is refused by some servers
/// (OpenSMTPD: "503 Already identified"). With STARTTLS this is the answer before TLS, which
/// servers give alike on both sides of it.
#[derive(Debug, Clone, Default)]
struct Greeting(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

/// The most a greeting and EHLO answer take (RFC 5321 keeps lines to 512 octets).
const GREETING_MAX: usize = 8 * 1024;

impl Greeting {
    fn pipelining(&self) -> bool {
        let seen = self.0.lock().unwrap_or_else(|e| e.into_inner());
        String::from_utf8_lossy(&seen).lines().any(|l| {
            // "250-PIPELINING" or "250 PIPELINING"
            l.get(4..)
                .and_then(|k| k.split_whitespace().next())
                .is_some_and(|k| k.eq_ignore_ascii_case("PIPELINING"))
                && l.starts_with("250")
        })
    }
}

/// A TCP stream that copies what it reads into a [`Greeting`] until that is full.
#[derive(Debug)]
struct Tap {
    tcp: tokio::net::TcpStream,
    seen: Greeting,
}

impl Tap {
    fn new(tcp: tokio::net::TcpStream) -> (Tap, Greeting) {
        let seen = Greeting::default();
        (
            Tap {
                tcp,
                seen: seen.clone(),
            },
            seen,
        )
    }
}

impl tokio::io::AsyncRead for Tap {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = std::pin::Pin::new(&mut self.tcp).poll_read(cx, buf);
        let mut seen = self.seen.0.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() < GREETING_MAX {
            let new = &buf.filled()[before..];
            let room = GREETING_MAX - seen.len();
            seen.extend_from_slice(&new[..new.len().min(room)]);
        }
        polled
    }
}

impl tokio::io::AsyncWrite for Tap {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.tcp).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.tcp).poll_shutdown(cx)
    }
}

impl lettre::transport::smtp::client::AsyncTokioStream for Tap {
    fn peer_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.tcp.peer_addr()
    }
}

/// One mail: MAIL, RCPT and DATA — with `pipelining` in one write and their answers read
/// together (RFC 2920), two round trips instead of four; else one by one, as lettre's own
/// `send` does — then, once the server waits for the data, the row's mark in the store
/// ([`Handover::mark`]) and only after it the message and its final `.`, so that every mail
/// whose end of data may have reached the server is marked. (lettre writes the message and
/// the `.` in one call, and under STARTTLS our socket sees only ciphertext, so the mark goes
/// before the message's first octet rather than between its last and the `.`: the
/// difference is the time the message takes to write, in which a kill leaves a marked mail
/// the server never completed.) Each mail's `.` is answered before the next mail's MAIL is
/// written, pipelined or not, so no `.` ever leaves in one write with the next mail's
/// commands ahead of that mail's mark. After a refusal the connection is closed, as lettre's
/// own `send` does (a server that took DATA regardless then drops the unfinished message).
/// Mail the server cannot take (8-bit text, UTF-8 addresses) is refused before anything is
/// written, as lettre's own `send` refuses it.
async fn exchange(
    conn: &mut AsyncSmtpConnection,
    pipelining: bool,
    envelope: &Envelope,
    bytes: &[u8],
    handover: &Handover<'_>,
) -> Result<(), SmtpFail> {
    let utf8_addresses = envelope
        .from()
        .into_iter()
        .chain(envelope.to())
        .any(|a: &lettre::Address| !AsRef::<str>::as_ref(a).is_ascii());
    let info = conn.server_info();
    let mut params = Vec::new();
    if utf8_addresses {
        if !info.supports_feature(Extension::SmtpUtfEight) {
            return Err(SmtpFail::Unsupported(
                "the envelope holds UTF-8 addresses and the server offers no SMTPUTF8",
            ));
        }
        params.push(MailParameter::SmtpUtfEight);
    }
    if !bytes.is_ascii() {
        if !info.supports_feature(Extension::EightBitMime) {
            return Err(SmtpFail::Unsupported(
                "the mail holds 8-bit text and the server offers no 8BITMIME",
            ));
        }
        params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    let mail = Mail::new(envelope.from().cloned(), params);
    let rcpts = envelope
        .to()
        .iter()
        .map(|to| Rcpt::new(to.clone(), Vec::new()));
    let refused = if pipelining {
        let mut group = mail.to_string();
        for rcpt in rcpts {
            group.push_str(&rcpt.to_string());
        }
        group.push_str(&Data.to_string());
        // The first answer is MAIL's; one per RCPT and DATA's follow, each read even after a
        // refusal so that the first refusal is the one reported.
        let mut refused = conn.command(group).await.err();
        for _ in 0..=envelope.to().len() {
            if let Err(e) = conn.read_response().await {
                refused.get_or_insert(e);
            }
        }
        refused
    } else {
        let mut refused = conn.command(mail).await.err();
        for rcpt in rcpts {
            if refused.is_some() {
                break;
            }
            refused = conn.command(rcpt).await.err();
        }
        match refused {
            Some(e) => Some(e),
            None => conn.command(Data).await.err(),
        }
    };
    if let Some(e) = refused {
        conn.abort().await;
        return Err(e.into());
    }
    // Should the mark fail, nothing more is written: the connection is dropped, and a server
    // drops a message that ends without its `.`.
    handover.mark().await?;
    conn.message(bytes).await?;
    Ok(())
}

/// A mail's row, for the mark the SMTP exchange writes before the mail's data goes out, and
/// whether it went out.
struct Handover<'a> {
    store: &'a Store,
    /// The sender's writer, whose group commit takes the mark along with the other
    /// connections' marks and results.
    recorder: &'a Recorder,
    /// Beside a SQLite store: the writer of the marks' database, which takes the mark instead.
    marker: Option<&'a Marker>,
    id: i64,
    /// The row's attempts before this one.
    attempt: i64,
    message_id: &'a str,
    /// Set once the mark is stored and the data begins to go out; reset for each exchange.
    handed: AtomicBool,
    /// When the last mark of this attempt was stored (0: none was).
    marked_at: AtomicI64,
}

impl<'a> Handover<'a> {
    fn new(
        store: &'a Store,
        recorder: &'a Recorder,
        marker: Option<&'a Marker>,
        c: &'a Claimed,
    ) -> Handover<'a> {
        Handover {
            store,
            recorder,
            marker,
            id: c.id,
            attempt: c.attempts,
            message_id: &c.message_id,
            handed: AtomicBool::new(false),
            marked_at: AtomicI64::new(0),
        }
    }

    /// Marks the row as being handed over ([`Store::mark_handed`]) and waits until that is
    /// committed; from its return on, the data may reach the server.
    async fn mark(&self) -> Result<(), SmtpFail> {
        let at = Timestamp::now().as_microsecond();
        let mark = Mark {
            id: self.id,
            attempt: self.attempt,
            message_id: self.message_id,
            at,
            ended: None,
        };
        let written = match self.marker {
            Some(marker) => put_mark(marker, &mark).await,
            None => {
                let (done, written) = tokio::sync::oneshot::channel();
                let queued = self.recorder.send(Recording {
                    id: self.id,
                    entry: Entry::Handed { at },
                    done,
                });
                match queued {
                    Ok(()) => written.await.ok(),
                    Err(_) => None,
                }
            }
        };
        match written {
            Some(r) => r,
            // The writer is gone (never while a pass runs): on its own.
            None => self.store.mark_handed(&mark).await,
        }
        .map_err(SmtpFail::Mark)?;
        self.marked_at.store(at, Ordering::Relaxed);
        self.handed.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// When this attempt's mark was stored, if it was.
    fn marked_at(&self) -> Option<i64> {
        Some(self.marked_at.load(Ordering::Relaxed)).filter(|at| *at != 0)
    }
}

/// Queues a mark for the marks' writer and waits for its commit; `None` when the writer is
/// gone.
async fn put_mark(marker: &Marker, mark: &Mark<'_>) -> Option<Result<(), StoreError>> {
    let (done, written) = tokio::sync::oneshot::channel();
    marker.send(put_entry(mark, None, Some(done))).ok()?;
    written.await.ok()
}

fn put_entry(
    mark: &Mark<'_>,
    ended: Option<Recorded>,
    done: Option<tokio::sync::oneshot::Sender<Result<(), StoreError>>>,
) -> MarkEntry {
    MarkEntry::Put {
        id: mark.id,
        attempt: mark.attempt,
        message_id: mark.message_id.to_string(),
        at: mark.at,
        ended,
        done,
    }
}

/// How an SMTP exchange failed: as lettre says, or on our socket before lettre had it.
#[derive(Debug)]
enum SmtpFail {
    Lettre(SmtpError),
    Io(std::io::Error),
    /// The mail needs an extension the server does not offer; nothing was written.
    Unsupported(&'static str),
    /// The mark before the data could not be stored: nothing of the data was sent.
    Mark(StoreError),
    /// The data went out and no answer came: the server may have taken the mail.
    Unanswered(Box<SmtpFail>),
    /// No OAuth login: no token, or the server refused it. Nothing was sent.
    Login(String),
}

impl SmtpFail {
    fn is_permanent(&self) -> bool {
        matches!(self, SmtpFail::Lettre(e) if e.is_permanent())
    }

    fn is_client(&self) -> bool {
        matches!(self, SmtpFail::Unsupported(_))
            || matches!(self, SmtpFail::Lettre(e) if e.is_client())
    }

    /// The server answered with a reply code (4xx, 5xx).
    fn is_answer(&self) -> bool {
        matches!(self, SmtpFail::Lettre(e) if e.is_transient() || e.is_permanent())
    }
}

impl From<SmtpError> for SmtpFail {
    fn from(e: SmtpError) -> Self {
        SmtpFail::Lettre(e)
    }
}

impl std::fmt::Display for SmtpFail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SmtpFail::Lettre(e) => write!(f, "{e}"),
            SmtpFail::Io(e) => write!(f, "network error: {e}"),
            SmtpFail::Unsupported(e) => f.write_str(e),
            SmtpFail::Mark(e) => write!(f, "recording the hand-over failed, nothing sent: {e}"),
            SmtpFail::Unanswered(e) => write!(f, "no answer after the end of the data: {e}"),
            SmtpFail::Login(e) => f.write_str(e),
        }
    }
}

fn lettre_io(e: std::io::Error) -> SmtpFail {
    SmtpFail::Io(e)
}

/// Spaces the notices of distribution lists `interval` apart, across rounds and parallel
/// sends: each takes the next free slot. Idle time earns no credit, so a pause is never
/// followed by a burst above the rate.
struct Pace {
    interval: Option<Duration>,
    next: std::sync::Mutex<tokio::time::Instant>,
}

impl Pace {
    fn new(per_second: f64) -> Pace {
        Pace {
            interval: (per_second > 0.0).then(|| Duration::from_secs_f64(1.0 / per_second)),
            next: std::sync::Mutex::new(tokio::time::Instant::now()),
        }
    }

    async fn wait(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let slot = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let slot = (*next).max(tokio::time::Instant::now());
            *next = slot + interval;
            slot
        };
        tokio::time::sleep_until(slot).await;
    }
}

impl Mailer {
    pub fn from_settings(settings: &OutboxSettings, data_dir: &Path) -> Result<Mailer, SetupError> {
        let (way, parallel) = match &settings.transport {
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
                (Way::File { dir }, FILE_PARALLEL)
            }
            Transport::Smtp(smtp) => {
                let way = Way::Smtp(Box::new(Smtp::new(smtp)?));
                (way, smtp.pool_size.max(1) as usize)
            }
        };
        Ok(Mailer {
            way,
            parallel,
            pace: Pace::new(settings.notice_rate_per_second),
            sending: tokio::sync::Semaphore::new(parallel),
            notices: std::sync::Mutex::new(Vec::new()),
            after_crash: settings.after_crash,
        })
    }

    /// Mails this transport sends at once.
    pub fn parallel(&self) -> usize {
        self.parallel
    }

    /// Sends one mail. Over SMTP its row is marked (`handover`) before the data goes out; the
    /// file transport marks nothing, since a mail written again replaces its own file.
    async fn send(
        &self,
        msg: Message,
        envelope: &Envelope,
        message_id: &str,
        handover: &Handover<'_>,
    ) -> Result<(), SendError> {
        let bytes = msg.formatted();
        match &self.way {
            Way::File { dir } => {
                let name = file_name(message_id);
                // Written aside and renamed: a crash mid-write leaves no half mail under the
                // real name (names starting with a dot are not mail). Both in one trip to
                // the blocking pool, not one each.
                let part = dir.join(format!(".{name}.part"));
                let path = dir.join(name);
                let written = tokio::task::spawn_blocking(move || {
                    std::fs::write(&part, &bytes)?;
                    std::fs::rename(&part, path)
                })
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)));
                written.map_err(|e| {
                    SendError::Temporary(format!("file transport {}: {e}", dir.display()))
                })
            }
            Way::Smtp(smtp) => {
                let hold = self.after_crash == AfterCrash::Hold;
                let e = match smtp.send(envelope, &bytes, false, handover).await {
                    Ok(()) => return Ok(()),
                    Err(e) if e.is_permanent() => return Err(SendError::Permanent(e.to_string())),
                    // No 8-bit mail to a server without 8BITMIME.
                    Err(e) if e.is_client() && !bytes.is_ascii() => {
                        return Err(SendError::Needs8BitMime(e.to_string()));
                    }
                    Err(e @ SmtpFail::Unanswered(_)) if hold => {
                        return Err(SendError::Uncertain(e.to_string()));
                    }
                    Err(e) => e,
                };
                // Servers limit what one connection may do (OpenSMTPD: 100 mails, then "452
                // Too many messages sent"), and an idle connection may have been closed: the
                // retry goes out on a new connection.
                tracing::debug!(error = %e, "temporary SMTP failure; retrying on a new connection");
                smtp.send(envelope, &bytes, true, handover)
                    .await
                    .map_err(|e| match e {
                        e if e.is_permanent() => SendError::Permanent(e.to_string()),
                        e @ SmtpFail::Unanswered(_) if hold => SendError::Uncertain(e.to_string()),
                        e => SendError::Temporary(e.to_string()),
                    })
            }
        }
    }

    /// The directory of the file transport, if that is the transport.
    pub fn sent_dir(&self) -> Option<&Path> {
        match &self.way {
            Way::File { dir, .. } => Some(dir),
            Way::Smtp(_) => None,
        }
    }
}

enum SendError {
    Temporary(String),
    Permanent(String),
    /// The mail holds 8-bit text (an original) and the server takes none.
    Needs8BitMime(String),
    /// The server may have taken the mail, and `outbox.after_crash = "hold"`: why.
    Uncertain(String),
}

/// What one pass of the sender did.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub sent: usize,
    pub temporary_failures: usize,
    pub permanent_failures: usize,
    /// Held as uncertain: the server may have taken them.
    pub uncertain: usize,
}

impl Summary {
    fn add(&mut self, o: Outcome) {
        match o {
            Outcome::Sent => self.sent += 1,
            Outcome::TemporaryFailure => self.temporary_failures += 1,
            Outcome::PermanentFailure => self.permanent_failures += 1,
            Outcome::Uncertain => self.uncertain += 1,
        }
    }

    /// Rows tried.
    pub fn total(&self) -> usize {
        self.sent + self.temporary_failures + self.permanent_failures + self.uncertain
    }
}

/// How one row's attempt ended, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    TemporaryFailure,
    PermanentFailure,
    /// Held: the server may have taken it ([`OutboxState::Uncertain`]).
    Uncertain,
}

impl Outcome {
    /// The outcome a recorded state stands for.
    fn of(state: OutboxState) -> Outcome {
        match state {
            OutboxState::Sent => Outcome::Sent,
            OutboxState::PermanentFailure => Outcome::PermanentFailure,
            OutboxState::Uncertain => Outcome::Uncertain,
            OutboxState::Scheduled | OutboxState::TemporaryFailure | OutboxState::Suppressed => {
                Outcome::TemporaryFailure
            }
        }
    }

    /// The row's state it stands for, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Sent => OutboxState::Sent.as_str(),
            Outcome::TemporaryFailure => OutboxState::TemporaryFailure.as_str(),
            Outcome::PermanentFailure => OutboxState::PermanentFailure.as_str(),
            Outcome::Uncertain => OutboxState::Uncertain.as_str(),
        }
    }
}

/// What watches a pass: `stop` ends it early (mails in flight are finished and recorded, rows
/// not begun are handed back), `each` hears of every row as soon as it is recorded.
#[derive(Default, Clone, Copy)]
pub struct Watch<'w> {
    pub stop: Option<&'w (dyn Fn() -> bool + Sync)>,
    pub each: Option<&'w (dyn Fn(Outcome) + Sync)>,
}

/// Sends what is due.
pub struct Sender<'a> {
    pub store: &'a Store,
    pub config: &'a Config,
    pub mailer: &'a Mailer,
}

/// Where hand-over marks and results go to be written ([`Sender::recorder`]).
type Recorder = tokio::sync::mpsc::UnboundedSender<Recording>;

/// Beside a SQLite store: where marks and the ends of their attempts go to be written, and
/// the marks whose results the store has, to be removed ([`Sender::marker`]).
type Marker = tokio::sync::mpsc::UnboundedSender<MarkEntry>;

enum MarkEntry {
    /// A mark, or with `ended` the attempt's end, and who waits for its commit, if anyone.
    Put {
        id: i64,
        attempt: i64,
        message_id: String,
        at: i64,
        ended: Option<Recorded>,
        done: Option<tokio::sync::oneshot::Sender<Result<(), StoreError>>>,
    },
    /// The store has the result of the row's attempt: its mark goes.
    Forget { id: i64, attempt: i64 },
}

impl MarkEntry {
    fn mark(&self) -> Option<Mark<'_>> {
        match self {
            MarkEntry::Put {
                id,
                attempt,
                message_id,
                at,
                ended,
                ..
            } => Some(Mark {
                id: *id,
                attempt: *attempt,
                message_id,
                at: *at,
                ended: ended.as_ref().map(Recorded::attempt),
            }),
            MarkEntry::Forget { .. } => None,
        }
    }
}

/// One row's mark or result on its way to the store, and who waits for it to be written.
struct Recording {
    id: i64,
    entry: Entry,
    done: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

enum Entry {
    /// The row's data is about to go out ([`Handover::mark`]).
    Handed { at: i64 },
    /// How the attempt ended.
    Result(Recorded),
}

impl Recording {
    fn write(&self) -> SenderWrite<'_> {
        match &self.entry {
            Entry::Handed { at } => SenderWrite::Handed {
                id: self.id,
                at: *at,
            },
            Entry::Result(ended) => SenderWrite::Attempt {
                id: self.id,
                attempt: ended.attempt(),
            },
        }
    }
}

/// A pass's way to end early: told to stop, or a write to the store failed.
struct Pass<'w> {
    stop: Option<&'w (dyn Fn() -> bool + Sync)>,
    failed: std::sync::Mutex<Option<StoreError>>,
}

impl Pass<'_> {
    fn stopping(&self) -> bool {
        self.stop.is_some_and(|f| f())
            || self
                .failed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .is_some()
    }

    /// Keeps the first failure; the pass claims nothing more.
    fn fail(&self, e: StoreError) {
        let mut f = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        if f.is_none() {
            *f = Some(e);
        }
    }

    fn take_failure(&self) -> Option<StoreError> {
        self.failed.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// A claimed row with what the sender decided for it when it claimed it.
struct Due {
    row: Claimed,
    /// Its list offers unsubscribing: the mail gets `List-Unsubscribe`.
    unsubscribe: bool,
    /// Handed to the server by a sender that died before recording the result, and
    /// `outbox.after_crash = "hold"`: recorded as uncertain, not sent.
    held: bool,
    /// The original to attach, read with the claim's others ([`PREFETCH_MAX`]).
    original: Option<Vec<u8>>,
}

/// Originals up to this size are read for a whole claim in one statement (a claim of 64
/// holds at most 4 MiB of them); larger ones are read when their mail is built.
const PREFETCH_MAX: i64 = 64 * 1024;

/// The rows of the current claim, and what is left of the pass.
struct Claims {
    queue: std::collections::VecDeque<Due>,
    /// Rows of the claim not begun by then are handed back (see [`Sender::send_watched`]).
    begin_by: i64,
    /// Rows the pass may still claim.
    left: i64,
    /// No more claims: the pass ends once the queue is empty.
    drained: bool,
}

impl Sender<'_> {
    /// Claims up to `limit` due rows and sends them, [`Mailer::parallel`] at a time.
    pub async fn send_due(&self, limit: i64) -> Result<Summary, StoreError> {
        self.send_watched(limit, Watch::default()).await
    }

    /// Sends up to `limit` due rows, [`Mailer::parallel`] at a time, claiming them a few at a
    /// time (`daemon.sender_batch`, at least 16 per parallel send) while the last of the
    /// claim are still out: mail to single people first, so that a fan-out of 10,000 notices
    /// holds an acknowledgement back by one claim at most. Each row's result is recorded as
    /// soon as the server took its mail: until then a crash sends it again, so that moment is
    /// kept as short as a write to the store allows.
    pub async fn send_watched(&self, limit: i64, watch: Watch<'_>) -> Result<Summary, StoreError> {
        let s = &self.config.settings;
        let parallel = self.mailer.parallel.max(1);
        // A claim is a write to the store: a claim takes 16 mails per parallel send (64 with
        // the default pool), which at thousands a second holds a new acknowledgement back by
        // a few milliseconds.
        let chunk = i64::from(s.daemon.sender_batch).max(16 * parallel as i64);
        // With a rate, one claim holds about a second of notices: a row claimed stays claimed
        // while it waits for its turn.
        let notice_chunk = if s.outbox.notice_rate_per_second > 0.0 {
            (s.outbox.notice_rate_per_second.ceil() as i64).clamp(1, chunk)
        } else {
            chunk
        };
        let holder = crate::holder::this_process(s.instance_id);
        let pass = Pass {
            stop: watch.stop,
            failed: std::sync::Mutex::new(None),
        };
        let start = Claims {
            queue: Default::default(),
            begin_by: 0,
            left: limit,
            drained: false,
        };
        // The claims on one side, the parallel sends on the other: the next claim runs while
        // the last mails of the one before are out.
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Due>(1);
        let (holder, pass) = (&holder, &pass);
        let claims = async move {
            let mut st = start;
            while let Some(due) = self
                .next_row(&mut st, holder, pass, chunk, notice_chunk)
                .await
            {
                if let Err(back) = tx.send(due).await {
                    st.queue.push_front(back.0);
                    if let Err(e) = self.hand_back(&mut st, holder).await {
                        pass.fail(e);
                    }
                    break;
                }
            }
        };
        // Mails whose results are being written count as in flight but hold no connection
        // (Mailer::sending). While filing holds SQLite's write lock, results are written
        // once per batch filed: a claim's worth may wait, so that mail goes out while mail
        // is filed. A file written again after a crash replaces itself; an SMTP mail's end
        // is journaled beside the store first (store::marks). Where the mark is on the row
        // (PostgreSQL), each mail's mark waits for the store as well, and a crash holds or
        // sends again every mail whose result waits: four per connection.
        let apart = self.store.marks_apart();
        let waiting = if apart || self.mailer.sent_dir().is_some() {
            usize::try_from(chunk).unwrap_or(0).max(4 * parallel)
        } else {
            4 * parallel
        };
        if apart {
            match self.store.prune_marks().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    marks = n,
                    "removed hand-over marks of mails whose results were recorded"
                ),
                Err(e) => {
                    tracing::warn!(error = %e, "removing stale hand-over marks beside the store failed; tried again next pass")
                }
            }
        }
        let (recorder, results) = tokio::sync::mpsc::unbounded_channel();
        let (marker, marks) = tokio::sync::mpsc::unbounded_channel();
        let sends = async move {
            let recorder = &recorder;
            let marker = apart.then_some(&marker);
            let mut summary = Summary::default();
            let mut in_flight = futures::stream::FuturesUnordered::new();
            let mut open = true;
            loop {
                tokio::select! {
                    Some(r) = in_flight.next(), if !in_flight.is_empty() => match r {
                        Ok(o) => {
                            summary.add(o);
                            if let Some(each) = watch.each {
                                each(o);
                            }
                        }
                        // What is in flight is still finished and recorded.
                        Err(e) => pass.fail(e),
                    },
                    due = rx.recv(), if open && in_flight.len() < waiting => match due {
                        Some(due) => in_flight.push(self.process(due, recorder, marker)),
                        None => open = false,
                    },
                    else => break,
                }
            }
            summary
        };
        let ((), summary, (), ()) =
            tokio::join!(claims, sends, self.recorder(results), self.marker(marks));
        match pass.take_failure() {
            Some(e) => Err(e),
            None => Ok(summary),
        }
    }

    /// The next row of a pass, claiming more when the last claim is used up; `None` ends the
    /// pass (nothing due, `limit` reached, told to stop, or the store failed).
    async fn next_row(
        &self,
        st: &mut Claims,
        holder: &str,
        pass: &Pass<'_>,
        chunk: i64,
        notice_chunk: i64,
    ) -> Option<Due> {
        loop {
            if pass.stopping() {
                if let Err(e) = self.hand_back(st, holder).await {
                    pass.fail(e);
                }
                return None;
            }
            if let Some(due) = st.queue.pop_front() {
                if Timestamp::now().as_microsecond() <= st.begin_by {
                    return Some(due);
                }
                // A row begun after half its claim could still be out when the claim
                // runs out, and another instance would send it too: hand the rest
                // back and claim afresh.
                st.queue.push_front(due);
                if let Err(e) = self.hand_back(st, holder).await {
                    pass.fail(e);
                    return None;
                }
                continue;
            }
            if st.drained || st.left <= 0 {
                return None;
            }
            let take = st.left.min(chunk);
            match self.claim(take, notice_chunk, holder).await {
                Ok((begin_by, claimed)) => {
                    st.left -= claimed.len() as i64;
                    st.drained = claimed.is_empty();
                    st.begin_by = begin_by;
                    st.queue.extend(claimed);
                }
                Err(e) => {
                    pass.fail(e);
                    return None;
                }
            }
        }
    }

    /// Claims up to `limit` rows (at most `notice_limit` notices); the instant by which they
    /// must be begun, and the rows.
    async fn claim(
        &self,
        limit: i64,
        notice_limit: i64,
        holder: &str,
    ) -> Result<(i64, Vec<Due>), StoreError> {
        let claim = self.config.settings.outbox.claim;
        let now = Timestamp::now().as_microsecond();
        let until = now + claim.as_micros() as i64;
        // A row still being sent when its claim runs out may be sent by another instance too:
        // rows not begun before half the claim is used up are handed back instead.
        let begin_by = now + (claim / 2).as_micros() as i64;
        let rows = self
            .store
            .claim_outbox(now, until, limit, notice_limit, holder)
            .await?;
        let offering = if rows.iter().any(|r| r.list_id.is_some()) {
            self.store.lists_offering_unsubscribe().await?
        } else {
            Default::default()
        };
        let hold = self.config.settings.outbox.after_crash == AfterCrash::Hold;
        let ids: Vec<i64> = rows.iter().filter_map(|r| r.raw_message_id).collect();
        let originals = self.store.raw_bytes_of(&ids, PREFETCH_MAX).await?;
        let due = rows
            .into_iter()
            .map(|row| {
                let unsubscribe = row
                    .list_id
                    .as_deref()
                    .and_then(|l| l.split_whitespace().next())
                    .is_some_and(|name| offering.contains(name));
                let handed = row.handed_at.is_some() && row.journaled.is_none();
                let held = handed && hold;
                if handed && !hold {
                    tracing::warn!(outbox = row.id, message_id = %row.message_id, to = %row.recipient,
                        ticket = row.ticket_id, "sending again a mail an earlier sender handed to the server \
                        and died before its answer was recorded (outbox.after_crash = \"resend\"): \
                        the recipient may get it twice");
                }
                let original = row.raw_message_id.and_then(|id| originals.get(&id).cloned());
                Due {
                    row,
                    unsubscribe,
                    held,
                    original,
                }
            })
            .collect();
        Ok((begin_by, due))
    }

    async fn hand_back(&self, st: &mut Claims, holder: &str) -> Result<(), StoreError> {
        let ids: Vec<i64> = st.queue.drain(..).map(|d| d.row.id).collect();
        if ids.is_empty() {
            return Ok(());
        }
        self.store.unclaim_outbox(&ids, holder).await
    }

    /// Sends one row (a notice in its turn under `outbox.notice_rate_per_second`) and records
    /// how it went.
    async fn process(
        &self,
        due: Due,
        recorder: &Recorder,
        marker: Option<&Marker>,
    ) -> Result<Outcome, StoreError> {
        let c = &due.row;
        if let Some(ended) = &c.journaled {
            tracing::info!(outbox = c.id, message_id = %c.message_id, to = %c.recipient,
                ticket = c.ticket_id, state = ended.state.as_str(), "recording the server's answer \
                an earlier sender journaled beside the store and died before recording it");
            let outcome = Outcome::of(ended.state);
            return self
                .commit(c, outcome, ended.clone(), recorder, marker, None)
                .await;
        }
        if due.held {
            let why = "an earlier sender handed it to the server and died before the server's \
                       answer was recorded";
            return self
                .record(
                    c,
                    Err(SendError::Uncertain(why.into())),
                    recorder,
                    marker,
                    None,
                )
                .await;
        }
        if c.list_id.is_some() {
            self.mailer.pace.wait().await;
        }
        let permit = self.mailer.sending.acquire().await;
        let handover = Handover::new(self.store, recorder, marker, c);
        let original = due.original.as_deref();
        let mut result = self
            .build_and_send(c, due.unsubscribe, false, original, &handover)
            .await;
        if let Err(SendError::Needs8BitMime(e)) = &result {
            tracing::info!(outbox = c.id, error = %e, "the SMTP server takes no 8-bit mail (no 8BITMIME): sending the original base64-encoded");
            result = self
                .build_and_send(c, due.unsubscribe, true, original, &handover)
                .await;
        }
        drop(permit);
        self.record(c, result, recorder, marker, handover.marked_at())
            .await
    }

    /// Writes the hand-over marks and results that come in, as many as have come in by then
    /// in one transaction, in their order (group commit): each waits for at most the write
    /// before it and its own, and a fan-out costs a write per few mails instead of two per
    /// mail. A mark holds its connection until it is written (the data waits for it); the
    /// marks of the other connections and the results come along in the same commit. Should
    /// a batch fail, each of its entries is written alone, so that each learns its own error.
    async fn recorder(&self, mut rx: tokio::sync::mpsc::UnboundedReceiver<Recording>) {
        let mut writer = self.store.sender_writer();
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < 512 {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            let writes: Vec<SenderWrite<'_>> = batch.iter().map(Recording::write).collect();
            let written = writer.write(&writes).await;
            drop(writes);
            match written {
                Ok(()) => {
                    for r in batch {
                        let _ = r.done.send(Ok(()));
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, rows = batch.len(), "recording a batch of marks and results failed; one by one");
                    for r in batch {
                        let one = writer.write(&[r.write()]).await;
                        let _ = r.done.send(one);
                    }
                }
            }
        }
    }

    /// Builds the mail of a row and sends it; `seven_bit` sends an original as base64.
    async fn build_and_send(
        &self,
        c: &Claimed,
        unsubscribe: bool,
        seven_bit: bool,
        original: Option<&[u8]>,
        handover: &Handover<'_>,
    ) -> Result<(), SendError> {
        let (msg, envelope) = match self.notice_copy(c, unsubscribe)? {
            Some(copy) => copy,
            None => {
                let msg = self.build(c, unsubscribe, seven_bit, original).await?;
                if let Some(body_id) = c.body_id {
                    let mut kept = self
                        .mailer
                        .notices
                        .lock()
                        .unwrap_or_else(|e| e.into_inner());
                    if kept.len() >= NOTICES_KEPT {
                        kept.remove(0);
                    }
                    kept.push((body_id, msg.clone()));
                }
                let envelope = msg.envelope().clone();
                (msg, envelope)
            }
        };
        self.mailer
            .send(msg, &envelope, &c.message_id, handover)
            .await
    }

    /// A notice to a member as a copy of the same notice's mail already built for another
    /// (same text, HTML and calendar entry: the same `body_id`), with this member's header
    /// fields and envelope; `None` when none is built yet.
    fn notice_copy(
        &self,
        c: &Claimed,
        unsubscribe: bool,
    ) -> Result<Option<(Message, Envelope)>, SendError> {
        let Some(body_id) = c.body_id else {
            return Ok(None);
        };
        let kept = self
            .mailer
            .notices
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(id, _)| *id == body_id)
            .map(|(_, m)| m.clone());
        let Some(mut msg) = kept else {
            return Ok(None);
        };
        let s = &self.config.settings;
        let to: Mailbox = c
            .recipient
            .parse()
            .map_err(|e| SendError::Permanent(format!("recipient {}: {e}", c.recipient)))?;
        let sender = crate::verp::bounce_address(&s.outbox.bounce_address, &c.message_id)
            .unwrap_or_else(|| s.outbox.from.clone());
        let sender: lettre::Address = sender
            .parse()
            .map_err(|e| SendError::Permanent(format!("envelope sender {sender}: {e}")))?;
        let envelope = Envelope::new(Some(sender), vec![to.email.clone()])
            .map_err(|e| SendError::Permanent(format!("envelope: {e}")))?;
        let h = msg.headers_mut();
        h.set(header::To::from(lettre::message::Mailboxes::from(to)));
        h.set(header::MessageId::from(format!("<{}>", c.message_id)));
        h.set(header::Subject::from(c.subject.clone()));
        h.set(header::Date::now());
        h.remove::<header::InReplyTo>();
        h.remove::<header::References>();
        if let Some(irt) = &c.in_reply_to {
            h.set(header::InReplyTo::from(format!("<{irt}>")));
        }
        if let Some(refs) = &c.refs {
            let refs: Vec<String> = refs.split_whitespace().map(|r| format!("<{r}>")).collect();
            h.set(header::References::from(refs.join(" ")));
        }
        for name in ["List-Id", "List-Unsubscribe", "List-Unsubscribe-Post"] {
            h.remove_raw(name);
        }
        let mut fields = Vec::new();
        if let Some(list_id) = &c.list_id {
            fields.push(("List-Id", list_id.clone()));
            if unsubscribe {
                fields.extend(list_unsubscribe(
                    &s.outbox,
                    s.reply.keys.as_ref(),
                    &c.message_id,
                ));
            }
        }
        for (name, value) in fields {
            let name = HeaderName::new_from_ascii(name.to_string())
                .map_err(|e| SendError::Permanent(format!("header {name}: {e}")))?;
            h.insert_raw(HeaderValue::new(name, value));
        }
        Ok(Some((msg, envelope)))
    }

    async fn build(
        &self,
        c: &Claimed,
        unsubscribe: bool,
        seven_bit: bool,
        prefetched: Option<&[u8]>,
    ) -> Result<Message, SendError> {
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
        b = self.staff_headers(b, c)?;
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
            if unsubscribe {
                headers.extend(list_unsubscribe(
                    &s.outbox,
                    s.reply.keys.as_ref(),
                    &c.message_id,
                ));
            }
        }
        for (name, value) in headers {
            let name = HeaderName::new_from_ascii(name.to_string())
                .map_err(|e| SendError::Permanent(format!("header {name}: {e}")))?;
            b = b.raw_header(HeaderValue::new(name, value));
        }
        let original = match c.raw_message_id {
            Some(_) if prefetched.is_some() => prefetched.map(<[u8]>::to_vec),
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
    fn staff_headers(
        &self,
        mut b: lettre::message::MessageBuilder,
        c: &Claimed,
    ) -> Result<lettre::message::MessageBuilder, SendError> {
        if let Some(a) = super::relay::reply_to(self.config, c) {
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

    /// Records how the attempt went and releases the claim. `marked_at`: this attempt marked
    /// the row beside the store then (see [`Sender::commit`]).
    async fn record(
        &self,
        c: &Claimed,
        result: Result<(), SendError>,
        recorder: &Recorder,
        marker: Option<&Marker>,
        marked_at: Option<i64>,
    ) -> Result<Outcome, StoreError> {
        let now = Timestamp::now().as_microsecond();
        let attempts = c.attempts + 1;
        let max = i64::from(self.config.settings.outbox.max_attempts);
        let (outcome, state, error, next) = match result {
            Ok(()) => (Outcome::Sent, OutboxState::Sent, None, now),
            Err(SendError::Needs8BitMime(e)) => (
                Outcome::PermanentFailure,
                OutboxState::PermanentFailure,
                Some(format!(
                    "the SMTP server takes no 8-bit mail (8BITMIME): {e}"
                )),
                now,
            ),
            Err(SendError::Permanent(e)) => (
                Outcome::PermanentFailure,
                OutboxState::PermanentFailure,
                Some(e),
                now,
            ),
            Err(SendError::Uncertain(why)) => (
                Outcome::Uncertain,
                OutboxState::Uncertain,
                Some(format!(
                    "uncertain: {why}, so the server may have taken it (RFC 1047); held \
                     (outbox.after_crash = \"hold\"): look for Message-ID <{}> in the mail \
                     server's log, and if it is not there: poststelle outbox retry {}",
                    c.message_id, c.id
                )),
                now,
            ),
            Err(SendError::Temporary(e)) if attempts >= max => (
                Outcome::PermanentFailure,
                OutboxState::PermanentFailure,
                Some(format!("gave up after {attempts} attempts: {e}")),
                now,
            ),
            Err(SendError::Temporary(e)) => {
                let delay = backoff(attempts);
                tracing::warn!(outbox = c.id, to = %c.recipient, error = %e, retry_in_s = delay.as_secs(), "temporary failure");
                (
                    Outcome::TemporaryFailure,
                    OutboxState::TemporaryFailure,
                    Some(e),
                    now + delay.as_micros() as i64,
                )
            }
        };
        let ended = Recorded {
            state,
            attempts,
            error,
            next_attempt_at: next,
            at: now,
        };
        self.commit(c, outcome, ended, recorder, marker, marked_at)
            .await
    }

    /// Writes an attempt's end to the store. Beside a SQLite store (`marker`), an attempt
    /// that marked the row (`marked_at`) journals its end on the mark too, which takes no
    /// lock the filing holds: it goes along with the next mark's commit (no connection waits
    /// for it), and from then on a crash leaves the answer, not a doubt, while the store's
    /// write may wait for the filing. Once the store has it, the row's mark goes (this
    /// attempt's, or the one a dead sender left). A failed write of "sent" is tried again
    /// for a few seconds: until it is stored, a restart would send the mail a second time
    /// (or, journaled, only record it).
    async fn commit(
        &self,
        c: &Claimed,
        outcome: Outcome,
        ended: Recorded,
        recorder: &Recorder,
        marker: Option<&Marker>,
        marked_at: Option<i64>,
    ) -> Result<Outcome, StoreError> {
        if let (Some(marker), Some(at)) = (marker, marked_at) {
            let mark = Mark {
                id: c.id,
                attempt: c.attempts,
                message_id: &c.message_id,
                at,
                ended: None,
            };
            // Should this fail, the mark stays as it was: should the store's write fail too,
            // the mail is held as uncertain (or sent again) as without a journal.
            if marker
                .send(put_entry(&mark, Some(ended.clone()), None))
                .is_err()
            {
                let mark = Mark {
                    ended: Some(ended.attempt()),
                    ..mark
                };
                if let Err(e) = self.store.mark_handed(&mark).await {
                    tracing::warn!(outbox = c.id, error = %e, "journaling the server's answer beside the store failed");
                }
            }
        }
        let (done, written) = tokio::sync::oneshot::channel();
        let queued = recorder.send(Recording {
            id: c.id,
            entry: Entry::Result(ended.clone()),
            done,
        });
        let first = match queued {
            Ok(()) => written.await.ok(),
            Err(_) => None,
        };
        let attempt = ended.attempt();
        let mut tries = 0;
        let mut result = first;
        loop {
            let r = match result.take() {
                Some(r) => r,
                None => self.store.record_attempt(c.id, &attempt).await,
            };
            match r {
                Ok(()) => break,
                Err(e) if outcome == Outcome::Sent && tries < 5 => {
                    tries += 1;
                    tracing::warn!(outbox = c.id, error = %e, "recording a sent mail failed; trying again");
                    tokio::time::sleep(Duration::from_millis(200 * tries)).await;
                }
                Err(e) => return Err(e),
            }
        }
        if let Some(marker) = marker
            && (marked_at.is_some() || c.handed_at.is_some())
        {
            // Should this be lost, the mark is stale by its attempt and the next pass removes it.
            let _ = marker.send(MarkEntry::Forget {
                id: c.id,
                attempt: c.attempts,
            });
        }
        let error = ended.error.as_deref();
        let attempts = ended.attempts;
        match outcome {
            Outcome::Sent => {
                tracing::info!(outbox = c.id, message_id = %c.message_id, to = %c.recipient, "sent");
            }
            Outcome::PermanentFailure => {
                tracing::error!(outbox = c.id, to = %c.recipient, error = error.unwrap_or(""), attempts, "permanent failure");
            }
            Outcome::Uncertain => {
                tracing::warn!(outbox = c.id, message_id = %c.message_id, to = %c.recipient, ticket = c.ticket_id,
                    why = error.unwrap_or(""), "held as uncertain: the server may have taken this mail; \
                    sent again only by poststelle outbox retry");
            }
            Outcome::TemporaryFailure => {}
        }
        Ok(outcome)
    }

    /// Writes the marks beside a SQLite store and the ends of their attempts as they come
    /// in, as many as have come in by then in one statement (group commit, as
    /// [`Sender::recorder`]). The marks whose results the store has are removed in bulk, a
    /// thousand at a time and at the end of the pass: each removal with the marks would make
    /// every commit a transaction of two statements, and a mark whose result is recorded is
    /// stale anyway. Should a batch fail, each of its marks is written alone, so that each
    /// learns its own error.
    async fn marker(&self, mut rx: tokio::sync::mpsc::UnboundedReceiver<MarkEntry>) {
        const FORGET_AT: usize = 1024;
        let mut writer = self.store.mark_writer();
        let mut forget: Vec<(i64, i64)> = Vec::new();
        while let Some(first) = rx.recv().await {
            let mut puts = Vec::new();
            let mut next = Some(first);
            while let Some(entry) = next.take() {
                match entry {
                    MarkEntry::Forget { id, attempt } => forget.push((id, attempt)),
                    put => puts.push(put),
                }
                if puts.len() < 512 {
                    next = rx.try_recv().ok();
                }
            }
            let gone = if forget.len() >= FORGET_AT {
                std::mem::take(&mut forget)
            } else {
                Vec::new()
            };
            let marks: Vec<Mark<'_>> = puts.iter().filter_map(MarkEntry::mark).collect();
            let written = writer.write(&marks, &gone).await;
            drop(marks);
            let failed = written.is_err();
            if let Err(e) = &written {
                // Marks not removed are stale; the next pass removes them.
                tracing::warn!(error = %e, rows = puts.len(), "writing a batch of hand-over marks failed; one by one");
            }
            for entry in puts {
                let one = match entry.mark() {
                    Some(m) if failed => writer.write(&[m], &[]).await,
                    _ => Ok(()),
                };
                if let MarkEntry::Put {
                    done: Some(done), ..
                } = entry
                {
                    let _ = done.send(one);
                }
            }
        }
        if let Err(e) = writer.write(&[], &forget).await {
            tracing::warn!(error = %e, "removing hand-over marks failed; the next pass removes them");
        }
    }
}

/// `List-Unsubscribe` of a notice to a list that offers unsubscribing: the `mailto:` of the
/// mail's unsubscribe token (`crate::verp::unsubscribe_address`, acted on when it comes back
/// in), and with `outbox.unsubscribe_url` RFC 8058's one-click HTTPS link first, which
/// `List-Unsubscribe-Post` announces: `<url>/<token>.<mac>`, signed with the reply key
/// ([`crate::verp::unsubscribe_link`]), which the status listener checks. Without a key (a
/// command that did not load it) the link is left out rather than sent unsigned. Nothing
/// when the Message-ID is none of ours.
fn list_unsubscribe(
    o: &OutboxSettings,
    keys: Option<&crate::reply_token::Keys>,
    message_id: &str,
) -> Vec<(&'static str, String)> {
    let Some(mailto) = crate::verp::unsubscribe_address(&o.bounce_address, message_id) else {
        return Vec::new();
    };
    let link = o
        .unsubscribe_url
        .as_deref()
        .zip(keys)
        .and_then(|(url, keys)| crate::verp::unsubscribe_link(url, keys, message_id));
    match link {
        Some(link) => vec![
            ("List-Unsubscribe", format!("<{link}>, <mailto:{mailto}>")),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click".into()),
        ],
        None => vec![("List-Unsubscribe", format!("<mailto:{mailto}>"))],
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
    // Line by line rather than octet by octet: a staff copy attaches every original, and the
    // loop over its octets was a tenth of the sender's CPU.
    if memchr::memchr(0, bytes).is_some() {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 32);
    let mut rest = bytes;
    loop {
        let end = memchr::memchr2(b'\r', b'\n', rest).unwrap_or(rest.len());
        if end > MAX_LINE {
            return None;
        }
        out.extend_from_slice(&rest[..end]);
        let Some(&eol) = rest.get(end) else { break };
        // CRLF, bare CR or bare LF: one line end.
        let skip = if eol == b'\r' && rest.get(end + 1) == Some(&b'\n') {
            2
        } else {
            1
        };
        out.extend_from_slice(b"\r\n");
        rest = &rest[end + skip..];
    }
    let encoding = if out.is_ascii() {
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
    #[test]
    fn pipelining_is_read_from_the_ehlo_answer() {
        let seen = |text: &str| {
            let g = super::Greeting::default();
            g.0.lock().expect("lock").extend_from_slice(text.as_bytes());
            g.pipelining()
        };
        let opensmtpd = "220 mx.example ESMTP OpenSMTPD\r\n250-mx.example Hello\r\n250-8BITMIME\r\n\
                         250-ENHANCEDSTATUSCODES\r\n250-SIZE 36700160\r\n250-DSN\r\n250 PIPELINING\r\n";
        assert!(seen(opensmtpd));
        assert!(seen("220 x\r\n250-x\r\n250-pipelining\r\n250 8BITMIME\r\n"));
        assert!(!seen("220 x\r\n250-x\r\n250-8BITMIME\r\n250 SIZE 1000\r\n"));
        // Only as an EHLO keyword: not in the greeting's text, not refused.
        assert!(!seen("220 x PIPELINING welcome\r\n250-x\r\n250 SIZE\r\n"));
        assert!(!seen("220 x\r\n550 PIPELINING\r\n"));
    }

    use super::{ContentTransferEncoding, MAX_LINE, as_message, file_name};
    use proptest::strategy::Strategy;

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

    /// The octet-by-octet conversion [`as_message`] replaced, kept as the plain path.
    fn as_message_octet_by_octet(bytes: &[u8]) -> Option<(Vec<u8>, ContentTransferEncoding)> {
        let mut out = Vec::new();
        let (mut line, mut ascii, mut i) = (0, true, 0);
        while i < bytes.len() {
            match bytes[i] {
                0 => return None,
                b'\r' | b'\n' => {
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

    proptest::proptest! {
        /// Line ends of every kind, NULs, 8-bit octets and lines around the limit, each as the
        /// octet-by-octet conversion gives them.
        #[test]
        fn an_original_is_converted_as_octet_by_octet(
            parts in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
                    proptest::strategy::Just(b"\r\n".to_vec()),
                    proptest::strategy::Just(b"\r".to_vec()),
                    proptest::strategy::Just(b"\n".to_vec()),
                    proptest::strategy::Just(b"\n\r".to_vec()),
                    (990usize..1005).prop_map(|n| vec![b'x'; n]),
                    proptest::strategy::Just("Grüße".as_bytes().to_vec()),
                ],
                0..30,
            )
        ) {
            let bytes = parts.concat();
            let fast = as_message(&bytes);
            let plain = as_message_octet_by_octet(&bytes);
            proptest::prop_assert_eq!(
                fast.as_ref().map(|(b, e)| (b, format!("{e:?}"))),
                plain.as_ref().map(|(b, e)| (b, format!("{e:?}")))
            );
        }
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
