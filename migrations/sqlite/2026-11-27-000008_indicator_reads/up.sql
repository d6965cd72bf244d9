-- SQLite twin of migrations/postgres.
-- OEI.05 reads one year of attentions at national scale (250 000 rows at
-- ten times today's volume) in one index-only pass. For that, each
-- attention carries copies of what the indicator groups by (as it already
-- carries person and consulate): the case's country, and the person's sex
-- and birth date. The copies are written with the attention and kept in step
-- by the model functions that change a case's country or a person's row
-- (models::cases::set_attentions_country, models::persons::sync_attention_copies).
-- Nullable only because SQLite cannot add a NOT NULL column without a default.
ALTER TABLE attentions ADD COLUMN country_code TEXT REFERENCES countries (alpha2);
ALTER TABLE attentions ADD COLUMN person_sex TEXT;
ALTER TABLE attentions ADD COLUMN person_birth_date DATE_TEXT;
UPDATE attentions SET
    country_code = (SELECT c.country_code FROM cases c WHERE c.id = attentions.case_id),
    person_sex = (SELECT p.sex FROM persons p WHERE p.id = attentions.person_id),
    person_birth_date = (SELECT p.birth_date FROM persons p WHERE p.id = attentions.person_id);

-- GET /indicators/oei05 reads a year of attentions from this index alone
-- (every column it needs, voided_at included so the filter needs no row).
-- It starts with (attended_on, person_id), so it also serves every query
-- attentions_period_idx served, which it replaces.
CREATE INDEX attentions_oei05_idx ON attentions (attended_on, person_id, attention_type_id, consulate_id, country_code, channel, person_sex, person_birth_date, voided_at);
DROP INDEX attentions_period_idx;
