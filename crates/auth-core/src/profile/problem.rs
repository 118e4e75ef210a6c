//! RFC 9457 problem documents: the error shape of `native` and `admin`, and the stable
//! machine-readable codes `envelope` reuses.

use serde::Serialize;

use super::ErrorBody;
use crate::error::Error;
use crate::http::PROBLEM_JSON;

/// One invalid field of a problem document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProblemField {
    /// The field.
    pub field: String,
    /// Why.
    pub message: String,
}

/// An RFC 9457 problem document, the body of every `native` error.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Always `about:blank`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The status's reason phrase.
    pub title: &'static str,
    /// The status.
    pub status: u16,
    /// What went wrong.
    pub detail: &'static str,
    /// Stable machine-readable code, e.g. `INVALID_CREDENTIALS`.
    pub code: &'static str,
    /// Every invalid field (validation errors only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<ProblemField>>,
}

/// What every profile says when an account's second factor is required.
pub const MFA_REQUIRED: &str = "Multi-factor authentication required";

/// The machine-readable code `native` (and `envelope`) use for an error.
pub fn error_code(err: &Error) -> &'static str {
    match err {
        Error::MalformedRequest => "INVALID_REQUEST",
        Error::Validation(_) | Error::Invalid(..) => "VALIDATION_ERROR",
        Error::EmailTaken => "EMAIL_TAKEN",
        Error::InvalidCredentials | Error::WrongCurrentPassword => "INVALID_CREDENTIALS",
        Error::AccountInactive => "ACCOUNT_INACTIVE",
        Error::MissingToken | Error::InvalidToken => "UNAUTHORIZED",
        Error::Forbidden => "FORBIDDEN",
        Error::CsrfFailed => "CSRF_FAILED",
        Error::InvalidOneTimeToken => "INVALID_TOKEN",
        Error::EmailNotVerified => "EMAIL_NOT_VERIFIED",
        Error::MfaRequired => "MFA_REQUIRED",
        Error::WrongMfaCode | Error::SecondFactorFailed => "INVALID_MFA_CODE",
        Error::InvalidMfaToken => "INVALID_MFA_TOKEN",
        Error::InvalidChallenge => "INVALID_CHALLENGE",
        Error::PasskeyRejected => "INVALID_PASSKEY",
        Error::MfaAlreadyEnabled => "MFA_ALREADY_ENABLED",
        Error::NotFound => "NOT_FOUND",
        Error::LastAdmin => "LAST_ADMIN",
        Error::MethodNotAllowed(_) => "METHOD_NOT_ALLOWED",
        Error::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
        Error::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
        Error::RateLimited(_) => "RATE_LIMITED",
        Error::Internal => "INTERNAL_ERROR",
        Error::Unavailable | Error::Overloaded(_) => "SERVICE_UNAVAILABLE",
    }
}

/// The human-readable detail `native` gives for an error.
pub fn error_detail(err: &Error) -> &'static str {
    match err {
        Error::MalformedRequest => "Request body must be a JSON object",
        Error::Validation(_) | Error::Invalid(..) => "Request validation failed",
        Error::EmailTaken => "Email already registered",
        Error::InvalidCredentials => "Incorrect email or password",
        Error::AccountInactive => "User account is inactive",
        Error::WrongCurrentPassword => "Current password is incorrect",
        Error::MissingToken => "Not authenticated",
        Error::InvalidToken => "Could not validate credentials",
        Error::Forbidden => "Not enough permissions",
        Error::CsrfFailed => "Missing or wrong X-CSRF-Token for this session",
        Error::InvalidOneTimeToken => "The link is invalid, used or expired",
        Error::EmailNotVerified => "Email address not verified",
        Error::MfaRequired => MFA_REQUIRED,
        Error::WrongMfaCode | Error::SecondFactorFailed => "The code is wrong or was already used",
        Error::InvalidMfaToken => "The sign-in attempt is invalid, used or expired: log in again",
        Error::InvalidChallenge => "The challenge is invalid, used or expired",
        Error::PasskeyRejected => "The passkey was not accepted",
        Error::MfaAlreadyEnabled => "Two-factor authentication is already enabled",
        Error::NotFound => "Not found",
        Error::LastAdmin => "The last active admin cannot be demoted, deactivated or deleted",
        Error::MethodNotAllowed(_) => "Method not allowed",
        Error::PayloadTooLarge => "Request body exceeds the size limit",
        Error::UnsupportedMediaType => "Content-Type must be application/json",
        Error::RateLimited(_) => "Too many requests",
        Error::Overloaded(_) => "Server is busy, retry later",
        Error::Unavailable => "Service temporarily unavailable",
        Error::Internal => "Internal server error",
    }
}

/// Renders an error as an RFC 9457 problem document.
pub fn render_error(err: &Error) -> ErrorBody {
    let status = err.status();
    let errors = match err {
        Error::Validation(errors) => Some(
            errors
                .iter()
                .map(|e| ProblemField {
                    field: e.field.clone(),
                    message: e.message(),
                })
                .collect(),
        ),
        _ => None,
    };
    let problem = Problem {
        kind: "about:blank",
        title: err.reason(),
        status,
        detail: error_detail(err),
        code: error_code(err),
        errors,
    };
    ErrorBody {
        status,
        content_type: PROBLEM_JSON,
        body: serde_json::to_value(problem).unwrap_or_default(),
    }
}
