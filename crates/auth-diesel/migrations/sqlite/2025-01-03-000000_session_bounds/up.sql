-- A session remembers the profile that opened it and that profile's access-token lifetime,
-- which no refresh of the session may exceed (issue 10, rule 1). Sessions from before have
-- no recorded lifetime (NULL): only the refreshing profile's applies to them.
ALTER TABLE sessions ADD COLUMN profile TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN access_ttl BIGINT;
