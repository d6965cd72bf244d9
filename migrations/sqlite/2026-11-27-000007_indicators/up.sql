-- SQLite twin of migrations/postgres (UUID_TEXT, TIMESTAMPTZ_TEXT, DATE_TEXT: TEXT affinity).
-- OEI.05: yearly targets, and the snapshots that freeze a closed year with
-- the persons behind every figure.

CREATE TABLE oei05_targets (
    -- BIGINT, not INTEGER: an INTEGER PRIMARY KEY would be a rowid alias
    -- without the unique index PostgreSQL has
    year       BIGINT PRIMARY KEY NOT NULL,
    target     BIGINT NOT NULL CHECK (target >= 0),
    sense      TEXT NOT NULL CHECK (sense IN ('ascending', 'descending', 'maximum_permissible', 'minimum_permissible')),
    note       TEXT,
    set_by     UUID_TEXT REFERENCES users (id),
    set_at     TIMESTAMPTZ_TEXT NOT NULL
);

-- A closed year. Reopening never deletes: it stamps reopened_*; closing
-- again writes a new snapshot.
CREATE TABLE oei05_snapshots (
    id            UUID_TEXT PRIMARY KEY NOT NULL,
    year          INTEGER NOT NULL,
    -- the full figures as served, JSON
    figures       TEXT NOT NULL,
    persons       BIGINT NOT NULL,
    attentions    BIGINT NOT NULL,
    closed_at     TIMESTAMPTZ_TEXT NOT NULL,
    closed_by     UUID_TEXT REFERENCES users (id),
    reopened_at   TIMESTAMPTZ_TEXT,
    reopened_by   UUID_TEXT REFERENCES users (id),
    reopen_reason TEXT
);
-- the live snapshot of a year
CREATE INDEX oei05_snapshots_year_idx ON oei05_snapshots (year, reopened_at);

-- Each person counted in a snapshot and the groups they were counted in
-- (JSON: sex, age group, regions, countries, consulates, types, categories,
-- channels): every cell's persons can be listed, and drift explained.
CREATE TABLE oei05_snapshot_persons (
    snapshot_id UUID_TEXT NOT NULL REFERENCES oei05_snapshots (id),
    person_id   UUID_TEXT NOT NULL REFERENCES persons (id),
    groups      TEXT NOT NULL,
    PRIMARY KEY (snapshot_id, person_id)
);
