-- SQLite twin of migrations/postgres (UUID_TEXT, TIMESTAMPTZ_TEXT: TEXT affinity).
-- Every coded value of a legacy import resolves through one machinery:
-- codes, names, and administrators' aliases per vocabulary (attention
-- types keep theirs in attention_type_labels).
--
-- This migration runs outside diesel's transaction (metadata.toml): SQLite
-- changes a CHECK constraint only by rebuilding the table, and a table
-- other tables reference is rebuilt with foreign keys off, in a transaction
-- of its own (https://sqlite.org/lang_altertable.html, "other kinds of
-- table schema changes"). The rows are copied as they are.
PRAGMA foreign_keys = OFF;
BEGIN;

-- An alias is a spelling officers use, folded (lower case, no accents, one
-- space) for the lookup. Removing one keeps the row (removed_at): the
-- audit log and the spellings it recoded still point at it.
CREATE TABLE vocabulary_aliases (
    id          UUID_TEXT PRIMARY KEY NOT NULL,
    vocabulary  TEXT NOT NULL CHECK (vocabulary IN ('channel', 'consulate', 'country', 'sex', 'document_type')),
    spelling    TEXT NOT NULL,
    folded      TEXT NOT NULL,
    -- channel, sex and document-type codes; a consulate's id; a country's alpha-2
    target      TEXT NOT NULL,
    created_by  UUID_TEXT REFERENCES users (id),
    created_at  TIMESTAMPTZ_TEXT NOT NULL,
    removed_at  TIMESTAMPTZ_TEXT,
    removed_by  UUID_TEXT REFERENCES users (id)
);
CREATE UNIQUE INDEX vocabulary_aliases_live_key ON vocabulary_aliases (vocabulary, folded) WHERE removed_at IS NULL;

-- A channel the row did not name, or named in a spelling nothing resolved:
-- the person still counts, in a group of its own.
CREATE TABLE cases_rebuilt (
    id                     UUID_TEXT PRIMARY KEY NOT NULL,
    person_id              UUID_TEXT NOT NULL REFERENCES persons (id),
    consulate_id           UUID_TEXT NOT NULL REFERENCES consulates (id),
    -- where it happened
    country_code           TEXT NOT NULL REFERENCES countries (alpha2),
    city                   TEXT,
    channel                TEXT NOT NULL CHECK (channel IN ('phone', 'e_appointment', 'consulate_window', 'institutional_email', 'in_person_ministry', 'not_recorded')),
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

-- The spelling an imported attention carried where nothing resolved it
-- (its channel is then `not_recorded`): an alias added later recodes the
-- attention, and its case, by the folded spelling.
CREATE TABLE attention_spellings (
    attention_id UUID_TEXT NOT NULL REFERENCES attentions (id),
    case_id      UUID_TEXT NOT NULL REFERENCES cases (id),
    vocabulary   TEXT NOT NULL CHECK (vocabulary IN ('channel')),
    spelling     TEXT NOT NULL,
    folded       TEXT NOT NULL,
    PRIMARY KEY (attention_id, vocabulary)
) WITHOUT ROWID;
CREATE INDEX attention_spellings_folded_idx ON attention_spellings (vocabulary, folded);

-- Offices are looked up by their English city too (New York, Geneva).
ALTER TABLE consulates ADD COLUMN city_en TEXT;

COMMIT;
PRAGMA foreign_keys = ON;
