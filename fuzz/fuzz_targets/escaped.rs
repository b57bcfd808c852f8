//! The terminal escaping of `poststelle quarantine show` (`poststelle::diag::for_terminal`).
//!
//! Checks: the output is valid UTF-8 (a `String`) with no control character other than `\n`
//! and `\t` (so no ESC, CR, NUL, DEL or C1 control reaches the terminal), and every input byte
//! is accounted for (the output is never shorter than the input with CRLF counted as one).
#![no_main]

use libfuzzer_sys::fuzz_target;
use poststelle::diag::for_terminal;

fuzz_target!(|data: &[u8]| {
    let out = for_terminal(data);
    for c in out.chars() {
        assert!(
            c == '\n' || c == '\t' || !(c.is_control() || poststelle::diag::is_invisible_format(c)),
            "control character {c:?} reaches the terminal"
        );
    }
    let crlf = data.windows(2).filter(|w| w == b"\r\n").count();
    assert!(out.len() >= data.len() - crlf);
});
