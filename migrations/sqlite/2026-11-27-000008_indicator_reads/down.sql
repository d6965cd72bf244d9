CREATE INDEX attentions_period_idx ON attentions (attended_on, person_id);
DROP INDEX attentions_oei05_idx;
ALTER TABLE attentions DROP COLUMN person_birth_date;
ALTER TABLE attentions DROP COLUMN person_sex;
ALTER TABLE attentions DROP COLUMN country_code;
