//! Where configuration files come from: a directory on disk (paths relative to the config file)
//! or the defaults embedded in the binary at build time.
use std::fs;
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, SourceText};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// A tree of configuration files.
#[derive(Debug, Clone)]
pub enum Files {
    /// Relative paths are resolved against this directory (the config file's).
    Disk(PathBuf),
    /// The shipped defaults compiled into the binary.
    Embedded,
}

impl Files {
    /// The tree a config file lives in, and the file's name within it.
    pub fn for_config_file(path: &Path) -> (Files, String) {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        (Files::Disk(dir.to_path_buf()), name)
    }

    fn resolve(&self, rel: &str) -> PathBuf {
        match self {
            Files::Disk(dir) => dir.join(rel),
            Files::Embedded => PathBuf::from(rel),
        }
    }

    /// The name shown in messages: the path on disk, or `embedded:` and the repository path.
    pub fn display(&self, rel: &str) -> String {
        match self {
            Files::Disk(_) => self.resolve(rel).display().to_string(),
            Files::Embedded => format!("embedded:{}", normalize(rel)),
        }
    }

    pub fn read(&self, rel: &str) -> Result<SourceText, Diagnostic> {
        self.read_with(rel, false)
    }

    /// Like [`Files::read`], but text that is not UTF-8 is read as windows-1252, the charset
    /// of spreadsheet exports on German Windows.
    pub fn read_legacy(&self, rel: &str) -> Result<SourceText, Diagnostic> {
        self.read_with(rel, true)
    }

    fn read_with(&self, rel: &str, legacy: bool) -> Result<SourceText, Diagnostic> {
        let name = self.display(rel);
        let text = match self {
            Files::Disk(_) => fs::read(self.resolve(rel))
                .map_err(|e| e.to_string())
                .and_then(|bytes| {
                    if legacy {
                        Ok(legacy_text(bytes))
                    } else {
                        String::from_utf8(bytes).map_err(|_| "not valid UTF-8".to_string())
                    }
                }),
            Files::Embedded => embedded::EMBEDDED
                .iter()
                .find(|(path, _)| *path == normalize(rel))
                .map(|(_, text)| text.to_string())
                .ok_or_else(|| "not among the embedded defaults".to_string()),
        };
        text.map(|text| SourceText {
            name: name.clone(),
            text,
        })
        .map_err(|e| Diagnostic {
            file: name,
            line: None,
            message: format!("cannot read the file: {e}"),
            fix: "check the path in the configuration and that the file exists and is readable \
                  UTF-8"
                .into(),
        })
    }

    /// Files directly in `dir` whose name ends in one of `exts`, sorted by name, as paths
    /// relative to the tree.
    pub fn list(&self, dir: &str, exts: &[&str]) -> Result<Vec<String>, Diagnostic> {
        let keep = |name: &str| exts.iter().any(|e| name.ends_with(e));
        let mut out: Vec<String> = match self {
            Files::Disk(_) => fs::read_dir(self.resolve(dir))
                .map_err(|e| Diagnostic {
                    file: self.display(dir),
                    line: None,
                    message: format!("cannot read the directory: {e}"),
                    fix: "check the directory named in the configuration".into(),
                })?
                .filter_map(|e| e.ok())
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .filter_map(|e| e.file_name().to_str().map(str::to_string))
                .filter(|n| keep(n) && !n.starts_with('.'))
                .map(|n| format!("{}/{n}", dir.trim_end_matches('/')))
                .collect(),
            Files::Embedded => {
                let prefix = format!("{}/", normalize(dir).trim_end_matches('/'));
                embedded::EMBEDDED
                    .iter()
                    .map(|(p, _)| *p)
                    .filter(|p| {
                        p.strip_prefix(&prefix)
                            .is_some_and(|rest| !rest.contains('/') && keep(rest))
                    })
                    .map(str::to_string)
                    .collect()
            }
        };
        out.sort();
        Ok(out)
    }

    /// Every file below `dir`, recursively, as relative paths.
    pub fn list_recursive(&self, dir: &str, exts: &[&str]) -> Vec<String> {
        let keep = |name: &str| exts.iter().any(|e| name.ends_with(e));
        let mut out = Vec::new();
        match self {
            Files::Disk(_) => walk(&self.resolve(dir), dir, &keep, &mut out),
            Files::Embedded => {
                let prefix = format!("{}/", normalize(dir).trim_end_matches('/'));
                out.extend(
                    embedded::EMBEDDED
                        .iter()
                        .map(|(p, _)| *p)
                        .filter(|p| p.starts_with(&prefix) && keep(p))
                        .map(str::to_string),
                );
            }
        }
        out.sort();
        out
    }
}

fn walk(path: &Path, rel: &str, keep: &dyn Fn(&str) -> bool, out: &mut Vec<String>) {
    let Ok(entries) = fs::read_dir(path) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        let child = format!("{}/{name}", rel.trim_end_matches('/'));
        match entry.file_type() {
            Ok(t) if t.is_dir() => walk(&entry.path(), &child, keep, out),
            Ok(t) if t.is_file() && keep(&name) => out.push(child),
            _ => {}
        }
    }
}

/// `./rules//x.toml` → `rules/x.toml`, so embedded look-ups match however a path was written.
fn normalize(rel: &str) -> String {
    rel.split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect::<Vec<_>>()
        .join("/")
}

/// A spreadsheet export as text: UTF-8 as it is, anything else read as windows-1252, the
/// charset of CSV files that German Excel writes. A BOM stays for the reader to strip.
pub fn legacy_text(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => encoding_rs::WINDOWS_1252
            .decode_without_bom_handling(e.as_bytes())
            .0
            .into_owned(),
    }
}

/// The separator of a CSV file as spreadsheets export it (distribution lists, contact
/// lists): `;`, `,` or tab, whichever the header line holds most of outside quotes (`;` on a tie: a
/// German export). Excel's `sep=;` first line says it outright.
pub fn spreadsheet_delimiter(first_line: &str) -> u8 {
    if let Some(sep) = first_line.trim().strip_prefix("sep=")
        && let [b] = sep.as_bytes()
    {
        return *b;
    }
    let mut counts = [0usize; 3];
    let mut quoted = false;
    for c in first_line.bytes() {
        match c {
            b'"' => quoted = !quoted,
            b';' if !quoted => counts[0] += 1,
            b',' if !quoted => counts[1] += 1,
            b'\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let candidates = [b';', b',', b'\t'];
    let best = (0..3).max_by_key(|&i| (counts[i], 3 - i)).unwrap_or(0);
    candidates[best]
}

#[cfg(test)]
mod tests {
    use super::spreadsheet_delimiter;

    #[test]
    fn the_delimiter_is_what_the_header_holds_most_of() {
        assert_eq!(spreadsheet_delimiter("E-Mail;Name;Rolle"), b';');
        assert_eq!(spreadsheet_delimiter("email,name"), b',');
        assert_eq!(spreadsheet_delimiter("\"Name, Vorname\";E-Mail"), b';');
        assert_eq!(spreadsheet_delimiter("email\tname"), b'\t');
        assert_eq!(spreadsheet_delimiter("sep=,"), b',');
        assert_eq!(spreadsheet_delimiter("email"), b';');
    }
}
