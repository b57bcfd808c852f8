//! `notify::single_line`, which makes header text (names, subjects) one line for template
//! contexts. For any string the output holds no control character, no U+2028/U+2029, and
//! neither starts nor ends with a blank (nor has two blanks in a row).
#![no_main]

use libfuzzer_sys::fuzz_target;
use poststelle::notify::single_line;

fuzz_target!(|text: &str| {
    let out = single_line(text);
    for c in out.chars() {
        assert!(
            !c.is_control(),
            "control character {c:?} in {out:?} (from {text:?})"
        );
        assert!(
            c != '\u{2028}' && c != '\u{2029}',
            "line/paragraph separator in {out:?} (from {text:?})"
        );
    }
    assert!(
        !out.starts_with(' '),
        "leading blank in {out:?} (from {text:?})"
    );
    assert!(
        !out.ends_with(' '),
        "trailing blank in {out:?} (from {text:?})"
    );
    assert!(
        !out.contains("  "),
        "two blanks in a row in {out:?} (from {text:?})"
    );
    // Idempotent: a second pass changes nothing.
    assert_eq!(single_line(&out), out, "not idempotent (from {text:?})");
});
