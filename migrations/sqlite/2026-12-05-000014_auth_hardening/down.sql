DROP INDEX sessions_challenge_jti_key;
ALTER TABLE sessions DROP COLUMN challenge_jti;
