//! `poststelle backup DEST` and `poststelle restore-check DEST`.
use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use poststelle::store::Store;
use poststelle::store::backup;

use super::output::when;
use super::retention::mb;
use super::{BackupArgs, RestoreCheckArgs};

pub(super) async fn backup(store: &Store, url: &str, args: &BackupArgs) -> Result<ExitCode> {
    let b = backup::backup(store, url, &args.dest).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&b)?)?;
    } else {
        writeln!(
            out,
            "{}: {} tickets, {} in {:.2} s; `poststelle restore-check {}` verifies it",
            b.dest.display(),
            b.tickets,
            mb(b.bytes),
            b.seconds,
            b.dest.display()
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

pub(super) async fn restore_check(args: &RestoreCheckArgs) -> Result<ExitCode> {
    let c = backup::check(&args.target).await?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string(&c)?)?;
    } else {
        writeln!(out, "{} ({})", c.target, c.backend)?;
        writeln!(out, "integrity: {}", c.integrity)?;
        writeln!(
            out,
            "migrations: {} of {} applied",
            c.migrations.applied, c.migrations.known
        )?;
        let counts: Vec<String> = c.counts.iter().map(|(k, v)| format!("{k} {v}")).collect();
        writeln!(out, "counts: {}", counts.join(", "))?;
        if let (Some(n), Some(t)) = (&c.newest_ticket, c.newest_ticket_created) {
            writeln!(out, "newest ticket: {n}, created {}", when(t))?;
        }
        for w in &c.warnings {
            writeln!(out, "warning: {w}")?;
        }
        for p in &c.problems {
            writeln!(out, "problem: {p}")?;
        }
        writeln!(
            out,
            "{}",
            if c.ok {
                "the copy is sound"
            } else {
                "the copy is NOT sound"
            }
        )?;
    }
    Ok(if c.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
