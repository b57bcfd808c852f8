//! Throughput of parse + classify, single-threaded, next to bare mail-parser parsing of the
//! same mails in the same run.
//!
//! Goals (issue): with ≥ 200 rules the classifier costs at most 25 % on top of bare parsing, and
//! 4 KB mails go through at ≥ 30,000 msgs/s on one core.
//!
//! Inputs:
//! - `corpus`: every mail under `tests/corpus` (real mail from public test suites);
//! - `4k`: 2,000 generated German helpdesk mails of about 4 KB each (deterministic).
//!
//! The configuration is the shipped `poststelle.toml` with its rules, contact list and
//! templates, copied into a temporary directory together with a generated rule file of more
//! than 200 rules of the kind a municipal IT helpdesk writes (Fachverfahren, hardware, accounts,
//! towns, headers, attachments, recipients).
//!
//! Benchmarks (every iteration runs over a whole input set; divan reports items/s and B/s):
//! - `bare_parse_*`: `mail_parser::MessageParser::default().parse(raw)`;
//! - `parse_classify_*`: `InboundMessage::parse(raw)` then `classify(&config, &msg)`;
//! - `inbound_parse_*`: `InboundMessage::parse(raw)` alone (the message model);
//! - `classify_only_*`: `classify` of messages parsed beforehand;
//! - `body_scan_*`: only the one pass of the body rules' automaton (all their patterns at
//!   once) over each parsed message's text: what any classifier of these rules pays for
//!   reading the body, the floor under `classify_only`.
//!
//! Run: `cargo bench --bench classify`; for instruction counts, see [`profile`]. Without `--bench` (`cargo test --all-targets`) every benchmark runs once
//! over a few small mails, as a smoke test that prints no figures.
use std::fs;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use divan::counter::{BytesCount, ItemsCount};
use divan::{Bencher, black_box};
use mail_parser::MessageParser;
use poststelle::classify::classify;
use poststelle::classify::fieldset::FieldSet;
use poststelle::classify::rules::Field;
use poststelle::config::Config;
use poststelle::message::InboundMessage;

#[path = "support/mode.rs"]
mod mode;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");
/// Number of generated mails.
const GENERATED_MAILS: usize = 2_000;
/// Size a generated mail aims at, headers included.
const TARGET_MAIL_SIZE: usize = 4_096;
/// Rules the benchmark configuration must hold at least (generated ones alone, and in total).
const MIN_RULES: usize = 200;
/// Name of the generated rule file inside the temporary `rules/` directory.
const GENERATED_RULE_FILE: &str = "50-bench-generated.toml";
/// Messages of each input whose decisions are summarised at start-up.
const STATS_SAMPLE: usize = 300;

fn main() {
    if let Ok(what) = std::env::var("CLASSIFY_PROFILE") {
        profile(&what);
        return;
    }
    if mode::measuring() {
        print_setup();
    }
    divan::main();
}

/// `CLASSIFY_PROFILE=<bench> <bench binary> --bench`: runs one benchmark's work a few
/// times without divan, for `valgrind --tool=callgrind --toggle-collect=classify::profile_round`,
/// whose instruction counts (unlike wall-clock time) do not depend on what else the machine
/// is doing. `<bench>` is one of the benchmark names above.
fn profile(what: &str) {
    let config: &Config = &CONFIG;
    let (input, parsed) = if what.ends_with("_4k") {
        (&*GENERATED, &*PARSED_GENERATED)
    } else {
        (&*CORPUS, &*PARSED_CORPUS)
    };
    // The first round fills the lazy DFAs' caches, as the warm-up of a benchmark does; it is
    // not in `profile_round`, so callgrind leaves it out.
    run_round(what, config, input, parsed);
    let rounds = 3;
    for _ in 0..rounds {
        black_box(profile_round(what, config, input, parsed));
    }
    eprintln!(
        "{what}: {rounds} rounds (after one for warm-up) of {} mails",
        input.mails.len()
    );
}

/// The work callgrind counts: one round, called (not jumped to) so that callgrind sees it
/// begin and end.
#[inline(never)]
fn profile_round(what: &str, config: &Config, input: &Input, parsed: &[InboundMessage]) -> usize {
    run_round(what, config, input, parsed);
    black_box(input.mails.len())
}

#[inline(never)]
fn run_round(what: &str, config: &Config, input: &Input, parsed: &[InboundMessage]) {
    match what.rsplit_once('_').map_or(what, |(kind, _)| kind) {
        "bare_parse" => input.mails.iter().for_each(|raw| {
            black_box(MessageParser::default().parse(black_box(raw.as_slice())));
        }),
        "parse_classify" => input.mails.iter().for_each(|raw| {
            if let Ok(msg) = InboundMessage::parse(black_box(raw)) {
                black_box(classify(config, &msg));
            }
        }),
        "inbound_parse" => input.mails.iter().for_each(|raw| {
            let _ = black_box(InboundMessage::parse(black_box(raw)));
        }),
        "classify_only" => parsed.iter().for_each(|msg| {
            black_box(classify(config, black_box(msg)));
        }),
        "body_scan" => {
            let mut scan = BodyScan::new(config);
            parsed.iter().for_each(|msg| scan.run(msg));
        }
        other => panic!("no benchmark {other}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Benchmarks

#[divan::bench(threads = 1, sample_count = 30, max_time = 10)]
fn bare_parse_corpus(bencher: Bencher) {
    bare_parse(bencher, &CORPUS);
}

#[divan::bench(threads = 1, sample_count = 30, max_time = 10)]
fn parse_classify_corpus(bencher: Bencher) {
    parse_classify(bencher, &CORPUS);
}

#[divan::bench(threads = 1, sample_count = 30, max_time = 10)]
fn inbound_parse_corpus(bencher: Bencher) {
    inbound_parse(bencher, &CORPUS);
}

#[divan::bench(threads = 1, sample_count = 30, max_time = 10)]
fn classify_only_corpus(bencher: Bencher) {
    classify_only(bencher, &CORPUS, &PARSED_CORPUS);
}

#[divan::bench(threads = 1, sample_count = 30, max_time = 10)]
fn bare_parse_4k(bencher: Bencher) {
    bare_parse(bencher, &GENERATED);
}

#[divan::bench(threads = 1, sample_count = 30, max_time = 10)]
fn parse_classify_4k(bencher: Bencher) {
    parse_classify(bencher, &GENERATED);
}

#[divan::bench(threads = 1, sample_count = 30, max_time = 10)]
fn inbound_parse_4k(bencher: Bencher) {
    inbound_parse(bencher, &GENERATED);
}

#[divan::bench(threads = 1, sample_count = 30, max_time = 10)]
fn classify_only_4k(bencher: Bencher) {
    classify_only(bencher, &GENERATED, &PARSED_GENERATED);
}

#[divan::bench(threads = 1, sample_count = 30, max_time = 10)]
fn body_scan_corpus(bencher: Bencher) {
    body_scan(bencher, &CORPUS, &PARSED_CORPUS);
}

#[divan::bench(threads = 1, sample_count = 30, max_time = 10)]
fn body_scan_4k(bencher: Bencher) {
    body_scan(bencher, &GENERATED, &PARSED_GENERATED);
}

/// The one pass that guards against mail mail-parser would take quadratic time on
/// (`message::Limits`), alone: its share of `parse_classify`.
#[divan::bench(threads = 1, sample_count = 30, max_time = 10)]
fn prescan_4k(bencher: Bencher) {
    prescan(bencher, &GENERATED);
}

#[divan::bench(threads = 1, sample_count = 30, max_time = 10)]
fn prescan_corpus(bencher: Bencher) {
    prescan(bencher, &CORPUS);
}

fn prescan(bencher: Bencher, input: &Input) {
    counted(bencher, input).bench_local(|| {
        for raw in &input.mails {
            let _ = divan::black_box(poststelle::message::Limits::DEFAULT.check(raw));
        }
    });
}

fn counted<'a, 'b>(bencher: Bencher<'a, 'b>, input: &Input) -> Bencher<'a, 'b> {
    bencher
        .counter(BytesCount::new(input.bytes))
        .counter(ItemsCount::new(input.mails.len()))
}

fn bare_parse(bencher: Bencher, input: &Input) {
    counted(bencher, input).bench(|| {
        for raw in &input.mails {
            black_box(MessageParser::default().parse(black_box(raw.as_slice())));
        }
    });
}

fn parse_classify(bencher: Bencher, input: &Input) {
    let config: &Config = &CONFIG;
    counted(bencher, input).bench(|| {
        for raw in &input.mails {
            if let Ok(msg) = InboundMessage::parse(black_box(raw)) {
                black_box(classify(config, &msg));
            }
        }
    });
}

fn inbound_parse(bencher: Bencher, input: &Input) {
    counted(bencher, input).bench(|| {
        for raw in &input.mails {
            let _ = black_box(InboundMessage::parse(black_box(raw)));
        }
    });
}

fn classify_only(bencher: Bencher, input: &Input, parsed: &[InboundMessage]) {
    let config: &Config = &CONFIG;
    counted(bencher, input).bench(|| {
        for msg in parsed {
            black_box(classify(config, black_box(msg)));
        }
    });
}

fn body_scan(bencher: Bencher, input: &Input, parsed: &[InboundMessage]) {
    let mut scan = BodyScan::new(&CONFIG);
    counted(bencher, input).bench_local(|| {
        for msg in parsed {
            scan.run(msg);
        }
    });
}

/// The body rules' automaton and its scratch space.
struct BodyScan<'c> {
    body: &'c FieldSet,
    found: Vec<bool>,
    pending: Vec<usize>,
}

impl<'c> BodyScan<'c> {
    fn new(config: &'c Config) -> Self {
        let body = config
            .rules
            .fields
            .iter()
            .find(|f| matches!(f.field, Field::Body))
            .expect("the benchmark rules read the body");
        BodyScan {
            body,
            found: vec![false; body.patterns.len()],
            pending: Vec::new(),
        }
    }

    fn run(&mut self, msg: &InboundMessage) {
        self.found.fill(false);
        self.body
            .mark(black_box(&msg.body), &mut self.found, &mut self.pending);
        black_box(&self.found);
    }
}

// ---------------------------------------------------------------------------------------------
// Shared state

/// One input set: raw mails and their total size.
struct Input {
    mails: Vec<Vec<u8>>,
    bytes: usize,
}

impl Input {
    fn new(mails: Vec<Vec<u8>>) -> Input {
        let bytes = mails.iter().map(Vec::len).sum();
        Input { mails, bytes }
    }
}

static CONFIG: LazyLock<Config> = LazyLock::new(load_config);
/// `cargo test --all-targets` runs this binary without `--bench` (divan then runs every bench
/// once, in an unoptimised build): a few small mails are enough to see that nothing breaks.
static SMOKE_TEST: LazyLock<bool> = LazyLock::new(|| !mode::measuring());

static CORPUS: LazyLock<Input> = LazyLock::new(|| {
    let mut mails = read_corpus();
    if *SMOKE_TEST {
        mails = mails
            .into_iter()
            .filter(|m| m.len() <= 8_192)
            .step_by(25)
            .collect();
    }
    Input::new(mails)
});
static GENERATED: LazyLock<Input> = LazyLock::new(|| {
    Input::new(generate_mails(if *SMOKE_TEST {
        10
    } else {
        GENERATED_MAILS
    }))
});
static PARSED_CORPUS: LazyLock<Vec<InboundMessage>> = LazyLock::new(|| parse_all(&CORPUS));
static PARSED_GENERATED: LazyLock<Vec<InboundMessage>> = LazyLock::new(|| parse_all(&GENERATED));

fn parse_all(input: &Input) -> Vec<InboundMessage> {
    input
        .mails
        .iter()
        .filter_map(|raw| InboundMessage::parse(raw).ok())
        .collect()
}

/// Every file under `tests/corpus` except its two documentation files, in path order.
fn read_corpus() -> Vec<Vec<u8>> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if !matches!(
                path.file_name().and_then(|n| n.to_str()),
                Some("expectations.tsv" | "SOURCES.md")
            ) {
                out.push(path);
            }
        }
    }
    let mut paths = Vec::new();
    walk(&Path::new(MANIFEST_DIR).join("tests/corpus"), &mut paths);
    paths.sort();
    assert!(!paths.is_empty(), "tests/corpus holds no mail");
    paths
        .iter()
        .map(|p| fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display())))
        .collect()
}

/// The shipped configuration plus the generated rules, loaded from a temporary directory
/// (removed again once everything is in memory).
fn load_config() -> Config {
    let root = Path::new(MANIFEST_DIR);
    let tmp = tempfile::tempdir().expect("create a temporary directory");
    let dir = tmp.path();
    let config_text =
        fs::read_to_string(root.join("poststelle.toml")).expect("read the shipped poststelle.toml");
    fs::write(dir.join("poststelle.toml"), config_text).expect("write poststelle.toml");
    copy_tree(&root.join("rules"), &dir.join("rules"));
    copy_tree(&root.join("templates"), &dir.join("templates"));
    fs::create_dir_all(dir.join("contacts")).expect("create contacts/");
    fs::copy(
        root.join("contacts/hessen.toml"),
        dir.join("contacts/hessen.toml"),
    )
    .expect("copy contacts/hessen.toml");
    let rules = generated_rules();
    let generated = rules.matches("[[rule]]").count();
    assert!(
        generated >= MIN_RULES,
        "only {generated} generated rules, want {MIN_RULES}"
    );
    fs::write(dir.join("rules").join(GENERATED_RULE_FILE), rules).expect("write generated rules");

    let config = match Config::load(Some(&dir.join("poststelle.toml"))) {
        Ok(config) => config,
        Err(diags) => panic!(
            "the benchmark configuration is invalid ({} problems):\n{diags}",
            diags.len()
        ),
    };
    assert!(
        config.rules.rules.len() >= MIN_RULES,
        "the configuration holds {} rules, want at least {MIN_RULES}",
        config.rules.rules.len()
    );
    config
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap_or_else(|e| panic!("create {}: {e}", to.display()));
    let entries = fs::read_dir(from).unwrap_or_else(|e| panic!("read {}: {e}", from.display()));
    for entry in entries {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), &target)
                .unwrap_or_else(|e| panic!("copy {}: {e}", entry.path().display()));
        }
    }
}

/// What the benchmark runs on, and what the classifier makes of the generated mails.
fn print_setup() {
    let config: &Config = &CONFIG;
    let patterns: usize = config.rules.fields.iter().map(|f| f.patterns.len()).sum();
    eprintln!(
        "config: {} rules ({} generated), {} patterns in {} field sets",
        config.rules.rules.len(),
        generated_rules().matches("[[rule]]").count(),
        patterns,
        config.rules.fields.len()
    );
    for f in &config.rules.fields {
        eprintln!(
            "  {:<40} {:>4} patterns ({})",
            f.field.to_string(),
            f.patterns.len(),
            f.summary()
        );
    }
    for (name, input, parsed) in [
        ("corpus", &*CORPUS, &*PARSED_CORPUS),
        ("4k", &*GENERATED, &*PARSED_GENERATED),
    ] {
        let sizes = input.mails.iter().map(Vec::len);
        let (min, max) = (sizes.clone().min().unwrap_or(0), sizes.max().unwrap_or(0));
        // Every decision, hashed: equal digests before and after an optimisation show that
        // the classifier still decides alike on every mail.
        let mut digest = std::hash::DefaultHasher::new();
        for msg in parsed {
            let d = classify(config, msg);
            serde_json::to_string(&d)
                .expect("a decision serialises")
                .hash(&mut digest);
        }
        let mut matched = 0;
        let mut queues = std::collections::BTreeMap::<String, usize>::new();
        // A sample keeps start-up short: classifying everything once takes as long as a bench.
        let sample = &parsed[..parsed.len().min(STATS_SAMPLE)];
        for msg in sample {
            let d = classify(config, msg);
            matched += d.rules.len();
            *queues
                .entry(format!("{:?}/{}", d.action, d.queue))
                .or_default() += 1;
        }
        eprintln!(
            "{name}: {} mails, {} bytes (mean {}, min {min}, max {max}); {} parsed; \
             decisions digest {:016x}; \
             of the first {}: {:.2} rules matched per mail, action/queue {queues:?}",
            input.mails.len(),
            input.bytes,
            input.bytes / input.mails.len().max(1),
            parsed.len(),
            digest.finish(),
            sample.len(),
            matched as f64 / sample.len().max(1) as f64,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Vocabulary

/// A Fachverfahren (specialised administrative application): name as people write it, regex,
/// queue of the department that owns it.
struct Fachverfahren {
    name: &'static str,
    re: &'static str,
    queue: &'static str,
}

const fn fv(name: &'static str, re: &'static str, queue: &'static str) -> Fachverfahren {
    Fachverfahren { name, re, queue }
}

const FACHVERFAHREN: &[Fachverfahren] = &[
    fv("VOIS|MESO", r"\bvois\b|\bmeso\b", "ressort-inneres"),
    fv("OK.EWO", r"\bok\.?ewo\b", "ressort-inneres"),
    fv("XMeld", r"\bxmeld\b", "ressort-inneres"),
    fv("i-Kfz", r"\bi-?kfz\b", "ressort-wirtschaft"),
    fv(
        "Kfz-Zulassung",
        r"\bkfz-?zulassung(sstelle)?\b",
        "ressort-wirtschaft",
    ),
    fv("OK.VERKEHR", r"\bok\.?verkehr\b", "ressort-wirtschaft"),
    fv(
        "Führerscheinstelle",
        r"\bf(ü|ue)hrerschein(stelle|antrag|umtausch)?\b",
        "ressort-wirtschaft",
    ),
    fv("OPEN/PROSOZ", r"\b(open/)?prosoz\b", "ressort-soziales"),
    fv("SoPart", r"\bso-?part\b", "ressort-soziales"),
    fv("LISSA", r"\blissa\b", "ressort-soziales"),
    fv(
        "Kita-Portal",
        r"\bkita-?(portal|planer|navigator)\b",
        "ressort-soziales",
    ),
    fv(
        "Elterngeld Digital",
        r"\belterngeld(stelle|antrag|\s+digital)?\b",
        "ressort-soziales",
    ),
    fv(
        "Wohngeld-Plus",
        r"\bwohngeld(stelle|antrag|bescheid|-?plus)?\b",
        "ressort-wirtschaft",
    ),
    fv(
        "BAföG-Digital",
        r"\bbaf(ö|oe)g(-?digital|-?amt)?\b",
        "ressort-wissenschaft",
    ),
    fv(
        "SAP S/4HANA",
        r"\bsap(\s+(fi|mm|hcm|s/4(hana)?))?\b",
        "support",
    ),
    fv("H&H proDoppik", r"\bpro-?doppik\b", "support"),
    fv("Infoma newsystem", r"\binfoma\b|\bnewsystem\b", "support"),
    fv("KM-Kasse", r"\bkm-?kasse\b|\bkassenverfahren\b", "support"),
    fv(
        "ePayBL",
        r"\bepay-?bl\b|\bzahlungsverkehrsplattform\b",
        "support",
    ),
    fv("HKR-Verfahren", r"\bhkr(-?verfahren)?\b", "support"),
    fv("AutiSta", r"\bautista\b", "ressort-inneres"),
    fv(
        "XPersonenstand",
        r"\bxpersonenstand\b|\bstandesamt\b",
        "ressort-inneres",
    ),
    fv(
        "ProBauG",
        r"\bpro-?baug\b|\bbauantrag\b",
        "ressort-wirtschaft",
    ),
    fv(
        "ALKIS",
        r"\balkis\b|\bliegenschaftskataster\b",
        "ressort-wirtschaft",
    ),
    fv("GeoOffice", r"\bgeo-?office\b", "ressort-wirtschaft"),
    fv("ArcGIS Pro", r"\barcgis(\s+pro)?\b", "ressort-wirtschaft"),
    fv("ALLRIS", r"\ballris\b", "support"),
    fv(
        "SD.NET",
        r"\bsd\.?net\b|\bratsinfo(rmationssystem)?\b",
        "support",
    ),
    fv("regisafe", r"\bregisafe\b", "support"),
    fv("d.3", r"\bd\.3(ecm|\s+smart\s+explorer)?\b", "support"),
    fv("enaio", r"\benaio\b", "support"),
    fv("VIS-Suite", r"\bvis-?suite\b", "support"),
    fv("votemanager", r"\bvote-?manager\b", "ressort-inneres"),
    fv(
        "OK.WAHL",
        r"\bok\.?wahl\b|\bwahlhelfer(portal)?\b",
        "ressort-inneres",
    ),
    fv(
        "OK.GEWERBE",
        r"\bok\.?gewerbe\b|\bgewerbe(an|ab|um)meldung\b",
        "ressort-wirtschaft",
    ),
    fv(
        "ADVIS",
        r"\badvis\b|\bausl(ä|ae)nderbeh(ö|oe)rde\b",
        "ressort-inneres",
    ),
    fv("LaDiVa", r"\bladiva\b", "ressort-inneres"),
    fv(
        "OWi21",
        r"\bowi\s?21\b|\bbu(ß|ss)geldverfahren\b",
        "ressort-inneres",
    ),
    fv("WinOWiG", r"\bwin-?owig\b", "ressort-inneres"),
    fv("HISinOne", r"\bhis-?in-?one\b", "ressort-wissenschaft"),
    fv("Stud.IP", r"\bstud\.?ip\b", "ressort-wissenschaft"),
    fv(
        "Moodle",
        r"\bmoodle\b|\blernplattform\b",
        "ressort-wissenschaft",
    ),
    fv("Civento", r"\bciven-?to\b", "support"),
    fv(
        "Form-Solutions",
        r"\bform-?solutions\b|\bonline-?formular\b",
        "support",
    ),
];

/// An IT topic: name, regex, queue, category, optional Störungsklasse.
struct Topic {
    name: &'static str,
    re: &'static str,
    queue: &'static str,
    category: &'static str,
    severity: Option<u8>,
}

const fn topic(
    name: &'static str,
    re: &'static str,
    queue: &'static str,
    category: &'static str,
    severity: Option<u8>,
) -> Topic {
    Topic {
        name,
        re,
        queue,
        category,
        severity,
    }
}

const TOPICS: &[Topic] = &[
    topic(
        "Drucker",
        r"\b(netzwerk|etiketten)?drucker\b|\bdruckauftr(ä|ae)ge?\b",
        "support",
        "hardware",
        None,
    ),
    topic(
        "Scanner",
        r"\bscanner\b|\bscan-?to-?(mail|folder)\b",
        "support",
        "hardware",
        None,
    ),
    topic(
        "Multifunktionsgerät",
        r"\bmultifunktionsger(ä|ae)te?s?\b|\bmfp\b",
        "support",
        "hardware",
        None,
    ),
    topic(
        "Toner",
        r"\btoner(kartusche)?\b|\bpapierstau\b",
        "support",
        "hardware",
        None,
    ),
    topic(
        "Bildschirm",
        r"\b(bildschirm|monitor)(e|en)?\b",
        "support",
        "hardware",
        None,
    ),
    topic(
        "Dockingstation",
        r"\bdocking-?station\b",
        "support",
        "hardware",
        None,
    ),
    topic(
        "Headset",
        r"\bheadsets?\b|\blautsprecher\b",
        "support",
        "hardware",
        None,
    ),
    topic(
        "Webcam",
        r"\bwebcam\b|\bkamera\b",
        "support",
        "hardware",
        None,
    ),
    topic(
        "Tastatur",
        r"\btastatur\b|\bmaus\b",
        "support",
        "hardware",
        None,
    ),
    topic(
        "Notebook",
        r"\b(notebook|laptop)s?\b",
        "support",
        "hardware",
        None,
    ),
    topic(
        "Telefon",
        r"\bsoftphone\b|\btelefon(anlage)?\b|\brufumleitung\b",
        "betrieb",
        "telefonie",
        None,
    ),
    topic(
        "Passwort",
        r"\bpassw(ort|örter)\b|\bkennwort\b",
        "support",
        "konto",
        None,
    ),
    topic(
        "Konto gesperrt",
        r"\b(konto|benutzerkonto|account|zugang)\s+(ist\s+)?gesperrt\b",
        "support",
        "konto",
        Some(2),
    ),
    topic(
        "Zwei-Faktor",
        r"\b(2fa|mfa|zwei-?faktor|authenticator)\b",
        "support",
        "konto",
        None,
    ),
    topic(
        "VPN",
        r"\bvpn\b|\bforticlient\b|\banyconnect\b",
        "betrieb",
        "netz",
        None,
    ),
    topic(
        "Citrix",
        r"\bcitrix\b|\bworkspace\s+app\b|\bvirtuelle[rn]?\s+desktop\b",
        "betrieb",
        "terminalserver",
        None,
    ),
    topic(
        "Zertifikat",
        r"\bzertifikat(e|s)?\b|\bsignaturkarte\b",
        "betrieb",
        "zertifikate",
        None,
    ),
    topic(
        "Outlook",
        r"\boutlook\b|\bfunktionspostfach\b",
        "support",
        "e-mail",
        None,
    ),
    topic(
        "Netzlaufwerk",
        r"\bnetzlaufwerk\b|\blaufwerk\s+[a-z]:|\bfreigabe\b",
        "support",
        "dateiablage",
        None,
    ),
    topic(
        "Teams",
        r"\bms\s+teams\b|\bwebex\b|\bvideokonferenz\b",
        "support",
        "kommunikation",
        None,
    ),
    topic(
        "WLAN",
        r"\bw-?lan\b|\bwifi\b|\beduroam\b",
        "betrieb",
        "netz",
        None,
    ),
    topic(
        "Firewall",
        r"\bfirewall\b|\bproxy\b|\bwebseite\s+gesperrt\b",
        "betrieb",
        "netz",
        None,
    ),
    topic(
        "Phishing",
        r"\bphishing\b|\bverd(ä|ae)chtige\s+(e-?mail|nachricht)\b",
        "betrieb",
        "sicherheit",
        Some(2),
    ),
    topic(
        "Schadsoftware",
        r"\bvir(us|en)\b|\btrojaner\b|\bransomware\b|\bmalware\b",
        "betrieb",
        "sicherheit",
        Some(1),
    ),
    topic(
        "Windows-Update",
        r"\bwindows(-|\s)?(10|11|update)\b|\bupdates?\b",
        "support",
        "client",
        None,
    ),
    topic(
        "Software-Installation",
        r"\bsoftware(-|\s)?(installation|verteilung|paket)\b|\binstallation\s+von\b",
        "support",
        "software",
        None,
    ),
    topic(
        "Berechtigung",
        r"\bberechtigung(en)?\b|\bzugriffsrechte?\b",
        "support",
        "konto",
        None,
    ),
    topic(
        "Neue Mitarbeiterin",
        r"\bneue[rn]?\s+(mitarbeiter(in)?|kolleg(e|in))\b|\bonboarding\b",
        "support",
        "konto",
        None,
    ),
    topic(
        "Austritt",
        r"\baustritt\b|\bausscheiden\b|\boffboarding\b",
        "support",
        "konto",
        None,
    ),
    topic(
        "Zugangskarte",
        r"\bzugangskarte\b|\bdienstausweis\b|\btransponder\b",
        "support",
        "gebaeude",
        None,
    ),
    topic(
        "USV",
        r"\busv\b|\bstromausfall\b|\bserverraum\b",
        "betrieb",
        "rechenzentrum",
        Some(1),
    ),
    topic(
        "Datensicherung",
        r"\bbackup\b|\bdatensicherung\b|\bwiederherstellung\b",
        "betrieb",
        "rechenzentrum",
        None,
    ),
    topic(
        "Speicherplatz",
        r"\bspeicherplatz\b|\bquota\b|\bpostfach\s+(ist\s+)?voll\b",
        "support",
        "e-mail",
        None,
    ),
    topic(
        "Fachverfahren",
        r"\bfachverfahren\b|\bfachanwendung\b",
        "support",
        "fachverfahren",
        None,
    ),
    topic(
        "Bürgerportal",
        r"\bb(ü|ue)rgerportal\b|\bserviceportal\b|\bonline-?dienst\b",
        "support",
        "portal",
        None,
    ),
    topic(
        "Homepage",
        r"\bhomepage\b|\binternetseite\b|\bwebauftritt\b",
        "support",
        "portal",
        None,
    ),
    topic(
        "E-Akte",
        r"\be-?akte\b|\bdokumentenmanagement\b",
        "support",
        "dms",
        None,
    ),
    topic(
        "Diensthandy",
        r"\bdiensthandy\b|\bsmartphone\b|\bintune\b",
        "support",
        "mobil",
        None,
    ),
    topic(
        "Beschaffung",
        r"\bbestellung\b|\bbeschaffung\b|\bwarenkorb\b",
        "support",
        "beschaffung",
        Some(4),
    ),
    topic(
        "Schulung",
        r"\bschulung(stermin)?\b|\bfortbildung\b|\bwebinar\b",
        "support",
        "schulung",
        Some(4),
    ),
    topic(
        "Datenschutz",
        r"\bdatenschutz(verletzung|vorfall)?\b|\bdsgvo\b",
        "support",
        "datenschutz",
        Some(2),
    ),
];

/// Hessian towns whose administrations write to the desk.
const TOWNS: &[&str] = &[
    "Wiesbaden",
    "Darmstadt",
    "Kassel",
    "Fulda",
    "Gießen",
    "Marburg",
    "Wetzlar",
    "Limburg",
    "Hanau",
    "Offenbach",
    "Rüsselsheim",
    "Bad Homburg",
    "Oberursel",
    "Friedberg",
    "Büdingen",
    "Alsfeld",
    "Lauterbach",
    "Eschwege",
    "Bad Hersfeld",
    "Korbach",
    "Frankenberg",
    "Dillenburg",
    "Herborn",
    "Idstein",
    "Eltville",
    "Rüdesheim",
    "Bensheim",
    "Heppenheim",
    "Dieburg",
    "Erbach",
    "Michelstadt",
    "Groß-Gerau",
    "Dreieich",
    "Langen",
    "Neu-Isenburg",
    "Gelnhausen",
    "Schlüchtern",
    "Hofheim",
    "Taunusstein",
    "Homberg",
    "Witzenhausen",
    "Melsungen",
    "Fritzlar",
    "Baunatal",
    "Vellmar",
    "Bad Wildungen",
    "Biedenkopf",
    "Weilburg",
    "Butzbach",
    "Bad Nauheim",
];

const FIRST_NAMES: &[&str] = &[
    "Jürgen", "Sabine", "Özlem", "Björn", "Katrin", "Thomas", "Andrea", "Stefan", "Petra",
    "Michael", "Monika", "Frank", "Jörg", "Bärbel", "Anja", "Uwe", "Claudia", "Günther", "Lea",
    "Mehmet", "Sören", "Ines", "Dirk", "Käthe",
];

const LAST_NAMES: &[&str] = &[
    "Müller",
    "Schäfer",
    "Yılmaz",
    "Weiß",
    "Groß",
    "Becker",
    "Hoffmann",
    "Schröder",
    "Köhler",
    "Wagner",
    "Krüger",
    "Böhm",
    "Fischer",
    "Weber",
    "Schmitt",
    "Jäger",
    "Lorenz",
    "Brückner",
    "Hähnel",
    "Kaya",
    "Nowak",
    "Vogt",
    "Günther",
    "Löffler",
];

const OFFICES: &[&str] = &[
    "Bürgerbüro",
    "Ordnungsamt",
    "Standesamt",
    "Kfz-Zulassungsstelle",
    "Sozialamt",
    "Jugendamt",
    "Bauaufsicht",
    "Kämmerei",
    "Stadtkasse",
    "Hauptamt – Organisation und IT",
    "Ausländerbehörde",
    "Führerscheinstelle",
    "Wahlamt",
    "Personalamt",
];

const STREETS: &[&str] = &[
    "Marktplatz",
    "Rathausplatz",
    "Schloßstraße",
    "Bahnhofstraße",
    "Friedrich-Ebert-Straße",
    "Kirchgasse",
    "Am Römertor",
    "Untere Königsstraße",
];

/// Sentences of requests; `{fv}`, `{topic}`, `{town}`, `{num}`, `{date}`, `{room}`, `{host}`,
/// `{last}`, `{phone}` are filled in.
const SENTENCES: &[&str] = &[
    "seit heute Morgen lässt sich {fv} an meinem Arbeitsplatz nicht mehr starten.",
    "Beim Speichern eines Vorgangs in {fv} erscheint die Fehlermeldung „Verbindung zum Server unterbrochen“ (Code {num}).",
    "Der Drucker im Raum {room} druckt nur noch leere Seiten, obwohl der Toner gestern gewechselt wurde.",
    "Könnten Sie bitte mein Passwort für {fv} zurücksetzen? Nach drei Fehlversuchen ist mein Zugang gesperrt.",
    "Die VPN-Verbindung aus dem Homeoffice bricht nach etwa zehn Minuten ab; danach ist kein Zugriff auf das Netzlaufwerk mehr möglich.",
    "In der Kfz-Zulassungsstelle {town} warten derzeit viele Bürgerinnen und Bürger, weil {fv} sehr langsam reagiert.",
    "Wir bitten um Freischaltung der Berechtigung für Frau {last} ab dem {date}, sie übernimmt die Sachbearbeitung in {fv}.",
    "Einen Screenshot der Meldung habe ich Ihnen angehängt.",
    "Die Citrix-Sitzung friert regelmäßig ein, wenn ich Dokumente aus der E-Akte öffne.",
    "Das Zertifikat für die Schnittstelle zu {fv} läuft laut Warnmeldung am {date} ab.",
    "Mein Outlook meldet, dass der Speicherplatz des Funktionspostfachs fast erschöpft ist.",
    "Bitte installieren Sie auf dem Rechner {host} die aktuelle Version von {fv}.",
    "Die Bildschirme in der Bürgerberatung flackern seit dem letzten Windows-Update.",
    "Für die Wahlvorbereitung in {town} benötigen wir bis Freitag weitere Zugänge zu {fv}.",
    "Auf der Homepage der Stadt {town} wird das Online-Formular für die Hundesteuer nicht angezeigt.",
    "Die Dockingstation erkennt den zweiten Monitor nicht mehr, und das Headset bleibt stumm.",
    "Ich habe eine verdächtige E-Mail mit einem ZIP-Anhang erhalten und diesen nicht geöffnet.",
    "Können Sie mir mitteilen, bis wann die Störung voraussichtlich behoben ist?",
    "Wir arbeiten derzeit mit Papierformularen weiter und erfassen die Anträge später nach.",
    "Der Fehler tritt nur bei Vorgängen mit Umlauten im Nachnamen auf, z. B. bei „Müller-Lüdenscheidt“ oder „Größlein“.",
    "Zur Info: Die Telefonanlage in der Außenstelle {town} hat heute Vormittag die Rufumleitung verloren.",
    "Die Schnittstelle zwischen {fv} und dem Dokumentenmanagement überträgt seit {date} keine Dokumente mehr.",
    "Eine Kollegin aus dem Bürgerbüro meldet dasselbe Verhalten an ihrem Arbeitsplatz.",
    "Ein Neustart des Rechners und das Löschen des Browser-Caches haben leider nichts geändert.",
    "Die Rechnungsläufe in {fv} müssen bis Monatsende abgeschlossen sein, daher ist die Angelegenheit für uns dringend.",
    "Bitte rufen Sie mich unter der Durchwahl {phone} zurück, ich bin bis 15:30 Uhr im Büro.",
    "Die Anmeldung am Bürgerportal schlägt mit der Meldung „Ungültiges Token“ fehl.",
    "Für die neue Mitarbeiterin in der Ausländerbehörde benötigen wir einen Zugang zu {fv} und eine Signaturkarte.",
    "Das WLAN im Sitzungssaal des Rathauses {town} ist seit der Umstellung nicht mehr erreichbar.",
    "Der Scanner am Multifunktionsgerät im 2. OG sendet keine Scans mehr an das Funktionspostfach.",
    "Laut Hersteller von {fv} soll das Problem mit dem nächsten Update behoben sein; wann wird es bei uns eingespielt?",
    "Die Sachbearbeiterinnen können in {fv} keine Bescheide mehr drucken, die Vorschau bleibt weiß.",
    "Im Serverraum der Außenstelle piept seit gestern Abend die USV.",
    "Seit der Umstellung auf Windows 11 startet {fv} nur noch mit Administratorrechten.",
    "Bitte richten Sie für Herrn {last} einen Zugang zum Netzlaufwerk der Kämmerei (Laufwerk K:) ein.",
    "Das Diensthandy von Frau {last} zeigt keine E-Mails mehr an, seit das Passwort geändert wurde.",
    "Wir möchten für die Schulung am {date} zehn Notebooks mit {fv} ausleihen.",
    "Die Datensicherung des Fachverfahrens meldet seit drei Nächten einen Fehler; bitte prüfen Sie, ob die Wiederherstellung noch möglich ist.",
    "Beim Aufruf der Internetseite des Landkreises kommt die Meldung, die Webseite sei durch die Firewall gesperrt.",
    "Ist es möglich, die Videokonferenz mit dem Regierungspräsidium über Webex statt über MS Teams zu führen?",
    "Gemeinsam mit der Stadtverwaltung {town} prüfen wir gerade, ob die Umstellung auf {fv} bis Jahresende gelingt.",
    "Die Vorgangsnummer aus dem Bürgerportal lautet {num}; die Antragstellerin hat sich bereits zweimal beschwert.",
    "Beim Export aus {fv} werden die Umlaute als Fragezeichen dargestellt (ä → ?, ß → ?).",
];

/// Sentences of citizens' questions that reach the desk through the Nutzerkonto.
const CITIZEN_SENTENCES: &[&str] = &[
    "ich habe am {date} über mein Nutzerkonto einen Antrag gestellt und bisher keine Eingangsbestätigung erhalten.",
    "Können Sie mir sagen, welche Unterlagen ich noch nachreichen muss?",
    "Im Postfach meines Nutzerkontos finde ich keinen Bescheid, obwohl mir dieser angekündigt wurde.",
    "Die Hochladefunktion für Nachweise bricht bei PDF-Dateien über 5 MB ab.",
    "Ich wohne in {town} und weiß nicht, welche Behörde für meinen Antrag zuständig ist.",
    "Mein Aktenzeichen lautet {num}; bitte teilen Sie mir den aktuellen Bearbeitungsstand mit.",
    "Vielen Dank im Voraus für Ihre Mühe.",
];

/// Betreffs of Nutzerkonto questions (`<STATE>_<Betreff>_<NKB|MUK>`).
const NK_BETREFFS: &[&str] = &[
    "Wohngeld Antrag",
    "Gewerbeanmeldung",
    "Waffenschein Verlängerung",
    "Elterngeld Bescheid",
    "Führerschein Umtausch",
    "BAföG Antrag",
    "Hundesteuer",
    "Meldebescheinigung",
    "Lastenzuschuss",
    "Kfz-Zulassung",
];

const NK_STATES: &[&str] = &["HE", "HE", "HE", "HE", "RP", "BY", "NW", "TH"];

/// Subjects; the same placeholders as [`SENTENCES`].
const SUBJECTS: &[&str] = &[
    "Drucker im Raum {room} druckt nicht mehr",
    "{fv}: Fehlermeldung beim Speichern",
    "Passwort für {fv} abgelaufen",
    "VPN-Verbindung bricht ständig ab",
    "Kfz-Zulassung {town}: i-Kfz nicht erreichbar",
    "Bitte um Freischaltung für {fv}",
    "Neue Mitarbeiterin ab {date} – Zugänge benötigt",
    "Störung {fv} in {town}",
    "Anfrage: Berechtigung Netzlaufwerk",
    "Bildschirm flackert nach Update",
    "Zertifikat für {fv} läuft ab",
    "Outlook: Postfach ist voll",
    "Citrix-Sitzung friert ein",
    "Totalausfall {fv} – nichts geht mehr",
    "{fv} sehr langsam",
    "Rückfrage zu Ihrer Bestellung Nr. {num}",
    "Schönheitsfehler im Bürgerportal",
    "Telefonanlage {town}: Rufumleitung weg",
    "Dringend: Konto gesperrt",
    "Verdächtige E-Mail erhalten",
    "Schulungstermin {fv} am {date}",
    "Frage zur Datensicherung",
    "Dockingstation und Headset defekt",
    "Änderungswunsch Homepage Stadt {town}",
    "WLAN im Rathaus {town} gestört",
    "{fv} – Umlaute werden falsch dargestellt",
    "Bitte um Rückruf wegen {fv}",
];

// ---------------------------------------------------------------------------------------------
// Generated rules

fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().flat_map(char::to_lowercase) {
        match c {
            'ä' => out.push_str("ae"),
            'ö' => out.push_str("oe"),
            'ü' => out.push_str("ue"),
            'ß' => out.push_str("ss"),
            'ı' => out.push('i'),
            c if c.is_ascii_alphanumeric() => out.push(c),
            _ => {
                if !out.is_empty() && !out.ends_with('-') {
                    out.push('-');
                }
            }
        }
    }
    out.trim_end_matches('-').to_string()
}

/// A town's name as a regex that also accepts the spelled-out umlauts.
fn town_re(town: &str) -> String {
    let mut out = String::new();
    for c in town.to_lowercase().chars() {
        match c {
            'ä' => out.push_str("(ä|ae)"),
            'ö' => out.push_str("(ö|oe)"),
            'ü' => out.push_str("(ü|ue)"),
            'ß' => out.push_str("(ß|ss)"),
            ' ' => out.push_str(r"\s+"),
            '-' => out.push_str(r"[-\s]"),
            c => out.push(c),
        }
    }
    out
}

fn town_domain(town: &str) -> String {
    format!("{}.de", slug(town))
}

/// The regex of a town's mail domain and its subdomains.
fn domain_re(domain: &str) -> String {
    format!(r"(^|\.){}$", domain.replace('.', r"\."))
}

/// One `[[rule]]` table; `when` and `then` are TOML lines without their `when.`/`then.` prefix.
fn rule(
    out: &mut String,
    name: &str,
    priority: i64,
    description: &str,
    when: &[String],
    then: &[String],
) {
    out.push_str(&format!(
        "\n[[rule]]\nname = \"{name}\"\ndescription = \"{description}\"\npriority = {priority}\n"
    ));
    for w in when {
        out.push_str(&format!("when.{w}\n"));
    }
    for t in then {
        out.push_str(&format!("then.{t}\n"));
    }
}

fn tags(list: &[&str]) -> String {
    let quoted: Vec<String> = list.iter().map(|t| format!("\"{t}\"")).collect();
    format!("tags = [{}]", quoted.join(", "))
}

/// More than 200 rules of a municipal IT helpdesk.
fn generated_rules() -> String {
    let mut out = String::from(
        "# Generated by benches/classify.rs: rules of a municipal IT helpdesk, for throughput.\n",
    );
    let s = |x: &str| x.to_string();
    let failure = r"\bst(ö|oe)rung\b|\bausfall\b|\bfehler(meldung)?\b|\bgeht\s+nicht\b";
    let failure_body = r"\bfehlermeldung\b|\babsturz\b|\bst(ü|ue)rzt\s+(st(ä|ae)ndig\s+)?ab\b|\bh(ä|ae)ngt\s+sich\s+auf\b";

    // Recipients: functional addresses route before everything but the Nutzerkonto router.
    for (local, queue, category) in [
        ("vpn(-support)?", "betrieb", "netz"),
        ("fachverfahren(-support)?", "support", "fachverfahren"),
        ("druck(er)?(-support)?", "support", "hardware"),
        ("datenschutz(beauftragte)?", "support", "datenschutz"),
        (
            "(rz|rechenzentrum|betrieb|leitstand)",
            "betrieb",
            "rechenzentrum",
        ),
        ("(sicherheit|cert|abuse|isb)", "betrieb", "sicherheit"),
        ("(einkauf|beschaffung)", "support", "beschaffung"),
        ("(wahl|wahlen|wahlamt)", "ressort-inneres", "wahlen"),
        (
            "(sozial|jobcenter)-?it",
            "ressort-soziales",
            "fachverfahren",
        ),
        (
            "(hochschul|uni)-?it",
            "ressort-wissenschaft",
            "fachverfahren",
        ),
    ] {
        rule(
            &mut out,
            &format!("an-{}-{}", slug(category), slug(local)),
            150,
            "Mail to a functional address of the desk.",
            &[format!("to = '^{local}@'")],
            &[
                format!("queue = \"{queue}\""),
                format!("category = \"{category}\""),
            ],
        );
    }

    // Header signals.
    let headers: &[(&str, &str, &str, &[&str])] = &[
        (
            "prio-hoch-x-priority",
            "X-Priority",
            r"^\s*[12]\b",
            &["prio-hoch"],
        ),
        (
            "prio-hoch-importance",
            "Importance",
            r"^\s*high\b",
            &["prio-hoch"],
        ),
        (
            "client-outlook",
            "X-Mailer",
            r"\bmicrosoft\s+(office\s+)?outlook\b",
            &["client-outlook"],
        ),
        (
            "client-thunderbird",
            "User-Agent",
            r"\bthunderbird\b",
            &["client-thunderbird"],
        ),
        (
            "client-notes",
            "X-Mailer",
            r"\b(lotus|hcl)\s+notes\b",
            &["client-notes"],
        ),
        (
            "client-webmail",
            "User-Agent",
            r"\broundcube\b|\bsogo\b|\bopen-?xchange\b",
            &["client-webmail"],
        ),
        (
            "spam-verdacht",
            "X-Spam-Score",
            r"^\s*([5-9]|\d{2,})(\.\d+)?\s*$",
            &["spam-verdacht"],
        ),
        (
            "intern-zugestellt",
            "Received",
            r"\bfrom\s+\S+\.kommunal-it\.example\b",
            &["intern"],
        ),
        (
            "newsletter",
            "List-Unsubscribe",
            r"<(https?|mailto):",
            &["newsletter"],
        ),
        (
            "vertraulich",
            "Sensitivity",
            r"^\s*(private|company-confidential)\b",
            &["vertraulich"],
        ),
        (
            "exchange-intern",
            "X-MS-Exchange-Organization-AuthAs",
            r"^\s*internal\b",
            &["intern"],
        ),
        (
            "ticket-quelle",
            "X-Ticket-Source",
            r"\b(portal|formular|telefon)\b",
            &["quelle-portal"],
        ),
    ];
    for (i, (name, header, re, t)) in headers.iter().enumerate() {
        rule(
            &mut out,
            name,
            200 + i as i64,
            "Header signal.",
            &[format!("header.\"{header}\" = '{re}'")],
            &[tags(t)],
        );
    }

    // Fachverfahren: the owning department's queue, and class 2 when it fails.
    for (i, f) in FACHVERFAHREN.iter().enumerate() {
        let sl = slug(f.name);
        let where_ = if i % 3 == 0 {
            format!(
                "any = [{{ normalized_subject = '{}' }}, {{ body = '{}' }}]",
                f.re, f.re
            )
        } else {
            format!(
                "any = [{{ subject = '{}' }}, {{ body = '{}' }}]",
                f.re, f.re
            )
        };
        rule(
            &mut out,
            &format!("fv-{sl}"),
            300,
            "Fachverfahren named in subject or body.",
            &[where_],
            &[
                format!("queue = \"{}\"", f.queue),
                s("category = \"fachverfahren\""),
                tags(&[&format!("fv-{sl}")]),
            ],
        );
        rule(
            &mut out,
            &format!("fv-{sl}-stoerung"),
            310,
            "Fachverfahren fails: betriebsbehindernd.",
            &[format!(
                "all = [{{ subject = '{re}' }}, {{ any = [{{ subject = '{failure}' }}, {{ body = '{failure_body}' }}] }}]",
                re = f.re
            )],
            &[s("severity = 2"), tags(&["fv-stoerung"])],
        );
    }

    // IT topics.
    for (i, t) in TOPICS.iter().enumerate() {
        let sl = slug(t.name);
        let mut when = Vec::new();
        match i % 3 {
            0 => when.push(format!("subject = '{}'", t.re)),
            1 => when.push(format!(
                "any = [{{ normalized_subject = '{}' }}, {{ body = '{}' }}]",
                t.re, t.re
            )),
            _ => {
                when.push(format!("normalized_subject = '{}'", t.re));
                when.push(s(r"not.from_domain = '(^|\.)kommunal-it\.example$'"));
            }
        }
        let mut then = vec![
            format!("queue = \"{}\"", t.queue),
            format!("category = \"{}\"", t.category),
            tags(&[&sl]),
        ];
        if let Some(sev) = t.severity {
            then.push(format!("severity = {sev}"));
        }
        rule(
            &mut out,
            &format!("it-{sl}"),
            400,
            "IT topic.",
            &when,
            &then,
        );
    }

    // Attachments.
    let attachments: &[(&str, &str, &[&str])] = &[
        ("anhang-logdatei", r"\.(log|txt|evtx)$", &["logdatei"]),
        (
            "anhang-screenshot",
            r"\.(png|jpe?g|gif|bmp)$|\bscreenshot\b|\bbildschirmfoto\b",
            &["screenshot"],
        ),
        (
            "anhang-office",
            r"\.(docx?|xlsx?|pptx?|odt|ods)$",
            &["office-dokument"],
        ),
        ("anhang-bescheid", r"\bbescheid\b.*\.pdf$", &["bescheid"]),
        ("anhang-archiv", r"\.(zip|7z|rar)$", &["archiv-anhang"]),
        ("anhang-xoev", r"\.(xml|xta|xbau|xmeld)$", &["xoev"]),
        ("anhang-termin", r"\.ics$", &["termin"]),
    ];
    for (name, re, t) in attachments {
        rule(
            &mut out,
            name,
            450,
            "Attachment kind.",
            &[format!("attachment_name = '{re}'")],
            &[tags(t)],
        );
    }
    rule(
        &mut out,
        "anhang-ausfuehrbar",
        440,
        "Executable attachments are a security matter.",
        &[s(
            r"attachment_name = '\.(exe|js|vbs|scr|bat|cmd|ps1|hta)$'",
        )],
        &[
            s("queue = \"betrieb\""),
            s("severity = 2"),
            s("category = \"sicherheit\""),
            tags(&["gefaehrlicher-anhang"]),
        ],
    );

    // Towns: sender domain, or the town's administration named in the body.
    for (i, town) in TOWNS.iter().enumerate() {
        let sl = slug(town);
        let dom = domain_re(&town_domain(town));
        let when = if i % 2 == 0 {
            format!(
                r"any = [{{ from_domain = '{dom}' }}, {{ body = '\b(stadt|gemeinde|kreisstadt|stadtverwaltung|magistrat\s+der\s+stadt)\s+{}\b' }}]",
                town_re(town)
            )
        } else {
            format!("from_domain = '{dom}'")
        };
        rule(
            &mut out,
            &format!("kommune-{sl}"),
            600,
            "Requester's municipality.",
            &[when],
            &[tags(&[&format!("kommune-{sl}")])],
        );
    }
    // On-site work: hardware faults in towns the desk serves in person.
    for town in TOWNS.iter().step_by(4) {
        let sl = slug(town);
        rule(
            &mut out,
            &format!("vor-ort-{sl}"),
            610,
            "Hardware fault at a site the desk visits.",
            &[format!(
                r"all = [{{ from_domain = '{}' }}, {{ subject = '\b(drucker|scanner|bildschirm|monitor|dockingstation|headset)\b' }}, {{ not = {{ subject = '\btoner\b' }} }}]",
                domain_re(&town_domain(town))
            )],
            &[tags(&["vor-ort-einsatz", &format!("vor-ort-{sl}")])],
        );
    }

    // Urgency and wording.
    rule(
        &mut out,
        "dringend",
        700,
        "Urgent wording or a high priority flag, unless it is a follow-up.",
        &[
            s(
                r"any = [{ subject = '\b(dringend|eilt|eilig|asap|sofort|umgehend)\b' }, { header = { 'X-Priority' = '^\s*1\b' } }]",
            ),
            s("not.has_ticket_ref = true"),
        ],
        &[s("severity = 2"), tags(&["dringend"])],
    );
    rule(
        &mut out,
        "buergerbeschwerde",
        701,
        "Complaints of citizens go to the desk, not to the Ressort.",
        &[s(
            r"any = [{ subject = '\bbeschwerde\b|\bunzufrieden\b' }, { body = '\bbeschwer(de|t)\b|\bunzumutbar\b|\bdienstaufsichtsbeschwerde\b' }]",
        )],
        &[tags(&["beschwerde"])],
    );
    rule(
        &mut out,
        "rueckruf",
        702,
        "Requests for a call back.",
        &[s(
            r"any = [{ subject = '\br(ü|ue)ckruf\b' }, { body = '\bbitte\s+rufen\s+sie\s+mich\b|\br(ü|ue)ckruf\s+(unter|an)\b' }]",
        )],
        &[tags(&["rueckruf"])],
    );
    rule(
        &mut out,
        "umlaute-kaputt",
        703,
        "Encoding trouble.",
        &[s(
            r"any = [{ subject = '\bumlaute?\b|\bsonderzeichen\b|\bzeichensatz\b' }, { body = '\bumlaute\s+(werden\s+)?(als|falsch)\b|\bzeichensatz\b|\bencoding\b' }]",
        )],
        &[s("category = \"zeichensatz\""), tags(&["umlaute"])],
    );
    rule(
        &mut out,
        "extern-wichtig",
        704,
        "Important mail from outside the Land's network.",
        &[s(
            r"all = [{ subject = '\bwichtig\b|\bfrist\b' }, { not = { from_domain = '\.hessen\.example$|kommunal-it\.example$' } }]",
        )],
        &[tags(&["frist"])],
    );
    rule(
        &mut out,
        "schoenheitsfehler",
        705,
        "Cosmetic issues.",
        &[s(
            r"normalized_subject = '\bsch(ö|oe)nheitsfehler\b|\bdarstellung\b|\blayout\b'",
        )],
        &[s("severity = 3"), tags(&["kosmetik"])],
    );
    rule(
        &mut out,
        "nk-hessen-antrag",
        706,
        "Nutzerkonto questions about an application in Hessen.",
        &[
            s("nutzerkonto_state = \"home\""),
            s(r"normalized_subject = '\bantrag\b|\bbescheid\b'"),
        ],
        &[tags(&["nk-antrag"])],
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Generated mails

/// A linear congruential generator (Knuth's MMIX constants): deterministic, no dependencies.
struct Lcg(u64);

impl Lcg {
    fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) as u32
    }

    fn below(&mut self, n: usize) -> usize {
        self.next_u32() as usize % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn chance(&mut self, percent: u32) -> bool {
        self.next_u32() % 100 < percent
    }

    fn hex(&mut self, digits: usize) -> String {
        (0..digits)
            .map(|_| char::from_digit(self.below(16) as u32, 16).unwrap_or('0'))
            .collect()
    }
}

const WEEKDAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const WEEKDAYS_DE: [&str; 7] = [
    "Sonntag",
    "Montag",
    "Dienstag",
    "Mittwoch",
    "Donnerstag",
    "Freitag",
    "Samstag",
];

/// Generates `n` mails of about [`TARGET_MAIL_SIZE`] bytes.
fn generate_mails(n: usize) -> Vec<Vec<u8>> {
    let mut rng = Lcg(0x5EED_2026_1123);
    (0..n).map(|i| generate_mail(&mut rng, i)).collect()
}

fn fill(template: &str, rng: &mut Lcg, town: &str, fv: &str, last: &str) -> String {
    let mut s = template
        .replace("{fv}", fv)
        .replace("{town}", town)
        .replace("{last}", last);
    if s.contains("{num}") {
        s = s.replace("{num}", &format!("{}-{}", 2026, 10_000 + rng.below(90_000)));
    }
    if s.contains("{date}") {
        s = s.replace("{date}", &format!("{:02}.12.2026", 1 + rng.below(28)));
    }
    if s.contains("{room}") {
        s = s.replace(
            "{room}",
            &format!("{}.{:02}", rng.below(4), 1 + rng.below(40)),
        );
    }
    if s.contains("{host}") {
        s = s.replace(
            "{host}",
            &format!(
                "PC-{}{:04}",
                &slug(town)[..2].to_uppercase(),
                rng.below(10_000)
            ),
        );
    }
    if s.contains("{phone}") {
        s = s.replace("{phone}", &format!("-{}", 100 + rng.below(900)));
    }
    s
}

/// Length of `text` once encoded (quoted-printable or 8bit), roughly.
fn encoded_len(text: &str, qp: bool) -> usize {
    if qp {
        let n: usize = text
            .bytes()
            .map(|b| if b == b'=' || !b.is_ascii() { 3 } else { 1 })
            .sum();
        n + n / 75 * 3
    } else {
        text.len()
    }
}

fn generate_mail(rng: &mut Lcg, index: usize) -> Vec<u8> {
    let town = *rng.pick(TOWNS);
    let first = *rng.pick(FIRST_NAMES);
    let last = *rng.pick(LAST_NAMES);
    let fv = rng.pick(FACHVERFAHREN).name;
    let domain = if rng.chance(85) {
        town_domain(town)
    } else {
        rng.pick(&[
            "kommunal-it.example",
            "innen.hessen.example",
            "gmail.com",
            "web.de",
        ])
        .to_string()
    };
    let address = format!("{}.{}@{domain}", slug(first), slug(last));
    let day = 1 + rng.below(30);
    let (hour, minute, second) = (7 + rng.below(11), rng.below(60), rng.below(60));
    let weekday = (day - 1) % 7; // 1 November 2026 is a Sunday.
    let qp = rng.chance(55);

    // Subject.
    let nutzerkonto = rng.chance(10);
    let ticket = rng.chance(20);
    let ticket_no = format!("202611{day:02}{:08}", 10_000_000 + rng.below(90_000_000));
    let mut subject = if nutzerkonto {
        format!(
            "{}_{}_{}",
            rng.pick(NK_STATES),
            rng.pick(NK_BETREFFS),
            if rng.chance(80) { "NKB" } else { "MUK" }
        )
    } else {
        let template = *rng.pick(SUBJECTS);
        fill(template, rng, town, fv, last)
    };
    let reply = !nutzerkonto && rng.chance(30);
    if ticket && !nutzerkonto {
        subject = format!("[Ticket#{ticket_no}] {subject}");
    }
    if reply {
        let prefix = *rng.pick(&["AW: ", "AW: ", "Re: ", "WG: ", "AW: WG: ", "AW: AW: "]);
        subject = format!("{prefix}{subject}");
    }

    // Header.
    let mut h = String::with_capacity(1_500);
    let mx_id = rng.hex(12).to_uppercase();
    h.push_str(&format!("Return-Path: <{address}>\r\n"));
    h.push_str(&format!(
        "Received: from mail.{domain} (mail.{domain} [10.{}.{}.{}])\r\n\tby mx1.kommunal-it.example (Postfix) with ESMTPS id {mx_id}\r\n\tfor <servicedesk@kommunal-it.example>; {}, {day} Nov 2026 {hour:02}:{minute:02}:{second:02} +0100 (CET)\r\n",
        rng.below(256),
        rng.below(256),
        1 + rng.below(254),
        WEEKDAYS[weekday],
    ));
    if rng.chance(50) {
        h.push_str(&format!(
            "Received: from SRV-EX{:02}.{domain} ([10.1.2.{}]) by mail.{domain} with Microsoft SMTP Server (version=TLS1_2)\r\n\tid 15.2.1544.4; {}, {day} Nov 2026 {hour:02}:{minute:02}:{:02} +0100\r\n",
            1 + rng.below(9),
            rng.below(255),
            WEEKDAYS[weekday],
            second.saturating_sub(1),
        ));
    }
    let display = format!("{first} {last}");
    let from = if display.is_ascii() {
        format!("\"{last}, {first}\" <{address}>")
    } else if rng.chance(50) {
        format!("{} <{address}>", q_encode(&display))
    } else {
        format!("\"{display}\" <{address}>")
    };
    h.push_str(&format!("From: {from}\r\n"));
    let to = if nutzerkonto {
        "Nutzerkonto Hessen <nutzerkonto@kommunal-it.example>".to_string()
    } else if rng.chance(15) {
        format!(
            "<{}@kommunal-it.example>",
            rng.pick(&[
                "vpn-support",
                "fachverfahren",
                "drucker",
                "datenschutz",
                "betrieb",
                "einkauf"
            ])
        )
    } else {
        "Servicedesk <servicedesk@kommunal-it.example>".to_string()
    };
    h.push_str(&format!("To: {to}\r\n"));
    if rng.chance(25) {
        let cc_first = *rng.pick(FIRST_NAMES);
        let cc_last = *rng.pick(LAST_NAMES);
        h.push_str(&format!(
            "Cc: {} <{}.{}@{domain}>\r\n",
            q_encode(&format!("{cc_first} {cc_last}")),
            slug(cc_first),
            slug(cc_last)
        ));
    }
    let encoded_subject = if subject.is_ascii() {
        subject.clone()
    } else {
        match rng.below(100) {
            0..40 => q_encode(&subject),
            40..65 => b_encode(&subject),
            _ => subject.clone(),
        }
    };
    h.push_str(&format!("Subject: {encoded_subject}\r\n"));
    h.push_str(&format!(
        "Date: {}, {day} Nov 2026 {hour:02}:{minute:02}:{second:02} +0100\r\n",
        WEEKDAYS[weekday]
    ));
    h.push_str(&format!(
        "Message-ID: <{}.{index}@{domain}>\r\n",
        rng.hex(16)
    ));
    if reply {
        let parent = format!("<{}@kommunal-it.example>", rng.hex(20));
        h.push_str(&format!(
            "In-Reply-To: {parent}\r\nReferences: {parent}\r\n"
        ));
    }
    let outlook = rng.chance(60);
    if outlook {
        h.push_str("X-Mailer: Microsoft Outlook 16.0\r\n");
        h.push_str(&format!("Thread-Index: AQH{}==\r\n", rng.hex(24)));
        h.push_str("X-MS-Has-Attach: \r\nX-MS-Exchange-Organization-AuthAs: Internal\r\n");
    } else {
        h.push_str("User-Agent: Mozilla Thunderbird 128.5.0\r\n");
    }
    if rng.chance(10) {
        h.push_str("X-Priority: 1 (Highest)\r\nImportance: high\r\n");
    }
    h.push_str(&format!(
        "X-Spam-Score: {}.{}\r\n",
        rng.below(4),
        rng.below(10)
    ));
    h.push_str("MIME-Version: 1.0\r\n");
    let attachment = rng.chance(12);
    let boundary = format!("----=_NextPart_{}", rng.hex(12));
    let cte = if qp { "quoted-printable" } else { "8bit" };
    let text_headers = format!(
        "Content-Type: text/plain; charset=\"utf-8\"\r\nContent-Transfer-Encoding: {cte}\r\n"
    );
    if attachment {
        h.push_str(&format!(
            "Content-Type: multipart/mixed; boundary=\"{boundary}\"\r\n"
        ));
    } else {
        h.push_str(&text_headers);
    }
    h.push_str("\r\n");

    // Attachment (encoded), so that its size counts towards the target.
    let attachment_part = attachment.then(|| {
        let (name, ctype, len) = match rng.below(3) {
            0 => ("fehler.log", "text/plain", 300),
            1 => ("Bildschirmfoto 2026-11-23.png", "image/png", 600),
            _ => ("Bescheid_Entwurf.pdf", "application/pdf", 500),
        };
        let data: Vec<u8> = (0..len).map(|_| rng.next_u32() as u8).collect();
        let mut part = format!(
            "\r\n--{boundary}\r\nContent-Type: {ctype}; name=\"{name}\"\r\nContent-Disposition: attachment; filename=\"{name}\"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        );
        let b64 = base64(&data);
        for line in b64.as_bytes().chunks(76) {
            part.push_str(std::str::from_utf8(line).unwrap_or_default());
            part.push_str("\r\n");
        }
        part.push_str(&format!("--{boundary}--\r\n"));
        part
    });

    // Body: greeting, paragraphs until the mail reaches its size, closing, signature, quote.
    let greeting = *rng.pick(&[
        "Sehr geehrte Damen und Herren,",
        "Hallo liebes Servicedesk-Team,",
        "Liebe Kolleginnen und Kollegen,",
        "Guten Morgen,",
    ]);
    let closing = if nutzerkonto {
        format!("Mit freundlichen Grüßen\r\n{first} {last}")
    } else {
        format!(
            "Mit freundlichen Grüßen\r\nIm Auftrag\r\n\r\n{first} {last}\r\n--\r\n{first} {last}\r\n{}\r\nMagistrat der Stadt {town}\r\n{} {}\r\n{} {town}\r\nTel.: +49 6{:03} {}-{}\r\nE-Mail: {address}\r\n\r\nDiese E-Mail kann vertrauliche Informationen enthalten. Wenn Sie nicht der richtige\r\nAdressat sind, informieren Sie bitte sofort den Absender und löschen Sie diese E-Mail.\r\nDas unerlaubte Kopieren sowie die unbefugte Weitergabe dieser E-Mail sind nicht gestattet.",
            rng.pick(OFFICES),
            rng.pick(STREETS),
            1 + rng.below(40),
            34_000 + rng.below(2_000),
            rng.below(1_000),
            rng.below(10_000),
            100 + rng.below(900)
        )
    };
    let quote = reply.then(|| {
        format!(
            "\r\n\r\n-----Ursprüngliche Nachricht-----\r\nVon: Servicedesk <servicedesk@kommunal-it.example>\r\nGesendet: {}, {}. November 2026 {:02}:{:02}\r\nAn: {first} {last} <{address}>\r\nBetreff: [Ticket#{ticket_no}] Eingangsbestätigung\r\n\r\n> Guten Tag {first} {last},\r\n>\r\n> vielen Dank für Ihre Nachricht. Wir haben Ihr Anliegen unter der Vorgangsnummer\r\n> {ticket_no} aufgenommen und an die zuständige Stelle weitergegeben.\r\n>\r\n> Dies ist eine automatisch erzeugte Nachricht.",
            WEEKDAYS_DE[weekday],
            day,
            hour.saturating_sub(1),
            minute
        )
    });
    let fixed = encoded_len(greeting, qp)
        + encoded_len(&closing, qp)
        + quote.as_deref().map_or(0, |q| encoded_len(q, qp))
        + attachment_part.as_ref().map_or(0, String::len)
        + if attachment {
            text_headers.len() + boundary.len() + 8
        } else {
            0
        };
    let pool = if nutzerkonto {
        CITIZEN_SENTENCES
    } else {
        SENTENCES
    };
    let mut paragraphs: Vec<String> = Vec::new();
    let mut paragraph = String::new();
    let mut size = h.len() + fixed;
    while size < TARGET_MAIL_SIZE {
        let template = *rng.pick(pool);
        let sentence = fill(template, rng, town, fv, last);
        size += encoded_len(&sentence, qp) + 1;
        if !paragraph.is_empty() {
            paragraph.push(' ');
        }
        paragraph.push_str(&sentence);
        if rng.chance(35) {
            size += 4;
            paragraphs.push(std::mem::take(&mut paragraph));
        }
    }
    if !paragraph.is_empty() {
        paragraphs.push(paragraph);
    }
    let mut body = format!("{greeting}\r\n\r\n");
    for p in &paragraphs {
        if qp {
            body.push_str(p);
        } else {
            body.push_str(&wrap(p, 76));
        }
        body.push_str("\r\n\r\n");
    }
    body.push_str(&closing);
    if let Some(q) = &quote {
        body.push_str(q);
    }
    body.push_str("\r\n");
    let body = if qp { quoted_printable(&body) } else { body };

    let mut mail = h;
    if let Some(part) = attachment_part {
        mail.push_str("This is a multi-part message in MIME format.\r\n");
        mail.push_str(&format!("\r\n--{boundary}\r\n{text_headers}\r\n"));
        mail.push_str(&body);
        mail.push_str(&part);
    } else {
        mail.push_str(&body);
    }
    mail.into_bytes()
}

/// Wraps a paragraph at `width` characters (8bit bodies, as plain-text clients send them).
fn wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / width * 2);
    let mut col = 0;
    for word in text.split(' ') {
        let len = word.chars().count();
        if col > 0 && col + 1 + len > width {
            out.push_str("\r\n");
            col = 0;
        } else if col > 0 {
            out.push(' ');
            col += 1;
        }
        out.push_str(word);
        col += len;
    }
    out
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Quoted-printable (RFC 2045) of CRLF-separated text, with soft line breaks at 76 characters.
fn quoted_printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 5 / 4);
    for (i, line) in text.split("\r\n").enumerate() {
        if i > 0 {
            out.push_str("\r\n");
        }
        let bytes = line.as_bytes();
        let mut col = 0;
        for (j, &b) in bytes.iter().enumerate() {
            let last = j + 1 == bytes.len();
            let escape = match b {
                b'=' => true,
                b' ' | b'\t' => last,
                33..=126 => false,
                _ => true,
            };
            let width = if escape { 3 } else { 1 };
            if col + width > 75 {
                out.push_str("=\r\n");
                col = 0;
            }
            if escape {
                out.push('=');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            } else {
                out.push(b as char);
            }
            col += width;
        }
    }
    out
}

/// RFC 2047 `Q` encoded words, each at most 75 characters, folded.
fn q_encode(text: &str) -> String {
    let mut words = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        let mut buf = [0; 4];
        let mut enc = String::new();
        for &b in c.encode_utf8(&mut buf).as_bytes() {
            match b {
                b' ' => enc.push('_'),
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'!' | b'*' | b'+' | b'-' | b'/' => {
                    enc.push(b as char)
                }
                _ => {
                    enc.push('=');
                    enc.push(HEX[usize::from(b >> 4)] as char);
                    enc.push(HEX[usize::from(b & 15)] as char);
                }
            }
        }
        if word.len() + enc.len() > 75 - "=?UTF-8?Q??=".len() {
            words.push(std::mem::take(&mut word));
        }
        word.push_str(&enc);
    }
    words.push(word);
    words
        .iter()
        .map(|w| format!("=?UTF-8?Q?{w}?="))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

/// RFC 2047 `B` encoded words of at most 45 bytes of text each, folded.
fn b_encode(text: &str) -> String {
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    words.push(chunk);
    words
        .iter()
        .map(|w| format!("=?utf-8?B?{}?=", base64(w.as_bytes())))
        .collect::<Vec<_>>()
        .join("\r\n ")
}

fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}
