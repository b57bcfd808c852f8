-- The daemon's bookkeeping (PostgreSQL). migrations/sqlite/0002_daemon.sql is the same schema.

-- Per watched mailbox: the UIDVALIDITY and the highest UID filed and moved, so that a restart
-- fetches only what is new, and when it was last polled successfully.
CREATE TABLE mailbox_state (
    mailbox     TEXT    PRIMARY KEY,
    uidvalidity BIGINT,
    last_uid    BIGINT  NOT NULL DEFAULT 0,
    polled_at   BIGINT
);

-- Who works on what: one row per mailbox, held by one instance until expires_at (UTC µs).
-- An instance renews its leases while it lives; another takes over an expired one.
CREATE TABLE leases (
    name       TEXT    PRIMARY KEY,
    holder     TEXT    NOT NULL,
    expires_at BIGINT  NOT NULL
);
