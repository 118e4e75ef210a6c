//! The one error type of the core. Profiles turn it into a status and body, in one place each.

use std::time::Duration;

/// One invalid field of a request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Field name as it appears in the JSON body.
    pub field: String,
    /// The rule the value broke; each profile words it in its own style.
    pub rule: Rule,
}

impl FieldError {
    /// The `native` wording, e.g. "must be at least 8 characters".
    pub fn message(&self) -> String {
        self.rule.message()
    }
}

/// A validation rule a field can break.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rule {
    /// Required, and absent or null.
    Required,
    /// Must be a JSON string.
    String,
    /// Must be a JSON integer.
    Integer,
    /// Must be a JSON boolean.
    Boolean,
    /// Must be a JSON object.
    Object,
    /// Must be a JSON array of strings.
    StringArray,
    /// Must be a UUID.
    Uuid,
    /// Must be an email address.
    Email,
    /// Must not be empty.
    NotEmpty,
    /// At least this many characters.
    MinChars(usize),
    /// At most this many characters.
    MaxChars(usize),
    /// An integer in this inclusive range.
    Between(i64, i64),
    /// Must name something that exists (e.g. an organization).
    Exists,
    /// Must not be one of the most common passwords.
    NotCommon,
    /// Has a format that is not supported (e.g. an unknown password-hash scheme).
    Format,
    /// Must be one of these strings.
    OneOf(&'static [&'static str]),
    /// Must be an RFC 3339 date-time (e.g. `2025-01-31T12:00:00Z`).
    DateTime,
}

impl Rule {
    /// The `native` wording.
    pub fn message(&self) -> String {
        match self {
            Rule::Required => "field required".to_owned(),
            Rule::String => "must be a string".to_owned(),
            Rule::Integer => "must be an integer".to_owned(),
            Rule::Boolean => "must be a boolean".to_owned(),
            Rule::Object => "must be an object".to_owned(),
            Rule::StringArray => "must be an array of strings".to_owned(),
            Rule::Uuid => "must be a UUID".to_owned(),
            Rule::Email => "must be a valid email address".to_owned(),
            Rule::NotEmpty => "must not be empty".to_owned(),
            Rule::MinChars(n) => format!("must be at least {n} characters"),
            Rule::MaxChars(n) => format!("must be at most {n} characters"),
            Rule::Between(min, max) => format!("must be between {min} and {max}"),
            Rule::Exists => "does not exist".to_owned(),
            Rule::NotCommon => "is too common; choose another password".to_owned(),
            Rule::Format => "has an unsupported format".to_owned(),
            Rule::OneOf(values) => format!("must be one of: {}", values.join(", ")),
            Rule::DateTime => "must be an RFC 3339 date-time".to_owned(),
        }
    }
}

/// An input of a domain operation that a rule can refuse; each profile knows the name of the
/// request field that carried it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Input {
    /// The email address of an account.
    Email,
    /// The password of a new account.
    Password,
    /// The new password of a password change.
    NewPassword,
    /// An imported password hash.
    PasswordHash,
    /// The organization of an account.
    Organization,
}

/// Everything that can go wrong while serving a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The body is not JSON or not a JSON object.
    #[error("malformed request body")]
    MalformedRequest,
    /// One or more fields are invalid.
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// A domain input broke a rule. The domain knows no wire names: the mounted profile names
    /// the field ([`Error::naming`]) before the error is rendered, as a `Validation`.
    #[error("invalid {0:?}")]
    Invalid(Input, Rule),
    /// Registration with an address that is taken.
    #[error("email already registered")]
    EmailTaken,
    /// Unknown email or wrong password.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Right password, deactivated account.
    #[error("account inactive")]
    AccountInactive,
    /// The current password given to a password change is wrong.
    #[error("wrong current password")]
    WrongCurrentPassword,
    /// No bearer token was sent.
    #[error("missing bearer token")]
    MissingToken,
    /// A token was sent and refused (malformed, expired, revoked, forged, inactive user).
    #[error("invalid token")]
    InvalidToken,
    /// Authenticated, but not allowed.
    #[error("forbidden")]
    Forbidden,
    /// A one-time token of a mail (verification, reset, magic link, email change) is
    /// unknown, used, expired, or not for this.
    #[error("invalid or expired link token")]
    InvalidOneTimeToken,
    /// The right password, but the address is not verified and verification is required.
    #[error("email not verified")]
    EmailNotVerified,
    /// A state change authenticated by a session cookie came without the session's
    /// `X-CSRF-Token` (or with another one).
    #[error("CSRF token missing or wrong")]
    CsrfFailed,
    /// The account has a second factor: a login through a profile with no second step is
    /// refused, and a sensitive operation needs a current code or passkey (step-up).
    #[error("multi-factor authentication required")]
    MfaRequired,
    /// A second-factor code given to a sensitive operation or a factor's management is wrong
    /// or already used.
    #[error("wrong second-factor code")]
    WrongMfaCode,
    /// The second step of a login failed: wrong or used code, or a passkey not accepted.
    #[error("second factor refused")]
    SecondFactorFailed,
    /// An `mfa_token` is unknown, used, expired, or dead after too many wrong codes.
    #[error("invalid mfa token")]
    InvalidMfaToken,
    /// A challenge token (passkey ceremony, step-up) is unknown, used or expired.
    #[error("invalid challenge")]
    InvalidChallenge,
    /// A passkey registration response was not accepted.
    #[error("passkey not accepted")]
    PasskeyRejected,
    /// TOTP is already enabled for the account (disable it first).
    #[error("second factor already enabled")]
    MfaAlreadyEnabled,
    /// No such resource (or not the caller's).
    #[error("not found")]
    NotFound,
    /// The change would leave no active admin: the last one cannot be demoted,
    /// deactivated or deleted, by themselves or anyone else.
    #[error("the last active admin cannot be demoted, deactivated or deleted")]
    LastAdmin,
    /// Known path, other method; the allowed methods.
    #[error("method not allowed")]
    MethodNotAllowed(Vec<&'static str>),
    /// The body exceeds the limit.
    #[error("payload too large")]
    PayloadTooLarge,
    /// A body was sent with a media type other than JSON.
    #[error("unsupported media type")]
    UnsupportedMediaType,
    /// Too many attempts; retry after this long.
    #[error("rate limited")]
    RateLimited(Duration),
    /// The password-hashing queue is full; retry after this long.
    #[error("overloaded")]
    Overloaded(Duration),
    /// The database is unreachable.
    #[error("service unavailable")]
    Unavailable,
    /// A bug or an unexpected backend failure (details are logged, never sent).
    #[error("internal error")]
    Internal,
}

impl Error {
    /// Builds a validation error for one field.
    pub fn field(field: &str, rule: Rule) -> Self {
        Error::Validation(vec![FieldError {
            field: field.to_owned(),
            rule,
        }])
    }

    /// Turns an [`Error::Invalid`] into a `Validation` error of the field `name` gives the
    /// input; every other error is returned as it is.
    pub fn naming(self, name: fn(Input) -> &'static str) -> Self {
        match self {
            Error::Invalid(input, rule) => Error::field(name(input), rule),
            other => other,
        }
    }

    /// The HTTP status every profile uses for this error, except where a profile's seed says
    /// otherwise (see each profile's encoder).
    pub fn status(&self) -> u16 {
        match self {
            Error::MalformedRequest
            | Error::EmailTaken
            | Error::InvalidOneTimeToken
            | Error::InvalidChallenge
            | Error::PasskeyRejected => 400,
            Error::InvalidCredentials
            | Error::MissingToken
            | Error::InvalidToken
            | Error::SecondFactorFailed
            | Error::InvalidMfaToken => 401,
            Error::MfaRequired | Error::WrongMfaCode => 403,
            Error::AccountInactive
            | Error::WrongCurrentPassword
            | Error::Forbidden
            | Error::CsrfFailed
            | Error::EmailNotVerified => 403,
            Error::NotFound => 404,
            Error::MethodNotAllowed(_) => 405,
            Error::LastAdmin | Error::MfaAlreadyEnabled => 409,
            Error::PayloadTooLarge => 413,
            Error::UnsupportedMediaType => 415,
            Error::Validation(_) | Error::Invalid(..) => 422,
            Error::RateLimited(_) => 429,
            Error::Internal => 500,
            Error::Unavailable | Error::Overloaded(_) => 503,
        }
    }

    /// Standard reason phrase of [`Error::status`].
    pub fn reason(&self) -> &'static str {
        reason_phrase(self.status())
    }
}

impl From<crate::store::StoreError> for Error {
    fn from(err: crate::store::StoreError) -> Self {
        match err {
            // Only the admin role is ever protected (see `service::admin`).
            crate::store::StoreError::LastActiveHolder => Error::LastAdmin,
            crate::store::StoreError::Unavailable(msg) => {
                // Debug only: the store logs an outage once when it begins and once when
                // it ends, not once per request.
                tracing::debug!(error = %msg, "database unavailable");
                Error::Unavailable
            }
            other => {
                tracing::error!(error = %other, "store failure");
                Error::Internal
            }
        }
    }
}

/// The reason phrase of a status code, as used in titles and messages.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Error",
    }
}
