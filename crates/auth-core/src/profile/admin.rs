//! The `native` admin API (mounted with `native`, at `/api/v1/admin`): users and
//! organizations, for callers with the `admin` role. Errors are `native` problem documents.

use futures_util::FutureExt as _;
use serde::Serialize;
use uuid::Uuid;

use super::body::{UserBody, timestamp};
use super::problem::{Problem, render_error};
use super::{Call, Profile, Route, list_of, route, schema_of};
use crate::error::{Error, Rule};
use crate::http::Response;
use crate::service::{Admin, NewAccount};
use crate::store::{OrganizationRecord, UserPatch};
use crate::validate::Fields;

/// Default page size of `GET /users`.
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page size of `GET /users`.
pub const MAX_LIMIT: u32 = 100;

/// The profile.
pub static PROFILE: Profile = Profile {
    name: "admin",
    default_prefix: "/api/v1/admin",
    default_access_ttl: None,
    routes: ROUTES,
    render_error,
    input_names: super::native_input_names,
    error_schema: schema_of::<Problem>,
    cookie_sessions: true,
};

static ROUTES: &[Route] = &[
    route("POST", "/users", true, "Create a user", |c| {
        create_user(c).boxed()
    })
    .body(schema_of::<CreateUserRequest>)
    .answers(201, Some(schema_of::<UserBody<'static>>))
    .errors(&[400, 403, 422]),
    route("GET", "/users", true, "List users", |c| {
        list_users(c).boxed()
    })
    .query(&[
        ("email", "string"),
        ("limit", "integer"),
        ("offset", "integer"),
    ])
    .answers(200, Some(schema_of::<UserPage<'static>>))
    .errors(&[403, 422]),
    route("GET", "/users/{id}", true, "One user", |c| {
        get_user(c).boxed()
    })
    .answers(200, Some(schema_of::<UserBody<'static>>))
    .errors(&[403, 404]),
    route("PATCH", "/users/{id}", true, "Change a user", |c| {
        patch_user(c).boxed()
    })
    .body(schema_of::<UpdateUserRequest>)
    .answers(200, Some(schema_of::<UserBody<'static>>))
    .errors(&[403, 404, 409, 422]),
    route("DELETE", "/users/{id}", true, "Delete a user", |c| {
        delete_user(c).boxed()
    })
    .answers(204, None)
    .errors(&[403, 404, 409]),
    route(
        "DELETE",
        "/users/{id}/sessions",
        true,
        "Revoke every session and token of a user",
        |c| revoke_sessions(c).boxed(),
    )
    .answers(204, None)
    .errors(&[403, 404]),
    route(
        "DELETE",
        "/users/{id}/mfa",
        true,
        "Remove every second factor of a user (TOTP, recovery codes, passkeys)",
        |c| reset_mfa(c).boxed(),
    )
    .answers(204, None)
    .errors(&[403, 404]),
    route(
        "POST",
        "/organizations",
        true,
        "Create an organization",
        |c| create_organization(c).boxed(),
    )
    .body(schema_of::<CreateOrganizationRequest>)
    .answers(201, Some(schema_of::<OrganizationBody>))
    .errors(&[403, 422]),
    route("GET", "/organizations", true, "List organizations", |c| {
        organizations(c).boxed()
    })
    .answers(200, Some(list_of::<OrganizationBody>))
    .errors(&[403]),
    route(
        "GET",
        "/audit",
        true,
        "The audit log of security events, newest first",
        |c| super::audit::list_audit(c).boxed(),
    )
    .query(&[
        ("kind", "string"),
        ("actor_id", "uuid"),
        ("target_id", "uuid"),
        ("since", "date-time"),
        ("until", "date-time"),
        ("limit", "integer"),
        ("offset", "integer"),
    ])
    .answers(200, Some(schema_of::<super::audit::AuditPage>))
    .errors(&[403, 422]),
];

/// `POST /users`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreateUserRequest {
    /// Email address.
    #[schema(format = Email)]
    email: String,
    /// Password, 8 to 1024 characters.
    #[schema(format = Password, min_length = 8, max_length = 1024)]
    password: String,
    /// Display name.
    full_name: Option<String>,
    /// Role names (created on first use).
    roles: Option<Vec<String>>,
    /// An existing organization.
    organization_id: Option<Uuid>,
    /// Whether the user may log in (default true).
    is_active: Option<bool>,
}

/// `PATCH /users/{id}`: absent fields stay as they are; `null` clears a nullable one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UpdateUserRequest {
    /// Display name.
    full_name: Option<String>,
    /// Whether the user may log in; `false` revokes every session and token. The last
    /// active admin cannot be deactivated (409 `LAST_ADMIN`).
    is_active: Option<bool>,
    /// The complete set of role names. The last active admin cannot lose `admin` (409
    /// `LAST_ADMIN`).
    roles: Option<Vec<String>>,
    /// An existing organization.
    organization_id: Option<Uuid>,
    /// Phone number.
    phone: Option<String>,
    /// Free-form object (e.g. `onboarding_completed`, `onboarding_step`, `onboarding_data`).
    #[schema(value_type = Option<Object>)]
    attributes: Option<serde_json::Value>,
}

/// `POST /organizations`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreateOrganizationRequest {
    /// Display name, 1 to 255 characters.
    #[schema(min_length = 1, max_length = 255)]
    name: String,
}

/// A page of users.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserPage<'a> {
    items: Vec<UserBody<'a>>,
    total: u64,
}

/// An organization.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrganizationBody {
    id: Uuid,
    name: String,
    #[schema(format = DateTime)]
    created_at: String,
}

impl From<OrganizationRecord> for OrganizationBody {
    fn from(org: OrganizationRecord) -> Self {
        Self {
            id: org.id,
            name: org.name,
            created_at: timestamp(org.created_at),
        }
    }
}

/// The administration capability, for a caller with the `admin` role only.
pub(super) async fn admin<'a>(call: &Call<'a>) -> Result<Admin<'a>, Error> {
    let principal = call.principal().await?;
    Ok(call.auth.admin(&principal)?.with_client(call.client()))
}

async fn create_user(call: Call<'_>) -> Result<Response, Error> {
    let admin = admin(&call).await?;
    let mut fields = call.fields()?;
    let email = fields.email("email");
    let password = fields.new_password("password");
    let full_name = fields.optional_name("full_name");
    let roles = fields.optional_string_array("roles");
    let organization_id = fields.patch_uuid("organization_id").flatten();
    let is_active = fields.optional_bool("is_active");
    fields.finish()?;
    let user = admin
        .create_user(NewAccount {
            email: email.unwrap_or_default(),
            password: password.unwrap_or_default(),
            full_name,
            roles: roles.unwrap_or_default(),
            organization_id,
            is_active: is_active.unwrap_or(true),
            password_hash: None,
        })
        .await?;
    Ok(Response::json(201, &UserBody::new(&user)))
}

/// Reads `email`, `limit` and `offset` from the query string.
fn page_query(query: Option<&str>) -> Result<(Option<String>, u32, u64), Error> {
    let (mut email, mut limit, mut offset) = (None, DEFAULT_LIMIT, 0);
    let mut errors = Fields::parse_optional(b"")?;
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "email" => email = Some(value.into_owned()),
            "limit" => match value.parse::<u32>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => limit = n,
                _ => errors.reject("limit", Rule::Between(1, i64::from(MAX_LIMIT))),
            },
            "offset" => match value.parse::<u64>() {
                Ok(n) => offset = n,
                _ => errors.reject("offset", Rule::Between(0, i64::MAX)),
            },
            _ => {}
        }
    }
    errors.finish()?;
    Ok((email, limit, offset))
}

async fn list_users(call: Call<'_>) -> Result<Response, Error> {
    let admin = admin(&call).await?;
    let (email, limit, offset) = page_query(call.request.query.as_deref())?;
    let (users, total) = admin.users(email.as_deref(), limit, offset).await?;
    let items = users.iter().map(UserBody::new).collect();
    Ok(Response::json(200, &UserPage { items, total }))
}

async fn get_user(call: Call<'_>) -> Result<Response, Error> {
    let admin = admin(&call).await?;
    let user = admin.user(call.id_param("id")?).await?;
    Ok(Response::json(200, &UserBody::new(&user)))
}

async fn patch_user(call: Call<'_>) -> Result<Response, Error> {
    let admin = admin(&call).await?;
    let mut fields = call.fields()?;
    let patch = UserPatch {
        full_name: fields.patch_string("full_name"),
        phone: fields.patch_string("phone"),
        is_active: fields.optional_bool("is_active"),
        roles: fields.optional_string_array("roles"),
        organization_id: fields.patch_uuid("organization_id"),
        attributes: fields.optional_object("attributes"),
        ..UserPatch::default()
    };
    fields.finish()?;
    let user = admin.update_user(call.id_param("id")?, patch).await?;
    Ok(Response::json(200, &UserBody::new(&user)))
}

async fn delete_user(call: Call<'_>) -> Result<Response, Error> {
    let admin = admin(&call).await?;
    admin.delete_user(call.id_param("id")?).await?;
    Ok(Response::empty(204))
}

/// Every session, refresh token and personal token of the user is revoked; the account
/// stays as it is.
async fn revoke_sessions(call: Call<'_>) -> Result<Response, Error> {
    let admin = admin(&call).await?;
    admin.revoke_credentials(call.id_param("id")?).await?;
    Ok(Response::empty(204))
}

async fn reset_mfa(call: Call<'_>) -> Result<Response, Error> {
    let admin = admin(&call).await?;
    admin.reset_mfa(call.id_param("id")?).await?;
    Ok(Response::empty(204))
}

async fn create_organization(call: Call<'_>) -> Result<Response, Error> {
    let admin = admin(&call).await?;
    let mut fields = call.fields()?;
    let name = fields.optional_name("name");
    match &name {
        None if !fields.has("name") => fields.reject("name", Rule::Required),
        Some(n) if n.trim().is_empty() => fields.reject("name", Rule::NotEmpty),
        _ => {}
    }
    fields.finish()?;
    let organization = admin
        .create_organization(name.unwrap_or_default().trim().to_owned())
        .await?;
    Ok(Response::json(201, &OrganizationBody::from(organization)))
}

async fn organizations(call: Call<'_>) -> Result<Response, Error> {
    let admin = admin(&call).await?;
    let list: Vec<OrganizationBody> = admin
        .organizations()
        .await?
        .into_iter()
        .map(OrganizationBody::from)
        .collect();
    Ok(Response::json(200, &list))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_queries() {
        assert_eq!(page_query(None).unwrap(), (None, 50, 0));
        assert_eq!(
            page_query(Some("email=A%40b.co&limit=10&offset=5")).unwrap(),
            (Some("A@b.co".to_owned()), 10, 5)
        );
        for bad in ["limit=0", "limit=101", "limit=abc", "offset=-1"] {
            assert!(
                matches!(page_query(Some(bad)), Err(Error::Validation(_))),
                "{bad}"
            );
        }
    }
}
