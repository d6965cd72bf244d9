DROP TABLE timeline_events;
DROP TABLE person_merges;
DROP TABLE duplicate_pairs;
DROP TABLE person_match_keys;
DROP TABLE person_documents;
DROP TABLE persons;
