//! Configuration: one TOML file naming the rules directory, the queues, the contact list, the
//! home state and the clearing queue. Loading validates everything the classifier will need
//! (regexes compiled, contact list read, templates parsed) and collects every problem it finds,
//! so that `poststelle check` can show them all at once.
mod alerts;
mod announcements;
mod calendars;
mod client_cert;
mod oauth;
mod platforms;
mod reply;
mod retention;
mod sources;
mod status;
mod status_notices;

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use crate::classify::nutzerkonto::{ContactList, STATE_CODES};
use crate::classify::rules::RuleSet;
pub use crate::diag::{
    Diagnostic, Diagnostics, Docs, SourceText, check_address, is_plausible_address,
};
pub use crate::files::Files;
pub use alerts::{AlertSettings, ProblemSettings};
pub use announcements::AnnouncementSettings;
pub use calendars::SlaSettings;
pub use client_cert::{CertProblem, ClientCertificate};
pub use oauth::{Grant, OAuthLogin, OAuthProvider, Redacted, SaslMechanism};
pub use platforms::Platform;
pub use reply::ReplySettings;
pub use retention::{QueueRetention, RetentionSettings};
pub use sources::{
    After, DaemonSettings, FirstRun, ImapSettings, ImapTls, MailboxKind, MailboxSettings,
};
pub use status::{StatusSettings, logo_type as status_logo_type};
pub use status_notices::StatusNoticeSettings;

/// The config file used when neither `--config` nor `$POSTSTELLE_CONFIG` names one.
pub const DEFAULT_CONFIG: &str = "poststelle.toml";

/// Where README.md documents the keys of the configuration file.
const DOCS: Docs<'static> = Docs {
    section: "Configuration",
    by_key: &[
        ("mailbox", "Mailboxes"),
        ("oauth", "OAuth 2.0 (Microsoft 365, Google)"),
        ("calendars", "Service levels (SLA)"),
        ("platform", "Platforms and announcements"),
        ("reply", "Staff answers by mail"),
        ("incidents", "Incidents"),
        ("announcements", "Bounces and unsubscribing"),
        ("status_notices", "Status notices"),
        ("status", "Public status page"),
        ("retention", "Retention and data subject requests"),
        ("alerts", "Monitoring alerts"),
        ("problems", "Problems"),
    ],
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default = "default_rules_dir")]
    rules_dir: String,
    #[serde(default = "default_templates_dir")]
    templates_dir: String,
    contacts: Option<Spanned<String>>,
    #[serde(default = "default_home_state")]
    home_state: Spanned<String>,
    default_queue: Spanned<String>,
    clearing_queue: Spanned<String>,
    #[serde(default = "default_ticket_tag")]
    ticket_tag: Spanned<String>,
    #[serde(default = "default_loop_header")]
    loop_header: Spanned<String>,
    #[serde(default = "default_language")]
    language: Spanned<String>,
    #[serde(default)]
    auto_reply: RawAutoReply,
    #[serde(default)]
    nutzerkonto: RawNutzerkonto,
    #[serde(default, rename = "queue")]
    queues: Vec<Spanned<RawQueue>>,
    /// Data directory: the SQLite file, sent mail of the file transport, the default Maildir.
    data_dir: Option<String>,
    /// `sqlite://…` or `postgres://…`; default: SQLite in the data directory.
    database_url: Option<Spanned<String>>,
    /// Two digits in every ticket number, so that instances never hand out the same number.
    #[serde(default = "default_instance_id")]
    instance_id: Spanned<u8>,
    #[serde(default)]
    ingest: RawIngest,
    #[serde(default)]
    outbox: RawOutbox,
    #[serde(default)]
    sla: calendars::RawSla,
    #[serde(default)]
    calendars: BTreeMap<String, Spanned<calendars::RawCalendar>>,
    #[serde(default)]
    daemon: sources::RawDaemon,
    #[serde(default, rename = "mailbox")]
    mailboxes: Vec<Spanned<sources::RawMailbox>>,
    #[serde(default, rename = "oauth")]
    oauth: Vec<Spanned<oauth::RawOAuth>>,
    #[serde(default, rename = "platform")]
    platforms: Vec<Spanned<platforms::RawPlatform>>,
    #[serde(default)]
    reply: reply::RawReply,
    #[serde(default)]
    incidents: RawIncidents,
    #[serde(default)]
    announcements: announcements::RawAnnouncements,
    #[serde(default)]
    status_notices: status_notices::RawStatusNotices,
    #[serde(default)]
    status: status::RawStatus,
    #[serde(default)]
    retention: retention::RawRetention,
    #[serde(default)]
    alerts: alerts::RawAlerts,
    #[serde(default)]
    problems: alerts::RawProblems,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawIncidents {
    raise_to_class_2_after: Spanned<u32>,
}

impl Default for RawIncidents {
    fn default() -> Self {
        Self {
            raise_to_class_2_after: Spanned::new(0..0, DEFAULT_RAISE_AFTER),
        }
    }
}

/// Light reports (class 3) linked to one incident that make it class 2 unless configured.
const DEFAULT_RAISE_AFTER: u32 = 5;

/// How incidents are handled (`[incidents]`).
#[derive(Debug, Clone)]
pub struct IncidentSettings {
    /// Linked light reports (tickets of class 3) at which an incident of class 3 or 4 becomes
    /// class 2, betriebsbehindernd: "many light faults together" (seed 001, §4.2); 0: never.
    pub raise_to_class_2_after: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawIngest {
    max_message_size: u64,
    reopen_days: u32,
    ack_max_age_hours: u32,
    auto_reply_limit_per_hour: u32,
    parse_budget_seconds: Spanned<f64>,
}

impl Default for RawIngest {
    fn default() -> Self {
        Self {
            max_message_size: 25 * 1024 * 1024,
            reopen_days: 14,
            ack_max_age_hours: 24,
            auto_reply_limit_per_hour: 5,
            parse_budget_seconds: Spanned::new(0..0, 10.0),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutbox {
    #[serde(default = "default_from")]
    from: Spanned<String>,
    #[serde(default = "default_from_name")]
    from_name: String,
    /// Domain of the Message-IDs we generate; default: the domain of `from`.
    message_id_domain: Option<String>,
    /// Where bounces of notices go, with a token per mail (VERP); default: `from`.
    bounce_address: Option<Spanned<String>>,
    #[serde(default = "default_transport")]
    transport: Spanned<String>,
    #[serde(default = "default_max_attempts")]
    max_attempts: u32,
    #[serde(default = "default_claim_seconds")]
    claim_seconds: Spanned<u64>,
    /// Notices to distribution lists per second, across parallel sends; 0: no limit.
    #[serde(default = "default_notice_rate")]
    notice_rate_per_second: Spanned<f64>,
    /// Base of RFC 8058's one-click unsubscribe link (`<url>/<token>`); none: `mailto:` only.
    unsubscribe_url: Option<Spanned<String>>,
    /// "hold" or "resend": a mail whose data went to the server without an answer recorded.
    #[serde(default = "default_after_crash")]
    after_crash: Spanned<String>,
    smtp: Option<RawSmtp>,
}

impl Default for RawOutbox {
    fn default() -> Self {
        Self {
            from: default_from(),
            from_name: default_from_name(),
            message_id_domain: None,
            bounce_address: None,
            transport: default_transport(),
            max_attempts: default_max_attempts(),
            claim_seconds: default_claim_seconds(),
            notice_rate_per_second: default_notice_rate(),
            unsubscribe_url: None,
            after_crash: default_after_crash(),
            smtp: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSmtp {
    host: String,
    port: Option<u16>,
    #[serde(default = "default_tls")]
    tls: Spanned<String>,
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
    #[serde(default = "default_pool")]
    pool_size: Spanned<u32>,
    #[serde(default = "default_smtp_timeout")]
    timeout_seconds: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    name: String,
    staff: Option<Spanned<String>>,
    escalation: Option<Spanned<String>>,
    #[serde(default)]
    description: String,
    /// Service calendar of the queue's deadlines; default `sla.calendar`.
    calendar: Option<Spanned<String>>,
    /// The next support level's queue: SLA notices go to its staff address.
    escalate_to: Option<Spanned<String>>,
    /// On-call duty (Rufbereitschaft): told at once of a class-1 ticket outside service hours.
    on_call: Option<Spanned<String>>,
    /// Staff of the queue besides its `staff` address: addresses and `@domain`s whose answers
    /// with a reply token are relayed.
    #[serde(default)]
    members: Vec<Spanned<String>>,
    /// Told of every state, class or level change of the queue's tickets (the Auftraggeber).
    #[serde(default)]
    observers: Vec<Spanned<String>>,
    /// Whether requesters and observers get status notices; default on.
    #[serde(default = "default_true")]
    status_notices: bool,
    /// Days the texts of its closed tickets are kept; default `retention.days`.
    retention_days: Option<Spanned<i64>>,
    /// Days until its closed tickets are anonymised; default `retention.anonymise_after_days`.
    anonymise_after_days: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAutoReply {
    #[serde(default = "default_ack")]
    acknowledgement: Spanned<String>,
}

impl Default for RawAutoReply {
    fn default() -> Self {
        Self {
            acknowledgement: default_ack(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNutzerkonto {
    #[serde(default = "default_nk_priority")]
    priority: i64,
    #[serde(default = "default_efa_template")]
    efa_outbound_template: Spanned<String>,
    other_state_queue: Option<Spanned<String>>,
    other_state_forward: Option<Spanned<String>>,
    #[serde(default)]
    forward_by_state: BTreeMap<String, Spanned<String>>,
}

impl Default for RawNutzerkonto {
    fn default() -> Self {
        Self {
            priority: default_nk_priority(),
            efa_outbound_template: default_efa_template(),
            other_state_queue: None,
            other_state_forward: None,
            forward_by_state: BTreeMap::new(),
        }
    }
}

fn default_true() -> bool {
    true
}
fn default_rules_dir() -> String {
    "rules".into()
}
fn default_templates_dir() -> String {
    "templates".into()
}
fn default_home_state() -> Spanned<String> {
    Spanned::new(0..0, "HE".into())
}
fn default_ticket_tag() -> Spanned<String> {
    Spanned::new(0..0, "Ticket".into())
}
fn default_loop_header() -> Spanned<String> {
    Spanned::new(0..0, "X-Poststelle-Loop".into())
}
fn default_language() -> Spanned<String> {
    Spanned::new(0..0, "de".into())
}
fn default_ack() -> Spanned<String> {
    Spanned::new(0..0, "eingangsbestaetigung".into())
}
fn default_efa_template() -> Spanned<String> {
    Spanned::new(0..0, "nutzerkonto-efa-outbound".into())
}
fn default_nk_priority() -> i64 {
    100
}
/// `ingest.parse_budget_seconds`: a positive number of seconds, fractions allowed.
fn parse_budget(
    seconds: &Spanned<f64>,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> std::time::Duration {
    let value = *seconds.get_ref();
    match std::time::Duration::try_from_secs_f64(value) {
        Ok(d) if !d.is_zero() => d,
        _ => {
            diags.push(
                src,
                at(seconds),
                format!("ingest.parse_budget_seconds = {value} is no time a message could take"),
                "give a positive number of seconds, e.g. 10 (see README.md, \"Hostile mail\")",
            );
            std::time::Duration::from_secs(10)
        }
    }
}

fn default_instance_id() -> Spanned<u8> {
    Spanned::new(0..0, 10)
}
fn default_from() -> Spanned<String> {
    Spanned::new(0..0, "servicedesk@poststelle.invalid".into())
}
fn default_from_name() -> String {
    "Servicedesk".into()
}
fn default_transport() -> Spanned<String> {
    Spanned::new(0..0, "file".into())
}
fn default_claim_seconds() -> Spanned<u64> {
    Spanned::new(0..0, 120)
}
fn default_max_attempts() -> u32 {
    10
}
fn default_tls() -> Spanned<String> {
    Spanned::new(0..0, "starttls".into())
}
fn default_pool() -> Spanned<u32> {
    Spanned::new(0..0, 4)
}
fn default_after_crash() -> Spanned<String> {
    Spanned::new(0..0, "hold".into())
}
fn default_notice_rate() -> Spanned<f64> {
    Spanned::new(0..0, 0.0)
}
fn default_smtp_timeout() -> u64 {
    30
}

/// How tickets are filed.
#[derive(Debug, Clone)]
pub struct IngestSettings {
    /// Larger messages are quarantined unread.
    pub max_message_size: u64,
    /// A follow-up to a ticket closed less than this long ago reopens it.
    pub reopen_days: u32,
    /// Mail older than this (by its Date) gets no acknowledgement: a first import must not
    /// flood requesters.
    pub ack_max_age_hours: u32,
    /// Automatic replies to one address per hour; the rest are recorded as suppressed.
    pub auto_reply_limit_per_hour: u32,
    /// How long the daemon lets one message's parse and classification run before it is
    /// quarantined: the last line of defence against mail that is slow to read.
    pub parse_budget: std::time::Duration,
}

/// How outgoing mail is sent.
#[derive(Debug, Clone)]
pub enum Transport {
    /// `.eml` files under `<data_dir>/sent/` (the embedded default).
    File,
    Smtp(SmtpSettings),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// STARTTLS, required.
    Starttls,
    /// TLS from the first byte (port 465).
    Implicit,
    /// No TLS at all: for tests on loopback only.
    None,
}

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub username: Option<String>,
    pub password: Option<String>,
    /// `auth = "oauth2"`: log in with a token of this provider instead of the password.
    pub oauth: Option<Box<OAuthLogin>>,
    pub ca_file: Option<std::path::PathBuf>,
    pub pool_size: u32,
    pub timeout: std::time::Duration,
}

#[derive(Debug, Clone)]
pub struct OutboxSettings {
    pub from: String,
    pub from_name: String,
    pub message_id_domain: String,
    /// The envelope sender of notices, which gets a token per mail (`crate::verp`).
    pub bounce_address: String,
    pub transport: Transport,
    pub max_attempts: u32,
    /// How long a sender's claim on an outbox row lasts: another instance sends a row whose
    /// claim ran out, so this must exceed the time one mail takes to send.
    pub claim: std::time::Duration,
    /// Notices to distribution lists (rows with `list_id`) per second; 0: as fast as the
    /// parallel sends go.
    pub notice_rate_per_second: f64,
    /// Base URL of RFC 8058 one-click unsubscribing (HTTPS, no trailing slash needed); `None`:
    /// notices offer `mailto:` only.
    pub unsubscribe_url: Option<String>,
    /// What becomes of a mail whose data went to the SMTP server while its answer was never
    /// recorded.
    pub after_crash: AfterCrash,
}

/// `outbox.after_crash`: a mail whose end of data (the final `.`) may have reached the SMTP
/// server while its answer never came or was never recorded — the sender was killed, or the
/// connection broke — may be in the server's queue or not, and nothing in SMTP lets the
/// client ask (RFC 1047).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterCrash {
    /// Held as `uncertain` until a person has checked (the server's log, the recipient) and
    /// sends it again with `outbox retry`: never a copy too many.
    Hold,
    /// Sent again: at least once, a copy too many where the server had it.
    Resend,
}

/// A department's queue: where its tickets live and who gets copies and escalations.
#[derive(Debug, Clone)]
pub struct Queue {
    pub name: String,
    pub staff: Option<String>,
    pub escalation: Option<String>,
    pub description: String,
    /// Name of the service calendar its deadlines run on.
    pub calendar: String,
    /// The next support level's queue (level by level: 1st → 2nd → 3rd).
    pub escalate_to: Option<String>,
    /// On-call duty (Rufbereitschaft), told at once of a class-1 ticket that comes, or is
    /// still unanswered, outside the queue's service hours.
    pub on_call: Option<String>,
    /// Members besides `staff`, lower-cased: addresses, and `@domain` for a whole domain.
    pub members: Vec<String>,
    /// Told of every state, class or level change of the queue's tickets, like the requester
    /// (e.g. the Auftraggeber's address).
    pub observers: Vec<String>,
    /// Whether the queue's requesters and observers get status notices.
    pub status_notices: bool,
    /// Its own retention periods, where they differ from `[retention]`.
    pub retention: QueueRetention,
}

impl Queue {
    /// Whether `address` is staff of this queue: its staff address, its own escalation or
    /// on-call address (both get mail with the reply address), or one of its members.
    pub fn is_staff(&self, address: &str) -> bool {
        let a = address.trim().to_ascii_lowercase();
        if a.is_empty() {
            return false;
        }
        [&self.staff, &self.escalation, &self.on_call]
            .into_iter()
            .flatten()
            .any(|s| s.eq_ignore_ascii_case(&a))
            || self.members.iter().any(|m| match m.strip_prefix('@') {
                Some(domain) => a.rsplit_once('@').is_some_and(|(_, d)| d == domain),
                None => *m == a,
            })
    }
}

/// How Nutzerkonto mail (`HE_<Betreff>_NKB`) is routed beyond the contact list.
#[derive(Debug, Clone)]
pub struct NutzerkontoSettings {
    /// Where the routing step sits among the rules (lower runs earlier).
    pub priority: i64,
    pub efa_outbound_template: String,
    /// Queue for questions addressed to another state.
    pub other_state_queue: String,
    /// Forward address for another state's questions, by state code; `None` key = any state.
    pub forward_by_state: BTreeMap<String, String>,
    pub other_state_forward: Option<String>,
}

/// Validated settings the classifier and later stages read.
#[derive(Debug, Clone)]
pub struct Settings {
    pub home_state: String,
    pub default_queue: String,
    pub clearing_queue: String,
    pub ticket_tag: String,
    /// Matches the ticket tag anywhere in a subject; group 1 is the number.
    pub ticket_ref: Regex,
    pub loop_header: String,
    pub language: String,
    /// Template of the acknowledgement to a new request; `None` when switched off.
    pub acknowledgement_template: Option<String>,
    pub nutzerkonto: NutzerkontoSettings,
    pub queues: Vec<Queue>,
    pub data_dir: std::path::PathBuf,
    /// `None`: SQLite in the data directory.
    pub database_url: Option<String>,
    pub instance_id: u8,
    pub ingest: IngestSettings,
    pub outbox: OutboxSettings,
    pub sla: SlaSettings,
    pub daemon: DaemonSettings,
    /// The mailboxes `poststelle run` watches.
    pub mailboxes: Vec<MailboxSettings>,
    /// `[[oauth]]`: the providers mailboxes and the relay get their tokens from.
    pub oauth: Vec<OAuthProvider>,
    /// The platforms whose maintenance and incidents are announced.
    pub platforms: Vec<Platform>,
    pub incidents: IncidentSettings,
    pub announcements: AnnouncementSettings,
    /// Reply tokens of mail to staff and the checks of staff answers.
    pub reply: ReplySettings,
    pub status_notices: StatusNoticeSettings,
    /// The public status page.
    pub status: StatusSettings,
    /// How long what is stored about people is kept.
    pub retention: RetentionSettings,
    /// How monitoring mail becomes incidents.
    pub alerts: AlertSettings,
    /// When repeated incidents make a problem.
    pub problems: ProblemSettings,
}

impl Settings {
    /// `--data-dir`: the refresh tokens move with the data directory.
    pub fn oauth_follow_data_dir(&mut self, dir: &std::path::Path) {
        let file = |p: &OAuthProvider| dir.join("oauth").join(format!("{}.refresh-token", p.name));
        for p in &mut self.oauth {
            p.refresh_token_file = file(p);
        }
        for m in &mut self.mailboxes {
            if let MailboxKind::Imap(i) = &mut m.kind
                && let Some(o) = &mut i.oauth
            {
                o.provider.refresh_token_file = file(&o.provider);
            }
        }
        if let Transport::Smtp(s) = &mut self.outbox.transport
            && let Some(o) = &mut s.oauth
        {
            o.provider.refresh_token_file = file(&o.provider);
        }
    }

    pub fn queue(&self, name: &str) -> Option<&Queue> {
        self.queues.iter().find(|q| q.name == name)
    }

    pub fn platform(&self, name: &str) -> Option<&Platform> {
        self.platforms.iter().find(|p| p.name == name)
    }

    /// Where a queue's escalations go: the staff address of the next level's queue
    /// (`escalate_to`), else its `escalation` address.
    pub fn escalation_address(&self, queue: &str) -> Option<String> {
        let q = self.queue(queue)?;
        match &q.escalate_to {
            Some(next) => self.queue(next)?.staff.clone(),
            None => q.escalation.clone(),
        }
    }

    /// Whether `address` is staff of any queue.
    pub fn is_staff_anywhere(&self, address: &str) -> bool {
        self.queues.iter().any(|q| q.is_staff(address))
    }
}

/// Everything loaded from one configuration: settings, rules, contact list, templates.
#[derive(Debug)]
pub struct Config {
    /// Where the configuration came from, for messages (`embedded:poststelle.toml` for the default).
    pub origin: String,
    pub settings: Settings,
    pub rules: RuleSet,
    pub contacts: ContactList,
    pub templates: crate::templates::Templates,
    pub files: Files,
}

impl Config {
    /// Loads `path`, or the shipped default when `None`.
    pub fn load(path: Option<&Path>) -> Result<Config, Diagnostics> {
        let (files, name) = match path {
            Some(p) => Files::for_config_file(p),
            None => (Files::Embedded, DEFAULT_CONFIG.to_string()),
        };
        match files.read(&name) {
            Ok(src) => Config::from_source(files, src),
            Err(e) => Err(Diagnostics(vec![e])),
        }
    }

    /// The configuration in `src` (the text of a `poststelle.toml`, read by [`Config::load`]
    /// or given whole), with the rules, contact list and templates it names read from `files`.
    pub fn from_source(files: Files, src: SourceText) -> Result<Config, Diagnostics> {
        let mut diags = Diagnostics::default();
        let Some(raw) = src.deserialize::<RawConfig>(&DOCS, &mut diags) else {
            return Err(diags);
        };
        let settings = validate_settings(&raw, &src, &files, &mut diags);
        let rules = RuleSet::load(&files, &raw.rules_dir, &mut diags);
        let contacts = match &raw.contacts {
            Some(p) => ContactList::load(&files, p.get_ref(), &mut diags),
            None => ContactList::default(),
        };
        let templates = crate::templates::Templates::load(&files, &raw.templates_dir, &mut diags);
        let config = Config {
            origin: src.name.clone(),
            settings,
            rules,
            contacts,
            templates,
            files,
        };
        config.cross_check(&src, &raw, &mut diags);
        if diags.is_empty() {
            Ok(config)
        } else {
            Err(diags)
        }
    }

    /// Checks references between the parts: every queue and template named anywhere exists.
    fn cross_check(&self, src: &SourceText, raw: &RawConfig, diags: &mut Diagnostics) {
        let s = &self.settings;
        let queue_fix = |name: &str| {
            format!(
                "add a [[queue]] table with name = \"{name}\" to {}, or use one of: {}",
                self.origin,
                s.queues
                    .iter()
                    .map(|q| q.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let mut need_queue = |name: &str, offset: usize, what: &str| {
            if s.queue(name).is_none() {
                diags.push(
                    src,
                    Some(offset),
                    format!("{what} names the unknown queue \"{name}\""),
                    queue_fix(name),
                );
            }
        };
        need_queue(
            &s.default_queue,
            raw.default_queue.span().start,
            "default_queue",
        );
        need_queue(
            &s.clearing_queue,
            raw.clearing_queue.span().start,
            "clearing_queue",
        );
        if let Some(q) = &raw.nutzerkonto.other_state_queue {
            need_queue(q.get_ref(), q.span().start, "nutzerkonto.other_state_queue");
        }
        for (file, offset, queue) in self.rules.queue_refs().chain(self.contacts.queue_refs()) {
            if s.queue(queue).is_none() {
                diags.push(
                    file,
                    Some(offset),
                    format!("unknown queue \"{queue}\""),
                    queue_fix(queue),
                );
            }
        }
        let mut need_template = |file: &SourceText, offset: usize, name: &str| {
            if !self.templates.has(name, &s.language) {
                diags.push(
                    file,
                    Some(offset),
                    format!(
                        "template \"{name}\" does not exist for language \"{}\"",
                        s.language
                    ),
                    format!(
                        "create {}/{}/{name}.txt, or name one of: {}",
                        self.templates.dir,
                        s.language,
                        self.templates.names().join(", ")
                    ),
                );
            }
        };
        if let Some(t) = &s.acknowledgement_template {
            need_template(src, raw.auto_reply.acknowledgement.span().start, t);
        }
        need_template(
            src,
            raw.nutzerkonto.efa_outbound_template.span().start,
            &s.nutzerkonto.efa_outbound_template,
        );
        for (file, offset, name) in self.rules.template_refs() {
            need_template(file, offset, name);
        }
        for (file, offset, name) in self.rules.platform_refs() {
            if s.platform(name).is_none() {
                let known: Vec<&str> = s.platforms.iter().map(|p| p.name.as_str()).collect();
                diags.push(
                    file,
                    Some(offset),
                    format!(
                        "platform = \"{name}\" names no [[platform]] of {}",
                        self.origin
                    ),
                    if known.is_empty() {
                        format!(
                            "add a [[platform]] table with name = \"{name}\" to {}, or remove \
                             the action",
                            self.origin
                        )
                    } else {
                        format!("name one of: {}", known.join(", "))
                    },
                );
            }
        }
        // Mail the ticket stage writes whatever the rules say.
        for name in crate::templates::BUILT_IN {
            if !self.templates.has(name, &s.language) {
                diags.push(
                    src,
                    None,
                    format!(
                        "the template \"{name}\" is missing for language \"{}\"",
                        s.language
                    ),
                    format!(
                        "create {}/{}/{name}.txt (see the shipped templates/)",
                        self.templates.dir, s.language
                    ),
                );
            }
        }
    }
}

fn validate_settings(
    raw: &RawConfig,
    src: &SourceText,
    files: &Files,
    diags: &mut Diagnostics,
) -> Settings {
    let instance_id = *raw.instance_id.get_ref();
    if instance_id > 99 {
        diags.push(
            src,
            at(&raw.instance_id),
            format!("instance_id {instance_id} has more than two digits"),
            "use a number from 0 to 99, different for every poststelle writing to one database",
        );
    }
    if let Some(u) = &raw.database_url {
        let url = u.get_ref().trim();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres:")
            || url.starts_with("postgresql:"))
        {
            diags.push(
                src,
                at(u),
                format!("database_url {url:?} is neither SQLite nor PostgreSQL"),
                "write sqlite:///path/to/file.sqlite or postgres://user@host/dbname",
            );
        }
    }
    let data_dir = resolve_data_dir(raw.data_dir.as_deref(), files);
    let oauth = oauth::validate(&raw.oauth, &data_dir, src, files, diags);
    let outbox = validate_outbox(&raw.outbox, &oauth, src, files, diags);
    let home_state = raw.home_state.get_ref().trim().to_ascii_uppercase();
    if !STATE_CODES.contains(&home_state.as_str()) {
        diags.push(
            src,
            Some(raw.home_state.span().start),
            format!(
                "home_state \"{}\" is no German state code",
                raw.home_state.get_ref()
            ),
            format!("use one of {}", STATE_CODES.join(" ")),
        );
    }
    let tag = raw.ticket_tag.get_ref().trim().to_string();
    let ticket_ref = if tag.is_empty() || !tag.chars().all(|c| c.is_alphanumeric() || c == '-') {
        diags.push(
            src,
            Some(raw.ticket_tag.span().start),
            format!("ticket_tag \"{tag}\" must be one word of letters, digits or '-'"),
            "use a word such as \"Ticket\" or \"Vorgang\"",
        );
        crate::classify::subject::ticket_ref_regex("Ticket")
    } else {
        crate::classify::subject::ticket_ref_regex(&tag)
    };
    let loop_header = raw.loop_header.get_ref().trim().to_string();
    if !is_header_name(&loop_header) {
        diags.push(
            src,
            Some(raw.loop_header.span().start),
            format!("loop_header \"{loop_header}\" is not a valid header field name"),
            "use printable ASCII without spaces or ':', e.g. \"X-Poststelle-Loop\"",
        );
    }
    let language = raw.language.get_ref().trim().to_ascii_lowercase();
    if !matches!(language.as_str(), "de" | "en") {
        diags.push(
            src,
            Some(raw.language.span().start),
            format!("language \"{language}\" is not supported"),
            "use \"de\" or \"en\"",
        );
    }

    let sla = calendars::validate(&raw.calendars, &raw.sla, src, diags);
    let platforms = platforms::validate(
        &raw.platforms,
        &sla.calendars,
        &sla.default_calendar,
        src,
        diags,
    );
    let retention = retention::validate(&raw.retention, raw.ingest.reopen_days, src, diags);
    let alerts = alerts::validate_alerts(&raw.alerts, &platforms, src, diags);
    let mut queues: Vec<Queue> = Vec::new();
    for q in &raw.queues {
        let offset = q.span().start;
        let q = q.get_ref();
        let name = q.name.trim().to_string();
        if name.is_empty() {
            diags.push(
                src,
                Some(offset),
                "a [[queue]] has an empty name",
                "give every queue a name",
            );
        }
        if queues.iter().any(|o| o.name == name) {
            diags.push(
                src,
                Some(offset),
                format!("queue \"{name}\" is defined twice"),
                "remove or rename one of the [[queue]] tables",
            );
        }
        for addr in [&q.staff, &q.escalation, &q.on_call]
            .into_iter()
            .flatten()
            .chain(&q.observers)
        {
            check_address(src, addr, diags);
        }
        let mut members = Vec::new();
        for m in &q.members {
            let v = m.get_ref().trim().to_ascii_lowercase();
            let ok = match v.strip_prefix('@') {
                Some(domain) => is_plausible_address(&format!("x@{domain}")),
                None => is_plausible_address(&v),
            };
            if ok {
                members.push(v);
            } else {
                diags.push(
                    src,
                    at(m),
                    format!(
                        "queue \"{name}\": member \"{}\" is neither an address nor a domain",
                        m.get_ref()
                    ),
                    "write an address (\"jan.berger@kommunal-it.example\") or a whole domain \
                     with a leading @ (\"@kommunal-it.example\")",
                );
            }
        }
        let calendar = match &q.calendar {
            Some(c) => {
                let c_name = c.get_ref().trim();
                let what = format!("queue \"{name}\"");
                calendars::need_calendar(&sla.calendars, c_name, at(c), &what, src, diags);
                c_name.to_string()
            }
            None => sla.default_calendar.clone(),
        };
        let queue_retention = retention::validate_queue(
            &name,
            q.retention_days.as_ref(),
            q.anonymise_after_days.as_ref(),
            &retention,
            raw.ingest.reopen_days,
            Some(offset),
            src,
            diags,
        );
        queues.push(Queue {
            name,
            staff: q.staff.as_ref().map(|a| a.get_ref().trim().to_string()),
            escalation: q
                .escalation
                .as_ref()
                .map(|a| a.get_ref().trim().to_string()),
            description: q.description.clone(),
            calendar,
            escalate_to: q
                .escalate_to
                .as_ref()
                .map(|e| e.get_ref().trim().to_string()),
            on_call: q.on_call.as_ref().map(|a| a.get_ref().trim().to_string()),
            members,
            observers: q
                .observers
                .iter()
                .map(|a| a.get_ref().trim().to_string())
                .collect(),
            status_notices: q.status_notices,
            retention: queue_retention,
        });
    }
    for q in raw.queues.iter().map(Spanned::get_ref) {
        let Some(next) = &q.escalate_to else {
            continue;
        };
        let name = next.get_ref().trim();
        let fix = if queues.iter().any(|o| o.name == name) {
            None
        } else {
            Some(format!(
                "name the queue of the next support level, one of: {}",
                queues
                    .iter()
                    .map(|o| o.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        };
        if let Some(fix) = fix {
            diags.push(
                src,
                at(next),
                format!(
                    "queue \"{}\" escalates to the unknown queue \"{name}\"",
                    q.name.trim()
                ),
                fix,
            );
        } else if name == q.name.trim() {
            diags.push(
                src,
                at(next),
                format!("queue \"{name}\" escalates to itself"),
                "name the queue of the next support level",
            );
        }
        if q.escalation.is_some() {
            diags.push(
                src,
                at(next),
                format!(
                    "queue \"{}\" has both escalation and escalate_to",
                    q.name.trim()
                ),
                "keep one: escalation = an address, or escalate_to = the next level's queue",
            );
        }
    }
    if queues.is_empty() {
        diags.push(
            src,
            None,
            "no queue is defined",
            "add at least one [[queue]] table with a name and a staff address",
        );
    }

    let nk = &raw.nutzerkonto;
    let mut forward_by_state = BTreeMap::new();
    for (state, addr) in &nk.forward_by_state {
        let code = state.to_ascii_uppercase();
        if !STATE_CODES.contains(&code.as_str()) {
            diags.push(
                src,
                Some(addr.span().start),
                format!("nutzerkonto.forward_by_state names \"{state}\", which is no state code"),
                format!("use one of {}", STATE_CODES.join(" ")),
            );
        }
        check_address(src, addr, diags);
        forward_by_state.insert(code, addr.get_ref().trim().to_string());
    }
    if let Some(a) = &nk.other_state_forward {
        check_address(src, a, diags);
    }
    let ack = raw.auto_reply.acknowledgement.get_ref().trim();
    let reply = reply::validate(&raw.reply, &outbox.from, &data_dir, src, files, diags);
    Settings {
        home_state,
        default_queue: raw.default_queue.get_ref().trim().to_string(),
        clearing_queue: raw.clearing_queue.get_ref().trim().to_string(),
        ticket_tag: tag,
        ticket_ref,
        loop_header,
        language,
        acknowledgement_template: (!ack.is_empty()).then(|| ack.to_string()),
        nutzerkonto: NutzerkontoSettings {
            priority: nk.priority,
            efa_outbound_template: nk.efa_outbound_template.get_ref().trim().to_string(),
            other_state_queue: nk
                .other_state_queue
                .as_ref()
                .map(|q| q.get_ref().trim().to_string())
                .unwrap_or_else(|| raw.clearing_queue.get_ref().trim().to_string()),
            forward_by_state,
            other_state_forward: nk
                .other_state_forward
                .as_ref()
                .map(|a| a.get_ref().trim().to_string()),
        },
        queues,
        daemon: sources::validate_daemon(&raw.daemon, src, diags),
        mailboxes: sources::validate_mailboxes(&raw.mailboxes, &oauth, src, files, diags),
        oauth,
        data_dir,
        database_url: raw
            .database_url
            .as_ref()
            .map(|u| resolve_database_url(u.get_ref().trim(), files)),
        instance_id,
        ingest: IngestSettings {
            max_message_size: raw.ingest.max_message_size,
            reopen_days: raw.ingest.reopen_days,
            ack_max_age_hours: raw.ingest.ack_max_age_hours,
            auto_reply_limit_per_hour: raw.ingest.auto_reply_limit_per_hour,
            parse_budget: parse_budget(&raw.ingest.parse_budget_seconds, src, diags),
        },
        outbox,
        sla,
        platforms,
        reply,
        announcements: announcements::validate(&raw.announcements, src, diags),
        status_notices: status_notices::validate(&raw.status_notices, src, diags),
        incidents: validate_incidents(&raw.incidents, src, diags),
        status: status::validate(&raw.status, src, files, diags),
        retention,
        alerts,
        problems: alerts::validate_problems(&raw.problems, src, diags),
    }
}

fn validate_incidents(
    raw: &RawIncidents,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> IncidentSettings {
    let n = *raw.raise_to_class_2_after.get_ref();
    if n == 1 {
        diags.push(
            src,
            at(&raw.raise_to_class_2_after),
            "incidents.raise_to_class_2_after = 1 would make every light report a \
             betriebsbehindernde Störung, where the service descriptions ask for many",
            "give the number of linked light reports (class 3) that together restrict the \
             platform considerably, at least 2, or 0 to never raise the class",
        );
    }
    IncidentSettings {
        raise_to_class_2_after: n,
    }
}

/// `data_dir` from the config, else systemd's `$STATE_DIRECTORY`, else `poststelle-data`. A
/// relative path is relative to the config file's directory, like every other path in it, so
/// that `--config /etc/x/poststelle.toml` finds the same store from any working directory; the
/// embedded default has no directory and keeps it relative to the working directory.
fn resolve_data_dir(configured: Option<&str>, files: &Files) -> std::path::PathBuf {
    let dir: std::path::PathBuf = match configured {
        Some(d) => d.into(),
        None => match std::env::var_os("STATE_DIRECTORY") {
            // systemd may list several directories, separated by ':'.
            Some(s) => s
                .to_string_lossy()
                .split(':')
                .next()
                .unwrap_or_default()
                .into(),
            None => "poststelle-data".into(),
        },
    };
    match files {
        Files::Disk(base) => base.join(dir),
        Files::Embedded => dir,
    }
}

/// `database_url` as written, except that the path of a relative `sqlite:` URL is made
/// relative to the config file's directory, as `data_dir` is.
fn resolve_database_url(url: &str, files: &Files) -> String {
    let Files::Disk(base) = files else {
        return url.to_string();
    };
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return url.to_string();
    };
    let (path, query) = rest.split_at(rest.find('?').unwrap_or(rest.len()));
    if path.is_empty() || path.starts_with(':') || Path::new(path).is_absolute() {
        return url.to_string();
    }
    format!("sqlite://{}{query}", base.join(path).display())
}

fn validate_outbox(
    raw: &RawOutbox,
    providers: &[OAuthProvider],
    src: &SourceText,
    files: &Files,
    diags: &mut Diagnostics,
) -> OutboxSettings {
    check_address(src, &raw.from, diags);
    let from = raw.from.get_ref().trim().to_string();
    let domain = from
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .unwrap_or_default();
    let transport = match raw.transport.get_ref().trim() {
        "file" => Transport::File,
        "smtp" => match &raw.smtp {
            None => {
                diags.push(
                    src,
                    at(&raw.transport),
                    "outbox.transport is \"smtp\" but there is no [outbox.smtp] table",
                    "add [outbox.smtp] with at least host = \"…\"",
                );
                Transport::File
            }
            Some(smtp) => Transport::Smtp(validate_smtp(smtp, providers, src, files, diags)),
        },
        other => {
            diags.push(
                src,
                at(&raw.transport),
                format!("outbox.transport \"{other}\" is unknown"),
                "use \"file\" (mail written to <data_dir>/sent/) or \"smtp\"",
            );
            Transport::File
        }
    };
    let mut claim = *raw.claim_seconds.get_ref();
    let (min_claim, why) = match &transport {
        Transport::Smtp(smtp) => (smtp.timeout.as_secs() * 2, "twice the SMTP timeout"),
        Transport::File => (10, "for the file transport"),
    };
    if at(&raw.claim_seconds).is_none() {
        claim = claim.max(min_claim);
    } else if claim < min_claim {
        diags.push(
            src,
            at(&raw.claim_seconds),
            format!("outbox.claim_seconds = {claim} is shorter than sending one mail may take"),
            format!("use at least {min_claim} ({why}), or leave it out for 120"),
        );
        claim = min_claim;
    }
    let bounce_address = match &raw.bounce_address {
        Some(b) => {
            check_address(src, b, diags);
            b.get_ref().trim().to_string()
        }
        None => from.clone(),
    };
    let rate = *raw.notice_rate_per_second.get_ref();
    let notice_rate_per_second = if rate.is_finite() && rate >= 0.0 {
        rate
    } else {
        diags.push(
            src,
            at(&raw.notice_rate_per_second),
            format!("outbox.notice_rate_per_second = {rate} is no rate"),
            "give notices per second, e.g. 20, or 0 for no limit",
        );
        0.0
    };
    let unsubscribe_url = raw
        .unsubscribe_url
        .as_ref()
        .and_then(|u| check_unsubscribe_url(u, src, diags));
    let after_crash = match raw.after_crash.get_ref().trim() {
        "hold" => AfterCrash::Hold,
        "resend" => AfterCrash::Resend,
        other => {
            diags.push(
                src,
                at(&raw.after_crash),
                format!("outbox.after_crash \"{other}\" is unknown"),
                "use \"hold\" (keep a mail the server may have taken for a person to check) or \
                 \"resend\" (send it again, possibly twice)",
            );
            AfterCrash::Hold
        }
    };
    OutboxSettings {
        from,
        bounce_address,
        from_name: raw.from_name.clone(),
        message_id_domain: raw.message_id_domain.clone().unwrap_or(domain),
        transport,
        max_attempts: raw.max_attempts.max(1),
        claim: std::time::Duration::from_secs(claim),
        notice_rate_per_second,
        unsubscribe_url,
        after_crash,
    }
}

/// `outbox.unsubscribe_url`: an `https://` URL (RFC 8058 demands HTTPS) to which a token is
/// appended, so nothing that would end up outside `<…>` of the header, no query or fragment.
fn check_unsubscribe_url(
    url: &Spanned<String>,
    src: &SourceText,
    diags: &mut Diagnostics,
) -> Option<String> {
    let u = url.get_ref().trim();
    let rest = u.strip_prefix("https://").unwrap_or("");
    let host = rest.split('/').next().unwrap_or("");
    let bad = if !u.starts_with("https://") {
        Some("is no https:// URL (RFC 8058 one-click unsubscribing demands HTTPS)")
    } else if host.is_empty() {
        Some("names no host")
    } else if u
        .chars()
        .any(|c| !c.is_ascii_graphic() || "<>\"'?#,".contains(c))
    {
        Some(
            "holds a character a header link cannot carry (space, <, >, quotes, ?, #, comma, non-ASCII)",
        )
    } else {
        None
    };
    match bad {
        None => Some(u.trim_end_matches('/').to_string()),
        Some(why) => {
            diags.push(
                src,
                at(url),
                format!("outbox.unsubscribe_url = {u:?} {why}"),
                "give the base of the public listener's unsubscribe path, e.g. \
                 \"https://servicedesk.example.org/unsubscribe\" (the token is appended), or \
                 leave it out for mailto: only",
            );
            None
        }
    }
}

fn validate_smtp(
    raw: &RawSmtp,
    providers: &[OAuthProvider],
    src: &SourceText,
    files: &Files,
    diags: &mut Diagnostics,
) -> SmtpSettings {
    let tls = match raw.tls.get_ref().trim() {
        "starttls" => SmtpTls::Starttls,
        "implicit" | "tls" => SmtpTls::Implicit,
        "none" => SmtpTls::None,
        other => {
            diags.push(
                src,
                at(&raw.tls),
                format!("outbox.smtp.tls \"{other}\" is unknown"),
                "use \"starttls\", \"implicit\" (port 465) or \"none\" (tests on loopback only)",
            );
            SmtpTls::Starttls
        }
    };
    let oauth = oauth::login(
        "outbox.smtp",
        raw.auth.as_ref(),
        raw.oauth.as_ref(),
        raw.sasl.as_ref(),
        providers,
        src,
        diags,
    )
    .unwrap_or(None);
    if oauth.is_some() && raw.username.is_none() {
        diags.push(
            src,
            raw.auth.as_ref().and_then(at),
            "outbox.smtp has auth = \"oauth2\" but no username",
            "add username = \"the mailbox's address\": SASL names the user beside the token",
        );
    }
    let password = resolve_secret(
        "outbox.smtp",
        raw.password.as_deref(),
        raw.password_env.as_ref(),
        raw.password_file.as_ref(),
        src,
        files,
        diags,
    )
    .given();
    SmtpSettings {
        host: raw.host.clone(),
        port: raw.port.unwrap_or(match tls {
            SmtpTls::Implicit => 465,
            SmtpTls::Starttls => 587,
            SmtpTls::None => 25,
        }),
        tls,
        username: raw.username.clone(),
        password,
        oauth,
        ca_file: raw
            .ca_file
            .as_ref()
            .and_then(|f| config_path("outbox.smtp.ca_file", f, src, files, diags)),
        pool_size: {
            let n = *raw.pool_size.get_ref();
            if n == 0 {
                diags.push(
                    src,
                    at(&raw.pool_size),
                    "outbox.smtp.pool_size = 0 would send nothing",
                    "give the number of SMTP connections to send over at once, e.g. 4",
                );
            }
            n.max(1)
        },
        timeout: std::time::Duration::from_secs(raw.timeout_seconds.max(1)),
    }
}

/// A password of the configuration.
pub(super) enum Secret {
    Given(String),
    /// Neither `password`, `password_env` nor `password_file` is set.
    Missing,
    /// One is set but gave no password; already reported.
    Failed,
}

impl Secret {
    /// The password; `None` when missing or already reported.
    fn given(self) -> Option<String> {
        match self {
            Secret::Given(p) => Some(p),
            Secret::Missing | Secret::Failed => None,
        }
    }
}

/// A password given inline, by environment variable or in a file (systemd credentials).
fn resolve_secret(
    what: &str,
    inline: Option<&str>,
    env: Option<&Spanned<String>>,
    file: Option<&Spanned<String>>,
    src: &SourceText,
    files: &Files,
    diags: &mut Diagnostics,
) -> Secret {
    resolve_secret_named(what, "password", inline, env, file, src, files, diags)
}

/// A secret whose keys are `<key>`, `<key>_env` and `<key>_file`.
#[allow(clippy::too_many_arguments)]
fn resolve_secret_named(
    what: &str,
    key: &str,
    inline: Option<&str>,
    env: Option<&Spanned<String>>,
    file: Option<&Spanned<String>>,
    src: &SourceText,
    files: &Files,
    diags: &mut Diagnostics,
) -> Secret {
    if let Some(p) = inline {
        return Secret::Given(p.to_string());
    }
    if let Some(var) = env {
        let name = var.get_ref();
        return match std::env::var(name) {
            Ok(p) => Secret::Given(p),
            Err(_) => {
                diags.push(
                    src,
                    at(var),
                    format!("{what}: {key}_env names ${name}, which is not set"),
                    format!("export {name}=… before starting poststelle"),
                );
                Secret::Failed
            }
        };
    }
    let Some(file) = file else {
        return Secret::Missing;
    };
    let Some(path) = config_path(&format!("{what}: {key}_file"), file, src, files, diags) else {
        return Secret::Failed;
    };
    match std::fs::read_to_string(&path) {
        Ok(p) => Secret::Given(p.trim_end_matches(['\r', '\n']).to_string()),
        Err(e) => {
            let fix = match credential_name(file.get_ref()) {
                Some(name) => format!(
                    "systemd provides {name} to the service through a line \
                     LoadCredential={name}:/etc/credstore/poststelle.{name} in its unit (see \
                     systemd/poststelle.service); by hand, CREDENTIALS_DIRECTORY must name a \
                     directory holding {name}"
                ),
                None => format!("point {key}_file at a readable file holding the {key}"),
            };
            diags.push(
                src,
                at(file),
                format!("{what}: {key}_file {}: {e}", path.display()),
                fix,
            );
            Secret::Failed
        }
    }
}

/// systemd's directory of the service's `LoadCredential=` files; set only for its processes.
const CREDENTIALS_DIRECTORY: &str = "CREDENTIALS_DIRECTORY";

/// The file name after `$CREDENTIALS_DIRECTORY/` (or `${CREDENTIALS_DIRECTORY}/`) in `p`.
fn credential_name(p: &str) -> Option<&str> {
    p.strip_prefix("$CREDENTIALS_DIRECTORY/")
        .or_else(|| p.strip_prefix("${CREDENTIALS_DIRECTORY}/"))
}

/// A path from the config (`key` names it in messages): relative to the config file's
/// directory, with `$CREDENTIALS_DIRECTORY` or `${CREDENTIALS_DIRECTORY}` replaced by its
/// value. When the variable is named but not set (a command run by hand, outside the systemd
/// service) that is reported and `None` returned: the path without it would name a file
/// nobody meant.
fn config_path(
    key: &str,
    p: &Spanned<String>,
    src: &SourceText,
    files: &Files,
    diags: &mut Diagnostics,
) -> Option<std::path::PathBuf> {
    let written = p.get_ref().trim();
    let named = ["${CREDENTIALS_DIRECTORY}", "$CREDENTIALS_DIRECTORY"]
        .into_iter()
        .find(|v| written.contains(v));
    let expanded = match (named, std::env::var(CREDENTIALS_DIRECTORY)) {
        (None, _) => written.to_string(),
        (Some(var), Ok(dir)) => written.replace(var, &dir),
        (Some(_), Err(_)) => {
            let name = credential_name(written).unwrap_or("the file");
            diags.push(
                src,
                at(p),
                format!(
                    "{key} {written:?} names $CREDENTIALS_DIRECTORY, which is not set: systemd \
                     sets it for the service only, to the directory of the files its unit loads \
                     with LoadCredential= (see systemd/poststelle.service)"
                ),
                format!(
                    "to run poststelle by hand, name a directory holding {name}: \
                     CREDENTIALS_DIRECTORY=/path/to/dir poststelle --config {} check",
                    src.name
                ),
            );
            return None;
        }
    };
    Some(match files {
        Files::Disk(base) => base.join(expanded),
        Files::Embedded => expanded.into(),
    })
}

/// The offset of a value for a diagnostic; defaults carry an empty span and no line.
fn at<T>(v: &Spanned<T>) -> Option<usize> {
    let span = v.span();
    (span.end > span.start).then_some(span.start)
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}
