-- Addresses an email logged in from successfully, and when last (issue 10, rule 6): a known
-- address is held only to the email+IP login limit. Purged after the known-address window.
CREATE TABLE known_addresses (
    email_key TEXT NOT NULL,
    ip TEXT NOT NULL,
    last_login_at BIGINT NOT NULL,
    PRIMARY KEY (email_key, ip)
);
CREATE INDEX known_addresses_last_login_at_idx ON known_addresses (last_login_at);
