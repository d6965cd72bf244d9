-- SQLite twin of migrations/postgres (UUID_TEXT, TIMESTAMPTZ_TEXT: TEXT affinity).
-- Legacy MAPCE imports: each run, the rows it brought (fingerprinted, so a
-- re-run adds nothing), the rows it refused, and the one legacy case per
-- person, consulate and year that imported attentions belong to.

CREATE TABLE imports (
    id            UUID_TEXT PRIMARY KEY NOT NULL,
    source_name   TEXT NOT NULL,
    -- csv or xlsx
    format        TEXT NOT NULL CHECK (format IN ('csv', 'xlsx')),
    dry_run       BOOLEAN NOT NULL,
    atomic        BOOLEAN NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed')),
    rows_read     BIGINT NOT NULL,
    rows_imported BIGINT NOT NULL,
    -- already imported by an earlier run (same fingerprint)
    rows_skipped  BIGINT NOT NULL,
    rows_rejected BIGINT NOT NULL,
    -- the full report, JSON, once finished
    report        TEXT,
    error         TEXT,
    created_by    UUID_TEXT REFERENCES users (id),
    created_at    TIMESTAMPTZ_TEXT NOT NULL,
    finished_at   TIMESTAMPTZ_TEXT
);
CREATE INDEX imports_created_idx ON imports (created_at);

-- A legacy row that became an attention. The fingerprint hashes the row's
-- values and how many identical rows came before it in its file.
CREATE TABLE legacy_rows (
    fingerprint  TEXT PRIMARY KEY NOT NULL,
    import_id    UUID_TEXT NOT NULL REFERENCES imports (id),
    line         BIGINT NOT NULL,
    attention_id UUID_TEXT NOT NULL REFERENCES attentions (id)
);
CREATE INDEX legacy_rows_import_idx ON legacy_rows (import_id, line);

-- A row that was not imported: where, which field, what it said, why.
CREATE TABLE import_rejections (
    id        UUID_TEXT PRIMARY KEY NOT NULL,
    import_id UUID_TEXT NOT NULL REFERENCES imports (id),
    line      BIGINT NOT NULL,
    field     TEXT NOT NULL,
    value     TEXT NOT NULL,
    reason    TEXT NOT NULL
);
CREATE INDEX import_rejections_import_idx ON import_rejections (import_id, line);

-- Imported attentions go to one case per person, consulate, country and year.
CREATE TABLE legacy_cases (
    person_id    UUID_TEXT NOT NULL REFERENCES persons (id),
    consulate_id UUID_TEXT NOT NULL REFERENCES consulates (id),
    country_code TEXT NOT NULL REFERENCES countries (alpha2),
    year         INTEGER NOT NULL,
    case_id      UUID_TEXT NOT NULL REFERENCES cases (id),
    PRIMARY KEY (person_id, consulate_id, country_code, year)
);
