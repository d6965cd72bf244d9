-- Deciding what a caller may see of a person asks two questions of the
-- person's cases (services::access): is any of them protected, and has the
-- caller's consulate one. Each is answered from an index in a few page
-- reads, however many cases the person has.
DROP INDEX cases_person_idx;
CREATE INDEX cases_person_idx ON cases (person_id, consulate_id);
CREATE INDEX cases_person_protected_idx ON cases (person_id, protected);
