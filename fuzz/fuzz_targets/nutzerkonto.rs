//! The Nutzerkonto scheme `<STATE>_<Betreff>_<NKB|MUK>` (`classify::nutzerkonto::parse`), the
//! folding that compares a Betreff with the contact list's keywords (`fold`), and the shipped
//! contact list's choice of a service (`ContactList::find`).
//!
//! Checks: a decoded subject has a known state code, the origin NKB or MUK, a trimmed
//! non-empty Betreff, and reads back the same when written again; what `fold` makes is blanks
//! around lower-case words and a second pass changes nothing; the contact list finds one
//! service with a match of some length, or a tie of several with the same length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use poststelle::classify::nutzerkonto::{Found, STATE_CODES, fold, parse};

mod common;

fuzz_target!(|text: &str| {
    if let Some(nk) = parse(text) {
        assert!(STATE_CODES.contains(&nk.state.as_str()), "{nk:?}");
        assert!(nk.origin == "NKB" || nk.origin == "MUK", "{nk:?}");
        assert!(!nk.betreff.is_empty(), "{nk:?}");
        assert_eq!(nk.betreff, nk.betreff.trim(), "{nk:?}");
        let again = format!("{}_{}_{}", nk.state, nk.betreff, nk.origin);
        assert_eq!(parse(&again).as_ref(), Some(&nk), "{again:?}");
    }
    let folded = fold(text);
    assert!(
        folded.starts_with(' ') && folded.ends_with(' '),
        "{folded:?}"
    );
    assert!(!folded.contains("  "), "{folded:?}");
    assert!(
        folded.chars().all(|c| c == ' ' || c.is_alphanumeric()),
        "{folded:?} (from {text:?})"
    );
    assert_eq!(fold(&folded), folded, "a second fold changes {text:?}");
    match common::CONFIG.contacts.find(text) {
        Found::Service(_, score) => assert!(score.len > 0, "{score:?}"),
        Found::Tie(all) => {
            assert!(all.len() > 1);
            assert!(all.iter().all(|(_, s)| s.len == all[0].1.len), "{all:?}");
        }
        Found::Nothing => {}
    }
});
