//! `[reply]`: where staff answers go (the reply address with a per-ticket token, see
//! [`crate::reply_token`]), the keys of the tokens and the optional check of the receiving
//! server's `Authentication-Results`. The current key lives in a credentials file that `run`
//! and `ingest` create when it is missing; no key is ever printed.
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Deserialize;
use toml::Spanned;

use super::{Files, at, config_path};
use crate::diag::{Diagnostics, Problem, SourceText, Wanted};
use crate::reply_token::{Keys, MIN_KEY_BYTES, Pattern};

/// The name of the key file in the data directory when `reply.key_file` is not set.
pub const DEFAULT_KEY_FILE: &str = "reply-token.key";

/// Octets of a key `run` and `ingest` create: 256 bits.
const NEW_KEY_BYTES: usize = 32;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawReply {
    address: Option<Spanned<String>>,
    key_file: Option<Spanned<String>>,
    #[serde(default)]
    retired_keys: Vec<Spanned<RawRetiredKey>>,
    authserv_id: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetiredKey {
    key_file: Spanned<String>,
    accepted_until: Spanned<String>,
}

/// How staff answers by mail are told from forged ones.
#[derive(Clone)]
pub struct ReplySettings {
    /// Where the token sits in the reply address.
    pub pattern: Pattern,
    /// The current key's file: configured, else `<data_dir>/reply-token.key`.
    pub key_file: PathBuf,
    /// `key_file` was configured (else it follows the data directory).
    pub key_file_configured: bool,
    /// Retired keys (already read) and the instant until which each is accepted.
    retired: Vec<(Vec<u8>, Timestamp)>,
    /// When set, a staff answer also needs this server's `Authentication-Results` to say
    /// `dmarc=pass` or `spf=pass`.
    pub authserv_id: Option<String>,
    /// The keys, once the current key was read ([`ReplySettings::load_key`]); `None` while its
    /// file does not exist.
    pub keys: Option<Keys>,
}

impl std::fmt::Debug for ReplySettings {
    // Never a key in a log or an error.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplySettings")
            .field("pattern", &self.pattern)
            .field("key_file", &self.key_file)
            .field("retired_keys", &self.retired.len())
            .field("authserv_id", &self.authserv_id)
            .field("key_loaded", &self.keys.is_some())
            .finish()
    }
}

pub(super) fn validate(
    raw: &RawReply,
    from: &str,
    data_dir: &Path,
    src: &SourceText,
    files: &Files,
    diags: &mut Diagnostics,
) -> ReplySettings {
    let pattern = match &raw.address {
        Some(a) => Pattern::parse(a.get_ref().trim()).map_err(|e| (at(a), e)),
        None => Pattern::plus_addressing(from).map_err(|e| (None, e)),
    };
    let pattern = pattern.unwrap_or_else(|(offset, e)| {
        diags.push(
            src,
            offset,
            format!("reply.address: {e}"),
            "write e.g. address = \"support+t{ticket}.{mac}@example.org\" (plus-addressing) or \
             \"support-t{ticket}-{mac}@example.org\" for a server that delivers such addresses \
             to the support mailbox",
        );
        Pattern::parse("invalid+t{ticket}.{mac}@invalid.invalid")
            .unwrap_or_else(|_| unreachable!("a valid pattern"))
    });
    let key_file = raw
        .key_file
        .as_ref()
        .and_then(|k| config_path("reply.key_file", k, src, files, diags));
    let mut retired = Vec::new();
    for r in &raw.retired_keys {
        let r = r.get_ref();
        let until = match r.accepted_until.get_ref().trim().parse::<Timestamp>() {
            Ok(t) => t,
            Err(e) => {
                diags.push(
                    src,
                    at(&r.accepted_until),
                    format!(
                        "reply.retired_keys: accepted_until {:?} is no instant: {e}",
                        r.accepted_until.get_ref()
                    ),
                    "write an RFC 3339 instant with its offset, e.g. \"2027-01-31T18:00:00+01:00\"",
                );
                continue;
            }
        };
        let Some(path) = config_path(
            "reply.retired_keys.key_file",
            &r.key_file,
            src,
            files,
            diags,
        ) else {
            continue;
        };
        match read_key(&path) {
            Ok(Some(key)) => retired.push((key, until)),
            Ok(None) => diags.push(
                src,
                at(&r.key_file),
                format!("the retired reply key {} does not exist", path.display()),
                "name the file that held the key before the rotation, or remove this \
                 [[reply.retired_keys]] table once its accepted_until has passed",
            ),
            Err(p) => diags.push(src, at(&r.key_file), p.message, p.fix),
        }
    }
    let authserv_id = raw.authserv_id.as_ref().and_then(|a| {
        let id = a.get_ref().trim();
        if id.is_empty() || id.chars().any(|c| c.is_whitespace() || c == ';') {
            diags.push(
                src,
                at(a),
                format!("reply.authserv_id {id:?} is no authserv-id"),
                "write the name your receiving mail server puts first in its \
                 Authentication-Results header, e.g. \"mx.kommunal-it.example\"",
            );
            return None;
        }
        Some(id.to_ascii_lowercase())
    });
    let mut settings = ReplySettings {
        pattern,
        key_file_configured: key_file.is_some(),
        key_file: key_file.unwrap_or_else(|| data_dir.join(DEFAULT_KEY_FILE)),
        retired,
        authserv_id,
        keys: None,
    };
    if let Err(p) = settings.load_key(false) {
        diags.push(src, raw.key_file.as_ref().and_then(at), p.message, p.fix);
    }
    settings
}

impl ReplySettings {
    /// Points the default key file at `data_dir` (after `--data-dir` moved it); a configured
    /// one stays. Reads the key again.
    pub fn follow_data_dir(&mut self, data_dir: &Path) -> Result<(), Problem> {
        if !self.key_file_configured {
            self.key_file = data_dir.join(DEFAULT_KEY_FILE);
        }
        self.load_key(false)
    }

    /// Reads the current key; with `create`, makes the key file first when it is missing (32
    /// random bytes, mode 0600). Without a file and without `create`, `keys` stays `None`.
    pub fn load_key(&mut self, create: bool) -> Result<(), Problem> {
        let mut key = read_key(&self.key_file)?;
        if key.is_none() && create {
            create_key(&self.key_file)?;
            tracing::info!(file = %self.key_file.display(), "reply token key created");
            key = read_key(&self.key_file)?;
        }
        self.keys = key.map(|k| Keys::new(k, self.retired.clone()));
        Ok(())
    }

    /// The reply address of ticket `number`, when a key is loaded.
    pub fn address(&self, number: &str) -> Option<String> {
        self.keys.as_ref().map(|k| self.pattern.address(k, number))
    }

    /// What `check` says when there is no key yet.
    pub fn missing_key_note(&self) -> Option<String> {
        self.keys.is_none().then(|| {
            format!(
                "note: the reply token key {} does not exist yet: mail to staff goes out without \
                 a reply address and staff answers by mail are refused until it does\n    fix: \
                 `poststelle run` and `poststelle ingest` create it, or make one now: \
                 (umask 077; head -c 32 /dev/urandom > {})",
                self.key_file.display(),
                self.key_file.display()
            )
        })
    }
}

/// The key in `path`: its bytes, or its text without the line end when it is one line of
/// printable text (a key made with `openssl rand -hex 32 > file`). `None` when it is missing.
fn read_key(path: &Path) -> Result<Option<Vec<u8>>, Problem> {
    let mut bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Problem::at_path(
                "read the reply token key",
                path,
                Wanted::File,
                &e,
            ));
        }
    };
    let text_line = |b: &[u8]| {
        b.iter()
            .all(|c| c.is_ascii_graphic() || *c == b'\n' || *c == b'\r')
    };
    if text_line(&bytes) {
        while bytes.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
            bytes.pop();
        }
    }
    if bytes.len() < MIN_KEY_BYTES {
        return Err(Problem {
            message: format!(
                "the reply token key {} is too short ({} octets; at least {MIN_KEY_BYTES})",
                path.display(),
                bytes.len()
            ),
            fix: format!(
                "make a new one: (umask 077; head -c 32 /dev/urandom > {}); tokens of the old \
                 key stop working unless it is kept as a [[reply.retired_keys]] entry",
                path.display()
            ),
        });
    }
    Ok(Some(bytes))
}

/// A new key file: random bytes, readable by poststelle's user only; never overwrites one.
fn create_key(path: &Path) -> Result<(), Problem> {
    let mut key = [0u8; NEW_KEY_BYTES];
    getrandom::fill(&mut key).map_err(|e| Problem {
        message: format!("no random bytes for a new reply token key: {e}"),
        fix: format!(
            "make the key by hand: (umask 077; head -c 32 /dev/urandom > {})",
            path.display()
        ),
    })?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            Problem::at_path(
                "create the directory of the reply token key",
                dir,
                Wanted::Directory,
                &e,
            )
        })?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options.open(path).and_then(|mut f| {
        f.write_all(&key)?;
        f.sync_all()
    });
    match written {
        Ok(()) => Ok(()),
        // Another instance made it meanwhile: that one is the key.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Problem::at_path(
            "create the reply token key",
            path,
            Wanted::File,
            &e,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_key_is_private_and_read_back() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("sub/reply-token.key");
        assert_eq!(read_key(&path), Ok(None));
        create_key(&path).expect("created");
        let key = read_key(&path).expect("read").expect("there");
        assert_eq!(key.len(), NEW_KEY_BYTES);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // Never overwritten.
        create_key(&path).expect("again");
        assert_eq!(read_key(&path).expect("read"), Some(key));
        std::fs::write(&path, "0123456789abcdef0123\n").expect("write");
        assert_eq!(
            read_key(&path).expect("read"),
            Some(b"0123456789abcdef0123".to_vec())
        );
        std::fs::write(&path, "short").expect("write");
        let e = read_key(&path).expect_err("too short");
        assert!(!e.message.contains("short\""), "{e}");
    }
}
