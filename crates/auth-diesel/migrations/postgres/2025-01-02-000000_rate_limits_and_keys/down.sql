DROP TABLE signing_keys;
DROP TABLE rate_limit_hits;
DROP TABLE login_failures;
