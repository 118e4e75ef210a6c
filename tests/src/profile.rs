//! What the suite knows about each profile: its name, default prefix, routes, and the shape
//! of the errors it answers with.

use serde_json::{Value, json};

/// A profile the suite can check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Profile {
    /// Seed 002, extended: the full API.
    Native,
    /// `native`'s admin routes, mounted with it.
    Admin,
    /// Seed 000: `POST /token` in a `{message, data | error}` envelope.
    Envelope,
    /// Seed 001: `POST /login` answering an opaque personal token.
    PersonalToken,
    /// Seed 003: `POST /login` and `GET /me` with roles.
    Rbac,
    /// Seed 004: `POST /login` answering a JWT and the user.
    JwtUser,
}

/// Upper-case method and path below the prefix.
pub(crate) type RouteSpec = (&'static str, &'static str);

impl Profile {
    /// Every profile, in the order reports and documents list them.
    pub(crate) const ALL: [Profile; 6] = [
        Profile::Native,
        Profile::Admin,
        Profile::Envelope,
        Profile::PersonalToken,
        Profile::Rbac,
        Profile::JwtUser,
    ];

    /// The name used in configuration, e.g. `personal-token`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Profile::Native => "native",
            Profile::Admin => "admin",
            Profile::Envelope => "envelope",
            Profile::PersonalToken => "personal-token",
            Profile::Rbac => "rbac",
            Profile::JwtUser => "jwt-user",
        }
    }

    /// Looks a profile up by its configuration name.
    pub(crate) fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Where the profile is mounted unless configured otherwise.
    pub(crate) fn default_prefix(self) -> &'static str {
        match self {
            Profile::Native | Profile::PersonalToken | Profile::JwtUser => "/api/v1/auth",
            Profile::Admin => "/api/v1/admin",
            Profile::Envelope => "/api/auth",
            Profile::Rbac => "/api/v2/auth",
        }
    }

    /// Every route, as the contract lists it.
    pub(crate) fn routes(self) -> &'static [RouteSpec] {
        match self {
            Profile::Native => &[
                ("POST", "/register"),
                ("POST", "/login"),
                ("GET", "/me"),
                ("POST", "/refresh"),
                ("POST", "/logout"),
                ("GET", "/sessions"),
                ("DELETE", "/sessions/{id}"),
                ("POST", "/password"),
                ("POST", "/verify-email"),
                ("POST", "/verify-email/resend"),
                ("POST", "/password/forgot"),
                ("POST", "/password/reset"),
                ("POST", "/magic-link"),
                ("POST", "/magic-link/verify"),
                ("POST", "/email"),
                ("POST", "/email/confirm"),
                ("POST", "/tokens"),
                ("GET", "/tokens"),
                ("DELETE", "/tokens/{id}"),
                ("GET", "/mfa"),
                ("POST", "/mfa/totp/setup"),
                ("POST", "/mfa/totp/confirm"),
                ("DELETE", "/mfa/totp"),
                ("POST", "/mfa/recovery-codes"),
                ("POST", "/mfa/verify"),
                ("POST", "/passkeys/register/start"),
                ("POST", "/passkeys/register/finish"),
                ("GET", "/passkeys"),
                ("DELETE", "/passkeys/{id}"),
                ("POST", "/passkeys/login/start"),
                ("POST", "/passkeys/login/finish"),
                ("POST", "/passkeys/step-up/start"),
            ],
            Profile::Admin => &[
                ("POST", "/users"),
                ("GET", "/users"),
                ("GET", "/users/{id}"),
                ("PATCH", "/users/{id}"),
                ("DELETE", "/users/{id}"),
                ("DELETE", "/users/{id}/sessions"),
                ("DELETE", "/users/{id}/mfa"),
                ("POST", "/organizations"),
                ("GET", "/organizations"),
                ("GET", "/audit"),
            ],
            Profile::Envelope => &[("POST", "/token")],
            Profile::PersonalToken | Profile::JwtUser => &[("POST", "/login")],
            Profile::Rbac => &[("POST", "/login"), ("GET", "/me")],
        }
    }

    /// The body of an error the profile's seed does not spell out: the profile's own shape
    /// with the reason phrase as the message, and `code` where the shape has one. `None` for
    /// `native` and `admin`, whose errors are problem documents.
    pub(crate) fn plain_error(self, reason: &str, code: &str) -> Option<Value> {
        match self {
            Profile::Native | Profile::Admin => None,
            Profile::Envelope => Some(json!({"message": reason, "error": {"code": code}})),
            Profile::PersonalToken => Some(json!({"message": reason})),
            Profile::Rbac => Some(json!({"detail": reason})),
            Profile::JwtUser => Some(json!({"success": false, "message": reason})),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for profile in Profile::ALL {
            assert_eq!(Profile::from_name(profile.name()), Some(profile));
        }
        assert_eq!(Profile::from_name("Native"), None);
    }

    #[test]
    fn plain_errors_take_each_shape() {
        assert_eq!(
            Profile::Envelope.plain_error("Not Found", "NOT_FOUND"),
            Some(json!({"message": "Not Found", "error": {"code": "NOT_FOUND"}}))
        );
        assert_eq!(
            Profile::JwtUser.plain_error("Not Found", "NOT_FOUND"),
            Some(json!({"success": false, "message": "Not Found"}))
        );
        assert_eq!(Profile::Admin.plain_error("Not Found", "NOT_FOUND"), None);
    }
}
