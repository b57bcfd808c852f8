-- The text of a notice, stored once per announcement and language (issue 16): an outbox row
-- of a fan-out names it instead of holding a copy of its own — about 4 KB a member (text,
-- HTML and calendar entry), 43 MB per notice to 10,000 members before. migrations/postgres/
-- 0014_announcement_bodies.sql is the same schema for PostgreSQL. (0013 is left to the reply
-- tokens of issue 17.)
CREATE TABLE announcement_bodies (
    id              INTEGER PRIMARY KEY,
    announcement_id INTEGER NOT NULL REFERENCES announcements (id),
    -- de | en
    language        TEXT    NOT NULL,
    body_text       TEXT    NOT NULL,
    body_html       TEXT,
    ical            TEXT,
    UNIQUE (announcement_id, language)
);

-- Set on the rows of a fan-out, whose body_text is then empty and body_html and ical NULL.
ALTER TABLE outbox ADD COLUMN body_id INTEGER REFERENCES announcement_bodies (id);
