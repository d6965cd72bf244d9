DROP TRIGGER audit_head_no_truncate ON audit_head;
DROP TRIGGER audit_head_forward_only ON audit_head;
DROP FUNCTION audit_head_forward_only();
DROP TRIGGER audit_log_no_truncate ON audit_log;
DROP TRIGGER audit_log_append_only ON audit_log;
DROP FUNCTION audit_log_append_only();
ALTER TABLE audit_head DROP COLUMN mac;
ALTER TABLE audit_head DROP COLUMN keyed_from;
ALTER TABLE audit_log DROP COLUMN mac;
