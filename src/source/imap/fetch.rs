//! Finding new mail and fetching it in batches, oversized messages left unread.
use std::collections::BTreeMap;

use async_imap::Session;
use async_imap::types::Fetch;
use futures::TryStreamExt;

use super::{Conn, Selected, WithContext, timed};
use crate::source::SourceError;
use crate::ticket::ingest::{Outcome, SourceKey};

/// The UIDs above `last_uid`, ascending.
pub(super) async fn new_uids(
    session: &mut Session<Conn>,
    folder: &str,
    last_uid: u32,
) -> Result<Vec<u32>, SourceError> {
    // The search sees everything announced so far; what arrives later shows up as EXISTS.
    while session.unsolicited_responses.try_recv().is_ok() {}
    let mut uids: Vec<u32> = timed(session.uid_search(format!("UID {}:*", last_uid + 1)))
        .await
        .context(|| format!("{folder}: UID SEARCH failed"))?
        .into_iter()
        // `n:*` always includes the highest UID, even when it is below n.
        .filter(|&u| u > last_uid)
        .collect();
    uids.sort_unstable();
    Ok(uids)
}

/// A message over the size limit.
pub(super) struct Oversized {
    pub(super) uid: u32,
    pub(super) size: u32,
    pub(super) header: Vec<u8>,
    pub(super) source: SourceKey,
}

/// One batch as the server handed it over.
pub(super) struct Fetched {
    /// The bodies of the messages within the size limit, each with its UID.
    pub(super) bodies: Vec<Fetch>,
    /// The store's key of each body.
    pub(super) sources: Vec<SourceKey>,
    /// Messages over the size limit: they go to the quarantine folder with only their header
    /// read, which is recorded with their size and where they lie.
    pub(super) too_big: Vec<Oversized>,
    /// The highest UID of the batch, read or not.
    pub(super) last_uid: u32,
}

/// Fetches one batch: sizes first, so an oversized message is never downloaded, then the
/// bodies of the others.
pub(super) async fn fetch_batch(
    session: &mut Session<Conn>,
    sel: &Selected<'_>,
    chunk: &[u32],
) -> Result<Fetched, SourceError> {
    let limit = sel.ctx.config.settings.ingest.max_message_size;
    let (small, big): (Vec<_>, Vec<_>) = sizes(session, &sel.imap.folder, chunk)
        .await?
        .into_iter()
        .partition(|&(_, size)| u64::from(size) <= limit);
    for (uid, size) in &big {
        tracing::warn!(
            uid,
            size,
            limit,
            "message over max_message_size: moved to the quarantine folder unread"
        );
        sel.ctx.metrics.filed(
            &sel.mb.name,
            &Outcome::Quarantined {
                reason: "too large".into(),
            },
        );
    }
    let too_big = if big.is_empty() {
        Vec::new()
    } else {
        let uids: Vec<u32> = big.iter().map(|&(u, _)| u).collect();
        let mut headers = fetch_headers(session, &sel.imap.folder, &uids).await?;
        big.iter()
            .map(|&(uid, size)| Oversized {
                uid,
                size,
                header: headers.remove(&uid).unwrap_or_default(),
                source: SourceKey::imap(&sel.key, sel.uidvalidity, uid),
            })
            .collect()
    };
    let mut bodies = Vec::new();
    if !small.is_empty() {
        let wanted: Vec<u32> = small.iter().map(|&(u, _)| u).collect();
        bodies = fetch_bodies(session, &sel.imap.folder, &wanted).await?;
        sel.ctx.metrics.fetched(&sel.mb.name, bodies.len());
    }
    let sources = bodies
        .iter()
        .filter_map(|f| Some(SourceKey::imap(&sel.key, sel.uidvalidity, f.uid?)))
        .collect();
    Ok(Fetched {
        bodies,
        sources,
        too_big,
        last_uid: chunk.last().copied().unwrap_or(0),
    })
}

/// The size of each message of the batch, by UID.
async fn sizes(
    session: &mut Session<Conn>,
    folder: &str,
    chunk: &[u32],
) -> Result<BTreeMap<u32, u32>, SourceError> {
    let set = uid_set(chunk);
    let fetched = timed(async {
        session
            .uid_fetch(&set, "(UID RFC822.SIZE)")
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await
    .context(|| format!("{folder}: UID FETCH RFC822.SIZE failed"))?;
    // Only the batch's own messages, each once: while a second connection flags or moves
    // earlier ones, a server may report those changes as untagged FETCH responses here too.
    let mut sizes = BTreeMap::<u32, u32>::new();
    for f in &fetched {
        if let Some(uid) = f.uid
            && chunk.binary_search(&uid).is_ok()
        {
            let size = sizes.entry(uid).or_default();
            *size = (*size).max(f.size.unwrap_or(0));
        }
    }
    Ok(sizes)
}

/// The headers of the `wanted` UIDs (ascending), by UID: all that is read of a message over
/// the size limit.
async fn fetch_headers(
    session: &mut Session<Conn>,
    folder: &str,
    wanted: &[u32],
) -> Result<BTreeMap<u32, Vec<u8>>, SourceError> {
    let set = uid_set(wanted);
    let fetched = timed(async {
        session
            .uid_fetch(&set, "(UID BODY.PEEK[HEADER])")
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await
    .context(|| format!("{folder}: UID FETCH BODY.PEEK[HEADER] failed"))?;
    Ok(fetched
        .iter()
        .filter_map(|f| {
            let uid = f.uid.filter(|u| wanted.binary_search(u).is_ok())?;
            Some((uid, f.header()?.to_vec()))
        })
        .collect())
}

/// The bodies of exactly the `wanted` UIDs (ascending), each once, in UID order.
async fn fetch_bodies(
    session: &mut Session<Conn>,
    folder: &str,
    wanted: &[u32],
) -> Result<Vec<Fetch>, SourceError> {
    let set = uid_set(wanted);
    let mut bodies = timed(async {
        session
            .uid_fetch(&set, "(UID BODY.PEEK[])")
            .await?
            .try_collect::<Vec<_>>()
            .await
    })
    .await
    .context(|| format!("{folder}: UID FETCH BODY.PEEK[] failed"))?;
    bodies
        .retain(|f| f.uid.is_some_and(|u| wanted.binary_search(&u).is_ok()) && f.body().is_some());
    bodies.sort_by_key(|f| f.uid);
    bodies.dedup_by_key(|f| f.uid);
    // A message the server did not hand over would otherwise be passed by with the
    // batch's highest UID and never filed: try the batch again later (a message
    // expunged meanwhile is not searched again).
    if bodies.len() < wanted.len() {
        return Err(SourceError::Protocol(format!(
            "{folder}: UID FETCH asked for {} messages, got {}; retrying",
            wanted.len(),
            bodies.len()
        )));
    }
    Ok(bodies)
}

/// A compact UID set: sorted UIDs as ranges, `1:5,9,11:12`.
pub(super) fn uid_set(uids: &[u32]) -> String {
    let mut sorted = uids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out = String::new();
    let mut i = 0;
    while i < sorted.len() {
        let start = sorted[i];
        let mut end = start;
        while i + 1 < sorted.len() && sorted[i + 1] == end + 1 {
            i += 1;
            end = sorted[i];
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == end {
            out.push_str(&start.to_string());
        } else {
            out.push_str(&format!("{start}:{end}"));
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::uid_set;

    #[test]
    fn uid_sets_are_compact_ranges() {
        assert_eq!(uid_set(&[5, 1, 2, 3, 9, 11, 12]), "1:3,5,9,11:12");
        assert_eq!(uid_set(&[7]), "7");
        assert_eq!(uid_set(&[4, 4, 5]), "4:5");
        assert_eq!(uid_set(&[]), "");
    }
}
