-- The attention-type catalogue: one row per type, every spelling in one
-- alias table whose folded key is unique across all types (no duplicate
-- labels), merges kept as recoding records, and versioned protocols.

CREATE TABLE attention_types (
    id                   UUID PRIMARY KEY,
    code                 TEXT NOT NULL,
    name_es              TEXT NOT NULL,
    name_en              TEXT NOT NULL,
    category             TEXT NOT NULL,
    kind                 TEXT NOT NULL CHECK (kind IN ('legal', 'humanitarian')),
    description_es       TEXT NOT NULL,
    description_en       TEXT NOT NULL,
    who_may_ask_es       TEXT NOT NULL,
    who_may_ask_en       TEXT NOT NULL,
    requirements_es      TEXT NOT NULL,
    requirements_en      TEXT NOT NULL,
    -- JSON array of intake channel codes through which it can be requested
    channels             TEXT NOT NULL,
    protected_by_default BOOLEAN NOT NULL,
    status               TEXT NOT NULL CHECK (status IN ('active', 'deprecated', 'merged')),
    merged_into_id       UUID REFERENCES attention_types (id),
    version              INTEGER NOT NULL,
    created_at           TIMESTAMPTZ NOT NULL,
    updated_at           TIMESTAMPTZ NOT NULL
);
-- stable code; GET /attention-types/{code}
CREATE UNIQUE INDEX attention_types_code_key ON attention_types (code);
-- GET /attention-types?category=
CREATE INDEX attention_types_category_idx ON attention_types (category);

CREATE TABLE attention_type_aliases (
    id                UUID PRIMARY KEY,
    attention_type_id UUID NOT NULL REFERENCES attention_types (id),
    -- as written (a name, the code, a legacy spelling)
    label             TEXT NOT NULL,
    -- fold_key(label): NFKD, no accents, lowercase, no punctuation, single spaces
    folded            TEXT NOT NULL,
    -- name_es, name_en, code, alias
    source            TEXT NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL
);
-- no two spellings of different types may share a key; serves resolve
CREATE UNIQUE INDEX attention_type_aliases_folded_key ON attention_type_aliases (folded);
CREATE INDEX attention_type_aliases_type_idx ON attention_type_aliases (attention_type_id);

CREATE TABLE attention_type_merges (
    id               UUID PRIMARY KEY,
    duplicate_id     UUID NOT NULL REFERENCES attention_types (id),
    survivor_id      UUID NOT NULL REFERENCES attention_types (id),
    reason           TEXT NOT NULL,
    actor_id         UUID REFERENCES users (id),
    at               TIMESTAMPTZ NOT NULL,
    attentions_moved BIGINT NOT NULL,
    -- JSON array of the labels that became the survivor's aliases
    labels_moved     TEXT NOT NULL
);
CREATE INDEX attention_type_merges_survivor_idx ON attention_type_merges (survivor_id);

CREATE TABLE protocol_versions (
    id                UUID PRIMARY KEY,
    attention_type_id UUID NOT NULL REFERENCES attention_types (id),
    version           INTEGER NOT NULL,
    created_at        TIMESTAMPTZ NOT NULL,
    created_by        UUID REFERENCES users (id)
);
-- the current protocol of a type is its highest version
CREATE UNIQUE INDEX protocol_versions_type_version_key ON protocol_versions (attention_type_id, version);

CREATE TABLE protocol_steps (
    id                  UUID PRIMARY KEY,
    protocol_version_id UUID NOT NULL REFERENCES protocol_versions (id),
    position            INTEGER NOT NULL,
    title_es            TEXT NOT NULL,
    title_en            TEXT NOT NULL,
    required_to_close   BOOLEAN NOT NULL,
    -- deadline relative to case opening, e.g. 24 for first consular contact
    deadline_hours      INTEGER
);
CREATE UNIQUE INDEX protocol_steps_version_position_key ON protocol_steps (protocol_version_id, position);
