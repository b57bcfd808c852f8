//! `poststelle quarantine …`: messages that could not be filed.
use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use poststelle::config::Config;
use poststelle::store::Store;
use poststelle::ticket::ingest::Outcome;
use poststelle::ticket::ops;

use super::QuarantineCmd;

pub(super) async fn quarantine(
    cfg: &Config,
    store: &Store,
    cmd: &QuarantineCmd,
) -> Result<ExitCode> {
    match cmd {
        QuarantineCmd::List { json } => {
            for q in ops::list_quarantine(store).await? {
                if *json {
                    println!("{}", serde_json::to_string(&q)?);
                } else {
                    println!(
                        "#{:<6} {} {:>9} bytes  {}  {}",
                        q.id, q.received, q.size, q.source, q.reason
                    );
                }
            }
        }
        QuarantineCmd::Show { id, raw } => {
            let bytes = ops::quarantined_bytes(store, *id).await?;
            let mut out = std::io::stdout().lock();
            if *raw {
                out.write_all(&bytes)?;
            } else {
                out.write_all(escaped(&bytes).as_bytes())?;
            }
        }
        QuarantineCmd::Replay { id } => {
            let outcome = ops::replay_quarantined(store, cfg, *id).await?;
            println!("{}", serde_json::to_string(&outcome)?);
            // Still unreadable after the fix: a script replaying in a loop must see it.
            if matches!(outcome, Outcome::Quarantined { .. }) {
                return Ok(ExitCode::from(1));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A message for a terminal: text as it is, line ends as line ends, and every other control
/// character (escape sequences, NUL, backspace) and every byte that is not UTF-8 written out
/// as `\u{1b}` or `\xNN`.
fn escaped(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().replace("\r\n", "\n").chars() {
            match c {
                '\n' | '\t' => out.push(c),
                c if c.is_control() || poststelle::notify::is_invisible_format(c) => {
                    out.push_str(&c.escape_unicode().to_string())
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escaped;

    #[test]
    fn control_characters_and_invalid_bytes_are_shown_escaped() {
        assert_eq!(
            escaped(b"Subject: Gr\xc3\xbc\xc3\x9fe\r\n\x1b[2J\x00x\xff\n"),
            "Subject: Grüße\n\\u{1b}[2J\\u{0}x\\xff\n"
        );
    }
}
