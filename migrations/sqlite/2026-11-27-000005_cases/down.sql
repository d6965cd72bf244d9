DROP TABLE idempotency_keys;
DROP TABLE case_transfers;
DROP TABLE tasks;
DROP TABLE case_steps;
DROP TABLE attentions;
DROP TABLE cases;
