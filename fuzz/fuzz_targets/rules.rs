//! The rule loader (`RuleSet::compile`, what `rules/*.toml` go through) on arbitrary text, the
//! rule engine's automaton against each pattern's own regex, and classification under the
//! loaded rules.
//!
//! Checks: loading never panics, and every problem is a diagnostic with a message, and a line
//! within the file when it names one; for every field the automaton (`FieldSet::mark`, the
//! fast path with its word-boundary rewriting) says of every pattern what the pattern's own
//! regex says (`compile_one`), on the file's own text and on the sample mails; rules that load
//! without a diagnostic classify the sample mails without panic, into a class from 1 to 4 with
//! a reason, and `explain` (the path of `poststelle classify --explain`) decides the same.
#![no_main]

use std::sync::{LazyLock, Mutex};

use libfuzzer_sys::fuzz_target;
use poststelle::classify::fieldset::compile_one;
use poststelle::classify::rules::RuleSet;
use poststelle::classify::{classify, explain};
use poststelle::config::Config;
use poststelle::diag::{Diagnostics, SourceText, line_breaks};

mod common;

/// A configuration of its own whose rules each input replaces for a moment.
static RULES_CONFIG: LazyLock<Mutex<Config>> = LazyLock::new(|| {
    Mutex::new(Config::load(None).expect("the shipped default configuration loads"))
});

/// Texts the automata of every input are run on besides the input itself.
static TEXTS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let mut t: Vec<String> = common::SAMPLES
        .iter()
        .flat_map(|m| {
            [
                m.subject.clone(),
                m.body.clone(),
                m.from
                    .as_ref()
                    .map(|f| f.address.clone())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    t.push("„Drucker“ kaputt – Fehler: Zugriff verweigert (Straße 3, Büro)".into());
    t
});

fuzz_target!(|text: &str| {
    let mut diags = Diagnostics::default();
    let src = SourceText {
        name: "rules/fuzz.toml".into(),
        text: text.to_string(),
    };
    let set = RuleSet::compile(vec![src], &mut diags);
    let lines = line_breaks(text.as_bytes(), 0..text.len()) + 1;
    for d in &diags.0 {
        assert!(!d.message.is_empty(), "{d:?}");
        if let Some(line) = d.line {
            assert!(line >= 1 && line <= lines, "line {line} of {lines}: {d:?}");
        }
    }
    let mut pending = Vec::new();
    for field in &set.fields {
        let own: Vec<_> = field.patterns.iter().map(|p| compile_one(p).ok()).collect();
        for haystack in std::iter::once(text).chain(TEXTS.iter().map(String::as_str)) {
            let mut found = vec![false; field.patterns.len()];
            field.mark(haystack, &mut found, &mut pending);
            for ((p, fast), own) in field.patterns.iter().zip(&found).zip(&own) {
                let simple = own.as_ref().is_some_and(|r| r.is_match(haystack));
                assert_eq!(
                    *fast, simple,
                    "pattern {p:?} on {} of {haystack:?}: automaton {fast}, own regex {simple}",
                    field.field
                );
            }
        }
    }
    if !diags.is_empty() {
        return;
    }
    let mut config = RULES_CONFIG.lock().expect("not poisoned: a panic aborts");
    let shipped = std::mem::replace(&mut config.rules, set);
    for msg in common::SAMPLES.iter() {
        let d = classify(&config, msg);
        assert!((1..=4).contains(&d.severity), "{d:?}");
        assert!(!d.reason.is_empty(), "{d:?}");
        let (explained, _) = explain(&config, msg);
        assert_eq!(format!("{explained:?}"), format!("{d:?}"));
    }
    config.rules = shipped;
});
