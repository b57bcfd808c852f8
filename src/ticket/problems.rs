//! Problem management (issue 19, item 4; MISSION §1: "recurring incidents go to problem
//! management"): every incident that occurs — a new ticket of class 1–3, a monitoring key's
//! problem that begins (again) — is recorded with its fingerprint: the alert key, or the
//! queue with the normalised subject. When `problems.count` of one fingerprint occur within
//! `problems.window_days` and no problem of it is open, a problem record links them and the
//! queue's escalation address is told, in the filing transaction: once, however often the
//! daemon restarts, since the record and its mail commit together and a later occurrence
//! joins the open record without a mail. After `problems close` the count starts afresh.
//!
//! The fingerprint of a subject is a hash: it must not keep a subject that retention
//! anonymises on the ticket.
use jiff::Timestamp;
use serde_json::json;
use sha2::{Digest, Sha256};
use sqlx::AnyConnection;

use super::alerts::Occurrence;
use crate::config::Config;
use crate::notify;
use crate::outbox::{self, Kind, NewMail};
use crate::store::audit::audit;
use crate::store::buffer::WriteBuffer;
use crate::store::problems::{self as stored, NewOccurrence, NewProblem};
use crate::store::{Backend, StoreError};

/// The fingerprint of a ticket that is no alert: its queue and its subject without case
/// and runs of blanks (already without Re:/Fwd: and the ticket tag), hashed.
pub fn subject_fingerprint(queue: &str, normalized_subject: &str) -> Option<String> {
    let words: Vec<String> = normalized_subject
        .split_whitespace()
        .map(str::to_lowercase)
        .collect();
    if words.is_empty() {
        return None;
    }
    let digest = Sha256::digest(words.join(" ").as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    Some(format!("subject:{queue}:{hex}"))
}

/// Records the batch's occurrences, and the problems they complete, in the caller's
/// transaction.
pub async fn record(
    conn: &mut AnyConnection,
    config: &Config,
    occurrences: &[Occurrence],
    now: Timestamp,
) -> Result<(), StoreError> {
    if occurrences.is_empty() {
        return Ok(());
    }
    let backend = Backend::of(conn);
    let s = config.settings.problems;
    let at = now.as_microsecond();
    let mut buf = WriteBuffer::default();
    if s.count == 0 {
        for o in occurrences {
            buf.occurrence(&new(o, at, None));
        }
        return buf.flush(conn, backend).await;
    }
    // By fingerprint, in the batch's order.
    let mut groups: Vec<(&str, Vec<&Occurrence>)> = Vec::new();
    for o in occurrences {
        match groups.iter_mut().find(|(f, _)| *f == o.fingerprint) {
            Some((_, g)) => g.push(o),
            None => groups.push((&o.fingerprint, vec![o])),
        }
    }
    let fingerprints: Vec<&str> = groups.iter().map(|(f, _)| *f).collect();
    let open = stored::open_of(conn, backend, &fingerprints).await?;
    let mut earlier = stored::unlinked_since(conn, backend, &fingerprints, at - s.window()).await?;
    let mut made: Vec<(i64, &Occurrence)> = Vec::new();
    for (fingerprint, group) in &groups {
        if let Some(&problem) = open.get(*fingerprint) {
            for o in group {
                buf.occurrence(&new(o, at, Some(problem)));
                audit(
                    &mut buf,
                    at,
                    Some(o.ticket_id),
                    None,
                    "poststelle",
                    "problem_linked",
                    &json!({ "problem": problem, "fingerprint": fingerprint }),
                );
            }
            tracing::info!(
                problem,
                fingerprint,
                occurrences = group.len(),
                "incident joins its open problem"
            );
            continue;
        }
        let before = earlier.remove(*fingerprint).unwrap_or_default();
        if before.len() + group.len() < s.count as usize {
            for o in group {
                buf.occurrence(&new(o, at, None));
            }
            continue;
        }
        let first = group[0];
        let to = config.settings.escalation_address(&first.queue);
        let problem = stored::insert(
            conn,
            &NewProblem {
                fingerprint,
                queue: &first.queue,
                platform: group.iter().find_map(|o| o.platform.as_deref()),
                title: first.title.as_deref(),
                opened_at: at,
                notified_to: to.as_deref(),
            },
        )
        .await?;
        let ids: Vec<i64> = before.iter().map(|o| o.id).collect();
        stored::link(conn, backend, problem, &ids).await?;
        for o in group {
            buf.occurrence(&new(o, at, Some(problem)));
        }
        made.push((problem, first));
        let tickets: Vec<i64> = before
            .iter()
            .map(|o| o.ticket_id)
            .chain(group.iter().map(|o| o.ticket_id))
            .collect();
        for t in &tickets {
            audit(
                &mut buf,
                at,
                Some(*t),
                None,
                "poststelle",
                "problem_recorded",
                &json!({ "problem": problem, "fingerprint": fingerprint,
                         "occurrences": tickets.len(), "told": to }),
            );
        }
        tracing::warn!(
            problem,
            fingerprint,
            occurrences = tickets.len(),
            window_days = s.window_days,
            told = to.as_deref().unwrap_or(""),
            "problem recorded"
        );
    }
    // The notices list every occurrence, this batch's included: written first.
    buf.flush(conn, backend).await?;
    for (problem, first) in made {
        tell(conn, &mut buf, config, problem, first, now).await?;
    }
    buf.flush(conn, backend).await
}

/// Closes a problem (its cause is dealt with), audited: later incidents of its fingerprint
/// count afresh. `false` when it is not open.
pub async fn close(
    store: &crate::store::Store,
    id: i64,
    by: &str,
    note: Option<&str>,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let at = now.as_microsecond();
    let mut tx = store.begin_write().await?;
    if !stored::close(&mut tx, id, by, note, at).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    let mut buf = WriteBuffer::default();
    audit(
        &mut buf,
        at,
        None,
        None,
        by,
        "problem_closed",
        &json!({ "problem": id, "note": note }),
    );
    buf.flush(&mut tx, store.backend()).await?;
    tx.commit().await?;
    tracing::info!(problem = id, by, "problem closed");
    Ok(true)
}

fn new(o: &Occurrence, at: i64, problem_id: Option<i64>) -> NewOccurrence<'_> {
    NewOccurrence {
        fingerprint: &o.fingerprint,
        ticket_id: o.ticket_id,
        queue: &o.queue,
        platform: o.platform.as_deref(),
        at,
        problem_id,
    }
}

/// The one mail of a new problem, to the queue's escalation address (none: recorded, not
/// sent; `problems show` says so).
async fn tell(
    conn: &mut AnyConnection,
    buf: &mut WriteBuffer,
    config: &Config,
    problem: i64,
    first: &Occurrence,
    now: Timestamp,
) -> Result<(), StoreError> {
    let Some(to) = config.settings.escalation_address(&first.queue) else {
        tracing::warn!(problem, queue = %first.queue, "problem recorded; the queue has no escalation address to tell");
        return Ok(());
    };
    let rows = stored::occurrences_of(conn, problem).await?;
    let list: Vec<notify::alerts::Occurrence<'_>> = rows
        .iter()
        .map(|r| notify::alerts::Occurrence {
            number: &r.number,
            subject: &r.subject,
            at: crate::time::stored(r.at),
        })
        .collect();
    let title = first
        .title
        .clone()
        .or_else(|| rows.last().map(|r| r.subject.clone()))
        .unwrap_or_default();
    let tickets: std::collections::HashSet<&str> = rows.iter().map(|r| r.number.as_str()).collect();
    let context = notify::alerts::for_problem(
        config,
        &notify::alerts::ProblemFacts {
            id: problem,
            title: &title,
            queue: &first.queue,
            platform: first.platform.as_deref(),
            window_days: config.settings.problems.window_days,
            occurrences: &list,
        },
    );
    outbox::enqueue(
        conn,
        buf,
        config,
        now,
        NewMail {
            ticket_id: None,
            kind: Kind::Notice,
            template: crate::templates::PROBLEM_FOUND,
            recipient: &to,
            in_reply_to: None,
            references: Vec::new(),
            context: &context,
            attach_raw: None,
        },
    )
    .await?;
    tracing::info!(problem, to = %to, tickets = tickets.len(), "problem told to the escalation address");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::subject_fingerprint;

    #[test]
    fn subjects_differing_in_case_and_blanks_are_one_fingerprint() {
        let a = subject_fingerprint("support", "Drucker  druckt nicht");
        assert_eq!(a, subject_fingerprint("support", "drucker druckt NICHT "));
        assert_ne!(a, subject_fingerprint("betrieb", "drucker druckt nicht"));
        assert!(a.as_deref().is_some_and(|f| !f.contains("drucker")));
        assert_eq!(subject_fingerprint("support", "  "), None);
    }
}
