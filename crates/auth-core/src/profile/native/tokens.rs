//! `native`'s personal access tokens: create (with the current password), list, revoke.

use std::time::Duration;

use serde::Serialize;
use uuid::Uuid;

use super::super::Call;
use super::super::body::timestamp;
use crate::error::{Error, Rule};
use crate::http::Response;
use crate::principal::Principal;
use crate::store::PersonalTokenRecord;

/// A personal access token (`token` only when just created).
#[derive(Serialize, utoipa::ToSchema)]
pub struct PersonalTokenBody<'a> {
    id: Uuid,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<&'a str>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    #[schema(format = DateTime)]
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used_at: Option<Option<String>>,
}

impl<'a> PersonalTokenBody<'a> {
    fn new(record: &'a PersonalTokenRecord, token: Option<&'a str>) -> Self {
        Self {
            id: record.id,
            name: &record.name,
            token,
            created_at: timestamp(record.created_at),
            expires_at: record.expires_at.map(timestamp),
            // Listed tokens show when they were last used; a freshly created one shows its secret instead.
            last_used_at: token.is_none().then(|| record.last_used_at.map(timestamp)),
        }
    }
}

/// `POST /tokens` (no `Debug`: it holds the password).
#[derive(Serialize, utoipa::ToSchema)]
pub struct CreateTokenRequest {
    /// Display name, 1 to 255 characters.
    #[schema(min_length = 1, max_length = 255)]
    pub name: String,
    /// The caller's current password: an access token alone cannot mint a long-lived
    /// credential.
    #[schema(format = Password)]
    pub current_password: String,
    /// Lifetime in seconds; never expires without it.
    #[schema(minimum = 1)]
    pub expires_in: Option<i64>,
    /// The step-up, for accounts with a second factor.
    #[serde(flatten)]
    pub step_up: super::mfa::StepUpFields,
    /// What the step-up fields held.
    #[serde(skip)]
    pub proof: crate::service::SecondFactor,
}

impl CreateTokenRequest {
    fn decode(call: &Call<'_>) -> Result<Self, Error> {
        let mut fields = call.fields()?;
        let name = fields.optional_name("name");
        if !fields.has("name") {
            fields.reject("name", Rule::Required);
        } else if name.as_deref().is_some_and(|n| n.trim().is_empty()) {
            fields.reject("name", Rule::NotEmpty);
        }
        let current = fields.presented_password("current_password");
        let expires_in = fields.optional_integer("expires_in");
        if expires_in.is_some_and(|secs| !(1..=MAX_TOKEN_TTL_SECS).contains(&secs)) {
            fields.reject("expires_in", Rule::Between(1, MAX_TOKEN_TTL_SECS));
        }
        let proof = super::mfa::second_factor(&mut fields);
        fields.finish()?;
        Ok(Self {
            name: name.unwrap_or_default(),
            current_password: current.unwrap_or_default(),
            expires_in,
            step_up: super::mfa::StepUpFields::default(),
            proof,
        })
    }
}

/// Longest personal-token lifetime accepted: 10 years.
const MAX_TOKEN_TTL_SECS: i64 = 10 * 366 * 24 * 3600;

/// `POST /tokens`.
pub(super) async fn create_token(call: Call<'_>) -> Result<Response, Error> {
    let principal: Principal = call.principal().await?;
    let body = CreateTokenRequest::decode(&call)?;
    let expires_in = body
        .expires_in
        .map(|secs| Duration::from_secs(secs.unsigned_abs()));
    let issued = call
        .auth
        .personal_tokens()
        .create_for(
            &principal,
            body.current_password,
            &body.proof,
            call.client(),
            body.name,
            expires_in,
        )
        .await?;
    Ok(Response::json(
        201,
        &PersonalTokenBody::new(&issued.record, Some(&issued.secret)),
    ))
}

/// `GET /tokens`.
pub(super) async fn tokens(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    let records = call.auth.personal_tokens().list(&principal).await?;
    let list: Vec<PersonalTokenBody> = records
        .iter()
        .map(|r| PersonalTokenBody::new(r, None))
        .collect();
    Ok(Response::json(200, &list))
}

/// `DELETE /tokens/{id}`.
pub(super) async fn delete_token(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    let token_id = call.id_param("id")?;
    call.auth
        .personal_tokens()
        .revoke(&principal, token_id, call.client())
        .await?;
    Ok(Response::empty(204))
}
