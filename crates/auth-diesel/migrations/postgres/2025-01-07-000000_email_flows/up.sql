-- The account lifecycle over email (issue 13). A user's address is verified at a time
-- (NULL: never, or not since it changed); every existing account starts unverified.
ALTER TABLE users ADD COLUMN email_verified_at BIGINT NULL;

-- One-time tokens of the email flows (verification, password reset, magic link, email
-- change): only the hash of the secret, which goes out by mail. Consumed by deleting the row.
CREATE TABLE one_time_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    purpose TEXT NOT NULL,
    email TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX one_time_tokens_user_id_purpose_idx ON one_time_tokens (user_id, purpose);
-- The background purger deletes expired tokens in batches, by expiry.
CREATE INDEX one_time_tokens_expires_at_idx ON one_time_tokens (expires_at);

-- Outgoing mail, kept until delivered: the payload is sealed by the core. A claim leases a
-- message by moving next_attempt_at; senders take the due ones oldest first.
CREATE TABLE mail_queue (
    id TEXT PRIMARY KEY NOT NULL,
    payload BYTEA NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX mail_queue_next_attempt_at_idx ON mail_queue (next_attempt_at, created_at);
