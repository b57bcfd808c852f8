-- A middle tier between SQLite's small tier of new Message-IDs and the big one (issue 20).
-- Moving the small tier's 16,384 keys straight into the big index of a million-ticket store
-- (three million keys) rewrote about 2,900 of its 32 KiB leaf pages each time, ~5.8 KB of
-- write per key, twice (WAL and checkpoint). The small tier now moves into this one, a few
-- hundred pages, and this one into the big index once it holds 262,144 keys, when each of the
-- big index's pages is rewritten about once for all of them. Filled only by sorted moves, so
-- it has no row ids of its own. The triggers keep all three tiers following
-- articles.message_id.
CREATE TABLE message_ids_middle (
    message_id TEXT    NOT NULL,
    article_id INTEGER NOT NULL,
    PRIMARY KEY (message_id, article_id)
) WITHOUT ROWID;

-- How many keys the middle tier holds, kept by the moves (counting them would read the
-- tier): raised by each move into it, set to 0 when its own move has emptied it, so that a
-- move cut short is taken up. Deletions by the triggers below leave it higher than the truth,
-- which moves the tier on a little early.
CREATE TABLE message_id_tiers (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    middle INTEGER NOT NULL
);
INSERT INTO message_id_tiers (id, middle) VALUES (1, 0);

DROP TRIGGER articles_message_id_update;
CREATE TRIGGER articles_message_id_update AFTER UPDATE OF message_id ON articles
    WHEN OLD.message_id IS NOT NEW.message_id
BEGIN
    DELETE FROM message_ids WHERE message_id = OLD.message_id AND article_id = OLD.id;
    DELETE FROM message_ids_middle WHERE message_id = OLD.message_id AND article_id = OLD.id;
    DELETE FROM message_ids_recent WHERE message_id = OLD.message_id AND article_id = OLD.id;
    INSERT INTO message_ids_recent (message_id, article_id)
        SELECT NEW.message_id, NEW.id WHERE NEW.message_id IS NOT NULL;
END;

DROP TRIGGER articles_message_id_delete;
CREATE TRIGGER articles_message_id_delete AFTER DELETE ON articles
    WHEN OLD.message_id IS NOT NULL
BEGIN
    DELETE FROM message_ids WHERE message_id = OLD.message_id AND article_id = OLD.id;
    DELETE FROM message_ids_middle WHERE message_id = OLD.message_id AND article_id = OLD.id;
    DELETE FROM message_ids_recent WHERE message_id = OLD.message_id AND article_id = OLD.id;
END;
