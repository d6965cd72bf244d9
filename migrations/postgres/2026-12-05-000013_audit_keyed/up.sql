-- Audit integrity that survives a database writer: each new row carries an
-- HMAC of its hash under a key the database does not hold (MAPCE_AUDIT_KEY
-- or MAPCE_DATA_DIR/audit-key), and so does the head, with the row from
-- which every row is keyed. Rows and the head are refused UPDATE, DELETE and
-- TRUNCATE by the database itself; the head only moves forward.

ALTER TABLE audit_log ADD COLUMN mac TEXT;
ALTER TABLE audit_head ADD COLUMN keyed_from BIGINT;
ALTER TABLE audit_head ADD COLUMN mac TEXT;

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP;
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();

CREATE FUNCTION audit_head_forward_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'the audit head is never removed: % refused', TG_OP;
    END IF;
    IF NEW.id <> OLD.id OR NEW.seq < OLD.seq OR NEW.seq > OLD.seq + 1
       OR (OLD.keyed_from IS NOT NULL AND NEW.keyed_from IS DISTINCT FROM OLD.keyed_from) THEN
        RAISE EXCEPTION 'the audit head only moves forward';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER audit_head_forward_only BEFORE UPDATE OR DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_head_forward_only();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_head_forward_only();

-- GET /lookups: an action's rows in a time window (document lookups per user).
CREATE INDEX audit_log_action_idx ON audit_log (action, at);
