DROP TABLE protocol_steps;
DROP TABLE protocol_versions;
DROP TABLE attention_type_merges;
DROP TABLE attention_type_aliases;
DROP TABLE attention_types;
