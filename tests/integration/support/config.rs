//! Configurations: the shipped one, one written for a test, and a daemon's with IMAP mailboxes.
use std::path::PathBuf;
use std::sync::LazyLock;

use poststelle::config::Config;

use super::daemon::port_of;
use super::repo;

pub static DEFAULT: LazyLock<Config> =
    LazyLock::new(|| Config::load(None).expect("the shipped default configuration is valid"));

/// The reply token key of [`TempConfig::staff_desk`].
pub const REPLY_KEY: &[u8] = b"poststelle test reply key, 32 B!";

/// A configuration in a temporary directory: the shipped poststelle.toml with `extra` appended
/// and `replace` applied, rules from `rules` (file name, text), the shipped contact list and
/// templates unless overridden.
pub struct TempConfig {
    pub dir: tempfile::TempDir,
}

impl TempConfig {
    pub fn new(config_toml: &str, rules: &[(&str, &str)]) -> TempConfig {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("rules")).expect("rules dir");
        for (name, text) in rules {
            std::fs::write(dir.path().join("rules").join(name), text).expect("rule file");
        }
        std::fs::write(dir.path().join("poststelle.toml"), config_toml).expect("config");
        TempConfig { dir }
    }

    /// The shipped configuration text with paths pointing into the repository, so that only
    /// what a test changes differs.
    pub fn shipped_text() -> String {
        let text = std::fs::read_to_string(repo().join("poststelle.toml")).expect("shipped");
        text.replace(
            "templates_dir = \"templates\"",
            &format!("templates_dir = {:?}", repo().join("templates")),
        )
        .replace(
            "contacts = \"contacts/hessen.toml\"",
            &format!("contacts = {:?}", repo().join("contacts/hessen.toml")),
        )
    }

    /// The shipped configuration for staff answers by mail: the support queue with `members`
    /// besides its staff address, `[reply]` with the key file `reply.key` ([`REPLY_KEY`]) and
    /// `reply_extra` (more keys of `[reply]`, then tables such as `[[reply.retired_keys]]`).
    pub fn staff_desk(members: &[&str], reply_extra: &str) -> TempConfig {
        let members: Vec<String> = members.iter().map(|m| format!("{m:?}")).collect();
        let text = Self::shipped_text().replacen(
            "staff = \"servicedesk@kommunal-it.example\"\n",
            &format!(
                "staff = \"servicedesk@kommunal-it.example\"\nmembers = [{}]\n",
                members.join(", ")
            ),
            1,
        ) + "\n[reply]\nkey_file = \"reply.key\"\n"
            + reply_extra;
        let t = TempConfig::new(&text, &[]);
        t.write("reply.key", REPLY_KEY);
        t
    }

    /// The shipped configuration with the contact list `name` (beside the configuration)
    /// holding `content` instead of the shipped one.
    pub fn with_contacts(name: &str, content: &[u8]) -> TempConfig {
        let text = Self::shipped_text().replace(
            &format!("contacts = {:?}", repo().join("contacts/hessen.toml")),
            &format!("contacts = {name:?}"),
        );
        let t = TempConfig::new(&text, &[]);
        t.write(name, content);
        t
    }

    pub fn write(&self, rel: &str, content: &[u8]) {
        let p = self.dir.path().join(rel);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("dir");
        }
        std::fs::write(p, content).expect("write");
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("poststelle.toml")
    }

    pub fn load(&self) -> Config {
        match Config::load(Some(&self.path())) {
            Ok(c) => c,
            Err(d) => panic!("config should load:\n{d}"),
        }
    }
}

/// The shipped configuration with the test's mailboxes instead of the default Maildir.
pub fn config_text(mailboxes: &str, extra: &str) -> String {
    let shipped = TempConfig::shipped_text();
    let start = shipped.find("[[mailbox]]").expect("shipped [[mailbox]]");
    let end = shipped[start..]
        .find("[auto_reply]")
        .map(|i| start + i)
        .expect("[auto_reply] after the mailboxes");
    let mut text = format!("{}{}", &shipped[..start], &shipped[end..]);
    text = text.replace(
        "rules_dir = \"rules\"",
        &format!("rules_dir = {:?}", repo().join("rules")),
    );
    text = text.replace(
        "auto_reply_limit_per_hour = 5",
        "auto_reply_limit_per_hour = 100000",
    );
    format!("data_dir = \"data\"\n{text}\n{mailboxes}\n{extra}\n")
}

/// A `[[mailbox]]` of a test user on the plain IMAP port at `addr`.
pub fn imap_mailbox(name: &str, addr: &str, user: &str, folder: &str, extra: &str) -> String {
    format!(
        "[[mailbox]]\nname = \"{name}\"\nkind = \"imap\"\nhost = \"127.0.0.1\"\nport = {}\n\
         tls = \"none\"\nusername = \"{user}@example.test\"\npassword = \"secret\"\n\
         folder = \"{folder}\"\n{extra}\n",
        port_of(addr)
    )
}

/// A daemon's configuration with one mailbox: `user`'s INBOX at `addr`, with `extra` settings.
pub fn one_mailbox(name: &str, addr: &str, user: &str, extra: &str) -> TempConfig {
    TempConfig::new(
        &config_text(&imap_mailbox(name, addr, user, "INBOX", extra), ""),
        &[],
    )
}
