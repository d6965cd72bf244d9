DROP INDEX audit_log_action_idx;
DROP TRIGGER audit_head_forward_only;
DROP TRIGGER audit_head_no_delete;
DROP TRIGGER audit_log_no_delete;
DROP TRIGGER audit_log_no_update;
ALTER TABLE audit_head DROP COLUMN mac;
ALTER TABLE audit_head DROP COLUMN keyed_from;
ALTER TABLE audit_log DROP COLUMN mac;
