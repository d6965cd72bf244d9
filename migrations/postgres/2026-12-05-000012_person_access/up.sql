-- Which consulates may see a person beyond the one that registered them,
-- and which may see a protected person's identity (docs/access-model.md).
-- A row is a request until decided; a granted row is a grant until revoked.
-- Visibility follows from these rows, never from a case another consulate
-- can open on its own.

CREATE TABLE person_access (
    id              UUID PRIMARY KEY,
    person_id       UUID NOT NULL REFERENCES persons (id),
    consulate_id    UUID NOT NULL REFERENCES consulates (id),
    -- holder: the consulate works with the person (identity unless protected
    -- elsewhere); protected: it also sees a protected person's identity
    level           TEXT NOT NULL CHECK (level IN ('holder', 'protected')),
    status          TEXT NOT NULL CHECK (status IN ('pending', 'granted', 'refused', 'revoked')),
    -- request, first_protection (the first consulate to protect the person),
    -- transfer (a case accepted from another consulate) or migration
    source          TEXT NOT NULL CHECK (source IN ('request', 'first_protection', 'transfer', 'migration')),
    reason          TEXT NOT NULL,
    requested_by    UUID REFERENCES users (id),
    requested_at    TIMESTAMPTZ NOT NULL,
    decided_by      UUID REFERENCES users (id),
    decided_at      TIMESTAMPTZ,
    decision_reason TEXT
);
CREATE INDEX person_access_person_idx ON person_access (person_id, consulate_id);
CREATE INDEX person_access_status_idx ON person_access (status, requested_at);

-- Every consulate that protected a person before grants existed keeps
-- seeing that person's identity.
INSERT INTO person_access (id, person_id, consulate_id, level, status, source, reason, requested_at, decided_at)
SELECT gen_random_uuid(), person_id, consulate_id, 'protected', 'granted', 'migration',
       'protected case opened before grants existed', MIN(created_at), MIN(created_at)
FROM cases WHERE protected
GROUP BY person_id, consulate_id;
