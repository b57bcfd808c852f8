//! Citizens' questions forwarded from the federal user accounts (MISSION §6): subjects coded
//! `<STATE>_<Betreff>_<NKB|MUK>`, routed to the responsible department (Ressort) through a
//! contact list that staff maintain as TOML or as CSV exported from a spreadsheet.
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::diag::{Diagnostics, Docs, SourceText, check_address};
use crate::files::Files;

/// The 16 state codes, as the user accounts write them.
pub const STATE_CODES: [&str; 16] = [
    "BW", "BY", "BE", "BB", "HB", "HH", "HE", "MV", "NI", "NW", "RP", "SL", "SN", "ST", "SH", "TH",
];

/// A decoded Nutzerkonto subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Nutzerkonto {
    /// Upper-case state code, e.g. `HE`.
    pub state: String,
    /// `NKB` (Nutzerkonto Bund) or `MUK` (Mein Unternehmenskonto).
    pub origin: String,
    pub betreff: String,
}

/// Reads `<STATE>_<Betreff>_<ORIGIN>` from a normalised subject. The Betreff is everything
/// between the first and the last underscore, may itself hold underscores, and must not be
/// empty once trimmed; nothing but whitespace may follow the origin.
pub fn parse(normalized_subject: &str) -> Option<Nutzerkonto> {
    let s = normalized_subject.trim();
    let (state, rest) = s.split_once('_')?;
    let (betreff, origin) = rest.rsplit_once('_')?;
    let state = state.to_ascii_uppercase();
    if !STATE_CODES.contains(&state.as_str()) {
        return None;
    }
    let origin = origin.trim_end().to_ascii_uppercase();
    if origin != "NKB" && origin != "MUK" {
        return None;
    }
    let betreff = betreff.trim();
    if betreff.is_empty() {
        return None;
    }
    Some(Nutzerkonto {
        state,
        origin,
        betreff: betreff.to_string(),
    })
}

/// How a service is provided under the OZG's "Einer für Alle" scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Efa {
    /// Hessen provides the service for other states: the requester gets the contact person.
    Outbound,
    /// Another state provides it: handling is unsettled, so the clearing queue takes it.
    Inbound,
    None,
}

impl Efa {
    fn parse(s: &str) -> Option<Efa> {
        let folded: String = s
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric())
            .collect();
        match folded.trim_start_matches("efa") {
            "outbound" | "out" | "ausgehend" => Some(Efa::Outbound),
            "inbound" | "in" | "eingehend" => Some(Efa::Inbound),
            "" | "none" | "no" | "nein" | "kein" | "keine" => Some(Efa::None),
            _ => None,
        }
    }
}

/// Who answers for a service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Contact {
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
}

/// One service of the contact list.
#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    /// The Ressort's queue.
    pub ressort: String,
    pub contact: Contact,
    pub efa: Efa,
    keywords: Vec<String>,
    regex: Option<Regex>,
    source: usize,
    offset: usize,
}

impl Service {
    /// The keywords, folded ([`fold`]) and without the outer blanks, as they are compared.
    pub fn keywords(&self) -> &[String] {
        &self.keywords
    }

    /// The best match of this service in the Betreff (`folded` is its [`fold`]), if any: its
    /// length and what matched.
    fn score(&self, betreff: &str, folded: &str) -> Option<Score> {
        let by_keyword = self
            .keywords
            .iter()
            .filter(|k| folded.contains(k.as_str()))
            .max_by_key(|k| k.len())
            .map(|k| Score {
                len: k.len(),
                matched: format!("keyword \"{k}\""),
            });
        let by_regex = self
            .regex
            .as_ref()
            .and_then(|r| r.find(betreff))
            .map(|m| Score {
                len: m.len().max(1),
                matched: format!("regex match \"{}\"", m.as_str()),
            });
        match (by_keyword, by_regex) {
            (Some(k), Some(r)) => Some(if r.len > k.len { r } else { k }),
            (k, r) => k.or(r),
        }
    }
}

/// How well a service matches a Betreff: the length of its longest keyword or regex match
/// (longer is more specific), and which it was, for explanations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Score {
    pub len: usize,
    pub matched: String,
}

/// What the contact list says about a Betreff.
#[derive(Debug, Clone)]
pub enum Found<'a> {
    /// One service matches better than every other.
    Service(&'a Service, Score),
    /// Several services match equally well (the same length of match): the Betreff is
    /// unclear, and which Ressort answers is for the clearing queue to find out.
    Tie(Vec<(&'a Service, Score)>),
    Nothing,
}

/// The contact list: services by which Nutzerkonto questions reach their Ressort.
#[derive(Debug, Clone, Default)]
pub struct ContactList {
    pub services: Vec<Service>,
    sources: Vec<SourceText>,
}

/// Lower-case, umlauts spelt out, every run of non-alphanumerics one space, so that
/// "Kfz-Zulassung", "KFZ Zulassung" and "kfz_zulassung" meet, as do "Führerschein" and "Fuehrerschein".
pub fn fold(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(' ');
    for c in s.chars().flat_map(char::to_lowercase) {
        match c {
            'ä' => out.push_str("ae"),
            'ö' => out.push_str("oe"),
            'ü' => out.push_str("ue"),
            'ß' => out.push_str("ss"),
            c if c.is_alphanumeric() => out.push(c),
            _ => {
                if !out.ends_with(' ') {
                    out.push(' ')
                }
            }
        }
    }
    if !out.ends_with(' ') {
        out.push(' ');
    }
    out
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContactFile {
    #[serde(default, rename = "service")]
    services: Vec<Spanned<RawService>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: String,
    ressort: Spanned<String>,
    #[serde(default)]
    keywords: Vec<String>,
    regex: Option<Spanned<String>>,
    #[serde(default)]
    contact: String,
    email: Option<Spanned<String>>,
    phone: Option<String>,
    #[serde(default)]
    efa: Option<Spanned<String>>,
}

impl ContactList {
    /// Reads a contact list: `.csv` as a spreadsheet export, anything else as TOML.
    pub fn load(files: &Files, path: &str, diags: &mut Diagnostics) -> ContactList {
        let is_csv = path.to_ascii_lowercase().ends_with(".csv");
        let read = if is_csv {
            files.read_legacy(path)
        } else {
            files.read(path)
        };
        let src = match read {
            Ok(s) => s,
            Err(d) => {
                diags.0.push(d);
                return ContactList::default();
            }
        };
        ContactList::from_source(src, is_csv, diags)
    }

    /// A contact list from its text (read by [`ContactList::load`], or given whole): CSV as
    /// a spreadsheet exports it, or TOML.
    pub fn from_source(src: SourceText, is_csv: bool, diags: &mut Diagnostics) -> ContactList {
        let mut list = ContactList::default();
        if is_csv {
            list.add_csv(src, diags);
        } else {
            list.add_toml(src, diags);
        }
        list
    }

    /// Parses a TOML contact list (`[[service]]` tables).
    pub fn add_toml(&mut self, src: SourceText, diags: &mut Diagnostics) {
        let docs = Docs {
            section: "Contact list (Nutzerkonto routing)",
            by_key: &[],
        };
        let Some(raw) = src.deserialize::<RawContactFile>(&docs, diags) else {
            return;
        };
        let idx = self.sources.len();
        for s in raw.services {
            let offset = s.span().start;
            let s = s.into_inner();
            if let Some(e) = &s.email {
                check_address(&src, e, diags);
            }
            let efa = match &s.efa {
                None => Efa::None,
                Some(v) => Efa::parse(v.get_ref()).unwrap_or_else(|| {
                    diags.push(
                        &src,
                        Some(v.span().start),
                        format!("efa = \"{}\" is not an EfA kind", v.get_ref()),
                        "write \"outbound\", \"inbound\" or \"none\"",
                    );
                    Efa::None
                }),
            };
            let regex = s
                .regex
                .as_ref()
                .and_then(|r| compile(&src, r.get_ref(), r.span().start, diags));
            self.push_service(
                &src,
                idx,
                offset,
                ServiceFields {
                    name: s.name,
                    ressort: s.ressort.into_inner(),
                    keywords: s.keywords,
                    regex,
                    contact: Contact {
                        name: s.contact,
                        email: s.email.map(|e| e.into_inner().trim().to_string()),
                        phone: s.phone,
                    },
                    efa,
                },
                diags,
            );
        }
        self.sources.push(src);
    }

    /// Parses a CSV contact list as spreadsheets export it: `,` `;` or tab separated, UTF-8
    /// (with or without BOM) or windows-1252, German or English column names.
    pub fn add_csv(&mut self, mut src: SourceText, diags: &mut Diagnostics) {
        if let Some(stripped) = src.text.strip_prefix('\u{feff}') {
            src.text = stripped.to_string();
        }
        let first_line = src.text.lines().next().unwrap_or("");
        let delimiter = crate::files::spreadsheet_delimiter(first_line);
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(src.text.as_bytes());
        let headers = match reader.headers() {
            Ok(h) => h.clone(),
            Err(e) => {
                diags.push(
                    &src,
                    Some(0),
                    format!("cannot read the CSV header: {e}"),
                    "",
                );
                return;
            }
        };
        let mut columns: Vec<Option<Column>> = Vec::new();
        for h in headers.iter() {
            let col = Column::parse(h);
            if col.is_none() && !h.trim().is_empty() {
                diags.push(
                    &src,
                    Some(0),
                    format!("unknown column \"{h}\""),
                    "name the columns service, keywords, regex, ressort, contact, email, phone, \
                     efa (or Leistung, Stichwörter, Muster, Ressort, Ansprechpartner, E-Mail, \
                     Telefon, EfA)",
                );
            }
            columns.push(col);
        }
        for need in [Column::Service, Column::Ressort] {
            if !columns.contains(&Some(need)) {
                diags.push(
                    &src,
                    Some(0),
                    format!("the column \"{}\" is missing", need.name()),
                    "add the column to the header line",
                );
            }
        }
        let idx = self.sources.len();
        for record in reader.records() {
            let record = match record {
                Ok(r) => r,
                Err(e) => {
                    let offset = e.position().map(|p| p.byte() as usize);
                    diags.push(&src, offset, format!("unreadable CSV row: {e}"), "");
                    continue;
                }
            };
            let offset = record.position().map(|p| p.byte() as usize).unwrap_or(0);
            if record.iter().all(|f| f.is_empty()) {
                continue;
            }
            let get = |c: Column| {
                columns
                    .iter()
                    .position(|x| *x == Some(c))
                    .and_then(|i| record.get(i))
                    .map(str::trim)
                    .unwrap_or("")
            };
            let efa = Efa::parse(get(Column::Efa)).unwrap_or_else(|| {
                diags.push(
                    &src,
                    Some(offset),
                    format!("\"{}\" is not an EfA kind", get(Column::Efa)),
                    "write outbound, inbound or none (or leave the cell empty)",
                );
                Efa::None
            });
            let email = Some(get(Column::Email).to_string()).filter(|e| !e.is_empty());
            if let Some(e) = &email {
                check_address(&src, &Spanned::new(offset..offset + 1, e.clone()), diags);
            }
            let regex = Some(get(Column::Regex))
                .filter(|r| !r.is_empty())
                .and_then(|r| compile(&src, r, offset, diags));
            self.push_service(
                &src,
                idx,
                offset,
                ServiceFields {
                    name: get(Column::Service).to_string(),
                    ressort: get(Column::Ressort).to_string(),
                    keywords: get(Column::Keywords)
                        .split([',', ';', '|'])
                        .map(str::to_string)
                        .collect(),
                    regex,
                    contact: Contact {
                        name: get(Column::Contact).to_string(),
                        email,
                        phone: Some(get(Column::Phone).to_string()).filter(|p| !p.is_empty()),
                    },
                    efa,
                },
                diags,
            );
        }
        self.sources.push(src);
    }

    fn push_service(
        &mut self,
        src: &SourceText,
        source: usize,
        offset: usize,
        f: ServiceFields,
        diags: &mut Diagnostics,
    ) {
        let keywords: Vec<String> = f
            .keywords
            .iter()
            .map(|k| fold(k))
            .filter(|k| !k.trim().is_empty())
            // Match inside compounds ("Wohngeldantrag"), so only the outer spaces go.
            .map(|k| k.trim().to_string())
            .collect();
        if f.name.trim().is_empty() {
            diags.push(src, Some(offset), "a service has no name", "give it a name");
        }
        if f.ressort.trim().is_empty() {
            diags.push(
                src,
                Some(offset),
                format!("service \"{}\" names no ressort", f.name),
                "name the queue of the responsible department",
            );
        }
        if keywords.is_empty() && f.regex.is_none() {
            diags.push(
                src,
                Some(offset),
                format!("service \"{}\" has neither keywords nor a regex", f.name),
                "add keywords (words of the Betreff that name this service) or a regex",
            );
        }
        self.services.push(Service {
            name: f.name.trim().to_string(),
            ressort: f.ressort.trim().to_string(),
            contact: f.contact,
            efa: f.efa,
            keywords,
            regex: f.regex,
            source,
            offset,
        });
    }

    /// Every service that matches a Betreff, best first (list order among equals).
    pub fn matches(&self, betreff: &str) -> Vec<(&Service, Score)> {
        let folded = fold(betreff);
        let mut all: Vec<(&Service, Score)> = self
            .services
            .iter()
            .filter_map(|s| s.score(betreff, &folded).map(|sc| (s, sc)))
            .collect();
        // Stable: equals keep the order of the list.
        all.sort_by_key(|(_, sc)| std::cmp::Reverse(sc.len));
        all
    }

    /// The service that best matches a Betreff: the longest keyword or regex match. Several
    /// services with the same best length are a [`Found::Tie`], never the first listed: the
    /// order of a spreadsheet's rows must not decide who answers a citizen.
    pub fn find(&self, betreff: &str) -> Found<'_> {
        let mut all = self.matches(betreff);
        let Some(best) = all.first().map(|(_, sc)| sc.len) else {
            return Found::Nothing;
        };
        all.retain(|(_, sc)| sc.len == best);
        if all.len() == 1 {
            let (s, sc) = all.remove(0);
            Found::Service(s, sc)
        } else {
            Found::Tie(all)
        }
    }

    /// Every queue the list names, with where it names it.
    pub fn queue_refs(&self) -> impl Iterator<Item = (&SourceText, usize, &str)> {
        self.services
            .iter()
            .map(|s| (&self.sources[s.source], s.offset, s.ressort.as_str()))
    }
}

struct ServiceFields {
    name: String,
    ressort: String,
    keywords: Vec<String>,
    regex: Option<Regex>,
    contact: Contact,
    efa: Efa,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Service,
    Keywords,
    Regex,
    Ressort,
    Contact,
    Email,
    Phone,
    Efa,
}

impl Column {
    fn parse(header: &str) -> Option<Column> {
        let h = fold(header);
        Some(match h.trim() {
            "service" | "leistung" | "verwaltungsleistung" | "dienst" | "name" => Column::Service,
            "keywords" | "stichwoerter" | "stichworte" | "schlagworte" | "suchbegriffe" => {
                Column::Keywords
            }
            "regex" | "muster" => Column::Regex,
            "ressort" | "queue" => Column::Ressort,
            "contact" | "contact name" | "ansprechpartner" | "ansprechperson" | "kontakt" => {
                Column::Contact
            }
            "email" | "e mail" | "contact email" | "mail" => Column::Email,
            "phone" | "telefon" | "contact phone" => Column::Phone,
            "efa" | "efa kind" | "efa typ" | "efa art" => Column::Efa,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Column::Service => "service",
            Column::Keywords => "keywords",
            Column::Regex => "regex",
            Column::Ressort => "ressort",
            Column::Contact => "contact",
            Column::Email => "email",
            Column::Phone => "phone",
            Column::Efa => "efa",
        }
    }
}

fn compile(
    src: &SourceText,
    pattern: &str,
    offset: usize,
    diags: &mut Diagnostics,
) -> Option<Regex> {
    match RegexBuilder::new(pattern).case_insensitive(true).build() {
        Ok(r) => Some(r),
        Err(e) => {
            diags.push(
                src,
                Some(offset),
                format!("invalid regex {pattern:?}: {}", one_line(&e.to_string())),
                "correct the regular expression (syntax: https://docs.rs/regex/latest/regex/#syntax)",
            );
            None
        }
    }
}

pub(crate) fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_coded_subject() {
        let nk = parse("HE_Antrag auf Wohngeld_NKB").expect("matches");
        assert_eq!(nk.state, "HE");
        assert_eq!(nk.origin, "NKB");
        assert_eq!(nk.betreff, "Antrag auf Wohngeld");
        let nk = parse("he_Steuer_ID_Frage_muk  ").expect("matches");
        assert_eq!((nk.state.as_str(), nk.origin.as_str()), ("HE", "MUK"));
        assert_eq!(nk.betreff, "Steuer_ID_Frage");
        assert_eq!(parse("BY_ x _NKB").map(|n| n.betreff), Some("x".into()));
    }

    #[test]
    fn rejects_what_is_not_the_scheme() {
        for s in [
            "HE__NKB",
            "HE_ _NKB",
            "XX_Wohngeld_NKB",
            "HE_Wohngeld_NKBX",
            "HE_Wohngeld_NKB extra",
            "HE_Wohngeld",
            "Frage zu HE_Wohngeld_NKB",
            "HES_Wohngeld_NKB",
            "HE_NKB",
            "",
        ] {
            assert_eq!(parse(s), None, "{s:?} must not match");
        }
    }

    #[test]
    fn folds_umlauts_and_separators() {
        assert_eq!(fold("Kfz-Zulassung"), " kfz zulassung ");
        assert_eq!(fold("Führerschein"), fold("FUEHRERSCHEIN"));
        assert_eq!(fold("Straße"), " strasse ");
    }

    #[test]
    fn efa_kinds_in_german_and_english() {
        assert_eq!(Efa::parse("EfA-Outbound"), Some(Efa::Outbound));
        assert_eq!(Efa::parse("inbound"), Some(Efa::Inbound));
        assert_eq!(Efa::parse(""), Some(Efa::None));
        assert_eq!(Efa::parse("nein"), Some(Efa::None));
        assert_eq!(Efa::parse("vielleicht"), None);
    }
}
