-- Deciding what a caller may see of a person asks two questions of the
-- person's cases (services::access): is any of them protected, and has the
-- caller's consulate one. Both are answered from this one index in a few
-- page reads, however many cases the person has: the first from its
-- (person, protected) prefix, the second from its full key, looked up for
-- each of the two values of `protected`.
DROP INDEX cases_person_idx;
CREATE INDEX cases_person_idx ON cases (person_id, protected, consulate_id);
