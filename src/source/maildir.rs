//! A local Maildir as a mailbox (the embedded default): `new/` is the inbox; a filed message is
//! renamed into `cur/` (marked seen), a quarantined one into the `.Quarantine` Maildir++ folder.
//! The rename happens only after the batch committed, so a crash leaves the message in `new/`
//! and the next pass finds it filed already.
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use tokio_util::sync::CancellationToken;

use super::{Ctx, Disposition, MailFile, SourceError, sleep_or};
use crate::config::MailboxSettings;
use crate::ticket::ingest::{Incoming, Ingestor, SourceKey};

const QUARANTINE: &str = ".Quarantine";

/// Creates the Maildir (and its quarantine folder) when missing.
pub fn ensure(dir: &Path) -> std::io::Result<()> {
    for base in [dir.to_path_buf(), dir.join(QUARANTINE)] {
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(base.join(sub))?;
        }
    }
    Ok(())
}

/// Files what arrives in `dir/new` until `stop`.
pub async fn watch(
    ctx: &Ctx,
    mb: &MailboxSettings,
    dir: &Path,
    stop: &CancellationToken,
) -> Result<(), SourceError> {
    ensure(dir)?;
    tracing::info!(path = %dir.display(), "watching Maildir");
    let ingestor = Ingestor::new(&ctx.store, &ctx.config);
    loop {
        let names = list_new(dir)?;
        for chunk in names.chunks(mb.batch_size) {
            let limit = ctx.config.settings.ingest.max_message_size;
            let mut raws: Vec<(&str, Vec<u8>)> = Vec::with_capacity(chunk.len());
            for name in chunk {
                let path = dir.join("new").join(name);
                let read = tokio::task::block_in_place(|| super::read_mail_file(&path, limit));
                match read {
                    Ok(MailFile::Whole(bytes)) => raws.push((name, bytes)),
                    Ok(MailFile::TooLarge { header, size }) => {
                        let source = SourceKey::maildir(&mb.name, unique(name));
                        let reason = super::too_large_reason(size, limit);
                        ingestor.quarantine(&header, size, &source, &reason).await?;
                        let target = destination(dir, name, Disposition::Quarantine);
                        tokio::fs::rename(&path, &target).await?;
                    }
                    // Taken away meanwhile (by a mail client, say): nothing to file.
                    Err(e) if e.kind() == ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let items: Vec<Incoming<'_>> = raws
                .iter()
                .map(|(name, bytes)| Incoming {
                    raw: bytes,
                    source: SourceKey::maildir(&mb.name, unique(name)),
                })
                .collect();
            let outcomes = super::file_batch(ctx, &ingestor, &items).await?;
            ctx.metrics.fetched(&mb.name, raws.len());
            for ((name, _), outcome) in raws.iter().zip(&outcomes) {
                ctx.metrics.filed(&mb.name, outcome);
                let target = destination(dir, name, Disposition::of(outcome));
                tokio::fs::rename(dir.join("new").join(name), &target).await?;
            }
            ctx.committed();
            if stop.is_cancelled() {
                return Ok(());
            }
        }
        ctx.metrics.polled(&mb.name);
        if stop.is_cancelled() {
            return Ok(());
        }
        sleep_or(stop, mb.poll_interval).await;
    }
}

/// The messages in `new/`, in delivery order.
fn list_new(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut names: Vec<String> = std::fs::read_dir(dir.join("new"))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| !n.starts_with('.'))
        .collect();
    names.sort_by(|a, b| delivery_key(a).cmp(&delivery_key(b)));
    Ok(names)
}

/// When a message was delivered, from its unique name: `<seconds>.<parts>.<host>`, where the
/// parts of the modern form carry the microseconds as `M<µs>` (Dovecot `1700000000.M42P7.h`,
/// `1700000000.V803I12M42.h`). A plain sort of the names would put `M100000` before `M42`
/// within one second, and a reply delivered right after its request would be filed first.
/// Names of other forms (old qmail `<seconds>.<pid>_<n>.<host>`) sort by name within their
/// second.
pub fn delivery_key(name: &str) -> (u64, u64, &str) {
    let name = unique(name);
    let mut fields = name.splitn(3, '.');
    let Some(secs) = fields.next().and_then(|s| s.parse::<u64>().ok()) else {
        return (u64::MAX, 0, name);
    };
    let micros = fields
        .next()
        .and_then(|parts| {
            let at = parts.find('M')?;
            let digits = &parts[at + 1..];
            let end = digits
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(digits.len());
            digits[..end].parse::<u64>().ok()
        })
        .unwrap_or(0);
    (secs, micros, name)
}

/// The unique part of a Maildir file name, without the `:2,flags` info.
fn unique(name: &str) -> &str {
    name.split(':').next().unwrap_or(name)
}

fn destination(dir: &Path, name: &str, d: Disposition) -> PathBuf {
    match d {
        Disposition::Processed => dir.join("cur").join(format!("{}:2,S", unique(name))),
        Disposition::Quarantine => dir
            .join(QUARANTINE)
            .join("cur")
            .join(format!("{}:2,", unique(name))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_order_follows_the_time_stamp_not_the_spelling() {
        let mut names = vec![
            "1700000001.M5P7.host",
            "1700000000.M100000P7.host:2,",
            "1700000000.M42P7.host",
            "1700000000.V803I12M7.host",
            "1700000000.4711_2.host",
            "999999999.M1P1.host",
            "not-a-maildir-name",
        ];
        names.sort_by(|a, b| delivery_key(a).cmp(&delivery_key(b)));
        assert_eq!(
            names,
            vec![
                "999999999.M1P1.host",
                "1700000000.4711_2.host",
                "1700000000.V803I12M7.host",
                "1700000000.M42P7.host",
                "1700000000.M100000P7.host:2,",
                "1700000001.M5P7.host",
                "not-a-maildir-name",
            ]
        );
    }

    #[test]
    fn filed_mail_goes_to_cur_marked_seen() {
        let d = Path::new("/m");
        assert_eq!(
            destination(d, "1700000000.M1P2.host", Disposition::Processed),
            Path::new("/m/cur/1700000000.M1P2.host:2,S")
        );
        assert_eq!(
            destination(d, "1700000000.M1P2.host:2,", Disposition::Quarantine),
            Path::new("/m/.Quarantine/cur/1700000000.M1P2.host:2,")
        );
    }
}
