//! The `poststelle` command line: argument types, one submodule per group of commands, and the
//! configuration and store every command starts from.
use std::process::ExitCode;

use anyhow::{Context, Result};
use poststelle::config::Config;
use poststelle::diag::{Diagnostics, Problem, Wanted};
use poststelle::store::{Store, StoreError};
use tokio::runtime::{Builder, Runtime};

mod announcements;
mod args;
mod auth;
mod backup;
mod check;
mod classify;
mod incident;
mod ingest;
mod lists;
mod maintenance;
mod outbox;
mod output;
mod paths;
mod privacy;
mod problems;
mod quarantine;
mod retention;
mod run;
mod sla;
mod tickets;

pub use args::*;
pub use output::ends_in_closed_pipe;

/// Runs the command the arguments name.
pub fn dispatch(cli: &Cli) -> Result<ExitCode> {
    let g = &cli.global;
    match &cli.command {
        Command::Run => run::run(g),
        Command::Check { connect } => check::check(g, *connect),
        Command::Auth(cmd) => auth::auth(g, cmd),
        Command::Classify(args) => classify::classify(g, args),
        Command::Ingest(args) => {
            let mut cfg = load_config(g)?;
            runtime(Builder::new_current_thread())?.block_on(async {
                let store = open_store(&cfg, Access::Create).await?;
                make_reply_key(&mut cfg)?;
                let code = ingest::ingest(&cfg, &store, args).await;
                store.close().await;
                code
            })
        }
        Command::Tickets(cmd) => with_store(g, async |cfg, store| {
            tickets::tickets(cfg, store, cmd).await
        }),
        Command::Outbox(cmd) => {
            let mut cfg = load_config(g)?;
            runtime(Builder::new_current_thread())?.block_on(async {
                let store = open_store(&cfg, Access::Existing).await?;
                // Sending signs the notices' one-click unsubscribe links with the reply key.
                if matches!(cmd, OutboxCmd::Send { .. }) {
                    make_reply_key(&mut cfg)?;
                }
                let code = outbox::outbox(&cfg, &store, cmd).await;
                store.close().await;
                code
            })
        }
        Command::Quarantine(cmd) => with_store(g, async |cfg, store| {
            quarantine::quarantine(cfg, store, cmd).await
        }),
        Command::Sla(cmd) => sla::sla(g, cmd),
        Command::Lists(cmd) => lists::lists(g, cmd),
        Command::Maintenance(cmd) => with_store(g, async |cfg, store| {
            maintenance::maintenance(cfg, store, cmd).await
        }),
        Command::Incident(cmd) => with_store(g, async |cfg, store| {
            incident::incident(cfg, store, cmd).await
        }),
        Command::Announcements(cmd) => with_store(g, async |_, store| {
            announcements::announcements(store, cmd).await
        }),
        Command::Alerts(cmd) => with_store(g, async |_, store| problems::alerts(store, cmd).await),
        Command::Problems(cmd) => with_store(g, async |cfg, store| {
            problems::problems(cfg, store, cmd).await
        }),
        Command::Retention(cmd) => with_store(g, async |cfg, store| {
            retention::retention(cfg, store, cmd).await
        }),
        Command::Privacy(cmd) => with_store(g, async |cfg, store| {
            privacy::privacy(cfg, store, cmd).await
        }),
        Command::Backup(args) => with_store(g, async |cfg, store| {
            backup::backup(store, &store_url(cfg), args).await
        }),
        // A copy is checked as it is: no configuration, no store of this installation.
        Command::RestoreCheck(args) => runtime(Builder::new_current_thread())?
            .block_on(async { backup::restore_check(args).await }),
    }
}

/// The configuration named by `--config`, with `--data-dir` in place of its data directory.
fn load_config(g: &Global) -> Result<Config> {
    let mut cfg = Config::load(g.config.as_deref()).map_err(InvalidConfig)?;
    if let Some(dir) = &g.data_dir {
        cfg.settings.data_dir = dir.clone();
        cfg.settings.reply.follow_data_dir(dir)?;
        cfg.settings.oauth_follow_data_dir(dir);
    }
    Ok(cfg)
}

/// For `run` and `ingest`, which send mail to staff and read their answers: the reply token
/// key is made when it is missing (read-only commands never make it). After the store is
/// open, so that an unusable data directory is reported as such first.
fn make_reply_key(cfg: &mut Config) -> Result<()> {
    Ok(cfg.settings.reply.load_key(true)?)
}

/// A configuration with problems: its text is `check`'s, every line already `error: …`, so
/// it is printed as it is rather than behind one more "error:".
#[derive(Debug, thiserror::Error)]
#[error("{0}\nthe configuration is not valid; `poststelle check` lists the same problems")]
pub struct InvalidConfig(pub Diagnostics);

/// Whether a command may create the store it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// `run` and `ingest`: a new data directory starts here.
    Create,
    /// Everything else reads or changes what is there; an empty store made for a typo would
    /// only answer "nothing" and leave a directory behind.
    Existing,
}

/// The database URL of the configuration: `database_url`, else the SQLite file in the data
/// directory.
fn store_url(cfg: &Config) -> String {
    match &cfg.settings.database_url {
        Some(url) => url.clone(),
        None => Store::default_url(&cfg.settings.data_dir),
    }
}

/// Opens the database a command works on: `database_url` of the configuration, else the SQLite
/// file in the data directory (which `--data-dir` may have moved, see [`load_config`]).
async fn open_store(cfg: &Config, access: Access) -> Result<Store> {
    let data_dir = &cfg.settings.data_dir;
    if cfg.settings.database_url.is_none() && access == Access::Create {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            Problem::at_path("create the data directory", data_dir, Wanted::Directory, &e)
        })?;
    }
    let url = store_url(cfg);
    let opened = match access {
        Access::Create => Store::open(&url).await,
        Access::Existing => Store::open_existing(&url).await,
    };
    opened.map_err(|e| match e {
        StoreError::NoStore(at) => NoStore {
            at,
            data_dir: data_dir.display().to_string(),
            origin: cfg.origin.clone(),
        }
        .into(),
        // Says what, where and what to do already.
        StoreError::Problem(p) => p.into(),
        e => anyhow::Error::new(e)
            .context(format!("opening the database {}", Store::display_url(&url))),
    })
}

/// A command that needs a store found none.
#[derive(Debug, thiserror::Error)]
#[error(
    "there is no poststelle store at {at}\n\
     hint: the store is where `database_url`, else `data_dir` ({data_dir}), of {origin} points, \
     or --data-dir; `poststelle run`, `poststelle ingest` and `poststelle lists import` create it"
)]
pub struct NoStore {
    at: String,
    data_dir: String,
    origin: String,
}

/// Loads the configuration, opens the store and runs `f` with them; a one-shot command needs no
/// more than one thread.
fn with_store(
    g: &Global,
    f: impl AsyncFnOnce(&Config, &Store) -> Result<ExitCode>,
) -> Result<ExitCode> {
    let cfg = load_config(g)?;
    runtime(Builder::new_current_thread())?.block_on(async {
        let store = open_store(&cfg, Access::Existing).await?;
        let code = f(&cfg, &store).await;
        store.close().await;
        code
    })
}

fn runtime(mut builder: Builder) -> Result<Runtime> {
    builder
        .enable_all()
        .build()
        .context("starting the async runtime")
}
