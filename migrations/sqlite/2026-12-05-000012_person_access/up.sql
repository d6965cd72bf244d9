-- SQLite twin of migrations/postgres (UUID_TEXT, TIMESTAMPTZ_TEXT: TEXT affinity).
-- Which consulates may see a person beyond the one that registered them,
-- and which may see a protected person's identity (docs/access-model.md).
-- A row is a request until decided; a granted row is a grant until revoked.
-- Visibility follows from these rows, never from a case another consulate
-- can open on its own.

CREATE TABLE person_access (
    id              UUID_TEXT PRIMARY KEY NOT NULL,
    person_id       UUID_TEXT NOT NULL REFERENCES persons (id),
    consulate_id    UUID_TEXT NOT NULL REFERENCES consulates (id),
    -- holder: the consulate works with the person (identity unless protected
    -- elsewhere); protected: it also sees a protected person's identity
    level           TEXT NOT NULL CHECK (level IN ('holder', 'protected')),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'granted', 'refused', 'revoked')),
    -- request, first_protection (the first consulate to protect the person),
    -- transfer (a case accepted from another consulate) or migration
    source          TEXT NOT NULL CHECK (source IN ('request', 'first_protection', 'transfer', 'migration')),
    reason          TEXT NOT NULL,
    requested_by    UUID_TEXT REFERENCES users (id),
    requested_at    TIMESTAMPTZ_TEXT NOT NULL,
    decided_by      UUID_TEXT REFERENCES users (id),
    decided_at      TIMESTAMPTZ_TEXT,
    decision_reason TEXT
);
CREATE INDEX person_access_person_idx ON person_access (person_id, consulate_id);
CREATE INDEX person_access_status_idx ON person_access (status, requested_at);

-- Every consulate that protected a person before grants existed keeps
-- seeing that person's identity (ids: random version-4 UUIDs).
INSERT INTO person_access (id, person_id, consulate_id, level, status, source, reason, requested_at, decided_at)
SELECT lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4'
       || substr(lower(hex(randomblob(2))), 2) || '-a'
       || substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))),
       person_id, consulate_id, 'protected', 'granted', 'migration',
       'protected case opened before grants existed', MIN(created_at), MIN(created_at)
FROM cases WHERE protected
GROUP BY person_id, consulate_id;
