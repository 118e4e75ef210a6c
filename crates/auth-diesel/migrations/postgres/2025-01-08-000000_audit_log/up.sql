-- The audit log of security events (issue 14): appended by the core, read newest first by
-- admins with filters, purged by age. Ids of users are kept without foreign keys: an event
-- outlives the user it names. detail is a JSON object as text, never a secret.
CREATE TABLE audit_events (
    id TEXT PRIMARY KEY NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    actor_id TEXT NULL,
    target_id TEXT NULL,
    ip TEXT NULL,
    user_agent TEXT NULL,
    detail TEXT NULL
);
-- The unfiltered list and the purge by age.
CREATE INDEX audit_events_at_idx ON audit_events (at);
-- The filtered lists, each newest first.
CREATE INDEX audit_events_actor_id_at_idx ON audit_events (actor_id, at);
CREATE INDEX audit_events_target_id_at_idx ON audit_events (target_id, at);
CREATE INDEX audit_events_kind_at_idx ON audit_events (kind, at);
