//! `poststelle check`: loads everything the daemon would and reports every problem.
use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use poststelle::config::Config;

use super::Global;

/// Prints a summary or every diagnostic; unlike the other commands it ignores `--data-dir`,
/// since it only reads the configuration.
pub(super) fn check(g: &Global, connect: bool) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match Config::load(g.config.as_deref()) {
        Ok(cfg) => {
            let mut problems = maintenance_templates(&cfg);
            problems.extend(incident_templates(&cfg));
            problems.extend(alert_templates(&cfg));
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
            if connect {
                drop(out);
                return logins(&cfg);
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

/// Renders the mails of monitoring alerts and problems with samples, in the configured
/// language: staff and the escalation address read them.
fn alert_templates(cfg: &Config) -> Vec<String> {
    use poststelle::templates::{ALERT_FLAPPING, ALERT_STABLE, PROBLEM_FOUND};
    let (alert, problem) = poststelle::notify::alerts::samples(cfg);
    let lang = &cfg.settings.language;
    [
        (ALERT_FLAPPING, &alert),
        (ALERT_STABLE, &alert),
        (PROBLEM_FOUND, &problem),
    ]
    .into_iter()
    .filter(|(name, _)| cfg.templates.has(name, lang))
    .filter_map(|(name, ctx)| {
        cfg.templates.render(name, lang, ctx).err().map(|e| {
            format!(
                "error: {}/{lang}/{name}.txt: {e}\n    fix: use only the names README.md, \
                 \"Monitoring alerts\", lists for these mails",
                cfg.templates.dir
            )
        })
    })
    .collect()
}

/// `--connect`: one login per IMAP mailbox and one to the SMTP relay, each told on a line of
/// its own. Errors carry no secret: tokens and secrets print as `[redacted]`.
fn logins(cfg: &Config) -> Result<ExitCode> {
    use poststelle::config::{MailboxKind, Transport};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut out = std::io::stdout().lock();
    let mut failed = false;
    for mb in &cfg.settings.mailboxes {
        let MailboxKind::Imap(imap) = &mb.kind else {
            writeln!(out, "ok: mailbox {}: a Maildir, no login", mb.name)?;
            continue;
        };
        let how = match &imap.oauth {
            Some(o) => format!(
                "{} with a token of [[oauth]] \"{}\"",
                o.mechanism.name(),
                o.provider.name
            ),
            None => "a password".to_string(),
        };
        match rt.block_on(poststelle::source::imap::try_login(imap)) {
            Ok(()) => writeln!(
                out,
                "ok: mailbox {}: logged in to {}:{} as {} ({how})",
                mb.name, imap.host, imap.port, imap.username
            )?,
            Err(e) => {
                failed = true;
                writeln!(
                    out,
                    "error: mailbox {}: {e}\n    fix: check host, port, tls and username of the \
                     mailbox and its {how}",
                    mb.name
                )?;
            }
        }
    }
    if let Transport::Smtp(smtp) = &cfg.settings.outbox.transport {
        match rt.block_on(smtp_login(smtp)) {
            Ok(how) => writeln!(
                out,
                "ok: outbox.smtp: connected to {}:{} ({how})",
                smtp.host, smtp.port
            )?,
            Err(e) => {
                failed = true;
                writeln!(
                    out,
                    "error: outbox.smtp {}:{}: {e}\n    fix: check host, port, tls, username \
                     and the password or [[oauth]] of [outbox.smtp]",
                    smtp.host, smtp.port
                )?;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

async fn smtp_login(smtp: &poststelle::config::SmtpSettings) -> Result<String> {
    let how = match (&smtp.oauth, &smtp.username, &smtp.password) {
        (Some(o), Some(user), _) => format!(
            "logged in as {user}, {} with a token of [[oauth]] \"{}\"",
            o.mechanism.name(),
            o.provider.name
        ),
        (None, Some(user), Some(_)) => format!("logged in as {user} with a password"),
        _ => "no login configured".to_string(),
    };
    poststelle::outbox::sender::try_login(smtp).await?;
    Ok(how)
}
