//! Waiting for new mail between rounds.
use async_imap::Session;
use async_imap::types::UnsolicitedResponse;
use tokio_util::sync::CancellationToken;

use super::{Conn, Selected, WithContext, timed};
use crate::source::SourceError;

/// Waits for new mail: IDLE when the server offers it, else the poll interval.
pub(super) async fn wait(
    mut session: Session<Conn>,
    sel: &Selected<'_>,
    stop: &CancellationToken,
) -> Result<Session<Conn>, SourceError> {
    let (imap, folder) = (sel.imap, &sel.imap.folder);
    // Wait no longer than the token lasts: the session logs in anew after the wait.
    let until_renewal = sel
        .renew_at
        .map(|t| t.saturating_duration_since(tokio::time::Instant::now()));
    let bounded = |d: std::time::Duration| until_renewal.map_or(d, |r| d.min(r));
    if !(sel.caps.idle && imap.idle) {
        crate::source::sleep_or(stop, bounded(sel.mb.poll_interval)).await;
        // Also tells a dead connection apart before the next search.
        timed(session.noop())
            .await
            .context(|| format!("{folder}: NOOP failed"))?;
        return Ok(session);
    }
    // Mail that arrived while the last batch was being filed was announced as EXISTS to
    // another command; IDLE would wait for it in vain.
    let news = session.unsolicited_responses.clone();
    if announced_new_mail(&news) {
        return Ok(session);
    }
    let idle_failed = || format!("{folder}: IMAP IDLE failed");
    let mut handle = session.idle();
    timed(handle.init()).await.context(idle_failed)?;
    // The same for mail announced between the last command and the start of IDLE.
    if !announced_new_mail(&news) {
        let (idle, interrupt) = handle.wait_with_timeout(imap.idle_timeout);
        tokio::pin!(idle);
        // async-imap's own timeout restarts with every keep-alive the server sends; this one
        // re-issues IDLE within the limit whatever the server does.
        let deadline = tokio::time::sleep(bounded(imap.idle_timeout));
        tokio::pin!(deadline);
        let waited = tokio::select! {
            r = &mut idle => r,
            _ = &mut deadline => { drop(interrupt); idle.await }
            _ = stop.cancelled() => { drop(interrupt); idle.await }
        };
        waited.context(idle_failed)?;
    }
    timed(handle.done())
        .await
        .context(|| format!("{folder}: ending IMAP IDLE (DONE) failed"))
}

/// Whether the server announced new messages (EXISTS or RECENT) since the channel was drained.
fn announced_new_mail(rx: &async_channel::Receiver<UnsolicitedResponse>) -> bool {
    let mut new = false;
    while let Ok(r) = rx.try_recv() {
        new |= matches!(
            r,
            UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
        );
    }
    new
}
