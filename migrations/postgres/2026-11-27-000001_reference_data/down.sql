DROP TABLE consulate_jurisdictions;
DROP TABLE consulates;
DROP TABLE countries;
DROP TABLE regions;
