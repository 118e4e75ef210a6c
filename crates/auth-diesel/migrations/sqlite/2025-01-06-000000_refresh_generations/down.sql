-- The refresh tokens of the generations scheme cannot be written back as rows (their text
-- differs); going down ends every session's refresh token, as going up does.
DROP INDEX personal_tokens_expires_at_idx;
DROP INDEX sessions_expires_at_idx;
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,
    session_id TEXT NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    replay BLOB,
    successor_hash TEXT
);
CREATE INDEX refresh_tokens_session_id_idx ON refresh_tokens (session_id);
ALTER TABLE sessions DROP COLUMN previous_refresh_replay;
ALTER TABLE sessions DROP COLUMN previous_refresh_used_at;
ALTER TABLE sessions DROP COLUMN previous_refresh_hash;
ALTER TABLE sessions DROP COLUMN refresh_hash;
ALTER TABLE sessions DROP COLUMN refresh_generation;
