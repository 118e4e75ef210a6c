-- Refresh storage stays O(1) per session (issue 11, item 3): a refresh token names its
-- session and generation, and the session row keeps the current generation's hash and the
-- previous one's hash, time of use and encrypted replay. Older generations are reuse by
-- their number alone, so nothing of them is kept, and the refresh_tokens table goes.
--
-- Upgrading ends the refresh tokens issued before it (their text names no session, and
-- their rows go with the table): sessions and their access tokens stay valid, a bearer-form
-- refresh (POST /auth/refresh with the access token) still rotates them and hands out a
-- refresh token of the new form; a body-form refresh with an old token answers 401 and the
-- client logs in again. refresh_hash '' matches no token (hashes are 64 hex digits).
ALTER TABLE sessions ADD COLUMN refresh_generation BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN refresh_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN previous_refresh_hash TEXT;
ALTER TABLE sessions ADD COLUMN previous_refresh_used_at BIGINT;
ALTER TABLE sessions ADD COLUMN previous_refresh_replay BYTEA;
DROP TABLE refresh_tokens;
-- The background purger deletes expired sessions and personal tokens in batches, by expiry.
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
CREATE INDEX personal_tokens_expires_at_idx ON personal_tokens (expires_at);
