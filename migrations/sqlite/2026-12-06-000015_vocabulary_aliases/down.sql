-- Fails (the CHECK) while any case has the channel `not_recorded`.
PRAGMA foreign_keys = OFF;
BEGIN;
ALTER TABLE consulates DROP COLUMN city_en;
DROP TABLE attention_spellings;
CREATE TABLE cases_rebuilt (
    id                     UUID_TEXT PRIMARY KEY NOT NULL,
    person_id              UUID_TEXT NOT NULL REFERENCES persons (id),
    consulate_id           UUID_TEXT NOT NULL REFERENCES consulates (id),
    -- where it happened
    country_code           TEXT NOT NULL REFERENCES countries (alpha2),
    city                   TEXT,
    channel                TEXT NOT NULL CHECK (channel IN ('phone', 'e_appointment', 'consulate_window', 'institutional_email', 'in_person_ministry')),
    requester_kind         TEXT NOT NULL CHECK (requester_kind IN ('self', 'relative')),
    requester_name         TEXT,
    requester_relationship TEXT,
    requester_contact      TEXT,
    summary                TEXT NOT NULL,
    -- JSON array of vulnerability flags
    flags                  TEXT NOT NULL,
    -- hides identifying data outside the consulate; never silently cleared
    protected              BOOLEAN NOT NULL,
    status                 TEXT NOT NULL CHECK (status IN ('open', 'in_progress', 'on_hold', 'closed', 'reopened')),
    outcome                TEXT,
    closed_at              TIMESTAMPTZ_TEXT,
    assigned_officer_id    UUID_TEXT REFERENCES users (id),
    opened_at              TIMESTAMPTZ_TEXT NOT NULL,
    created_by             UUID_TEXT REFERENCES users (id),
    version                INTEGER NOT NULL,
    created_at             TIMESTAMPTZ_TEXT NOT NULL,
    updated_at             TIMESTAMPTZ_TEXT NOT NULL
);
INSERT INTO cases_rebuilt SELECT * FROM cases;
DROP TABLE cases;
ALTER TABLE cases_rebuilt RENAME TO cases;
CREATE INDEX cases_consulate_status_idx ON cases (consulate_id, status, opened_at);
CREATE INDEX cases_person_idx ON cases (person_id);
DROP TABLE vocabulary_aliases;
COMMIT;
PRAGMA foreign_keys = ON;
