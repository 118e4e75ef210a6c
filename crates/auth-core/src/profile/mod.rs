//! Profiles: one seed API each, as data (a route table, a default prefix and access-token
//! lifetime) plus small encoders, all on the one [`Auth`] core.
//!
//! Adding a profile means one file: a `pub static PROFILE: Profile` with its routes and its
//! error encoder, listed in [`ALL`].

pub mod admin;
pub mod audit;
pub mod body;
pub mod envelope;
pub mod jwt_user;
pub mod native;
pub mod personal_token;
pub mod problem;
pub mod rbac;
pub mod transport;
pub mod wording;

use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::Value;
use utoipa::openapi::{RefOr, schema::Schema};

use crate::error::{Error, Input};
use crate::http::{Body, Request, Response};
use crate::principal::Principal;
use crate::service::{Auth, Client};
use crate::validate::Fields;

/// A route handler: decodes the request, calls the core, encodes the answer.
pub type Handler = for<'a> fn(Call<'a>) -> BoxFuture<'a, Result<Response, Error>>;

/// Adds a type's schema (and those it refers to) to the components and returns a reference.
pub type SchemaFn = fn(&mut Vec<(String, RefOr<Schema>)>) -> RefOr<Schema>;

/// [`SchemaFn`] of a type.
pub fn schema_of<T: utoipa::ToSchema>(
    components: &mut Vec<(String, RefOr<Schema>)>,
) -> RefOr<Schema> {
    components.push((T::name().into_owned(), T::schema()));
    T::schemas(components);
    RefOr::Ref(utoipa::openapi::Ref::from_schema_name(T::name()))
}

/// [`SchemaFn`] of a JSON array of a type.
pub fn list_of<T: utoipa::ToSchema>(
    components: &mut Vec<(String, RefOr<Schema>)>,
) -> RefOr<Schema> {
    let item = schema_of::<T>(components);
    utoipa::openapi::schema::ArrayBuilder::new()
        .items(item)
        .into()
}

/// One route of a profile.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    /// Upper-case method.
    pub method: &'static str,
    /// Path below the profile's prefix; `{name}` segments are parameters.
    pub path: &'static str,
    /// Whether the route needs a bearer token (documentation and OpenAPI).
    pub authenticated: bool,
    /// One-line summary.
    pub summary: &'static str,
    /// The handler.
    pub handler: Handler,
    /// Schema of the JSON request body, if the route takes one.
    pub request: Option<SchemaFn>,
    /// Whether that body may be left out.
    pub body_optional: bool,
    /// Status of success.
    pub success: u16,
    /// Schema of the success body (`None`: no body).
    pub response: Option<SchemaFn>,
    /// Error statuses this route answers beyond those every route may (documentation).
    pub errors: &'static [u16],
    /// Query parameters it reads: name and type (`string`, `integer`, or a string of format
    /// `uuid` or `date-time`).
    pub query: &'static [(&'static str, &'static str)],
    /// Whether it can answer with the cookie transport's `Set-Cookie` (documentation).
    pub sets_cookies: bool,
    /// Whether it takes the refresh cookie (documentation).
    pub takes_refresh_cookie: bool,
}

impl Route {
    /// Documents the request body.
    pub const fn body(mut self, schema: SchemaFn) -> Self {
        self.request = Some(schema);
        self
    }

    /// Documents a request body that may be left out.
    pub const fn optional_body(mut self, schema: SchemaFn) -> Self {
        self.request = Some(schema);
        self.body_optional = true;
        self
    }

    /// Documents the success status and body.
    pub const fn answers(mut self, status: u16, schema: Option<SchemaFn>) -> Self {
        self.success = status;
        self.response = schema;
        self
    }

    /// Documents the query parameters.
    pub const fn query(mut self, parameters: &'static [(&'static str, &'static str)]) -> Self {
        self.query = parameters;
        self
    }

    /// Documents that the route can set the session cookies (`"transport": "cookie"`).
    pub const fn sets_cookies(mut self) -> Self {
        self.sets_cookies = true;
        self
    }

    /// Documents that the route takes the refresh cookie (and sets the session cookies).
    pub const fn takes_refresh_cookie(mut self) -> Self {
        self.takes_refresh_cookie = true;
        self.sets_cookies = true;
        self
    }

    /// Documents the route's own error statuses.
    pub const fn errors(mut self, statuses: &'static [u16]) -> Self {
        self.errors = statuses;
        self
    }
}

/// The body and headers of an error, as a profile renders it.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorBody {
    /// Status (usually [`Error::status`]).
    pub status: u16,
    /// Media type of the body.
    pub content_type: &'static str,
    /// The body.
    pub body: Value,
}

/// A profile: a seed API as a route table and encoders.
#[derive(Debug)]
pub struct Profile {
    /// Name used in configuration, e.g. `native`.
    pub name: &'static str,
    /// Where it is mounted unless configured otherwise.
    pub default_prefix: &'static str,
    /// Default access-token lifetime; `None` means tokens do not expire unless asked.
    pub default_access_ttl: Option<Duration>,
    /// The routes, relative to the prefix.
    pub routes: &'static [Route],
    /// Renders an error in this profile's shape.
    pub render_error: fn(&Error) -> ErrorBody,
    /// The request field that carries each domain input (see [`Error::naming`]).
    pub input_names: fn(Input) -> &'static str,
    /// Schema of this profile's error bodies.
    pub error_schema: SchemaFn,
    /// Whether its authenticated routes take the access cookie of the cookie transport
    /// (with CSRF protection) when no `Authorization` header is sent. The seed profiles keep
    /// their bearer-only wire.
    pub cookie_sessions: bool,
}

/// The field names `native` (and every profile speaking its field names) gives the domain's
/// inputs.
pub fn native_input_names(input: Input) -> &'static str {
    match input {
        Input::Email => "email",
        Input::Password => "password",
        Input::NewPassword => "new_password",
        Input::PasswordHash => "password_hash",
        Input::Organization => "organization_id",
    }
}

/// Every profile this build knows.
pub static ALL: &[&Profile] = &[
    &native::PROFILE,
    &admin::PROFILE,
    &envelope::PROFILE,
    &personal_token::PROFILE,
    &rbac::PROFILE,
    &jwt_user::PROFILE,
];

/// Looks a profile up by name.
pub fn find(name: &str) -> Option<&'static Profile> {
    ALL.iter().copied().find(|profile| profile.name == name)
}

/// The body of every email-and-password login.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct LoginRequest {
    /// Email address (trimmed, compared case-insensitively).
    #[schema(format = Email, example = "user@example.com")]
    pub email: String,
    /// Password, 1 to 1024 characters.
    #[schema(format = Password, example = "securepassword")]
    pub password: String,
}

impl LoginRequest {
    /// Decodes and validates the body.
    pub fn decode(call: &Call<'_>) -> Result<Self, Error> {
        let mut fields = call.fields()?;
        let login = Self::read(&mut fields);
        fields.finish()?;
        Ok(login)
    }

    /// Reads `email` and `password` from a body that may hold more fields (their errors are
    /// collected in `fields`).
    pub fn read(fields: &mut Fields) -> Self {
        let email = fields.email("email");
        let password = fields.presented_password("password");
        Self {
            email: email.unwrap_or_default(),
            password: password.unwrap_or_default(),
        }
    }
}

/// Builds a route entry (keeps the tables short).
pub(crate) const fn route(
    method: &'static str,
    path: &'static str,
    authenticated: bool,
    summary: &'static str,
    handler: Handler,
) -> Route {
    Route {
        method,
        path,
        authenticated,
        summary,
        handler,
        request: None,
        body_optional: false,
        success: 200,
        response: None,
        errors: &[],
        query: &[],
        sets_cookies: false,
        takes_refresh_cookie: false,
    }
}

/// A JWT's lifetime for a mount whose profile always has one.
pub(crate) fn jwt_ttl(call: &Call<'_>, default: Duration) -> Duration {
    call.access_ttl.unwrap_or(default)
}

/// What a session opened through this mount is bound by: the mount's profile and its JWT
/// lifetime (`default` unless configured).
pub(crate) fn session_terms(call: &Call<'_>, default: Duration) -> crate::service::SessionTerms {
    crate::service::SessionTerms {
        profile: call.profile.name,
        access_ttl: jwt_ttl(call, default),
    }
}

/// What a handler gets.
pub struct Call<'a> {
    /// The core.
    pub auth: &'a Auth,
    /// The request.
    pub request: &'a Request,
    /// Path parameters by name.
    pub params: &'a [(&'static str, String)],
    /// Access-token lifetime for this mount (`None`: no expiry unless asked).
    pub access_ttl: Option<Duration>,
    /// The mounted profile answering.
    pub profile: &'static Profile,
    /// The prefix it is mounted at, e.g. `/api/v1/auth`.
    pub prefix: &'a str,
}

impl Call<'_> {
    /// A path parameter (empty when absent, which cannot happen for a matched route).
    pub fn param(&self, name: &str) -> &str {
        self.params
            .iter()
            .find(|(n, _)| *n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// A path parameter that names a record by id: `NotFound` when it is not a UUID, since
    /// no record has such an id.
    pub fn id_param(&self, name: &str) -> Result<uuid::Uuid, Error> {
        uuid::Uuid::parse_str(self.param(name)).map_err(|_| Error::NotFound)
    }

    /// The body bytes (the size limit was enforced before the handler ran).
    pub fn body(&self) -> &[u8] {
        match &self.request.body {
            Body::Complete(bytes) => bytes,
            Body::TooLarge => &[],
        }
    }

    /// The body as a JSON object.
    pub fn fields(&self) -> Result<Fields, Error> {
        Fields::parse(self.body())
    }

    /// The client: IP (through trusted proxies only) and `User-Agent`.
    pub fn client(&self) -> Client<'_> {
        Client {
            ip: crate::http::client_ip(self.request, &self.auth.config().trusted_proxies),
            user_agent: self.user_agent(),
        }
    }

    /// The `User-Agent` header.
    pub fn user_agent(&self) -> Option<&str> {
        self.request.headers.user_agent.as_deref()
    }

    /// Authenticates the caller: the bearer token, or where the profile takes the cookie
    /// transport and no `Authorization` header is sent, the access cookie (with the CSRF
    /// check of state changes); see [`crate::service::Sessions::authenticate_request`].
    pub async fn principal(&self) -> Result<Principal, Error> {
        self.auth
            .sessions()
            .authenticate_request(
                &self.request.method,
                &self.request.headers,
                self.profile.cookie_sessions,
            )
            .await
    }

    /// Whether the caller authenticates by the access cookie: no `Authorization` header, on a
    /// profile that takes the cookie transport.
    pub fn by_cookie(&self) -> bool {
        self.profile.cookie_sessions && self.request.headers.authorization.is_none()
    }
}
