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
            Ok(ExitCode::SUCCESS)
        }
        Err(diags) => {
            writeln!(out, "{diags}")?;
            Ok(ExitCode::FAILURE)
        }
    }
}
