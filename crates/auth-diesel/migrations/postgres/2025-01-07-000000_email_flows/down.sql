DROP TABLE mail_queue;
DROP TABLE one_time_tokens;
ALTER TABLE users DROP COLUMN email_verified_at;
