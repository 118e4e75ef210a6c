DROP TABLE personal_tokens;
DROP TABLE refresh_tokens;
DROP TABLE sessions;
DROP TABLE user_roles;
DROP TABLE roles;
DROP TABLE users;
DROP TABLE organizations;
DROP TABLE settings;
