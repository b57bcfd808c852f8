-- The follow-up lookup by Message-ID in two tiers (issue 20, item 4). An index over every
-- article's Message-ID takes each new key at a random place: on a store of three million
-- articles every insert read and wrote back a leaf page of its own (measured: 10,000 inserts/s
-- against 50,000–60,000 on a new store; docs/experiments/two_tier_index.py). New keys now go
-- to a small table whose pages stay in the cache, and the store moves them into the big one
-- (a table keyed by Message-ID, without rowid) in sorted key ranges once there are enough of
-- them, each range touching a run of neighbouring pages once (12 µs per key on that store).
-- A lookup asks both tiers. Triggers keep the tiers in step with `articles`, whatever writes it.
-- PostgreSQL keeps its index (migrations/postgres/0024_message_id_tiers.sql says why).
DROP INDEX articles_message_id;

CREATE TABLE message_ids (
    message_id TEXT    NOT NULL,
    article_id INTEGER NOT NULL,
    PRIMARY KEY (message_id, article_id)
) WITHOUT ROWID;

INSERT INTO message_ids (message_id, article_id)
    SELECT message_id, id FROM articles WHERE message_id IS NOT NULL ORDER BY message_id, id;

CREATE TABLE message_ids_recent (
    id         INTEGER PRIMARY KEY,
    message_id TEXT    NOT NULL,
    article_id INTEGER NOT NULL
);
CREATE INDEX message_ids_recent_key ON message_ids_recent (message_id);

-- Our own mail's Message-IDs begin with a UUIDv7, i.e. with the time: they arrive in key order
-- and go straight into the big tier, at one place.
CREATE TRIGGER articles_message_id_insert AFTER INSERT ON articles
    WHEN NEW.message_id IS NOT NULL AND NEW.kind <> 'outbound'
BEGIN
    INSERT INTO message_ids_recent (message_id, article_id) VALUES (NEW.message_id, NEW.id);
END;

CREATE TRIGGER articles_outbound_message_id_insert AFTER INSERT ON articles
    WHEN NEW.message_id IS NOT NULL AND NEW.kind = 'outbound'
BEGIN
    INSERT INTO message_ids (message_id, article_id) VALUES (NEW.message_id, NEW.id);
END;

CREATE TRIGGER articles_message_id_update AFTER UPDATE OF message_id ON articles
    WHEN OLD.message_id IS NOT NEW.message_id
BEGIN
    DELETE FROM message_ids WHERE message_id = OLD.message_id AND article_id = OLD.id;
    DELETE FROM message_ids_recent WHERE message_id = OLD.message_id AND article_id = OLD.id;
    INSERT INTO message_ids_recent (message_id, article_id)
        SELECT NEW.message_id, NEW.id WHERE NEW.message_id IS NOT NULL;
END;

CREATE TRIGGER articles_message_id_delete AFTER DELETE ON articles
    WHEN OLD.message_id IS NOT NULL
BEGIN
    DELETE FROM message_ids WHERE message_id = OLD.message_id AND article_id = OLD.id;
    DELETE FROM message_ids_recent WHERE message_id = OLD.message_id AND article_id = OLD.id;
END;
