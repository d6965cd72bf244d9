-- OEI.05: yearly targets, and the snapshots that freeze a closed year with
-- the persons behind every figure.

CREATE TABLE oei05_targets (
    year       INTEGER PRIMARY KEY,
    target     BIGINT NOT NULL CHECK (target >= 0),
    sense      TEXT NOT NULL CHECK (sense IN ('ascending', 'descending', 'maximum_permissible', 'minimum_permissible')),
    note       TEXT,
    set_by     UUID REFERENCES users (id),
    set_at     TIMESTAMPTZ NOT NULL
);

-- A closed year. Reopening never deletes: it stamps reopened_*; closing
-- again writes a new snapshot.
CREATE TABLE oei05_snapshots (
    id            UUID PRIMARY KEY,
    year          INTEGER NOT NULL,
    -- the full figures as served, JSON
    figures       TEXT NOT NULL,
    persons       BIGINT NOT NULL,
    attentions    BIGINT NOT NULL,
    closed_at     TIMESTAMPTZ NOT NULL,
    closed_by     UUID REFERENCES users (id),
    reopened_at   TIMESTAMPTZ,
    reopened_by   UUID REFERENCES users (id),
    reopen_reason TEXT
);
-- the live snapshot of a year
CREATE INDEX oei05_snapshots_year_idx ON oei05_snapshots (year, reopened_at);

-- Each person counted in a snapshot and the groups they were counted in
-- (JSON: sex, age group, regions, countries, consulates, types, categories,
-- channels): every cell's persons can be listed, and drift explained.
CREATE TABLE oei05_snapshot_persons (
    snapshot_id UUID NOT NULL REFERENCES oei05_snapshots (id),
    person_id   UUID NOT NULL REFERENCES persons (id),
    groups      TEXT NOT NULL,
    PRIMARY KEY (snapshot_id, person_id)
);
