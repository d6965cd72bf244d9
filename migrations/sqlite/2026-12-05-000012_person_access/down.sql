DROP TABLE person_access;
