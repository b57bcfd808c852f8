//! Every argument of the command line: the clap types and their help texts. Values from a fixed
//! set are value enums, so that a typo is an error of the parser that names the valid values.
use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use jiff::Timestamp;
use jiff::civil::Date;
use poststelle::lists::{Language, Role};
use poststelle::sla::Class;
use poststelle::store::outbox::OutboxState;
use poststelle::ticket::State;

#[derive(Parser)]
#[command(
    name = "poststelle",
    version,
    about = "The mail room of an IT support desk: files support mail as tickets, answers and \
             forwards it, and keeps the service-level deadlines",
    after_help = "Exit status: 0 done, 1 an error (the message says what and where), 2 the \
                  command line was wrong or, for classify and ingest, a path could not be read."
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Where `--help` lists the options every command takes, apart from its own.
const GLOBAL: &str = "Global options";

#[derive(Args)]
pub struct Global {
    /// Configuration file [default: $POSTSTELLE_CONFIG, else the shipped default built into the
    /// binary]
    #[arg(long, global = true, env = "POSTSTELLE_CONFIG", value_name = "FILE", help_heading = GLOBAL)]
    pub config: Option<PathBuf>,
    /// Data directory: the SQLite file, sent mail (file transport), the default Maildir; a
    /// relative path is relative to the working directory [default: data_dir of the
    /// configuration, which is relative to the configuration file]
    #[arg(long, global = true, value_name = "DIR", help_heading = GLOBAL)]
    pub data_dir: Option<PathBuf>,
    /// Format of the log on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human, help_heading = GLOBAL)]
    pub log_format: LogFormat,
    /// More log output on stderr (-v: info, -vv: debug); RUST_LOG overrides
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    pub verbose: u8,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// One line per event, for people
    Human,
    /// One JSON object per event, for log collectors
    Json,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon: watch every configured mailbox, file what arrives, send the outbox
    Run,
    /// Load configuration, rules, contact list and templates and report every problem
    Check {
        /// Also log in to every IMAP mailbox and the SMTP relay (password or OAuth) and say
        /// for each what worked or what to fix
        #[arg(long)]
        connect: bool,
    },
    /// Classify messages (.eml files, directories of them, Maildirs) without changing anything
    Classify(ClassifyArgs),
    /// File messages (.eml files, directories, Maildirs) into the store as tickets
    Ingest(IngestArgs),
    /// List, show and change tickets
    #[command(subcommand)]
    Tickets(TicketsCmd),
    /// List, retry and send outgoing mail
    #[command(subcommand)]
    Outbox(OutboxCmd),
    /// Messages that could not be filed: list, show, file again
    #[command(subcommand)]
    Quarantine(QuarantineCmd),
    /// Service levels: deadlines, calendars, escalation, availability report
    #[command(subcommand)]
    Sla(SlaCmd),
    /// Distribution lists (Verteiler): import from CSV, show, change, export
    #[command(subcommand)]
    Lists(ListsCmd),
    /// Maintenance of a platform: schedule (lead-time rules checked), change, cancel, finish;
    /// each announced to its distribution lists with a calendar entry
    #[command(subcommand)]
    Maintenance(MaintenanceCmd),
    /// Incidents (Störungen) of a platform: open, update, resolve, link tickets; each notice
    /// to its lists and to the requesters of linked tickets, its outage in the availability report
    #[command(subcommand)]
    Incident(IncidentCmd),
    /// Announcements (notices to distribution lists): where each one's mails stand
    #[command(subcommand)]
    Announcements(AnnouncementsCmd),
    /// Monitoring alerts: every alert key, its incident ticket and state, flapping or not
    #[command(subcommand)]
    Alerts(AlertsCmd),
    /// Problems (problem management): recurring incidents recorded together; list, show, close
    #[command(subcommand)]
    Problems(ProblemsCmd),
    /// OAuth 2.0: sign in once for a provider with delegated access (grant = "refresh_token")
    #[command(subcommand)]
    Auth(AuthCmd),
    /// Retention ([retention], [[queue]] retention_days): delete what may no longer be kept,
    /// as the daemon does once a day
    #[command(subcommand)]
    Retention(RetentionCmd),
    /// Data subject requests (GDPR Art. 15, 17): export or erase what is stored about an
    /// address
    #[command(subcommand)]
    Privacy(PrivacyCmd),
    /// Copy the SQLite store to a file while the daemon runs (for PostgreSQL it names the
    /// pg_dump command)
    Backup(BackupArgs),
    /// Verify a backup without changing it: a copied SQLite file, or a PostgreSQL database
    /// restored from a dump (integrity, migrations, counts)
    RestoreCheck(RestoreCheckArgs),
}

#[derive(Subcommand)]
pub enum RetentionCmd {
    /// Apply retention now; with --dry-run count what would go and change nothing
    Run {
        /// Count what would go, change nothing
        #[arg(long)]
        dry_run: bool,
        /// SQLite: afterwards rewrite the file without the freed pages, so that it shrinks
        /// (holds the write lock while it copies the whole file)
        #[arg(long, conflicts_with = "dry_run")]
        vacuum: bool,
        /// One JSON object (times in RFC 3339, UTC)
        #[arg(long)]
        json: bool,
        /// The instant retention is applied as of [default: now] (for tests and rehearsals)
        #[arg(long, hide = true, value_parser = instant, value_name = "TIME")]
        now: Option<Timestamp>,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// The periods in force and what the daemon's last daily run did
    Status {
        /// One JSON object
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum PrivacyCmd {
    /// Write everything stored about an address into a new directory, with index.json
    Export {
        /// The address, in any case
        address: String,
        /// The directory to create (must be new or empty) [default:
        /// privacy-export-<address>-<time> in the working directory]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Print what was written as one JSON object
        #[arg(long)]
        json: bool,
    },
    /// Erase an address: its tickets anonymised (texts and raw mail deleted), its list
    /// memberships deleted, the address replaced wherever else it stands; audited
    Erase {
        /// The address, in any case
        address: String,
        /// Count what would be erased, change nothing
        #[arg(long)]
        dry_run: bool,
        /// The request's reference (e.g. its file number), kept in the audit
        #[arg(long, value_name = "TEXT")]
        reference: Option<String>,
        /// Also replace this wherever it stands, as the address is (the person's name, a
        /// telephone number); may be given more than once
        #[arg(long, value_name = "TEXT")]
        also: Vec<String>,
        /// SQLite: afterwards rewrite the file without the freed pages (see retention run)
        #[arg(long, conflicts_with = "dry_run")]
        vacuum: bool,
        /// One JSON object
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        actor: ActorArg,
    },
}

#[derive(Args)]
pub struct BackupArgs {
    /// The file to write (must not exist)
    #[arg(value_name = "DEST")]
    pub dest: PathBuf,
    /// One JSON object
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct RestoreCheckArgs {
    /// A copy made by `poststelle backup` (a file), or postgres://… of a restored database
    #[arg(value_name = "DEST")]
    pub target: String,
    /// One JSON object
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum AuthCmd {
    /// Device-code sign-in: shows a code to enter on the provider's page, then stores the
    /// refresh token in <data_dir>/oauth/PROVIDER.refresh-token (mode 0600)
    Login {
        /// The name of the [[oauth]] table
        provider: String,
    },
}

#[derive(Args)]
pub struct IngestArgs {
    /// Messages per transaction
    #[arg(long, default_value_t = 64, value_parser = positive)]
    pub batch: u32,
    /// Print the outcome of every message as JSON Lines instead of a summary
    #[arg(long)]
    pub json: bool,
    /// .eml files, directories of them (in name order) or Maildirs (in delivery order)
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// A ticket's state, as the command line spells it.
#[derive(Clone, Copy, ValueEnum)]
pub enum TicketStateArg {
    /// Filed, nobody has worked on it yet
    New,
    /// Being worked on
    Open,
    /// Waiting for the requester or a third party
    Pending,
    /// Solved, the requester asked to answer if the problem persists; that answer within
    /// ingest.reopen_days opens it again; closed by itself after that
    Resolved,
    /// Done; a follow-up within ingest.reopen_days opens it again
    Closed,
}

impl From<TicketStateArg> for State {
    fn from(s: TicketStateArg) -> State {
        match s {
            TicketStateArg::New => State::New,
            TicketStateArg::Open => State::Open,
            TicketStateArg::Pending => State::Pending,
            TicketStateArg::Resolved => State::Resolved,
            TicketStateArg::Closed => State::Closed,
        }
    }
}

#[derive(Subcommand)]
pub enum TicketsCmd {
    /// List tickets, oldest first, a page at a time
    List {
        /// Only tickets in this state
        #[arg(long, value_enum, ignore_case = true)]
        state: Option<TicketStateArg>,
        /// Only tickets in this queue (a [[queue]] of the configuration)
        #[arg(long)]
        queue: Option<String>,
        /// At most this many tickets
        #[arg(long, value_parser = positive, default_value_t = 50)]
        limit: u32,
        /// The tickets after this one: the number a page ends with (its `next`)
        #[arg(long, value_name = "NUMBER")]
        after: Option<String>,
        /// JSON Lines, one ticket per line (times in RFC 3339, UTC), and {"next": NUMBER} last
        /// when there are more
        #[arg(long)]
        json: bool,
    },
    /// A ticket with its deadline, articles (texts included), outgoing mail and audit trail
    Show {
        /// The ticket number, e.g. 2026112310000012
        number: String,
        /// One JSON object (times in RFC 3339, UTC)
        #[arg(long)]
        json: bool,
    },
    /// Change state, class, queue, level, assignee or pending time, or add a note (each change
    /// audited); give at least one
    #[command(group(
        ArgGroup::new("change")
            .args(["status", "severity", "queue", "level", "assign", "pending_until", "note"])
            .required(true)
            .multiple(true)
    ))]
    Set {
        /// The ticket number, e.g. 2026112310000012
        number: String,
        /// The new state
        #[arg(long, value_enum, ignore_case = true)]
        status: Option<TicketStateArg>,
        /// The new Störungsklasse: 1 betriebsverhindernd, 2 betriebsbehindernd, 3 leicht,
        /// 4 sonstige (the deadline is computed again)
        #[arg(long, value_parser = class_number)]
        severity: Option<u8>,
        /// The new queue (a [[queue]] of the configuration; the deadline is computed again)
        #[arg(long)]
        queue: Option<String>,
        /// Hand the ticket to support level 1, 2 or 3: the queue of that level along the
        /// queue's escalate_to chain, one level at a time
        #[arg(long, value_parser = level_number)]
        level: Option<u8>,
        /// Assign the ticket to a staff member's address
        #[arg(long, value_name = "ADDRESS")]
        assign: Option<String>,
        /// The ticket waits until then and is pending: Berlin time "2026-12-16 19:00",
        /// "16.12.2026" (a date alone is its start) or RFC 3339
        #[arg(long, value_parser = instant, value_name = "TIME")]
        pending_until: Option<Timestamp>,
        /// An internal note (counts as the first reaction for the deadline)
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
        /// With --queue from the clearing queue to a Ressort: the requester of the Nutzerkonto
        /// question is told the contact person of the Ressort's service (the EfA-Outbound
        /// reply), once per ticket
        #[arg(long)]
        contact_reply: bool,
        /// The service of the contact list whose contact person --contact-reply names (by
        /// default the Ressort's only service, or the one the Betreff matches best)
        #[arg(long, value_name = "NAME", requires = "contact_reply")]
        service: Option<String>,
        /// Who makes the change, for the audit trail
        #[arg(long, env = "USER", default_value = "staff", value_name = "NAME")]
        actor: String,
    },
    /// Open a ticket for a requester who called or came to the counter, as their mail would:
    /// acknowledgement to the requester, copy to the queue's staff, the deadline running
    Create {
        /// The queue (a [[queue]] of the configuration)
        #[arg(long)]
        queue: String,
        /// The Störungsklasse: 1 betriebsverhindernd, 2 betriebsbehindernd, 3 leicht, 4 sonstige
        #[arg(long, value_parser = class_number)]
        class: u8,
        /// The requester's mail address (gets the acknowledgement and the answers)
        #[arg(long, value_name = "ADDRESS")]
        requester: String,
        /// The requester's name
        #[arg(long)]
        name: Option<String>,
        /// The ticket's subject
        #[arg(long)]
        subject: String,
        /// The request's text (UTF-8); `-` reads it from stdin
        #[arg(long, value_name = "BODY")]
        file: PathBuf,
        /// Who opens the ticket, for the audit trail
        #[arg(long, env = "USER", default_value = "staff", value_name = "NAME")]
        actor: String,
        /// The number as JSON (`{"number": …}`)
        #[arg(long)]
        json: bool,
    },
    /// Answer the requester as staff, exactly as a mail to the ticket's reply address would:
    /// commands at the top (#status, #klasse, …) are applied, the rest is relayed
    Reply {
        /// The ticket number, e.g. 2026112310000012
        number: String,
        /// The answer's text (UTF-8); `-` reads it from stdin
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        /// The staff address the answer is from (staff or a member of the ticket's queue);
        /// by default the queue's staff address
        #[arg(long, value_name = "ADDRESS")]
        actor: Option<String>,
    },
}

/// Where an outgoing mail stands, as the command line spells it.
#[derive(Clone, Copy, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum OutboxStateArg {
    /// Waiting for its first or next attempt
    Scheduled,
    /// Taken by the server (or written to a file)
    Sent,
    /// Failed in a way that may pass; tried again later
    TemporaryFailure,
    /// Given up (refused for good, too many attempts); `outbox retry` puts it back
    PermanentFailure,
    /// Held back by the loop brake (ingest.auto_reply_limit_per_hour)
    Suppressed,
    /// Handed to the SMTP server without its answer recorded (a sender killed, a connection
    /// broken after the data): the server may have it. Held (outbox.after_crash = "hold")
    /// until `outbox retry` after a look at the server's log
    Uncertain,
}

impl From<OutboxStateArg> for OutboxState {
    fn from(s: OutboxStateArg) -> OutboxState {
        match s {
            OutboxStateArg::Scheduled => OutboxState::Scheduled,
            OutboxStateArg::Sent => OutboxState::Sent,
            OutboxStateArg::TemporaryFailure => OutboxState::TemporaryFailure,
            OutboxStateArg::PermanentFailure => OutboxState::PermanentFailure,
            OutboxStateArg::Suppressed => OutboxState::Suppressed,
            OutboxStateArg::Uncertain => OutboxState::Uncertain,
        }
    }
}

#[derive(Subcommand)]
pub enum OutboxCmd {
    /// List outgoing mail, oldest first
    List {
        /// Only mail in this state
        #[arg(long, value_enum)]
        state: Option<OutboxStateArg>,
        /// JSON Lines, one mail per line (times in RFC 3339, UTC)
        #[arg(long)]
        json: bool,
    },
    /// Put a failed, suppressed or uncertain mail back in line, to be sent at once (an
    /// uncertain one only once the mail server's log shows it did not take it: else it
    /// arrives twice)
    Retry {
        /// The number `outbox list` shows after '#'
        id: i64,
    },
    /// Send what is due now through the configured transport, then exit
    Send {
        /// At most this many mails (default: every mail that is due)
        #[arg(long, value_parser = positive)]
        limit: Option<u32>,
    },
}

#[derive(Subcommand)]
pub enum QuarantineCmd {
    /// List the messages that could not be filed, with the reason
    List {
        /// JSON Lines, one message per line (times in RFC 3339, UTC)
        #[arg(long)]
        json: bool,
    },
    /// Print a quarantined message
    Show {
        /// The number `quarantine list` shows after '#'
        id: i64,
        /// The bytes as stored; without it, control characters and invalid bytes are shown
        /// escaped, so that a hostile message cannot drive the terminal
        #[arg(long)]
        raw: bool,
    },
    /// File a quarantined message again (after a fix); one that still cannot be filed keeps
    /// its number and the reason is printed (exit status 1)
    Replay {
        /// The number `quarantine list` shows after '#'
        id: i64,
        /// Print the outcome as one JSON object
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct ClassifyArgs {
    /// Print JSON Lines, one object per message
    #[arg(long)]
    pub json: bool,
    /// Show every rule tried for each message and why it matched or not
    #[arg(long)]
    pub explain: bool,
    /// .eml files, directories of them (in name order) or Maildirs (in delivery order)
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
        /// Störungsklasse: 1–4 or verhindernd, behindernd, leicht, sonstige
        #[arg(long)]
        class: Class,
        /// When the report arrived, RFC 3339 (2026-11-25T10:00:00+01:00)
        #[arg(long)]
        received: Timestamp,
    },
    /// List a calendar's weekly hours and the days it is closed in a year
    Calendar {
        /// A built-in (hessen, rlp) or configured calendar
        name: String,
        /// The year, e.g. 2026
        #[arg(long, value_parser = year)]
        year: i16,
    },
    /// Write the escalation notices that are due now to the outbox, then exit (for cron and
    /// tests; the daemon does this by itself)
    Escalate,
    /// Availability per month and in total: of a calendar's class-1 tickets with the reaction
    /// deadlines met, breached and open, or of a platform over its availability calendar
    #[command(group(ArgGroup::new("subject").required(true).args(["calendar", "platform"])))]
    Report {
        /// A built-in (hessen, rlp) or configured calendar
        #[arg(long)]
        calendar: Option<String>,
        /// A configured [[platform]]: its outages over its own calendar and target
        #[arg(long)]
        platform: Option<String>,
        /// First day (YYYY-MM-DD, Europe/Berlin)
        #[arg(long)]
        from: Date,
        /// Last day (YYYY-MM-DD), included
        #[arg(long)]
        to: Date,
        /// Availability target in percent (0–100); default 97.5, or the platform's
        /// availability_target
        #[arg(long, value_parser = percent)]
        target: Option<f64>,
        /// One JSON object instead of the table
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        /// CSV, one row per period, instead of the table
        #[arg(long)]
        csv: bool,
    },
}

/// What a member is to the platform, as the command line spells it.
#[derive(Clone, Copy, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum RoleArg {
    /// A user of the platform (Endnutzer)
    #[value(alias = "endnutzer")]
    EndUser,
    /// The client who commissioned the platform
    Auftraggeber,
    /// A municipality using the platform (Kommune)
    #[value(alias = "kommune")]
    Municipality,
    /// Our own staff (Mitarbeiter)
    #[value(alias = "mitarbeiter")]
    Staff,
}

impl From<RoleArg> for Role {
    fn from(r: RoleArg) -> Role {
        match r {
            RoleArg::EndUser => Role::EndUser,
            RoleArg::Auftraggeber => Role::Auftraggeber,
            RoleArg::Municipality => Role::Municipality,
            RoleArg::Staff => Role::Staff,
        }
    }
}

/// The language of a member's notices.
#[derive(Clone, Copy, ValueEnum)]
pub enum LanguageArg {
    /// German
    De,
    /// English
    En,
}

impl From<LanguageArg> for Language {
    fn from(l: LanguageArg) -> Language {
        match l {
            LanguageArg::De => Language::De,
            LanguageArg::En => Language::En,
        }
    }
}

/// On or off, for a list's settings.
#[derive(Clone, Copy, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

/// Who makes a change, for the audit trail.
#[derive(Args)]
pub struct ActorArg {
    /// Who makes the change, for the audit trail
    #[arg(long, env = "USER", default_value = "staff", value_name = "NAME")]
    pub actor: String,
}

#[derive(Subcommand)]
pub enum ListsCmd {
    /// Every list with its member count and the lists it includes
    List {
        /// JSON Lines, one list per line (times in RFC 3339, UTC)
        #[arg(long)]
        json: bool,
    },
    /// A list's members (with bounces, flagged and unsubscribed state), inclusions and settings
    Show {
        /// The list's name
        #[arg(value_parser = list_name)]
        name: String,
        /// One JSON object (times in RFC 3339, UTC)
        #[arg(long)]
        json: bool,
    },
    /// Create an empty list (`lists import` creates one as well)
    Create {
        /// Lower-case letters, digits, '-' and '_', e.g. kommunen-rlp
        #[arg(value_parser = list_name)]
        name: String,
        /// What the list is for
        #[arg(long, default_value = "", value_name = "TEXT")]
        description: String,
        /// Members may unsubscribe (List-Unsubscribe); leave it off for lists of the client and
        /// the municipalities, who must be informed
        #[arg(long)]
        unsubscribe: bool,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Change a list's description or whether its members may unsubscribe
    #[command(group(
        ArgGroup::new("change")
            .args(["description", "unsubscribe"])
            .required(true)
            .multiple(true)
    ))]
    Set {
        /// The list's name
        #[arg(value_parser = list_name)]
        name: String,
        /// What the list is for
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
        /// Members may unsubscribe (List-Unsubscribe)
        #[arg(long, value_enum)]
        unsubscribe: Option<Switch>,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Import members from a CSV file as a spreadsheet saves it (`,` or `;`, UTF-8 with or
    /// without BOM or windows-1252, German or English column names); creates the list when
    /// there is none. A file with bad rows changes nothing unless --skip-bad-rows
    Import {
        /// The list's name
        #[arg(value_parser = list_name)]
        name: String,
        /// The CSV file; its first row names the columns: E-Mail, Name (or Vorname, Nachname),
        /// Rolle, Organisation, Sprache (or email, name, role, organization, language)
        file: PathBuf,
        /// Make the list exactly the file: members the file does not hold are removed
        #[arg(long)]
        replace: bool,
        /// Show what the import would change, and change nothing
        #[arg(long)]
        dry_run: bool,
        /// Import the good rows of a file that has bad ones (each bad row is still reported)
        #[arg(long)]
        skip_bad_rows: bool,
        /// Role of rows that name none
        #[arg(long, value_enum, default_value = "end_user")]
        role: RoleArg,
        /// One JSON object: the problems and every member added, changed and removed
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Add a member, or change the fields given of one
    Add {
        /// The list's name
        #[arg(value_parser = list_name)]
        name: String,
        /// The member's e-mail address
        address: String,
        /// The member's name
        #[arg(long = "name", id = "member_name", value_name = "NAME")]
        member_name: Option<String>,
        /// The member's role [default for a new member: end_user]
        #[arg(long, value_enum)]
        role: Option<RoleArg>,
        /// The member's organisation (municipality, agency, company)
        #[arg(long)]
        organisation: Option<String>,
        /// The language of the member's notices [default for a new member: de]
        #[arg(long, value_enum)]
        language: Option<LanguageArg>,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Take a member off a list
    Remove {
        /// The list's name
        #[arg(value_parser = list_name)]
        name: String,
        /// The member's e-mail address (any case)
        address: String,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Make a list include the members of another (refused when a list would reach itself)
    Include {
        /// The list that includes
        #[arg(value_parser = list_name)]
        name: String,
        /// The list whose members it includes
        #[arg(value_parser = list_name)]
        other: String,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// End the inclusion of another list
    Exclude {
        /// The list that includes
        #[arg(value_parser = list_name)]
        name: String,
        /// The list it includes
        #[arg(value_parser = list_name)]
        other: String,
        #[command(flatten)]
        actor: ActorArg,
    },
    /// Write a list's own members as CSV to stdout: `;`-separated, UTF-8 with BOM, as German
    /// Excel opens it; `lists import` reads it back
    Export {
        /// The list's name
        #[arg(value_parser = list_name)]
        name: String,
    },
    /// Delete a list with its members (refused while another list or a platform names it)
    Delete {
        /// The list's name
        #[arg(value_parser = list_name)]
        name: String,
        #[command(flatten)]
        actor: ActorArg,
    },
}

#[derive(Subcommand)]
pub enum MaintenanceCmd {
    /// Schedule a maintenance and announce it to the platform's lists (or --lists). Refused,
    /// naming the rule and the earliest allowed start, with less than 7 days' notice inside a
    /// regular window or 14 outside, unless --emergency
    Schedule {
        /// The platform, as a [[platform]] of the configuration names it
        #[arg(long, value_name = "NAME")]
        platform: String,
        /// Start: Berlin time "2026-12-16 19:00", or RFC 3339
        #[arg(long, value_parser = instant, value_name = "TIME")]
        start: Timestamp,
        /// End: Berlin time "2026-12-16 23:00", or RFC 3339
        #[arg(long, value_parser = instant, value_name = "TIME")]
        end: Timestamp,
        /// Why the maintenance is needed
        #[arg(long, value_name = "TEXT")]
        reason: String,
        /// The restrictions users face meanwhile
        #[arg(long, value_name = "TEXT")]
        impact: String,
        /// Lists to announce to, comma-separated [default: the platform's lists]
        #[arg(long, value_delimiter = ',', value_parser = list_name, value_name = "LIST,…")]
        lists: Vec<String>,
        /// Unplanned work: announce with less notice than the rule asks (the notice says so)
        #[arg(long)]
        emergency: bool,
        /// One JSON object (times in RFC 3339, UTC)
        #[arg(long)]
        json: bool,
    },
    /// Every maintenance, the latest start first
    List {
        /// JSON Lines, one maintenance per line (times in RFC 3339, UTC)
        #[arg(long)]
        json: bool,
    },
    /// A maintenance with its announcements and where their mails stand
    Show {
        id: i64,
        /// One JSON object (times in RFC 3339, UTC)
        #[arg(long)]
        json: bool,
    },
    /// Change a scheduled maintenance and announce the change (a moved start or end is
    /// checked against the lead-time rules again; the calendar entry is updated in place)
    #[command(group(
        ArgGroup::new("what")
            .args(["start", "end", "reason", "impact"])
            .required(true)
            .multiple(true)
    ))]
    Change {
        id: i64,
        /// New start: Berlin time "2026-12-16 19:00", or RFC 3339
        #[arg(long, value_parser = instant, value_name = "TIME")]
        start: Option<Timestamp>,
        /// New end: Berlin time "2026-12-16 23:00", or RFC 3339
        #[arg(long, value_parser = instant, value_name = "TIME")]
        end: Option<Timestamp>,
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        #[arg(long, value_name = "TEXT")]
        impact: Option<String>,
        /// Unplanned work: move with less notice than the rule asks (the notice says so)
        #[arg(long)]
        emergency: bool,
        /// One JSON object
        #[arg(long)]
        json: bool,
    },
    /// Cancel a scheduled maintenance: a notice, and the calendar entry marked cancelled
    Cancel {
        id: i64,
        /// One JSON object
        #[arg(long)]
        json: bool,
    },
    /// Mark a scheduled maintenance done and tell its lists the platform is back
    Done {
        id: i64,
        /// One JSON object
        #[arg(long)]
        json: bool,
    },
}

/// Berlin wall-clock time (`2026-12-16 19:00`, `16.12.2026 19:00`, a date alone) or RFC 3339
/// with an offset ([`poststelle::time::parse_for_people`]).
fn instant(s: &str) -> Result<Timestamp, String> {
    poststelle::time::parse_for_people(s)
}

// Value parsers whose errors say in words what is wanted; clap's own name Rust ranges
// (`1..=4`) and types.

/// A list name, lower-cased.
fn list_name(s: &str) -> Result<String, String> {
    poststelle::lists::check_list_name(s)
}

/// A percentage from 0 to 100.
fn percent(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err("use a number from 0 to 100".into()),
    }
}

/// A count of at least one.
fn positive(s: &str) -> Result<u32, String> {
    match s.trim().parse::<u32>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("use a whole number from 1 to {}", u32::MAX)),
    }
}

/// A support level.
fn level_number(s: &str) -> Result<u8, String> {
    match s.trim().parse::<u8>() {
        Ok(n) if (1..=3).contains(&n) => Ok(n),
        _ => Err("use support level 1, 2 or 3".into()),
    }
}

/// A Störungsklasse.
fn class_number(s: &str) -> Result<u8, String> {
    match s.trim().parse::<u8>() {
        Ok(n) if (1..=4).contains(&n) => Ok(n),
        _ => Err(
            "use 1 (betriebsverhindernd), 2 (betriebsbehindernd), 3 (leicht) or 4 \
                  (sonstige)"
                .into(),
        ),
    }
}

/// A year whose public holidays are known.
fn year(s: &str) -> Result<i16, String> {
    match s.trim().parse::<i16>() {
        Ok(y) if (1900..=2199).contains(&y) => Ok(y),
        _ => Err("use a year from 1900 to 2199".into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Incidents (issue 16, item 4)

#[derive(Subcommand)]
pub enum IncidentCmd {
    /// Open an incident of a platform: its lists (or --lists) get the "Störung" notice, and
    /// its outage begins in the availability report
    Open {
        /// The platform, as a [[platform]] of the configuration names it
        #[arg(long, value_name = "NAME")]
        platform: String,
        /// What is wrong, in a few words (the notices' subject)
        #[arg(long, value_name = "TEXT")]
        title: String,
        /// What users cannot do meanwhile
        #[arg(long, value_name = "TEXT")]
        impact: String,
        /// Störungsklasse: 1 betriebsverhindernd, 2 betriebsbehindernd, 3 leicht (raised to 2
        /// by incidents.raise_to_class_2_after linked light reports), 4 sonstige
        #[arg(long, value_parser = class_number, default_value = "1", value_name = "N")]
        class: u8,
        /// Lists to notify, comma-separated [default: the platform's lists]
        #[arg(long, value_delimiter = ',', value_parser = list_name, value_name = "LIST,…")]
        lists: Vec<String>,
        /// Link this ticket (repeat or separate by commas)
        #[arg(long = "ticket", value_delimiter = ',', value_name = "NUMBER")]
        tickets: Vec<String>,
        /// When the outage began: Berlin time "2026-12-16 08:30", or RFC 3339 [default: now]
        #[arg(long, value_parser = instant, value_name = "TIME")]
        since: Option<Timestamp>,
        #[command(flatten)]
        actor: ActorArg,
        /// One JSON object (times in RFC 3339, UTC)
        #[arg(long)]
        json: bool,
    },
    /// Tell the lists and the requesters of linked tickets what is new (threaded under the
    /// first notice)
    Update {
        id: i64,
        /// The news, as the notice shall say it
        #[arg(long, value_name = "TEXT")]
        text: String,
        #[command(flatten)]
        actor: ActorArg,
        /// One JSON object
        #[arg(long)]
        json: bool,
    },
    /// Resolve an incident: its outage ends, the lists and the requesters of linked tickets
    /// hear it is "behoben"
    Resolve {
        id: i64,
        /// When the platform was restored: Berlin time "2026-12-16 10:15", or RFC 3339
        /// [default: now]
        #[arg(long, value_parser = instant, value_name = "TIME")]
        at: Option<Timestamp>,
        /// A closing word for the notices (cause, what was done)
        #[arg(long, value_name = "TEXT")]
        text: Option<String>,
        #[command(flatten)]
        actor: ActorArg,
        /// One JSON object
        #[arg(long)]
        json: bool,
    },
    /// Every incident, the latest first
    List {
        /// JSON Lines, one incident per line (times in RFC 3339, UTC)
        #[arg(long)]
        json: bool,
    },
    /// An incident with its timeline, linked tickets and notices
    Show {
        id: i64,
        /// One JSON object (times in RFC 3339, UTC)
        #[arg(long)]
        json: bool,
    },
    /// Confirm an incident monitoring opened: its lists hear of it now (on platforms with
    /// alert_notices = "confirm", the default)
    Confirm {
        id: i64,
        #[command(flatten)]
        actor: ActorArg,
        /// One JSON object
        #[arg(long)]
        json: bool,
    },
    /// Link users' tickets to an incident: their requesters get its updates and resolution
    Link {
        id: i64,
        /// Ticket numbers
        #[arg(required = true, value_name = "TICKET")]
        tickets: Vec<String>,
        #[command(flatten)]
        actor: ActorArg,
        /// One JSON object
        #[arg(long)]
        json: bool,
    },
}

// Monitoring alerts and problems (issue 19)

#[derive(Subcommand)]
pub enum AlertsCmd {
    /// Every alert key, the latest mail first
    List {
        /// JSON Lines, one key per line (times in RFC 3339, UTC)
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum ProblemsCmd {
    /// Problems, the latest first
    List {
        /// Only open or only closed ones
        #[arg(long, value_parser = ["open", "closed"])]
        state: Option<String>,
        /// Only those of this platform
        #[arg(long, value_name = "NAME")]
        platform: Option<String>,
        /// JSON Lines, one problem per line (times in RFC 3339, UTC)
        #[arg(long)]
        json: bool,
    },
    /// A problem with its incidents
    Show {
        id: i64,
        /// One JSON object (times in RFC 3339, UTC)
        #[arg(long)]
        json: bool,
    },
    /// Close a problem (its cause is dealt with); incidents of its kind count afresh
    Close {
        id: i64,
        /// What was found and done
        #[arg(long, value_name = "TEXT")]
        note: Option<String>,
        #[command(flatten)]
        actor: ActorArg,
        /// One JSON object
        #[arg(long)]
        json: bool,
    },
}

// Announcements (issue 16, item 6)

#[derive(Subcommand)]
pub enum AnnouncementsCmd {
    /// Where the mails of one notice stand: sent, pending, failed, bounced, and who has not
    /// got it and why (the ids are in `maintenance show` and `incident show`)
    Status {
        /// The announcement's id
        id: i64,
        /// One JSON object (times in RFC 3339, UTC)
        #[arg(long)]
        json: bool,
        /// Wait until no mail is pending (sent by the daemon or `outbox send`), with a
        /// progress bar on a terminal
        #[arg(long)]
        wait: bool,
    },
}
