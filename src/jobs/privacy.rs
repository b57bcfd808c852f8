//! Data subject requests (issue 20, item 2; GDPR Art. 15 and 17): everything stored about one
//! address, exported as a directory with a JSON index, or erased.
//!
//! What belongs to the address: the tickets it requested, was copied on (Cc) or wrote to,
//! with their articles, raw mail, outgoing mail and audit trail; mail sent to it; its
//! distribution-list memberships; audit lines and raw mail on no ticket that name it. Other
//! people's tickets that only mention it are listed by reference in the export, without their
//! content (it is another person's data, Art. 15(4)).
//!
//! Erasing keeps what the reports need, as counts: the tickets it requested lose their texts
//! and raw mail and are anonymised as retention would (number, queue, class, times and the
//! reaction clock stay); everywhere else — other people's tickets it was copied on or named
//! in, audit lines, lists, incidents — the address is replaced by [`redact::ANONYMOUS`] where
//! it stands, in text and in the bytes of raw mail. A raw mail whose text names it only in an
//! encoded form (quoted-printable, base64), which no search of bytes finds, loses its bytes.
//! Mail to it still to be sent is suppressed. Memberships are deleted. The audit records what
//! was done, with counts and the request's reference, never the address.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Instant;

use jiff::Timestamp;
use serde::Serialize;
use serde_json::json;

use crate::redact::{self, ANONYMOUS};
use crate::store::audit::audit;
use crate::store::buffer::WriteBuffer;
use crate::store::privacy::{self as sql, TextColumn};
use crate::store::retention as rsql;
use crate::store::{Store, StoreError};
use crate::time::stored;

#[derive(Debug, thiserror::Error)]
pub enum PrivacyError {
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("{0:?} is no mail address; give the address as it is written in mail")]
    NoAddress(String),
    #[error(
        "{0} exists and is not empty; name a new directory with --out (an export never \
         overwrites)"
    )]
    Exists(PathBuf),
    #[error("writing {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn checked(address: &str) -> Result<String, PrivacyError> {
    let n = redact::needle(address);
    if !crate::diag::is_plausible_address(&n) {
        return Err(PrivacyError::NoAddress(address.to_string()));
    }
    Ok(n)
}

/// One ticket in the export.
#[derive(Debug, Serialize)]
pub struct ExportTicket {
    pub number: String,
    /// requester, cc, sender (wrote on it)
    pub roles: Vec<String>,
    pub queue: String,
    pub state: String,
    pub severity: i64,
    pub category: Option<String>,
    pub subject: String,
    pub requester: String,
    pub requester_name: Option<String>,
    pub created: Timestamp,
    pub closed: Option<Timestamp>,
    pub articles: Vec<ExportArticle>,
    pub raw_mail: Vec<ExportRaw>,
    pub mail: Vec<ExportMail>,
    pub audit: Vec<ExportAudit>,
}

#[derive(Debug, Serialize)]
pub struct ExportArticle {
    pub kind: String,
    pub sender: Option<String>,
    pub subject: String,
    pub created: Timestamp,
    pub message_id: Option<String>,
    /// The text, relative to the export's directory.
    pub file: String,
    pub attachments: Vec<ExportAttachment>,
}

#[derive(Debug, Serialize)]
pub struct ExportAttachment {
    pub name: Option<String>,
    pub content_type: String,
    pub size: i64,
}

#[derive(Debug, Serialize)]
pub struct ExportRaw {
    pub received: Timestamp,
    pub outcome: String,
    /// The mail as it arrived (`.eml`); `None` when its bytes were deleted already.
    pub file: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ExportMail {
    pub ticket: Option<String>,
    pub kind: String,
    pub recipient: String,
    pub cc: Option<String>,
    pub subject: String,
    pub state: String,
    pub created: Timestamp,
    pub sent: Option<Timestamp>,
    pub message_id: String,
    pub file: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ExportAudit {
    pub at: Timestamp,
    pub ticket: Option<String>,
    pub actor: String,
    pub event: String,
    pub detail: serde_json::Value,
}

#[derive(Debug, Serialize)]
pub struct ExportMembership {
    pub list: String,
    pub address: String,
    pub name: String,
    pub role: String,
    pub organisation: String,
    pub language: String,
    pub bounces: i64,
    pub flagged: Option<Timestamp>,
    pub unsubscribed: Option<Timestamp>,
    pub added: Timestamp,
}

/// Another person's ticket that names the address: where, without its content.
#[derive(Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct Mention {
    pub ticket: Option<String>,
    /// article | raw_mail | mail
    pub what: String,
    pub id: i64,
}

/// `index.json`.
#[derive(Debug, Serialize)]
pub struct ExportIndex {
    pub address: String,
    pub exported: Timestamp,
    pub about: &'static str,
    pub tickets: Vec<ExportTicket>,
    /// Mail to the address on none of its tickets (notices to lists, mail on other tickets).
    pub mail: Vec<ExportMail>,
    pub list_memberships: Vec<ExportMembership>,
    /// Raw mail on no ticket (ignored, quarantined, refused) that contains the address.
    pub unfiled_mail: Vec<ExportRaw>,
    /// Audit lines naming the address outside its tickets' trails (list changes, bounces).
    pub audit: Vec<ExportAudit>,
    pub mentioned_in: Vec<Mention>,
    pub files: usize,
}

const ABOUT: &str = "Everything poststelle stores about this address (GDPR Art. 15): tickets \
    it requested, was copied on or wrote to, with their texts (files beside this index), raw \
    mail as received (.eml) and mail sent; mail sent to it; its distribution-list memberships; \
    raw mail on no ticket and audit lines that name it. Other people's tickets that only \
    mention it are listed under mentioned_in, without their content. Times are UTC.";

/// Counts of an export, for the command's output.
#[derive(Debug, Serialize)]
pub struct Exported {
    pub dir: PathBuf,
    pub tickets: usize,
    pub articles: usize,
    pub raw_mail: usize,
    pub mail: usize,
    pub list_memberships: usize,
    pub audit: usize,
    pub mentioned_in: usize,
    pub files: usize,
}

struct Writer {
    dir: PathBuf,
    files: usize,
}

impl Writer {
    fn write(&mut self, rel: &str, bytes: &[u8]) -> Result<String, PrivacyError> {
        let path = self.dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| PrivacyError::Io {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        std::fs::write(&path, bytes).map_err(|source| PrivacyError::Io { path, source })?;
        self.files += 1;
        Ok(rel.to_string())
    }
}

fn ts(micros: i64) -> Timestamp {
    stored(micros)
}

fn detail(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| json!(text))
}

/// Whether `text` names the address as a whole address (not inside a longer one).
fn names(text: &str, needle: &str) -> bool {
    !redact::find_all(text.as_bytes(), needle.as_bytes()).is_empty()
}

/// Writes everything stored about `address` into `dir` (created; must be new or empty).
pub async fn export(
    store: &Store,
    address: &str,
    dir: &Path,
    now: Timestamp,
) -> Result<Exported, PrivacyError> {
    let needle = checked(address)?;
    if std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some()) {
        return Err(PrivacyError::Exists(dir.to_path_buf()));
    }
    let mut w = Writer {
        dir: dir.to_path_buf(),
        files: 0,
    };
    let mut tickets: BTreeMap<i64, ExportTicket> = BTreeMap::new();
    let mut numbers: HashMap<i64, String> = HashMap::new();
    for t in sql::tickets_of(store, &needle).await? {
        numbers.insert(t.id, t.number.clone());
        let e = tickets.entry(t.id).or_insert_with(|| ExportTicket {
            number: t.number.clone(),
            roles: Vec::new(),
            queue: t.queue.clone(),
            state: t.state.clone(),
            severity: t.severity,
            category: t.category.clone(),
            subject: t.subject.clone(),
            requester: t.requester.clone(),
            requester_name: t.requester_name.clone(),
            created: ts(t.created_at),
            closed: t.closed_at.map(ts),
            articles: Vec::new(),
            raw_mail: Vec::new(),
            mail: Vec::new(),
            audit: Vec::new(),
        });
        if !e.roles.contains(&t.role) {
            e.roles.push(t.role);
        }
    }
    let mut counted_articles = 0;
    let mut counted_raw = 0;
    let mut mail_on_tickets = BTreeSet::new();
    let mut audit_on_tickets = BTreeSet::new();
    for (&id, t) in tickets.iter_mut() {
        let base = format!("tickets/{}", t.number);
        let attachments = sql::attachments(store, id).await?;
        for (i, a) in sql::articles(store, id).await?.into_iter().enumerate() {
            let file = w.write(
                &format!("{base}/article-{:03}-{}.txt", i + 1, a.kind),
                a.body.as_bytes(),
            )?;
            t.articles.push(ExportArticle {
                kind: a.kind,
                sender: a.sender,
                subject: a.subject,
                created: ts(a.created_at),
                message_id: a.message_id,
                file,
                attachments: attachments
                    .iter()
                    .filter(|x| x.0 == a.id)
                    .map(|x| ExportAttachment {
                        name: x.1.clone(),
                        content_type: x.2.clone(),
                        size: x.3,
                    })
                    .collect(),
            });
            counted_articles += 1;
        }
        for (raw_id, bytes, received, outcome) in sql::raw_of_ticket(store, id).await? {
            let file = if bytes.is_empty() {
                None
            } else {
                Some(w.write(&format!("{base}/raw-{raw_id}.eml"), &bytes)?)
            };
            t.raw_mail.push(ExportRaw {
                received: ts(received),
                outcome,
                file,
            });
            counted_raw += 1;
        }
        for m in sql::mail_of_ticket(store, id).await? {
            mail_on_tickets.insert(m.id);
            let e = mail_record(&mut w, &base, m, &numbers)?;
            t.mail.push(e);
        }
        for a in sql::audit_of_ticket(store, id).await? {
            audit_on_tickets.insert(a.id);
            t.audit.push(audit_record(a, &numbers));
        }
    }
    let mut mail = Vec::new();
    let mut mentions = BTreeSet::new();
    for m in sql::mail_to(store, &needle).await? {
        let named = m.recipient.eq_ignore_ascii_case(&needle)
            || m.cc.as_deref().is_some_and(|cc| names(cc, &needle));
        if mail_on_tickets.contains(&m.id) || !named {
            continue;
        }
        mail.push(mail_record(&mut w, "mail", m, &numbers)?);
    }
    let list_memberships: Vec<ExportMembership> = sql::memberships(store, &needle)
        .await?
        .into_iter()
        .map(|m| ExportMembership {
            list: m.list,
            address: m.address,
            name: m.name,
            role: m.role,
            organisation: m.organisation,
            language: m.language,
            bounces: m.bounces,
            flagged: m.flagged_at.map(ts),
            unsubscribed: m.unsubscribed_at.map(ts),
            added: ts(m.added_at),
        })
        .collect();
    let mut unfiled_mail = Vec::new();
    for hit in sql::raw_containing(store, &needle).await? {
        match hit.ticket_id {
            Some(t) if tickets.contains_key(&t) => {}
            Some(t) => {
                let Some(bytes) = store.raw_bytes(hit.id).await? else {
                    continue;
                };
                if redact::find_all(&bytes, needle.as_bytes()).is_empty() {
                    continue;
                }
                mentions.insert(Mention {
                    ticket: numbers_of(store, t, &mut numbers).await?,
                    what: "raw_mail".into(),
                    id: hit.id,
                });
            }
            None => {
                let Some((bytes, received, outcome)) = sql::raw_record(store, hit.id).await? else {
                    continue;
                };
                if !names(&String::from_utf8_lossy(&bytes), &needle) {
                    continue;
                }
                let file = w.write(&format!("unfiled/raw-{}.eml", hit.id), &bytes)?;
                unfiled_mail.push(ExportRaw {
                    received: ts(received),
                    outcome,
                    file: Some(file),
                });
                counted_raw += 1;
            }
        }
    }
    let articles_col = TextColumn {
        table: "articles".into(),
        column: "body".into(),
    };
    for (article, text) in sql::find_text(store, &articles_col, &needle).await? {
        if names(&text, &needle) {
            let owner = crate::store::privacy::article_ticket(store, article).await?;
            if owner.is_some_and(|t| tickets.contains_key(&t)) {
                continue;
            }
            mentions.insert(Mention {
                ticket: match owner {
                    Some(t) => numbers_of(store, t, &mut numbers).await?,
                    None => None,
                },
                what: "article".into(),
                id: article,
            });
        }
    }
    let audit_lines: Vec<ExportAudit> = sql::audit_naming(store, &needle)
        .await?
        .into_iter()
        .filter(|a| !audit_on_tickets.contains(&a.id) && names(&a.detail, &needle))
        .map(|a| audit_record(a, &numbers))
        .collect();
    let mut index = ExportIndex {
        address: needle.clone(),
        exported: now,
        about: ABOUT,
        tickets: tickets.into_values().collect(),
        mail,
        list_memberships,
        unfiled_mail,
        audit: audit_lines,
        mentioned_in: mentions.into_iter().collect(),
        files: 0,
    };
    index.files = w.files + 1;
    let text = serde_json::to_vec_pretty(&index).map_err(|e| PrivacyError::Io {
        path: dir.join("index.json"),
        source: std::io::Error::other(e),
    })?;
    w.write("index.json", &text)?;
    Ok(Exported {
        dir: dir.to_path_buf(),
        tickets: index.tickets.len(),
        articles: counted_articles,
        raw_mail: counted_raw,
        mail: index.mail.len() + index.tickets.iter().map(|t| t.mail.len()).sum::<usize>(),
        list_memberships: index.list_memberships.len(),
        audit: index.audit.len() + index.tickets.iter().map(|t| t.audit.len()).sum::<usize>(),
        mentioned_in: index.mentioned_in.len(),
        files: w.files,
    })
}

async fn numbers_of(
    store: &Store,
    ticket: i64,
    cache: &mut HashMap<i64, String>,
) -> Result<Option<String>, StoreError> {
    if let Some(n) = cache.get(&ticket) {
        return Ok(Some(n.clone()));
    }
    let n = crate::store::privacy::ticket_number(store, ticket).await?;
    if let Some(n) = &n {
        cache.insert(ticket, n.clone());
    }
    Ok(n)
}

fn mail_record(
    w: &mut Writer,
    base: &str,
    m: sql::MailRecord,
    numbers: &HashMap<i64, String>,
) -> Result<ExportMail, PrivacyError> {
    let file = if m.body_text.is_empty() {
        None
    } else {
        let text = format!("Subject: {}\n\n{}", m.subject, m.body_text);
        Some(w.write(&format!("{base}/mail-{}.txt", m.id), text.as_bytes())?)
    };
    Ok(ExportMail {
        ticket: m.ticket_id.and_then(|t| numbers.get(&t).cloned()),
        kind: m.kind,
        recipient: m.recipient,
        cc: m.cc,
        subject: m.subject,
        state: m.state,
        created: ts(m.created_at),
        sent: m.sent_at.map(ts),
        message_id: m.message_id,
        file,
    })
}

fn audit_record(a: sql::AuditRecord, numbers: &HashMap<i64, String>) -> ExportAudit {
    ExportAudit {
        at: ts(a.at),
        ticket: a.ticket_id.and_then(|t| numbers.get(&t).cloned()),
        actor: a.actor,
        event: a.event,
        detail: detail(&a.detail),
    }
}

/// How an erase is run.
#[derive(Debug, Clone, Default)]
pub struct EraseOptions {
    /// Find and count, change nothing.
    pub dry_run: bool,
    /// The request's reference (a case number), kept in the audit.
    pub reference: Option<String>,
    /// Who erases, for the audit.
    pub actor: String,
    /// More to replace wherever it stands, as the address is (the person's name, a telephone
    /// number): [`redact::ANONYMOUS_TEXT`] takes its place.
    pub also: Vec<String>,
}

/// What an erase did (or, dry, would do).
#[derive(Debug, Default, Serialize)]
pub struct Erased {
    pub dry_run: bool,
    /// Tickets it requested: texts and raw mail deleted, anonymised.
    pub tickets_anonymised: Vec<String>,
    /// Of those, ones not closed yet (staff should know).
    pub still_open: Vec<String>,
    /// Tickets of others it was a participant of (Cc): the participant deleted.
    pub participant_of: Vec<String>,
    pub list_memberships: Vec<String>,
    pub mail_suppressed: i64,
    pub mail_anonymised: i64,
    /// Raw mail: deleted (quarantined), bytes deleted, address replaced in the bytes.
    pub raw_deleted: i64,
    pub raw_purged: i64,
    pub raw_replaced: i64,
    /// Per table and column, rows whose text had the address replaced.
    pub texts_replaced: BTreeMap<String, i64>,
    pub reaction_clocks: i64,
    /// Occurrences found by a search after the erase (0 unless mail naming it arrived
    /// meanwhile; dry: what the erase would replace).
    pub remaining: i64,
    pub transactions: usize,
    pub seconds: f64,
}

/// Rows per transaction of an erase.
const CHUNK: usize = 100;

/// Erases `address` (see the module's description).
pub async fn erase(
    store: &Store,
    address: &str,
    opts: &EraseOptions,
    now: Timestamp,
) -> Result<Erased, PrivacyError> {
    let started = Instant::now();
    let needle = checked(address)?;
    let at = now.as_microsecond();
    let mut out = Erased {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    let requested = sql::requested_by(store, &needle).await?;
    let mut numbers: HashMap<i64, String> = HashMap::new();
    let own: BTreeSet<i64> = requested.iter().copied().collect();
    for t in sql::tickets_of(store, &needle).await? {
        numbers.insert(t.id, t.number.clone());
        if own.contains(&t.id) {
            if !out.tickets_anonymised.contains(&t.number) {
                out.tickets_anonymised.push(t.number.clone());
                if t.closed_at.is_none() {
                    out.still_open.push(t.number.clone());
                }
            }
        } else if t.role != "sender" && !out.participant_of.contains(&t.number) {
            out.participant_of.push(t.number.clone());
        }
    }
    let reference = opts.reference.clone();
    let actor = opts.actor.as_str();

    if opts.dry_run {
        out.list_memberships = sql::memberships(store, &needle)
            .await?
            .into_iter()
            .map(|m| m.list)
            .collect();
        for m in sql::mail_to(store, &needle).await? {
            if !m.recipient.eq_ignore_ascii_case(&needle) {
                continue;
            }
            match m.state.as_str() {
                "scheduled" | "temporary_failure" => out.mail_suppressed += 1,
                _ => out.mail_anonymised += 1,
            }
        }
    } else {
        // Mail to it first (what is still to be sent is suppressed, then all of it loses its
        // texts), memberships, its places as participant and reactor: one transaction.
        let mut tx = store.begin_write().await?;
        out.list_memberships = sql::delete_memberships(&mut tx, &needle).await?;
        let why = "not sent: what it carries was erased (privacy erase)";
        out.mail_suppressed = sql::suppress_mail_to(&mut tx, &needle, why).await? as i64;
        out.mail_anonymised = sql::anonymise_mail_to(&mut tx, &needle, ANONYMOUS, at)
            .await?
            .len() as i64;
        sql::delete_participants(&mut tx, &needle).await?;
        out.reaction_clocks = sql::forget_reactor(&mut tx, &needle).await? as i64;
        let mut buf = WriteBuffer::default();
        for list in &out.list_memberships {
            let detail = json!({ "list": list, "why": "privacy erase", "reference": reference });
            audit(
                &mut buf,
                at,
                None,
                None,
                actor,
                "list_member_erased",
                &detail,
            );
        }
        rsql::flush(&mut tx, store.backend(), &mut buf).await?;
        tx.commit().await?;
        out.transactions += 1;

        // Its own tickets: as retention anonymises them, in chunks; their mail still to be
        // sent (copies to staff) would carry what is erased, and is not sent.
        for chunk in requested.chunks(CHUNK) {
            let mut tx = store.begin_write().await?;
            out.mail_suppressed += sql::suppress_mail_of_tickets(&mut tx, chunk, why).await? as i64;
            let purged = rsql::purge_tickets(&mut tx, chunk, at).await?;
            let anonymised = rsql::anonymise_tickets(&mut tx, chunk, at).await?;
            let mut buf = WriteBuffer::default();
            for id in chunk {
                let p = purged.get(id).copied().unwrap_or_default();
                let a = anonymised.get(id).copied().unwrap_or_default();
                let detail = json!({
                    "why": "privacy erase of its requester", "reference": reference,
                    "raw_messages": p.raw_messages, "bytes": p.raw_bytes, "articles": p.articles,
                    "attachments": p.attachments, "outbox": p.outbox, "anonymised": a,
                });
                audit(
                    &mut buf,
                    at,
                    Some(*id),
                    None,
                    actor,
                    "privacy_erased",
                    &detail,
                );
            }
            rsql::flush(&mut tx, store.backend(), &mut buf).await?;
            tx.commit().await?;
            out.transactions += 1;
        }
    }

    // Raw mail that names it, where it still does.
    let hits = sql::raw_containing(store, &needle).await?;
    let mut unfiled = Vec::new();
    let mut redact_in = Vec::new();
    for h in hits {
        match h.ticket_id {
            None => unfiled.push(rsql::Unfiled {
                id: h.id,
                outcome: h.outcome,
                bytes: 0,
                received_at: h.received_at,
            }),
            Some(_) => redact_in.push(h.id),
        }
    }
    for u in &unfiled {
        if u.outcome == "quarantined" {
            out.raw_deleted += 1;
        } else {
            out.raw_purged += 1;
        }
    }
    if !opts.dry_run {
        for chunk in unfiled.chunks(CHUNK) {
            let mut tx = store.begin_write().await?;
            rsql::drop_raw(&mut tx, chunk, at).await?;
            tx.commit().await?;
            out.transactions += 1;
        }
    }
    // The address (and what else was named) replaced where it stands: in raw mail on
    // tickets, then in every text column of the schema.
    let mut targets: Vec<(String, &str)> = vec![(needle.clone(), ANONYMOUS)];
    for a in &opts.also {
        let n = redact::needle(a);
        if !n.is_empty() {
            targets.push((n, redact::ANONYMOUS_TEXT));
        }
    }
    let mut replaced_raw: BTreeSet<i64> = BTreeSet::new();
    for (i, (target, replacement)) in targets.iter().enumerate() {
        let ids = if i == 0 {
            std::mem::take(&mut redact_in)
        } else {
            sql::raw_containing(store, target)
                .await?
                .into_iter()
                .map(|h| h.id)
                .collect()
        };
        for chunk in ids.chunks(CHUNK) {
            let mut tx = if opts.dry_run {
                None
            } else {
                Some(store.begin_write().await?)
            };
            for id in chunk {
                let Some(old) = store.raw_bytes(*id).await? else {
                    continue;
                };
                let Some(new) =
                    redact::replace_bytes(&old, target.as_bytes(), replacement.as_bytes())
                else {
                    continue;
                };
                let done = match tx.as_mut() {
                    Some(tx) => sql::replace_raw(tx, *id, &old, &new).await?,
                    None => true,
                };
                if done && i == 0 {
                    replaced_raw.insert(*id);
                }
                if done {
                    out.raw_replaced += 1;
                }
            }
            if let Some(tx) = tx {
                tx.commit().await?;
                out.transactions += 1;
            }
        }
    }

    let mut articles_named = Vec::new();
    for col in sql::text_columns(store).await? {
        let key = format!("{}.{}", col.table, col.column);
        for (i, (target, replacement)) in targets.iter().enumerate() {
            let rows = sql::find_text(store, &col, target).await?;
            let mut changes = Vec::new();
            for (id, old) in rows {
                if let Some(new) = redact::replace_text(&old, target, replacement) {
                    if col.table == "articles" && i == 0 {
                        articles_named.push(id);
                    }
                    changes.push((id, old, new));
                }
            }
            if changes.is_empty() {
                continue;
            }
            if opts.dry_run {
                *out.texts_replaced.entry(key.clone()).or_default() += changes.len() as i64;
                continue;
            }
            let mut n = 0;
            for chunk in changes.chunks(CHUNK * 2) {
                let mut tx = store.begin_write().await?;
                for (id, old, new) in chunk {
                    if sql::replace_text(&mut tx, &col, *id, old, new).await? {
                        n += 1;
                    }
                }
                tx.commit().await?;
                out.transactions += 1;
            }
            *out.texts_replaced.entry(key.clone()).or_default() += n;
        }
    }

    // A mail whose text named it where its bytes, searched above, did not: encoded there.
    let encoded: Vec<i64> = sql::raw_of_articles(store, &articles_named)
        .await?
        .into_iter()
        .filter(|id| !replaced_raw.contains(id))
        .collect::<BTreeSet<i64>>()
        .into_iter()
        .collect();
    if !encoded.is_empty() {
        let rows: Vec<rsql::Unfiled> = encoded
            .iter()
            .map(|id| rsql::Unfiled {
                id: *id,
                outcome: "encoded".into(),
                bytes: 0,
                received_at: 0,
            })
            .collect();
        out.raw_purged += rows.len() as i64;
        if !opts.dry_run {
            for chunk in rows.chunks(CHUNK) {
                let mut tx = store.begin_write().await?;
                rsql::drop_raw(&mut tx, chunk, at).await?;
                tx.commit().await?;
                out.transactions += 1;
            }
        }
    }

    if !opts.dry_run {
        let mut buf = WriteBuffer::default();
        let detail = json!({
            "reference": reference,
            "tickets_anonymised": out.tickets_anonymised.len(),
            "participant_of": out.participant_of.len(),
            "list_memberships": out.list_memberships.len(),
            "mail_suppressed": out.mail_suppressed, "mail_anonymised": out.mail_anonymised,
            "raw_deleted": out.raw_deleted, "raw_purged": out.raw_purged,
            "raw_replaced": out.raw_replaced, "texts_replaced": out.texts_replaced,
        });
        audit(&mut buf, at, None, None, actor, "privacy_erased", &detail);
        let mut tx = store.begin_write().await?;
        rsql::flush(&mut tx, store.backend(), &mut buf).await?;
        tx.commit().await?;
        rsql::truncate_wal(store).await?;
        tracing::info!(
            tickets = out.tickets_anonymised.len(),
            reference = reference.as_deref().unwrap_or(""),
            "privacy erase done"
        );
    }
    out.remaining = 0;
    for (target, _) in &targets {
        out.remaining += occurrences(store, target).await?;
    }
    out.seconds = started.elapsed().as_secs_f64();
    Ok(out)
}

/// How many rows still name the address (a search of every text column and of raw mail).
pub async fn occurrences(store: &Store, needle: &str) -> Result<i64, StoreError> {
    let mut n = 0;
    for col in sql::text_columns(store).await? {
        n += sql::find_text(store, &col, needle)
            .await?
            .iter()
            .filter(|(_, t)| names(t, needle))
            .count() as i64;
    }
    for h in sql::raw_containing(store, needle).await? {
        if let Some(b) = store.raw_bytes(h.id).await?
            && !redact::find_all(&b, needle.as_bytes()).is_empty()
        {
            n += 1;
        }
    }
    Ok(n)
}
