-- Failed logins, for the login rate limit (email+IP, email and IP windows).
CREATE TABLE login_failures (
    id INTEGER PRIMARY KEY NOT NULL,
    email_key TEXT NOT NULL,
    ip TEXT NOT NULL,
    "at" BIGINT NOT NULL
);
CREATE INDEX login_failures_email_at_idx ON login_failures (email_key, "at");
CREATE INDEX login_failures_ip_at_idx ON login_failures (ip, "at");
CREATE INDEX login_failures_email_ip_at_idx ON login_failures (email_key, ip, "at");

-- Hits of the other rate limits (sliding windows per bucket and key).
CREATE TABLE rate_limit_hits (
    id INTEGER PRIMARY KEY NOT NULL,
    bucket TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "at" BIGINT NOT NULL
);
CREATE INDEX rate_limit_hits_bucket_key_at_idx ON rate_limit_hits (bucket, "key", "at");

-- Token signing keys; the private part is encrypted by the core before it gets here.
CREATE TABLE signing_keys (
    kid TEXT PRIMARY KEY NOT NULL,
    algorithm TEXT NOT NULL,
    public_key BLOB NOT NULL,
    private_key BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    active BOOLEAN NOT NULL DEFAULT FALSE
);
-- At most one key is active.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (active) WHERE active;
