//! `poststelle privacy export|erase ADDRESS`: data subject requests.
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use jiff::Timestamp;
use poststelle::config::Config;
use poststelle::jobs::privacy::{self, EraseOptions};
use poststelle::store::Store;

use super::PrivacyCmd;
use super::retention::{mb, vacuum_store};

pub(super) async fn privacy(_cfg: &Config, store: &Store, cmd: &PrivacyCmd) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match cmd {
        PrivacyCmd::Export {
            address,
            out: dir,
            json,
        } => {
            let now = Timestamp::now();
            let dir = dir.clone().unwrap_or_else(|| default_dir(address, now));
            let e = privacy::export(store, address, &dir, now).await?;
            if *json {
                writeln!(out, "{}", serde_json::to_string(&e)?)?;
            } else {
                writeln!(
                    out,
                    "{}: {} ticket(s) with {} article(s), {} raw mail(s), {} mail(s) sent, {} list membership(s), {} audit line(s), {} mention(s) in other tickets — {} file(s), index.json lists them",
                    e.dir.display(),
                    e.tickets,
                    e.articles,
                    e.raw_mail,
                    e.mail,
                    e.list_memberships,
                    e.audit,
                    e.mentioned_in,
                    e.files
                )?;
            }
        }
        PrivacyCmd::Erase {
            address,
            dry_run,
            reference,
            also,
            vacuum,
            json,
            actor,
        } => {
            let opts = EraseOptions {
                dry_run: *dry_run,
                reference: reference.clone(),
                actor: actor.actor.clone(),
                also: also.clone(),
            };
            let e = privacy::erase(store, address, &opts, Timestamp::now()).await?;
            let vacuumed = if *vacuum {
                Some(vacuum_store(store).await?)
            } else {
                None
            };
            if *json {
                let mut v = serde_json::to_value(&e)?;
                if let Some((before, after)) = vacuumed {
                    v["vacuum"] =
                        serde_json::json!({ "bytes_before": before, "bytes_after": after });
                }
                writeln!(out, "{v}")?;
            } else {
                let verb = if e.dry_run { "would be" } else { "were" };
                writeln!(
                    out,
                    "{} ticket(s) it requested {verb} anonymised (texts and raw mail deleted){}",
                    e.tickets_anonymised.len(),
                    if e.still_open.is_empty() {
                        String::new()
                    } else {
                        format!("; still open: {}", e.still_open.join(", "))
                    }
                )?;
                writeln!(
                    out,
                    "participant of {} other ticket(s); {} list membership(s){}",
                    e.participant_of.len(),
                    e.list_memberships.len(),
                    if e.list_memberships.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", e.list_memberships.join(", "))
                    }
                )?;
                writeln!(
                    out,
                    "mail to it: {} suppressed, {} anonymised; raw mail: {} deleted, {} emptied, {} with the address replaced",
                    e.mail_suppressed,
                    e.mail_anonymised,
                    e.raw_deleted,
                    e.raw_purged,
                    e.raw_replaced
                )?;
                let texts: Vec<String> = e
                    .texts_replaced
                    .iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect();
                if !texts.is_empty() {
                    writeln!(out, "address replaced in: {}", texts.join(", "))?;
                }
                if let Some((before, after)) = vacuumed {
                    writeln!(out, "VACUUM: {} → {}", mb(before), mb(after))?;
                }
                if e.dry_run {
                    writeln!(out, "dry run: nothing was changed")?;
                } else if e.remaining == 0 {
                    writeln!(out, "a search of the store finds the address no more")?;
                }
            }
            if !e.dry_run && e.remaining > 0 {
                anyhow::bail!(
                    "{} row(s) still name the address (mail filed meanwhile?); run the erase again",
                    e.remaining
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `privacy-export-<address>-<UTC time>`, the address made a file name.
fn default_dir(address: &str, now: Timestamp) -> PathBuf {
    let name: String = address
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '@' || c == '.' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    PathBuf::from(format!(
        "privacy-export-{name}-{}",
        now.strftime("%Y%m%dT%H%M%SZ")
    ))
}
