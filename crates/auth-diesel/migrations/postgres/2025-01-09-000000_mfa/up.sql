-- Second factors and passkeys (issue 15). Every row goes with its user (ON DELETE CASCADE).

-- One TOTP factor per user: the secret sealed by the core (never in plain text here),
-- pending while confirmed_at is NULL, and the last time step a code was accepted for (no
-- code of that step or an earlier one is accepted again).
CREATE TABLE totp_factors (
    user_id TEXT PRIMARY KEY NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed BYTEA NOT NULL,
    confirmed_at BIGINT NULL,
    last_used_step BIGINT NULL,
    created_at BIGINT NOT NULL
);

-- Recovery codes: only their hashes (lower-case hex SHA-256). Used up by deleting the row.
CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, code_hash)
);

-- Passkeys: the credential as the WebAuthn library serializes it (a public key and a sign
-- counter, nothing secret). A credential id is registered once, to one user.
CREATE TABLE passkeys (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NULL
);
CREATE INDEX passkeys_user_id_idx ON passkeys (user_id, created_at);

-- Challenges of multi-factor sign-in, step-up and the WebAuthn ceremonies: only the hash of
-- the token that names each one. Single use (taken by deleting the row), short-lived.
CREATE TABLE mfa_challenges (
    hash TEXT PRIMARY KEY NOT NULL,
    purpose TEXT NOT NULL,
    user_id TEXT NULL REFERENCES users (id) ON DELETE CASCADE,
    state TEXT NULL,
    failures INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX mfa_challenges_user_id_idx ON mfa_challenges (user_id);
-- The background purger deletes expired challenges in batches, by expiry.
CREATE INDEX mfa_challenges_expires_at_idx ON mfa_challenges (expires_at);
