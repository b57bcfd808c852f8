//! Configuration: one TOML file naming the rules directory, the queues, the contact list, the
//! home state and the clearing queue. Loading validates everything the classifier will need
//! (regexes compiled, contact list read, templates parsed) and collects every problem it finds,
//! so that `poststelle check` can show them all at once.
mod diag;
mod files;

use std::collections::BTreeMap;
use std::path::Path;

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use crate::classify::nutzerkonto::{ContactList, STATE_CODES};
use crate::classify::rules::RuleSet;
pub use diag::{Diagnostic, Diagnostics, SourceText};
pub use files::Files;

/// The config file used when neither `--config` nor `$POSTSTELLE_CONFIG` names one.
pub const DEFAULT_CONFIG: &str = "poststelle.toml";

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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    name: String,
    staff: Option<Spanned<String>>,
    escalation: Option<Spanned<String>>,
    #[serde(default)]
    description: String,
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

/// A department's queue: where its tickets live and who gets copies and escalations.
#[derive(Debug, Clone)]
pub struct Queue {
    pub name: String,
    pub staff: Option<String>,
    pub escalation: Option<String>,
    pub description: String,
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
}

impl Settings {
    pub fn queue(&self, name: &str) -> Option<&Queue> {
        self.queues.iter().find(|q| q.name == name)
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
        let mut diags = Diagnostics::default();
        let src = match files.read(&name) {
            Ok(src) => src,
            Err(e) => {
                diags.0.push(e);
                return Err(diags);
            }
        };
        let raw: RawConfig = match toml::from_str(&src.text) {
            Ok(raw) => raw,
            Err(e) => {
                src.toml_error(&e, &mut diags);
                return Err(diags);
            }
        };
        let settings = validate_settings(&raw, &src, &mut diags);
        let rules = RuleSet::load(&files, &raw.rules_dir, &mut diags);
        let contacts = match &raw.contacts {
            Some(p) => ContactList::load(&files, p.get_ref(), &mut diags),
            None => ContactList::default(),
        };
        let templates = crate::templates::Templates::load(&files, &raw.templates_dir, &mut diags);
        let config = Config {
            origin: files.display(&name),
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
    }
}

fn validate_settings(raw: &RawConfig, src: &SourceText, diags: &mut Diagnostics) -> Settings {
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
        for addr in [&q.staff, &q.escalation].into_iter().flatten() {
            check_address(src, addr, diags);
        }
        queues.push(Queue {
            name,
            staff: q.staff.as_ref().map(|a| a.get_ref().trim().to_string()),
            escalation: q
                .escalation
                .as_ref()
                .map(|a| a.get_ref().trim().to_string()),
            description: q.description.clone(),
        });
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
    }
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':')
}

/// A light syntax check; the mail library validates addresses again when it sends.
pub fn is_plausible_address(addr: &str) -> bool {
    let addr = addr.trim();
    match addr.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !addr
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || "<>,;\"()[]".contains(c))
        }
        None => false,
    }
}

pub(crate) fn check_address(src: &SourceText, addr: &Spanned<String>, diags: &mut Diagnostics) {
    if !is_plausible_address(addr.get_ref()) {
        diags.push(
            src,
            Some(addr.span().start),
            format!("\"{}\" is not an e-mail address", addr.get_ref()),
            "write a plain address such as \"support@example.org\" (no name, no angle brackets)",
        );
    }
}
