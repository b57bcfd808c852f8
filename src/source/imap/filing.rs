//! Filing a batch in a task of its own: parsed at once, committed only after the batch before
//! it in the mailbox.
use std::sync::Arc;

use super::fetch::{Fetched, Oversized};
use super::{Selected, WithContext};
use crate::source::{Disposition, SourceError};
use crate::ticket::ingest::{Incoming, Ingestor};

/// Resolves when a batch has committed; fails when it was not filed.
pub(super) type Turn = tokio::sync::oneshot::Receiver<()>;

/// A batch being filed in a task of its own.
pub(super) struct Filing {
    pub(super) task: tokio::task::JoinHandle<Result<Vec<(u32, Disposition)>, SourceError>>,
    /// Messages over the size limit, for the quarantine folder.
    pub(super) too_big: Vec<u32>,
    pub(super) last_uid: u32,
    folder: String,
}

impl Filing {
    /// Starts parsing and classifying at once; the batch commits only after `ahead`, the
    /// batch before it in the mailbox, committed. The returned [`Turn`] does the same for the
    /// batch after this one.
    pub(super) fn start(
        sel: &Selected<'_>,
        fetched: Fetched,
        ahead: Option<Turn>,
    ) -> (Filing, Turn) {
        let Fetched {
            bodies,
            sources,
            too_big,
            last_uid,
        } = fetched;
        let ctx = Arc::clone(sel.ctx);
        let mailbox = sel.mb.name.clone();
        let (done, next) = tokio::sync::oneshot::channel();
        let ahead = async move {
            match ahead {
                None => Ok(()),
                Some(rx) => rx.await.map_err(|_| {
                    SourceError::Protocol("the batch before this one was not filed".into())
                }),
            }
        };
        let limit = ctx.config.settings.ingest.max_message_size;
        let big_uids = too_big.iter().map(|o| o.uid).collect();
        let task = tokio::spawn(async move {
            let ingestor = Ingestor::new(&ctx.store, &ctx.config);
            record_oversized(&ingestor, &too_big, limit).await?;
            if bodies.is_empty() {
                ahead.await?;
                let _ = done.send(());
                return Ok(Vec::new());
            }
            let (uids, items): (Vec<u32>, Vec<Incoming<'_>>) = bodies
                .iter()
                .zip(sources)
                .filter_map(|(f, source)| {
                    Some((
                        f.uid?,
                        Incoming {
                            raw: f.body()?,
                            source,
                        },
                    ))
                })
                .unzip();
            let outcomes = crate::source::file_batch_after(&ctx, &ingestor, &items, ahead).await?;
            // The receiver is gone only when the session gave up; nothing waits then.
            let _ = done.send(());
            ctx.committed();
            Ok(uids
                .into_iter()
                .zip(&outcomes)
                .map(|(uid, outcome)| {
                    ctx.metrics.filed(&mailbox, outcome);
                    (uid, Disposition::of(outcome))
                })
                .collect())
        });
        let filing = Filing {
            task,
            too_big: big_uids,
            last_uid,
            folder: sel.imap.folder.clone(),
        };
        (filing, next)
    }

    /// Waits for the commit; where each message filed goes, by UID.
    pub(super) async fn filed(&mut self) -> Result<Vec<(u32, Disposition)>, SourceError> {
        let (folder, last_uid) = (&self.folder, self.last_uid);
        (&mut self.task)
            .await
            .map_err(|e| SourceError::Protocol(format!("{folder}: filing a batch failed: {e}")))?
            .context(|| format!("{folder}: filing the batch up to UID {last_uid} failed"))
    }
}

/// Records each message over the size limit in the quarantine table (its header, its size and
/// where it lies), before it is moved to the quarantine folder.
async fn record_oversized(
    ingestor: &Ingestor<'_>,
    too_big: &[Oversized],
    limit: u64,
) -> Result<(), SourceError> {
    for o in too_big {
        let reason = crate::source::too_large_reason(u64::from(o.size), limit);
        ingestor
            .quarantine(&o.header, u64::from(o.size), &o.source, &reason)
            .await?;
    }
    Ok(())
}
