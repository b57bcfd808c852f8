//! Message files named on the command line: `.eml` files, directories of them, Maildirs.
use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use poststelle::source::maildir::delivery_key;
use poststelle::source::{MailFile, read_mail_file};

/// Problems with single paths: each is reported on stderr and the command goes on with the rest,
/// ending with exit code 2 so that a script notices.
#[derive(Default)]
pub(super) struct Problems {
    any: bool,
}

impl Problems {
    pub(super) fn report(&mut self, problem: impl Display) {
        eprintln!("error: {problem}");
        self.any = true;
    }

    pub(super) fn exit_code(&self) -> ExitCode {
        if self.any {
            ExitCode::from(2)
        } else {
            ExitCode::SUCCESS
        }
    }
}

/// Every message file below `paths`, in the order given; a path that cannot be listed is reported.
pub(super) fn expand_all(paths: &[PathBuf], problems: &mut Problems) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for path in paths {
        match expand(path) {
            Ok(f) => files.extend(f),
            Err(e) => problems.report(format_args!("{e:#}")),
        }
    }
    files
}

/// A message file read within the size limit (only the header of a larger one), or `None`
/// after reporting why it cannot be read.
pub(super) fn read(file: &Path, limit: u64, problems: &mut Problems) -> Option<MailFile> {
    read_mail_file(file, limit)
        .map_err(|e| problems.report(format_args!("{}: {e}", file.display())))
        .ok()
}

/// Expands a path into message files: a file itself; a Maildir's `new/` and `cur/` in delivery order; a
/// directory's files in name order, descending into subdirectories.
fn expand(path: &Path) -> Result<Vec<PathBuf>> {
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
            delivery_key(&a).cmp(&delivery_key(&b))
        });
    } else {
        list_dir(path, &mut out, true)?;
    }
    Ok(out)
}

fn list_dir(dir: &Path, out: &mut Vec<PathBuf>, recurse: bool) -> Result<()> {
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
