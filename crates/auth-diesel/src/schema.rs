//! The one schema both backends share. Column types are chosen so that the same Diesel
//! types work on SQLite and PostgreSQL: ids are hyphenated UUID strings, timestamps are
//! Unix seconds, JSON is text, token hashes are lower-case hex.

diesel::table! {
    settings (key) {
        key -> Text,
        value -> Text,
    }
}

diesel::table! {
    organizations (id) {
        id -> Text,
        name -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        email_key -> Text,
        password_hash -> Text,
        full_name -> Nullable<Text>,
        phone -> Nullable<Text>,
        is_active -> Bool,
        organization_id -> Nullable<Text>,
        attributes -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
        email_verified_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    roles (id) {
        id -> Text,
        name -> Text,
        description -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    user_roles (user_id, role_id) {
        user_id -> Text,
        role_id -> Text,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        access_jti -> Text,
        user_agent -> Nullable<Text>,
        created_at -> BigInt,
        last_used_at -> BigInt,
        expires_at -> BigInt,
        profile -> Text,
        access_ttl -> Nullable<BigInt>,
        refresh_generation -> BigInt,
        refresh_hash -> Text,
        previous_refresh_hash -> Nullable<Text>,
        previous_refresh_used_at -> Nullable<BigInt>,
        previous_refresh_replay -> Nullable<Binary>,
    }
}

diesel::table! {
    personal_tokens (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        token_hash -> Text,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    login_failures (id) {
        id -> BigInt,
        email_key -> Text,
        ip -> Text,
        at -> BigInt,
    }
}

diesel::table! {
    known_addresses (email_key, ip) {
        email_key -> Text,
        ip -> Text,
        last_login_at -> BigInt,
    }
}

diesel::table! {
    rate_limit_hits (id) {
        id -> BigInt,
        bucket -> Text,
        key -> Text,
        at -> BigInt,
    }
}

diesel::table! {
    signing_keys (kid) {
        kid -> Text,
        algorithm -> Text,
        public_key -> Binary,
        private_key -> Binary,
        created_at -> BigInt,
        active -> Bool,
    }
}

diesel::table! {
    one_time_tokens (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        purpose -> Text,
        email -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    mail_queue (id) {
        id -> Text,
        payload -> Binary,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    audit_events (id) {
        id -> Text,
        at -> BigInt,
        kind -> Text,
        actor_id -> Nullable<Text>,
        target_id -> Nullable<Text>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        detail -> Nullable<Text>,
    }
}

diesel::table! {
    totp_factors (user_id) {
        user_id -> Text,
        secret_sealed -> Binary,
        confirmed_at -> Nullable<BigInt>,
        last_used_step -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    recovery_codes (user_id, code_hash) {
        user_id -> Text,
        code_hash -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    passkeys (id) {
        id -> Text,
        user_id -> Text,
        credential_id -> Text,
        name -> Text,
        data -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    mfa_challenges (hash) {
        hash -> Text,
        purpose -> Text,
        user_id -> Nullable<Text>,
        state -> Nullable<Text>,
        failures -> Integer,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::joinable!(users -> organizations (organization_id));
diesel::joinable!(user_roles -> users (user_id));
diesel::joinable!(user_roles -> roles (role_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(personal_tokens -> users (user_id));
diesel::joinable!(one_time_tokens -> users (user_id));
diesel::joinable!(totp_factors -> users (user_id));
diesel::joinable!(recovery_codes -> users (user_id));
diesel::joinable!(passkeys -> users (user_id));
diesel::joinable!(mfa_challenges -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    settings,
    organizations,
    users,
    roles,
    user_roles,
    sessions,
    personal_tokens,
    login_failures,
    known_addresses,
    rate_limit_hits,
    signing_keys,
    one_time_tokens,
    mail_queue,
    audit_events,
    totp_factors,
    recovery_codes,
    passkeys,
    mfa_challenges,
);
