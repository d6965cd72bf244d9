-- Cases, attentions (what OEI.05 counts), protocol steps per case, tasks,
-- transfers, and idempotency keys for retried creations.

CREATE TABLE cases (
    id                     UUID PRIMARY KEY,
    person_id              UUID NOT NULL REFERENCES persons (id),
    consulate_id           UUID NOT NULL REFERENCES consulates (id),
    -- where it happened
    country_code           TEXT NOT NULL REFERENCES countries (alpha2),
    city                   TEXT,
    channel                TEXT NOT NULL CHECK (channel IN ('phone', 'e_appointment', 'consulate_window', 'institutional_email', 'in_person_ministry')),
    requester_kind         TEXT NOT NULL CHECK (requester_kind IN ('self', 'relative')),
    requester_name         TEXT,
    requester_relationship TEXT,
    requester_contact      TEXT,
    summary                TEXT NOT NULL,
    -- JSON array of vulnerability flags
    flags                  TEXT NOT NULL,
    -- hides identifying data outside the consulate; never silently cleared
    protected              BOOLEAN NOT NULL,
    status                 TEXT NOT NULL CHECK (status IN ('open', 'in_progress', 'on_hold', 'closed', 'reopened')),
    outcome                TEXT,
    closed_at              TIMESTAMPTZ,
    assigned_officer_id    UUID REFERENCES users (id),
    opened_at              TIMESTAMPTZ NOT NULL,
    created_by             UUID REFERENCES users (id),
    version                INTEGER NOT NULL,
    created_at             TIMESTAMPTZ NOT NULL,
    updated_at             TIMESTAMPTZ NOT NULL
);
-- GET /cases?consulate=&status= (the usual officer view)
CREATE INDEX cases_consulate_status_idx ON cases (consulate_id, status, opened_at);
-- a person's cases (history, scope, merges)
CREATE INDEX cases_person_idx ON cases (person_id);

CREATE TABLE attentions (
    id                UUID PRIMARY KEY,
    case_id           UUID NOT NULL REFERENCES cases (id),
    -- copies of the case's, so the indicator reads one table
    person_id         UUID NOT NULL REFERENCES persons (id),
    consulate_id      UUID NOT NULL REFERENCES consulates (id),
    attention_type_id UUID NOT NULL REFERENCES attention_types (id),
    attended_on       DATE NOT NULL,
    channel           TEXT NOT NULL,
    officer_id        UUID REFERENCES users (id),
    description       TEXT NOT NULL,
    late_registration BOOLEAN NOT NULL,
    voided_at         TIMESTAMPTZ,
    voided_by         UUID REFERENCES users (id),
    void_reason       TEXT,
    created_at        TIMESTAMPTZ NOT NULL
);
-- OEI.05: distinct persons with a non-voided attention in a period
CREATE INDEX attentions_period_idx ON attentions (attended_on, person_id);
CREATE INDEX attentions_case_idx ON attentions (case_id);
-- recoding on type merge; by-type figures
CREATE INDEX attentions_type_idx ON attentions (attention_type_id);
CREATE INDEX attentions_person_idx ON attentions (person_id);

-- The protocol steps a case must follow, copied from the protocol version
-- in force when the attention type was first recorded on the case.
CREATE TABLE case_steps (
    id                  UUID PRIMARY KEY,
    case_id             UUID NOT NULL REFERENCES cases (id),
    attention_type_id   UUID NOT NULL REFERENCES attention_types (id),
    protocol_version_id UUID NOT NULL REFERENCES protocol_versions (id),
    position            INTEGER NOT NULL,
    title_es            TEXT NOT NULL,
    title_en            TEXT NOT NULL,
    required_to_close   BOOLEAN NOT NULL,
    due_at              TIMESTAMPTZ,
    status              TEXT NOT NULL CHECK (status IN ('pending', 'done', 'waived')),
    done_at             TIMESTAMPTZ,
    waiver_reason       TEXT,
    decided_by          UUID REFERENCES users (id)
);
CREATE INDEX case_steps_case_idx ON case_steps (case_id);

CREATE TABLE tasks (
    id          UUID PRIMARY KEY,
    case_id     UUID NOT NULL REFERENCES cases (id),
    consulate_id UUID NOT NULL REFERENCES consulates (id),
    title       TEXT NOT NULL,
    assignee_id UUID REFERENCES users (id),
    due_at      TIMESTAMPTZ,
    done_at     TIMESTAMPTZ,
    case_step_id UUID REFERENCES case_steps (id),
    created_by  UUID REFERENCES users (id),
    created_at  TIMESTAMPTZ NOT NULL
);
-- GET /tasks?overdue=true per consulate and officer
CREATE INDEX tasks_open_idx ON tasks (consulate_id, done_at, due_at);
CREATE INDEX tasks_case_idx ON tasks (case_id);

CREATE TABLE case_transfers (
    id                UUID PRIMARY KEY,
    case_id           UUID NOT NULL REFERENCES cases (id),
    from_consulate_id UUID NOT NULL REFERENCES consulates (id),
    to_consulate_id   UUID NOT NULL REFERENCES consulates (id),
    reason            TEXT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('requested', 'accepted', 'rejected')),
    requested_by      UUID REFERENCES users (id),
    requested_at      TIMESTAMPTZ NOT NULL,
    decided_by        UUID REFERENCES users (id),
    decided_at        TIMESTAMPTZ
);
CREATE INDEX case_transfers_case_idx ON case_transfers (case_id);
CREATE INDEX case_transfers_to_idx ON case_transfers (to_consulate_id, status);

-- A retried creation with the same key returns the first answer.
CREATE TABLE idempotency_keys (
    user_id         UUID NOT NULL REFERENCES users (id),
    idem_key        TEXT NOT NULL,
    -- SHA-256 of method, path and body
    request_hash    TEXT NOT NULL,
    -- 0 while the first request is running
    response_status INTEGER NOT NULL,
    response_body   TEXT,
    created_at      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, idem_key)
);
-- expiry sweep (keys are kept at least 24 hours)
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
