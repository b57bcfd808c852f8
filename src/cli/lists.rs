//! `poststelle lists …`: distribution lists — import from CSV, show, change, export.
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use poststelle::config::Config;
use poststelle::lists::{self, Diff, Member, ParsedFile};
use poststelle::store::Store;
use poststelle::store::lists::{self as stored, Added, Imported, ListView, MemberFields};
use serde_json::json;
use tokio::runtime::Builder;

use super::output::{line, when};
use super::{Access, Global, ListsCmd, NoStore, load_config, open_store, runtime, with_store};

/// How many added members an import lists for people; the rest are counted (`--json` has all).
const SHOWN_ADDED: usize = 20;

pub(super) fn lists(g: &Global, cmd: &ListsCmd) -> Result<ExitCode> {
    match cmd {
        ListsCmd::Import {
            name,
            file,
            replace,
            dry_run,
            skip_bad_rows,
            role,
            json,
            actor,
        } => {
            // The file is read before any store is opened: a typo in its path or a file
            // without an address column needs none.
            let bytes = std::fs::read(file)
                .with_context(|| format!("cannot read the list file {}", file.display()))?;
            let parsed = lists::read_csv(&bytes, (*role).into())
                .map_err(|e| anyhow!("{}:{e}", file.display()))?;
            let cfg = load_config(g)?;
            // A file with bad rows changes nothing unless told to skip them; what the good
            // rows would do is still shown.
            let held_back = !parsed.problems.is_empty() && !skip_bad_rows;
            let request = ImportRequest {
                name,
                file,
                parsed: &parsed,
                replace: *replace,
                dry_run: *dry_run || held_back,
                why_unchanged: if *dry_run { "dry run" } else { "bad rows" },
                actor: &actor.actor,
            };
            runtime(Builder::new_current_thread())?.block_on(async {
                let store = if request.dry_run {
                    open_if_there(&cfg).await?
                } else {
                    Some(open_store(&cfg, Access::Create).await?)
                };
                let result = import(&cfg, store.as_ref(), &request, *json).await;
                if let Some(store) = store {
                    store.close().await;
                }
                result
            })?;
            let bad = parsed.problems.len();
            if bad > 0 && !skip_bad_rows {
                bail!(
                    "{bad} bad row(s) in {}: nothing changed\n    fix: correct the rows named \
                     above, or import the good rows with --skip-bad-rows",
                    file.display()
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        ListsCmd::Create {
            name,
            description,
            unsubscribe,
            actor,
        } => {
            let cfg = load_config(g)?;
            runtime(Builder::new_current_thread())?.block_on(async {
                let store = open_store(&cfg, Access::Create).await?;
                let done =
                    stored::create(&store, name, description, *unsubscribe, &actor.actor).await;
                store.close().await;
                done?;
                writeln!(std::io::stdout().lock(), "list {name} created")?;
                Ok(ExitCode::SUCCESS)
            })
        }
        cmd => with_store(g, async |cfg, store| on_existing(cfg, store, cmd).await),
    }
}

/// The commands that read or change lists of a store that is there.
async fn on_existing(cfg: &Config, store: &Store, cmd: &ListsCmd) -> Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    match cmd {
        ListsCmd::List { json } => {
            let lists = stored::summaries(store).await?;
            if *json {
                for l in &lists {
                    let mut v = serde_json::to_value(l)?;
                    v["platforms"] = json!(platforms_of(cfg, &l.name));
                    writeln!(out, "{v}")?;
                }
            } else if lists.is_empty() {
                writeln!(out, "no lists")?;
            } else {
                writeln!(
                    out,
                    "{:<24} {:>7}  {:<11}  {:<24}  {:<16}  DESCRIPTION",
                    "NAME", "MEMBERS", "UNSUBSCRIBE", "INCLUDES", "PLATFORMS"
                )?;
                for l in &lists {
                    writeln!(
                        out,
                        "{:<24} {:>7}  {:<11}  {:<24}  {:<16}  {}",
                        l.name,
                        l.members,
                        on_off(l.unsubscribe),
                        dash_if_empty(&l.includes.join(", ")),
                        dash_if_empty(&platforms_of(cfg, &l.name).join(", ")),
                        line(&l.description)
                    )?;
                }
            }
            // A platform's default lists are names only in the configuration: here they meet
            // the store.
            for p in &cfg.settings.platforms {
                for missing in stored::missing(store, &p.lists).await? {
                    eprintln!(
                        "warning: platform \"{}\" sends its notices to the list \"{missing}\", \
                         which does not exist\n    fix: `poststelle lists import {missing} FILE` \
                         or `poststelle lists create {missing}`, or correct `lists` of the \
                         platform in {}",
                        p.name, cfg.origin
                    );
                }
            }
        }
        ListsCmd::Show { name, json } => {
            let view = stored::show(store, name).await?;
            if *json {
                let mut v = serde_json::to_value(&view)?;
                v["platforms"] = json!(platforms_of(cfg, name));
                writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
            } else {
                write_view(&mut out, &view, &platforms_of(cfg, name))?;
            }
        }
        ListsCmd::Set {
            name,
            description,
            unsubscribe,
            actor,
        } => {
            let unsubscribe = unsubscribe.map(|s| matches!(s, super::Switch::On));
            let changes = stored::set(
                store,
                name,
                description.as_deref(),
                unsubscribe,
                &actor.actor,
            )
            .await?;
            if changes.is_empty() {
                writeln!(out, "list {name} unchanged: it has the settings given")?;
            } else {
                writeln!(out, "list {name}: {}", changes.join(", "))?;
            }
        }
        ListsCmd::Add {
            name,
            address,
            member_name,
            role,
            organisation,
            language,
            actor,
        } => {
            let address = lists::normalize_address(address).map_err(|e| {
                anyhow!("{e}\n    fix: give a plain address such as anna.mueller@example.org")
            })?;
            let fields = MemberFields {
                name: member_name.as_deref().map(lists::one_line),
                role: role.map(Into::into),
                organisation: organisation.as_deref().map(lists::one_line),
                language: language.map(Into::into),
            };
            match stored::add_member(store, name, &address, &fields, &actor.actor).await? {
                Added::Added => writeln!(out, "{address} added to list {name}")?,
                Added::Updated(changes) => {
                    writeln!(out, "{address} in list {name}: {}", changes.join(", "))?
                }
                Added::Unchanged => writeln!(
                    out,
                    "{address} in list {name} unchanged: it is a member with the fields given"
                )?,
            }
        }
        ListsCmd::Remove {
            name,
            address,
            actor,
        } => {
            stored::remove_member(store, name, address.trim(), &actor.actor).await?;
            writeln!(out, "{} removed from list {name}", address.trim())?;
        }
        ListsCmd::Include { name, other, actor } => {
            if stored::include(store, name, other, &actor.actor).await? {
                writeln!(out, "list {name} now includes the members of {other}")?;
            } else {
                writeln!(out, "list {name} includes {other} already: unchanged")?;
            }
        }
        ListsCmd::Exclude { name, other, actor } => {
            stored::exclude(store, name, other, &actor.actor).await?;
            writeln!(out, "list {name} no longer includes {other}")?;
        }
        ListsCmd::Export { name } => {
            let members = stored::members(store, name).await?;
            out.write_all(&lists::write_csv(&members)?)?;
        }
        ListsCmd::Delete { name, actor } => {
            let users = platforms_of(cfg, name);
            if !users.is_empty() {
                bail!(
                    "the list \"{name}\" is a default list of platform {}: its notices would \
                     reach nobody\n    fix: remove \"{name}\" from `lists` of the platform in {} \
                     first",
                    users.join(", "),
                    cfg.origin
                );
            }
            let members = stored::delete(store, name, &actor.actor).await?;
            writeln!(out, "list {name} deleted with its {members} member(s)")?;
        }
        ListsCmd::Import { .. } | ListsCmd::Create { .. } => {
            unreachable!("handled before a store is opened")
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The store when there is one; for a dry run, which must not create one.
async fn open_if_there(cfg: &Config) -> Result<Option<Store>> {
    match open_store(cfg, Access::Existing).await {
        Ok(store) => Ok(Some(store)),
        Err(e) if e.is::<NoStore>() => Ok(None),
        Err(e) => Err(e),
    }
}

/// An import as the command line asks for it.
struct ImportRequest<'a> {
    name: &'a str,
    file: &'a Path,
    parsed: &'a ParsedFile,
    replace: bool,
    /// Compare only: asked for, or the file has bad rows.
    dry_run: bool,
    why_unchanged: &'static str,
    actor: &'a str,
}

/// Imports (or, dry, compares) the good rows and reports the bad ones, what changes and how.
async fn import(
    cfg: &Config,
    store: Option<&Store>,
    r: &ImportRequest<'_>,
    as_json: bool,
) -> Result<()> {
    let members: Vec<Member> = r.parsed.members.iter().map(|(_, m)| m.clone()).collect();
    let shown_file = r.file.display().to_string();
    let imported = match store {
        Some(store) => {
            stored::import(
                store,
                r.name,
                &members,
                r.replace,
                r.dry_run,
                &shown_file,
                r.actor,
            )
            .await?
        }
        // A dry run before the first store: everything is new.
        None => Imported {
            created: true,
            diff: lists::diff(&[], &members, r.replace),
        },
    };
    let mut out = std::io::stdout().lock();
    if as_json {
        let mut v = serde_json::to_value(&imported)?;
        v["list"] = json!(r.name);
        v["file"] = json!(shown_file);
        v["encoding"] = json!(r.parsed.encoding);
        v["delimiter"] = json!(r.parsed.delimiter.to_string());
        v["ignored_columns"] = json!(r.parsed.ignored_columns);
        v["problems"] = json!(r.parsed.problems);
        v["applied"] = json!(!r.dry_run);
        writeln!(out, "{}", serde_json::to_string_pretty(&v)?)?;
        return Ok(());
    }
    let delimiter = match r.parsed.delimiter {
        '\t' => "tabs".to_string(),
        d => format!("'{d}'"),
    };
    writeln!(
        out,
        "{shown_file}: read as {}, separated by {delimiter}; {} good row(s), {} bad",
        r.parsed.encoding,
        r.parsed.members.len(),
        r.parsed.problems.len()
    )?;
    if !r.parsed.ignored_columns.is_empty() {
        writeln!(
            out,
            "columns not imported: {}",
            r.parsed.ignored_columns.join(", ")
        )?;
    }
    for p in &r.parsed.problems {
        writeln!(out, "  line {}: {}", p.line, line(&p.message))?;
    }
    write_diff(&mut out, r, &imported)?;
    if store.is_none() && r.why_unchanged == "dry run" {
        writeln!(
            out,
            "(there is no store yet; `poststelle lists import` without --dry-run creates it in \
             the data directory of {})",
            cfg.origin
        )?;
    }
    Ok(())
}

fn write_diff(out: &mut impl Write, r: &ImportRequest<'_>, imported: &Imported) -> Result<()> {
    let d: &Diff = &imported.diff;
    let new = if imported.created { " (new)" } else { "" };
    let (add, change, remove) = if r.dry_run {
        ("would add", "would change", "would remove")
    } else {
        ("added", "changed", "removed")
    };
    writeln!(
        out,
        "list {}{new}: {add} {}, {change} {}, {remove} {}; {} unchanged",
        r.name,
        d.added.len(),
        d.changed.len(),
        d.removed.len(),
        d.unchanged
    )?;
    for m in d.added.iter().take(SHOWN_ADDED) {
        writeln!(out, "  + {}", describe(m))?;
    }
    if d.added.len() > SHOWN_ADDED {
        writeln!(
            out,
            "  … and {} more to add (--json lists every one)",
            d.added.len() - SHOWN_ADDED
        )?;
    }
    for c in &d.changed {
        writeln!(
            out,
            "  ~ {}: {}",
            c.after.address,
            line(&c.after.changes_from(&c.before).join(", "))
        )?;
    }
    for m in &d.removed {
        writeln!(out, "  - {}", describe(m))?;
    }
    if r.dry_run {
        writeln!(out, "nothing changed ({})", r.why_unchanged)?;
    }
    Ok(())
}

/// `anna@x.de  Anna Müller (municipality, Stadt Mainz, de)`
fn describe(m: &Member) -> String {
    let mut details = vec![m.role.as_str().to_string()];
    if !m.organisation.is_empty() {
        details.push(line(&m.organisation));
    }
    details.push(m.language.as_str().to_string());
    let name = if m.name.is_empty() {
        String::new()
    } else {
        format!("  {}", line(&m.name))
    };
    format!("{}{name} ({})", line(&m.address), details.join(", "))
}

/// The platforms of the configuration that send to `list` by default.
fn platforms_of(cfg: &Config, list: &str) -> Vec<String> {
    cfg.settings
        .platforms
        .iter()
        .filter(|p| p.lists.iter().any(|l| l == list))
        .map(|p| p.name.clone())
        .collect()
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

fn dash_if_empty(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// The list, its settings and every member with its state.
fn write_view(out: &mut impl Write, v: &ListView, platforms: &[String]) -> Result<()> {
    match v.description.as_str() {
        "" => writeln!(out, "List {}", v.name)?,
        d => writeln!(out, "List {} — {}", v.name, line(d))?,
    }
    writeln!(
        out,
        "Unsubscribe:  {}",
        if v.unsubscribe {
            "on (members may unsubscribe)"
        } else {
            "off (members must be informed)"
        }
    )?;
    writeln!(
        out,
        "Includes:     {}",
        dash_if_empty(&v.includes.join(", "))
    )?;
    writeln!(
        out,
        "Included by:  {}",
        dash_if_empty(&v.included_by.join(", "))
    )?;
    writeln!(
        out,
        "Platforms:    {}",
        dash_if_empty(&platforms.join(", "))
    )?;
    writeln!(
        out,
        "Reaches:      {} address(es), {} own member(s)",
        v.reached,
        v.members.len()
    )?;
    writeln!(
        out,
        "Created:      {}   changed: {}",
        when(v.created),
        when(v.updated)
    )?;
    writeln!(out, "\nMembers:")?;
    if v.members.is_empty() {
        writeln!(out, "  none")?;
        return Ok(());
    }
    writeln!(
        out,
        "  {:<36} {:<24} {:<13} {:<24} {:<4} {:>7}  STATE",
        "ADDRESS", "NAME", "ROLE", "ORGANISATION", "LANG", "BOUNCES"
    )?;
    for r in &v.members {
        let m = &r.member;
        let mut state = Vec::new();
        if let Some(at) = r.flagged {
            state.push(format!("flagged {} (skipped)", when(at)));
        }
        if let Some(at) = r.unsubscribed {
            state.push(format!("unsubscribed {}", when(at)));
        }
        writeln!(
            out,
            "  {:<36} {:<24} {:<13} {:<24} {:<4} {:>7}  {}",
            line(&m.address),
            dash_if_empty(&line(&m.name)),
            m.role.as_str(),
            dash_if_empty(&line(&m.organisation)),
            m.language.as_str(),
            r.bounces,
            dash_if_empty(&state.join(", "))
        )?;
    }
    Ok(())
}
