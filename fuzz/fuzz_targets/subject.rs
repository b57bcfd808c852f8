//! Subject normalisation as classification does it (`classify::subject`), then the
//! Nutzerkonto scheme on its result and the contact list on the Betreff.
//!
//! Checks: the normalised subject is one line of words (single blanks, none at the ends, no
//! other whitespace), starts with no reply/forward prefix, holds no ticket tag, and a second
//! pass changes nothing; a subject without prefix and tag only loses extra whitespace; a ticket
//! number is ASCII digits; a decoded Nutzerkonto subject reads back the same.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use poststelle::classify::nutzerkonto;
use poststelle::classify::subject::{has_reply_prefix, normalize, ticket_ref, ticket_ref_regex};
use regex::Regex;

mod common;

static TAG: LazyLock<Regex> = LazyLock::new(|| ticket_ref_regex("Ticket"));

fn words(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fuzz_target!(|subject: &str| {
    let out = normalize(subject, &TAG);
    assert_eq!(
        out,
        words(&out),
        "not one line of words: {out:?} (from {subject:?})"
    );
    assert!(
        !has_reply_prefix(&out),
        "a reply prefix is left: {out:?} (from {subject:?})"
    );
    assert_eq!(
        ticket_ref(&out, &TAG),
        None,
        "a ticket tag is left: {out:?} (from {subject:?})"
    );
    assert_eq!(
        normalize(&out, &TAG),
        out,
        "a second pass changes {subject:?}"
    );
    if !has_reply_prefix(subject) && !TAG.is_match(subject) {
        assert_eq!(
            out,
            words(subject),
            "more than whitespace went from {subject:?}"
        );
    }
    if let Some(n) = ticket_ref(subject, &TAG) {
        assert!(
            !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()),
            "ticket number {n:?} (from {subject:?})"
        );
    }
    if let Some(nk) = nutzerkonto::parse(&out) {
        let again = format!("{}_{}_{}", nk.state, nk.betreff, nk.origin);
        assert_eq!(nutzerkonto::parse(&again).as_ref(), Some(&nk), "{again:?}");
        let _ = common::CONFIG.contacts.find(&nk.betreff);
    }
});
