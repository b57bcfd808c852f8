//! Mail templates (minijinja): `templates/<lang>/<name>.txt` holds a `subject` and a `body`
//! block; an optional `<name>.html` next to it gives the HTML alternative. German is the
//! default language, English the variant.
use std::collections::BTreeSet;

use minijinja::Environment;

use crate::diag::Diagnostics;
use crate::files::Files;

/// The routed copy of a ticket's mail for the queue's staff.
pub const STAFF_COPY: &str = "kopie-an-team";
/// The copy for the staff of the queue a ticket is handed to, with the ticket's history.
pub const HANDOVER: &str = "uebergabe";
/// A mail forwarded by a rule or to another state's Nutzerkonto office.
pub const FORWARD: &str = "weiterleitung";
/// The notice to the next support level at `sla.warn_at_percent` of the reaction budget.
pub const SLA_WARNING: &str = "sla-vorwarnung";
/// The notice to the next support level when the reaction deadline has passed.
pub const SLA_BREACH: &str = "sla-fristverletzung";
/// The alarm to a queue's on-call duty about a class-1 ticket outside service hours.
pub const ON_CALL: &str = "rufbereitschaft";
/// The short explanation to the sender of a mail to a reply address (or a staff answer
/// without one) that was not relayed.
pub const REPLY_REFUSED: &str = "antwort-abgelehnt";
/// To a staff member whose answer had an unknown or malformed command: the valid ones.
pub const COMMAND_UNKNOWN: &str = "befehl-unbekannt";

/// Maintenance notices (issue 16): announced, changed, cancelled, reminder, started, done.
pub const MAINTENANCE_SCHEDULED: &str = "wartung-angekuendigt";
pub const MAINTENANCE_CHANGED: &str = "wartung-geaendert";
pub const MAINTENANCE_CANCELLED: &str = "wartung-abgesagt";
pub const MAINTENANCE_REMINDER: &str = "wartung-erinnerung";
pub const MAINTENANCE_STARTED: &str = "wartung-beginn";
pub const MAINTENANCE_DONE: &str = "wartung-beendet";

/// Incident notices (issue 16) to the lists: the Störung, each update, its resolution.
pub const INCIDENT_OPENED: &str = "stoerung-gemeldet";
pub const INCIDENT_UPDATE: &str = "stoerung-aktualisiert";
pub const INCIDENT_RESOLVED: &str = "stoerung-behoben";
/// The same for the requester of a ticket linked to the incident, on that ticket.
pub const INCIDENT_TICKET_UPDATE: &str = "stoerung-vorgang-aktualisiert";
pub const INCIDENT_TICKET_RESOLVED: &str = "stoerung-vorgang-behoben";

/// Status notices (issue 17, item 4) to a ticket's requester and its queue's observers: the
/// ticket is taken ("wird bearbeitet", the SLA's reaction), its state, class or level changed,
/// it is resolved (answer if the problem persists), the periodic update of an open class-1 or
/// class-2 ticket with the latest public answer.
pub const STATUS_TAKEN: &str = "vorgang-in-bearbeitung";
pub const STATUS_CHANGED: &str = "vorgang-status";
pub const STATUS_RESOLVED: &str = "vorgang-geloest";
pub const STATUS_UPDATE: &str = "vorgang-zwischenstand";
/// To staff when a pending ticket's `pending until` has come.
pub const PENDING_REMINDER: &str = "erinnerung-wiedervorlage";

/// Monitoring alerts (issue 19): to the queue's staff when a key starts flapping (its
/// per-change mails stop) and when it is stable again.
pub const ALERT_FLAPPING: &str = "alarm-flattert";
pub const ALERT_STABLE: &str = "alarm-stabil";
/// To the queue's escalation address, once, when recurring incidents make a problem.
pub const PROBLEM_FOUND: &str = "problem-erkannt";

/// Templates poststelle uses on its own, whatever the rules say: `check` requires them.
pub const BUILT_IN: [&str; 27] = [
    STAFF_COPY,
    HANDOVER,
    REPLY_REFUSED,
    COMMAND_UNKNOWN,
    FORWARD,
    SLA_WARNING,
    SLA_BREACH,
    ON_CALL,
    MAINTENANCE_SCHEDULED,
    MAINTENANCE_CHANGED,
    MAINTENANCE_CANCELLED,
    MAINTENANCE_REMINDER,
    MAINTENANCE_STARTED,
    MAINTENANCE_DONE,
    INCIDENT_OPENED,
    INCIDENT_UPDATE,
    INCIDENT_RESOLVED,
    INCIDENT_TICKET_UPDATE,
    INCIDENT_TICKET_RESOLVED,
    STATUS_TAKEN,
    STATUS_CHANGED,
    STATUS_RESOLVED,
    STATUS_UPDATE,
    PENDING_REMINDER,
    ALERT_FLAPPING,
    ALERT_STABLE,
    PROBLEM_FOUND,
];

/// The loaded and syntax-checked templates.
#[derive(Debug)]
pub struct Templates {
    /// The directory they came from, for messages.
    pub dir: String,
    env: Environment<'static>,
    /// (language, name) of every `.txt` template.
    available: BTreeSet<(String, String)>,
}

/// The start of each block a text template must have. Compiled once: compiling them for every
/// template file was two thirds of loading a configuration (found while fuzzing the loader).
static BLOCK_STARTS: std::sync::LazyLock<[(&str, regex::Regex); 2]> =
    std::sync::LazyLock::new(|| {
        ["subject", "body"].map(|b| {
            let start = regex::Regex::new(&format!(r"\{{%-?\s*block\s+{b}\s*-?%\}}"))
                .expect("a valid regex");
            (b, start)
        })
    });

impl Templates {
    pub fn load(files: &Files, dir: &str, diags: &mut Diagnostics) -> Templates {
        let mut env = Environment::new();
        // HTML templates escape every value; text templates must not.
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                minijinja::AutoEscape::Html
            } else {
                minijinja::AutoEscape::None
            }
        });
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        let mut available = BTreeSet::new();
        for path in files.list_recursive(dir, &[".txt", ".html"]) {
            let rel = path
                .strip_prefix(dir.trim_end_matches('/'))
                .unwrap_or(&path)
                .trim_start_matches('/')
                .to_string();
            let Some((lang, file)) = rel.split_once('/') else {
                continue;
            };
            let src = match files.read(&path) {
                Ok(s) => s,
                Err(d) => {
                    diags.0.push(d);
                    continue;
                }
            };
            if file.ends_with(".txt") {
                for (block, start) in BLOCK_STARTS.iter() {
                    if !start.is_match(&src.text) {
                        diags.push(
                            &src,
                            None,
                            format!("the template has no `{block}` block"),
                            format!("wrap the {block} in {{% block {block} %}}…{{% endblock %}}"),
                        );
                    }
                }
                available.insert((lang.to_string(), file.trim_end_matches(".txt").to_string()));
            }
            if let Err(e) = env.add_template_owned(rel.clone(), src.text.clone()) {
                diags.0.push(crate::diag::Diagnostic {
                    file: src.name.clone(),
                    line: e.line(),
                    message: format!("template syntax error: {}", e.detail().unwrap_or("")),
                    fix: "correct the template (syntax: https://docs.rs/minijinja/latest/minijinja/syntax/)"
                        .into(),
                });
            }
        }
        Templates {
            dir: dir.to_string(),
            env,
            available,
        }
    }

    pub fn has(&self, name: &str, lang: &str) -> bool {
        self.available
            .contains(&(lang.to_string(), name.to_string()))
    }

    /// Every template name, whatever its languages.
    pub fn names(&self) -> Vec<String> {
        let set: BTreeSet<&str> = self.available.iter().map(|(_, n)| n.as_str()).collect();
        set.into_iter().map(str::to_string).collect()
    }

    pub fn count(&self) -> usize {
        self.available.len()
    }

    pub fn env(&self) -> &Environment<'static> {
        &self.env
    }

    /// Renders a template in `lang` (German when it has no such variant): its subject and
    /// text body, and the HTML body when a `.html` variant exists.
    pub fn render(
        &self,
        name: &str,
        lang: &str,
        ctx: &serde_json::Value,
    ) -> Result<Rendered, minijinja::Error> {
        let lang = if self.has(name, lang) { lang } else { "de" };
        let ctx = minijinja::Value::from(minijinja::value::Serde(ctx));
        let text = self.env.get_template(&format!("{lang}/{name}.txt"))?;
        let mut captured = text.render_captured(ctx.clone())?;
        let subject = captured.with_state_mut(|st| st.render_block("subject"))?;
        let body = captured.with_state_mut(|st| st.render_block("body"))?;
        // A subject is one line, whatever the data put in it.
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        let body = body.trim().to_string() + "\n";
        let html = match self.env.get_template(&format!("{lang}/{name}.html")) {
            Ok(t) => Some(t.render(ctx)?),
            Err(e) if e.kind() == minijinja::ErrorKind::TemplateNotFound => None,
            Err(e) => return Err(e),
        };
        Ok(Rendered {
            subject,
            text: body,
            html,
        })
    }
}

/// A rendered mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::Templates;
    use crate::diag::Diagnostics;
    use crate::files::Files;

    /// The HTML part escapes what a sender or an operator typed; the text part keeps it as it is.
    #[test]
    fn notices_have_an_escaped_html_part() {
        let mut diags = Diagnostics::default();
        let t = Templates::load(&Files::Embedded, "templates", &mut diags);
        assert!(diags.0.is_empty(), "{diags:?}");
        let ctx = serde_json::json!({
            "sender_name": "IT-Servicedesk",
            "maintenance": {
                "id": 1, "platform": "zidkor", "platform_description": "",
                "start_local": "Mittwoch, 16.12.2026, 19:00 Uhr",
                "end_local": "Mittwoch, 16.12.2026, 23:00 Uhr", "duration": "4 Stunden",
                "reason": "<script>alert(1)</script> & Co.", "impact": "keine",
                "emergency": true, "sequence": 0, "state": "scheduled",
            },
            "previous": null,
        });
        for lang in ["de", "en"] {
            let r = t
                .render(super::MAINTENANCE_SCHEDULED, lang, &ctx)
                .expect("renders");
            let html = r.html.expect("an HTML part");
            assert!(
                html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; &amp; Co."),
                "{html}"
            );
            assert!(!html.contains("<script>"), "{html}");
            assert!(html.contains(&format!("<html lang=\"{lang}\">")), "{html}");
            assert!(
                r.text.contains("<script>alert(1)</script> & Co."),
                "{}",
                r.text
            );
        }
    }
}
