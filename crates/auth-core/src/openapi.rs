//! The OpenAPI 3.1 document of exactly the mounted routes, generated from the route tables and
//! the types the handlers decode and encode (their `utoipa::ToSchema` derives).

use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{
    HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn, PathItem,
};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{
    ComponentsBuilder, KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type,
};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApi, OpenApiBuilder, PathsBuilder, RefOr, Required,
    ResponseBuilder, ResponsesBuilder,
};

use crate::config::Config;
use crate::error::{Error, reason_phrase};
use crate::http::JSON;
use crate::mount::{HEALTH_PATH, JWKS_PATH, LIVE_PATH, MountedProfile, OPENAPI_PATH, READY_PATH};
use crate::profile::Route;
use crate::service::is_safe_method;

/// Name of the bearer security scheme.
const BEARER: &str = "bearer";
/// Name of the access cookie's security scheme (the cookie transport).
const ACCESS_COOKIE: &str = "accessCookie";
/// Name of the refresh cookie's security scheme.
const REFRESH_COOKIE: &str = "refreshCookie";
/// The header a state change authenticated by the access cookie must carry.
const CSRF_HEADER: &str = "X-CSRF-Token";

/// Builds the document for these mounts (and the JWKS route when `jwks` is served); the
/// cookie transport's cookies are named as `config` names them.
pub fn document(mounts: &[MountedProfile], jwks: bool, config: &Config) -> OpenApi {
    let mut components: Vec<(String, RefOr<Schema>)> = Vec::new();
    let mut paths = PathsBuilder::new();
    for mount in mounts {
        let error_schema = (mount.profile.error_schema)(&mut components);
        let error_type = (mount.profile.render_error)(&Error::Internal).content_type;
        for mounted in mount.routes() {
            let route = mounted.route;
            let operation = operation(mount, route, &error_schema, error_type, &mut components);
            let item = PathItem::new(method(route.method), operation);
            // Route patterns already use OpenAPI's `{name}` syntax.
            paths = paths.path(mounted.full_path, item);
        }
    }
    paths = paths
        .path(HEALTH_PATH, PathItem::new(HttpMethod::Get, health()))
        .path(LIVE_PATH, PathItem::new(HttpMethod::Get, liveness()))
        .path(READY_PATH, PathItem::new(HttpMethod::Get, readiness()))
        .path(OPENAPI_PATH, PathItem::new(HttpMethod::Get, openapi_self()));
    if jwks {
        paths = paths.path(JWKS_PATH, PathItem::new(HttpMethod::Get, jwks_operation()));
    }
    let mut component_builder = ComponentsBuilder::new().security_scheme(
        BEARER,
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
    );
    if mounts.iter().any(|m| m.profile.cookie_sessions) {
        component_builder = component_builder
            .security_scheme(
                ACCESS_COOKIE,
                cookie_scheme(
                    crate::cookie::access_name(config),
                    "The cookie transport's access token (HttpOnly, Path=/), set by register, \
                     login and refresh with \"transport\": \"cookie\". Used when no \
                     Authorization header is sent; every method but GET and HEAD must then \
                     carry the session's X-CSRF-Token.",
                ),
            )
            .security_scheme(
                REFRESH_COOKIE,
                cookie_scheme(
                    crate::cookie::refresh_name(config),
                    "The cookie transport's refresh token (HttpOnly, scoped to the refresh \
                     path), exchanged by a refresh without a body.",
                ),
            );
    }
    components.sort_by(|a, b| a.0.cmp(&b.0));
    components.dedup_by(|a, b| a.0 == b.0);
    for (name, schema) in components {
        component_builder = component_builder.schema(name, schema);
    }
    OpenApiBuilder::new()
        .info(
            InfoBuilder::new()
                .title("auth-server")
                .version(env!("CARGO_PKG_VERSION"))
                .description(Some(
                    "Email/password and token authentication; one profile per mounted seed API.",
                ))
                .build(),
        )
        .paths(paths.build())
        .components(Some(component_builder.build()))
        .build()
}

fn method(method: &str) -> HttpMethod {
    match method {
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

fn operation(
    mount: &MountedProfile,
    route: &Route,
    error_schema: &RefOr<Schema>,
    error_type: &str,
    components: &mut Vec<(String, RefOr<Schema>)>,
) -> utoipa::openapi::path::Operation {
    let mut builder = OperationBuilder::new()
        .summary(Some(route.summary))
        .tag(mount.profile.name)
        .operation_id(Some(operation_id(mount, route)));
    for segment in route.path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            builder = builder.parameter(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
            );
        }
    }
    for &(name, json_type) in route.query {
        let (ty, format) = match json_type {
            "integer" => (Type::Integer, None),
            "uuid" => (Type::String, Some(KnownFormat::Uuid)),
            "date-time" => (Type::String, Some(KnownFormat::DateTime)),
            _ => (Type::String, None),
        };
        let schema = ObjectBuilder::new()
            .schema_type(ty)
            .format(format.map(SchemaFormat::KnownFormat));
        builder = builder.parameter(
            ParameterBuilder::new()
                .name(name)
                .parameter_in(ParameterIn::Query)
                .required(Required::False)
                .schema(Some(schema)),
        );
    }
    if let Some(request) = route.request {
        let schema = request(components);
        builder = builder.request_body(Some(
            RequestBodyBuilder::new()
                .content(JSON, ContentBuilder::new().schema(Some(schema)).build())
                .required(Some(if route.body_optional {
                    Required::False
                } else {
                    Required::True
                }))
                .build(),
        ));
    }
    builder = security(builder, mount, route);
    let mut responses = ResponsesBuilder::new();
    let success = ResponseBuilder::new().description(reason_phrase(route.success));
    let success = match route.response {
        Some(schema) => success.content(
            JSON,
            ContentBuilder::new()
                .schema(Some(schema(components)))
                .build(),
        ),
        None => success,
    };
    let success = if route.sets_cookies {
        success.header(
            "Set-Cookie",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::String))
                .description(Some(
                    "With the cookie transport: the access and refresh cookies (cleared with \
                     Max-Age=0 by a logout by cookie).",
                ))
                .build(),
        )
    } else {
        success
    };
    responses = responses.response(route.success.to_string(), success.build());
    for status in error_statuses(mount, route) {
        responses = responses.response(
            status.to_string(),
            ResponseBuilder::new()
                .description(reason_phrase(status))
                .content(
                    error_type,
                    ContentBuilder::new()
                        .schema(Some(error_schema.clone()))
                        .build(),
                )
                .build(),
        );
    }
    builder.responses(responses.build()).build()
}

/// The route's own error statuses plus those every route of its kind may answer, each as
/// this profile renders it (e.g. a malformed body is 400 in `native`, 422 in `rbac`).
fn error_statuses(mount: &MountedProfile, route: &Route) -> Vec<u16> {
    let render = |err: &Error| (mount.profile.render_error)(err).status;
    let mut statuses: Vec<u16> = route.errors.to_vec();
    if route.request.is_some() {
        statuses.extend([
            render(&Error::MalformedRequest),
            render(&Error::Validation(Vec::new())),
            render(&Error::PayloadTooLarge),
            render(&Error::UnsupportedMediaType),
        ]);
    }
    if route.authenticated {
        statuses.push(render(&Error::InvalidToken));
        if csrf_checked(mount, route) {
            statuses.push(render(&Error::CsrfFailed));
        }
    }
    statuses.extend([render(&Error::Internal), render(&Error::Unavailable)]);
    statuses.retain(|status| *status != route.success);
    statuses.sort_unstable();
    statuses.dedup();
    statuses
}

/// An `apiKey` scheme in a cookie.
fn cookie_scheme(name: &str, description: &str) -> SecurityScheme {
    SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
        name,
        description,
    )))
}

/// Whether the route, authenticated by the access cookie, needs `X-CSRF-Token`.
fn csrf_checked(mount: &MountedProfile, route: &Route) -> bool {
    route.authenticated && mount.profile.cookie_sessions && !is_safe_method(route.method)
}

/// The route's security alternatives (any one of them suffices) and the CSRF header.
fn security(
    mut builder: OperationBuilder,
    mount: &MountedProfile,
    route: &Route,
) -> OperationBuilder {
    let requirement = |name: &str| SecurityRequirement::new(name, Vec::<String>::new());
    if route.takes_refresh_cookie {
        // The body's refresh token, the bearer access token, or the refresh cookie.
        builder = builder
            .security(SecurityRequirement::default())
            .security(requirement(BEARER))
            .security(requirement(REFRESH_COOKIE));
    } else if route.authenticated {
        builder = builder.security(requirement(BEARER));
        if mount.profile.cookie_sessions {
            builder = builder.security(requirement(ACCESS_COOKIE));
        }
    }
    if csrf_checked(mount, route) {
        builder = builder.parameter(
            ParameterBuilder::new()
                .name(CSRF_HEADER)
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "The session's csrf_token; required when the access cookie authenticates \
                     (403 CSRF_FAILED otherwise), ignored with a bearer token.",
                ))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String))),
        );
    }
    builder
}

fn operation_id(mount: &MountedProfile, route: &Route) -> String {
    let path: String = route
        .path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.trim_matches(|c| c == '{' || c == '}'))
        .collect::<Vec<_>>()
        .join("_");
    format!(
        "{}_{}_{}",
        mount.profile.name.replace('-', "_"),
        route.method.to_ascii_lowercase(),
        path
    )
}

fn status_object() -> RefOr<Schema> {
    ObjectBuilder::new()
        .property("status", ObjectBuilder::new().schema_type(Type::String))
        .required("status")
        .into()
}

/// A `{"status": ...}` answer.
fn status_body(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        JSON,
        ContentBuilder::new().schema(Some(status_object())).build(),
    )
}

fn health() -> utoipa::openapi::path::Operation {
    let body = |description: &str| status_body(description).build();
    OperationBuilder::new()
        .summary(Some("Whether the database answers"))
        .tag("health")
        .operation_id(Some("healthz"))
        .responses(
            ResponsesBuilder::new()
                .response("200", body("The database answers"))
                .response("503", body("The database does not answer"))
                .build(),
        )
        .build()
}

fn liveness() -> utoipa::openapi::path::Operation {
    OperationBuilder::new()
        .summary(Some(
            "Whether the process answers (never asks the database)",
        ))
        .tag("health")
        .operation_id(Some("livez"))
        .responses(
            ResponsesBuilder::new()
                .response("200", status_body("The process answers").build())
                .build(),
        )
        .build()
}

fn readiness() -> utoipa::openapi::path::Operation {
    let retry_after = utoipa::openapi::HeaderBuilder::new()
        .schema(ObjectBuilder::new().schema_type(Type::Integer))
        .description(Some("Seconds to wait before asking again"))
        .build();
    OperationBuilder::new()
        .summary(Some(
            "Whether this instance can serve: the database answers",
        ))
        .tag("health")
        .operation_id(Some("readyz"))
        .responses(
            ResponsesBuilder::new()
                .response("200", status_body("The database answers").build())
                .response(
                    "503",
                    status_body("The database does not answer")
                        .header("Retry-After", retry_after)
                        .build(),
                )
                .build(),
        )
        .build()
}

fn jwks_operation() -> utoipa::openapi::path::Operation {
    let keys = utoipa::openapi::schema::ArrayBuilder::new().items(
        ObjectBuilder::new()
            .property("kty", ObjectBuilder::new().schema_type(Type::String))
            .property("crv", ObjectBuilder::new().schema_type(Type::String))
            .property("x", ObjectBuilder::new().schema_type(Type::String))
            .property("kid", ObjectBuilder::new().schema_type(Type::String))
            .property("alg", ObjectBuilder::new().schema_type(Type::String))
            .property("use", ObjectBuilder::new().schema_type(Type::String)),
    );
    OperationBuilder::new()
        .summary(Some("The public keys that verify access tokens"))
        .tag("meta")
        .operation_id(Some("jwks"))
        .responses(
            ResponsesBuilder::new()
                .response(
                    "200",
                    ResponseBuilder::new()
                        .description("JSON Web Key Set")
                        .content(
                            JSON,
                            ContentBuilder::new()
                                .schema(Some(
                                    ObjectBuilder::new().property("keys", keys).required("keys"),
                                ))
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .build()
}

fn openapi_self() -> utoipa::openapi::path::Operation {
    OperationBuilder::new()
        .summary(Some("This document"))
        .tag("meta")
        .operation_id(Some("openapi"))
        .responses(
            ResponsesBuilder::new()
                .response(
                    "200",
                    ResponseBuilder::new()
                        .description("OpenAPI 3.1 document")
                        .content(
                            JSON,
                            ContentBuilder::new()
                                .schema(Some(ObjectBuilder::new()))
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .build()
}
