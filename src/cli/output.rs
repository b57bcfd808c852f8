//! What the commands print for people: instants in Berlin time, stored text made safe for a
//! terminal, and a closed pipe on stdout taken as the reader's "enough".
use std::io;

use jiff::Timestamp;
use poststelle::diag::for_terminal;

/// An instant for a person: Berlin time to the second (see [`poststelle::time::for_people`]).
pub(super) fn when(t: Timestamp) -> String {
    poststelle::time::for_people(t)
}

/// Stored text from mail on one line: control characters written out (so that a hostile
/// subject cannot drive the terminal), line breaks and tabs as blanks.
pub(super) fn line(s: &str) -> String {
    for_terminal(s.as_bytes()).replace(['\n', '\t'], " ")
}

/// Stored text from mail as an indented block, its control characters written out; trailing
/// blank lines dropped.
pub(super) fn block(s: &str, indent: &str) -> String {
    let text = for_terminal(s.as_bytes());
    let mut out = String::new();
    for l in text.trim_end().lines().map(str::trim_end) {
        if !l.is_empty() {
            out.push_str(indent);
            out.push_str(l);
        }
        out.push('\n');
    }
    out
}

/// A JSON value (an audit record's detail) for a person: `key: value` pairs without quotes and
/// without the empty ones, lists joined by commas.
pub(super) fn detail(v: &serde_json::Value) -> String {
    use serde_json::Value;
    match v {
        Value::Null => String::new(),
        Value::String(s) => line(s),
        Value::Array(items) => items.iter().map(detail).collect::<Vec<_>>().join(", "),
        Value::Object(map) => map
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| match v {
                Value::Object(_) => format!("{k}: ({})", detail(v)),
                _ => format!("{k}: {}", detail(v)),
            })
            .collect::<Vec<_>>()
            .join("; "),
        other => other.to_string(),
    }
}

/// Whether an error is stdout's reader having gone away (`poststelle tickets list | head -1`).
/// Rust ignores SIGPIPE, so such a write fails with EPIPE instead of ending the process; the
/// reader has all it wanted, so that is a success and nothing to report.
pub fn ends_in_closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        let kind = if let Some(io) = cause.downcast_ref::<io::Error>() {
            Some(io.kind())
        } else if let Some(json) = cause.downcast_ref::<serde_json::Error>() {
            json.io_error_kind()
        } else if let Some(csv) = cause.downcast_ref::<csv::Error>() {
            match csv.kind() {
                csv::ErrorKind::Io(io) => Some(io.kind()),
                _ => None,
            }
        } else {
            None
        };
        kind == Some(io::ErrorKind::BrokenPipe)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_details_read_as_words() {
        let v = serde_json::json!({
            "queue": "support", "linked_to": null, "rules": ["a", "b"], "severity": 1
        });
        assert_eq!(detail(&v), "queue: support; rules: a, b; severity: 1");
    }

    #[test]
    fn a_closed_pipe_is_recognised_through_the_context() {
        let e = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe)).context("writing");
        assert!(ends_in_closed_pipe(&e));
        assert!(!ends_in_closed_pipe(&anyhow::anyhow!("no pipe")));
    }
}
