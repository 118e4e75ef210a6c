//! `native`'s passkeys (issue 15): registration (with a step-up for accounts with a second
//! factor), the list, removal, passwordless sign-in, and the step-up challenge. Every route
//! answers 404 unless the deployment configured a WebAuthn relying party.

use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use super::super::body::timestamp;
use super::super::transport::Transport;
use super::super::{Call, session_terms};
use super::mfa::{StepUpFields, second_factor};
use super::{ACCESS_TTL, grant_answer};
use crate::error::Error;
use crate::http::Response;
use crate::service::PasskeyCeremony;
use crate::store::PasskeyRecord;
use crate::validate::Fields;

/// A registered passkey.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PasskeyBody<'a> {
    id: Uuid,
    name: &'a str,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    last_used_at: Option<String>,
}

impl<'a> PasskeyBody<'a> {
    fn new(record: &'a PasskeyRecord) -> Self {
        Self {
            id: record.id,
            name: &record.name,
            created_at: timestamp(record.created_at),
            last_used_at: record.last_used_at.map(timestamp),
        }
    }
}

/// A ceremony begun: `{challenge_token, options}` (no `Debug`: it holds the token).
#[derive(Serialize, utoipa::ToSchema)]
pub struct CeremonyBody<'a> {
    /// Names the ceremony at its `finish` route; works once, for five minutes.
    pub challenge_token: &'a str,
    /// The `publicKey` options, for `PublicKeyCredential.parseCreationOptionsFromJSON` or
    /// `parseRequestOptionsFromJSON`.
    pub options: &'a Value,
}

/// A step-up challenge: `{step_up_token, options}` (no `Debug`).
#[derive(Serialize, utoipa::ToSchema)]
pub struct StepUpBody<'a> {
    /// Sent with the assertion (`passkey`) in the sensitive operation's body.
    pub step_up_token: &'a str,
    /// The `publicKey` request options for the caller's passkeys.
    pub options: &'a Value,
}

/// `POST /passkeys/register/start`: the current password and, where the account has a
/// second factor, the step-up (no `Debug`: it holds the password).
#[derive(Serialize, utoipa::ToSchema)]
pub struct RegisterStartRequest {
    /// The current password.
    #[schema(format = Password)]
    pub current_password: String,
    /// The step-up.
    #[serde(flatten)]
    pub step_up: StepUpFields,
}

/// `POST /passkeys/register/finish`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RegisterFinishRequest {
    /// From `register/start`.
    pub challenge_token: String,
    /// `PublicKeyCredential.toJSON()` of `navigator.credentials.create()`.
    pub credential: serde_json::Map<String, Value>,
    /// A name for it (default "Passkey"), at most 100 characters.
    pub name: Option<String>,
}

/// `POST /passkeys/login/start`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LoginStartRequest {
    /// The account's address; without it any passkey the authenticator holds for this
    /// site may answer (discoverable credentials).
    #[schema(format = Email)]
    pub email: Option<String>,
}

/// `POST /passkeys/login/finish`.
#[derive(Serialize, utoipa::ToSchema)]
pub struct LoginFinishRequest {
    /// From `login/start`.
    pub challenge_token: String,
    /// `PublicKeyCredential.toJSON()` of `navigator.credentials.get()`.
    pub credential: serde_json::Map<String, Value>,
    /// Where the session's tokens go, as for `/login`.
    pub transport: Option<Transport>,
}

fn ceremony(ceremony: &PasskeyCeremony) -> Response {
    Response::json(
        200,
        &CeremonyBody {
            challenge_token: &ceremony.token,
            options: &ceremony.options,
        },
    )
}

/// A required JSON object field.
fn credential(fields: &mut Fields) -> Option<Value> {
    if !fields.has("credential") {
        fields.reject("credential", crate::error::Rule::Required);
        return None;
    }
    fields.optional_object("credential")
}

/// `POST /passkeys/register/start`.
pub(super) async fn register_start(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    let mut fields = call.fields()?;
    let current = fields.presented_password("current_password");
    let proof = second_factor(&mut fields);
    fields.finish()?;
    let started = call
        .auth
        .passkeys()
        .start_registration(
            &principal,
            current.unwrap_or_default(),
            &proof,
            call.client(),
        )
        .await?;
    Ok(ceremony(&started))
}

/// `POST /passkeys/register/finish`.
pub(super) async fn register_finish(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    let mut fields = call.fields()?;
    let token = fields.string("challenge_token");
    let credential = credential(&mut fields);
    let name = fields.optional_name("name");
    fields.finish()?;
    let record = call
        .auth
        .passkeys()
        .finish_registration(
            &principal,
            &token.unwrap_or_default(),
            &credential.unwrap_or_default(),
            name,
            call.client(),
        )
        .await?;
    Ok(Response::json(201, &PasskeyBody::new(&record)))
}

/// `GET /passkeys`.
pub(super) async fn list(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    let records = call.auth.passkeys().list(&principal).await?;
    let list: Vec<PasskeyBody> = records.iter().map(PasskeyBody::new).collect();
    Ok(Response::json(200, &list))
}

/// `DELETE /passkeys/{id}`.
pub(super) async fn delete(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    let id = call.id_param("id")?;
    let mut fields = Fields::parse_optional(call.body())?;
    let proof = second_factor(&mut fields);
    fields.finish()?;
    call.auth
        .passkeys()
        .delete(&principal, id, &proof, call.client())
        .await?;
    Ok(Response::empty(204))
}

/// `POST /passkeys/login/start`.
pub(super) async fn login_start(call: Call<'_>) -> Result<Response, Error> {
    let mut fields = Fields::parse_optional(call.body())?;
    let email = fields.optional_string("email");
    fields.finish()?;
    let started = call
        .auth
        .passkeys()
        .start_login(email.as_deref(), call.client())
        .await?;
    Ok(ceremony(&started))
}

/// `POST /passkeys/login/finish`.
pub(super) async fn login_finish(call: Call<'_>) -> Result<Response, Error> {
    let mut fields = call.fields()?;
    let token = fields.string("challenge_token");
    let credential = credential(&mut fields);
    let transport = Transport::decode(&mut fields);
    fields.finish()?;
    let grant = call
        .auth
        .passkeys()
        .finish_login(
            &token.unwrap_or_default(),
            &credential.unwrap_or_default(),
            call.client(),
            session_terms(&call, ACCESS_TTL),
        )
        .await?;
    grant_answer(&call, 200, &grant, transport)
}

/// `POST /passkeys/step-up/start`.
pub(super) async fn step_up_start(call: Call<'_>) -> Result<Response, Error> {
    let principal = call.principal().await?;
    let started = call
        .auth
        .passkeys()
        .start_step_up(&principal, call.client())
        .await?;
    Ok(Response::json(
        200,
        &StepUpBody {
            step_up_token: &started.token,
            options: &started.options,
        },
    ))
}
