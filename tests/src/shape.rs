//! Declarative JSON shapes of every profile's response objects, and their checker.

use serde_json::{Map, Value};
use uuid::Uuid;

/// What one field of an object must hold.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field {
    /// Any string.
    Str,
    /// A string holding a UUID.
    Uuid,
    /// An RFC 3339 UTC timestamp ending in `Z`.
    Time,
    /// A boolean.
    Bool,
    /// An integer.
    Int,
    /// An array of strings.
    StrArray,
    /// Any array.
    Array,
    /// `null` and nothing else.
    Null,
    /// Any JSON value.
    Any,
    /// Exactly this string.
    Is(&'static str),
    /// Exactly this integer.
    IsInt(i64),
    /// `null` or what the inner field says.
    Nullable(&'static Field),
    /// A nested object of this shape.
    Object(&'static Shape),
    /// An array of objects of this shape.
    ArrayOf(&'static Shape),
    /// An object with any keys, each holding what the inner field says.
    MapOf(&'static Field),
}

/// An object with exactly these keys.
#[derive(Debug)]
pub(crate) struct Shape {
    /// Name used in failure messages, e.g. "user".
    pub(crate) name: &'static str,
    /// Every key and what it holds; no other key is allowed.
    pub(crate) fields: &'static [(&'static str, Field)],
}

/// An RFC 9457 problem document as `native` answers errors; `status` and `code` are
/// compared with the expected values separately.
pub(crate) const PROBLEM: Shape = Shape {
    name: "problem",
    fields: &[
        ("type", Field::Is("about:blank")),
        ("title", Field::Str),
        ("status", Field::Int),
        ("detail", Field::Str),
        ("code", Field::Str),
    ],
};

/// A problem document for `422 VALIDATION_ERROR`.
pub(crate) const VALIDATION_PROBLEM: Shape = Shape {
    name: "validation problem",
    fields: &[
        ("type", Field::Is("about:blank")),
        ("title", Field::Str),
        ("status", Field::Int),
        ("detail", Field::Str),
        ("code", Field::Str),
        ("errors", Field::ArrayOf(&FIELD_ERROR)),
    ],
};

/// One entry of a validation problem's `errors`.
pub(crate) const FIELD_ERROR: Shape = Shape {
    name: "field error",
    fields: &[("field", Field::Str), ("message", Field::Str)],
};

/// The user object.
pub(crate) const USER: Shape = Shape {
    name: "user",
    fields: &[
        ("id", Field::Uuid),
        ("email", Field::Str),
        ("full_name", Field::Nullable(&Field::Str)),
        ("is_active", Field::Bool),
        ("roles", Field::StrArray),
        ("organization_id", Field::Nullable(&Field::Uuid)),
        ("created_at", Field::Time),
        ("email_verified_at", Field::Nullable(&Field::Time)),
    ],
};

/// The token object (native's default access-token lifetime).
pub(crate) const TOKEN_PAIR: Shape = Shape {
    name: "token",
    fields: &[
        ("access_token", Field::Str),
        ("token_type", Field::Is("bearer")),
        ("expires_in", Field::IsInt(604_800)),
        ("refresh_token", Field::Str),
    ],
};

/// The answer of register and login.
pub(crate) const AUTH: Shape = Shape {
    name: "{user, token}",
    fields: &[
        ("user", Field::Object(&USER)),
        ("token", Field::Object(&TOKEN_PAIR)),
    ],
};

/// The answer of register, login and refresh with the cookie transport: the tokens are in
/// `HttpOnly` cookies, so the body holds none (exactly these keys).
pub(crate) const COOKIE_SESSION: Shape = Shape {
    name: "{user, expires_in, csrf_token}",
    fields: &[
        ("user", Field::Object(&USER)),
        ("expires_in", Field::Int),
        ("csrf_token", Field::Str),
    ],
};

/// One entry of `GET /sessions`.
pub(crate) const SESSION: Shape = Shape {
    name: "session",
    fields: &[
        ("id", Field::Uuid),
        ("created_at", Field::Time),
        ("last_used_at", Field::Nullable(&Field::Time)),
        ("user_agent", Field::Nullable(&Field::Str)),
        ("current", Field::Bool),
    ],
};

/// The answer of `POST /tokens`, the only one showing the secret.
pub(crate) const NEW_PERSONAL_TOKEN: Shape = Shape {
    name: "new personal token",
    fields: &[
        ("id", Field::Uuid),
        ("name", Field::Str),
        ("token", Field::Str),
        ("created_at", Field::Time),
        ("expires_at", Field::Nullable(&Field::Time)),
    ],
};

/// One entry of `GET /tokens`.
pub(crate) const LISTED_PERSONAL_TOKEN: Shape = Shape {
    name: "listed personal token",
    fields: &[
        ("id", Field::Uuid),
        ("name", Field::Str),
        ("created_at", Field::Time),
        ("expires_at", Field::Nullable(&Field::Time)),
        ("last_used_at", Field::Nullable(&Field::Time)),
    ],
};

/// `native`'s admin answer to `GET /users`.
pub(crate) const USER_PAGE: Shape = Shape {
    name: "user page",
    fields: &[("items", Field::ArrayOf(&USER)), ("total", Field::Int)],
};

/// `native`'s admin organization object.
pub(crate) const ORGANIZATION: Shape = Shape {
    name: "organization",
    fields: &[
        ("id", Field::Uuid),
        ("name", Field::Str),
        ("created_at", Field::Time),
    ],
};

/// `envelope`'s answer to `POST /token` (default lifetime).
pub(crate) const ENVELOPE_TOKEN: Shape = Shape {
    name: "envelope token",
    fields: &[
        ("message", Field::Is("API token issued successfully")),
        ("data", Field::Object(&ENVELOPE_TOKEN_DATA)),
    ],
};

/// The `data` member of [`ENVELOPE_TOKEN`].
pub(crate) const ENVELOPE_TOKEN_DATA: Shape = Shape {
    name: "envelope token data",
    fields: &[
        ("access_token", Field::Str),
        ("token_type", Field::Is("Bearer")),
        ("expires_in", Field::IsInt(86_400)),
    ],
};

/// `personal-token`'s answer to `POST /login`.
pub(crate) const PERSONAL_TOKEN_LOGIN: Shape = Shape {
    name: "personal token",
    fields: &[("token", Field::Str)],
};

/// `personal-token`'s validation error, Laravel's: `errors` maps fields to messages.
pub(crate) const LARAVEL_VALIDATION: Shape = Shape {
    name: "Laravel validation error",
    fields: &[
        ("message", Field::Str),
        ("errors", Field::MapOf(&Field::StrArray)),
    ],
};

/// `rbac`'s answer to `POST /login`.
pub(crate) const RBAC_TOKEN: Shape = Shape {
    name: "rbac token",
    fields: &[
        ("access_token", Field::Str),
        ("token_type", Field::Is("bearer")),
    ],
};

/// `rbac`'s validation error, FastAPI's.
pub(crate) const RBAC_VALIDATION: Shape = Shape {
    name: "FastAPI validation error",
    fields: &[("detail", Field::ArrayOf(&RBAC_FIELD_ERROR))],
};

/// One entry of [`RBAC_VALIDATION`]'s `detail`.
pub(crate) const RBAC_FIELD_ERROR: Shape = Shape {
    name: "FastAPI field error",
    fields: &[
        ("loc", Field::Array),
        ("msg", Field::Str),
        ("type", Field::Str),
    ],
};

/// `rbac`'s answer to `GET /me`.
pub(crate) const RBAC_ME: Shape = Shape {
    name: "rbac current user",
    fields: &[
        ("user", Field::Object(&RBAC_USER)),
        ("roles", Field::ArrayOf(&RBAC_ROLE)),
        ("organization_id", Field::Nullable(&Field::Uuid)),
    ],
};

/// The `user` member of [`RBAC_ME`].
pub(crate) const RBAC_USER: Shape = Shape {
    name: "rbac user",
    fields: &[
        ("id", Field::Uuid),
        ("email", Field::Str),
        ("full_name", Field::Nullable(&Field::Str)),
        ("phone", Field::Nullable(&Field::Str)),
        ("organization_id", Field::Nullable(&Field::Uuid)),
        ("status", Field::Str),
        ("onboarding_completed", Field::Bool),
        ("onboarding_step", Field::Int),
        ("onboarding_data", Field::Any),
        ("created_at", Field::Time),
        ("updated_at", Field::Time),
    ],
};

/// One entry of [`RBAC_ME`]'s `roles`.
pub(crate) const RBAC_ROLE: Shape = Shape {
    name: "rbac role",
    fields: &[
        ("id", Field::Uuid),
        ("name", Field::Str),
        ("description", Field::Nullable(&Field::Str)),
    ],
};

/// `jwt-user`'s error; `success` is always false.
pub(crate) const JWT_USER_ERROR: Shape = Shape {
    name: "jwt-user error",
    fields: &[("success", Field::Bool), ("message", Field::Str)],
};

/// `jwt-user`'s answer to `POST /login` (default lifetime).
pub(crate) const JWT_USER_LOGIN: Shape = Shape {
    name: "jwt-user login",
    fields: &[
        ("access_token", Field::Str),
        ("token_type", Field::Is("bearer")),
        ("expires_in", Field::IsInt(3600)),
        ("user", Field::Object(&JWT_USER_USER)),
    ],
};

/// The `user` member of [`JWT_USER_LOGIN`] for a user without an organization: what the
/// core does not keep is null.
pub(crate) const JWT_USER_USER: Shape = Shape {
    name: "jwt-user user",
    fields: &[
        ("id", Field::Uuid),
        ("name", Field::Nullable(&Field::Str)),
        ("email", Field::Str),
        ("email_verified_at", Field::Nullable(&Field::Time)),
        ("two_factor_confirmed_at", Field::Null),
        ("current_team_id", Field::Null),
        ("profile_photo_path", Field::Null),
        ("source_id", Field::Null),
        ("created_at", Field::Time),
        ("updated_at", Field::Time),
        ("last_renew_password_at", Field::Null),
        ("profile_photo_url", Field::Null),
    ],
};

impl Shape {
    /// Checks `value` against the shape; the error names the offending path.
    pub(crate) fn check(&self, value: &Value) -> Result<(), String> {
        self.check_at(value, "")
    }

    /// A short description, e.g. `user {id: uuid, email: string, ...}`.
    pub(crate) fn describe(&self) -> String {
        format!("{} {}", self.name, self.describe_fields())
    }

    fn describe_fields(&self) -> String {
        let fields: Vec<String> = self
            .fields
            .iter()
            .map(|(key, field)| format!("{key}: {}", field.describe()))
            .collect();
        format!("{{{}}}", fields.join(", "))
    }

    fn check_at(&self, value: &Value, path: &str) -> Result<(), String> {
        let object = value
            .as_object()
            .ok_or_else(|| format!("{} is not an object", display_path(path)))?;
        exact_keys(object, self.fields, path)?;
        for (key, field) in self.fields {
            if let Some(v) = object.get(*key) {
                field.check(v, &format!("{path}/{key}"))?;
            }
        }
        Ok(())
    }
}

impl Field {
    fn check(&self, value: &Value, path: &str) -> Result<(), String> {
        let ok = match self {
            Field::Str => value.is_string(),
            Field::Uuid => value.as_str().is_some_and(|s| Uuid::parse_str(s).is_ok()),
            Field::Time => value.as_str().is_some_and(|s| parse_utc(s).is_some()),
            Field::Bool => value.is_boolean(),
            Field::Int => value.is_i64() || value.is_u64(),
            Field::StrArray => value
                .as_array()
                .is_some_and(|items| items.iter().all(Value::is_string)),
            Field::Array => value.is_array(),
            Field::Null => value.is_null(),
            Field::Any => true,
            Field::Is(expected) => value.as_str() == Some(*expected),
            Field::IsInt(expected) => value.as_i64() == Some(*expected),
            Field::Nullable(inner) => {
                return if value.is_null() {
                    Ok(())
                } else {
                    inner.check(value, path)
                };
            }
            Field::Object(shape) => return shape.check_at(value, path),
            Field::ArrayOf(shape) => {
                let Some(items) = value.as_array() else {
                    return Err(format!(
                        "{} should be an array, is {value}",
                        display_path(path)
                    ));
                };
                return items
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, item)| shape.check_at(item, &format!("{path}/{i}")));
            }
            Field::MapOf(inner) => {
                let Some(object) = value.as_object() else {
                    return Err(format!(
                        "{} should be an object, is {value}",
                        display_path(path)
                    ));
                };
                return object
                    .iter()
                    .try_for_each(|(key, item)| inner.check(item, &format!("{path}/{key}")));
            }
        };
        if ok {
            Ok(())
        } else {
            Err(format!(
                "{} should be {}, is {value}",
                display_path(path),
                self.describe()
            ))
        }
    }

    fn describe(&self) -> String {
        match self {
            Field::Str => "string".to_owned(),
            Field::Uuid => "UUID".to_owned(),
            Field::Time => "RFC 3339 UTC time ending in Z".to_owned(),
            Field::Bool => "boolean".to_owned(),
            Field::Int => "integer".to_owned(),
            Field::StrArray => "array of strings".to_owned(),
            Field::Array => "array".to_owned(),
            Field::Null => "null".to_owned(),
            Field::Any => "any value".to_owned(),
            Field::Is(s) => format!("{s:?}"),
            Field::IsInt(n) => n.to_string(),
            Field::Nullable(inner) => format!("{} or null", inner.describe()),
            Field::Object(shape) => shape.describe_fields(),
            Field::ArrayOf(shape) => format!("[{}]", shape.describe_fields()),
            Field::MapOf(inner) => format!("{{field: {}}}", inner.describe()),
        }
    }
}

fn exact_keys(
    object: &Map<String, Value>,
    fields: &[(&'static str, Field)],
    path: &str,
) -> Result<(), String> {
    let missing: Vec<&str> = fields
        .iter()
        .map(|(key, _)| *key)
        .filter(|key| !object.contains_key(*key))
        .collect();
    let extra: Vec<&str> = object
        .keys()
        .map(String::as_str)
        .filter(|key| !fields.iter().any(|(k, _)| k == key))
        .collect();
    if missing.is_empty() && extra.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{} has missing keys {missing:?} and unexpected keys {extra:?}",
        display_path(path)
    ))
}

fn display_path(path: &str) -> &str {
    if path.is_empty() { "the value" } else { path }
}

/// Parses an RFC 3339 timestamp in UTC (`YYYY-MM-DDTHH:MM:SS[.fraction]Z`) into Unix
/// seconds; `None` for anything else, including other offsets.
pub(crate) fn parse_utc(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    let rest = text.strip_suffix('Z')?;
    if bytes.len() < 20
        || bytes[4] != b'-'
        || bytes[7] != b'-'
        || bytes[10] != b'T'
        || bytes[13] != b':'
        || bytes[16] != b':'
    {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = rest.get(range)?;
        if digits.bytes().all(|b| b.is_ascii_digit()) {
            digits.parse().ok()
        } else {
            None
        }
    };
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    let fraction = rest.get(19..)?;
    let fraction_ok = fraction.is_empty()
        || (fraction.len() > 1
            && fraction.starts_with('.')
            && fraction[1..].bytes().all(|b| b.is_ascii_digit()));
    let in_range = (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second <= 60;
    if !(fraction_ok && in_range) {
        return None;
    }
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let shifted_month = (month + 9) % 12;
    let day_of_year = (153 * shifted_month + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Value {
        json!({
            "id": "3f1c2a9e-5b7d-4c1e-9a2b-0d4e6f8a1b2c",
            "email": "A@example.com",
            "full_name": null,
            "is_active": true,
            "roles": [],
            "organization_id": null,
            "created_at": "2024-01-01T00:00:00Z",
            "email_verified_at": null,
        })
    }

    #[test]
    fn a_conforming_user_passes() {
        assert_eq!(USER.check(&user()), Ok(()));
    }

    #[test]
    fn missing_and_extra_keys_are_named() {
        let mut value = user();
        let object = value.as_object_mut().unwrap();
        object.remove("roles");
        object.insert("password_hash".to_owned(), json!("x"));
        let error = USER.check(&value).unwrap_err();
        assert!(error.contains(r#"missing keys ["roles"]"#), "{error}");
        assert!(
            error.contains(r#"unexpected keys ["password_hash"]"#),
            "{error}"
        );
    }

    #[test]
    fn wrong_field_types_name_the_path() {
        let mut value = user();
        value["created_at"] = json!("2024-01-01T00:00:00+00:00");
        let error = USER.check(&value).unwrap_err();
        assert!(
            error.starts_with("/created_at should be RFC 3339"),
            "{error}"
        );

        let mut value = user();
        value["id"] = json!(7);
        assert!(USER.check(&value).unwrap_err().starts_with("/id "));
    }

    #[test]
    fn nested_shapes_and_literals_are_checked() {
        let good = json!({
            "user": user(),
            "token": {"access_token": "a", "token_type": "bearer", "expires_in": 604800, "refresh_token": "r"},
        });
        assert_eq!(AUTH.check(&good), Ok(()));

        let mut bad = good.clone();
        bad["token"]["token_type"] = json!("Bearer");
        let error = AUTH.check(&bad).unwrap_err();
        assert!(
            error.starts_with("/token/token_type should be \"bearer\""),
            "{error}"
        );

        let mut bad = good;
        bad["token"]["expires_in"] = json!(3600);
        assert!(AUTH.check(&bad).unwrap_err().contains("604800"));
    }

    #[test]
    fn maps_nulls_and_any_values() {
        let good = json!({"message": "m", "errors": {"email": ["e"], "password": []}});
        assert_eq!(LARAVEL_VALIDATION.check(&good), Ok(()));
        let bad = json!({"message": "m", "errors": {"email": "e"}});
        assert!(
            LARAVEL_VALIDATION
                .check(&bad)
                .unwrap_err()
                .starts_with("/errors/email should be array of strings")
        );
        let list = json!({"message": "m", "errors": []});
        assert!(
            LARAVEL_VALIDATION
                .check(&list)
                .unwrap_err()
                .contains("object")
        );
        assert_eq!(
            LARAVEL_VALIDATION.describe(),
            "Laravel validation error {message: string, errors: {field: array of strings}}"
        );

        let role =
            json!({"id": "3f1c2a9e-5b7d-4c1e-9a2b-0d4e6f8a1b2c", "name": "r", "description": null});
        assert_eq!(RBAC_ROLE.check(&role), Ok(()));
        assert!(Field::Null.check(&json!(0), "/x").is_err());
        assert!(Field::Any.check(&json!({"a": [1]}), "/x").is_ok());
        assert!(Field::Array.check(&json!(["body", 1]), "/x").is_ok());
    }

    #[test]
    fn non_objects_are_rejected() {
        assert_eq!(
            USER.check(&json!([])),
            Err("the value is not an object".to_owned())
        );
    }

    #[test]
    fn timestamps() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_utc("2000-03-01T00:00:01Z"), Some(951_868_801));
        assert_eq!(
            parse_utc("2024-02-29T12:30:45.123456Z"),
            Some(1_709_209_845)
        );
        assert_eq!(parse_utc("2023-02-29T00:00:00Z"), None);
        assert_eq!(parse_utc("2024-01-01T00:00:00"), None);
        assert_eq!(parse_utc("2024-01-01 00:00:00Z"), None);
        assert_eq!(parse_utc("2024-01-01T00:00:00.Z"), None);
        assert_eq!(parse_utc("2024-13-01T00:00:00Z"), None);
        assert_eq!(parse_utc("2024-01-01T24:00:00Z"), None);
        assert_eq!(parse_utc("2024-01-01T00:00:00+01:00"), None);
        assert_eq!(parse_utc("+024-01-01T00:00:00Z"), None);
        assert_eq!(parse_utc("Z"), None);
    }

    #[test]
    fn descriptions_are_readable() {
        assert_eq!(
            SESSION.describe(),
            "session {id: UUID, created_at: RFC 3339 UTC time ending in Z, \
             last_used_at: RFC 3339 UTC time ending in Z or null, \
             user_agent: string or null, current: boolean}"
        );
    }
}
