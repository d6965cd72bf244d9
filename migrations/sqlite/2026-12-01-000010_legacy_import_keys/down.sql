CREATE TABLE legacy_rows_pk (
    fingerprint  TEXT PRIMARY KEY NOT NULL,
    import_id    UUID_TEXT NOT NULL REFERENCES imports (id),
    line         BIGINT NOT NULL,
    attention_id UUID_TEXT NOT NULL REFERENCES attentions (id)
);
INSERT INTO legacy_rows_pk SELECT fingerprint, import_id, line, attention_id FROM legacy_rows ORDER BY rowid;
DROP TABLE legacy_rows;
ALTER TABLE legacy_rows_pk RENAME TO legacy_rows;
CREATE INDEX legacy_rows_import_idx ON legacy_rows (import_id, line);

CREATE TABLE legacy_cases_pk (
    person_id    UUID_TEXT NOT NULL REFERENCES persons (id),
    consulate_id UUID_TEXT NOT NULL REFERENCES consulates (id),
    country_code TEXT NOT NULL REFERENCES countries (alpha2),
    year         INTEGER NOT NULL,
    case_id      UUID_TEXT NOT NULL REFERENCES cases (id),
    PRIMARY KEY (person_id, consulate_id, country_code, year)
);
INSERT INTO legacy_cases_pk SELECT person_id, consulate_id, country_code, year, case_id FROM legacy_cases ORDER BY rowid;
DROP TABLE legacy_cases;
ALTER TABLE legacy_cases_pk RENAME TO legacy_cases;
