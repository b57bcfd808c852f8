//! The distribution-list import (`lists::read_csv`, what `poststelle lists import` reads) on
//! arbitrary bytes: `,` `;` or tab, a `sep=` line, BOMs, UTF-16, windows-1252, quoted fields.
//!
//! Checks: reading never panics; an unreadable file is an error naming a line; every member
//! has an address `normalize_address` keeps as it is, a name and organisation on one line, an
//! address no member before has (without case), and a line after the member before; the
//! members written out (`write_csv`, `lists export`) read back the same, without a problem; and
//! importing a list into itself changes nothing.
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use poststelle::lists::{Member, Role, diff, normalize_address, one_line, read_csv, write_csv};

fuzz_target!(|data: &[u8]| {
    let parsed = match read_csv(data, Role::EndUser) {
        Ok(p) => p,
        Err(e) => {
            assert!(e.line >= 1 && !e.message.is_empty(), "{e:?}");
            return;
        }
    };
    let mut keys = HashSet::new();
    let mut last = 0;
    for (line, m) in &parsed.members {
        assert!(*line > last, "line {line} after {last}");
        last = *line;
        assert_eq!(
            normalize_address(&m.address).as_deref(),
            Ok(m.address.as_str())
        );
        assert_eq!(one_line(&m.name), m.name, "{m:?}");
        assert_eq!(one_line(&m.organisation), m.organisation, "{m:?}");
        assert!(keys.insert(m.key()), "{} twice", m.address);
    }
    for p in &parsed.problems {
        assert!(p.line >= 1 && !p.message.is_empty(), "{p:?}");
    }
    let members: Vec<Member> = parsed.members.iter().map(|(_, m)| m.clone()).collect();
    let bytes = write_csv(&members).expect("writing to memory");
    let back = read_csv(&bytes, Role::Staff).expect("an export reads back");
    assert_eq!(back.problems, [], "{:?}", String::from_utf8_lossy(&bytes));
    let back: Vec<Member> = back.members.into_iter().map(|(_, m)| m).collect();
    assert_eq!(back, members, "{:?}", String::from_utf8_lossy(&bytes));
    let d = diff(&members, &members, true);
    assert!(d.is_empty() && d.unchanged == members.len(), "{d:?}");
});
