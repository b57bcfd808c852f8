//! Real mail from public test suites (tests/corpus, see SOURCES.md there): loop protection
//! must hold on all of it, and nothing in it may panic.
use std::collections::BTreeSet;
use std::path::Path;

use poststelle::classify::Action;

use crate::support::{DEFAULT, classify_with, corpus};

struct Row {
    path: String,
    kind: String,
}

fn expectations() -> Vec<Row> {
    let text = std::fs::read_to_string(corpus().join("expectations.tsv")).expect("tsv");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut cols = l.split('\t');
            Row {
                path: cols.next().unwrap_or_default().to_string(),
                kind: cols.next().unwrap_or_default().to_string(),
            }
        })
        .collect()
}

fn classify_file(rel: &str) -> poststelle::Decision {
    let raw = std::fs::read(corpus().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    classify_with(&DEFAULT, &raw).1
}

/// Spam that one bounce parser's suite files under bounces: plain mail from a spammer with no
/// sign of a machine. Flagging it would mean flagging ordinary human mail too.
const BOUNCE_EXCEPTIONS: &[&str] = &[
    "bounces/bounceparser/spam-bogus-email-in-report.msg",
    "bounces/bounceparser/spam-with-image.msg",
];

/// A challenge-response request (Bluebottle) that carries no standard signal at all.
const AUTO_REPLY_EXCEPTIONS: &[&str] = &["autoreplies/bounceparser/bluebottle.msg"];

#[test]
fn bounces_are_auto_generated_and_ignored() {
    let rows: Vec<Row> = expectations()
        .into_iter()
        .filter(|r| r.path.starts_with("bounces/"))
        .collect();
    assert!(
        rows.len() > 380,
        "the corpus has its bounces: {}",
        rows.len()
    );
    let mut missed = BTreeSet::new();
    for r in &rows {
        let d = classify_file(&r.path);
        if d.auto_generated.is_none() || d.action != Action::Ignore || d.auto_reply.is_some() {
            missed.insert(r.path.as_str());
        }
    }
    let rate = 1.0 - missed.len() as f64 / rows.len() as f64;
    assert!(
        rate >= 0.99,
        "only {:.1} % recognised; missed {missed:#?}",
        rate * 100.0
    );
    let unexpected: Vec<_> = missed
        .iter()
        .filter(|p| !BOUNCE_EXCEPTIONS.contains(p))
        .collect();
    assert!(
        unexpected.is_empty(),
        "bounces not recognised: {unexpected:#?}"
    );
}

#[test]
fn auto_replies_are_auto_generated_and_get_no_reply() {
    let rows: Vec<Row> = expectations()
        .into_iter()
        .filter(|r| r.path.starts_with("autoreplies/"))
        .collect();
    assert!(rows.len() >= 7);
    for r in rows {
        if AUTO_REPLY_EXCEPTIONS.contains(&r.path.as_str()) {
            continue;
        }
        let d = classify_file(&r.path);
        assert!(
            d.auto_generated.is_some(),
            "{} ({}) not recognised: {}",
            r.path,
            r.kind,
            d.reason
        );
        assert_eq!(d.action, Action::Ignore, "{}", r.path);
        assert_eq!(d.auto_reply, None, "{}", r.path);
    }
}

#[test]
fn human_mail_is_never_flagged() {
    let rows: Vec<Row> = expectations()
        .into_iter()
        .filter(|r| r.path.starts_with("helpdesk-real/"))
        .collect();
    assert!(rows.len() >= 9);
    for r in rows {
        let d = classify_file(&r.path);
        assert_eq!(d.auto_generated, None, "{} flagged: {}", r.path, d.reason);
        assert_eq!(d.action, Action::Ticket, "{}", r.path);
        assert_eq!(
            d.auto_reply.as_deref(),
            Some("eingangsbestaetigung"),
            "a new human request is acknowledged: {}",
            r.path
        );
    }
}

fn all_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn nothing_in_the_corpus_panics_and_unparseable_mail_is_quarantined() {
    let mut files = Vec::new();
    all_files(&corpus(), &mut files);
    assert!(files.len() > 500);
    let mut quarantined = 0;
    for f in &files {
        let raw = std::fs::read(f).expect("read");
        let d = classify_with(&DEFAULT, &raw).1;
        if d.action == Action::Quarantine {
            quarantined += 1;
            assert!(d.reason.starts_with("quarantined: "), "{}", d.reason);
        }
    }
    // expectations.tsv, SOURCES.md and the body-only CPython fixture have no mail header.
    let msg_19 = classify_file("mime-torture/cpython/msg_19.txt");
    assert_eq!(msg_19.action, Action::Quarantine);
    assert!(quarantined <= 3, "{quarantined} quarantined");
}

#[test]
fn cr_only_and_crlf_line_ends_read_like_lf() {
    for dir in ["bounces/sisimai-mac-cr-only", "bounces/sisimai-dos-crlf"] {
        for e in std::fs::read_dir(corpus().join(dir))
            .expect("dir")
            .flatten()
        {
            let raw = std::fs::read(e.path()).expect("read");
            let (msg, d) = classify_with(&DEFAULT, &raw);
            let msg = msg.expect("parses");
            assert!(
                msg.headers().count() > 3,
                "{}: headers read",
                e.path().display()
            );
            assert!(d.auto_generated.is_some(), "{}", e.path().display());
        }
    }
}

#[test]
fn garbage_is_quarantined_not_a_panic() {
    for raw in [
        &b""[..],
        b"\r\n\r\n",
        b"\x00\x01\x02\xff\xfe",
        b"just some words without any header",
    ] {
        let (msg, d) = classify_with(&DEFAULT, raw);
        assert!(msg.is_none(), "{raw:?}");
        assert_eq!(d.action, Action::Quarantine, "{raw:?}");
    }
    // Deep nesting and a huge header line must be survived.
    let mut deep = String::from("From: a@b.example\r\nSubject: x\r\n");
    for i in 0..200 {
        deep.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n"
        ));
    }
    let _ = classify_with(&DEFAULT, deep.as_bytes());
    let long = format!(
        "From: a@b.example\r\nSubject: {}\r\n\r\nx",
        "x".repeat(1 << 20)
    );
    let d = classify_with(&DEFAULT, long.as_bytes()).1;
    assert_eq!(d.action, Action::Ticket);
}
