DROP TABLE legacy_cases;
DROP TABLE import_rejections;
DROP TABLE legacy_rows;
DROP TABLE imports;
