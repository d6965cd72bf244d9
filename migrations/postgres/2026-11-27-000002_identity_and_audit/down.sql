DROP TABLE audit_head;
DROP TABLE audit_log;
DROP TABLE login_failures;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE recovery_codes;
DROP TABLE users;
