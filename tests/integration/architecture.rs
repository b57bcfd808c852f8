//! The layers of the library stay as README.md ("Architecture") draws them: each module uses
//! only modules of lower layers (or its own module tree), and SQL is written only in `store/`.
//! The checker reads the sources; a test of its own shows that it catches a wrong import.
use std::path::Path;

use regex::Regex;

/// Module path prefixes and their layers, bottom first. A module takes the layer of its
/// longest matching prefix. classify's building blocks (rules, the Nutzerkonto contact list,
/// loop detection) sit below config, which compiles them; the decision engine (`classify`
/// itself) reads the whole configuration and sits above it. The outbox sits below ticket,
/// because filing writes its outgoing mail in its own transaction.
const LAYERS: &[(&str, u8)] = &[
    ("diag", 0),
    ("time", 0),
    ("holder", 0),
    ("redact", 0),
    ("files", 1),
    ("reply_token", 1),
    ("dsn", 2),
    ("ical", 2),
    ("maintenance", 2),
    ("message", 2),
    ("lists", 2),
    ("sla", 2),
    ("templates", 2),
    ("verp", 2),
    ("classify::fieldset", 3),
    ("classify::loops", 3),
    ("classify::subject", 3),
    ("classify::rules", 3),
    ("classify::nutzerkonto", 3),
    ("config", 4),
    ("classify", 5),
    ("oauth", 5),
    ("store", 6),
    ("notify", 7),
    ("outbox", 8),
    ("ticket", 9),
    ("announce", 10),
    ("jobs", 10),
    ("metrics", 10),
    ("source", 11),
    ("status", 11),
    ("app", 12),
];

fn layer(module: &str) -> Option<u8> {
    LAYERS
        .iter()
        .filter(|(prefix, _)| {
            module == *prefix
                || module
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with("::"))
        })
        .max_by_key(|(prefix, _)| prefix.len())
        .map(|(_, l)| *l)
}

fn top(module: &str) -> &str {
    module.split("::").next().unwrap_or(module)
}

/// `src/ticket/ingest.rs` → `ticket::ingest`; `src/store/mod.rs` → `store`.
fn module_of(rel: &str) -> String {
    let p = rel.trim_end_matches(".rs").trim_end_matches("/mod");
    p.replace('/', "::")
}

/// Every import of a lower layer's rule broken, and every SQL statement outside `store/`, in
/// the library files given as (path relative to `src/`, text).
fn violations(files: &[(String, String)]) -> Vec<String> {
    let crate_path = Regex::new(r"crate::([a-z_]+)(?:::([a-z_]+))?").expect("regex");
    let super_path = Regex::new(r"\bsuper::(\{|\w+)").expect("regex");
    let literal = Regex::new(r#"(?s)"(?:[^"\\]|\\.)*""#).expect("regex");
    let sql = Regex::new(
        r"(?s)\bSELECT\b.*\bFROM\b|\bSELECT \d|\bINSERT INTO\b|\bUPDATE [a-z_]+ SET\b|\bDELETE FROM\b",
    )
    .expect("regex");
    let mut out = Vec::new();
    for (rel, text) in files {
        let module = module_of(rel);
        if !rel.starts_with("store/") {
            // String literals of the code, comments left out (a quote in a comment would
            // throw the pairing of quotes off).
            let code: String = text
                .lines()
                .map(|l| {
                    if l.trim_start().starts_with("//") {
                        ""
                    } else {
                        l
                    }
                })
                .collect::<Vec<_>>()
                .join("\n");
            for lit in literal.find_iter(&code) {
                if sql.is_match(lit.as_str()) {
                    let line = code[..lit.start()].matches('\n').count() + 1;
                    out.push(format!("src/{rel}:{line}: SQL outside store/"));
                }
            }
        }
        let Some(own) = layer(&module) else {
            // The crate root and the binary (main.rs, cli/) may use everything.
            continue;
        };
        let parent = module.rsplit_once("::").map_or("", |(p, _)| p);
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            let mut targets: Vec<String> = crate_path
                .captures_iter(line)
                .map(|c| match c.get(2) {
                    Some(sub) => format!("{}::{}", &c[1], sub.as_str()),
                    None => c[1].to_string(),
                })
                .collect();
            if !parent.is_empty() {
                // `super::name` is a sibling module; `super::Type` and `super::{…}` the parent.
                targets.extend(
                    super_path
                        .captures_iter(line)
                        .map(|c| match c[1].chars().next() {
                            Some(ch) if ch.is_ascii_lowercase() || ch == '_' => {
                                format!("{parent}::{}", &c[1])
                            }
                            _ => parent.to_string(),
                        }),
                );
            }
            for target in targets {
                let Some(theirs) = layer(&target) else {
                    continue;
                };
                let internal = top(&target) == top(&module);
                if theirs > own || (theirs == own && !internal) {
                    out.push(format!(
                        "src/{rel}:{}: {module} (layer {own}) uses {target} (layer {theirs})",
                        n + 1
                    ));
                }
            }
        }
    }
    out
}

fn library_sources() -> Vec<(String, String)> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<(String, String)>) {
        for entry in std::fs::read_dir(dir).expect("src is readable") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let rel = path
                    .strip_prefix(root)
                    .expect("under src")
                    .to_string_lossy()
                    .replace('\\', "/");
                if rel == "main.rs" || rel.starts_with("cli/") {
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("source is UTF-8");
                out.push((rel, text));
            }
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out.sort();
    out
}

#[test]
fn layers_import_only_downward_and_sql_stays_in_store() {
    let files = library_sources();
    assert!(files.len() > 40, "found the library's sources");
    for (rel, _) in &files {
        let m = module_of(rel);
        assert!(
            m == "lib" || layer(&m).is_some(),
            "src/{rel}: module {m} has no layer; add it to LAYERS and to README.md's architecture"
        );
    }
    let found = violations(&files);
    assert!(found.is_empty(), "{}", found.join("\n"));
}

#[test]
fn the_checker_catches_an_upward_import_and_stray_sql() {
    let files = vec![
        (
            "store/tickets.rs".to_string(),
            "use crate::ticket::ingest::Outcome;\nconst Q: &str = \"SELECT 1\";\n".to_string(),
        ),
        (
            "classify/rules.rs".to_string(),
            "use super::Decision;\nuse crate::config::Config;\n".to_string(),
        ),
        (
            "jobs/report.rs".to_string(),
            "use crate::metrics::Metrics;\nuse crate::store::Store;\n".to_string(),
        ),
        (
            "ticket/ops.rs".to_string(),
            "let n = sqlx::query(\"UPDATE tickets SET state = $1\");\nuse crate::store;\n\
             let e = format!(\"{f}: SELECT failed\");\nlet q = \"SELECT a, b \\\n FROM t\";\n"
                .to_string(),
        ),
    ];
    let found = violations(&files);
    let expected = [
        "src/store/tickets.rs:1: store::tickets (layer 6) uses ticket::ingest (layer 9)",
        "src/classify/rules.rs:1: classify::rules (layer 3) uses classify (layer 5)",
        "src/classify/rules.rs:2: classify::rules (layer 3) uses config (layer 4)",
        "src/jobs/report.rs:1: jobs::report (layer 10) uses metrics (layer 10)",
        "src/ticket/ops.rs:1: SQL outside store/",
        "src/ticket/ops.rs:4: SQL outside store/",
    ];
    for e in expected {
        assert!(found.iter().any(|f| f == e), "missing {e:?} in {found:#?}");
    }
    assert_eq!(found.len(), expected.len(), "{found:#?}");
}

/// The two dialects' migrations move in step: the same numbers in both folders (a change that
/// one dialect does not need is a no-op there that says why).
#[test]
fn migrations_of_both_dialects_are_numbered_alike() {
    let versions = |dialect: &str| -> Vec<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(dialect);
        let mut v: Vec<String> = std::fs::read_dir(&dir)
            .expect("migrations folder")
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| n.ends_with(".sql"))
            .filter_map(|n| n.split('_').next().map(str::to_string))
            .collect();
        v.sort();
        v
    };
    let (sqlite, postgres) = (versions("sqlite"), versions("postgres"));
    assert!(sqlite.len() >= 5, "{sqlite:?}");
    assert_eq!(sqlite, postgres);
}
