-- Filing on a big store (issue 20): an index whose key is random in insert order (an address,
-- a Message-ID) takes every new row on a different leaf page, and on a store of millions of
-- rows each such page is read and written back once per batch: measured on SQLite with a
-- million tickets, a quarter of the filing time of a new mail went into the two indexes
-- below, though neither needs the rows it was written for. migrations/postgres/0023_outbox_keys.sql
-- is the same.

-- Only an announcement's rows need one row per member; the acknowledgements, staff copies and
-- notices (announcement_id NULL) were all in it too, each at its recipient's place.
DROP INDEX outbox_announcement_recipient;
CREATE UNIQUE INDEX outbox_announcement_recipient ON outbox (announcement_id, recipient)
    WHERE announcement_id IS NOT NULL;

-- The loop brake counts the automatic replies to a batch's senders within the last hour: an
-- index of the automatic replies in time order takes new rows at its end and gives the hour as
-- one range, whatever the store holds. (recipient, created_at) of every outgoing mail took
-- each new row at a random place.
DROP INDEX outbox_recipient;
CREATE INDEX outbox_auto_replies ON outbox (created_at, recipient, state)
    WHERE kind IN ('acknowledgement', 'auto_reply');
