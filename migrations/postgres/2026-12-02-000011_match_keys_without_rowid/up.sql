-- Nothing changes on PostgreSQL: SQLite's match keys become a WITHOUT
-- ROWID table (see migrations/sqlite), a storage choice PostgreSQL does
-- not have; the table, its columns and its keys are the same on both.
SELECT 1;
