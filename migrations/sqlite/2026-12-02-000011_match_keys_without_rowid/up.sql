-- SQLite twin of migrations/postgres (UUID_TEXT: TEXT affinity).
-- Match keys become a WITHOUT ROWID table: its rows are the primary key
-- (person, key) and nothing else, so the rowid table and the key's index
-- were two B-trees of the same ~8 entries per person, where one does. A
-- million-row legacy import writes ~3.1 million keys: inserting them took
-- 2.5 s into the rowid table and its index, 0.8 s into this one (sqlite3
-- shell, same rows in the same order). Same columns, same keys.

CREATE TABLE person_match_keys_clustered (
    person_id UUID_TEXT NOT NULL REFERENCES persons (id),
    match_key TEXT NOT NULL,
    PRIMARY KEY (person_id, match_key)
) WITHOUT ROWID;
INSERT INTO person_match_keys_clustered (person_id, match_key)
    SELECT person_id, match_key FROM person_match_keys;
DROP TABLE person_match_keys;
ALTER TABLE person_match_keys_clustered RENAME TO person_match_keys;
CREATE INDEX person_match_keys_key_idx ON person_match_keys (match_key);
