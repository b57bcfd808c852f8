//! poststelle — the mail room of a municipal IT support desk.
//!
//! ```text
//!  mailbox source ──raw bytes──▶ parse ──InboundMessage──▶ classify ──Decision──▶ ingest
//!  (IMAP / Maildir / .eml)       (mail-parser)            (rules/, NKB/MUK,       (one DB transaction)
//!                                                           loop detection)
//! ```
//!
//! This crate reads each message ([`message`]), decides where it belongs ([`classify`]) under a
//! validated configuration ([`config`]), and renders templated mail ([`templates`]).
pub mod announce;
pub mod app;
pub mod classify;
pub mod config;
pub mod diag;
pub mod dsn;
pub mod files;
pub mod holder;
pub mod ical;
pub mod jobs;
pub mod lists;
pub mod maintenance;
pub mod message;
pub mod metrics;
pub mod notify;
pub mod oauth;
pub mod outbox;
pub mod redact;
pub mod reply_token;
pub mod sla;
pub mod source;
pub mod status;
pub mod store;
pub mod templates;
pub mod ticket;
pub mod time;
pub mod verp;

pub use classify::{Action, Decision, classify, classify_raw, explain};
pub use config::Config;
pub use message::InboundMessage;
