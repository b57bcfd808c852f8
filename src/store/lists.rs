//! Distribution lists (tables `lists`, `list_members`, `list_includes`): lists, their members,
//! the lists they include, and [`resolve`], which turns a list into the unique addresses it
//! reaches. What a member is, list names, CSV and the diff of an import are in `crate::lists`;
//! this module reads and writes. Every change is audited (ticket-less audit lines).
use std::collections::{HashMap, HashSet, VecDeque};

use jiff::Timestamp;
use serde::Serialize;
use serde_json::json;
use sqlx::{AnyConnection, FromRow};

use super::audit::audit;
use super::buffer::{Val, WriteBuffer};
use super::{Backend, MAX_PARAMS, Store, StoreError, now_micros, placeholders};
use crate::lists::{Diff, Language, Member, Role, address_key, diff};

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("there is no list \"{0}\"; `poststelle lists list` shows the lists")]
    NoList(String),
    #[error("the list \"{0}\" exists already; `poststelle lists show {0}` shows it")]
    Exists(String),
    #[error(
        "{address} is not a member of the list \"{list}\"; `poststelle lists show {list}` shows \
         its members"
    )]
    NotMember { list: String, address: String },
    #[error("the list \"{0}\" cannot include itself")]
    IncludesItself(String),
    #[error(
        "the list \"{list}\" cannot include \"{other}\": {path} already, and a list must not \
         reach itself; remove an inclusion on that path first (`poststelle lists exclude …`)"
    )]
    Cycle {
        list: String,
        other: String,
        /// `kommunen → kreis-giessen → alle`: how `other` reaches `list`.
        path: String,
    },
    #[error(
        "the list \"{list}\" does not include \"{other}\"; `poststelle lists show {list}` shows \
         what it includes"
    )]
    NotIncluded { list: String, other: String },
    #[error(
        "the list \"{list}\" is included in {}; take it out there first: {}",
        quoted(.by),
        .by.iter().map(|b| format!("`poststelle lists exclude {b} {list}`")).collect::<Vec<_>>().join(", ")
    )]
    StillIncluded { list: String, by: Vec<String> },
    #[error("a stored member of list \"{list}\" has the unknown {what} \"{value}\"")]
    Corrupt {
        list: String,
        what: &'static str,
        value: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ListError {
    fn from(e: sqlx::Error) -> Self {
        ListError::Store(e.into())
    }
}

fn quoted(names: &[String]) -> String {
    names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn instant(micros: i64) -> Result<Timestamp, StoreError> {
    Ok(Timestamp::from_microsecond(micros)?)
}

fn opt_instant(micros: Option<i64>) -> Result<Option<Timestamp>, StoreError> {
    micros.map(instant).transpose()
}

/// A list with its member count, for `lists list`.
#[derive(Debug, Clone, Serialize)]
pub struct ListSummary {
    pub name: String,
    pub description: String,
    /// Members may unsubscribe (List-Unsubscribe).
    pub unsubscribe: bool,
    /// Its own members, without those of included lists.
    pub members: i64,
    pub includes: Vec<String>,
    pub updated: Timestamp,
}

/// A member as stored, with what the fan-out records about it.
#[derive(Debug, Clone, Serialize)]
pub struct MemberRecord {
    #[serde(flatten)]
    pub member: Member,
    /// Notices to it that bounced.
    pub bounces: i64,
    pub last_bounce: Option<Timestamp>,
    /// Flagged for bouncing: notices skip it.
    pub flagged: Option<Timestamp>,
    pub unsubscribed: Option<Timestamp>,
    pub added: Timestamp,
}

/// A list with everything `lists show` prints.
#[derive(Debug, Clone, Serialize)]
pub struct ListView {
    pub name: String,
    pub description: String,
    pub unsubscribe: bool,
    pub created: Timestamp,
    pub updated: Timestamp,
    /// Lists whose members it includes (directly).
    pub includes: Vec<String>,
    /// Lists that include it (directly).
    pub included_by: Vec<String>,
    pub members: Vec<MemberRecord>,
    /// Unique addresses it reaches, included lists counted.
    pub reached: usize,
}

/// One address a list reaches ([`resolve`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Resolved {
    /// As its first membership has it: the list's own members first, then those of included
    /// lists by name; name and organisation from the first membership that gives one.
    #[serde(flatten)]
    pub member: Member,
    /// Every list the address is a member of on the way, in that order.
    pub via: Vec<String>,
    /// The most bounces any of its memberships has.
    pub bounces: i64,
    /// Some membership is flagged for bouncing.
    pub flagged: bool,
    /// The lists on the way it unsubscribed from.
    pub unsubscribed_from: Vec<String>,
}

/// What `lists add` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    Added,
    /// The address was a member; these fields changed (`role end_user → staff`).
    Updated(Vec<String>),
    Unchanged,
}

/// Fields `lists add` sets; `None` keeps what a member has (a new one: no name and
/// organisation, end user, German).
#[derive(Debug, Clone, Default)]
pub struct MemberFields {
    pub name: Option<String>,
    pub role: Option<Role>,
    pub organisation: Option<String>,
    pub language: Option<Language>,
}

/// What an import did (or, dry, would do).
#[derive(Debug, Clone, Serialize)]
pub struct Imported {
    /// The list did not exist before.
    pub created: bool,
    #[serde(flatten)]
    pub diff: Diff,
}

#[derive(Debug, FromRow)]
struct MemberRow {
    address: String,
    name: String,
    role: String,
    organisation: String,
    language: String,
    bounces: i64,
    last_bounce_at: Option<i64>,
    flagged_at: Option<i64>,
    unsubscribed_at: Option<i64>,
    added_at: i64,
}

const MEMBER_COLUMNS: &str = "address, name, role, organisation, language, bounces, \
    last_bounce_at, flagged_at, unsubscribed_at, added_at";

impl MemberRow {
    fn member(&self, list: &str) -> Result<Member, ListError> {
        let corrupt = |what, value: &str| ListError::Corrupt {
            list: list.to_string(),
            what,
            value: value.to_string(),
        };
        Ok(Member {
            address: self.address.clone(),
            name: self.name.clone(),
            role: Role::parse(&self.role).ok_or_else(|| corrupt("role", &self.role))?,
            organisation: self.organisation.clone(),
            language: Language::parse(&self.language)
                .ok_or_else(|| corrupt("language", &self.language))?,
        })
    }

    fn record(&self, list: &str) -> Result<MemberRecord, ListError> {
        Ok(MemberRecord {
            member: self.member(list)?,
            bounces: self.bounces,
            last_bounce: opt_instant(self.last_bounce_at)?,
            flagged: opt_instant(self.flagged_at)?,
            unsubscribed: opt_instant(self.unsubscribed_at)?,
            added: instant(self.added_at)?,
        })
    }
}

async fn list_id(conn: &mut AnyConnection, name: &str) -> Result<Option<i64>, ListError> {
    Ok(sqlx::query_scalar("SELECT id FROM lists WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?)
}

async fn require(conn: &mut AnyConnection, name: &str) -> Result<i64, ListError> {
    list_id(conn, name)
        .await?
        .ok_or_else(|| ListError::NoList(name.to_string()))
}

async fn member_rows(conn: &mut AnyConnection, id: i64) -> Result<Vec<MemberRow>, ListError> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {MEMBER_COLUMNS} FROM list_members WHERE list_id = $1 ORDER BY id"
    )))
    .bind(id)
    .fetch_all(&mut *conn)
    .await?)
}

/// Writes one ticket-less audit line with the transaction.
async fn audited(
    conn: &mut AnyConnection,
    backend: Backend,
    actor: &str,
    event: &str,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    let mut buf = WriteBuffer::default();
    audit(&mut buf, now_micros(), None, None, actor, event, &detail);
    buf.flush(conn, backend).await
}

async fn insert_list(
    conn: &mut AnyConnection,
    name: &str,
    description: &str,
    unsubscribe: bool,
) -> Result<i64, ListError> {
    let now = now_micros();
    Ok(sqlx::query_scalar(
        "INSERT INTO lists (name, description, unsubscribe, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $4) RETURNING id",
    )
    .bind(name)
    .bind(description)
    .bind(i64::from(unsubscribe))
    .bind(now)
    .fetch_one(&mut *conn)
    .await?)
}

async fn touch(conn: &mut AnyConnection, id: i64) -> Result<(), ListError> {
    sqlx::query("UPDATE lists SET updated_at = $1 WHERE id = $2")
        .bind(now_micros())
        .bind(id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Creates an empty list. `name` must be a list name (`crate::lists::check_list_name`).
pub async fn create(
    store: &Store,
    name: &str,
    description: &str,
    unsubscribe: bool,
    actor: &str,
) -> Result<(), ListError> {
    let mut tx = store.begin_write().await?;
    if list_id(&mut tx, name).await?.is_some() {
        return Err(ListError::Exists(name.to_string()));
    }
    insert_list(&mut tx, name, description, unsubscribe).await?;
    let detail = json!({ "list": name, "description": description, "unsubscribe": unsubscribe });
    audited(&mut tx, store.backend(), actor, "list_created", detail).await?;
    tx.commit().await?;
    Ok(())
}

/// Changes a list's description or whether its members may unsubscribe; what changed, in
/// words (empty: nothing).
pub async fn set(
    store: &Store,
    name: &str,
    description: Option<&str>,
    unsubscribe: Option<bool>,
    actor: &str,
) -> Result<Vec<String>, ListError> {
    let mut tx = store.begin_write().await?;
    let row: Option<(i64, String, i64)> =
        sqlx::query_as("SELECT id, description, unsubscribe FROM lists WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
    let (id, old_description, old_unsubscribe) =
        row.ok_or_else(|| ListError::NoList(name.to_string()))?;
    let mut changes = Vec::new();
    let new_description = description.unwrap_or(&old_description);
    if new_description != old_description {
        changes.push(format!(
            "description \"{old_description}\" → \"{new_description}\""
        ));
    }
    let new_unsubscribe = unsubscribe.unwrap_or(old_unsubscribe != 0);
    if new_unsubscribe != (old_unsubscribe != 0) {
        changes.push(format!(
            "unsubscribe {} → {}",
            on_off(old_unsubscribe != 0),
            on_off(new_unsubscribe)
        ));
    }
    if changes.is_empty() {
        return Ok(changes);
    }
    sqlx::query(
        "UPDATE lists SET description = $1, unsubscribe = $2, updated_at = $3 WHERE id = $4",
    )
    .bind(new_description)
    .bind(i64::from(new_unsubscribe))
    .bind(now_micros())
    .bind(id)
    .execute(&mut *tx)
    .await?;
    let detail = json!({ "list": name, "changes": changes });
    audited(&mut tx, store.backend(), actor, "list_changed", detail).await?;
    tx.commit().await?;
    Ok(changes)
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// Every list by name, with its own member count and the lists it includes.
pub async fn summaries(store: &Store) -> Result<Vec<ListSummary>, ListError> {
    let rows: Vec<(String, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT l.name, l.description, l.unsubscribe, l.updated_at, \
         (SELECT COUNT(*) FROM list_members m WHERE m.list_id = l.id) AS members \
         FROM lists l ORDER BY l.name",
    )
    .fetch_all(store.pool())
    .await?;
    let edges: Vec<(String, String)> = sqlx::query_as(
        "SELECT l.name, i.name FROM list_includes x JOIN lists l ON l.id = x.list_id \
         JOIN lists i ON i.id = x.included_id ORDER BY i.name",
    )
    .fetch_all(store.pool())
    .await?;
    rows.into_iter()
        .map(|(name, description, unsubscribe, updated, members)| {
            let includes = edges
                .iter()
                .filter(|(l, _)| *l == name)
                .map(|(_, i)| i.clone())
                .collect();
            Ok(ListSummary {
                name,
                description,
                unsubscribe: unsubscribe != 0,
                members,
                includes,
                updated: instant(updated)?,
            })
        })
        .collect()
}

/// The names among `names` that are no list in the store (a platform's default lists are
/// checked against it when used).
pub async fn missing(store: &Store, names: &[String]) -> Result<Vec<String>, ListError> {
    let known: HashSet<String> = sqlx::query_scalar("SELECT name FROM lists")
        .fetch_all(store.pool())
        .await?
        .into_iter()
        .collect();
    Ok(names
        .iter()
        .filter(|n| !known.contains(*n))
        .cloned()
        .collect())
}

/// A list with its members (in the order they were added), inclusions and reach.
pub async fn show(store: &Store, name: &str) -> Result<ListView, ListError> {
    let mut conn = store.pool().acquire().await?;
    let row: Option<(i64, String, i64, i64, i64)> = sqlx::query_as(
        "SELECT id, description, unsubscribe, created_at, updated_at FROM lists WHERE name = $1",
    )
    .bind(name)
    .fetch_optional(&mut *conn)
    .await?;
    let (id, description, unsubscribe, created, updated) =
        row.ok_or_else(|| ListError::NoList(name.to_string()))?;
    let members = member_rows(&mut conn, id)
        .await?
        .iter()
        .map(|r| r.record(name))
        .collect::<Result<Vec<_>, _>>()?;
    let includes = sqlx::query_scalar(
        "SELECT i.name FROM list_includes x JOIN lists i ON i.id = x.included_id \
         WHERE x.list_id = $1 ORDER BY i.name",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let included_by = sqlx::query_scalar(
        "SELECT l.name FROM list_includes x JOIN lists l ON l.id = x.list_id \
         WHERE x.included_id = $1 ORDER BY l.name",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let reached = resolve(&mut conn, name).await?.len();
    Ok(ListView {
        name: name.to_string(),
        description,
        unsubscribe: unsubscribe != 0,
        created: instant(created)?,
        updated: instant(updated)?,
        includes,
        included_by,
        members,
        reached,
    })
}

/// A list's own members in the order they were added (for `lists export`).
pub async fn members(store: &Store, name: &str) -> Result<Vec<Member>, ListError> {
    let mut conn = store.pool().acquire().await?;
    let id = require(&mut conn, name).await?;
    member_rows(&mut conn, id)
        .await?
        .iter()
        .map(|r| r.member(name))
        .collect()
}

/// Adds `address` (normalised, `crate::lists::normalize_address`) to a list, or changes the
/// fields given of the member it is.
pub async fn add_member(
    store: &Store,
    name: &str,
    address: &str,
    fields: &MemberFields,
    actor: &str,
) -> Result<Added, ListError> {
    let mut tx = store.begin_write().await?;
    let id = require(&mut tx, name).await?;
    let key = address_key(address);
    let existing: Option<MemberRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {MEMBER_COLUMNS} FROM list_members WHERE list_id = $1 AND address_key = $2"
    )))
    .bind(id)
    .bind(&key)
    .fetch_optional(&mut *tx)
    .await?;
    let before = existing.as_ref().map(|r| r.member(name)).transpose()?;
    let after = Member {
        address: address.to_string(),
        name: fields
            .name
            .clone()
            .or_else(|| before.as_ref().map(|m| m.name.clone()))
            .unwrap_or_default(),
        role: fields
            .role
            .or(before.as_ref().map(|m| m.role))
            .unwrap_or(Role::EndUser),
        organisation: fields
            .organisation
            .clone()
            .or_else(|| before.as_ref().map(|m| m.organisation.clone()))
            .unwrap_or_default(),
        language: fields
            .language
            .or(before.as_ref().map(|m| m.language))
            .unwrap_or(Language::De),
    };
    let outcome = match &before {
        None => {
            let mut buf = WriteBuffer::default();
            buf.list_member(id, &after, now_micros());
            buf.flush(&mut tx, store.backend()).await?;
            Added::Added
        }
        Some(before) => {
            let changes = after.changes_from(before);
            if changes.is_empty() {
                return Ok(Added::Unchanged);
            }
            update_member(&mut tx, id, &after).await?;
            Added::Updated(changes)
        }
    };
    touch(&mut tx, id).await?;
    let detail = match &outcome {
        Added::Updated(changes) => json!({ "list": name, "address": address, "changes": changes }),
        _ => json!({ "list": name, "member": after }),
    };
    let event = match outcome {
        Added::Added => "list_member_added",
        _ => "list_member_changed",
    };
    audited(&mut tx, store.backend(), actor, event, detail).await?;
    tx.commit().await?;
    Ok(outcome)
}

impl WriteBuffer {
    /// A new member of the list `list_id`.
    fn list_member(&mut self, list_id: i64, m: &Member, now: i64) {
        self.push(
            "list_members",
            &[
                "list_id",
                "address",
                "address_key",
                "name",
                "role",
                "organisation",
                "language",
                "added_at",
                "updated_at",
            ],
            vec![
                Val::Int(list_id),
                Val::Text(m.address.clone()),
                Val::Text(m.key()),
                Val::Text(m.name.clone()),
                Val::Text(m.role.as_str().into()),
                Val::Text(m.organisation.clone()),
                Val::Text(m.language.as_str().into()),
                Val::Int(now),
                Val::Int(now),
            ],
        );
    }
}

/// The member of the same address takes `m`'s fields; its bounce and unsubscribe state stay.
async fn update_member(
    conn: &mut AnyConnection,
    list_id: i64,
    m: &Member,
) -> Result<(), ListError> {
    sqlx::query(
        "UPDATE list_members SET address = $1, name = $2, role = $3, organisation = $4, \
         language = $5, updated_at = $6 WHERE list_id = $7 AND address_key = $8",
    )
    .bind(&m.address)
    .bind(&m.name)
    .bind(m.role.as_str())
    .bind(&m.organisation)
    .bind(m.language.as_str())
    .bind(now_micros())
    .bind(list_id)
    .bind(m.key())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Takes `address` (any case) off a list.
pub async fn remove_member(
    store: &Store,
    name: &str,
    address: &str,
    actor: &str,
) -> Result<(), ListError> {
    let mut tx = store.begin_write().await?;
    let id = require(&mut tx, name).await?;
    let gone = sqlx::query("DELETE FROM list_members WHERE list_id = $1 AND address_key = $2")
        .bind(id)
        .bind(address_key(address))
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if gone == 0 {
        return Err(ListError::NotMember {
            list: name.to_string(),
            address: address.to_string(),
        });
    }
    touch(&mut tx, id).await?;
    let detail = json!({ "list": name, "address": address });
    audited(
        &mut tx,
        store.backend(),
        actor,
        "list_member_removed",
        detail,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Every inclusion, as (list, included list) ids.
async fn edges(conn: &mut AnyConnection) -> Result<Vec<(i64, i64)>, ListError> {
    Ok(
        sqlx::query_as("SELECT list_id, included_id FROM list_includes")
            .fetch_all(&mut *conn)
            .await?,
    )
}

/// The lists from `from` to `to` along inclusions, both ends included, if `from` reaches `to`.
fn path(edges: &[(i64, i64)], from: i64, to: i64) -> Option<Vec<i64>> {
    let mut came_from: HashMap<i64, i64> = HashMap::new();
    let mut queue = VecDeque::from([from]);
    let mut seen = HashSet::from([from]);
    while let Some(at) = queue.pop_front() {
        if at == to {
            let mut path = vec![to];
            let mut cur = to;
            while let Some(&prev) = came_from.get(&cur) {
                path.push(prev);
                cur = prev;
            }
            path.reverse();
            return Some(path);
        }
        for &(_, next) in edges.iter().filter(|(l, _)| *l == at) {
            if seen.insert(next) {
                came_from.insert(next, at);
                queue.push_back(next);
            }
        }
    }
    None
}

/// Makes the list `name` include the members of `other`; `false` when it did already. Refuses
/// an inclusion through which a list would reach itself.
pub async fn include(
    store: &Store,
    name: &str,
    other: &str,
    actor: &str,
) -> Result<bool, ListError> {
    let mut tx = store.begin_write().await?;
    if store.backend() == Backend::Postgres {
        // Two inclusions that each look fine alone can close a cycle together; SQLite's
        // writer lock already puts them in a row, this lock does on PostgreSQL.
        sqlx::query("SELECT pg_advisory_xact_lock(1936483684)")
            .execute(&mut *tx)
            .await?;
    }
    let id = require(&mut tx, name).await?;
    let other_id = require(&mut tx, other).await?;
    if id == other_id {
        return Err(ListError::IncludesItself(name.to_string()));
    }
    if let Some(p) = path(&edges(&mut tx).await?, other_id, id) {
        let names: HashMap<i64, String> =
            sqlx::query_as::<_, (i64, String)>("SELECT id, name FROM lists")
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .collect();
        let shown: Vec<&str> = p
            .iter()
            .map(|i| names.get(i).map_or("?", String::as_str))
            .collect();
        let path = if shown.len() == 2 {
            format!("\"{other}\" includes \"{name}\"")
        } else {
            format!("\"{other}\" reaches \"{name}\" ({})", shown.join(" → "))
        };
        return Err(ListError::Cycle {
            list: name.to_string(),
            other: other.to_string(),
            path,
        });
    }
    let added = sqlx::query(
        "INSERT INTO list_includes (list_id, included_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(other_id)
    .execute(&mut *tx)
    .await?
    .rows_affected()
        > 0;
    if added {
        touch(&mut tx, id).await?;
        let detail = json!({ "list": name, "included": other });
        audited(&mut tx, store.backend(), actor, "list_included", detail).await?;
        tx.commit().await?;
    }
    Ok(added)
}

/// Ends the inclusion of `other` in `name`.
pub async fn exclude(store: &Store, name: &str, other: &str, actor: &str) -> Result<(), ListError> {
    let mut tx = store.begin_write().await?;
    let id = require(&mut tx, name).await?;
    let other_id = require(&mut tx, other).await?;
    let gone = sqlx::query("DELETE FROM list_includes WHERE list_id = $1 AND included_id = $2")
        .bind(id)
        .bind(other_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if gone == 0 {
        return Err(ListError::NotIncluded {
            list: name.to_string(),
            other: other.to_string(),
        });
    }
    touch(&mut tx, id).await?;
    let detail = json!({ "list": name, "excluded": other });
    audited(&mut tx, store.backend(), actor, "list_excluded", detail).await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes a list with its members and its own inclusions; refused while another list
/// includes it. The number of members it had.
pub async fn delete(store: &Store, name: &str, actor: &str) -> Result<u64, ListError> {
    let mut tx = store.begin_write().await?;
    let id = require(&mut tx, name).await?;
    let by: Vec<String> = sqlx::query_scalar(
        "SELECT l.name FROM list_includes x JOIN lists l ON l.id = x.list_id \
         WHERE x.included_id = $1 ORDER BY l.name",
    )
    .bind(id)
    .fetch_all(&mut *tx)
    .await?;
    if !by.is_empty() {
        return Err(ListError::StillIncluded {
            list: name.to_string(),
            by,
        });
    }
    sqlx::query("DELETE FROM list_includes WHERE list_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let members = sqlx::query("DELETE FROM list_members WHERE list_id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    sqlx::query("DELETE FROM lists WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let detail = json!({ "list": name, "members": members });
    audited(&mut tx, store.backend(), actor, "list_deleted", detail).await?;
    tx.commit().await?;
    Ok(members)
}

/// Imports members into a list, creating it when there is none, in one transaction: new
/// addresses are added, known ones take the given fields (their bounce and unsubscribe state
/// stay), and with `replace` every member not given is removed. `dry_run` computes the same
/// and changes nothing. `source` (the file) goes into the audit line.
pub async fn import(
    store: &Store,
    name: &str,
    incoming: &[Member],
    replace: bool,
    dry_run: bool,
    source: &str,
    actor: &str,
) -> Result<Imported, ListError> {
    let backend = store.backend();
    let mut tx = store.begin_write().await?;
    let (id, created) = match list_id(&mut tx, name).await? {
        Some(id) => (id, false),
        None => (insert_list(&mut tx, name, "", false).await?, true),
    };
    let current = member_rows(&mut tx, id)
        .await?
        .iter()
        .map(|r| r.member(name))
        .collect::<Result<Vec<_>, _>>()?;
    let diff = diff(&current, incoming, replace);
    if dry_run {
        tx.rollback().await?;
        return Ok(Imported { created, diff });
    }
    let keys: Vec<String> = diff.removed.iter().map(Member::key).collect();
    for chunk in keys.chunks(MAX_PARAMS - 1) {
        // One form of placeholder per statement: SQLite's `?` must not follow a `$1`.
        let all = placeholders(backend, 1, chunk.len() + 1);
        let (list, keys) = all.split_once(", ").unwrap_or((&all, ""));
        let sql =
            format!("DELETE FROM list_members WHERE list_id = {list} AND address_key IN ({keys})");
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(id);
        for k in chunk {
            q = q.bind(k.as_str());
        }
        q.execute(&mut *tx).await?;
    }
    for c in &diff.changed {
        update_member(&mut tx, id, &c.after).await?;
    }
    let now = now_micros();
    let mut buf = WriteBuffer::default();
    for m in &diff.added {
        buf.list_member(id, m, now);
    }
    if created || !diff.is_empty() {
        touch(&mut tx, id).await?;
        audit(
            &mut buf,
            now,
            None,
            None,
            actor,
            "list_imported",
            &json!({
                "list": name,
                "file": source,
                "created": created,
                "replace": replace,
                "added": diff.added.len(),
                "changed": diff.changed.len(),
                "removed": diff.removed.len(),
            }),
        );
    }
    buf.flush(&mut tx, backend).await?;
    tx.commit().await?;
    Ok(Imported { created, diff })
}

#[derive(Debug, FromRow)]
struct ReachedRow {
    via: String,
    address: String,
    address_key: String,
    name: String,
    role: String,
    organisation: String,
    language: String,
    bounces: i64,
    flagged_at: Option<i64>,
    unsubscribed_at: Option<i64>,
}

/// The unique addresses a list reaches: its own members and, recursively, those of the lists
/// it includes, one entry per address (compared without case), flags of every membership
/// gathered. Whether flagged or unsubscribed members are sent to is the caller's decision.
/// Takes a connection, so that it can run in the caller's transaction.
pub async fn resolve(conn: &mut AnyConnection, name: &str) -> Result<Vec<Resolved>, ListError> {
    let id = require(conn, name).await?;
    // UNION, not UNION ALL: a list reached twice is walked once, and a cycle (which
    // `include` refuses) would still end.
    let rows: Vec<ReachedRow> = sqlx::query_as(
        "WITH RECURSIVE reach (id) AS ( \
           SELECT CAST($1 AS BIGINT) \
           UNION \
           SELECT x.included_id FROM list_includes x JOIN reach r ON x.list_id = r.id \
         ) \
         SELECT l.name AS via, m.address, m.address_key, m.name, m.role, m.organisation, \
           m.language, m.bounces, m.flagged_at, m.unsubscribed_at \
         FROM list_members m JOIN lists l ON l.id = m.list_id \
         WHERE m.list_id IN (SELECT id FROM reach) \
         ORDER BY CASE WHEN m.list_id = $1 THEN 0 ELSE 1 END, l.name, m.id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let mut out: Vec<Resolved> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    for r in rows {
        let row = MemberRow {
            address: r.address,
            name: r.name,
            role: r.role,
            organisation: r.organisation,
            language: r.language,
            bounces: r.bounces,
            last_bounce_at: None,
            flagged_at: r.flagged_at,
            unsubscribed_at: r.unsubscribed_at,
            added_at: 0,
        };
        let member = row.member(&r.via)?;
        let i = *at.entry(r.address_key).or_insert_with(|| {
            out.push(Resolved {
                member: member.clone(),
                via: Vec::new(),
                bounces: 0,
                flagged: false,
                unsubscribed_from: Vec::new(),
            });
            out.len() - 1
        });
        let seen = &mut out[i];
        if seen.member.name.is_empty() {
            seen.member.name = member.name;
        }
        if seen.member.organisation.is_empty() {
            seen.member.organisation = member.organisation;
        }
        seen.bounces = seen.bounces.max(r.bounces);
        seen.flagged |= r.flagged_at.is_some();
        if r.unsubscribed_at.is_some() {
            seen.unsubscribed_from.push(r.via.clone());
        }
        seen.via.push(r.via);
    }
    Ok(out)
}

/// Counts a bounce of a notice to `address` in every list it is on, flagging its memberships
/// once they reach `flag_after` bounces; the number of memberships counted.
pub async fn record_bounce(
    conn: &mut AnyConnection,
    address: &str,
    at: i64,
    flag_after: i64,
) -> Result<u64, ListError> {
    Ok(sqlx::query(
        "UPDATE list_members SET bounces = bounces + 1, last_bounce_at = $1, \
         flagged_at = CASE WHEN flagged_at IS NULL AND bounces + 1 >= $2 THEN $1 \
         ELSE flagged_at END WHERE address_key = $3",
    )
    .bind(at)
    .bind(flag_after)
    .bind(address_key(address))
    .execute(&mut *conn)
    .await?
    .rows_affected())
}

/// Records that `address` unsubscribed from the list `name`; `false` when it is no member.
pub async fn unsubscribe(
    conn: &mut AnyConnection,
    name: &str,
    address: &str,
    at: i64,
) -> Result<bool, ListError> {
    let id = require(conn, name).await?;
    Ok(sqlx::query(
        "UPDATE list_members SET unsubscribed_at = $1 \
         WHERE list_id = $2 AND address_key = $3 AND unsubscribed_at IS NULL",
    )
    .bind(at)
    .bind(id)
    .bind(address_key(address))
    .execute(&mut *conn)
    .await?
    .rows_affected()
        > 0)
}

/// What unsubscribing a member through a list did ([`unsubscribe_reached`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Unsubscribed {
    /// The list named offers unsubscribing (`lists.unsubscribe`); when not, nothing changed.
    pub offered: bool,
    /// Lists the member was unsubscribed from now.
    pub now: Vec<String>,
    /// Lists it had unsubscribed from before.
    pub before: Vec<String>,
    /// Lists it stays on because they do not offer unsubscribing (they must be informed).
    pub kept: Vec<String>,
}

impl Unsubscribed {
    /// The address is a member of no list the named one reaches.
    pub fn no_member(&self) -> bool {
        self.now.is_empty() && self.before.is_empty() && self.kept.is_empty()
    }
}

/// Unsubscribes `address` from the list `name` as its notices reach it: in `name` and in every
/// list `name` includes (recursively) where the address is a member and that offers
/// unsubscribing itself. A membership in a list that does not (the client's, the
/// municipalities') stays: such lists must be informed, whichever list their notice came by.
/// Nothing changes when `name` itself does not offer unsubscribing. Runs in the caller's
/// transaction; running it again changes nothing more.
pub async fn unsubscribe_reached(
    conn: &mut AnyConnection,
    name: &str,
    address: &str,
    at: i64,
) -> Result<Unsubscribed, ListError> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT id, unsubscribe FROM lists WHERE name = $1")
            .bind(name)
            .fetch_optional(&mut *conn)
            .await?;
    let (id, offered) = row.ok_or_else(|| ListError::NoList(name.to_string()))?;
    let mut out = Unsubscribed {
        offered: offered != 0,
        ..Unsubscribed::default()
    };
    if !out.offered {
        return Ok(out);
    }
    let memberships: Vec<(String, i64, Option<i64>)> = sqlx::query_as(
        "WITH RECURSIVE reach (id) AS ( \
           SELECT CAST($1 AS BIGINT) \
           UNION \
           SELECT x.included_id FROM list_includes x JOIN reach r ON x.list_id = r.id \
         ) \
         SELECT l.name, l.unsubscribe, m.unsubscribed_at \
         FROM list_members m JOIN lists l ON l.id = m.list_id \
         WHERE m.list_id IN (SELECT id FROM reach) AND m.address_key = $2 \
         ORDER BY CASE WHEN m.list_id = $1 THEN 0 ELSE 1 END, l.name",
    )
    .bind(id)
    .bind(address_key(address))
    .fetch_all(&mut *conn)
    .await?;
    for (list, offers, unsubscribed_at) in memberships {
        if offers == 0 {
            out.kept.push(list);
        } else if unsubscribed_at.is_some() {
            out.before.push(list);
        } else if unsubscribe(conn, &list, address, at).await? {
            out.now.push(list);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::path;

    #[test]
    fn a_path_along_inclusions_names_every_list() {
        let edges = [(1, 2), (2, 3), (3, 4), (1, 5)];
        assert_eq!(path(&edges, 1, 4), Some(vec![1, 2, 3, 4]));
        assert_eq!(path(&edges, 4, 1), None);
        assert_eq!(path(&edges, 5, 5), Some(vec![5]));
    }
}
