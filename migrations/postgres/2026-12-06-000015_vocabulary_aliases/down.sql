ALTER TABLE consulates DROP COLUMN city_en;
DROP TABLE attention_spellings;
ALTER TABLE cases DROP CONSTRAINT cases_channel_check;
ALTER TABLE cases ADD CONSTRAINT cases_channel_check CHECK (channel IN ('phone', 'e_appointment', 'consulate_window', 'institutional_email', 'in_person_ministry'));
DROP TABLE vocabulary_aliases;
