//! `GET /openapi.json`, mounted whatever the profiles: an OpenAPI 3.1 document of exactly
//! the mounted routes.

use std::collections::BTreeSet;

use super::prelude::*;
use crate::profile::Profile;

cases!("openapi" needs []:
    document_is_openapi_3_1,
    paths_are_exactly_the_mounted_routes,
    describes_the_cookie_transport needs [Native],
    timestamps_emails_and_ids_have_their_formats,
);

/// Paths served whatever the profiles, which the document may list or not.
const FIXED_PATHS: &[&str] = &[
    "/healthz",
    "/livez",
    "/readyz",
    "/openapi.json",
    "/.well-known/jwks.json",
];
/// The keys of a path item that are operations.
const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// `GET /openapi.json`, checked to be a JSON document.
async fn document(ctx: &Ctx) -> Result<Resp, Failure> {
    let resp = ctx.request(Method::GET, "/openapi.json").send().await?;
    resp.expect_json(200)?;
    Ok(resp)
}

/// "METHOD /full/path" of every route of the mounted profiles.
fn mounted_operations(mounts: &[(Profile, String)]) -> BTreeSet<String> {
    mounts
        .iter()
        .flat_map(|(profile, prefix)| {
            profile
                .routes()
                .iter()
                .map(move |(method, path)| format!("{method} {prefix}{path}"))
        })
        .collect()
}

/// "METHOD /path" of every operation the document lists, fixed paths left out.
fn documented_operations(document: &Value) -> BTreeSet<String> {
    document["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(path, _)| !FIXED_PATHS.contains(&path.as_str()))
        .flat_map(|(path, item)| {
            item.as_object()
                .into_iter()
                .flatten()
                .filter(|(key, _)| METHODS.contains(&key.as_str()))
                .map(move |(method, _)| format!("{} {path}", method.to_ascii_uppercase()))
        })
        .collect()
}

async fn document_is_openapi_3_1(ctx: Ctx) -> CaseResult {
    let resp = document(&ctx).await?;
    let body = resp.json().unwrap_or(&Value::Null);
    let version_ok = body["openapi"]
        .as_str()
        .is_some_and(|v| v.starts_with("3.1"));
    let info_ok = body["info"]["title"].is_string() && body["info"]["version"].is_string();
    if !(version_ok && info_ok && body["paths"].is_object()) {
        return Err(resp
            .fail("an OpenAPI document: `openapi` \"3.1.x\", `info` with title and version, `paths` an object")
            .into());
    }
    Ok(())
}

async fn paths_are_exactly_the_mounted_routes(ctx: Ctx) -> CaseResult {
    let resp = document(&ctx).await?;
    let documented = documented_operations(resp.json().unwrap_or(&Value::Null));
    let mounted = mounted_operations(ctx.mounts());
    let missing: Vec<&String> = mounted.difference(&documented).collect();
    let extra: Vec<&String> = documented.difference(&mounted).collect();
    if missing.is_empty() && extra.is_empty() {
        return Ok(());
    }
    Err(Failure::new(
        format!(
            "`paths` listing exactly the mounted routes: {}",
            mounted.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
        format!("missing {missing:?}, not mounted {extra:?}"),
    )
    .into())
}

/// The object a `{"$ref": "#/components/..."}` points to (or `value` itself).
fn resolve<'d>(document: &'d Value, value: &'d Value) -> &'d Value {
    match value["$ref"].as_str().and_then(|r| r.strip_prefix('#')) {
        Some(pointer) => document.pointer(pointer).unwrap_or(&Value::Null),
        None => value,
    }
}

async fn describes_the_cookie_transport(ctx: Ctx) -> CaseResult {
    let resp = document(&ctx).await?;
    let body = resp.json().unwrap_or(&Value::Null);
    let cookie_scheme = body["components"]["securitySchemes"]
        .as_object()
        .into_iter()
        .flatten()
        .any(|(_, scheme)| {
            scheme["type"] == "apiKey"
                && scheme["in"] == "cookie"
                && scheme["name"]
                    .as_str()
                    .is_some_and(|name| name.ends_with("auth_access"))
        });
    if !cookie_scheme {
        return Err(resp
            .fail("a security scheme of `type: apiKey`, `in: cookie` for the access cookie")
            .into());
    }
    let prefix = ctx
        .prefix(Profile::Native)
        .unwrap_or(Profile::Native.default_prefix())
        .to_owned();
    let operation = |path: &str, method: &str| &body["paths"][format!("{prefix}{path}")][method];
    let login = operation("/login", "post");
    let schema = resolve(
        body,
        &login["requestBody"]["content"]["application/json"]["schema"],
    );
    if schema["properties"]["transport"].is_null() {
        return Err(resp
            .fail("native's login body documenting a `transport` property")
            .into());
    }
    let csrf_documented = operation("/logout", "post")["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|parameter| resolve(body, parameter))
        .any(|parameter| {
            parameter["in"] == "header"
                && parameter["name"]
                    .as_str()
                    .is_some_and(|name| name.eq_ignore_ascii_case("x-csrf-token"))
        });
    if !csrf_documented {
        return Err(resp
            .fail("native's `POST /logout` documenting the `X-CSRF-Token` header")
            .into());
    }
    Ok(())
}

/// The `format` a property of this name must declare, if its name says what it holds:
/// `date-time` for `at` and `*_at`, `email` for `email` and `*_email`, `uuid` for `id` and
/// `*_id`.
fn expected_format(name: &str) -> Option<&'static str> {
    if name == "at" || name.ends_with("_at") {
        Some("date-time")
    } else if name == "email" || name.ends_with("_email") {
        Some("email")
    } else if name == "source_id" {
        // `jwt-user`'s reference into the system a user was imported from: not an id of
        // this API's, and of no fixed form.
        None
    } else if name == "id" || name.ends_with("_id") {
        Some("uuid")
    } else {
        None
    }
}

/// Whether a schema is (or may be, as in `["string", "null"]`) a string.
fn is_string(schema: &Value) -> bool {
    match &schema["type"] {
        Value::String(kind) => kind == "string",
        Value::Array(kinds) => kinds.iter().any(|kind| kind == "string"),
        _ => false,
    }
}

/// Every string property in `schema` (walked through nested objects, arrays, `oneOf`,
/// `anyOf` and `allOf`) whose name calls for a format it lacks, as "where.name (type,
/// format)".
fn missing_formats(schema: &Value, at: &str, out: &mut Vec<String>) {
    match schema {
        Value::Object(map) => {
            if let Some(Value::Object(properties)) = map.get("properties") {
                for (name, property) in properties {
                    // A nullable property may be written `oneOf: [{type: string}, {type: null}]`.
                    let strings: Vec<&Value> = std::iter::once(property)
                        .chain(
                            ["oneOf", "anyOf"]
                                .iter()
                                .filter_map(|key| property[*key].as_array())
                                .flatten(),
                        )
                        .filter(|s| is_string(s))
                        .collect();
                    if let Some(format) = expected_format(name) {
                        for string in strings {
                            if string["format"].as_str() != Some(format) {
                                out.push(format!(
                                    "{at}.{name} (wants {format}, has {})",
                                    string["format"]
                                ));
                            }
                        }
                    }
                }
            }
            for (key, value) in map {
                missing_formats(value, &format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                missing_formats(item, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Generated clients type what the document types: a timestamp declared a plain string
/// comes back as a string. Every `*_at` is `format: date-time`, every email
/// `format: email`, every id `format: uuid`, in components and inline schemas alike.
async fn timestamps_emails_and_ids_have_their_formats(ctx: Ctx) -> CaseResult {
    let resp = document(&ctx).await?;
    let body = resp.json().cloned().unwrap_or(Value::Null);
    let mut missing = Vec::new();
    missing_formats(&body, "", &mut missing);
    missing.sort();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Failure::new(
        "every timestamp, email and id in GET /openapi.json with its format",
        format!("{} without: {}", missing.len(), missing.join(", ")),
    )
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_come_from_paths_and_mounts() {
        let document = json!({"paths": {
            "/healthz": {"get": {}},
            "/api/auth/token": {"post": {}, "parameters": [], "summary": "s"},
            "/api/v2/auth/me": {"get": {}},
        }});
        assert_eq!(
            documented_operations(&document),
            BTreeSet::from([
                "POST /api/auth/token".to_owned(),
                "GET /api/v2/auth/me".to_owned()
            ])
        );
        let mounts = [
            (Profile::Envelope, "/api/auth".to_owned()),
            (Profile::Rbac, "/x".to_owned()),
        ];
        assert_eq!(
            mounted_operations(&mounts),
            BTreeSet::from([
                "POST /api/auth/token".to_owned(),
                "POST /x/login".to_owned(),
                "GET /x/me".to_owned(),
            ])
        );
        assert!(documented_operations(&json!({})).is_empty());
    }

    #[test]
    fn timestamps_are_named_at_or_ending_in_at() {
        assert_eq!(expected_format("at"), Some("date-time"));
        assert_eq!(expected_format("created_at"), Some("date-time"));
        assert_eq!(expected_format("format"), None);
    }
}
