DROP INDEX cases_person_idx;
CREATE INDEX cases_person_idx ON cases (person_id);
