//! Announcements (issue 16, items 3, 4 and 6): schedule, change, cancel and finish a
//! maintenance, each in one transaction with its notice — the maintenance row, the announced
//! window in `sla_maintenance`, the announcement and one outbox row per member of its lists.
//! Incidents ([`incident`]) announce through the same fan-out.
//!
//! The fan-out resolves the lists at that moment (nested lists, one mail per address whatever
//! its case, flagged and unsubscribed members skipped), renders the notice once per language
//! (German, English for members whose language is en) with its calendar entry, and writes the
//! rows with a unique key per (announcement, address): a crash before the commit leaves
//! nothing, and writing the same announcement's mails again adds none.
use std::collections::HashMap;

use jiff::Timestamp;
use sqlx::AnyConnection;

pub mod incident;

use crate::config::{Config, Platform};
use crate::ical;
use crate::lists::Language;
use crate::maintenance::{LeadTime, LeadTimeError, check_lead_time};
use crate::notify::maintenance as notice;
use crate::store::announcements::{
    self as stored, About, AnnouncementMail, Maintenance, MaintenanceState, NoticeBody, NoticeKind,
};
use crate::store::lists::{self as lists, ListError};
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    #[error(
        "there is no platform \"{name}\" in the configuration (known: {known}); add a [[platform]] or give one of those"
    )]
    UnknownPlatform { name: String, known: String },
    #[error(
        "the notices of platform \"{0}\" go to no distribution list: give --lists, or set `lists` of the [[platform]]"
    )]
    NoLists(String),
    #[error("there is no list {0}; `poststelle lists list` shows the lists")]
    UnknownLists(String),
    #[error("{0}")]
    LeadTime(#[from] LeadTimeError),
    #[error("there is no maintenance {0}; `poststelle maintenance list` shows them")]
    NotFound(i64),
    #[error("maintenance {id} is {state} already; only a scheduled maintenance can be {doing}")]
    NotScheduled {
        id: i64,
        state: &'static str,
        doing: &'static str,
    },
    #[error(
        "the template {template} ({lang}) cannot be rendered: {message}; `poststelle check` shows the template problems"
    )]
    Template {
        template: &'static str,
        lang: &'static str,
        message: String,
    },
    #[error("the calendar entry: {0}")]
    Ical(#[from] ical::IcalError),
    #[error("there is no incident {0}; `poststelle incident list` shows them")]
    IncidentNotFound(i64),
    #[error(
        "incident {0} is resolved already; open a new one with `poststelle incident open` if the fault is back"
    )]
    IncidentResolved(i64),
    #[error(
        "incident {0} was opened by monitoring and its lists have not heard of it; `poststelle incident confirm {0}` tells them first"
    )]
    NotConfirmed(i64),
    #[error("there is no ticket {0}; `poststelle tickets list` shows the ticket numbers")]
    UnknownTicket(String),
    #[error("{0}")]
    BadTime(String),
    #[error(transparent)]
    List(#[from] ListError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A maintenance to schedule.
#[derive(Debug, Clone)]
pub struct Plan {
    pub platform: String,
    pub start: Timestamp,
    pub end: Timestamp,
    pub reason: String,
    pub impact: String,
    /// The platform's lists when empty.
    pub lists: Vec<String>,
    pub emergency: bool,
}

/// What a change sets; `None` keeps the value.
#[derive(Debug, Clone, Default)]
pub struct Change {
    pub start: Option<Timestamp>,
    pub end: Option<Timestamp>,
    pub reason: Option<String>,
    pub impact: Option<String>,
    pub emergency: bool,
}

/// What an operation did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Announced {
    pub maintenance: i64,
    pub announcement: i64,
    pub kind: NoticeKind,
    pub sequence: i64,
    /// The lead-time check of a schedule or a moved start.
    #[serde(skip)]
    pub lead_time: Option<LeadTime>,
    pub fan_out: FanOut,
}

/// The mails of one announcement.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct FanOut {
    /// Unique addresses the lists reach.
    pub reached: usize,
    /// Outbox rows written now (fewer than `reached - skipped` when some were there already).
    pub enqueued: u64,
    pub skipped_flagged: usize,
    pub skipped_unsubscribed: usize,
}

fn platform<'a>(config: &'a Config, name: &str) -> Result<&'a Platform, AnnounceError> {
    config
        .settings
        .platforms
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| AnnounceError::UnknownPlatform {
            name: name.to_string(),
            known: {
                let names: Vec<&str> = config
                    .settings
                    .platforms
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect();
                if names.is_empty() {
                    "none configured".into()
                } else {
                    names.join(", ")
                }
            },
        })
}

/// The lists a notice of `p` goes to: `given`, else the platform's; each must exist.
async fn lists_of(
    store: &Store,
    p: &Platform,
    given: &[String],
) -> Result<Vec<String>, AnnounceError> {
    let lists = if given.is_empty() {
        p.lists.clone()
    } else {
        given.to_vec()
    };
    if lists.is_empty() {
        return Err(AnnounceError::NoLists(p.name.clone()));
    }
    let missing = lists::missing(store, &lists).await?;
    if !missing.is_empty() {
        return Err(AnnounceError::UnknownLists(missing.join(", ")));
    }
    Ok(lists)
}

/// Schedules a maintenance and announces it, unless the lead-time rule of the platform's
/// regular windows refuses (then nothing is written).
pub async fn schedule(
    store: &Store,
    config: &Config,
    plan: Plan,
    now: Timestamp,
) -> Result<Announced, AnnounceError> {
    let p = platform(config, &plan.platform)?;
    let lead = check_lead_time(
        now,
        plan.start,
        plan.end,
        &p.maintenance_windows,
        plan.emergency,
    )?;
    let lists = lists_of(store, p, &plan.lists).await?;
    let at = now.as_microsecond();
    let mut m = Maintenance {
        id: 0,
        platform: p.name.clone(),
        starts_at: plan.start.as_microsecond(),
        ends_at: plan.end.as_microsecond(),
        reason: plan.reason,
        impact: plan.impact,
        lists,
        // Recorded only when it was needed: an --emergency within the rule is a plain notice.
        emergency: lead.bypassed(),
        state: MaintenanceState::Scheduled,
        sequence: 0,
        created_at: at,
        changed_at: at,
    };
    let mut tx = store.begin_write().await?;
    m.id = stored::insert_maintenance(&mut tx, &m).await?;
    stored::record_window(&mut tx, &m, &p.calendar, at).await?;
    move_clocks(&mut tx, config, m.starts_at).await?;
    let mut done = announce(&mut tx, config, &m, NoticeKind::Scheduled, None, now).await?;
    tx.commit().await?;
    tracing::info!(maintenance = m.id, platform = %m.platform, mails = done.fan_out.enqueued, "maintenance scheduled");
    done.lead_time = Some(lead);
    Ok(done)
}

/// Recomputes the reaction deadlines that a window from `starts_at` on may move, on calendars
/// where announced maintenance is no service time (`maintenance_is_closed`), in the
/// transaction that recorded, moved or removed the window.
async fn move_clocks(
    conn: &mut AnyConnection,
    config: &Config,
    starts_at: i64,
) -> Result<(), AnnounceError> {
    let start = instant(starts_at)?;
    let moved = crate::ticket::clock::on_window_announced(conn, &config.settings, start).await?;
    if moved > 0 {
        tracing::info!(
            clocks = moved,
            "reaction deadlines moved around announced maintenance"
        );
    }
    Ok(())
}

async fn scheduled(
    conn: &mut AnyConnection,
    id: i64,
    doing: &'static str,
) -> Result<Maintenance, AnnounceError> {
    let m = stored::maintenance(conn, id)
        .await?
        .ok_or(AnnounceError::NotFound(id))?;
    if m.state != MaintenanceState::Scheduled {
        return Err(AnnounceError::NotScheduled {
            id,
            state: m.state.as_str(),
            doing,
        });
    }
    Ok(m)
}

fn instant(micros: i64) -> Result<Timestamp, AnnounceError> {
    Timestamp::from_microsecond(micros).map_err(|e| AnnounceError::Store(StoreError::Time(e)))
}

/// Changes a scheduled maintenance: a moved start is checked against the lead-time rule again;
/// the calendar entry's SEQUENCE is raised and a 'changed' notice goes out.
pub async fn change(
    store: &Store,
    config: &Config,
    id: i64,
    change: Change,
    now: Timestamp,
) -> Result<Announced, AnnounceError> {
    let mut tx = store.begin_write().await?;
    let mut m = scheduled(&mut tx, id, "changed").await?;
    let p = platform(config, &m.platform)?;
    let previous = (m.starts_at, m.ends_at);
    let start = change.start.map_or(instant(m.starts_at), Ok)?;
    let end = change.end.map_or(instant(m.ends_at), Ok)?;
    let moved = start.as_microsecond() != m.starts_at || end.as_microsecond() != m.ends_at;
    let lead = if moved {
        let lead = check_lead_time(now, start, end, &p.maintenance_windows, change.emergency)?;
        m.emergency = lead.bypassed();
        Some(lead)
    } else {
        None
    };
    // Clocks that ran past the old start may have been moved by the old window.
    let affected_from = m.starts_at.min(start.as_microsecond());
    m.starts_at = start.as_microsecond();
    m.ends_at = end.as_microsecond();
    if let Some(reason) = change.reason {
        m.reason = reason;
    }
    if let Some(impact) = change.impact {
        m.impact = impact;
    }
    m.sequence += 1;
    m.changed_at = now.as_microsecond();
    stored::update_maintenance(&mut tx, &m).await?;
    stored::record_window(&mut tx, &m, &p.calendar, now.as_microsecond()).await?;
    move_clocks(&mut tx, config, affected_from).await?;
    let previous = moved.then_some(previous);
    let mut done = announce(&mut tx, config, &m, NoticeKind::Changed, previous, now).await?;
    tx.commit().await?;
    tracing::info!(
        maintenance = m.id,
        sequence = m.sequence,
        "maintenance changed"
    );
    done.lead_time = lead;
    Ok(done)
}

/// Cancels a scheduled maintenance: its window leaves the availability report, the calendar
/// entry goes out with STATUS:CANCELLED and a raised SEQUENCE.
pub async fn cancel(
    store: &Store,
    config: &Config,
    id: i64,
    now: Timestamp,
) -> Result<Announced, AnnounceError> {
    let mut tx = store.begin_write().await?;
    let mut m = scheduled(&mut tx, id, "cancelled").await?;
    m.state = MaintenanceState::Cancelled;
    m.sequence += 1;
    m.changed_at = now.as_microsecond();
    stored::update_maintenance(&mut tx, &m).await?;
    stored::remove_window(&mut tx, m.id).await?;
    move_clocks(&mut tx, config, m.starts_at).await?;
    let done = announce(&mut tx, config, &m, NoticeKind::Cancelled, None, now).await?;
    tx.commit().await?;
    tracing::info!(maintenance = m.id, "maintenance cancelled");
    Ok(done)
}

/// Marks a scheduled maintenance done and tells its lists the platform is back.
pub async fn finish(
    store: &Store,
    config: &Config,
    id: i64,
    now: Timestamp,
) -> Result<Announced, AnnounceError> {
    let mut tx = store.begin_write().await?;
    let mut m = scheduled(&mut tx, id, "marked done").await?;
    m.state = MaintenanceState::Done;
    m.changed_at = now.as_microsecond();
    stored::update_maintenance(&mut tx, &m).await?;
    let done = announce(&mut tx, config, &m, NoticeKind::Done, None, now).await?;
    tx.commit().await?;
    tracing::info!(maintenance = m.id, "maintenance done");
    Ok(done)
}

/// Sends what the daemon owes at `now`: reminders (`daemon.maintenance_reminder_hours` before
/// the start), start notices, and completion at the planned end (`maintenance change --end`
/// extends it). Each in its own transaction; a notice another instance sent first (the unique
/// key per maintenance, kind and SEQUENCE refuses the second) or a maintenance cancelled
/// meanwhile is skipped. The notices sent.
pub async fn run_due(
    store: &Store,
    config: &Config,
    now: Timestamp,
) -> Result<Vec<Announced>, AnnounceError> {
    let reminder = config.settings.daemon.maintenance_reminder;
    // Without reminders, a look-ahead of zero asks only for what has begun.
    let before = i64::try_from(reminder.as_micros()).unwrap_or(i64::MAX);
    let due = stored::due_notices(store, now.as_microsecond(), before).await?;
    let mut sent = Vec::new();
    for (due, kind) in due {
        if kind == NoticeKind::Reminder && reminder.is_zero() {
            continue;
        }
        let mut tx = store.begin_write().await?;
        let mut m = match scheduled(&mut tx, due.id, "announced").await {
            Ok(m) if m.sequence == due.sequence => m,
            // Changed, cancelled or finished since the query: the next round sees it anew.
            _ => continue,
        };
        if kind == NoticeKind::Done {
            m.state = MaintenanceState::Done;
            m.changed_at = now.as_microsecond();
            stored::update_maintenance(&mut tx, &m).await?;
        }
        match announce(&mut tx, config, &m, kind, None, now).await {
            Ok(done) => {
                tx.commit().await?;
                tracing::info!(
                    maintenance = m.id,
                    kind = kind.as_str(),
                    mails = done.fan_out.enqueued,
                    "maintenance notice sent by the daemon"
                );
                sent.push(done);
            }
            Err(AnnounceError::Store(e)) if store.ping().await.is_ok() => {
                // Most likely the unique key: another instance sent this notice first.
                tracing::warn!(maintenance = m.id, kind = kind.as_str(), error = %e, "notice not sent (another instance may have sent it first)");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(sent)
}

/// Writes an announcement of `m` and its mails, in the caller's transaction.
pub async fn announce(
    conn: &mut AnyConnection,
    config: &Config,
    m: &Maintenance,
    kind: NoticeKind,
    previous: Option<(i64, i64)>,
    now: Timestamp,
) -> Result<Announced, AnnounceError> {
    let announcement = stored::insert_announcement(
        conn,
        About::Maintenance(m.id),
        kind.as_str(),
        m.sequence,
        now.as_microsecond(),
    )
    .await?;
    let fan_out = fan_out(conn, config, m, announcement, kind, previous, now).await?;
    Ok(Announced {
        maintenance: m.id,
        announcement,
        kind,
        sequence: m.sequence,
        lead_time: None,
        fan_out,
    })
}

/// Whether a notice carries the calendar entry: those that set or change it.
fn carries_calendar(kind: NoticeKind) -> bool {
    matches!(
        kind,
        NoticeKind::Scheduled | NoticeKind::Changed | NoticeKind::Cancelled | NoticeKind::Reminder
    )
}

/// What one notice says, whoever gets it: its template and lists, and per language its
/// context and (for maintenance) its calendar entry.
pub struct Notice<'a> {
    pub template: &'static str,
    pub lists: &'a [String],
    pub context: &'a (dyn Fn(&'static str) -> serde_json::Value + Sync),
    pub calendar: Option<&'a (dyn Fn(&'static str) -> ical::Event + Sync)>,
    /// The Message-ID each member's mail answers, by address in lower case (an incident's
    /// opening notice to that member), so that its notices form one conversation.
    pub replies_to: Option<&'a HashMap<String, String>>,
}

/// Writes the mails of maintenance announcement `announcement` to every member its lists
/// reach now, in the caller's transaction. Safe to run again for the same announcement: an
/// address that has its mail already gets none.
pub async fn fan_out(
    conn: &mut AnyConnection,
    config: &Config,
    m: &Maintenance,
    announcement: i64,
    kind: NoticeKind,
    previous: Option<(i64, i64)>,
    now: Timestamp,
) -> Result<FanOut, AnnounceError> {
    let context = |lang: &'static str| notice::context(config, m, previous, lang);
    let calendar = |lang: &'static str| notice::calendar_event(config, m, lang, now);
    let notice = Notice {
        template: notice::template(kind),
        lists: &m.lists,
        context: &context,
        calendar: carries_calendar(kind).then_some(&calendar as _),
        replies_to: None,
    };
    fan_out_notice(conn, config, announcement, &notice, now).await
}

/// Every address `lists` reach, once whatever its case, with the first list that reaches it
/// (its List-Id) and every membership on the way, over all the lists.
async fn reached(
    conn: &mut AnyConnection,
    lists: &[String],
) -> Result<Vec<(String, lists::Resolved)>, AnnounceError> {
    let mut out: Vec<(String, lists::Resolved)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for list in lists {
        for r in lists::resolve(conn, list).await? {
            match index.get(&r.member.key()) {
                Some(&i) => {
                    let seen = &mut out[i].1;
                    seen.via.extend(r.via);
                    seen.unsubscribed_from.extend(r.unsubscribed_from);
                    seen.flagged |= r.flagged;
                    seen.bounces = seen.bounces.max(r.bounces);
                }
                None => {
                    index.insert(r.member.key(), out.len());
                    out.push((list.clone(), r));
                }
            }
        }
    }
    Ok(out)
}

/// Writes the mails of announcement `announcement` to every member its lists reach now, in
/// the caller's transaction: one per address whatever its case, flagged and unsubscribed
/// members skipped, rendered once per language. Safe to run again for the same
/// announcement: an address that has its mail already gets none.
pub async fn fan_out_notice(
    conn: &mut AnyConnection,
    config: &Config,
    announcement: i64,
    notice: &Notice<'_>,
    now: Timestamp,
) -> Result<FanOut, AnnounceError> {
    let domain = &config.settings.outbox.message_id_domain;
    let template = notice.template;
    let mut out = FanOut::default();
    // Rendered once per language: (subject, index into `bodies`).
    let mut rendered: HashMap<&'static str, (String, usize)> = HashMap::new();
    let mut bodies: Vec<NoticeBody> = Vec::new();
    let mut mails = Vec::new();
    for (list, r) in reached(conn, notice.lists).await? {
        let key = r.member.key();
        out.reached += 1;
        if r.flagged {
            out.skipped_flagged += 1;
            continue;
        }
        // Unsubscribed from one list, a member may still be on one that must inform it
        // (the client's, the municipalities'): skipped only when unsubscribed on every way.
        if r.unsubscribed_from.len() >= r.via.len() {
            out.skipped_unsubscribed += 1;
            continue;
        }
        let lang = match r.member.language {
            Language::En => "en",
            Language::De => "de",
        };
        if !rendered.contains_key(lang) {
            let ctx = (notice.context)(lang);
            let text = config.templates.render(template, lang, &ctx).map_err(|e| {
                AnnounceError::Template {
                    template,
                    lang,
                    message: e.to_string(),
                }
            })?;
            let ical = match notice.calendar {
                Some(event) => Some(ical::publish(&event(lang))?),
                None => None,
            };
            rendered.insert(lang, (text.subject, bodies.len()));
            bodies.push(NoticeBody {
                language: lang,
                body_text: text.text,
                body_html: text.html,
                ical,
            });
        }
        let Some((subject, body)) = rendered.get(lang) else {
            continue;
        };
        mails.push(AnnouncementMail {
            template,
            recipient: r.member.address.clone(),
            message_id: format!("{}@{domain}", uuid::Uuid::now_v7()),
            subject: subject.clone(),
            body: *body,
            list_id: format!("{list} <{list}.{domain}>"),
            in_reply_to: notice.replies_to.and_then(|m| m.get(&key)).cloned(),
        });
    }
    out.enqueued =
        stored::enqueue_mails(conn, announcement, &bodies, &mails, now.as_microsecond()).await?;
    Ok(out)
}
