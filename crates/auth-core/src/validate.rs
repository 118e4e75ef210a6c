//! Request-body parsing and the field rules shared by every profile.

use serde_json::{Map, Value};

use crate::error::{Error, FieldError, Rule};

/// Longest accepted email address.
pub const MAX_EMAIL_LEN: usize = 254;
/// Shortest password that may be set.
pub const MIN_PASSWORD_LEN: usize = 8;
/// Longest password accepted anywhere.
pub const MAX_PASSWORD_LEN: usize = 1024;
/// Longest display name or token name.
pub const MAX_NAME_LEN: usize = 255;

/// A JSON object body, read field by field while collecting every field error.
#[derive(Debug)]
pub struct Fields {
    object: Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Fields {
    /// Parses a body that must be a JSON object; anything else is [`Error::MalformedRequest`].
    pub fn parse(body: &[u8]) -> Result<Self, Error> {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(object)) => Ok(Self {
                object,
                errors: Vec::new(),
            }),
            _ => Err(Error::MalformedRequest),
        }
    }

    /// Like [`Fields::parse`], but an empty body is an empty object.
    pub fn parse_optional(body: &[u8]) -> Result<Self, Error> {
        if body.iter().all(u8::is_ascii_whitespace) {
            Ok(Self {
                object: Map::new(),
                errors: Vec::new(),
            })
        } else {
            Self::parse(body)
        }
    }

    /// Whether the field is present and not null.
    pub fn has(&self, name: &str) -> bool {
        !matches!(self.object.get(name), None | Some(Value::Null))
    }

    /// Records an error for `name`.
    pub fn reject(&mut self, name: &str, rule: Rule) {
        self.errors.push(FieldError {
            field: name.to_owned(),
            rule,
        });
    }

    /// A required string field.
    pub fn string(&mut self, name: &str) -> Option<String> {
        match self.object.get(name) {
            None | Some(Value::Null) => {
                self.reject(name, Rule::Required);
                None
            }
            Some(_) => self.optional_string(name),
        }
    }

    /// An optional string field (absent or null is `None`).
    pub fn optional_string(&mut self, name: &str) -> Option<String> {
        match self.object.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                self.reject(name, Rule::String);
                None
            }
        }
    }

    /// An optional field that must be one of `values` (exactly, case included): its index.
    /// Anything else, a non-string included, breaks [`Rule::OneOf`].
    pub fn optional_one_of(
        &mut self,
        name: &str,
        values: &'static [&'static str],
    ) -> Option<usize> {
        match self.object.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) if values.contains(&s.as_str()) => {
                values.iter().position(|v| v == s)
            }
            Some(_) => {
                self.reject(name, Rule::OneOf(values));
                None
            }
        }
    }

    /// An optional integer field.
    pub fn optional_integer(&mut self, name: &str) -> Option<i64> {
        match self.object.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64(),
            Some(_) => {
                self.reject(name, Rule::Integer);
                None
            }
        }
    }

    /// An optional, nullable string: absent `None`, null `Some(None)`.
    pub fn patch_string(&mut self, name: &str) -> Option<Option<String>> {
        match self.object.get(name) {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(s)) if s.chars().count() > MAX_NAME_LEN => {
                self.reject(name, Rule::MaxChars(MAX_NAME_LEN));
                None
            }
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(_) => {
                self.reject(name, Rule::String);
                None
            }
        }
    }

    /// An optional, nullable UUID: absent `None`, null `Some(None)`.
    pub fn patch_uuid(&mut self, name: &str) -> Option<Option<uuid::Uuid>> {
        match self.object.get(name) {
            None => None,
            Some(Value::Null) => Some(None),
            Some(Value::String(s)) => match uuid::Uuid::parse_str(s) {
                Ok(id) => Some(Some(id)),
                Err(_) => {
                    self.reject(name, Rule::Uuid);
                    None
                }
            },
            Some(_) => {
                self.reject(name, Rule::Uuid);
                None
            }
        }
    }

    /// An optional boolean (null counts as absent).
    pub fn optional_bool(&mut self, name: &str) -> Option<bool> {
        match self.object.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                self.reject(name, Rule::Boolean);
                None
            }
        }
    }

    /// An optional array of non-empty strings of at most 255 characters (null counts as absent).
    pub fn optional_string_array(&mut self, name: &str) -> Option<Vec<String>> {
        match self.object.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => {
                let strings: Option<Vec<String>> = items
                    .iter()
                    .map(|item| match item {
                        Value::String(s)
                            if !s.trim().is_empty() && s.chars().count() <= MAX_NAME_LEN =>
                        {
                            Some(s.trim().to_owned())
                        }
                        _ => None,
                    })
                    .collect();
                if strings.is_none() {
                    self.reject(name, Rule::StringArray);
                }
                strings
            }
            Some(_) => {
                self.reject(name, Rule::StringArray);
                None
            }
        }
    }

    /// An optional JSON object (null counts as absent).
    pub fn optional_object(&mut self, name: &str) -> Option<Value> {
        match self.object.get(name) {
            None | Some(Value::Null) => None,
            Some(value @ Value::Object(_)) => Some(value.clone()),
            Some(_) => {
                self.reject(name, Rule::Object);
                None
            }
        }
    }

    /// Ends reading: the collected field errors, if any.
    pub fn finish(self) -> Result<(), Error> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(self.errors))
        }
    }

    /// A required email address, trimmed and checked (see [`check_email`]).
    pub fn email(&mut self, name: &str) -> Option<String> {
        let raw = self.string(name)?;
        let email = raw.trim().to_owned();
        match check_email(&email) {
            Ok(()) => Some(email),
            Err(rule) => {
                self.reject(name, rule);
                None
            }
        }
    }

    /// A required password that is being set (see [`check_new_password`]).
    pub fn new_password(&mut self, name: &str) -> Option<String> {
        let password = self.string(name)?;
        match check_new_password(&password) {
            Ok(()) => Some(password),
            Err(rule) => {
                self.reject(name, rule);
                None
            }
        }
    }

    /// A required password being presented: non-empty, at most 1024 characters.
    pub fn presented_password(&mut self, name: &str) -> Option<String> {
        let password = self.string(name)?;
        if password.is_empty() {
            self.reject(name, Rule::NotEmpty);
            None
        } else if password.chars().count() > MAX_PASSWORD_LEN {
            self.reject(name, Rule::MaxChars(MAX_PASSWORD_LEN));
            None
        } else {
            Some(password)
        }
    }

    /// An optional name-like string of at most 255 characters.
    pub fn optional_name(&mut self, name: &str) -> Option<String> {
        let value = self.optional_string(name)?;
        if value.chars().count() > MAX_NAME_LEN {
            self.reject(name, Rule::MaxChars(MAX_NAME_LEN));
            None
        } else {
            Some(value)
        }
    }
}

/// Checks a password that is being set: 8 to 1024 characters, no composition rules.
pub fn check_new_password(password: &str) -> Result<(), Rule> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        Err(Rule::MinChars(MIN_PASSWORD_LEN))
    } else if len > MAX_PASSWORD_LEN {
        Err(Rule::MaxChars(MAX_PASSWORD_LEN))
    } else {
        Ok(())
    }
}

/// The 10,000 most common passwords, lower-cased (see `data/README.md`).
static COMMON_PASSWORDS: std::sync::LazyLock<std::collections::HashSet<&'static str>> =
    std::sync::LazyLock::new(|| {
        include_str!("../data/common-passwords.txt")
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect()
    });

/// Whether a password is among the 10,000 most common ones (ignoring case).
pub fn is_common_password(password: &str) -> bool {
    COMMON_PASSWORDS.contains(password.to_lowercase().as_str())
}

/// The normalized form under which addresses are compared and kept unique.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Checks a trimmed address: `local@domain`, at most 254 characters, ASCII, the local part of
/// dot-separated RFC 5322 atoms (at most 64 characters), the domain of at least two
/// dot-separated labels of letters, digits and inner hyphens.
pub fn check_email(email: &str) -> Result<(), Rule> {
    const INVALID: Rule = Rule::Email;
    if email.is_empty() || email.len() > MAX_EMAIL_LEN || !email.is_ascii() {
        return Err(INVALID);
    }
    let Some((local, domain)) = email.rsplit_once('@') else {
        return Err(INVALID);
    };
    let atom_char = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local
            .split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(atom_char));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if local_ok && domain_ok {
        Ok(())
    } else {
        Err(INVALID)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails() {
        for ok in ["a@b.co", "John.Doe+tag@Example.COM", "x_y@sub.domain.org"] {
            assert_eq!(check_email(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "plain",
            "@b.co",
            "a@",
            "a@b",
            "a@.co",
            "a@b..co",
            ".a@b.co",
            "a..b@c.co",
            "a b@c.co",
            "a@-b.co",
            "é@b.co",
            "a@b.co@c.co",
        ] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
        let long = format!("{}@{}.com", "a".repeat(64), "b".repeat(186));
        assert_eq!(long.len(), 255);
        assert!(check_email(&long).is_err());
    }

    #[test]
    fn bodies() {
        assert_eq!(Fields::parse(b"[]").unwrap_err(), Error::MalformedRequest);
        assert_eq!(Fields::parse(b"{").unwrap_err(), Error::MalformedRequest);
        assert_eq!(Fields::parse(b"").unwrap_err(), Error::MalformedRequest);
        assert!(Fields::parse_optional(b"  ").is_ok());
    }

    #[test]
    fn collects_every_field_error() {
        let mut f = Fields::parse(br#"{"email": 3, "password": "short"}"#).unwrap();
        assert!(f.email("email").is_none());
        assert!(f.new_password("password").is_none());
        assert!(f.optional_name("full_name").is_none());
        let Err(Error::Validation(errors)) = f.finish() else {
            panic!("expected validation errors")
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["email", "password"]);
        assert_eq!(errors[0].rule, Rule::String);
    }

    #[test]
    fn common_passwords() {
        assert_eq!(COMMON_PASSWORDS.len(), 10_000);
        assert!(is_common_password("password1"));
        assert!(is_common_password("PASSWORD"));
        assert!(!is_common_password("correct horse battery staple 42"));
    }

    #[test]
    fn passwords() {
        let long = "x".repeat(1025);
        let body = serde_json::json!({"a": "1234567", "b": "12345678", "c": long, "d": ""});
        let mut f = Fields::parse(body.to_string().as_bytes()).unwrap();
        assert!(f.new_password("a").is_none());
        assert!(f.new_password("b").is_some());
        assert!(f.new_password("c").is_none());
        assert!(f.presented_password("c").is_none());
        assert!(f.presented_password("d").is_none());
        assert!(f.presented_password("b").is_some());
    }
}
