DROP INDEX legacy_cases_key;
ALTER TABLE legacy_cases ADD PRIMARY KEY (person_id, consulate_id, country_code, year);
DROP INDEX legacy_rows_fingerprint_key;
ALTER TABLE legacy_rows ADD PRIMARY KEY (fingerprint);
