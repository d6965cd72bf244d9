-- The legacy import's own keys — a row's fingerprint, a legacy case's
-- (person, consulate, country, year) — become named unique indexes instead
-- of primary keys, as on SQLite, where a primary key's index cannot be
-- dropped and a big import sets these aside (db::bulk_indexes; on
-- PostgreSQL they stay). Same rows, same uniqueness.

ALTER TABLE legacy_rows DROP CONSTRAINT legacy_rows_pkey;
ALTER TABLE legacy_rows ALTER COLUMN fingerprint SET NOT NULL;
CREATE UNIQUE INDEX legacy_rows_fingerprint_key ON legacy_rows (fingerprint);

ALTER TABLE legacy_cases DROP CONSTRAINT legacy_cases_pkey;
CREATE UNIQUE INDEX legacy_cases_key ON legacy_cases (person_id, consulate_id, country_code, year);
