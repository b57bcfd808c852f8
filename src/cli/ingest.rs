//! `poststelle ingest`: files messages into the store as the daemon does, in batches.
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use poststelle::config::Config;
use poststelle::message::ParseError;
use poststelle::source::MailFile;
use poststelle::store::Store;
use poststelle::ticket::ingest::{Incoming, Ingestor, Outcome, SourceKey};

use super::IngestArgs;
use super::paths::{self, Problems};

pub(super) async fn ingest(cfg: &Config, store: &Store, args: &IngestArgs) -> Result<ExitCode> {
    let mut problems = Problems::default();
    let files = paths::expand_all(&args.paths, &mut problems);
    let bar = progress_bar(files.len());
    let ingestor = Ingestor::new(store, cfg);
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for chunk in files.chunks(args.batch as usize) {
        let mut raws = Vec::with_capacity(chunk.len());
        let limit = cfg.settings.ingest.max_message_size;
        for f in chunk {
            let Some(read) = paths::read(f, limit, &mut problems) else {
                continue;
            };
            // Keyed by the canonical path, so that a re-run from another directory names the
            // same source.
            let key = std::fs::canonicalize(f).unwrap_or_else(|_| f.clone());
            let key = SourceKey::file(&key.to_string_lossy());
            match read {
                MailFile::Whole(raw) => raws.push((raw, key, f)),
                MailFile::TooLarge { header, size } => {
                    let reason = ParseError::TooLarge { size, limit }.to_string();
                    ingestor.quarantine(&header, size, &key, &reason).await?;
                    let o = Outcome::Quarantined { reason };
                    *counts.entry(o.label()).or_default() += 1;
                    if args.json {
                        let mut v = serde_json::to_value(&o)?;
                        v["path"] = serde_json::json!(f.display().to_string());
                        writeln!(out, "{v}")?;
                    }
                }
            }
        }
        let items: Vec<Incoming<'_>> = raws
            .iter()
            .map(|(raw, key, _)| Incoming {
                raw,
                source: key.clone(),
            })
            .collect();
        let outcomes = ingestor.ingest_batch(&items).await?;
        for ((_, _, path), o) in raws.iter().zip(&outcomes) {
            *counts.entry(o.label()).or_default() += 1;
            if args.json {
                let mut v = serde_json::to_value(o)?;
                v["path"] = serde_json::json!(path.display().to_string());
                writeln!(out, "{v}")?;
            }
        }
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    // Incidents monitoring opened or restored on platforms that tell their lists at once:
    // the notices go with the filing, as the daemon sends them.
    poststelle::announce::incident::announce_due(store, cfg, jiff::Timestamp::now()).await?;
    if !args.json {
        write_summary(&mut out, &counts)?;
    }
    out.flush()?;
    Ok(problems.exit_code())
}

/// A progress bar on a terminal when there are enough messages to wait for.
fn progress_bar(messages: usize) -> ProgressBar {
    if messages < 100 || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let style =
        ProgressStyle::with_template("{bar:40} {pos}/{len} messages, {per_sec}, {eta} left")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    ProgressBar::new(messages as u64).with_style(style)
}

fn write_summary(out: &mut impl Write, counts: &BTreeMap<&'static str, usize>) -> Result<()> {
    let n = |k: &str| counts.get(k).copied().unwrap_or(0);
    writeln!(
        out,
        "{} new ticket(s), {} follow-up(s), {} note(s), {} ignored, {} duplicate(s), {} quarantined",
        n("new_ticket"),
        n("follow_up"),
        n("note"),
        n("ignored"),
        n("duplicate"),
        n("quarantined")
    )?;
    Ok(())
}
