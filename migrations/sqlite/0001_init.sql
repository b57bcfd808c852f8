-- poststelle schema (SQLite). migrations/postgres/0001_init.sql is the same schema for
-- PostgreSQL; keep the two in step. Instants are UTC microseconds since the Unix epoch.

CREATE TABLE raw_messages (
    id            INTEGER PRIMARY KEY,
    -- mailbox/UIDVALIDITY/UID, maildir:<unique name>, or file:<path>
    source_key    TEXT    NOT NULL UNIQUE,
    -- Message-ID (or empty) + ' ' + SHA-256 of the bytes: the same mail from another source
    dedup_key     TEXT    NOT NULL UNIQUE,
    message_id    TEXT,
    content_hash  TEXT    NOT NULL,
    size          INTEGER NOT NULL,
    bytes         BLOB    NOT NULL,
    received_at   INTEGER NOT NULL,
    -- new_ticket | follow_up | note | ignored | quarantined
    outcome       TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    ticket_id     INTEGER
);
CREATE INDEX raw_messages_outcome ON raw_messages (outcome);

CREATE TABLE ticket_counters (
    day   TEXT    PRIMARY KEY,
    value INTEGER NOT NULL
);

CREATE TABLE tickets (
    id               INTEGER PRIMARY KEY,
    number           TEXT    NOT NULL UNIQUE,
    queue            TEXT    NOT NULL,
    severity         INTEGER NOT NULL,
    category         TEXT,
    -- new | open | pending | closed
    state            TEXT    NOT NULL,
    requester        TEXT    NOT NULL,
    requester_name   TEXT,
    subject          TEXT    NOT NULL,
    nk_state         TEXT,
    nk_origin        TEXT,
    nk_betreff       TEXT,
    linked_ticket_id INTEGER REFERENCES tickets (id),
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    closed_at        INTEGER
);
CREATE INDEX tickets_state_queue ON tickets (state, queue);

CREATE TABLE participants (
    ticket_id INTEGER NOT NULL REFERENCES tickets (id),
    address   TEXT    NOT NULL,
    role      TEXT    NOT NULL,
    PRIMARY KEY (ticket_id, address)
);

CREATE TABLE articles (
    id             INTEGER PRIMARY KEY,
    ticket_id      INTEGER NOT NULL REFERENCES tickets (id),
    -- inbound | outbound | note
    kind           TEXT    NOT NULL,
    message_id     TEXT,
    raw_message_id INTEGER REFERENCES raw_messages (id),
    sender         TEXT,
    subject        TEXT    NOT NULL,
    body           TEXT    NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE INDEX articles_ticket ON articles (ticket_id);
CREATE INDEX articles_message_id ON articles (message_id);

CREATE TABLE attachments (
    id           INTEGER PRIMARY KEY,
    article_id   INTEGER NOT NULL REFERENCES articles (id),
    name         TEXT,
    content_type TEXT    NOT NULL,
    size         INTEGER NOT NULL
);
CREATE INDEX attachments_article ON attachments (article_id);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    ticket_id       INTEGER REFERENCES tickets (id),
    -- acknowledgement | auto_reply | staff_copy | forward | escalation | notice
    kind            TEXT    NOT NULL,
    template        TEXT,
    recipient       TEXT    NOT NULL,
    message_id      TEXT    NOT NULL UNIQUE,
    in_reply_to     TEXT,
    refs            TEXT,
    -- rendered when the row is written, so the article shows exactly what is sent
    subject         TEXT    NOT NULL,
    body_text       TEXT    NOT NULL,
    body_html       TEXT,
    -- Auto-Submitted value: auto-replied (replies to a person) or auto-generated (notices)
    auto_submitted  TEXT    NOT NULL,
    raw_message_id  INTEGER REFERENCES raw_messages (id),
    -- scheduled | sent | temporary_failure | permanent_failure | suppressed
    state           TEXT    NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    claimed_until   INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_recipient ON outbox (recipient, created_at);

CREATE TABLE audit (
    id             INTEGER PRIMARY KEY,
    at             INTEGER NOT NULL,
    ticket_id      INTEGER REFERENCES tickets (id),
    raw_message_id INTEGER REFERENCES raw_messages (id),
    actor          TEXT    NOT NULL,
    event          TEXT    NOT NULL,
    detail         TEXT    NOT NULL
);
CREATE INDEX audit_ticket ON audit (ticket_id);
