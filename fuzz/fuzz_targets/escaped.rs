//! The terminal escaping of `poststelle quarantine show`. The function is private to the binary
//! (src/cli/quarantine.rs `escaped`), so this target fuzzes a verbatim COPY of it: keep the
//! two in step when the original changes.
//!
//! Checks: the output is valid UTF-8 (a `String`) with no control character other than `\n`
//! and `\t` (so no ESC, CR, NUL, DEL or C1 control reaches the terminal), and every input byte
//! is accounted for (the output is never shorter than the input with CRLF counted as one).
#![no_main]

use libfuzzer_sys::fuzz_target;

/// Copy of `escaped` in src/cli/quarantine.rs.
fn escaped(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().replace("\r\n", "\n").chars() {
            match c {
                '\n' | '\t' => out.push(c),
                c if c.is_control() => out.push_str(&c.escape_unicode().to_string()),
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let out = escaped(data);
    for c in out.chars() {
        assert!(
            c == '\n' || c == '\t' || !c.is_control(),
            "control character {c:?} reaches the terminal"
        );
    }
    let crlf = data.windows(2).filter(|w| w == b"\r\n").count();
    assert!(out.len() >= data.len() - crlf);
});
