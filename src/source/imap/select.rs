//! Preparing the folders: the ones mail is moved to, and the one it is read from with its
//! UIDVALIDITY held against the store.
use std::sync::Arc;

use async_imap::Session;

use super::{Conn, WithContext, save_state, timed};
use crate::config::{After, FirstRun, ImapSettings, MailboxSettings};
use crate::source::{Ctx, SourceError};
use crate::store::MailboxState;

/// Creates the folders filed mail goes to.
pub(super) async fn create_folders(
    session: &mut Session<Conn>,
    mb: &MailboxSettings,
    imap: &ImapSettings,
) -> Result<(), SourceError> {
    for folder in [&imap.processed_folder, &imap.quarantine_folder] {
        if mb.after == After::Flag && folder == &imap.processed_folder {
            continue;
        }
        // An existing folder answers NO, which is what we want.
        if let Err(e) = timed(session.create(folder)).await {
            match e {
                SourceError::Imap(async_imap::error::Error::No(_)) => {}
                e => return Err(e).context(|| format!("{folder}: CREATE failed")),
            }
        }
    }
    Ok(())
}

/// Selects the folder and returns its UIDVALIDITY with where filing goes on, as now
/// recorded in the store.
pub(super) async fn select(
    session: &mut Session<Conn>,
    ctx: &Arc<Ctx>,
    mb: &MailboxSettings,
    imap: &ImapSettings,
) -> Result<(u32, MailboxState), SourceError> {
    let folder = &imap.folder;
    let mailbox = timed(session.select(folder))
        .await
        .context(|| format!("{folder}: SELECT failed"))?;
    let uidvalidity = mailbox
        .uid_validity
        .ok_or_else(|| SourceError::Protocol(format!("{folder}: SELECT gave no UIDVALIDITY")))?;
    let stored = ctx
        .store
        .mailbox_state(&mb.name)
        .await
        .context(|| format!("mailbox {}: reading its state failed", mb.name))?;
    let state = resume(stored, uidvalidity, mailbox.uid_next, mb.first_run);
    save_state(ctx, mb, state).await?;
    Ok((uidvalidity, state))
}

/// Where filing goes on, from what the store recorded and what the server says now.
fn resume(
    stored: Option<MailboxState>,
    uidvalidity: u32,
    uid_next: Option<u32>,
    first_run: FirstRun,
) -> MailboxState {
    match stored {
        None => {
            let last_uid = match first_run {
                FirstRun::All => 0,
                // Everything there now counts as seen; only what arrives later is filed.
                FirstRun::New => uid_next.unwrap_or(1).saturating_sub(1),
            };
            tracing::info!(
                uidvalidity,
                last_uid,
                first_run = ?first_run,
                "first connection to this mailbox"
            );
            MailboxState {
                uidvalidity: Some(uidvalidity),
                last_uid,
            }
        }
        Some(s) if s.uidvalidity != Some(uidvalidity) => {
            // Every UID changed meaning: read the folder again from the start. What was filed
            // before is recognised by Message-ID and content, and is only moved.
            tracing::warn!(
                old = s.uidvalidity,
                new = uidvalidity,
                "UIDVALIDITY changed; resynchronising"
            );
            MailboxState {
                uidvalidity: Some(uidvalidity),
                last_uid: 0,
            }
        }
        Some(s) => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(uidvalidity: u32, last_uid: u32) -> MailboxState {
        MailboxState {
            uidvalidity: Some(uidvalidity),
            last_uid,
        }
    }

    #[test]
    fn a_first_run_starts_at_the_beginning_or_after_what_is_there() {
        assert_eq!(resume(None, 7, Some(51), FirstRun::All), at(7, 0));
        assert_eq!(resume(None, 7, Some(51), FirstRun::New), at(7, 50));
        // An empty folder, or a server that does not say UIDNEXT.
        assert_eq!(resume(None, 7, Some(1), FirstRun::New), at(7, 0));
        assert_eq!(resume(None, 7, None, FirstRun::New), at(7, 0));
    }

    #[test]
    fn a_new_uidvalidity_reads_the_folder_again() {
        assert_eq!(
            resume(Some(at(7, 40)), 7, Some(51), FirstRun::New),
            at(7, 40)
        );
        assert_eq!(
            resume(Some(at(7, 40)), 8, Some(51), FirstRun::New),
            at(8, 0)
        );
        let unknown = MailboxState {
            uidvalidity: None,
            last_uid: 40,
        };
        assert_eq!(resume(Some(unknown), 8, Some(51), FirstRun::All), at(8, 0));
    }
}
