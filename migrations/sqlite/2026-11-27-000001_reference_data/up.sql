-- SQLite twin of migrations/postgres: same tables, columns and indexes.
-- UUIDs are UUID_TEXT and timestamps TIMESTAMPTZ_TEXT (TEXT affinity) so the
-- schema-equivalence test can tell their class.

-- Reference data: the report's five regions, ISO 3166-1 countries, and
-- Peru's consular offices abroad with their jurisdictions.
-- Rows are loaded (idempotently) by the application after migrating, from
-- src/reference/*.tsv, so the data can grow without schema changes.

CREATE TABLE regions (
    code       TEXT PRIMARY KEY NOT NULL,
    name_es    TEXT NOT NULL,
    name_en    TEXT NOT NULL,
    sort_order INTEGER NOT NULL
);

CREATE TABLE countries (
    alpha2      TEXT PRIMARY KEY NOT NULL CHECK (length(alpha2) = 2),
    alpha3      TEXT NOT NULL CHECK (length(alpha3) = 3),
    name_es     TEXT NOT NULL,
    name_en     TEXT NOT NULL,
    region_code TEXT NOT NULL REFERENCES regions (code),
    -- accent- and case-folded names and codes; serves ?q= search on both backends
    search_key  TEXT NOT NULL
);
-- serves lookups by alpha-3 (legacy import) and guarantees uniqueness
CREATE UNIQUE INDEX countries_alpha3_key ON countries (alpha3);
-- serves GET /countries?region=
CREATE INDEX countries_region_idx ON countries (region_code);

CREATE TABLE consulates (
    id           UUID_TEXT PRIMARY KEY NOT NULL,
    code         TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('consulate_general', 'consulate', 'consular_section')),
    name_es      TEXT NOT NULL,
    name_en      TEXT NOT NULL,
    city         TEXT NOT NULL,
    country_code TEXT NOT NULL REFERENCES countries (alpha2),
    active       BOOLEAN NOT NULL DEFAULT TRUE,
    -- optimistic concurrency: the ETag is derived from it
    version      INTEGER NOT NULL DEFAULT 1,
    created_at   TIMESTAMPTZ_TEXT NOT NULL,
    updated_at   TIMESTAMPTZ_TEXT NOT NULL
);
-- stable public code; serves GET /consulates/{code}
CREATE UNIQUE INDEX consulates_code_key ON consulates (code);
-- serves GET /consulates?country= and ?region= (joined through countries)
CREATE INDEX consulates_country_idx ON consulates (country_code);

CREATE TABLE consulate_jurisdictions (
    consulate_id UUID_TEXT NOT NULL REFERENCES consulates (id),
    country_code TEXT NOT NULL REFERENCES countries (alpha2),
    PRIMARY KEY (consulate_id, country_code)
);
-- serves "which consulates serve country X" (?jurisdiction=, import checks)
CREATE INDEX consulate_jurisdictions_country_idx ON consulate_jurisdictions (country_code);
