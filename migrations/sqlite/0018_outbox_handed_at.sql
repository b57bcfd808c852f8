-- When the sender began handing a mail's data to the SMTP server (microseconds since 1970,
-- UTC), written and committed before the data and its final "." go out, cleared when the
-- attempt's result is recorded. A row claimed by a sender that died with handed_at set may
-- have been taken by the server (RFC 1047): under outbox.after_crash = "hold" it becomes
-- 'uncertain' instead of being sent again (src/outbox/sender.rs). No index: only the rows in
-- flight have it, and it is read from the rows a claim takes. migrations/postgres holds the same.
ALTER TABLE outbox ADD COLUMN handed_at INTEGER;
