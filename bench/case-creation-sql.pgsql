-- Plain-SQL twin of POST /api/v1/cases for pgbench (bench/suite.sh fills in
-- $person, $consulate, $officer and $type): case, attention, two timeline
-- events and a chained audit row in one transaction.
BEGIN;
SELECT gen_random_uuid() AS cid, gen_random_uuid() AS aid \gset
INSERT INTO cases (id, person_id, consulate_id, country_code, channel, requester_kind, summary, flags, protected, status, assigned_officer_id, opened_at, created_by, version, created_at, updated_at)
  VALUES (':cid', '$person', '$consulate', 'AR', 'phone', 'self', 'Needs help', '[]', false, 'open', '$officer', now(), '$officer', 2, now(), now());
INSERT INTO timeline_events (id, person_id, case_id, consulate_id, kind, at, actor_id, payload)
  VALUES (gen_random_uuid(), '$person', ':cid', '$consulate', 'case.opened', now(), '$officer', '{"channel":"phone","flags":[]}');
INSERT INTO attentions (id, case_id, person_id, consulate_id, attention_type_id, attended_on, channel, officer_id, description, late_registration, created_at)
  VALUES (':aid', ':cid', '$person', '$consulate', '$type', current_date, 'phone', '$officer', 'Orientation', false, now());
INSERT INTO timeline_events (id, person_id, case_id, consulate_id, kind, at, actor_id, attention_type_id, payload)
  VALUES (gen_random_uuid(), '$person', ':cid', '$consulate', 'attention.recorded', now(), '$officer', '$type', '{"attention_type":"legal_orientation"}');
UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq AS seq, hash AS prev \gset
INSERT INTO audit_log (id, seq, at, actor_id, actor_username, actor_role, actor_consulate_id, action, resource_type, resource_id, subject_person_id, client_addr, outcome, details, prev_hash, hash)
  VALUES (gen_random_uuid(), :seq, now(), '$officer', 'bench.officer', 'officer', '$consulate', 'case.create', 'case', ':cid', '$person', '127.0.0.1', 'success', '{}', ':prev', encode(sha256(convert_to(':prev:cid', 'UTF8')), 'hex'));
UPDATE audit_head SET hash = encode(sha256(convert_to(':prev:cid', 'UTF8')), 'hex') WHERE id = 1;
COMMIT;
