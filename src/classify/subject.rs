//! Subject lines: the ticket tag, and the normalised subject without reply/forward prefixes.
use std::sync::LazyLock;

use regex::Regex;

/// Reply and forward prefixes of German and English mail clients and of the clients our
/// requesters' colleagues abroad use: Re, AW (Antwort), Antw, WG (Weitergeleitet), Fw, Fwd,
/// TR (transféré), SV (svar), VS (vidarebefordrat), RIF (riferimento); optionally counted as
/// `Re[2]:`, `Re(2):` or `AW (2):`; any case; ASCII or full-width colon.
static PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)^\s*(?:re|aw|antw|wg|fwd?|tr|sv|vs|rif)\s*(?:\[\s*\d+\s*\]|\(\s*\d+\s*\))?\s*[:：]",
    )
    .expect("static regex")
});

/// The regex that finds `[<tag>#<digits>]` anywhere in a subject; group 1 is the number.
/// Digits are ASCII: `\d` would take `[Ticket#١٢]` (Arabic-Indic digits), which names no
/// ticket of ours (found by fuzz target `subject`).
pub fn ticket_ref_regex(tag: &str) -> Regex {
    Regex::new(&format!(
        r"(?i)\[\s*{}\s*#\s*([0-9]+)\s*\]",
        regex::escape(tag)
    ))
    .expect("escaped tag gives a valid regex")
}

/// The ticket number in a subject, if it carries our tag.
pub fn ticket_ref(subject: &str, tag: &Regex) -> Option<String> {
    tag.captures(subject)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_string())
}

/// Whether a subject starts with a reply or forward prefix.
pub fn has_reply_prefix(subject: &str) -> bool {
    PREFIX.is_match(subject)
}

/// Strips every reply/forward prefix and every ticket tag, collapses whitespace and trims.
pub fn normalize(subject: &str, tag: &Regex) -> String {
    let without_tags = strip_tags(subject, tag);
    let mut rest: &str = &without_tags;
    while let Some(m) = PREFIX.find(rest) {
        rest = &rest[m.end()..];
    }
    let mut out = String::with_capacity(rest.len());
    for word in rest.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// `subject` with every ticket tag replaced by a blank, including tags that only form when
/// the tags inside them go: `[[Ticket#1]Ticket#2]` leaves nothing, where one `replace_all`
/// left `[ Ticket#2]` (found by fuzz target `subject`). In linear time, where replacing until
/// nothing is left would take a pass per level of nesting.
///
/// A tag holds no bracket but its own two, so the only candidate that a `]` closes is the text
/// from the last unclosed `[` of what is kept so far, and only when no `]` was kept after it.
fn strip_tags(subject: &str, tag: &Regex) -> String {
    if !tag.is_match(subject) {
        return subject.to_string();
    }
    let mut out = String::with_capacity(subject.len());
    // Byte offsets in `out` of the `[` not yet closed, and of the last `]` kept.
    let mut open: Vec<usize> = Vec::new();
    let mut last_close: Option<usize> = None;
    for c in subject.chars() {
        match c {
            '[' => {
                open.push(out.len());
                out.push(c);
            }
            ']' => {
                let start = open.pop();
                out.push(c);
                match start {
                    Some(p) if last_close.is_none_or(|l| l < p) && tag.is_match(&out[p..]) => {
                        out.truncate(p);
                        out.push(' ');
                    }
                    _ => last_close = Some(out.len() - 1),
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> String {
        normalize(s, &ticket_ref_regex("Ticket"))
    }

    #[test]
    fn strips_prefix_chains_of_german_and_english_clients() {
        assert_eq!(n("AW: WG: Re: Drucker defekt"), "Drucker defekt");
        assert_eq!(
            n("RE[2]: aw (3): Fwd:  Drucker   defekt "),
            "Drucker defekt"
        );
        assert_eq!(n("Antw: TR: SV: VS: RIF: Fw: x"), "x");
        assert_eq!(n("Re : Réponse"), "Réponse");
        assert_eq!(n("AW：全角"), "全角");
        assert_eq!(n("Re(2): x"), "x");
    }

    #[test]
    fn keeps_words_that_only_look_like_prefixes() {
        assert_eq!(n("Reisekosten: Antrag"), "Reisekosten: Antrag");
        assert_eq!(n("Award: x"), "Award: x");
        assert_eq!(n("WGS84-Koordinaten"), "WGS84-Koordinaten");
        assert_eq!(n("Termin: AW: später"), "Termin: AW: später");
    }

    #[test]
    fn removes_ticket_tags_anywhere_and_finds_the_number() {
        let tag = ticket_ref_regex("Ticket");
        assert_eq!(n("AW: [Ticket#2026112310000012] WG: Drucker"), "Drucker");
        assert_eq!(n("Drucker [ticket#42]"), "Drucker");
        assert_eq!(
            ticket_ref("Re: [TICKET# 2026112310000012 ] x", &tag).as_deref(),
            Some("2026112310000012")
        );
        assert_eq!(ticket_ref("Ticket 42 ohne Klammern", &tag), None);
        assert_eq!(n("[[Ticket#1]Ticket#2] verschachtelt"), "verschachtelt");
        assert_eq!(n("[ [Ticket#1] x [Ticket#2] ] [x] y]"), "[ x ] [x] y]");
        assert_eq!(n("[[Ticket#1] Ticket#2] [Ticket#3]]"), "]");
        assert_eq!(ticket_ref("[Ticket#\u{663}\u{664}] x", &tag), None);
        let custom = ticket_ref_regex("Vorgang");
        assert_eq!(ticket_ref("[Vorgang#7] x", &custom).as_deref(), Some("7"));
        assert_eq!(ticket_ref("[Ticket#7] x", &custom), None);
    }
}
