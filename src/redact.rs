//! Taking people out of stored text (issue 20): one address found in any case, in text and in
//! the bytes of raw mail, and every address in an audit record. Pure functions; the store
//! applies them, retention and `privacy erase` decide where.
use std::sync::LazyLock;

use regex::Regex;

/// What an address becomes where it is replaced: still an address (so that what reads the
/// field finds one), in the reserved `.invalid` domain (RFC 2606), so that nothing is ever
/// sent to it.
pub const ANONYMOUS: &str = "anonym@anonymisiert.invalid";

/// What other words erased with an address (its owner's name) become.
pub const ANONYMOUS_TEXT: &str = "[anonymisiert]";

/// An address as it is searched for: trimmed and ASCII-lower-cased. Mail systems treat the
/// domain without regard to case and nearly all the local part too; non-ASCII letters are
/// compared as they are.
pub fn needle(address: &str) -> String {
    address.trim().to_ascii_lowercase()
}

/// Where `needle` (ASCII-lower-cased, see [`needle`]) occurs in `haystack`, ASCII case
/// ignored: the start of each occurrence, not overlapping.
pub fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    if needle.is_empty() || haystack.len() < needle.len() {
        return out;
    }
    // memchr finds candidates by the first byte in both cases, so that a mail of megabytes is
    // read at memory speed; only candidates are compared in full.
    let first = needle[0];
    let upper = first.to_ascii_uppercase();
    let mut i = 0;
    while i + needle.len() <= haystack.len() {
        let found = if first == upper {
            memchr::memchr(first, &haystack[i..])
        } else {
            memchr::memchr2(first, upper, &haystack[i..])
        };
        let Some(off) = found else { break };
        let at = i + off;
        if at + needle.len() > haystack.len() {
            break;
        }
        if haystack[at..at + needle.len()].eq_ignore_ascii_case(needle)
            && alone(haystack, at, at + needle.len())
        {
            out.push(at);
            i = at + needle.len();
        } else {
            i = at + 1;
        }
    }
    out
}

/// Whether `haystack[start..end]` is a whole address, not part of a longer one:
/// `anna@example.org` is not in `joanna@example.org` nor in `anna@example.org.uk`, but is in
/// `<anna@example.org>` and at the end of a sentence (`… anna@example.org.`).
fn alone(haystack: &[u8], start: usize, end: usize) -> bool {
    // RFC 5322 atext and the dot: what may stand before the address in a longer local part.
    let local = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+/=?^_`{|}~.-".contains(&b);
    let domain = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
    let before = start
        .checked_sub(1)
        .and_then(|i| haystack.get(i))
        .is_some_and(|&b| local(b));
    let after = match haystack.get(end) {
        Some(&b) if domain(b) => true,
        Some(b'.') => haystack.get(end + 1).is_some_and(|&b| domain(b)),
        _ => false,
    };
    !before && !after
}

/// `haystack` with every occurrence of `needle` (ASCII case ignored) replaced by
/// `replacement`; `None` when there is none.
pub fn replace_bytes(haystack: &[u8], needle: &[u8], replacement: &[u8]) -> Option<Vec<u8>> {
    let hits = find_all(haystack, needle);
    if hits.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut last = 0;
    for at in hits {
        out.extend_from_slice(&haystack[last..at]);
        out.extend_from_slice(replacement);
        last = at + needle.len();
    }
    out.extend_from_slice(&haystack[last..]);
    Some(out)
}

/// [`replace_bytes`] on text; `needle` and `replacement` are text, so the result is too.
pub fn replace_text(haystack: &str, needle: &str, replacement: &str) -> Option<String> {
    replace_bytes(
        haystack.as_bytes(),
        needle.as_bytes(),
        replacement.as_bytes(),
    )
    .map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Anything that looks like an address: what anonymising a ticket replaces in its audit
/// records and filing reasons, whoever the address belongs to.
static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"[^\s"'<>()\[\],;:@\\]+@[^\s"'<>()\[\],;:@\\]+\.[^\s"'<>()\[\],;:@\\]+"#)
        .expect("the address pattern compiles")
});

/// `text` with every address in it replaced by [`ANONYMOUS`]; `None` when there is none.
pub fn anonymise_addresses(text: &str) -> Option<String> {
    ADDRESS
        .is_match(text)
        .then(|| ADDRESS.replace_all(text, ANONYMOUS).into_owned())
}

/// Keys of audit records whose values are people's words or names, not decisions: emptied
/// when a ticket is anonymised.
const PERSONAL_KEYS: [&str; 5] = ["subject", "name", "requester_name", "from_name", "text"];

/// An audit record's detail with every address replaced and subjects and names emptied; the
/// rest (numbers, queues, classes, states, reasons in words) stays. `None` when nothing
/// changed.
pub fn anonymise_json(detail: &str) -> Option<String> {
    let Ok(mut v) = serde_json::from_str::<serde_json::Value>(detail) else {
        // Not JSON (never written so): treated as text.
        return anonymise_addresses(detail);
    };
    anonymise_value(&mut v, None).then(|| v.to_string())
}

fn anonymise_value(v: &mut serde_json::Value, key: Option<&str>) -> bool {
    use serde_json::Value;
    match v {
        // A Message-ID names a mail, not a person (`<…@mail.example.org>`): kept, so that the
        // audit still tells which mail a line is about.
        Value::String(_) if key.is_some_and(|k| k.ends_with("message_id")) => false,
        Value::String(s) => {
            if key.is_some_and(|k| PERSONAL_KEYS.contains(&k)) && !s.is_empty() {
                s.clear();
                true
            } else if let Some(a) = anonymise_addresses(s) {
                *s = a;
                true
            } else {
                false
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |changed, i| anonymise_value(i, key) | changed),
        Value::Object(map) => map.iter_mut().fold(false, |changed, (k, i)| {
            anonymise_value(i, Some(k)) | changed
        }),
        _ => false,
    }
}

/// `text` with `needle` replaced by [`ANONYMOUS`] where it is the whole value of a JSON
/// string or part of one; JSON stays JSON because the replacement needs no escaping.
pub fn erase_in_text(text: &str, needle: &str) -> Option<String> {
    replace_text(text, needle, ANONYMOUS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_an_address_in_any_case_and_around_nul_bytes() {
        let mail = b"From: Anna <Anna.Schmidt@Example.ORG>\r\n\0x anna.schmidt@example.org";
        let hits = find_all(mail, b"anna.schmidt@example.org");
        assert_eq!(hits.len(), 2);
        let out = replace_bytes(mail, b"anna.schmidt@example.org", ANONYMOUS.as_bytes())
            .expect("replaced");
        assert!(find_all(&out, b"anna.schmidt@example.org").is_empty());
        assert!(out.starts_with(b"From: Anna <anon"));
        assert_eq!(replace_bytes(b"nothing here", b"anna@x.org", b"y"), None);
    }

    #[test]
    fn a_longer_address_is_another_address() {
        let n = b"anna@example.org";
        assert!(find_all(b"joanna@example.org", n).is_empty());
        assert!(find_all(b"anna@example.org.uk", n).is_empty());
        assert!(find_all(b"anna@example.organisation", n).is_empty());
        assert_eq!(find_all(b"mail anna@example.org.", n), vec![5]);
        assert_eq!(find_all(b"<ANNA@example.org>", n), vec![1]);
        assert_eq!(find_all(b"\"anna@example.org\"", n), vec![1]);
    }

    #[test]
    fn overlapping_and_truncated_candidates_are_no_match() {
        assert_eq!(find_all(b"a a a", b"a"), vec![0, 2, 4]);
        assert!(find_all(b"anna@example.or", b"anna@example.org").is_empty());
        assert_eq!(find_all(b"(ANNA@X.ORG)", b"anna@x.org"), vec![1]);
    }

    #[test]
    fn anonymising_an_audit_record_keeps_decisions_and_drops_people() {
        let detail = r#"{"number":"2026112310000012","queue":"support","subject":"Drucker von Frau Schmidt","reply":{"state":"queued","to":"anna@example.org"},"why":"anna@example.org is one of our own addresses","rules":["a"],"message_id":"<x@mail.example.org>"}"#;
        let out = anonymise_json(detail).expect("changed");
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(v["number"], "2026112310000012");
        assert_eq!(v["queue"], "support");
        assert_eq!(v["message_id"], "<x@mail.example.org>");
        assert_eq!(v["subject"], "");
        assert_eq!(v["reply"]["to"], ANONYMOUS);
        assert_eq!(
            v["why"],
            format!("{ANONYMOUS} is one of our own addresses").as_str()
        );
        assert_eq!(anonymise_json(r#"{"queue":"support"}"#), None);
    }

    #[test]
    fn erasing_in_json_text_keeps_it_json() {
        let text = r#"{"list":"nutzer","address":"Anna@Example.org"}"#;
        let out = erase_in_text(text, &needle(" anna@example.ORG ")).expect("changed");
        let v: serde_json::Value = serde_json::from_str(&out).expect("JSON");
        assert_eq!(v["address"], ANONYMOUS);
    }
}
