//! Bodies shared by the profiles that speak `native`'s shapes (`native`, `admin`) and the
//! timestamp format every profile uses.

use chrono::{DateTime, SecondsFormat};
use serde::Serialize;
use uuid::Uuid;

use crate::store::UserRecord;

/// RFC 3339, UTC, whole seconds, `Z`.
pub fn timestamp(unix: i64) -> String {
    DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The user object.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserBody<'a> {
    id: Uuid,
    #[schema(format = Email)]
    email: &'a str,
    full_name: Option<&'a str>,
    is_active: bool,
    roles: &'a [String],
    organization_id: Option<Uuid>,
    #[schema(format = DateTime)]
    created_at: String,
    /// When the address was verified (RFC 3339), or null.
    #[schema(format = DateTime)]
    email_verified_at: Option<String>,
}

impl<'a> UserBody<'a> {
    /// Renders a user.
    pub fn new(user: &'a UserRecord) -> Self {
        Self {
            id: user.id,
            email: &user.email,
            full_name: user.full_name.as_deref(),
            is_active: user.is_active,
            roles: &user.roles,
            organization_id: user.organization_id,
            created_at: timestamp(user.created_at),
            email_verified_at: user.email_verified_at.map(timestamp),
        }
    }
}
