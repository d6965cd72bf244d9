DROP TABLE oei05_snapshot_persons;
DROP TABLE oei05_snapshots;
DROP TABLE oei05_targets;
