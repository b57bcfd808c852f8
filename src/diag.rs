//! Problems found while loading configuration, rules and contact lists, phrased for the person
//! who has to fix them: which file, which line, what is wrong and what to do; and problems with
//! the directories and the database poststelle works in, phrased the same way.
use std::fmt;
use std::io;
use std::ops::Range;
use std::path::Path;
use std::sync::LazyLock;

use regex::Regex;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue, ValueDeserializer};

/// One problem in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based line, when the problem can be pinned to one.
    pub line: Option<usize>,
    pub message: String,
    pub fix: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{}: {}", self.file, line, self.message)?,
            None => write!(f, "{}: {}", self.file, self.message)?,
        }
        if !self.fix.is_empty() {
            write!(f, "\n    fix: {}", self.fix)?;
        }
        Ok(())
    }
}

/// All problems found in one load, so that `poststelle check` can show every one at once.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(
        &mut self,
        file: &SourceText,
        offset: Option<usize>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.0.push(Diagnostic {
            file: file.name.clone(),
            line: offset.map(|o| file.line_of(o)),
            message: message.into(),
            fix: fix.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for d in &self.0 {
            writeln!(f, "error: {d}")?;
        }
        write!(f, "{} problem(s) found", self.0.len())
    }
}

impl std::error::Error for Diagnostics {}

/// The text of a loaded file with the name to show in messages.
#[derive(Debug, Clone)]
pub struct SourceText {
    pub name: String,
    pub text: String,
}

/// The line breaks in `text[range]`: LF, CRLF, and a CR alone, which ends a row for the CSV
/// reader too (Excel's "CSV (Macintosh)"; counting LF only put every row of such a file on
/// line 1, found by fuzz target `lists`).
pub fn line_breaks(text: &[u8], range: std::ops::Range<usize>) -> usize {
    let lf = memchr::memchr_iter(b'\n', &text[range.clone()]).count();
    let lone_cr = memchr::memchr_iter(b'\r', &text[range.clone()])
        .filter(|&i| text.get(range.start + i + 1) != Some(&b'\n'))
        .count();
    lf + lone_cr
}

impl SourceText {
    /// 1-based line number of a byte offset. A CR alone ends a line too: a CSV contact list
    /// with old Mac line ends has its rows on lines of their own.
    pub fn line_of(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        line_breaks(self.text.as_bytes(), 0..end) + 1
    }

    /// Reads the file as TOML into `T`, reporting every problem rather than the first: all
    /// syntax errors (then nothing is read), and each unknown key, value of the wrong kind or
    /// table lacking a key, which is then left out and the rest read again, so that the caller
    /// can go on and check what was read (regexes, queue names). `None` when nothing usable
    /// remains. Hints name the section of README.md that documents the keys (`docs`).
    pub fn deserialize<T: DeserializeOwned>(
        &self,
        docs: &Docs<'_>,
        diags: &mut Diagnostics,
    ) -> Option<T> {
        let (root, syntax) = DeTable::parse_recoverable(&self.text);
        if !syntax.is_empty() {
            for e in &syntax {
                self.toml_error(e, docs.section, diags);
            }
            return None;
        }
        let mut root = Spanned::new(root.span(), DeValue::Table(root.into_inner()));
        let mut left_out: Vec<String> = Vec::new();
        // Found in the order of the deserializer (keys sorted by name), shown in line order.
        let mut found = Diagnostics::default();
        let read = loop {
            let e = match T::deserialize(ValueDeserializer::from(root.clone())) {
                Ok(t) => break Some(t),
                Err(e) => e,
            };
            let Some(span) = e.span() else {
                self.toml_error(&e, docs.section, &mut found);
                break None;
            };
            // A required key left out for its bad value was reported with that value.
            let message = e.message();
            let follows = left_out.iter().any(|k| message.contains(&format!("`{k}`")));
            if !(message.starts_with("missing field") && follows) {
                self.toml_error(&e, docs.section_of(&root, &span), &mut found);
            }
            match remove_covering(root.get_mut(), &span) {
                Some(Removed::Entry(key)) => left_out.push(key),
                Some(Removed::Element) => {}
                None => break None,
            }
        };
        found.0.sort_by_key(|d| d.line);
        diags.0.extend(found.0);
        read
    }

    /// Turns a TOML syntax or schema error into a diagnostic with the line it points at.
    fn toml_error(&self, err: &toml::de::Error, section: &str, diags: &mut Diagnostics) {
        let message = in_words(err.message().trim());
        let fix = toml_fix(&message, section);
        diags.push(self, err.span().map(|s| s.start), message, fix);
    }
}

/// Where README.md documents the keys of a kind of file: one section, or one per top-level key.
#[derive(Debug, Clone, Copy)]
pub struct Docs<'a> {
    pub section: &'a str,
    /// Top-level keys documented in a section of their own.
    pub by_key: &'a [(&'a str, &'a str)],
}

impl Docs<'_> {
    fn section_of(&self, root: &Spanned<DeValue<'_>>, span: &Range<usize>) -> &str {
        let Some(table) = root.get_ref().as_table() else {
            return self.section;
        };
        table
            .iter()
            .find(|(k, v)| covers(&k.span(), span) || holds(v, span))
            .and_then(|(k, _)| {
                self.by_key
                    .iter()
                    .find(|(key, _)| *key == k.get_ref().as_ref())
            })
            .map_or(self.section, |(_, section)| section)
    }
}

/// What [`remove_covering`] took out.
enum Removed {
    /// A table's key with its value.
    Entry(String),
    /// An element of an array (of tables, or of values).
    Element,
}

fn covers(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end
}

/// Whether `span` lies in a value, any of its keys or elements (the span of an array of
/// tables does not cover the tables' text).
fn holds(v: &Spanned<DeValue<'_>>, span: &Range<usize>) -> bool {
    covers(&v.span(), span)
        || match v.get_ref() {
            DeValue::Table(t) => t
                .iter()
                .any(|(k, c)| covers(&k.span(), span) || holds(c, span)),
            DeValue::Array(a) => a.iter().any(|i| holds(i, span)),
            _ => false,
        }
}

/// Removes the innermost key (with its value) or array element whose text covers `span`.
fn remove_covering(v: &mut DeValue<'_>, span: &Range<usize>) -> Option<Removed> {
    match v {
        DeValue::Table(t) => {
            for (_, child) in t.iter_mut() {
                if let Some(r) = remove_covering(child.get_mut(), span) {
                    return Some(r);
                }
            }
            let key = t
                .iter()
                .find(|(k, c)| covers(&k.span(), span) || covers(&c.span(), span))
                .map(|(k, _)| k.get_ref().to_string())?;
            t.remove(key.as_str());
            Some(Removed::Entry(key))
        }
        DeValue::Array(a) => {
            for item in a.iter_mut() {
                if let Some(r) = remove_covering(item.get_mut(), span) {
                    return Some(r);
                }
            }
            let before = a.len();
            let items = std::mem::replace(a, DeArray::new());
            *a = items
                .into_iter()
                .filter(|i| !covers(&i.span(), span))
                .collect();
            (a.len() < before).then_some(Removed::Element)
        }
        _ => None,
    }
}

/// A serde message with Rust's type names in words: `expected u8` is "expected a whole number
/// from 0 to 255", `struct RawQueue` "a table", `sequence` "a list".
fn in_words(message: &str) -> String {
    static TYPES: LazyLock<Option<Regex>> = LazyLock::new(|| {
        Regex::new(
            r"\b(u8|u16|u32|u64|usize|i8|i16|i32|i64|isize|f32|f64|struct \w+|enum \w+|sequence|map)\b",
        )
        .ok()
    });
    let Some(re) = TYPES.as_ref() else {
        return message.to_string();
    };
    re.replace_all(message, |c: &regex::Captures<'_>| match &c[1] {
        "u8" => "a whole number from 0 to 255",
        "u16" => "a whole number from 0 to 65535",
        "u32" => "a whole number from 0 to 4294967295",
        "u64" | "usize" => "a whole number from 0 up",
        "f32" | "f64" => "a number",
        "sequence" => "a list",
        t if t.starts_with('i') => "a whole number",
        _ => "a table",
    })
    .into_owned()
}

fn toml_fix(message: &str, section: &str) -> String {
    let see = format!("see README.md, section '{section}'");
    if message.starts_with("unknown field") {
        format!("remove or rename the key; the keys allowed here are listed above ({see})")
    } else if message.starts_with("unknown variant") {
        format!("use one of the values listed above ({see})")
    } else if message.starts_with("missing field") {
        format!("add the missing key ({see})")
    } else if message.starts_with("invalid") || message.contains("expected") {
        format!("give the value the kind named above ({see})")
    } else {
        "correct the TOML syntax at this line (https://toml.io)".into()
    }
}

/// A light syntax check; the mail library validates addresses again when it sends. A
/// U+FFFD (an undecodable byte, or a NUL) makes an address invalid.
pub fn is_plausible_address(addr: &str) -> bool {
    let addr = addr.trim();
    match addr.rsplit_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !addr.chars().any(|c| {
                    c.is_whitespace()
                        || c.is_control()
                        || c == '\u{FFFD}'
                        || "<>,;\"()[]".contains(c)
                })
        }
        None => false,
    }
}

/// A diagnostic when `addr` is not a plausible address.
pub fn check_address(src: &SourceText, addr: &Spanned<String>, diags: &mut Diagnostics) {
    if !is_plausible_address(addr.get_ref()) {
        diags.push(
            src,
            Some(addr.span().start),
            format!("\"{}\" is not an e-mail address", addr.get_ref()),
            "write a plain address such as \"support@example.org\" (no name, no angle brackets)",
        );
    }
}

/// Something outside the configuration files that stops poststelle — a directory it cannot
/// write, a database it cannot reach — phrased like a [`Diagnostic`]: what, where, and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}\n    fix: {fix}")]
pub struct Problem {
    pub message: String,
    pub fix: String,
}

/// What a path is meant to be, for [`Problem::at_path`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wanted {
    Directory,
    File,
}

impl Problem {
    /// Explains `err`, met trying to `action` at `path` (`"create the data directory"`): a
    /// file where a directory must be, missing permissions (the owner and mode of the
    /// directory or file that refused, and the user poststelle runs as) or a read-only file
    /// system, each with what to do.
    pub fn at_path(action: &str, path: &Path, wanted: Wanted, err: &io::Error) -> Problem {
        let shown = path.display();
        if matches!(
            err.kind(),
            io::ErrorKind::AlreadyExists | io::ErrorKind::NotADirectory
        ) && let Some(file) = file_in_the_way(path, wanted)
        {
            return Problem {
                message: format!(
                    "cannot {action} {shown}: {} is a file, not a directory",
                    file.display()
                ),
                fix: format!(
                    "move the file {} away, or name a directory in the configuration \
                     (or on the command line)",
                    file.display()
                ),
            };
        }
        let refusing = path.ancestors().find(|p| p.symlink_metadata().is_ok());
        match (err.kind(), refusing) {
            (io::ErrorKind::PermissionDenied, Some(at)) => {
                let uid = process_uid();
                let mut message = format!(
                    "cannot {action} {shown}: permission denied: {}",
                    describe(at)
                );
                if let Some(uid) = uid {
                    message.push_str(&format!(", and poststelle runs as uid {uid}"));
                }
                let fix = if uid.is_some_and(|uid| mode_grants(uid, at)) {
                    message.push_str(
                        " — so not the mode refuses but a read-only or special file system, \
                         an immutable attribute or a security policy (SELinux, AppArmor)",
                    );
                    let at = at.display();
                    format!(
                        "look at the mount (`findmnt -T {at}`), the attributes (`lsattr -d {at}`) \
                         and the audit log for SELinux/AppArmor denials, or keep the data \
                         elsewhere, e.g. in /var/lib/poststelle"
                    )
                } else {
                    permission_fix(path, at, wanted)
                };
                Problem { message, fix }
            }
            (io::ErrorKind::ReadOnlyFilesystem, at) => {
                let at = at.unwrap_or(path).display();
                Problem {
                    message: format!("cannot {action} {shown}: {at} is on a read-only file system"),
                    fix: format!(
                        "a systemd service with ProtectSystem=strict writes only to its \
                         StateDirectory= (the shipped unit's: /var/lib/poststelle) and to \
                         ReadWritePaths=: keep the data there, or add ReadWritePaths={at} to \
                         the unit"
                    ),
                }
            }
            _ => Problem {
                message: format!("cannot {action} {shown}: {err}"),
                fix: "check the path in the configuration (or on the command line) and that \
                      the user poststelle runs as may use it"
                    .into(),
            },
        }
    }
}

/// The file that stands where `path` or one of its parents must be a directory.
fn file_in_the_way(path: &Path, wanted: Wanted) -> Option<&Path> {
    let mut candidates = path.ancestors();
    if wanted == Wanted::File {
        candidates.next();
    }
    candidates
        .filter(|p| !p.as_os_str().is_empty())
        .find(|p| p.metadata().is_ok_and(|m| !m.is_dir()))
}

/// `/x belongs to uid 0 with mode 0755`.
fn describe(at: &Path) -> String {
    use std::os::unix::fs::MetadataExt;
    match at.metadata() {
        Ok(m) => format!(
            "{} belongs to uid {} with mode {:04o}",
            at.display(),
            m.uid(),
            m.mode() & 0o7777
        ),
        Err(_) => format!("{} is not accessible", at.display()),
    }
}

/// Whether owner and mode let `uid` read and write `at` (and enter it, for a directory): root
/// always, its owner by the owner's bits. When they do, something else refuses — a mount, a
/// security module or a special file system.
fn mode_grants(uid: u32, at: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(m) = at.metadata() else {
        return false;
    };
    let needed = if m.is_dir() { 0o700 } else { 0o600 };
    uid == 0 || (uid == m.uid() && m.mode() & needed == needed)
}

/// The effective uid of this process: the owner of its `/proc` directory.
fn process_uid() -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

fn permission_fix(path: &Path, at: &Path, wanted: Wanted) -> String {
    let service = "as a systemd service with DynamicUser=, keep the data directory in \
                   StateDirectory= (the shipped unit's: /var/lib/poststelle), whose owner \
                   systemd sets";
    let at_shown = at.display();
    if at == path || (wanted == Wanted::File && path.parent() == Some(at)) {
        return format!(
            "give {at_shown} to the user poststelle runs as (`chown poststelle: {at_shown}`), \
             or run poststelle as its owner; {service}"
        );
    }
    let dir = match wanted {
        Wanted::Directory => path,
        Wanted::File => path.parent().unwrap_or(path),
    }
    .display();
    format!(
        "the user poststelle runs as must reach and write {dir}: `install -d -o poststelle -m \
         0750 {dir}` creates it for that user, or run poststelle as a user that may; {service}"
    )
}

/// Line and paragraph separators and the invisible format characters (zero-width, bidi
/// overrides such as U+202E, the BOM) that can reorder or hide text on a screen without being
/// control characters.
pub fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200B}'..='\u{200F}'
            | '\u{2028}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

/// A message for a terminal: text as it is, line ends as line ends, and every other control
/// character (escape sequences, NUL, backspace) and every byte that is not UTF-8 written out
/// as `\u{1b}` or `\xNN`.
pub fn for_terminal(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().replace("\r\n", "\n").chars() {
            match c {
                '\n' | '\t' => out.push(c),
                c if c.is_control() || is_invisible_format(c) => {
                    out.push_str(&c.escape_unicode().to_string())
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{for_terminal, in_words};

    #[test]
    fn rust_type_names_become_words() {
        assert_eq!(
            in_words("invalid value: integer `300`, expected u8"),
            "invalid value: integer `300`, expected a whole number from 0 to 255"
        );
        assert_eq!(
            in_words("invalid type: sequence, expected struct RawQueue"),
            "invalid type: a list, expected a table"
        );
        assert_eq!(
            in_words("unknown field `prio`, expected one of `name`, `map_x`"),
            "unknown field `prio`, expected one of `name`, `map_x`"
        );
    }

    #[test]
    fn control_characters_and_invalid_bytes_are_written_out() {
        assert_eq!(
            for_terminal(b"Subject: Gr\xc3\xbc\xc3\x9fe\r\n\x1b[2J\x00x\xff\n"),
            "Subject: Grüße\n\\u{1b}[2J\\u{0}x\\xff\n"
        );
    }
}
