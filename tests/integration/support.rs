//! Shared helpers: the shipped configuration, configurations written for one test, mail
//! built byte by byte.
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use poststelle::classify::{self, Decision};
use poststelle::config::Config;
use poststelle::message::InboundMessage;

pub static DEFAULT: LazyLock<Config> =
    LazyLock::new(|| Config::load(None).expect("the shipped default configuration is valid"));

pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

pub fn corpus() -> PathBuf {
    repo().join("tests/corpus")
}

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
    out.extend_from_slice(b"To: support@kommunal-it.example\r\n\r\n");
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

pub fn classify_with(cfg: &Config, raw: &[u8]) -> (Option<InboundMessage>, Decision) {
    classify::classify_raw(cfg, raw)
}

pub fn classify_default(raw: &[u8]) -> Decision {
    classify_with(&DEFAULT, raw).1
}

/// A configuration in a temporary directory: the shipped poststelle.toml with `extra` appended
/// and `replace` applied, rules from `rules` (file name, text), the shipped contact list and
/// templates unless overridden.
pub struct TempConfig {
    pub dir: tempfile::TempDir,
}

impl TempConfig {
    pub fn new(config_toml: &str, rules: &[(&str, &str)]) -> TempConfig {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("rules")).expect("rules dir");
        for (name, text) in rules {
            std::fs::write(dir.path().join("rules").join(name), text).expect("rule file");
        }
        std::fs::write(dir.path().join("poststelle.toml"), config_toml).expect("config");
        TempConfig { dir }
    }

    /// The shipped configuration text with paths pointing into the repository, so that only
    /// what a test changes differs.
    pub fn shipped_text() -> String {
        let text = std::fs::read_to_string(repo().join("poststelle.toml")).expect("shipped");
        text.replace(
            "templates_dir = \"templates\"",
            &format!("templates_dir = {:?}", repo().join("templates")),
        )
        .replace(
            "contacts = \"contacts/hessen.toml\"",
            &format!("contacts = {:?}", repo().join("contacts/hessen.toml")),
        )
    }

    pub fn write(&self, rel: &str, content: &[u8]) {
        let p = self.dir.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("dir");
        }
        std::fs::write(p, content).expect("write");
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("poststelle.toml")
    }

    pub fn load(&self) -> Config {
        match Config::load(Some(&self.path())) {
            Ok(c) => c,
            Err(d) => panic!("config should load:\n{d}"),
        }
    }
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
