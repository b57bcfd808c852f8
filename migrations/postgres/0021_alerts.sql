-- Monitoring alerts and problems (issue 19). migrations/sqlite/0021_alerts.sql is the same
-- schema for SQLite. Instants are UTC microseconds.

-- One row per alert key (then.alert_key): the incident ticket of its latest problem, where
-- it stands, and what flapping and repeats are counted from.
CREATE TABLE alerts (
    id              BIGSERIAL PRIMARY KEY,
    -- e.g. icinga:web01.example/https
    alert_key       TEXT    NOT NULL UNIQUE,
    queue           TEXT    NOT NULL,
    platform        TEXT,
    ticket_id       BIGINT  NOT NULL REFERENCES tickets (id),
    -- the platform's incident the key belongs to (opened by it, or joined)
    incident_id     BIGINT  REFERENCES incidents (id),
    -- problem | recovered
    state           TEXT    NOT NULL,
    -- the monitoring's severity word, e.g. critical
    severity        TEXT,
    -- the alert's own times: the latest problem's start, its recovery, its acknowledgement
    problem_at      BIGINT  NOT NULL,
    recovered_at    BIGINT,
    acknowledged_at BIGINT,
    -- problem mails since the state last changed; every mail of the key on its ticket
    repeats         BIGINT  NOT NULL,
    mails           BIGINT  NOT NULL,
    -- alert times of the recent changes of state, space-separated: the flapping window
    changes         TEXT    NOT NULL,
    -- set while the key changes state too often: per-change notices wait until it is stable
    flapping_since  BIGINT,
    -- when (filed) the state last changed, and the last mail came
    last_change_at  BIGINT  NOT NULL,
    last_mail_at    BIGINT  NOT NULL,
    created_at      BIGINT  NOT NULL
);
CREATE INDEX alerts_flapping ON alerts (last_change_at) WHERE flapping_since IS NOT NULL;
CREATE INDEX alerts_incident ON alerts (incident_id);
CREATE INDEX alerts_ticket ON alerts (ticket_id);

-- Problems (problem management): incidents that recur with one fingerprint.
CREATE TABLE problems (
    id          BIGSERIAL PRIMARY KEY,
    -- alert:<key>, or subject:<queue>:<hash of the normalised subject>
    fingerprint TEXT    NOT NULL,
    queue       TEXT    NOT NULL,
    platform    TEXT,
    -- the alert key; NULL: the subject of its latest ticket names it
    title       TEXT,
    -- open | closed
    state       TEXT    NOT NULL,
    opened_at   BIGINT  NOT NULL,
    -- the escalation address told (once, with the record), or NULL when the queue has none
    notified_to TEXT,
    notified_at BIGINT,
    closed_at   BIGINT,
    closed_by   TEXT,
    close_note  TEXT
);
-- At most one open problem per fingerprint, whatever instances file at once.
CREATE UNIQUE INDEX problems_open_once ON problems (fingerprint) WHERE state = 'open';
CREATE INDEX problems_platform ON problems (platform);

-- Every occurrence of an incident: a new ticket of class 1-3, or a monitoring key's problem
-- that began again (its ticket reopened); with its fingerprint and the problem it became part
-- of.
CREATE TABLE ticket_fingerprints (
    id          BIGSERIAL PRIMARY KEY,
    fingerprint TEXT    NOT NULL,
    ticket_id   BIGINT  NOT NULL REFERENCES tickets (id),
    queue       TEXT    NOT NULL,
    platform    TEXT,
    at          BIGINT  NOT NULL,
    problem_id  BIGINT  REFERENCES problems (id)
);
CREATE INDEX ticket_fingerprints_recent ON ticket_fingerprints (fingerprint, at);
CREATE INDEX ticket_fingerprints_problem ON ticket_fingerprints (problem_id);
CREATE INDEX ticket_fingerprints_ticket ON ticket_fingerprints (ticket_id);

-- Incidents that monitoring opens: the key that opened it; whether its notices may go to the
-- lists (confirmed by an operator, or at once where the platform says alert_notices = "auto");
-- and the state the lists last heard, so that the notice due is the one that differs.
ALTER TABLE incidents ADD COLUMN alert_key TEXT;
ALTER TABLE incidents ADD COLUMN confirmed_at BIGINT;
ALTER TABLE incidents ADD COLUMN confirmed_by TEXT;
ALTER TABLE incidents ADD COLUMN announced_state TEXT;
UPDATE incidents SET confirmed_at = created_at, confirmed_by = 'poststelle', announced_state = state;
CREATE INDEX incidents_unannounced ON incidents (id)
    WHERE confirmed_at IS NOT NULL AND (announced_state IS NULL OR announced_state <> state);
