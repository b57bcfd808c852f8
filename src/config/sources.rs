//! The daemon's part of the configuration: `[daemon]` and the `[[mailbox]]` tables it watches.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use super::oauth::{OAuthLogin, OAuthProvider};
use super::{Diagnostics, Files, Secret, SourceText, at, config_path, resolve_secret};

/// IDLE must be re-issued before a server's inactivity timeout; RFC 2177 allows servers to
/// drop an idle client after 30 minutes.
const MAX_IDLE: Duration = Duration::from_secs(29 * 60);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct RawDaemon {
    shutdown_timeout_seconds: u64,
    lease_seconds: u64,
    metrics_listen: Option<Spanned<String>>,
    sender_batch: u32,
    maintenance_reminder_hours: u32,
}

impl Default for RawDaemon {
    fn default() -> Self {
        Self {
            shutdown_timeout_seconds: 10,
            lease_seconds: 30,
            metrics_listen: None,
            sender_batch: 16,
            maintenance_reminder_hours: 24,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMailbox {
    name: String,
    kind: Spanned<String>,
    /// Maildir: its directory, relative to the data directory.
    path: Option<String>,
    host: Option<String>,
    port: Option<u16>,
    tls: Option<Spanned<String>>,
    username: Option<String>,
    password: Option<String>,
    password_env: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    /// "password" (default) or "oauth2".
    auth: Option<Spanned<String>>,
    /// The `[[oauth]]` provider of `auth = "oauth2"`.
    oauth: Option<Spanned<String>>,
    /// "xoauth2" (default) or "oauthbearer".
    sasl: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
    folder: Option<String>,
    processed_folder: Option<String>,
    quarantine_folder: Option<String>,
    after: Option<Spanned<String>>,
    first_run: Option<Spanned<String>>,
    batch_size: Option<usize>,
    move_batch_size: Option<usize>,
    poll_interval_seconds: Option<u64>,
    idle: Option<bool>,
    idle_timeout_seconds: Option<u64>,
    max_silence_seconds: Option<u64>,
}

/// How the daemon runs as a whole.
#[derive(Debug, Clone)]
pub struct DaemonSettings {
    /// After SIGTERM, the batch in flight and the mail being sent get this long.
    pub shutdown_timeout: Duration,
    /// How long a mailbox lease lasts without renewal; another instance takes over after it.
    pub lease: Duration,
    /// `/metrics` and `/healthz` listen here when set.
    pub metrics_listen: Option<SocketAddr>,
    /// Outbox rows claimed per round; the sender checks for shutdown between rounds.
    pub sender_batch: u32,
    /// How long before a maintenance starts the daemon sends its reminder; zero: none.
    pub maintenance_reminder: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImapTls {
    /// TLS from the first byte (port 993).
    Implicit,
    Starttls,
    /// Plain text: for tests on loopback only.
    None,
}

#[derive(Debug, Clone)]
pub struct ImapSettings {
    pub host: String,
    pub port: u16,
    pub tls: ImapTls,
    pub username: String,
    /// Empty with `oauth`.
    pub password: String,
    /// `auth = "oauth2"`: log in with a token of this provider (XOAUTH2 or OAUTHBEARER).
    pub oauth: Option<Box<OAuthLogin>>,
    pub ca_file: Option<PathBuf>,
    pub folder: String,
    pub processed_folder: String,
    pub quarantine_folder: String,
    /// Use IDLE when the server offers it.
    pub idle: bool,
    pub idle_timeout: Duration,
}

#[derive(Debug, Clone)]
pub enum MailboxKind {
    Imap(ImapSettings),
    /// new/ is the inbox; filed mail goes to cur/, quarantined mail to the `.Quarantine` folder.
    /// A relative path is relative to the data directory.
    Maildir {
        path: PathBuf,
    },
}

/// What becomes of a filed message on the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Move it to the processed folder.
    Move,
    /// Leave it in place, marked `\Seen`.
    Flag,
}

/// What the first connection to a mailbox files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstRun {
    /// Everything already there.
    All,
    /// Only what arrives from now on.
    New,
}

#[derive(Debug, Clone)]
pub struct MailboxSettings {
    pub name: String,
    pub kind: MailboxKind,
    pub after: After,
    pub first_run: FirstRun,
    /// Messages per fetch and per transaction.
    pub batch_size: usize,
    /// Up to this many committed messages are moved (or flagged) with one IMAP command.
    pub move_batch_size: usize,
    /// Between polls when there is no IDLE.
    pub poll_interval: Duration,
    /// `/healthz` fails when the mailbox has not been polled for this long.
    pub max_silence: Duration,
}

pub(super) fn validate_daemon(
    raw: &RawDaemon,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> DaemonSettings {
    let metrics_listen =
        raw.metrics_listen
            .as_ref()
            .and_then(|l| match l.get_ref().trim().parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(_) => {
                    diags.push(
                        src,
                        at(l),
                        format!(
                            "daemon.metrics_listen {:?} is no address with port",
                            l.get_ref()
                        ),
                        "write e.g. \"127.0.0.1:9187\" or \"[::1]:9187\"",
                    );
                    None
                }
            });
    DaemonSettings {
        shutdown_timeout: Duration::from_secs(raw.shutdown_timeout_seconds.max(1)),
        lease: Duration::from_secs(raw.lease_seconds.max(3)),
        metrics_listen,
        sender_batch: raw.sender_batch.max(1),
        maintenance_reminder: Duration::from_secs(u64::from(raw.maintenance_reminder_hours) * 3600),
    }
}

pub(super) fn validate_mailboxes(
    raw: &[Spanned<RawMailbox>],
    providers: &[OAuthProvider],
    src: &SourceText,
    files: &Files,
    diags: &mut Diagnostics,
) -> Vec<MailboxSettings> {
    let mut out: Vec<MailboxSettings> = Vec::new();
    for m in raw {
        let offset = Some(m.span().start);
        let m = m.get_ref();
        let name = m.name.trim().to_string();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_alphanumeric() || "-_.".contains(c))
        {
            diags.push(
                src,
                offset,
                format!("mailbox name {:?} is empty or has other characters than letters, digits, '-', '_' or '.'", m.name),
                "give every [[mailbox]] a short unique name such as \"support\"; it names the mailbox in logs, metrics and the store",
            );
        }
        if out.iter().any(|o| o.name == name) {
            diags.push(
                src,
                offset,
                format!("mailbox \"{name}\" is defined twice"),
                "rename one of the [[mailbox]] tables: the name keys its state in the store",
            );
        }
        let kind = match m.kind.get_ref().trim() {
            "maildir" => {
                let Some(path) = &m.path else {
                    diags.push(
                        src,
                        at(&m.kind),
                        format!("maildir mailbox \"{name}\" has no path"),
                        "add path = \"inbox\" (relative to the data directory) or an absolute path",
                    );
                    continue;
                };
                MailboxKind::Maildir { path: path.into() }
            }
            "imap" => match validate_imap(m, &name, providers, src, files, diags) {
                Some(imap) => MailboxKind::Imap(imap),
                None => continue,
            },
            other => {
                diags.push(
                    src,
                    at(&m.kind),
                    format!("mailbox kind \"{other}\" is unknown"),
                    "use \"imap\" or \"maildir\"",
                );
                continue;
            }
        };
        let after = match m.after.as_ref().map(|a| (a, a.get_ref().trim())) {
            None | Some((_, "move")) => After::Move,
            Some((_, "flag")) => After::Flag,
            Some((a, other)) => {
                diags.push(
                    src,
                    at(a),
                    format!("mailbox.after \"{other}\" is unknown"),
                    "use \"move\" (to the processed folder) or \"flag\" (mark \\Seen, leave in place)",
                );
                After::Move
            }
        };
        let first_run = match m.first_run.as_ref().map(|a| (a, a.get_ref().trim())) {
            None | Some((_, "all")) => FirstRun::All,
            Some((_, "new")) => FirstRun::New,
            Some((a, other)) => {
                diags.push(
                    src,
                    at(a),
                    format!("mailbox.first_run \"{other}\" is unknown"),
                    "use \"all\" (file what is there) or \"new\" (only what arrives from now on)",
                );
                FirstRun::All
            }
        };
        let is_maildir = matches!(kind, MailboxKind::Maildir { .. });
        let poll_interval = Duration::from_secs(
            m.poll_interval_seconds
                .unwrap_or(if is_maildir { 2 } else { 60 })
                .max(1),
        );
        let idle_timeout = match &kind {
            MailboxKind::Imap(i) if i.idle => i.idle_timeout,
            _ => Duration::ZERO,
        };
        let max_silence = m
            .max_silence_seconds
            .map(Duration::from_secs)
            .unwrap_or_else(|| (poll_interval * 3).max(idle_timeout + Duration::from_secs(120)));
        out.push(MailboxSettings {
            name,
            kind,
            after,
            first_run,
            batch_size: m.batch_size.unwrap_or(100).clamp(1, 5000),
            move_batch_size: m.move_batch_size.unwrap_or(1000).clamp(1, 20_000),
            poll_interval,
            max_silence,
        });
    }
    out
}

fn validate_imap(
    m: &RawMailbox,
    name: &str,
    providers: &[OAuthProvider],
    src: &SourceText,
    files: &Files,
    diags: &mut Diagnostics,
) -> Option<ImapSettings> {
    let tls = match m.tls.as_ref().map(|t| (t, t.get_ref().trim())) {
        None | Some((_, "implicit" | "tls")) => ImapTls::Implicit,
        Some((_, "starttls")) => ImapTls::Starttls,
        Some((_, "none")) => ImapTls::None,
        Some((t, other)) => {
            diags.push(
                src,
                at(t),
                format!("mailbox.tls \"{other}\" is unknown"),
                "use \"implicit\" (port 993), \"starttls\" (port 143) or \"none\" (tests on loopback only)",
            );
            ImapTls::Implicit
        }
    };
    let (Some(host), Some(username)) = (&m.host, &m.username) else {
        diags.push(
            src,
            at(&m.kind),
            format!("IMAP mailbox \"{name}\" needs host and username"),
            "add host = \"imap.example.org\" and username = \"…\" to the [[mailbox]] table",
        );
        return None;
    };
    let what = format!("mailbox \"{name}\"");
    let oauth = super::oauth::login(
        &what,
        m.auth.as_ref(),
        m.oauth.as_ref(),
        m.sasl.as_ref(),
        providers,
        src,
        diags,
    )
    .unwrap_or(None);
    let password = match resolve_secret(
        &what,
        m.password.as_deref(),
        m.password_env.as_ref(),
        m.password_file.as_ref(),
        src,
        files,
        diags,
    ) {
        Secret::Given(p) => p,
        // A token logs in; an oauth2 mailbox whose provider was refused is reported already.
        Secret::Missing
            if oauth.is_some()
                || m.auth
                    .as_ref()
                    .is_some_and(|a| a.get_ref().trim() == "oauth2") =>
        {
            String::new()
        }
        Secret::Missing => {
            diags.push(
                src,
                at(&m.kind),
                format!("IMAP mailbox \"{name}\" has no password"),
                "add password_file = \"$CREDENTIALS_DIRECTORY/imap-support\" (systemd LoadCredential=), password_env = \"VAR\" or password = \"…\"",
            );
            return None;
        }
        // Reported already; the rest of the mailbox is still checked.
        Secret::Failed => String::new(),
    };
    let idle_timeout = Duration::from_secs(m.idle_timeout_seconds.unwrap_or(25 * 60).max(1));
    if idle_timeout > MAX_IDLE {
        diags.push(
            src,
            at(&m.kind),
            format!(
                "idle_timeout_seconds {} of mailbox \"{name}\" is longer than 29 minutes",
                idle_timeout.as_secs()
            ),
            "servers may drop an idle client after 30 minutes (RFC 2177): use at most 1740",
        );
    }
    Some(ImapSettings {
        host: host.trim().to_string(),
        port: m.port.unwrap_or(match tls {
            ImapTls::Implicit => 993,
            _ => 143,
        }),
        tls,
        username: username.clone(),
        password,
        oauth,
        ca_file: m
            .ca_file
            .as_ref()
            .and_then(|f| config_path("mailbox.ca_file", f, src, files, diags)),
        folder: m.folder.clone().unwrap_or_else(|| "INBOX".into()),
        processed_folder: m
            .processed_folder
            .clone()
            .unwrap_or_else(|| "Verarbeitet".into()),
        quarantine_folder: m
            .quarantine_folder
            .clone()
            .unwrap_or_else(|| "Quarantaene".into()),
        idle: m.idle.unwrap_or(true),
        idle_timeout: idle_timeout.min(MAX_IDLE),
    })
}
