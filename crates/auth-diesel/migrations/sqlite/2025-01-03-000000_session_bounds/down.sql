ALTER TABLE sessions DROP COLUMN access_ttl;
ALTER TABLE sessions DROP COLUMN profile;
