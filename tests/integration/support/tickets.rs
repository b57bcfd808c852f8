//! Tickets for a test: opened by filing a request on the shipped configuration, changed as
//! `poststelle tickets set` changes them.
use poststelle::store::Store;
use poststelle::ticket::ingest::{Ingestor, Outcome, SourceKey};
use poststelle::ticket::{State, ops};

use super::config::DEFAULT;
use super::mail::request;

/// The number of the ticket an outcome opened; anything else fails the test.
pub fn new_number(o: &Outcome) -> String {
    match o {
        Outcome::NewTicket { number, .. } => number.clone(),
        other => panic!("expected a new ticket, got {other:?}"),
    }
}

/// Files a [`request`] (`from`, `subject`, Message-ID `<id>`) from the source `file:{key}`.
pub async fn file(ing: &Ingestor<'_>, from: &str, subject: &str, id: &str, key: &str) -> Outcome {
    ing.ingest(&request(from, subject, id), SourceKey::file(key))
        .await
        .expect("ingest")
}

/// Opens a ticket now: the request `<{id}@example.org>` from `from` about `subject`, filed
/// from `file:{id}` on the shipped configuration. Its number.
pub async fn open_ticket(store: &Store, from: &str, subject: &str, id: &str) -> String {
    let ing = Ingestor::new(store, &DEFAULT);
    new_number(&file(&ing, from, subject, &format!("{id}@example.org"), id).await)
}

/// Changes a ticket as `tickets set` does, on the shipped configuration.
pub async fn set(store: &Store, number: &str, change: ops::Change<'_>) {
    ops::set_ticket(store, &DEFAULT, number, change)
        .await
        .expect("set");
}

/// Closes a ticket (actor "test").
pub async fn close(store: &Store, number: &str) {
    let change = ops::Change {
        state: Some(State::Closed),
        actor: "test",
        ..Default::default()
    };
    set(store, number, change).await;
}

/// Puts a ticket into Störungsklasse `severity`, as the Leitstelle does.
pub async fn set_severity(store: &Store, number: &str, severity: u8) {
    let change = ops::Change {
        severity: Some(severity),
        actor: "leitstelle",
        ..Default::default()
    };
    set(store, number, change).await;
}

/// Takes a ticket: open, as staff do when they start on it (actor "jan"). The requester is
/// told it is being worked on, and that is the SLA's reaction.
pub async fn take(store: &Store, number: &str) {
    let change = ops::Change {
        state: Some(State::Open),
        actor: "jan",
        ..Default::default()
    };
    set(store, number, change).await;
}

/// Adds a note to a ticket, written by `actor`.
pub async fn add_note(store: &Store, number: &str, actor: &str, note: &str) {
    let change = ops::Change {
        note: Some(note),
        actor,
        ..Default::default()
    };
    set(store, number, change).await;
}
