-- Staff answers relayed to the requester (issue 17, item 2): the relayed mail goes To the
-- requester with the Cc's of the ticket's first mail, one row and one mail for all of them
-- (space-separated addresses). migrations/sqlite and migrations/postgres hold the same.
ALTER TABLE outbox ADD COLUMN cc TEXT;
