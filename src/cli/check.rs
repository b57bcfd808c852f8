//! `poststelle check`: loads everything the daemon would and reports every problem.
use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use poststelle::config::Config;

use super::Global;

/// Prints a summary or every diagnostic; unlike the other commands it ignores `--data-dir`,
/// since it only reads the configuration.
pub(super) fn check(g: &Global) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match Config::load(g.config.as_deref()) {
        Ok(cfg) => {
            let mut problems = maintenance_templates(&cfg);
            problems.extend(incident_templates(&cfg));
            if !problems.is_empty() {
                for p in &problems {
                    writeln!(out, "{p}")?;
                }
                return Ok(ExitCode::FAILURE);
            }
            writeln!(
                out,
                "ok: {} — {} queue(s), {} rule(s) in {} file(s), {} contact-list service(s), {} template(s), {} calendar(s), {} platform(s)",
                cfg.origin,
                cfg.settings.queues.len(),
                cfg.rules.rules.len(),
                cfg.rules.sources.len(),
                cfg.contacts.services.len(),
                cfg.templates.count(),
                cfg.settings.sla.calendars.names().count(),
                cfg.settings.platforms.len(),
            )?;
            // On stderr: stdout stays the one summary line scripts read.
            if let Some(note) = cfg.settings.reply.missing_key_note() {
                writeln!(std::io::stderr().lock(), "{note}")?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(diags) => {
            writeln!(out, "{diags}")?;
            Ok(ExitCode::FAILURE)
        }
    }
}

/// Renders every maintenance notice in German and English with a sample maintenance: a
/// misspelt name in an operator's template shows here, not when the notice is due.
fn maintenance_templates(cfg: &Config) -> Vec<String> {
    use poststelle::notify::maintenance as notice;
    let (m, previous) = notice::sample();
    let mut problems = Vec::new();
    for kind in notice::KINDS {
        let name = notice::template(kind);
        for lang in ["de", "en"] {
            if !cfg.templates.has(name, lang) {
                continue;
            }
            let ctx = notice::context(cfg, &m, previous, lang);
            if let Err(e) = cfg.templates.render(name, lang, &ctx) {
                problems.push(format!(
                    "error: {}/{lang}/{name}.txt: {e}\n    fix: use only the names README.md, \
                     \"Maintenance windows and lead times\", lists for maintenance notices",
                    cfg.templates.dir
                ));
            }
        }
    }
    problems
}

/// Renders every incident notice with a sample incident: those to the lists in German and
/// English, those to a linked ticket's requester in the configured language.
fn incident_templates(cfg: &Config) -> Vec<String> {
    use poststelle::announce::incident::{IncidentNotice, NOTICES};
    use poststelle::notify::incident as notice;
    let (incident, update) = notice::sample();
    let ticket = poststelle::notify::Ticket {
        number: "2026121610000001",
        subject: "Anmeldung geht nicht",
        queue: "support",
        severity: 3,
        requester: "anna@kommune.example",
        requester_name: Some("Anna Beispiel"),
        received: jiff::Timestamp::UNIX_EPOCH,
    };
    let mut problems = Vec::new();
    let mut try_render = |name: &str, lang: &str, ctx: &serde_json::Value| {
        if !cfg.templates.has(name, lang) {
            return;
        }
        if let Err(e) = cfg.templates.render(name, lang, ctx) {
            problems.push(format!(
                "error: {}/{lang}/{name}.txt: {e}\n    fix: use only the names README.md, \
                 \"Incidents\", lists for incident notices",
                cfg.templates.dir
            ));
        }
    };
    for kind in NOTICES {
        // What each notice is given: an opening never has an update, an update always, a
        // resolution may.
        let updates: &[Option<notice::Update<'_>>] = match kind {
            IncidentNotice::Opened => &[None],
            IncidentNotice::Update => &[Some(update)],
            IncidentNotice::Resolved => &[None, Some(update)],
        };
        for lang in ["de", "en"] {
            for &update in updates {
                let ctx = notice::context(cfg, &incident, update, lang);
                try_render(kind.template(), lang, &ctx);
            }
        }
        if let Some(name) = kind.ticket_template() {
            let ctx = notice::for_ticket(cfg, &incident, Some(update), &ticket);
            try_render(name, &cfg.settings.language, &ctx);
        }
    }
    problems
}
