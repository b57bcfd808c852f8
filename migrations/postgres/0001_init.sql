-- poststelle schema (PostgreSQL). migrations/sqlite/0001_init.sql is the same schema for
-- SQLite; keep the two in step. Instants are UTC microseconds since the Unix epoch.

CREATE TABLE raw_messages (
    id            BIGSERIAL PRIMARY KEY,
    -- mailbox/UIDVALIDITY/UID, maildir:<unique name>, or file:<path>
    source_key    TEXT    NOT NULL UNIQUE,
    -- Message-ID (or empty) + ' ' + SHA-256 of the bytes: the same mail from another source
    dedup_key     TEXT    NOT NULL UNIQUE,
    message_id    TEXT,
    content_hash  TEXT    NOT NULL,
    size          BIGINT  NOT NULL,
    bytes         BYTEA   NOT NULL,
    received_at   BIGINT  NOT NULL,
    -- new_ticket | follow_up | note | ignored | quarantined
    outcome       TEXT    NOT NULL,
    reason        TEXT    NOT NULL,
    ticket_id     BIGINT
);
CREATE INDEX raw_messages_outcome ON raw_messages (outcome);

CREATE TABLE ticket_counters (
    day   TEXT    PRIMARY KEY,
    value BIGINT  NOT NULL
);

CREATE TABLE tickets (
    id               BIGSERIAL PRIMARY KEY,
    number           TEXT    NOT NULL UNIQUE,
    queue            TEXT    NOT NULL,
    severity         BIGINT  NOT NULL,
    category         TEXT,
    -- new | open | pending | closed
    state            TEXT    NOT NULL,
    requester        TEXT    NOT NULL,
    requester_name   TEXT,
    subject          TEXT    NOT NULL,
    nk_state         TEXT,
    nk_origin        TEXT,
    nk_betreff       TEXT,
    linked_ticket_id BIGINT  REFERENCES tickets (id),
    created_at       BIGINT  NOT NULL,
    updated_at       BIGINT  NOT NULL,
    closed_at        BIGINT
);
CREATE INDEX tickets_state_queue ON tickets (state, queue);

CREATE TABLE participants (
    ticket_id BIGINT  NOT NULL REFERENCES tickets (id),
    address   TEXT    NOT NULL,
    role      TEXT    NOT NULL,
    PRIMARY KEY (ticket_id, address)
);

CREATE TABLE articles (
    id             BIGSERIAL PRIMARY KEY,
    ticket_id      BIGINT  NOT NULL REFERENCES tickets (id),
    -- inbound | outbound | note
    kind           TEXT    NOT NULL,
    message_id     TEXT,
    raw_message_id BIGINT  REFERENCES raw_messages (id),
    sender         TEXT,
    subject        TEXT    NOT NULL,
    body           TEXT    NOT NULL,
    created_at     BIGINT  NOT NULL
);
CREATE INDEX articles_ticket ON articles (ticket_id);
CREATE INDEX articles_message_id ON articles (message_id);

CREATE TABLE attachments (
    id           BIGSERIAL PRIMARY KEY,
    article_id   BIGINT  NOT NULL REFERENCES articles (id),
    name         TEXT,
    content_type TEXT    NOT NULL,
    size         BIGINT  NOT NULL
);
CREATE INDEX attachments_article ON attachments (article_id);

CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    ticket_id       BIGINT  REFERENCES tickets (id),
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
    raw_message_id  BIGINT  REFERENCES raw_messages (id),
    -- scheduled | sent | temporary_failure | permanent_failure | suppressed
    state           TEXT    NOT NULL,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    claimed_until   BIGINT,
    last_error      TEXT,
    created_at      BIGINT  NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);
CREATE INDEX outbox_recipient ON outbox (recipient, created_at);

CREATE TABLE audit (
    id             BIGSERIAL PRIMARY KEY,
    at             BIGINT  NOT NULL,
    ticket_id      BIGINT  REFERENCES tickets (id),
    raw_message_id BIGINT  REFERENCES raw_messages (id),
    actor          TEXT    NOT NULL,
    event          TEXT    NOT NULL,
    detail         TEXT    NOT NULL
);
CREATE INDEX audit_ticket ON audit (ticket_id);
