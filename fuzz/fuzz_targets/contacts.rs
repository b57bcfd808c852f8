//! The contact-list loader (`ContactList::from_source`, what `ContactList::load` does with a
//! file's text) on arbitrary bytes: the first byte chooses CSV (odd) or TOML (even), as the
//! file name does; CSV bytes are decoded as the loader reads a file (`files::legacy_text`:
//! UTF-8, else windows-1252), TOML must be UTF-8.
//!
//! Checks: loading never panics; every problem is a diagnostic with a message, and a line
//! within the file when it names one; every service has a trimmed name and Ressort, and each of
//! its keywords finds it (`ContactList::matches`), with a match at least as long as the keyword.
#![no_main]

use libfuzzer_sys::fuzz_target;
use poststelle::classify::nutzerkonto::ContactList;
use poststelle::diag::{Diagnostics, SourceText, line_breaks};
use poststelle::files::legacy_text;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, bytes)) = data.split_first() else {
        return;
    };
    let is_csv = kind % 2 == 1;
    let text = if is_csv {
        legacy_text(bytes.to_vec())
    } else {
        match String::from_utf8(bytes.to_vec()) {
            Ok(t) => t,
            Err(_) => return,
        }
    };
    let lines = line_breaks(text.as_bytes(), 0..text.len()) + 1;
    let src = SourceText {
        name: if is_csv {
            "contacts.csv"
        } else {
            "contacts.toml"
        }
        .into(),
        text,
    };
    let mut diags = Diagnostics::default();
    let list = ContactList::from_source(src, is_csv, &mut diags);
    for d in &diags.0 {
        assert!(!d.message.is_empty(), "{d:?}");
        if let Some(line) = d.line {
            assert!(line >= 1 && line <= lines, "line {line} of {lines}: {d:?}");
        }
    }
    for s in &list.services {
        assert_eq!(s.name, s.name.trim(), "{s:?}");
        assert_eq!(s.ressort, s.ressort.trim(), "{s:?}");
        for k in s.keywords() {
            assert!(!k.is_empty(), "{s:?}");
            let found = list
                .matches(k)
                .into_iter()
                .find(|(other, _)| std::ptr::eq(*other, s));
            match found {
                Some((_, score)) => assert!(score.len >= k.len(), "{k:?}: {score:?}"),
                None => panic!("service {:?} is not found by its keyword {k:?}", s.name),
            }
        }
    }
});
