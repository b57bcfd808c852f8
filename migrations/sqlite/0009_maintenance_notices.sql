-- The notices the daemon sends by itself (issue 16, item 3): at most one reminder and one
-- start notice per maintenance and calendar SEQUENCE, even with several instances racing.
CREATE UNIQUE INDEX announcements_once ON announcements (maintenance_id, kind, sequence)
    WHERE kind IN ('reminder', 'started');
