//! How each seed words validation errors: Laravel (`personal-token`, `jwt-user`) and FastAPI
//! (`rbac`). The rules are the core's; only the words differ.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{FieldError, Rule};

/// Laravel's sentence for one broken rule, e.g. "The email field is required."
pub fn laravel(error: &FieldError) -> String {
    let field = &error.field;
    match error.rule {
        Rule::Required | Rule::NotEmpty => format!("The {field} field is required."),
        Rule::String => format!("The {field} field must be a string."),
        Rule::Integer => format!("The {field} field must be an integer."),
        Rule::Boolean => format!("The {field} field must be true or false."),
        Rule::Object | Rule::StringArray => format!("The {field} field must be an array."),
        Rule::Uuid => format!("The {field} field must be a valid UUID."),
        Rule::Email => format!("The {field} field must be a valid email address."),
        Rule::MinChars(n) => format!("The {field} field must be at least {n} characters."),
        Rule::MaxChars(n) => {
            format!("The {field} field must not be greater than {n} characters.")
        }
        Rule::Between(min, max) => format!("The {field} field must be between {min} and {max}."),
        Rule::Exists => format!("The selected {field} is invalid."),
        Rule::Format => format!("The {field} field format is invalid."),
        Rule::OneOf(_) => format!("The selected {field} is invalid."),
        Rule::DateTime => format!("The {field} field must be a valid date."),
        Rule::NotCommon => {
            format!(
                "The given {field} has appeared in a data leak. Please choose a different {field}."
            )
        }
    }
}

/// Laravel's summary: the first message, and how many more there are.
pub fn laravel_summary(errors: &[FieldError]) -> String {
    let first = errors.first().map(laravel).unwrap_or_default();
    match errors.len() {
        0 | 1 => first,
        2 => format!("{first} (and 1 more error)"),
        n => format!("{first} (and {} more errors)", n - 1),
    }
}

/// Laravel's `errors` object: every field with its messages.
pub fn laravel_errors(errors: &[FieldError]) -> Value {
    let mut object = Map::new();
    for error in errors {
        let entry = object
            .entry(error.field.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(messages) = entry {
            messages.push(Value::String(laravel(error)));
        }
    }
    Value::Object(object)
}

/// One item of FastAPI's 422 `detail` list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FastApiIssue {
    /// Where: `["body", field]`.
    pub loc: Vec<String>,
    /// What.
    pub msg: String,
    /// Machine-readable kind, e.g. `missing`.
    #[serde(rename = "type")]
    pub kind: String,
}

/// FastAPI's wording of one broken rule.
pub fn fastapi(error: &FieldError) -> FastApiIssue {
    let (msg, kind) = match error.rule {
        Rule::Required => ("Field required".to_owned(), "missing"),
        Rule::String => ("Input should be a valid string".to_owned(), "string_type"),
        Rule::Integer => ("Input should be a valid integer".to_owned(), "int_type"),
        Rule::Boolean => ("Input should be a valid boolean".to_owned(), "bool_type"),
        Rule::Object => ("Input should be a valid dictionary".to_owned(), "dict_type"),
        Rule::StringArray => ("Input should be a valid list".to_owned(), "list_type"),
        Rule::Uuid => ("Input should be a valid UUID".to_owned(), "uuid_parsing"),
        Rule::Email => (
            "value is not a valid email address".to_owned(),
            "value_error",
        ),
        Rule::NotEmpty => (
            "String should have at least 1 character".to_owned(),
            "string_too_short",
        ),
        Rule::MinChars(n) => (
            format!("String should have at least {n} characters"),
            "string_too_short",
        ),
        Rule::MaxChars(n) => (
            format!("String should have at most {n} characters"),
            "string_too_long",
        ),
        Rule::Between(min, max) => (
            format!("Input should be between {min} and {max}"),
            "value_error",
        ),
        Rule::Exists => ("Value does not exist".to_owned(), "value_error"),
        Rule::Format => ("Value error, unsupported format".to_owned(), "value_error"),
        Rule::OneOf(values) => (format!("Input should be {}", values.join(" or ")), "enum"),
        Rule::DateTime => (
            "Input should be a valid datetime".to_owned(),
            "datetime_parsing",
        ),
        Rule::NotCommon => (
            "Value error, password is too common".to_owned(),
            "value_error",
        ),
    };
    FastApiIssue {
        loc: vec!["body".to_owned(), error.field.clone()],
        msg,
        kind: kind.to_owned(),
    }
}

/// FastAPI's answer to a body that is not a JSON object.
pub fn fastapi_malformed() -> Vec<FastApiIssue> {
    vec![FastApiIssue {
        loc: vec!["body".to_owned()],
        msg: "Input should be a valid dictionary or object to extract fields from".to_owned(),
        kind: "model_attributes_type".to_owned(),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(field: &str, rule: Rule) -> FieldError {
        FieldError {
            field: field.to_owned(),
            rule,
        }
    }

    #[test]
    fn laravel_wording() {
        let errors = [
            err("email", Rule::Required),
            err("password", Rule::Required),
        ];
        assert_eq!(
            laravel_summary(&errors),
            "The email field is required. (and 1 more error)"
        );
        assert_eq!(
            laravel_errors(&errors),
            json!({"email": ["The email field is required."], "password": ["The password field is required."]})
        );
        assert_eq!(
            laravel(&err("token_name", Rule::MaxChars(255))),
            "The token_name field must not be greater than 255 characters."
        );
    }

    #[test]
    fn fastapi_wording() {
        let issue = fastapi(&err("email", Rule::Required));
        assert_eq!(issue.loc, ["body", "email"]);
        assert_eq!(issue.msg, "Field required");
        assert_eq!(issue.kind, "missing");
    }
}
