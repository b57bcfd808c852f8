//! Every argument of the command line: the clap types and their help texts.
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use jiff::Timestamp;
use jiff::civil::Date;
use poststelle::sla::Class;

#[derive(Parser)]
#[command(
    name = "poststelle",
    version,
    about = "The mail room of an IT support desk"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args)]
pub struct Global {
    /// Configuration file [default: $POSTSTELLE_CONFIG, else the shipped default]
    #[arg(long, global = true, env = "POSTSTELLE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory: the SQLite file, sent mail (file transport), the default Maildir
    /// [default: data_dir of the config]
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log format on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// More log output (-v: info, -vv: debug); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Subcommand)]
pub enum Command {
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
    Sla(SlaCmd),
}

#[derive(Args)]
pub struct IngestArgs {
    /// Messages per transaction
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Print the outcome of every message as JSON Lines
    #[arg(long)]
    pub json: bool,
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Subcommand)]
pub enum TicketsCmd {
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
pub enum OutboxCmd {
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
pub enum QuarantineCmd {
    List {
        #[arg(long)]
        json: bool,
    },
    /// Print the raw message
    Show {
        id: i64,
        /// The bytes as stored; without it, control characters and invalid bytes are shown
        /// escaped, so that a hostile message cannot drive the terminal
        #[arg(long)]
        raw: bool,
    },
    /// File the message again (after a fix)
    Replay { id: i64 },
}

#[derive(Args)]
pub struct ClassifyArgs {
    /// Print JSON Lines, one object per message
    #[arg(long)]
    pub json: bool,
    /// Show every rule tried for each message and why it matched or not
    #[arg(long)]
    pub explain: bool,
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Subcommand)]
pub enum SlaCmd {
    /// Print the reaction deadline of a report as RFC 3339 with the Europe/Berlin offset
    Deadline {
        /// A built-in (hessen, rlp) or configured calendar
        #[arg(long)]
        calendar: String,
        /// 1–4 or verhindernd, behindernd, leicht, sonstige
        #[arg(long)]
        class: Class,
        /// When the report arrived, RFC 3339 (2026-11-25T10:00:00+01:00)
        #[arg(long)]
        received: Timestamp,
    },
    /// List a calendar's weekly hours and the days it is closed in a year
    Calendar {
        name: String,
        #[arg(long)]
        year: i16,
    },
    /// Write the escalation notices that are due now, then exit (for cron and tests)
    Escalate,
    /// Availability and reaction deadlines met per month and in total
    Report {
        #[arg(long)]
        calendar: String,
        /// First day (YYYY-MM-DD, Europe/Berlin)
        #[arg(long)]
        from: Date,
        /// Last day, included
        #[arg(long)]
        to: Date,
        /// Availability target in percent
        #[arg(long, default_value_t = 97.5)]
        target: f64,
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        #[arg(long)]
        csv: bool,
    },
}
