-- Distribution lists (Verteiler, issue 16). migrations/sqlite/0006_lists.sql is the same
-- schema for SQLite. Instants are UTC microseconds.

CREATE TABLE lists (
    id          BIGSERIAL PRIMARY KEY,
    -- lower-case letters, digits, '-' and '_' (src/lists.rs, check_list_name)
    name        TEXT    NOT NULL UNIQUE,
    description TEXT    NOT NULL DEFAULT '',
    -- 1: members may unsubscribe (List-Unsubscribe); lists of the client and the
    -- municipalities must be informed and keep 0
    unsubscribe BIGINT  NOT NULL DEFAULT 0,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL
);

CREATE TABLE list_members (
    id              BIGSERIAL PRIMARY KEY,
    list_id         BIGINT  NOT NULL REFERENCES lists (id),
    -- as written, the domain lower-cased
    address         TEXT    NOT NULL,
    -- lower-case: one member per address, whatever its case
    address_key     TEXT    NOT NULL,
    name            TEXT    NOT NULL DEFAULT '',
    -- end_user | auftraggeber | municipality | staff
    role            TEXT    NOT NULL,
    organisation    TEXT    NOT NULL DEFAULT '',
    -- de | en
    language        TEXT    NOT NULL,
    -- notices to this member that bounced, and when it was flagged for bouncing (then skipped)
    bounces         BIGINT  NOT NULL DEFAULT 0,
    last_bounce_at  BIGINT,
    flagged_at      BIGINT,
    unsubscribed_at BIGINT,
    added_at        BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    UNIQUE (list_id, address_key)
);
CREATE INDEX list_members_address ON list_members (address_key);

-- A list includes the members of other lists; the store refuses an inclusion that would make
-- a cycle.
CREATE TABLE list_includes (
    list_id     BIGINT  NOT NULL REFERENCES lists (id),
    included_id BIGINT  NOT NULL REFERENCES lists (id),
    PRIMARY KEY (list_id, included_id)
);
CREATE INDEX list_includes_included ON list_includes (included_id);
