-- SQLite twin of migrations/postgres.
-- Audit integrity that survives a database writer: each new row carries an
-- HMAC of its hash under a key the database does not hold (MAPCE_AUDIT_KEY
-- or MAPCE_DATA_DIR/audit-key), and so does the head, with the row from
-- which every row is keyed. Rows and the head are refused UPDATE and DELETE
-- by the database itself; the head only moves forward.

ALTER TABLE audit_log ADD COLUMN mac TEXT;
ALTER TABLE audit_head ADD COLUMN keyed_from BIGINT;
ALTER TABLE audit_head ADD COLUMN mac TEXT;

CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE refused');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only: DELETE refused');
END;
CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
BEGIN
    SELECT RAISE(ABORT, 'the audit head is never removed: DELETE refused');
END;
CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head
WHEN NEW.id <> OLD.id OR NEW.seq < OLD.seq OR NEW.seq > OLD.seq + 1
     OR (OLD.keyed_from IS NOT NULL AND NEW.keyed_from IS NOT OLD.keyed_from)
BEGIN
    SELECT RAISE(ABORT, 'the audit head only moves forward');
END;

-- GET /lookups: an action's rows in a time window (document lookups per user).
CREATE INDEX audit_log_action_idx ON audit_log (action, at);
