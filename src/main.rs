//! The `poststelle` command line: parses the arguments, sets up logging and hands over to [`cli`].
use std::io;
use std::process::ExitCode;

use clap::Parser;

mod cli;

use cli::{Cli, Command, Global, LogFormat};

fn main() -> ExitCode {
    few_malloc_arenas();
    let cli = Cli::parse();
    init_logging(&cli.global, matches!(cli.command, Command::Run));
    match cli::dispatch(&cli) {
        Ok(code) => code,
        Err(e) if cli::ends_in_closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            match e.downcast_ref::<cli::InvalidConfig>() {
                Some(invalid) => eprintln!("{invalid}"),
                None => eprintln!("error: {}", causes(&e)),
            }
            ExitCode::FAILURE
        }
    }
}

/// glibc gives each thread that meets another in malloc an arena of its own (up to eight per
/// core) and hands little of it back: the daemon's runtime, blocking-pool and SQLite threads
/// held 120–180 MB at peak filing a desk's mailbox (issue 22). Two arenas are enough for two
/// busy threads; set here, not by MALLOC_ARENA_MAX, so that the README's command needs no
/// environment.
fn few_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets a tunable of the allocator; called before any other thread
    // exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// The error and its causes, each said once: many errors (sqlx's, io's behind thiserror's
/// `{0}`) repeat their cause in their own text, and `{:#}` would print it again for every
/// level ("File exists (os error 17): File exists (os error 17)").
fn causes(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
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
    // lettre's and async-imap's debug and trace lines carry the wire, AUTH lines included (a
    // password or an OAuth token in base64): never below info, whatever RUST_LOG says.
    let filter = ["lettre=info", "async_imap=info"]
        .into_iter()
        .filter_map(|d| d.parse().ok())
        .fold(filter, EnvFilter::add_directive);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(io::stderr().is_terminal())
        .with_writer(io::stderr);
    match g.log_format {
        LogFormat::Human => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}
