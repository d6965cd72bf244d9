-- Persons (connacionales), their documents, match keys for deduplication,
-- the review queue of likely duplicates, reversible merges, and the
-- timeline that every person and case event is written to.

CREATE TABLE persons (
    id                      UUID PRIMARY KEY,
    given_names             TEXT NOT NULL,
    first_surname           TEXT NOT NULL,
    second_surname          TEXT,
    birth_date              DATE,
    sex                     TEXT NOT NULL CHECK (sex IN ('female', 'male', 'not_recorded')),
    -- JSON array of ISO alpha-2 codes; Peruvian by default
    nationalities           TEXT NOT NULL,
    phone                   TEXT,
    email                   TEXT,
    address_abroad          TEXT,
    -- folded name tokens, sorted: order-, accent- and case-insensitive search
    name_key                TEXT NOT NULL,
    -- the consulate whose officer registered the person (visibility)
    registered_consulate_id UUID REFERENCES consulates (id),
    -- tombstone of a merge: reads say where the person went
    merged_into_id          UUID REFERENCES persons (id),
    version                 INTEGER NOT NULL,
    created_at              TIMESTAMPTZ NOT NULL,
    updated_at              TIMESTAMPTZ NOT NULL
);
-- name search (prefix of sorted tokens) and listing
CREATE INDEX persons_name_key_idx ON persons (name_key);
CREATE INDEX persons_registered_consulate_idx ON persons (registered_consulate_id);

CREATE TABLE person_documents (
    id              UUID PRIMARY KEY,
    person_id       UUID NOT NULL REFERENCES persons (id),
    doc_type        TEXT NOT NULL CHECK (doc_type IN ('dni', 'carne_extranjeria', 'passport', 'other')),
    -- normalised: uppercase, no spaces or hyphens
    number          TEXT NOT NULL,
    issuing_country TEXT NOT NULL REFERENCES countries (alpha2),
    created_at      TIMESTAMPTZ NOT NULL
);
-- a document identifies one person: search by exact number, 409 at intake
CREATE UNIQUE INDEX person_documents_key ON person_documents (doc_type, number, issuing_country);
CREATE INDEX person_documents_number_idx ON person_documents (number);
CREATE INDEX person_documents_person_idx ON person_documents (person_id);

-- Blocking keys: a duplicate candidate shares at least one key (a pair of
-- name tokens, a phone, an e-mail), so matching reads a few rows, not all.
CREATE TABLE person_match_keys (
    person_id UUID NOT NULL REFERENCES persons (id),
    match_key TEXT NOT NULL,
    PRIMARY KEY (person_id, match_key)
);
CREATE INDEX person_match_keys_key_idx ON person_match_keys (match_key);

CREATE TABLE duplicate_pairs (
    id              UUID PRIMARY KEY,
    -- ordered: person_a < person_b, so a pair is stored once
    person_a        UUID NOT NULL REFERENCES persons (id),
    person_b        UUID NOT NULL REFERENCES persons (id),
    score           DOUBLE PRECISION NOT NULL,
    -- JSON array of reasons
    reasons         TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('open', 'not_duplicate', 'merged')),
    -- intake (confirmed new person) or scan
    source          TEXT NOT NULL,
    decided_by      UUID REFERENCES users (id),
    decided_at      TIMESTAMPTZ,
    decision_reason TEXT,
    created_at      TIMESTAMPTZ NOT NULL
);
CREATE UNIQUE INDEX duplicate_pairs_pair_key ON duplicate_pairs (person_a, person_b);
-- GET /duplicates?status=open
CREATE INDEX duplicate_pairs_status_idx ON duplicate_pairs (status, created_at);

CREATE TABLE person_merges (
    id          UUID PRIMARY KEY,
    survivor_id UUID NOT NULL REFERENCES persons (id),
    merged_id   UUID NOT NULL REFERENCES persons (id),
    reason      TEXT NOT NULL,
    actor_id    UUID REFERENCES users (id),
    at          TIMESTAMPTZ NOT NULL,
    -- JSON: what moved and the prior values, enough to undo exactly
    snapshot    TEXT NOT NULL,
    undone_at   TIMESTAMPTZ,
    undone_by   UUID REFERENCES users (id)
);
CREATE INDEX person_merges_survivor_idx ON person_merges (survivor_id);
CREATE INDEX person_merges_merged_idx ON person_merges (merged_id);

-- Every event about a person or one of their cases, in one place: the
-- individual history is a range scan of this table.
CREATE TABLE timeline_events (
    id           UUID PRIMARY KEY,
    person_id    UUID NOT NULL REFERENCES persons (id),
    case_id      UUID,
    consulate_id UUID REFERENCES consulates (id),
    kind         TEXT NOT NULL,
    at           TIMESTAMPTZ NOT NULL,
    actor_id     UUID REFERENCES users (id),
    -- attention type, when the event is about an attention
    attention_type_id UUID REFERENCES attention_types (id),
    -- JSON object: field-level from/to values, notes, amounts…
    payload      TEXT NOT NULL
);
-- history of a person in time order (and keyset pagination)
CREATE INDEX timeline_events_person_idx ON timeline_events (person_id, at, id);
CREATE INDEX timeline_events_case_idx ON timeline_events (case_id, at);
