CREATE TABLE person_match_keys_rowid (
    person_id UUID_TEXT NOT NULL REFERENCES persons (id),
    match_key TEXT NOT NULL,
    PRIMARY KEY (person_id, match_key)
);
INSERT INTO person_match_keys_rowid (person_id, match_key)
    SELECT person_id, match_key FROM person_match_keys;
DROP TABLE person_match_keys;
ALTER TABLE person_match_keys_rowid RENAME TO person_match_keys;
CREATE INDEX person_match_keys_key_idx ON person_match_keys (match_key);
