-- SQLite twin of migrations/postgres.
-- A second-factor challenge opens at most one session: the session keeps
-- the challenge's token id, unique.
ALTER TABLE sessions ADD COLUMN challenge_jti TEXT;
CREATE UNIQUE INDEX sessions_challenge_jti_key ON sessions (challenge_jti);
