//! The `poststelle` command line.
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use poststelle::classify::{self, Decision, RuleTrace};
use poststelle::config::Config;
use poststelle::message::InboundMessage;
use poststelle::store::Store;

mod commands;
mod sla_cmd;
use serde::Serialize;

#[derive(Parser)]
#[command(
    name = "poststelle",
    version,
    about = "The mail room of an IT support desk"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// Configuration file [default: $POSTSTELLE_CONFIG, else the shipped default]
    #[arg(long, global = true, env = "POSTSTELLE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory: the SQLite file, sent mail (file transport), the default Maildir
    /// [default: data_dir of the config]
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Log format on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    log_format: LogFormat,
    /// More log output (-v: info, -vv: debug); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: watch every configured mailbox, file what arrives, send the outbox
    Run,
    /// Load configuration, rules, contact list and templates and report every problem
    Check,
    /// Classify messages (.eml files, directories of them, Maildirs) without changing anything
    Classify(ClassifyArgs),
    /// File messages (.eml files, directories, Maildirs) into the store as tickets
    Ingest(IngestArgs),
    /// List, show and change tickets
    #[command(subcommand)]
    Tickets(TicketsCmd),
    /// Outgoing mail
    #[command(subcommand)]
    Outbox(OutboxCmd),
    /// Messages that could not be filed
    #[command(subcommand)]
    Quarantine(QuarantineCmd),
    /// Service levels: deadlines, calendars
    #[command(subcommand)]
    Sla(sla_cmd::SlaCmd),
}

#[derive(Args)]
struct IngestArgs {
    /// Messages per transaction
    #[arg(long, default_value_t = 64)]
    batch: usize,
    /// Print the outcome of every message as JSON Lines
    #[arg(long)]
    json: bool,
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum TicketsCmd {
    /// List tickets
    List {
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        queue: Option<String>,
        /// JSON Lines
        #[arg(long)]
        json: bool,
    },
    /// A ticket with its articles, outgoing mail and audit trail
    Show {
        number: String,
        #[arg(long)]
        json: bool,
    },
    /// Change state, class or queue, or add a note (each change audited)
    Set {
        number: String,
        /// new, open, pending or closed
        #[arg(long)]
        status: Option<String>,
        /// Störungsklasse 1–4
        #[arg(long)]
        severity: Option<u8>,
        #[arg(long)]
        queue: Option<String>,
        /// An internal note
        #[arg(long)]
        note: Option<String>,
        /// Who makes the change (for the audit log)
        #[arg(long, env = "USER", default_value = "staff")]
        actor: String,
    },
}

#[derive(Subcommand)]
enum OutboxCmd {
    /// List outgoing mail
    List {
        /// scheduled, sent, temporary_failure, permanent_failure or suppressed
        #[arg(long)]
        state: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Put a failed or suppressed mail back in line
    Retry { id: i64 },
    /// Send what is due now
    Send {
        /// At most this many mails
        #[arg(long, default_value_t = 1000)]
        limit: i64,
    },
}

#[derive(Subcommand)]
enum QuarantineCmd {
    List {
        #[arg(long)]
        json: bool,
    },
    /// Print the raw message
    Show { id: i64 },
    /// File the message again (after a fix)
    Replay { id: i64 },
}

#[derive(Args)]
struct ClassifyArgs {
    /// Print JSON Lines, one object per message
    #[arg(long)]
    json: bool,
    /// Show every rule tried for each message and why it matched or not
    #[arg(long)]
    explain: bool,
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.global, matches!(cli.command, Command::Run));
    let result = match &cli.command {
        Command::Run => run_daemon(&cli.global),
        Command::Check => check(&cli.global),
        Command::Classify(args) => run_classify(&cli.global, args),
        Command::Ingest(args) => with_store(&cli.global, |rt, cfg, store| {
            rt.block_on(commands::ingest(cfg, store, args))
        }),
        Command::Tickets(cmd) => with_store(&cli.global, |rt, cfg, store| {
            rt.block_on(commands::tickets(cfg, store, cmd))
        }),
        Command::Outbox(cmd) => with_store(&cli.global, |rt, cfg, store| {
            rt.block_on(commands::outbox(cfg, store, cmd))
        }),
        Command::Quarantine(cmd) => with_store(&cli.global, |rt, cfg, store| {
            rt.block_on(commands::quarantine(cfg, store, cmd))
        }),
        Command::Sla(cmd) => sla_cmd::dispatch(&cli.global, cmd),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `poststelle run`: the daemon on a multi-threaded runtime until SIGTERM or SIGINT.
fn run_daemon(g: &Global) -> Result<ExitCode> {
    let cfg = std::sync::Arc::new(load_config(g)?);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async {
        let url = cfg
            .settings
            .database_url
            .clone()
            .unwrap_or_else(|| Store::default_url(&cfg.settings.data_dir));
        let store = Store::open(&url)
            .await
            .with_context(|| format!("opening the database {url}"))?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        let stop = async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM received"),
                _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT received"),
            }
        };
        poststelle::app::run(cfg.clone(), store, stop).await?;
        Ok(ExitCode::SUCCESS)
    })
}

fn init_logging(g: &Global, daemon: bool) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let default = match g.verbose {
        // A daemon reports each decision; a one-shot command only what went wrong.
        0 if daemon => "info",
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::stderr().is_terminal())
        .with_writer(io::stderr);
    match g.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn load_config(g: &Global) -> Result<Config> {
    let mut cfg = Config::load(g.config.as_deref()).map_err(|diags| {
        anyhow::anyhow!(
            "{diags}\nthe configuration is not valid; `poststelle check` lists the same problems"
        )
    })?;
    if let Some(dir) = &g.data_dir {
        cfg.settings.data_dir = dir.clone();
    }
    Ok(cfg)
}

/// Loads the configuration, opens the store on a Tokio runtime and runs `f` with them.
fn with_store<F>(g: &Global, f: F) -> Result<ExitCode>
where
    F: FnOnce(&tokio::runtime::Runtime, &Config, &Store) -> Result<ExitCode>,
{
    let cfg = load_config(g)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let url = cfg
        .settings
        .database_url
        .clone()
        .unwrap_or_else(|| Store::default_url(&cfg.settings.data_dir));
    let store = rt
        .block_on(Store::open(&url))
        .with_context(|| format!("opening the database {url}"))?;
    let code = f(&rt, &cfg, &store);
    rt.block_on(store.close());
    code
}

fn check(g: &Global) -> Result<ExitCode> {
    match Config::load(g.config.as_deref()) {
        Ok(cfg) => {
            println!(
                "ok: {} — {} queue(s), {} rule(s) in {} file(s), {} contact-list service(s), {} template(s), {} calendar(s)",
                cfg.origin,
                cfg.settings.queues.len(),
                cfg.rules.rules.len(),
                cfg.rules.sources.len(),
                cfg.contacts.services.len(),
                cfg.templates.count(),
                cfg.settings.sla.calendars.names().count(),
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(diags) => {
            println!("{diags}");
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The JSON Lines record of `classify --json`: exactly these fields.
#[derive(Serialize)]
struct ClassifyRecord<'a> {
    path: String,
    message_id: Option<&'a str>,
    from: Option<&'a str>,
    subject: &'a str,
    normalized_subject: &'a str,
    ticket_ref: Option<&'a str>,
    auto_generated: Option<classify::loops::AutoGenerated>,
    nutzerkonto: Option<&'a classify::nutzerkonto::Nutzerkonto>,
    queue: Option<&'a str>,
    severity: Option<u8>,
    action: classify::Action,
    auto_reply: Option<&'a str>,
    forward_to: &'a [String],
    rules: &'a [String],
    reason: &'a str,
}

fn record<'a>(path: &Path, msg: Option<&'a InboundMessage>, d: &'a Decision) -> ClassifyRecord<'a> {
    let quarantined = d.action == classify::Action::Quarantine;
    ClassifyRecord {
        path: path.display().to_string(),
        message_id: msg.and_then(|m| m.message_id.as_deref()),
        from: msg.and_then(|m| m.from_address()),
        subject: msg.map(|m| m.subject.as_str()).unwrap_or(""),
        normalized_subject: &d.normalized_subject,
        ticket_ref: d.ticket_ref.as_deref(),
        auto_generated: d.auto_generated,
        nutzerkonto: d.nutzerkonto.as_ref(),
        queue: (!quarantined).then_some(d.queue.as_str()),
        severity: (!quarantined).then_some(d.severity),
        action: d.action,
        auto_reply: d.auto_reply.as_deref(),
        forward_to: &d.forward_to,
        rules: &d.rules,
        reason: &d.reason,
    }
}

fn run_classify(g: &Global, args: &ClassifyArgs) -> Result<ExitCode> {
    let cfg = load_config(g)?;
    let mut failed = false;
    let stdout = io::stdout();
    let mut out = io::BufWriter::new(stdout.lock());
    let mut table = Table::default();
    for path in &args.paths {
        let files = match expand(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: {e:#}");
                failed = true;
                continue;
            }
        };
        for file in files {
            let raw = match std::fs::read(&file) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {}: {e}", file.display());
                    failed = true;
                    continue;
                }
            };
            let (msg, decision, trace) = match InboundMessage::parse(&raw) {
                Ok(msg) => {
                    let (d, t) = if args.explain {
                        classify::explain(&cfg, &msg)
                    } else {
                        (classify::classify(&cfg, &msg), Vec::new())
                    };
                    (Some(msg), d, t)
                }
                Err(e) => (None, Decision::quarantine(&e), Vec::new()),
            };
            let rec = record(&file, msg.as_ref(), &decision);
            if args.json {
                serde_json::to_writer(&mut out, &rec)?;
                writeln!(out)?;
            } else if args.explain {
                write_explained(&mut out, &rec, &trace)?;
            } else {
                table.push(&rec);
            }
        }
    }
    if !args.json && !args.explain {
        table.write(&mut out)?;
    }
    out.flush()?;
    Ok(if failed {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    })
}

fn write_explained(
    out: &mut impl Write,
    rec: &ClassifyRecord<'_>,
    trace: &[RuleTrace],
) -> Result<()> {
    writeln!(out, "{}", rec.path)?;
    writeln!(out, "  subject:    {:?}", rec.subject)?;
    writeln!(out, "  normalized: {:?}", rec.normalized_subject)?;
    if let Some(a) = rec.auto_generated {
        writeln!(out, "  auto-generated: {}", a.as_str())?;
    }
    if let Some(nk) = rec.nutzerkonto {
        writeln!(
            out,
            "  nutzerkonto: state {} origin {} betreff {:?}",
            nk.state, nk.origin, nk.betreff
        )?;
    }
    for t in trace {
        let verdict = if t.skipped {
            "skipped"
        } else if t.matched {
            "MATCH"
        } else {
            "no"
        };
        writeln!(
            out,
            "  [{verdict:>7}] {} (priority {}, {})",
            t.rule, t.priority, t.location
        )?;
        for d in &t.detail {
            writeln!(out, "              {d}")?;
        }
    }
    writeln!(
        out,
        "  => {} · queue {} · class {} · auto-reply {} · {}",
        serde_json::to_value(rec.action)?.as_str().unwrap_or(""),
        rec.queue.unwrap_or("-"),
        rec.severity.map_or("-".to_string(), |s| s.to_string()),
        rec.auto_reply.unwrap_or("-"),
        rec.reason
    )?;
    writeln!(out)?;
    Ok(())
}

/// A plain-text table for a person.
#[derive(Default)]
struct Table {
    rows: Vec<[String; 6]>,
}

impl Table {
    fn push(&mut self, r: &ClassifyRecord<'_>) {
        self.rows.push([
            r.path.clone(),
            serde_json::to_value(r.action)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            r.queue.unwrap_or("-").to_string(),
            r.severity.map_or("-".into(), |s| s.to_string()),
            r.auto_generated.map_or("-", |a| a.as_str()).to_string(),
            r.reason.to_string(),
        ]);
    }

    fn write(&self, out: &mut impl Write) -> Result<()> {
        let head = ["PATH", "ACTION", "QUEUE", "CLASS", "AUTO", "REASON"];
        let mut width = head.map(|h| h.chars().count());
        for row in &self.rows {
            for (w, cell) in width.iter_mut().zip(row.iter()).take(5) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let line = |cells: [&str; 6], out: &mut dyn Write| -> io::Result<()> {
            let mut s = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i < 5 {
                    s.push_str(&format!("{c:<w$}  ", w = width[i]));
                } else {
                    s.push_str(c);
                }
            }
            writeln!(out, "{}", s.trim_end())
        };
        line(head, out)?;
        for r in &self.rows {
            line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]], out)?;
        }
        Ok(())
    }
}

/// Expands a path into message files: a file itself; a Maildir's `new/` and `cur/` in delivery order; a
/// directory's files in name order, descending into subdirectories.
pub(crate) fn expand(path: &Path) -> Result<Vec<PathBuf>> {
    let meta = std::fs::metadata(path).with_context(|| format!("{}", path.display()))?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut out = Vec::new();
    if path.join("cur").is_dir() || path.join("new").is_dir() {
        for sub in ["new", "cur"] {
            list_dir(&path.join(sub), &mut out, false)?;
        }
        // A Maildir is a conversation log: file it in delivery order, whichever of new/ and
        // cur/ a message is in, as the daemon does.
        out.sort_by(|a, b| {
            let name = |p: &PathBuf| p.file_name().map(|n| n.to_string_lossy().into_owned());
            let (a, b) = (name(a).unwrap_or_default(), name(b).unwrap_or_default());
            poststelle::source::maildir::delivery_key(&a)
                .cmp(&poststelle::source::maildir::delivery_key(&b))
        });
    } else {
        list_dir(path, &mut out, true)?;
    }
    Ok(out)
}

pub(crate) fn list_dir(dir: &Path, out: &mut Vec<PathBuf>, recurse: bool) -> Result<()> {
    if !dir.is_dir() {
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("{}", dir.display()))?
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if recurse {
                out.extend(expand(&p)?);
            }
        } else {
            out.push(p);
        }
    }
    Ok(())
}
