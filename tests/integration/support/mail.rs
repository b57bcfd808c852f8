//! Mail built byte by byte, the shipped samples, and what the classifier makes of a mail.
use std::path::PathBuf;

use poststelle::classify::{self, Decision};
use poststelle::config::Config;
use poststelle::message::InboundMessage;

use super::config::DEFAULT;
use super::repo;

/// A message with these header lines (written as given) and this body, CRLF line ends.
pub fn mail(headers: &[&str], body: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for h in headers {
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if !headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("from:"))
    {
        out.extend_from_slice(b"From: Erika Mustermann <erika@example.org>\r\n");
    }
    if !headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("message-id:"))
    {
        out.extend_from_slice(b"Message-ID: <test@example.org>\r\n");
    }
    if !headers
        .iter()
        .any(|h| h.to_ascii_lowercase().starts_with("to:"))
    {
        out.extend_from_slice(b"To: support@kommunal-it.example\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body.as_bytes());
    out
}

/// A message whose Subject header is the raw bytes given (encoded words, folding, 8-bit).
pub fn mail_with_raw_subject(subject: &[u8]) -> Vec<u8> {
    let mut out = b"From: Erika Mustermann <erika@example.org>\r\nSubject: ".to_vec();
    out.extend_from_slice(subject);
    out.extend_from_slice(
        b"\r\nMessage-ID: <s@example.org>\r\nTo: support@kommunal-it.example\r\n\r\nHallo\r\n",
    );
    out
}

/// A request to the support desk: from `from`, about `subject`, with Message-ID `<id>`.
pub fn request(from: &str, subject: &str, id: &str) -> Vec<u8> {
    mail(
        &[
            &format!("From: {from}"),
            &format!("Subject: {subject}"),
            &format!("Message-ID: <{id}>"),
        ],
        "Guten Tag,\r\nder Drucker im Bürgerbüro druckt nicht.\r\n",
    )
}

/// `n` requests from `{from}@example.test`, Message-IDs `<{tag}.{i}@example.test>`.
pub fn requests(n: usize, from: &str, tag: &str) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            mail(
                &[
                    &format!("From: Erika Mustermann <{from}@example.test>"),
                    &format!("Subject: Drucker im Bürgerbüro {i} streikt ({tag})"),
                    &format!("Message-ID: <{tag}.{i}@example.test>"),
                ],
                "Guten Tag,\n\nder Drucker im Bürgerbüro druckt nicht mehr.\n\nGrüße",
            )
        })
        .collect()
}

/// The Message-IDs of the mails that parse and have one.
pub fn message_ids(raws: &[Vec<u8>]) -> Vec<String> {
    raws.iter()
        .filter_map(|r| poststelle::InboundMessage::parse(r).ok())
        .filter_map(|m| m.message_id)
        .collect()
}

pub fn classify_with(cfg: &Config, raw: &[u8]) -> (Option<InboundMessage>, Decision) {
    classify::classify_raw(cfg, raw)
}

pub fn classify_default(raw: &[u8]) -> Decision {
    classify_with(&DEFAULT, raw).1
}

/// The shipped samples, copied into a temporary directory with their Date headers moved to
/// the last minutes (same order and spacing): mail older than `ack_max_age_hours` gets no
/// acknowledgement, and the samples are dated when they were written.
pub fn fresh_samples() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut samples: Vec<(PathBuf, String, jiff::Timestamp)> =
        std::fs::read_dir(repo().join("samples"))
            .expect("samples")
            .map(|e| {
                let path = e.expect("entry").path();
                let text = std::fs::read_to_string(&path).expect("sample is UTF-8");
                let date = text
                    .lines()
                    .find_map(|l| l.strip_prefix("Date:"))
                    .and_then(|d| jiff::fmt::rfc2822::parse(d.trim()).ok())
                    .map(|z| z.timestamp())
                    .unwrap_or_else(|| panic!("{} has a Date header", path.display()));
                (path, text, date)
            })
            .collect();
    samples.sort_by(|a, b| a.0.cmp(&b.0));
    let newest = samples.iter().map(|s| s.2).max().expect("samples exist");
    let shift = jiff::Timestamp::now().duration_since(newest) - jiff::SignedDuration::from_secs(60);
    for (path, text, date) in samples {
        let moved = (date + shift).in_tz("Europe/Berlin").expect("time zone");
        let line = format!(
            "Date: {}",
            jiff::fmt::rfc2822::to_string(&moved).expect("date")
        );
        let text: Vec<String> = text
            .split_inclusive('\n')
            .map(|l| {
                if l.starts_with("Date:") {
                    let end = if l.ends_with("\r\n") { "\r\n" } else { "\n" };
                    format!("{line}{end}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        std::fs::write(
            dir.path().join(path.file_name().expect("name")),
            text.concat(),
        )
        .expect("write sample");
    }
    dir
}
