-- SQLite twin of migrations/postgres (UUID_TEXT: TEXT affinity).
-- The legacy import's own keys — a row's fingerprint, a legacy case's
-- (person, consulate, country, year) — become named unique indexes instead
-- of primary keys: a primary key's index cannot be dropped, a named one
-- can, so a big import may set them aside and build them once at the end
-- (db::bulk_indexes). Only imports write these tables. Same rows, same
-- uniqueness.

CREATE TABLE legacy_rows_keyed (
    fingerprint  TEXT NOT NULL,
    import_id    UUID_TEXT NOT NULL REFERENCES imports (id),
    line         BIGINT NOT NULL,
    attention_id UUID_TEXT NOT NULL REFERENCES attentions (id)
);
INSERT INTO legacy_rows_keyed (fingerprint, import_id, line, attention_id)
    SELECT fingerprint, import_id, line, attention_id FROM legacy_rows ORDER BY rowid;
DROP TABLE legacy_rows;
ALTER TABLE legacy_rows_keyed RENAME TO legacy_rows;
CREATE UNIQUE INDEX legacy_rows_fingerprint_key ON legacy_rows (fingerprint);
CREATE INDEX legacy_rows_import_idx ON legacy_rows (import_id, line);

CREATE TABLE legacy_cases_keyed (
    person_id    UUID_TEXT NOT NULL REFERENCES persons (id),
    consulate_id UUID_TEXT NOT NULL REFERENCES consulates (id),
    country_code TEXT NOT NULL REFERENCES countries (alpha2),
    year         INTEGER NOT NULL,
    case_id      UUID_TEXT NOT NULL REFERENCES cases (id)
);
INSERT INTO legacy_cases_keyed (person_id, consulate_id, country_code, year, case_id)
    SELECT person_id, consulate_id, country_code, year, case_id FROM legacy_cases ORDER BY rowid;
DROP TABLE legacy_cases;
ALTER TABLE legacy_cases_keyed RENAME TO legacy_cases;
CREATE UNIQUE INDEX legacy_cases_key ON legacy_cases (person_id, consulate_id, country_code, year);
