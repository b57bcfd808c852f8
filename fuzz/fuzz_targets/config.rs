//! The configuration loader (`Config::from_source`, what `Config::load` does with the text of
//! `poststelle.toml`) on arbitrary text. The files it names are read from a directory made at
//! start: `rules/` with one small rule file, the shipped `contacts/hessen.toml`, and every
//! shipped template name as a template of one word (compiling the shipped rules and templates
//! took 0.7 s of CPU per input under ASan; the rule loader has a target of its own, `rules`).
//!
//! Checks: loading never panics; a configuration that does not load says why in at least one
//! diagnostic with a message and a fix, each line within its file; one that loads classifies
//! the sample mails into a class from 1 to 4 and a queue it defines.
//!
//! Paths in a configuration are read (secrets, the reply token key, a logo, a CA file): inputs
//! whose strings name `dev`, `proc` or `sys` are skipped, since reading /dev/zero or a FIFO is
//! what a configuration asks for there, not a fault of the loader.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use poststelle::classify::classify;
use poststelle::config::Config;
use poststelle::diag::{SourceText, line_breaks};
use poststelle::files::Files;

mod common;

/// Whether a string value anywhere in the TOML names a device or kernel file system.
fn names_special_files(text: &str) -> bool {
    fn walk(v: &toml::Value) -> bool {
        match v {
            toml::Value::String(s) => ["dev", "proc", "sys"].iter().any(|w| s.contains(w)),
            toml::Value::Array(a) => a.iter().any(walk),
            toml::Value::Table(t) => t.values().any(walk),
            _ => false,
        }
    }
    match text.parse::<toml::Table>() {
        Ok(t) => t.values().any(walk),
        // The loader reads no path from text that is no TOML.
        Err(_) => false,
    }
}

/// The directory the configuration's files are read from.
static DIR: LazyLock<PathBuf> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("poststelle-fuzz-config-{}", std::process::id()));
    let write = |rel: &str, text: &str| {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("a directory");
        std::fs::write(path, text).expect("a file");
    };
    write(
        "rules/10-fuzz.toml",
        "[[rule]]\nname = \"drucker\"\nwhen.subject = '\\bdrucker\\b'\nthen.severity = 3\n",
    );
    write(
        "contacts/hessen.toml",
        include_str!("../../contacts/hessen.toml"),
    );
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../templates");
    for lang in ["de", "en"] {
        let Ok(entries) = std::fs::read_dir(shipped.join(lang)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let text = if name.ends_with(".txt") {
                "{% block subject %}s{% endblock %}{% block body %}b{% endblock %}"
            } else {
                "b"
            };
            if name.ends_with(".txt") || name.ends_with(".html") {
                write(&format!("templates/{lang}/{name}"), text);
            }
        }
    }
    dir
});

fuzz_target!(|text: &str| {
    if names_special_files(text) {
        return;
    }
    let files = Files::Disk(DIR.clone());
    let name = files.display("poststelle.toml");
    let src = SourceText {
        name: name.clone(),
        text: text.to_string(),
    };
    match Config::from_source(files, src) {
        Ok(config) => {
            for msg in common::SAMPLES.iter() {
                let d = classify(&config, msg);
                assert!((1..=4).contains(&d.severity), "{d:?}");
                assert!(config.settings.queue(&d.queue).is_some(), "{d:?}");
            }
        }
        Err(diags) => {
            assert!(!diags.0.is_empty(), "an error without a diagnostic");
            let lines = line_breaks(text.as_bytes(), 0..text.len()) + 1;
            for d in &diags.0 {
                assert!(!d.message.is_empty(), "{d:?}");
                if d.file == name
                    && let Some(line) = d.line
                {
                    assert!(line >= 1 && line <= lines, "line {line} of {lines}: {d:?}");
                }
            }
        }
    }
});
