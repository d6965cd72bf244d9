-- SQLite twin of migrations/postgres (UUID_TEXT, TIMESTAMPTZ_TEXT: TEXT affinity).
-- Identity, sessions, login throttling and the tamper-evident audit log.

CREATE TABLE users (
    id                 UUID_TEXT PRIMARY KEY NOT NULL,
    -- stored lowercase; login is case-insensitive
    username           TEXT NOT NULL,
    display_name       TEXT NOT NULL,
    role               TEXT NOT NULL CHECK (role IN ('officer', 'supervisor', 'hq_analyst', 'planner', 'admin')),
    -- required for officer and supervisor, forbidden otherwise
    consulate_id       UUID_TEXT REFERENCES consulates (id),
    active             BOOLEAN NOT NULL DEFAULT TRUE,
    -- argon2id PHC string
    password_hash      TEXT NOT NULL,
    password_changed_at TIMESTAMPTZ_TEXT NOT NULL,
    -- base32 TOTP secret: pending until confirmed, then enabled
    totp_secret        TEXT,
    totp_enabled       BOOLEAN NOT NULL DEFAULT FALSE,
    -- last accepted TOTP time step, so a code cannot be replayed
    totp_last_step     BIGINT,
    version            INTEGER NOT NULL DEFAULT 1,
    created_at         TIMESTAMPTZ_TEXT NOT NULL,
    updated_at         TIMESTAMPTZ_TEXT NOT NULL,
    CHECK ((role IN ('officer', 'supervisor')) = (consulate_id IS NOT NULL))
);
-- login by username; unique
CREATE UNIQUE INDEX users_username_key ON users (username);
-- supervisors list their consulate's users; GET /users?consulate=
CREATE INDEX users_consulate_idx ON users (consulate_id);

CREATE TABLE recovery_codes (
    id         UUID_TEXT PRIMARY KEY NOT NULL,
    user_id    UUID_TEXT NOT NULL REFERENCES users (id),
    -- SHA-256 of the code, hex
    code_hash  TEXT NOT NULL,
    used_at    TIMESTAMPTZ_TEXT,
    created_at TIMESTAMPTZ_TEXT NOT NULL
);
-- a login with a recovery code looks up the user's unused codes
CREATE INDEX recovery_codes_user_idx ON recovery_codes (user_id);

CREATE TABLE sessions (
    id              UUID_TEXT PRIMARY KEY NOT NULL,
    user_id         UUID_TEXT NOT NULL REFERENCES users (id),
    created_at      TIMESTAMPTZ_TEXT NOT NULL,
    -- last refresh; the idle limit counts from here
    last_refresh_at TIMESTAMPTZ_TEXT NOT NULL,
    -- absolute end
    expires_at      TIMESTAMPTZ_TEXT NOT NULL,
    revoked_at      TIMESTAMPTZ_TEXT,
    revoked_reason  TEXT,
    -- set when a role that requires TOTP logged in without it: only
    -- enrolment endpoints are open to the session
    second_factor   BOOLEAN NOT NULL,
    client_addr     TEXT
);
-- revoking every session of a user (password change, deactivation)
CREATE INDEX sessions_user_idx ON sessions (user_id);

CREATE TABLE refresh_tokens (
    id         UUID_TEXT PRIMARY KEY NOT NULL,
    session_id UUID_TEXT NOT NULL REFERENCES sessions (id),
    -- SHA-256 of the opaque token, hex; the token itself is never stored
    token_hash TEXT NOT NULL,
    created_at TIMESTAMPTZ_TEXT NOT NULL,
    -- set when rotated; presenting it again revokes the session
    used_at    TIMESTAMPTZ_TEXT
);
-- lookup on POST /auth/refresh
CREATE UNIQUE INDEX refresh_tokens_hash_key ON refresh_tokens (token_hash);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);

CREATE TABLE login_failures (
    id          UUID_TEXT PRIMARY KEY NOT NULL,
    -- folded username as typed, whether or not the account exists
    username    TEXT NOT NULL,
    client_addr TEXT NOT NULL,
    at          TIMESTAMPTZ_TEXT NOT NULL
);
-- throttling: failures per account and per address in the last 15 minutes
CREATE INDEX login_failures_username_idx ON login_failures (username, at);
CREATE INDEX login_failures_addr_idx ON login_failures (client_addr, at);

-- Append-only audit log. Each row carries the hash of the previous row;
-- `mapce audit verify` recomputes the chain.
CREATE TABLE audit_log (
    id                UUID_TEXT PRIMARY KEY NOT NULL,
    seq               BIGINT NOT NULL,
    at                TIMESTAMPTZ_TEXT NOT NULL,
    actor_id          UUID_TEXT,
    actor_username    TEXT,
    actor_role        TEXT,
    actor_consulate_id UUID_TEXT,
    action            TEXT NOT NULL,
    resource_type     TEXT NOT NULL,
    resource_id       TEXT,
    subject_person_id UUID_TEXT,
    request_id        TEXT,
    client_addr       TEXT,
    outcome           TEXT NOT NULL CHECK (outcome IN ('success', 'failure', 'denied')),
    -- JSON object with non-secret context (changed fields, reasons)
    details           TEXT NOT NULL,
    prev_hash         TEXT NOT NULL,
    hash              TEXT NOT NULL
);
-- chain order; verification walks it
CREATE UNIQUE INDEX audit_log_seq_key ON audit_log (seq);
-- GET /audit?actor= and ?subject=
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, seq);
CREATE INDEX audit_log_subject_idx ON audit_log (subject_person_id, seq);
CREATE INDEX audit_log_resource_idx ON audit_log (resource_type, resource_id, seq);

-- The chain's head: appends lock this one row, so rows are chained in
-- commit order on both backends.
CREATE TABLE audit_head (
    -- BIGINT, not INTEGER: an INTEGER PRIMARY KEY would be a rowid alias
    -- without the index PostgreSQL has, and the schemas would differ.
    id   BIGINT PRIMARY KEY NOT NULL,
    seq  BIGINT NOT NULL,
    hash TEXT NOT NULL
);
INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
