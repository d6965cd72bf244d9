-- Every coded value of a legacy import resolves through one machinery:
-- codes, names, and administrators' aliases per vocabulary (attention
-- types keep theirs in attention_type_labels).
--
-- An alias is a spelling officers use, folded (lower case, no accents, one
-- space) for the lookup. Removing one keeps the row (removed_at): the
-- audit log and the spellings it recoded still point at it.
CREATE TABLE vocabulary_aliases (
    id          UUID PRIMARY KEY NOT NULL,
    vocabulary  TEXT NOT NULL CHECK (vocabulary IN ('channel', 'consulate', 'country', 'sex', 'document_type')),
    spelling    TEXT NOT NULL,
    folded      TEXT NOT NULL,
    -- channel, sex and document-type codes; a consulate's id; a country's alpha-2
    target      TEXT NOT NULL,
    created_by  UUID REFERENCES users (id),
    created_at  TIMESTAMPTZ NOT NULL,
    removed_at  TIMESTAMPTZ,
    removed_by  UUID REFERENCES users (id)
);
CREATE UNIQUE INDEX vocabulary_aliases_live_key ON vocabulary_aliases (vocabulary, folded) WHERE removed_at IS NULL;

-- A channel the row did not name, or named in a spelling nothing resolved:
-- the person still counts, in a group of its own.
ALTER TABLE cases DROP CONSTRAINT cases_channel_check;
ALTER TABLE cases ADD CONSTRAINT cases_channel_check CHECK (channel IN ('phone', 'e_appointment', 'consulate_window', 'institutional_email', 'in_person_ministry', 'not_recorded'));

-- The spelling an imported attention carried where nothing resolved it
-- (its channel is then `not_recorded`): an alias added later recodes the
-- attention, and its case, by the folded spelling.
CREATE TABLE attention_spellings (
    attention_id UUID NOT NULL REFERENCES attentions (id),
    case_id      UUID NOT NULL REFERENCES cases (id),
    vocabulary   TEXT NOT NULL CHECK (vocabulary IN ('channel')),
    spelling     TEXT NOT NULL,
    folded       TEXT NOT NULL,
    PRIMARY KEY (attention_id, vocabulary)
);
CREATE INDEX attention_spellings_folded_idx ON attention_spellings (vocabulary, folded);

-- Offices are looked up by their English city too (New York, Geneva).
ALTER TABLE consulates ADD COLUMN city_en TEXT;
