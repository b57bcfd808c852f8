//! Distribution lists (Verteiler), without the store: who a member is (address, name, role,
//! organisation, language), what a list may be called, the CSV a spreadsheet exports and the
//! CSV we give back, and what an import would change. `store::lists` keeps the lists.
//!
//! Addresses: the domain is lower-cased, the local part kept as written (RFC 5321 lets a server
//! tell `Anna` from `anna`, and we send to what the list says); two addresses that differ only
//! in case are one member (no server in practice tells them apart), compared by [`address_key`].
use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

use crate::diag::{is_plausible_address, line_breaks};

/// What a member is to the platform; notices may differ by role (MISSION §5: end users, the
/// client, the municipalities).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    EndUser,
    Auftraggeber,
    Municipality,
    Staff,
}

impl Role {
    pub const ALL: [Role; 4] = [
        Role::EndUser,
        Role::Auftraggeber,
        Role::Municipality,
        Role::Staff,
    ];

    /// The stored and machine-readable name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::EndUser => "end_user",
            Role::Auftraggeber => "auftraggeber",
            Role::Municipality => "municipality",
            Role::Staff => "staff",
        }
    }

    /// The German word a spreadsheet uses, as exported.
    pub fn german(self) -> &'static str {
        match self {
            Role::EndUser => "Endnutzer",
            Role::Auftraggeber => "Auftraggeber",
            Role::Municipality => "Kommune",
            Role::Staff => "Mitarbeiter",
        }
    }

    /// A role as a person writes it, German or English, any case, `-`/`_`/blanks ignored.
    pub fn parse(text: &str) -> Option<Role> {
        Some(match fold(text).as_str() {
            "enduser" | "endusers" | "user" | "endnutzer" | "endnutzerin" | "endnutzende"
            | "nutzer" | "nutzerin" | "endanwender" | "endanwenderin" | "anwender"
            | "anwenderin" | "benutzer" | "benutzerin" => Role::EndUser,
            "auftraggeber" | "auftraggeberin" | "client" | "customer" | "kunde" => {
                Role::Auftraggeber
            }
            "municipality" | "municipalities" | "kommune" | "kommunen" | "gemeinde" | "stadt"
            | "landkreis" | "kreis" => Role::Municipality,
            "staff" | "employee" | "mitarbeiter" | "mitarbeiterin" | "mitarbeitende"
            | "personal" => Role::Staff,
            _ => return None,
        })
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The language of a member's notices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Language {
    De,
    En,
}

impl Language {
    pub fn as_str(self) -> &'static str {
        match self {
            Language::De => "de",
            Language::En => "en",
        }
    }

    pub fn parse(text: &str) -> Option<Language> {
        match fold(text).as_str() {
            "de" | "deu" | "ger" | "deutsch" | "german" => Some(Language::De),
            "en" | "eng" | "englisch" | "english" => Some(Language::En),
            _ => None,
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One member of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Member {
    /// As written, its domain lower-cased ([`normalize_address`]).
    pub address: String,
    pub name: String,
    pub role: Role,
    pub organisation: String,
    pub language: Language,
}

impl Member {
    /// The key two spellings of one address share.
    pub fn key(&self) -> String {
        address_key(&self.address)
    }

    /// What differs from `other`, field by field: `role end_user → staff`.
    pub fn changes_from(&self, before: &Member) -> Vec<String> {
        let mut out = Vec::new();
        let mut field = |what: &str, old: &str, new: &str| {
            if old != new {
                out.push(format!("{what} {} → {}", shown(old), shown(new)));
            }
        };
        field("address", &before.address, &self.address);
        field("name", &before.name, &self.name);
        field("role", before.role.as_str(), self.role.as_str());
        field("organisation", &before.organisation, &self.organisation);
        field("language", before.language.as_str(), self.language.as_str());
        out
    }
}

fn shown(s: &str) -> String {
    if s.is_empty() {
        "(none)".into()
    } else {
        format!("\"{s}\"")
    }
}

/// A name or organisation as a list keeps it: one line (a line break typed into a spreadsheet
/// cell, a tab, a control character become one blank), trimmed. It will stand in a header of
/// every notice, where a line break does not belong.
pub fn one_line(text: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The case-insensitive key of an address.
pub fn address_key(address: &str) -> String {
    address.trim().to_lowercase()
}

/// An address as a list keeps it: trimmed, without `mailto:` or angle brackets, the domain
/// lower-cased; an error in words when it is no address mail can be sent to.
pub fn normalize_address(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    let bare = trimmed
        .strip_prefix("mailto:")
        .unwrap_or(trimmed)
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    let Some((local, domain)) = bare.rsplit_once('@') else {
        return Err(format!("\"{trimmed}\" is not an e-mail address (no @)"));
    };
    let address = format!("{local}@{}", domain.to_lowercase());
    // The light check says what a person sees (a blank, a comma); lettre's is the one the
    // sender applies, so an address it refuses could never be delivered.
    if !is_plausible_address(&address) || address.parse::<lettre::Address>().is_err() {
        return Err(format!("\"{trimmed}\" is not an e-mail address"));
    }
    Ok(address)
}

/// The longest list name: it becomes a label of the `List-Id` header.
pub const MAX_NAME: usize = 64;

/// A list name as stored: lower-case letters, digits, `-` and `_`, beginning with a letter or a
/// digit, at most [`MAX_NAME`] characters; upper-case letters are taken as lower-case, so that
/// `Kommunen` and `kommunen` are one list.
pub fn check_list_name(text: &str) -> Result<String, String> {
    let name = text.trim().to_ascii_lowercase();
    let first_ok = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if name.is_empty() {
        Err("a list name is empty".into())
    } else if !first_ok || !rest_ok || name.len() > MAX_NAME {
        Err(format!(
            "\"{}\" is no list name: use letters a-z, digits, '-' and '_', beginning with a \
             letter or digit, at most {MAX_NAME} characters",
            text.trim()
        ))
    } else {
        Ok(name)
    }
}

/// Lower-case ASCII letters and digits of `text`, umlauts spelt out (`E-Mail-Adresse` →
/// `emailadresse`, `Behörde` → `behoerde`): how column names and values are compared.
fn fold(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.trim().chars().flat_map(char::to_lowercase) {
        match c {
            'ä' => out.push_str("ae"),
            'ö' => out.push_str("oe"),
            'ü' => out.push_str("ue"),
            'ß' => out.push_str("ss"),
            c if c.is_ascii_alphanumeric() => out.push(c),
            _ => {}
        }
    }
    out
}

/// What a column of an imported file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Address,
    /// `Adresse`/`address`: the address only when no column says e-mail; beside one it is the
    /// postal address.
    MaybeAddress,
    Name,
    FirstName,
    LastName,
    Role,
    Organisation,
    Language,
}

impl Column {
    fn of(header: &str) -> Option<Column> {
        Some(match fold(header).as_str() {
            "email" | "emailadresse" | "emailaddress" | "emailadr" | "mail" | "mailadresse"
            | "mailaddress" | "emailempfaenger" => Column::Address,
            "adresse" | "address" | "empfaenger" | "recipient" => Column::MaybeAddress,
            "name" | "vollername" | "fullname" | "anzeigename" | "displayname"
            | "ansprechpartner" | "ansprechpartnerin" | "kontakt" | "contact" => Column::Name,
            "vorname" | "firstname" | "givenname" => Column::FirstName,
            "nachname" | "familienname" | "lastname" | "surname" | "familyname" => Column::LastName,
            "rolle" | "role" => Column::Role,
            "organisation" | "organization" | "org" | "firma" | "company" | "behoerde"
            | "dienststelle" | "institution" | "agency" | "kommune" | "gemeinde" => {
                Column::Organisation
            }
            "sprache" | "language" | "lang" => Column::Language,
            _ => return None,
        })
    }
}

/// The columns a header may name, for messages.
pub const COLUMNS_HELP: &str = "E-Mail (or E-Mail-Adresse, email, address), Name (or Vorname and \
    Nachname), Rolle/role, Organisation/organization, Sprache/language";

/// A problem with one row of an imported file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowProblem {
    /// The file's line the row begins on, counted from 1.
    pub line: u64,
    pub message: String,
}

impl fmt::Display for RowProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A file that cannot be read as a list at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}\n    fix: {fix}")]
pub struct FileError {
    pub line: u64,
    pub message: String,
    pub fix: String,
}

/// A file read as a list.
#[derive(Debug, Clone, Default)]
pub struct ParsedFile {
    /// The good rows with the line each begins on, in file order, one per address.
    pub members: Vec<(u64, Member)>,
    /// The rows left out, and why.
    pub problems: Vec<RowProblem>,
    /// How the file was read: `windows-1252`, `UTF-8 with BOM`, …
    pub encoding: &'static str,
    pub delimiter: char,
    /// Header names that are not a column of a list; their values are not imported.
    pub ignored_columns: Vec<String>,
}

/// Decodes a spreadsheet export: UTF-8 with a BOM, UTF-16 with a BOM (Excel's "Unicode
/// text"), UTF-8, else windows-1252 (German Excel's "CSV (Trennzeichen-getrennt)").
fn decode(bytes: &[u8]) -> (String, &'static str) {
    if let Some((enc, bom)) = encoding_rs::Encoding::for_bom(bytes) {
        let (text, _) = enc.decode_without_bom_handling(&bytes[bom..]);
        let name = match enc.name() {
            "UTF-8" => "UTF-8 with BOM",
            "UTF-16LE" => "UTF-16LE",
            _ => "UTF-16BE",
        };
        return (text.into_owned(), name);
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), "UTF-8"),
        Err(_) => (
            encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(bytes)
                .0
                .into_owned(),
            "windows-1252",
        ),
    }
}

/// Reads a list from a CSV file as it comes out of a spreadsheet: `,`, `;` or tab separated
/// (detected), UTF-8 with or without BOM, UTF-16 with BOM, or windows-1252 (detected), fields
/// in double quotes as needed, a header row naming the columns in German or English. Rows
/// that name no role get `default_role`, no language German.
///
/// Every row with a problem is reported by its line and left out: an address that is none or
/// is missing, a role or language not known, more fields than the header has (a value with the
/// delimiter in it, unquoted), an address a row before has already (the first one counts).
pub fn read_csv(bytes: &[u8], default_role: Role) -> Result<ParsedFile, FileError> {
    let (text, encoding) = decode(bytes);
    // The reader skips blank lines; Excel's `sep=` line is blanked so that it skips that
    // too, and line numbers stay the file's.
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    let delimiter = crate::files::spreadsheet_delimiter(first);
    let body = match text.find(first) {
        Some(start) if first.trim().starts_with("sep=") => {
            format!("{}{}", &text[..start], &text[start + first.len()..])
        }
        _ => text,
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(body.as_bytes());
    let header_error = |line: u64, message: String| FileError {
        line,
        message,
        fix: format!("begin the file with a header row naming the columns: {COLUMNS_HELP}"),
    };
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => return Err(header_error(1, format!("unreadable: {e}"))),
    };
    let mut lines = LineCounter::new(&body);
    let header_line = lines.line_at(headers.position());
    let mut columns: Vec<Option<Column>> = headers.iter().map(Column::of).collect();
    if !columns.contains(&Some(Column::Address)) {
        // No column says e-mail: `Adresse` is the address.
        for c in columns.iter_mut() {
            if *c == Some(Column::MaybeAddress) {
                *c = Some(Column::Address);
            }
        }
    }
    let ignored_columns: Vec<String> = headers
        .iter()
        .zip(&columns)
        .filter(|(h, c)| {
            !matches!(c, Some(c) if *c != Column::MaybeAddress) && !h.trim().is_empty()
        })
        .map(|(h, _)| h.trim().to_string())
        .collect();
    let index = |want: Column| -> Result<Option<usize>, FileError> {
        let found: Vec<usize> = (0..columns.len())
            .filter(|&i| columns[i] == Some(want))
            .collect();
        match found.as_slice() {
            [] => Ok(None),
            [i] => Ok(Some(*i)),
            several => Err(FileError {
                line: header_line,
                message: format!(
                    "the columns {} hold the same thing",
                    several
                        .iter()
                        .map(|&i| format!("\"{}\"", headers.get(i).unwrap_or("").trim()))
                        .collect::<Vec<_>>()
                        .join(" and ")
                ),
                fix: "keep one of them, or rename the others to a name that is not a column \
                      of a list (their values are then not imported)"
                    .into(),
            }),
        }
    };
    let Some(address_at) = index(Column::Address)? else {
        return Err(header_error(
            header_line,
            format!(
                "no column holds the e-mail address (the header row names: {})",
                headers
                    .iter()
                    .map(|h| format!("\"{}\"", h.trim()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    };
    let at = Columns {
        address: address_at,
        name: index(Column::Name)?,
        first_name: index(Column::FirstName)?,
        last_name: index(Column::LastName)?,
        role: index(Column::Role)?,
        organisation: index(Column::Organisation)?,
        language: index(Column::Language)?,
    };
    let mut parsed = ParsedFile {
        encoding,
        delimiter: char::from(delimiter),
        ignored_columns,
        ..ParsedFile::default()
    };
    let mut first_line_of: HashMap<String, u64> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = lines.line_at(e.position());
                parsed.problems.push(RowProblem {
                    line,
                    message: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let line = lines.line_at(record.position());
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        match at.member(&record, headers.len(), delimiter, default_role) {
            Err(message) => parsed.problems.push(RowProblem { line, message }),
            Ok(member) => match first_line_of.get(&member.key()) {
                Some(first) => parsed.problems.push(RowProblem {
                    line,
                    message: format!(
                        "{} is on line {first} already (addresses are compared without case)",
                        member.address
                    ),
                }),
                None => {
                    first_line_of.insert(member.key(), line);
                    parsed.members.push((line, member));
                }
            },
        }
    }
    Ok(parsed)
}

/// The file's line a record begins on. The reader's own line numbers count blank lines before a
/// record differently after CRLF and LF; its byte position is where it began to read, blank
/// lines included, so the record's line is that of the first byte after them. Counted on from
/// the record before, so a file is read once.
struct LineCounter<'a> {
    text: &'a [u8],
    at: usize,
    line: u64,
}

impl<'a> LineCounter<'a> {
    fn new(text: &'a str) -> Self {
        LineCounter {
            text: text.as_bytes(),
            at: 0,
            line: 1,
        }
    }

    fn line_at(&mut self, pos: Option<&csv::Position>) -> u64 {
        let Some(pos) = pos else {
            return self.line;
        };
        let mut start = usize::try_from(pos.byte())
            .unwrap_or(usize::MAX)
            .min(self.text.len());
        while matches!(self.text.get(start), Some(b'\r' | b'\n')) {
            start += 1;
        }
        if start >= self.at {
            self.line += line_breaks(self.text, self.at..start) as u64;
            self.at = start;
        }
        self.line
    }
}

/// Where each column of a file is.
struct Columns {
    address: usize,
    name: Option<usize>,
    first_name: Option<usize>,
    last_name: Option<usize>,
    role: Option<usize>,
    organisation: Option<usize>,
    language: Option<usize>,
}

impl Columns {
    fn member(
        &self,
        record: &csv::StringRecord,
        width: usize,
        delimiter: u8,
        default_role: Role,
    ) -> Result<Member, String> {
        let get = |i: Option<usize>| i.and_then(|i| record.get(i)).map_or("", str::trim);
        let extra = record.iter().skip(width).any(|f| !f.trim().is_empty());
        if extra {
            return Err(format!(
                "{} fields, but the header row has {width}: a value holding '{}' must be in \
                 double quotes",
                record.len(),
                char::from(delimiter)
            ));
        }
        let cell = get(Some(self.address));
        if cell.is_empty() {
            return Err("no e-mail address".into());
        }
        // `Anna Müller <anna@example.org>` in the address cell: the name comes along.
        let (display, cell) = match cell.rsplit_once('<') {
            Some((display, rest)) if rest.ends_with('>') => {
                (display.trim().trim_matches('"').trim(), rest)
            }
            _ => ("", cell),
        };
        let address = normalize_address(cell)?;
        let mut name = one_line(get(self.name));
        if name.is_empty() {
            name = one_line(&format!("{} {}", get(self.first_name), get(self.last_name)));
        }
        if name.is_empty() {
            name = one_line(display);
        }
        let role = match get(self.role) {
            "" => default_role,
            r => Role::parse(r).ok_or_else(|| {
                format!(
                    "the role \"{r}\" is unknown: write Endnutzer, Auftraggeber, Kommune or \
                     Mitarbeiter (or end_user, auftraggeber, municipality, staff)"
                )
            })?,
        };
        let language = match get(self.language) {
            "" => Language::De,
            l => Language::parse(l).ok_or_else(|| {
                format!("the language \"{l}\" is unknown: write de or en (Deutsch, Englisch)")
            })?,
        };
        Ok(Member {
            address,
            name,
            role,
            organisation: one_line(get(self.organisation)),
            language,
        })
    }
}

/// A list as a spreadsheet opens it: UTF-8 with a BOM (without it German Excel reads
/// windows-1252 and garbles every umlaut), `;`-separated (German Excel's list separator), CRLF
/// line ends, German column names and roles; [`read_csv`] reads it back unchanged.
pub fn write_csv(members: &[Member]) -> Result<Vec<u8>, csv::Error> {
    let mut out = "\u{feff}".as_bytes().to_vec();
    {
        let mut w = csv::WriterBuilder::new()
            .delimiter(b';')
            .terminator(csv::Terminator::CRLF)
            .from_writer(&mut out);
        w.write_record(["E-Mail", "Name", "Rolle", "Organisation", "Sprache"])?;
        for m in members {
            w.write_record([
                m.address.as_str(),
                m.name.as_str(),
                m.role.german(),
                m.organisation.as_str(),
                m.language.as_str(),
            ])?;
        }
        w.flush()?;
    }
    Ok(out)
}

/// One member whose fields an import changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Changed {
    pub before: Member,
    pub after: Member,
}

/// What an import changes in a list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Diff {
    pub added: Vec<Member>,
    pub changed: Vec<Changed>,
    /// Members the file does not hold (only with `replace`).
    pub removed: Vec<Member>,
    pub unchanged: usize,
}

impl Diff {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty()
    }
}

/// What importing `incoming` into a list holding `current` changes: new addresses are added,
/// known ones take the file's fields, and with `replace` the members the file does not hold
/// are removed. Addresses are compared without case.
pub fn diff(current: &[Member], incoming: &[Member], replace: bool) -> Diff {
    let by_key: HashMap<String, &Member> = current.iter().map(|m| (m.key(), m)).collect();
    let mut out = Diff::default();
    let mut seen = std::collections::HashSet::new();
    for m in incoming {
        let key = m.key();
        if !seen.insert(key.clone()) {
            continue;
        }
        match by_key.get(&key) {
            None => out.added.push(m.clone()),
            Some(before) if *before == m => out.unchanged += 1,
            Some(before) => out.changed.push(Changed {
                before: (*before).clone(),
                after: m.clone(),
            }),
        }
    }
    if replace {
        out.removed = current
            .iter()
            .filter(|m| !seen.contains(&m.key()))
            .cloned()
            .collect();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(address: &str) -> Member {
        Member {
            address: address.into(),
            name: String::new(),
            role: Role::EndUser,
            organisation: String::new(),
            language: Language::De,
        }
    }

    #[test]
    fn addresses_keep_the_local_part_and_lower_case_the_domain() {
        assert_eq!(
            normalize_address(" <Anna.Mueller@Kreis-Giessen.DE> ").as_deref(),
            Ok("Anna.Mueller@kreis-giessen.de")
        );
        assert_eq!(
            normalize_address("mailto:x@y.example").as_deref(),
            Ok("x@y.example")
        );
        for bad in [
            "anna", "anna@", "@x.de", "a b@x.de", "a@x", "a,b@x.de", "a@x.de;",
        ] {
            assert!(normalize_address(bad).is_err(), "{bad}");
        }
        assert_eq!(address_key("Anna@X.de"), "anna@x.de");
    }

    #[test]
    fn list_names_are_lower_case_slugs() {
        assert_eq!(
            check_list_name(" Kommunen-RLP ").as_deref(),
            Ok("kommunen-rlp")
        );
        assert!(check_list_name("").is_err());
        assert!(check_list_name("-x").is_err());
        assert!(check_list_name("mit leerzeichen").is_err());
        assert!(check_list_name("ümlaut").is_err());
        assert!(check_list_name(&"x".repeat(65)).is_err());
    }

    #[test]
    fn roles_and_languages_in_german_and_english() {
        assert_eq!(Role::parse("Endnutzer"), Some(Role::EndUser));
        assert_eq!(Role::parse("end_user"), Some(Role::EndUser));
        assert_eq!(Role::parse("KOMMUNE"), Some(Role::Municipality));
        assert_eq!(Role::parse("Mitarbeiterin"), Some(Role::Staff));
        assert_eq!(Role::parse("Chef"), None);
        for r in Role::ALL {
            assert_eq!(Role::parse(r.german()), Some(r));
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Language::parse("Englisch"), Some(Language::En));
        assert_eq!(Language::parse("fr"), None);
    }

    #[test]
    fn excel_sep_line_and_first_and_last_names() {
        let text =
            "sep=;\r\nVorname;Nachname;E-Mail-Adresse;Telefon\r\nAnna;Müller;anna@x.de;0611\r\n";
        let parsed = read_csv(text.as_bytes(), Role::Municipality).expect("reads");
        assert_eq!(parsed.members.len(), 1, "{:?}", parsed.problems);
        let (line, m) = &parsed.members[0];
        assert_eq!(*line, 3);
        assert_eq!(m.name, "Anna Müller");
        assert_eq!(m.role, Role::Municipality);
        assert_eq!(parsed.ignored_columns, ["Telefon"]);
    }

    #[test]
    fn lines_are_the_files_after_crlf_blank_lines_and_quoted_breaks() {
        let text =
            "\r\nE-Mail;Name\r\n\r\na@x.de;\"zwei\r\nZeilen\"\r\n\r\n\r\nkaputt;x\r\nb@x.de;B\r\n";
        let parsed = read_csv(text.as_bytes(), Role::EndUser).expect("reads");
        let lines: Vec<u64> = parsed.members.iter().map(|(l, _)| *l).collect();
        assert_eq!(lines, [4, 9]);
        assert_eq!(parsed.problems[0].line, 8);
        assert_eq!(parsed.members[0].1.name, "zwei Zeilen", "one line");
    }

    #[test]
    fn adresse_beside_an_email_column_is_the_postal_address() {
        let text = "Name,Adresse,E-Mail\nAnna,\"Hauptstr. 1, Gießen\",anna@x.de\n";
        let parsed = read_csv(text.as_bytes(), Role::EndUser).expect("reads");
        assert_eq!(parsed.members[0].1.address, "anna@x.de");
        assert_eq!(parsed.ignored_columns, ["Adresse"]);
        let alone = read_csv(b"Adresse\nanna@x.de\n", Role::EndUser).expect("reads");
        assert_eq!(alone.members.len(), 1);
    }

    #[test]
    fn a_file_without_an_address_column_is_refused_at_the_header() {
        let err = read_csv(b"\nName;Telefon\nAnna;1\n", Role::EndUser).expect_err("no address");
        assert_eq!(err.line, 2);
        assert!(err.message.contains("\"Name\", \"Telefon\""), "{err}");
        let err = read_csv(b"E-Mail;Mail\na@x.de;b@x.de\n", Role::EndUser).expect_err("two");
        assert!(err.message.contains("\"E-Mail\" and \"Mail\""), "{err}");
    }

    #[test]
    fn the_diff_adds_changes_and_with_replace_removes() {
        let current = vec![member("a@x.de"), member("b@x.de"), member("c@x.de")];
        let mut b = member("B@x.de");
        b.name = "Bea".into();
        let incoming = vec![member("a@x.de"), b.clone(), member("d@x.de")];
        let d = diff(&current, &incoming, false);
        assert_eq!(d.added, [member("d@x.de")]);
        assert_eq!(d.changed.len(), 1);
        assert_eq!(
            d.changed[0].after.changes_from(&d.changed[0].before),
            ["address \"b@x.de\" → \"B@x.de\"", "name (none) → \"Bea\""]
        );
        assert_eq!(d.unchanged, 1);
        assert!(d.removed.is_empty());
        assert_eq!(diff(&current, &incoming, true).removed, [member("c@x.de")]);
    }

    #[test]
    fn export_reads_back_unchanged() {
        let mut m = member("Joerg@gemeinde-büdingen.example");
        m.name = "Jörg \"JJ\" Weiß; Amt 3".into();
        m.role = Role::Auftraggeber;
        m.organisation = "Stadt Büdingen".into();
        m.language = Language::En;
        let bytes = write_csv(std::slice::from_ref(&m)).expect("writes");
        assert!(bytes.starts_with(b"\xef\xbb\xbfE-Mail;Name;Rolle;Organisation;Sprache\r\n"));
        let back = read_csv(&bytes, Role::EndUser).expect("reads");
        assert_eq!(back.encoding, "UTF-8 with BOM");
        assert_eq!(back.members.len(), 1, "{:?}", back.problems);
        assert_eq!(back.members[0].1, m);
    }
}
