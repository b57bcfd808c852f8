//! Staff answers by mail (issue 17, items 1 and 2). Every mail to staff carries a reply
//! address with its ticket's token ([`crate::reply_token`], set by the sender). A mail to
//! such an address is a staff answer only if the token is valid for that ticket, every sender
//! (From, and Sender when present) is staff of the ticket's queue and, when `reply.authserv_id`
//! is set, the receiving server's `Authentication-Results` says DMARC or SPF passed. Then it
//! is relayed to the requester: an outbound article and one mail To the requester, Cc the Cc's
//! of the ticket's first mail, from the support address, threaded under the last mail, with the
//! quoted copy and signatures stripped and the answer's attachments kept.
//!
//! Anything else addressed with a token, and any mail from staff that answers a ticket
//! without one, changes nothing: it is recorded as refused with the reason, and its sender is
//! told in one short mail ([`crate::templates::REPLY_REFUSED`]) under the loop brake. Machine
//! mail never comes here (the classifier files it as a note or ignores it).
//!
//! Commands at the top of a relayed answer (item 3, [`commands`]) change the ticket with the
//! operation of `tickets set` ([`super::ops::apply_change`]); the text after them is relayed,
//! unless it is empty or follows `#note`. A command that is unknown or cannot be carried out
//! refuses the whole answer ([`Refusal::BadCommand`], template
//! [`crate::templates::COMMAND_UNKNOWN`]).
//!
//! The answer is relayed as text. An HTML-only answer is relayed as the text mail-parser makes
//! of it: quoted history sits in nested blockquotes and client-specific divs that cannot be
//! told apart reliably, and HTML carries remote images and scripts; the text form has none of
//! that, every mail client shows it, and the same stripping applies to every answer.
use jiff::Timestamp;
use serde_json::json;

use super::State;
use super::ops::Change;
use crate::config::Config;
use crate::message::InboundMessage;
use crate::outbox::{self, Kind, NewMail};
use crate::reply_token::Verdict;
use crate::store::audit::audit;
use crate::store::buffer::WriteBuffer;
use crate::store::outbox::NewOutboundArticle;
use crate::store::relay::{RelayFacts, RelayRow};

/// Why a mail to a reply address, or a staff member's answer without one, was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// A staff member answered a ticket without the reply address.
    NoToken,
    /// The token's MAC is not that of its ticket number (tampered, or another ticket's).
    BadToken,
    /// Made with a retired key whose grace time has ended.
    ExpiredToken,
    /// A valid token of a ticket the store does not have.
    UnknownTicket,
    /// The token is valid for one ticket, but the mail answers another (by its subject's tag
    /// or its thread).
    OtherTicket,
    /// The sender (From or Sender) is not staff of the ticket's queue.
    NotStaff,
    /// `reply.authserv_id` is set and its Authentication-Results say neither DMARC nor SPF passed.
    NotAuthenticated,
    /// No reply token key is loaded.
    NoKey,
    /// A valid staff answer whose commands at the top are not all valid: nothing of it is
    /// applied or relayed.
    BadCommand,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::NoToken => "no_token",
            Refusal::BadToken => "bad_token",
            Refusal::ExpiredToken => "expired_token",
            Refusal::UnknownTicket => "unknown_ticket",
            Refusal::OtherTicket => "other_ticket",
            Refusal::NotStaff => "not_staff",
            Refusal::NotAuthenticated => "not_authenticated",
            Refusal::NoKey => "no_key",
            Refusal::BadCommand => "bad_command",
        }
    }

    /// The reason as recorded and logged.
    pub fn describe(self) -> &'static str {
        match self {
            Refusal::NoToken => {
                "a staff answer without the reply address of its ticket is not relayed"
            }
            Refusal::BadToken => "the reply address's token is not valid for its ticket",
            Refusal::ExpiredToken => {
                "the reply address's token was made with a retired key whose grace time has ended"
            }
            Refusal::UnknownTicket => "the reply address names a ticket that does not exist",
            Refusal::OtherTicket => {
                "the reply address belongs to another ticket than the one the mail answers"
            }
            Refusal::NotStaff => "the sender is not staff of the ticket's queue",
            Refusal::NotAuthenticated => {
                "the receiving server's Authentication-Results (reply.authserv_id) say neither \
                 DMARC nor SPF passed"
            }
            Refusal::NoKey => "no reply token key is loaded, so no token can be checked",
            Refusal::BadCommand => {
                "a command at the top of the answer is unknown or malformed, so nothing of it \
                 is applied or relayed"
            }
        }
    }
}

/// A token address among a mail's recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub number: String,
    pub mac: String,
}

/// The first recipient (To, Cc, Delivered-To, X-Original-To) that has the reply address's
/// shape. Delivered-To and X-Original-To count because a server may deliver a Bcc or rewrite
/// the visible recipients.
pub fn token(config: &Config, msg: &InboundMessage) -> Option<Token> {
    let pattern = &config.settings.reply.pattern;
    let envelope = ["delivered-to", "x-original-to"]
        .into_iter()
        .flat_map(|h| msg.header_all(h));
    msg.recipients()
        .map(|m| m.address.as_str())
        .chain(envelope)
        .find_map(|a| pattern.read(a))
        .map(|(number, mac)| Token { number, mac })
}

/// What filing a batch must look up for its staff answers: the tickets their reply tokens
/// name, and the senders of token mail and of mail from staff (a refused one's explanation
/// counts against the sender's loop brake).
pub struct Lookups<'m> {
    tokens: Vec<(Option<String>, &'m str)>,
}

impl<'m> Lookups<'m> {
    pub fn of(config: &Config, msgs: impl Iterator<Item = &'m InboundMessage>) -> Lookups<'m> {
        let tokens = msgs
            .filter_map(|m| {
                let from = m.from_address().unwrap_or("");
                match token(config, m) {
                    Some(t) => Some((Some(t.number), from)),
                    None => config
                        .settings
                        .is_staff_anywhere(from)
                        .then_some((None, from)),
                }
            })
            .collect();
        Lookups { tokens }
    }

    /// Ticket numbers named by reply tokens.
    pub fn numbers(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().filter_map(|(n, _)| n.as_deref())
    }

    /// Senders who may get an explanation.
    pub fn senders(&self) -> impl Iterator<Item = &'m str> + '_ {
        self.tokens.iter().map(|(_, from)| *from)
    }
}

/// The senders a staff answer is judged by: From, and Sender when present.
fn senders(msg: &InboundMessage) -> Vec<&str> {
    msg.from
        .iter()
        .chain(msg.sender.iter())
        .map(|m| m.address.as_str())
        .collect()
}

/// Judges a mail to token address `token`: `queue` is the queue of the ticket its number
/// names, `None` when there is no such ticket; `answers_other` says that the mail's tag or
/// thread names another ticket (a token carried over from another ticket's copy answers
/// neither).
pub fn judge(
    config: &Config,
    msg: &InboundMessage,
    token: &Token,
    queue: Option<&str>,
    answers_other: bool,
    now: Timestamp,
) -> Result<(), Refusal> {
    let reply = &config.settings.reply;
    let keys = reply.keys.as_ref().ok_or(Refusal::NoKey)?;
    match keys.verify(&token.number, &token.mac, now) {
        Verdict::Valid | Verdict::ValidRetiredKey => {}
        Verdict::Expired => return Err(Refusal::ExpiredToken),
        Verdict::Invalid => return Err(Refusal::BadToken),
    }
    let queue = queue
        .and_then(|q| config.settings.queue(q))
        .ok_or(Refusal::UnknownTicket)?;
    if answers_other {
        return Err(Refusal::OtherTicket);
    }
    let senders = senders(msg);
    if senders.is_empty() || !senders.iter().all(|s| queue.is_staff(s)) {
        return Err(Refusal::NotStaff);
    }
    if let Some(id) = &reply.authserv_id
        && !authenticated(msg, id)
    {
        return Err(Refusal::NotAuthenticated);
    }
    Ok(())
}

/// Whether a mail without a token is a staff answer to refuse: its sender is staff of some
/// queue, it answers a ticket (`refers`), and the sender is not one of the ticket's own
/// participants (a colleague who reported a fault writes on it as a requester).
pub fn refuse_without_token(
    config: &Config,
    msg: &InboundMessage,
    refers: bool,
    participant: bool,
) -> bool {
    refers
        && !participant
        && msg
            .from_address()
            .is_some_and(|a| config.settings.is_staff_anywhere(a))
}

/// Whether the topmost `Authentication-Results` of `authserv_id` (RFC 8601) says `dmarc=pass`
/// or `spf=pass`. Fields of other servers are ignored: anybody can write one; the receiving
/// server removes fields that claim its own id from incoming mail (RFC 8601 5).
pub fn authenticated(msg: &InboundMessage, authserv_id: &str) -> bool {
    msg.header_all("authentication-results")
        .map(uncomment)
        .find(|v| {
            v.split(';')
                .next()
                .and_then(|id| id.split_whitespace().next())
                .is_some_and(|id| id.eq_ignore_ascii_case(authserv_id))
        })
        .is_some_and(|v| {
            v.split(';').skip(1).any(|resinfo| {
                let Some((method, result)) = resinfo
                    .split_whitespace()
                    .next()
                    .and_then(|mr| mr.split_once('='))
                else {
                    return false;
                };
                let method = method.split('/').next().unwrap_or("");
                (method.eq_ignore_ascii_case("dmarc") || method.eq_ignore_ascii_case("spf"))
                    && result.eq_ignore_ascii_case("pass")
            })
        })
}

/// A header value without its comments (`(…)`, nested, with `\` escapes) and quoted strings
/// kept as they are, so that `;` or `=` inside either cannot be taken for structure.
fn uncomment(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for c in v.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' if depth == 0 => {
                quoted = !quoted;
                // A quoted string is one value: its ';' must not split resinfo.
                out.push('_');
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth > 0 => {}
            ';' if quoted => out.push('_'),
            _ => out.push(c),
        }
    }
    out
}

/// A command at the top of a staff answer (issue 17, item 3). Each is what one option of
/// `tickets set` does; [`to_change`] makes them the same [`Change`](super::ops::Change).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `#status open|pending|resolved|closed`, German `offen`, `wartend`, `erledigt`/`gelöst`,
    /// `geschlossen` ([`STATUS_WORDS`]).
    Status(State),
    /// `#class 1..4`, `#klasse`.
    Class(u8),
    /// `#queue NAME`.
    Queue(String),
    /// `#level 1|2|3`, `#stufe`.
    Level(u8),
    /// `#assign ADDRESS`, `#zuweisen`.
    Assign(String),
    /// `#pending until TIME`, `#wartend bis ZEIT`.
    PendingUntil(Timestamp),
    /// `#note`, `#notiz`: the rest of the mail is an internal note, not relayed.
    Note,
    /// `#contact [SERVICE]`, `#ansprechperson [LEISTUNG]`: with a `#queue` from the clearing
    /// queue to a Ressort, the requester is told the contact person of the service
    /// ([`super::handover`]).
    Contact(Option<String>),
}

/// The words `#status` takes, case-insensitive, and the state each means. A resolved ticket
/// asks its requester to answer if the problem persists; that answer, within
/// `ingest.reopen_days`, opens it again (as it does a closed one).
pub const STATUS_WORDS: [(&str, State); 11] = [
    ("open", State::Open),
    ("offen", State::Open),
    ("in-bearbeitung", State::Open),
    ("pending", State::Pending),
    ("wartend", State::Pending),
    ("resolved", State::Resolved),
    ("erledigt", State::Resolved),
    ("gelöst", State::Resolved),
    ("geloest", State::Resolved),
    ("closed", State::Closed),
    ("geschlossen", State::Closed),
];

/// A line at the top of an answer that starts with `#` but is no valid command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadCommand {
    pub line: String,
    pub why: String,
}

impl BadCommand {
    fn new(line: &str, why: impl Into<String>) -> BadCommand {
        BadCommand {
            line: line.chars().take(200).collect(),
            why: why.into(),
        }
    }
}

/// The commands at the top of an answer (lines starting with `#`, before any other text;
/// blank lines between them are allowed) and the text that remains: to relay, or after
/// `#note` the note. Any line there that is no valid command refuses the whole answer.
pub fn commands(text: &str) -> Result<(Vec<Command>, String), BadCommand> {
    let mut found = Vec::new();
    let mut lines = text.lines().peekable();
    let mut note_head = None;
    while let Some(line) = lines.peek() {
        let t = line.trim();
        if t.is_empty() {
            lines.next();
            continue;
        }
        let Some(body) = t.strip_prefix('#') else {
            break;
        };
        lines.next();
        let mut words = body.split_whitespace();
        let word = words
            .next()
            .unwrap_or("")
            .trim_end_matches(':')
            .to_lowercase();
        let args: Vec<&str> = words.collect();
        let arg = args.join(" ");
        let one = |what: &str| -> Result<&str, BadCommand> {
            match args.as_slice() {
                [a] => Ok(a),
                _ => Err(BadCommand::new(t, format!("#{word} takes one {what}"))),
            }
        };
        found.push(match word.as_str() {
            "status" => {
                let w = one("state")?.to_lowercase();
                STATUS_WORDS
                    .iter()
                    .find(|(s, _)| *s == w)
                    .map(|(_, st)| Command::Status(*st))
                    .ok_or_else(|| BadCommand::new(t, format!("\"{w}\" is no state")))?
            }
            "class" | "klasse" => match one("class")?.parse::<u8>() {
                Ok(n) if (1..=4).contains(&n) => Command::Class(n),
                _ => return Err(BadCommand::new(t, "the class is 1, 2, 3 or 4")),
            },
            "queue" => Command::Queue(one("queue name")?.to_string()),
            "level" | "stufe" => match one("level")?.parse::<u8>() {
                Ok(n) if (1..=3).contains(&n) => Command::Level(n),
                _ => return Err(BadCommand::new(t, "the level is 1, 2 or 3")),
            },
            "assign" | "zuweisen" => {
                let a = one("address")?.trim_matches(['<', '>']);
                if !crate::diag::is_plausible_address(a) {
                    return Err(BadCommand::new(t, format!("\"{a}\" is no mail address")));
                }
                Command::Assign(a.to_string())
            }
            "pending" | "wartend" => match args.split_first() {
                None => Command::Status(State::Pending),
                Some((until, when))
                    if ["until", "bis"].contains(&until.to_lowercase().as_str())
                        && !when.is_empty() =>
                {
                    Command::PendingUntil(
                        crate::time::parse_for_people(&when.join(" "))
                            .map_err(|e| BadCommand::new(t, e))?,
                    )
                }
                Some(_) => {
                    return Err(BadCommand::new(
                        t,
                        format!(
                            "write #{word} {} followed by a date",
                            if word == "pending" { "until" } else { "bis" }
                        ),
                    ));
                }
            },
            "contact" | "ansprechperson" | "ansprechpartner" => {
                Command::Contact(Some(arg.clone()).filter(|a| !a.is_empty()))
            }
            "note" | "notiz" => {
                note_head = Some(arg);
                Command::Note
            }
            _ => return Err(BadCommand::new(t, format!("#{word} is no command"))),
        });
        if note_head.is_some() {
            break;
        }
    }
    let rest: Vec<&str> = lines.collect();
    let mut rest = rest.join("\n").trim().to_string();
    if let Some(head) = note_head.filter(|h| !h.is_empty()) {
        rest = if rest.is_empty() {
            head
        } else {
            format!("{head}\n{rest}")
        };
    }
    Ok((found, rest))
}

/// The change that `commands` ask for, by `actor`; `rest` is the note after `#note`. A later
/// command of the same kind wins.
pub fn to_change<'a>(commands: &'a [Command], rest: &'a str, actor: &'a str) -> Change<'a> {
    let mut c = Change {
        actor,
        ..Change::default()
    };
    for cmd in commands {
        match cmd {
            Command::Status(s) => c.state = Some(*s),
            Command::Class(n) => c.severity = Some(*n),
            Command::Queue(q) => c.queue = Some(q),
            Command::Level(n) => c.level = Some(*n),
            Command::Assign(a) => c.assignee = Some(a),
            Command::PendingUntil(t) => c.pending_until = Some(*t),
            Command::Note => c.note = Some(rest),
            Command::Contact(service) => {
                c.contact_reply = true;
                c.service = service.as_deref();
            }
        }
    }
    c
}

/// Whether an answer with these commands, remaining text and number of attachments is
/// relayed: never after `#note`; not when nothing remains (an answer of commands only, or an
/// empty one: the requester would get a mail without content); an attachment alone is content.
pub fn relays(commands: &[Command], rest: &str, attachments: usize) -> bool {
    !commands.contains(&Command::Note) && (!rest.trim().is_empty() || attachments > 0)
}

/// The answer without what it quotes: quote lines (`>`), everything from an attribution line
/// ("Am … schrieb …:", "On … wrote:"), from Outlook's "-----Ursprüngliche Nachricht-----" or
/// "-----Original Message-----" or its header block ("Von:"/"From:" followed by
/// "Gesendet:"/"Sent:"), and from a signature delimiter (`-- `, also `--` as our templates and
/// some clients write it): the staff member's own signature names their address, which the
/// requester must not see.
pub fn strip_quoted(body: &str) -> String {
    let lines: Vec<&str> = body.lines().collect();
    let mut kept: Vec<&str> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim_end();
        let next = lines.get(i + 1).map_or("", |l| l.trim());
        if t == "--" {
            break;
        }
        let lower = t.trim().to_lowercase();
        if lower.starts_with("-----ursprüngliche nachricht")
            || lower.starts_with("-----original message")
            || lower.starts_with("________________________________")
                && is_header_block(&lines[i + 1..])
            || is_header_block(&lines[i..])
            || is_attribution(t.trim(), next)
        {
            break;
        }
        if t.trim_start().starts_with('>') {
            continue;
        }
        kept.push(line.trim_end());
    }
    while kept.last().is_some_and(|l| l.trim().is_empty()) {
        kept.pop();
    }
    while kept.first().is_some_and(|l| l.trim().is_empty()) {
        kept.remove(0);
    }
    kept.join("\n")
}

/// "Am 4. Dez. 2026 um 10:00 schrieb X <a@b>:" or "On Fri, Dec 4, 2026 at 10:00 X wrote:",
/// also when the client broke it after the name.
fn is_attribution(line: &str, next: &str) -> bool {
    let joined = format!("{line} {next}");
    let ends = |s: &str, word: &str| {
        s.trim_end().ends_with(':') && s.contains(word) && s.trim_end().len() < 300
    };
    (line.starts_with("Am ") && (ends(line, " schrieb") || ends(&joined, " schrieb")))
        || (line.starts_with("On ") && (ends(line, " wrote") || ends(&joined, " wrote")))
}

/// Outlook's header block of the quoted mail: "Von:"/"From:" and, within the next lines,
/// "Gesendet:"/"Sent:".
fn is_header_block(lines: &[&str]) -> bool {
    let Some(first) = lines.first().map(|l| l.trim_start().to_lowercase()) else {
        return false;
    };
    (first.starts_with("von:") || first.starts_with("from:"))
        && lines.iter().skip(1).take(3).any(|l| {
            let l = l.trim_start().to_lowercase();
            l.starts_with("gesendet:") || l.starts_with("sent:") || l.starts_with("datum:")
        })
}

/// The text of an answer to relay: its text/plain part as filed, or for an HTML-only answer
/// the text of its HTML up to where the quoted mail begins (a blockquote, or the quote markers
/// of Gmail, Thunderbird, Outlook and Yahoo), with block ends as line ends, so that the
/// attribution line and signature can be found like in a text answer. Scripts, styles, images
/// and links' targets are never part of it.
pub fn answer_text(raw: &[u8], msg: &InboundMessage) -> String {
    let Some(parsed) = mail_parser::MessageParser::default().parse(raw) else {
        return msg.body.clone();
    };
    let is = |i: &u32, html: bool| {
        parsed
            .parts
            .get(*i as usize)
            .is_some_and(|p| match &p.body {
                mail_parser::PartType::Html(_) => html,
                mail_parser::PartType::Text(_) => !html,
                _ => false,
            })
    };
    if parsed.text_body.iter().any(|i| is(i, false)) {
        return msg.body.clone();
    }
    match parsed.html_body.iter().find(|i| is(i, true)) {
        Some(_) => parsed
            .body_html(0)
            .map_or_else(|| msg.body.clone(), |h| html_answer(&h)),
        None => msg.body.clone(),
    }
}

/// Where quoted mail begins in the HTML of common mail clients.
const HTML_QUOTE_MARKERS: [&str; 6] = [
    "<blockquote",
    "class=\"gmail_quote",
    "class=\"moz-cite-prefix",
    "id=\"divrplyfwdmsg",
    "id=\"appendonsend",
    "class=\"yahoo_quoted",
];

static BLOCK_END: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(?i)</(div|li|tr|h[1-6]|table|ul|ol)\s*>|<hr[^>]*>")
        .unwrap_or_else(|e| unreachable!("a valid pattern: {e}"))
});

/// [`answer_text`] of an HTML body.
fn html_answer(html: &str) -> String {
    // ASCII lower-casing keeps every byte offset.
    let lower = html.to_ascii_lowercase();
    let cut = HTML_QUOTE_MARKERS
        .iter()
        .filter_map(|m| lower.find(m))
        .min()
        .map(|i| lower[..=i].rfind('<').unwrap_or(i));
    let html = cut.map_or(html, |i| &html[..i]);
    let with_breaks = BLOCK_END.replace_all(html, "$0<br>");
    mail_parser::decoders::html::html_to_text(&with_breaks)
}

/// The relayed mail's subject: the ticket's tag and subject, as the acknowledgement has them.
/// The staff member's own subject is not used: it is the staff copy's, which names the queue
/// and class, and it is text of the staff member's mail client that the requester's thread
/// does not need. Control characters are dropped all the same.
pub fn subject(config: &Config, number: &str, ticket_subject: &str) -> String {
    let clean: String = ticket_subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let clean = clean.split_whitespace().collect::<Vec<_>>().join(" ");
    format!("Re: [{}#{number}] {clean}", config.settings.ticket_tag)
}

/// What filing a relayed answer wrote.
#[derive(Debug, Clone)]
pub struct Relayed {
    pub message_id: String,
    pub to: String,
    pub cc: Vec<String>,
}

/// A ticket a staff answer is relayed on.
pub struct OnTicket<'a> {
    pub id: i64,
    pub number: &'a str,
    pub subject: &'a str,
}

/// Writes a relayed answer: the outbox row to the requester (Cc the first mail's Cc's), the
/// outbound article with the answer's attachments listed, and its audit line. `article_id` is
/// a reserved id; `text` is the answer after its commands ([`commands`]).
#[allow(clippy::too_many_arguments)]
pub fn relay(
    buf: &mut WriteBuffer,
    config: &Config,
    now: Timestamp,
    article_id: i64,
    ticket: OnTicket<'_>,
    raw_id: i64,
    msg: &InboundMessage,
    text: String,
    facts: &RelayFacts,
) -> Relayed {
    let s = &config.settings;
    let at = now.as_microsecond();
    let message_id = format!("{}@{}", uuid::Uuid::now_v7(), s.outbox.message_id_domain);
    let subject = subject(config, ticket.number, ticket.subject);
    let to = facts.requester.clone();
    let cc: Vec<String> = facts
        .cc
        .iter()
        .filter(|a| !a.eq_ignore_ascii_case(&to) && !s.is_staff_anywhere(a))
        .filter(|a| crate::diag::is_plausible_address(a))
        .cloned()
        .collect();
    let refs: Vec<&str> = facts
        .first_mail
        .iter()
        .chain(facts.last_mail.iter())
        .map(String::as_str)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    buf.relay_outbox(RelayRow {
        ticket_id: ticket.id,
        recipient: to.clone(),
        cc: cc.clone(),
        message_id: message_id.clone(),
        in_reply_to: facts.last_mail.clone(),
        refs: (!refs.is_empty()).then(|| refs.join(" ")),
        subject: subject.clone(),
        body_text: text.clone(),
        raw_message_id: raw_id,
        at,
    });
    buf.outbound_article(NewOutboundArticle {
        id: Some(article_id),
        ticket_id: ticket.id,
        message_id: message_id.clone(),
        sender: s.outbox.from.clone(),
        subject,
        body: text,
        at,
    });
    for a in &msg.attachments {
        buf.attachment(
            article_id,
            a.name.as_deref(),
            &a.content_type,
            a.size as i64,
        );
    }
    let by = msg.from_address().unwrap_or("");
    audit(
        buf,
        at,
        Some(ticket.id),
        Some(raw_id),
        by,
        "staff_answer_relayed",
        &json!({ "by": by, "to": to, "cc": cc, "message_id": message_id,
                 "answer_message_id": msg.message_id, "attachments": msg.attachments.len() }),
    );
    tracing::info!(
        ticket = ticket.number,
        message_id = msg.message_id.as_deref().unwrap_or(""),
        relayed_as = %message_id,
        "staff answer relayed"
    );
    Relayed { message_id, to, cc }
}

/// Records a refused mail (its audit line; the raw row is the caller's) and queues the one
/// short explanation to its sender, unless the sender is ours, not an address, or the loop
/// brake holds it back. `stored_auto_replies` counts the automatic replies to the sender
/// within the hour, for the loop brake.
#[allow(clippy::too_many_arguments)]
pub fn refuse(
    buf: &mut WriteBuffer,
    config: &Config,
    now: Timestamp,
    raw_id: i64,
    msg: &InboundMessage,
    why: Refusal,
    command: Option<&BadCommand>,
    ticket: Option<(i64, &str)>,
    stored_auto_replies: i64,
) {
    let at = now.as_microsecond();
    let sender = msg.from_address().unwrap_or("").to_string();
    let number = ticket.map(|(_, n)| n);
    tracing::warn!(
        message_id = msg.message_id.as_deref().unwrap_or(""),
        ticket = number.unwrap_or(""),
        sender,
        why = why.code(),
        command = command.map_or("", |c| c.line.as_str()),
        problem = command.map_or("", |c| c.why.as_str()),
        "staff answer refused: {}",
        why.describe()
    );
    let ours = sender.eq_ignore_ascii_case(&config.settings.outbox.from)
        || config.settings.reply.pattern.read(&sender).is_some();
    let explain = !sender.is_empty() && !ours && crate::diag::is_plausible_address(&sender);
    let mut detail = json!({
        "why": why.code(), "reason": why.describe(), "sender": sender,
        "message_id": msg.message_id, "ticket": number, "explained": explain,
    });
    if let Some(c) = command {
        detail["command"] = json!(c.line);
        detail["problem"] = json!(c.why);
    }
    if explain {
        let context = json!({
            "why": why.code(),
            "reason": why.describe(),
            "ticket_tag": config.settings.ticket_tag,
            "number": number,
            "subject": msg.subject,
            "sender_name": config.settings.outbox.from_name,
            "command": command.map(|c| &c.line),
            "problem": command.map(|c| &c.why),
            "states": STATUS_WORDS.iter().map(|(w, _)| *w).collect::<Vec<_>>(),
        });
        let id = outbox::enqueue_buffered(
            buf,
            config,
            now,
            NewMail {
                ticket_id: None,
                kind: Kind::AutoReply,
                template: if command.is_some() {
                    crate::templates::COMMAND_UNKNOWN
                } else {
                    crate::templates::REPLY_REFUSED
                },
                recipient: &sender,
                in_reply_to: msg.message_id.as_deref(),
                references: msg.message_id.iter().cloned().collect(),
                context: &context,
                attach_raw: None,
            },
            stored_auto_replies,
            &mut std::iter::empty(),
        );
        detail["explanation_message_id"] = json!(id);
    }
    audit(
        buf,
        at,
        ticket.map(|(id, _)| id),
        Some(raw_id),
        "poststelle",
        "staff_answer_refused",
        &detail,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_at_the_top_in_english_and_german() {
        let (c, rest) =
            commands("\n#status resolved\n#Klasse 2\n\n#queue betrieb\nDone.\n#status open")
                .expect("valid");
        assert_eq!(
            c,
            vec![
                Command::Status(State::Resolved),
                Command::Class(2),
                Command::Queue("betrieb".into())
            ]
        );
        // Only the top counts: a later `#` line is text.
        assert_eq!(rest, "Done.\n#status open");
        for (word, state) in STATUS_WORDS {
            let (c, _) = commands(&format!("#STATUS {}", word.to_uppercase())).expect(word);
            assert_eq!(c, vec![Command::Status(state)], "{word}");
        }
        let (c, rest) =
            commands("#stufe 2\n#zuweisen <a@b.example>\n#notiz Anruf\nmorgen").expect("valid");
        assert_eq!(
            c,
            vec![
                Command::Level(2),
                Command::Assign("a@b.example".into()),
                Command::Note
            ]
        );
        assert_eq!(rest, "Anruf\nmorgen");
        assert!(!relays(&c, &rest, 0));
        let (c, rest) = commands("#wartend bis 16.12.2026 19:00").expect("valid");
        assert_eq!(
            c,
            vec![Command::PendingUntil(
                "2026-12-16T18:00:00Z".parse().expect("ts")
            )]
        );
        assert!(!relays(&c, &rest, 0), "commands only");
        assert!(relays(&[], "", 1), "an attachment alone is relayed");
        assert!(!relays(&[], " ", 0), "an empty answer is not");
        for bad in [
            "#prio 1",
            "#klasse 5",
            "#level 4",
            "#status",
            "#assign x",
            "#pending soon",
            "#queue a b",
            "#",
        ] {
            let e = commands(&format!("{bad}\nText")).expect_err(bad);
            assert_eq!(e.line, bad.trim());
        }
        assert_eq!(commands("Guten Tag\n#status open").expect("text").0, vec![]);
    }

    #[test]
    fn quotes_attributions_and_signatures_are_stripped() {
        let body = "Guten Tag,\n\nder Drucker ist repariert.\n\n> alte Zeile\n\nGruß\n\
                    -- \nJan Berger\njan.berger@kommunal-it.example\n";
        assert_eq!(
            strip_quoted(body),
            "Guten Tag,\n\nder Drucker ist repariert.\n\n\nGruß"
        );
        let de = "Erledigt.\n\nAm Fr., 4. Dez. 2026 um 10:00 schrieb Kommunal-IT Support <\n\
                  support@kommunal-it.example>:\n> Neuer Vorgang\n";
        assert_eq!(strip_quoted(de), "Erledigt.");
        let en = "Done.\nOn Fri, Dec 4, 2026 at 10:00 AM Support <s@x.example> wrote:\n> x\n";
        assert_eq!(strip_quoted(en), "Done.");
        let outlook = "Bitte neu starten.\n\n-----Ursprüngliche Nachricht-----\nVon: Support\n";
        assert_eq!(strip_quoted(outlook), "Bitte neu starten.");
        let block =
            "Bitte neu starten.\n\nVon: Support <s@x.example>\nGesendet: Freitag\nAn: jan\n";
        assert_eq!(strip_quoted(block), "Bitte neu starten.");
        let ours = "Antwort.\n\n--\nDie Originalnachricht hängt an.";
        assert_eq!(strip_quoted(ours), "Antwort.");
        // A line that only mentions "From:" in text stays.
        assert_eq!(
            strip_quoted("From: the log it is clear.\nFine."),
            "From: the log it is clear.\nFine."
        );
    }

    #[test]
    fn an_html_answer_is_its_text_without_the_quote() {
        let raw =
            b"From: a@b.example\r\nSubject: x\r\nContent-Type: text/html; charset=utf-8\r\n\r\n\
            <html><head><style>p{color:red}</style><script>alert(1)</script></head><body>\
            <div onclick=\"steal()\">Der Drucker ist <b>repariert</b>.</div><div>Gru&szlig;</div>\
            <img src=\"https://tracker.example/p.gif\"><a href=\"javascript:steal()\">hier</a>\
            <div class=\"gmail_quote\">Am Mi., 25. Nov. 2026 schrieb S &lt;s@x.example&gt;:\
            <blockquote>Neuer Vorgang</blockquote></div></body></html>\r\n";
        let msg = InboundMessage::parse(raw).expect("parse");
        let text = strip_quoted(&answer_text(raw, &msg));
        assert_eq!(text, "Der Drucker ist repariert.\nGruß\nhier");
        // A text part, when there is one, is the answer.
        let alt = b"From: a@b.example\r\nSubject: x\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n\
            --b\r\nContent-Type: text/plain\r\n\r\nPlain.\r\n--b\r\nContent-Type: text/html\r\n\r\n<p>Html</p>\r\n--b--\r\n";
        let msg = InboundMessage::parse(alt).expect("parse");
        assert_eq!(answer_text(alt, &msg).trim(), "Plain.");
    }

    #[test]
    fn authentication_results_of_our_server_only() {
        let mail = |fields: &str| {
            InboundMessage::parse(
                format!("{fields}From: a@b.example\r\nSubject: x\r\n\r\nbody\r\n").as_bytes(),
            )
            .expect("parse")
        };
        let ok = mail(
            "Authentication-Results: mx.kommunal-it.example; dkim=pass; dmarc=pass (p=reject) header.from=b.example\r\n",
        );
        assert!(authenticated(&ok, "mx.kommunal-it.example"));
        let spf = mail(
            "Authentication-Results: mx.kommunal-it.example 1; spf=pass smtp.mailfrom=b.example\r\n",
        );
        assert!(authenticated(&spf, "mx.kommunal-it.example"));
        let failed = mail(
            "Authentication-Results: mx.kommunal-it.example; dmarc=fail (\"dmarc=pass;\") header.from=b.example\r\n",
        );
        assert!(!authenticated(&failed, "mx.kommunal-it.example"));
        // Another server's (or the sender's own) field says nothing.
        let forged = mail(
            "Authentication-Results: mx.kommunal-it.example; dmarc=fail\r\n\
             Authentication-Results: evil.example; dmarc=pass\r\n",
        );
        assert!(!authenticated(&forged, "mx.kommunal-it.example"));
        let comment = mail(
            "Authentication-Results: mx.kommunal-it.example; dmarc=none (spf=pass; dmarc=pass)\r\n",
        );
        assert!(!authenticated(&comment, "mx.kommunal-it.example"));
        assert!(!authenticated(&mail(""), "mx.kommunal-it.example"));
    }
}
