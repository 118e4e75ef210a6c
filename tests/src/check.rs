//! Assertions on captured responses. Each returns a [`Failure`] that states what the
//! contract expected, with the response (and what exactly was off) as what was got.

use serde_json::Value;

use crate::http::Resp;
use crate::report::Failure;
use crate::shape::{PROBLEM, Shape, VALIDATION_PROBLEM};

/// Media type of success bodies.
pub(crate) const JSON: &str = "application/json";
/// Media type of `native` error bodies.
pub(crate) const PROBLEM_JSON: &str = "application/problem+json";
/// Problem code of validation errors.
pub(crate) const VALIDATION_ERROR: &str = "VALIDATION_ERROR";
/// Problem code of every 401 on an authenticated route or `/refresh`.
pub(crate) const UNAUTHORIZED: &str = "UNAUTHORIZED";

/// The `WWW-Authenticate` challenge a 401 must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// No token was presented: `Bearer`.
    Missing,
    /// A token was presented but is not acceptable: `Bearer error="invalid_token"`.
    InvalidToken,
}

impl Challenge {
    /// The exact header value.
    pub(crate) fn header(self) -> &'static str {
        match self {
            Challenge::Missing => "Bearer",
            Challenge::InvalidToken => r#"Bearer error="invalid_token""#,
        }
    }
}

/// Names the step of a case a failure belongs to.
pub(crate) trait Step {
    /// Prefixes the failure's `expected` with `step`, e.g. "old access token after refresh".
    fn step(self, step: &str) -> Self;
}

impl<T> Step for Result<T, Failure> {
    fn step(self, step: &str) -> Self {
        self.map_err(|failure| Failure {
            expected: format!("{step}: {}", failure.expected),
            got: failure.got,
        })
    }
}

impl Resp {
    /// The status is `status`.
    pub(crate) fn expect_status(&self, status: u16) -> Result<(), Failure> {
        if self.status == status {
            Ok(())
        } else {
            Err(self.fail(format!("status {status}")))
        }
    }

    /// The status is `status` and the body is JSON sent as `application/json`.
    pub(crate) fn expect_json(&self, status: u16) -> Result<&Value, Failure> {
        let expected = || format!("status {status} with a JSON body (Content-Type: {JSON})");
        self.expect_status(status)
            .map_err(|_| self.fail(expected()))?;
        if self.media_type().as_deref() != Some(JSON) {
            return Err(self.fail_because(expected(), "wrong Content-Type"));
        }
        self.json()
            .ok_or_else(|| self.fail_because(expected(), "body is not JSON"))
    }

    /// The status is `status`, the body is JSON and has `shape`.
    pub(crate) fn expect_shape(&self, status: u16, shape: &Shape) -> Result<&Value, Failure> {
        let expected = || format!("status {status} with body {} ({JSON})", shape.describe());
        let body = self
            .expect_json(status)
            .map_err(|failure| Failure::new(expected(), failure.got))?;
        shape
            .check(body)
            .map_err(|why| self.fail_because(expected(), &why))?;
        Ok(body)
    }

    /// The status is 200 and the body is a JSON array of objects of `shape`.
    pub(crate) fn expect_list_of(&self, shape: &Shape) -> Result<&Vec<Value>, Failure> {
        let expected = || format!("status 200 with a JSON array of {}", shape.describe());
        let items = self
            .expect_json(200)?
            .as_array()
            .ok_or_else(|| self.fail_because(expected(), "body is not an array"))?;
        for (i, item) in items.iter().enumerate() {
            shape
                .check(item)
                .map_err(|why| self.fail_because(expected(), &format!("item {i}: {why}")))?;
        }
        Ok(items)
    }

    /// The status is `status` and the body is JSON (`application/json`) equal to `expected`.
    pub(crate) fn expect_exact(&self, status: u16, expected: &Value) -> Result<&Value, Failure> {
        let what = || format!("status {status} with exactly {expected} (Content-Type: {JSON})");
        let body = self
            .expect_json(status)
            .map_err(|failure| Failure::new(what(), failure.got))?;
        if body == expected {
            Ok(body)
        } else {
            Err(self.fail(what()))
        }
    }

    /// Exactly one `WWW-Authenticate` header, equal to `challenge`.
    pub(crate) fn expect_challenge(&self, challenge: Challenge) -> Result<(), Failure> {
        let values = self.header_values("www-authenticate");
        if values.len() == 1 && values[0] == challenge.header() {
            Ok(())
        } else {
            Err(self.fail(format!(
                "exactly one `WWW-Authenticate: {}`",
                challenge.header()
            )))
        }
    }

    /// An `Allow` header listing (at least) every method of `allowed`.
    pub(crate) fn expect_allow(&self, allowed: &[&str]) -> Result<(), Failure> {
        let listed: Vec<String> = self
            .header_values("allow")
            .iter()
            .flat_map(|value| value.split(','))
            .map(|m| m.trim().to_ascii_uppercase())
            .collect();
        if allowed.iter().all(|m| listed.iter().any(|l| l == m)) {
            Ok(())
        } else {
            Err(self.fail(format!("an `Allow` header listing {}", allowed.join(", "))))
        }
    }

    /// 204 with an empty body.
    pub(crate) fn expect_no_content(&self) -> Result<(), Failure> {
        if self.status == 204 && self.body.is_empty() {
            Ok(())
        } else {
            Err(self.fail("status 204 with an empty body"))
        }
    }

    /// A `native` problem document with this status and code.
    pub(crate) fn expect_problem(&self, status: u16, code: &str) -> Result<&Value, Failure> {
        self.problem(status, Some(code))
    }

    /// A `native` problem document with this status and any code.
    pub(crate) fn expect_problem_any_code(&self, status: u16) -> Result<&Value, Failure> {
        self.problem(status, None)
    }

    /// `Cache-Control: no-store`: an answer that carries a token or a user must never be kept
    /// by a cache (issue 10, rule 11).
    pub(crate) fn expect_no_store(&self) -> Result<(), Failure> {
        let values = self.header_values("cache-control");
        let no_store = values.iter().any(|value| {
            value
                .split(',')
                .any(|directive| directive.trim().eq_ignore_ascii_case("no-store"))
        });
        if no_store {
            Ok(())
        } else {
            Err(self.fail("a `Cache-Control: no-store` header"))
        }
    }

    /// `422 VALIDATION_ERROR` whose `errors` name `field`.
    pub(crate) fn expect_validation(&self, field: &str) -> Result<(), Failure> {
        let body = self.problem(422, Some(VALIDATION_ERROR))?;
        let named = body["errors"]
            .as_array()
            .is_some_and(|errors| errors.iter().any(|e| e["field"] == field));
        if named {
            Ok(())
        } else {
            Err(self.fail_because(
                format!("422 {VALIDATION_ERROR} with an entry for field {field:?} in `errors`"),
                &format!("no error names {field:?}"),
            ))
        }
    }

    /// `401 UNAUTHORIZED` with exactly one `WWW-Authenticate` header, equal to `challenge`.
    pub(crate) fn expect_unauthorized(&self, challenge: Challenge) -> Result<(), Failure> {
        let expected = format!(
            "status 401, {PROBLEM_JSON} with code {UNAUTHORIZED:?}, and exactly \
             `WWW-Authenticate: {}`",
            challenge.header()
        );
        self.problem(401, Some(UNAUTHORIZED))
            .map_err(|failure| Failure::new(&expected, failure.got))?;
        self.expect_challenge(challenge)
            .map_err(|_| self.fail(expected))
    }

    /// The JSON value at `pointer` (RFC 6901, "" for the whole body) equals `expected`.
    pub(crate) fn expect_at(&self, pointer: &str, expected: &Value) -> Result<(), Failure> {
        match self.json().and_then(|body| body.pointer(pointer)) {
            Some(value) if value == expected => Ok(()),
            _ => Err(self.fail(format!("{} == {expected}", show_pointer(pointer)))),
        }
    }

    /// The string at `pointer`.
    pub(crate) fn str_at(&self, pointer: &str) -> Result<&str, Failure> {
        self.json()
            .and_then(|body| body.pointer(pointer))
            .and_then(Value::as_str)
            .ok_or_else(|| self.fail(format!("a string at {}", show_pointer(pointer))))
    }

    /// Same status, same headers (except `date` and `content-length`) and the same JSON body
    /// as `other`: answers that must not tell two situations apart.
    pub(crate) fn expect_same_as(&self, other: &Resp, situations: &str) -> Result<(), Failure> {
        let same = self.status == other.status
            && self.json().is_some()
            && self.json() == other.json()
            && comparable_headers(self) == comparable_headers(other);
        if same {
            Ok(())
        } else {
            Err(Failure::new(
                format!("identical status, headers and body for {situations}"),
                format!("{}\nversus {}", self.describe(), other.describe()),
            ))
        }
    }

    fn problem(&self, status: u16, code: Option<&str>) -> Result<&Value, Failure> {
        let shape = if code == Some(VALIDATION_ERROR) {
            &VALIDATION_PROBLEM
        } else {
            &PROBLEM
        };
        let code_text = code.map_or_else(|| "string".to_owned(), |c| format!("{c:?}"));
        let errors = if code == Some(VALIDATION_ERROR) {
            ", errors: [{field, message}]"
        } else {
            ""
        };
        let expected = format!(
            "status {status}, {PROBLEM_JSON} {{type: \"about:blank\", title, status: {status}, \
             detail, code: {code_text}{errors}}}"
        );
        self.problem_mismatch(status, code, shape)
            .map_err(|why| self.fail_because(expected, &why))
    }

    fn problem_mismatch(
        &self,
        status: u16,
        code: Option<&str>,
        shape: &Shape,
    ) -> Result<&Value, String> {
        if self.status != status {
            return Err(format!("status is {}", self.status));
        }
        if self.media_type().as_deref() != Some(PROBLEM_JSON) {
            return Err("wrong Content-Type".to_owned());
        }
        let body = self.json().ok_or("body is not JSON")?;
        shape.check(body)?;
        if body["status"] != status {
            return Err("`status` member differs from the HTTP status".to_owned());
        }
        if let Some(code) = code
            && body["code"] != code
        {
            return Err(format!("code is {}", body["code"]));
        }
        Ok(body)
    }
}

/// Headers that must not differ between two indistinguishable answers, sorted. Left out:
/// `Date`, `Content-Length` (the bodies are compared), and `X-Request-Id`, which names each
/// request and says nothing of the account.
pub(crate) fn comparable_headers(resp: &Resp) -> Vec<(String, Vec<u8>)> {
    let mut headers: Vec<(String, Vec<u8>)> = resp
        .headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "content-length" | "x-request-id"))
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect();
    headers.sort();
    headers
}

fn show_pointer(pointer: &str) -> &str {
    if pointer.is_empty() {
        "the body"
    } else {
        pointer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::tests::resp;
    use serde_json::json;

    const PROBLEM_CT: (&str, &str) = ("content-type", "application/problem+json");

    fn problem(status: u16, code: &str) -> String {
        json!({"type": "about:blank", "title": "T", "status": status, "detail": "d", "code": code})
            .to_string()
    }

    #[test]
    fn status_and_json() {
        let r = resp(
            201,
            &[("content-type", "application/json; charset=utf-8")],
            r#"{"a":1}"#,
        );
        assert!(r.expect_status(201).is_ok());
        assert_eq!(r.expect_json(201).unwrap(), &json!({"a": 1}));
        let failure = r.expect_json(200).unwrap_err();
        assert_eq!(
            failure.expected,
            "status 200 with a JSON body (Content-Type: application/json)"
        );
        assert!(failure.got.starts_with("GET /x -> 201"), "{}", failure.got);

        let wrong_type = resp(200, &[PROBLEM_CT], "{}");
        assert!(
            wrong_type
                .expect_json(200)
                .unwrap_err()
                .got
                .ends_with("[wrong Content-Type]")
        );
    }

    #[test]
    fn no_content_requires_an_empty_body() {
        assert!(resp(204, &[], "").expect_no_content().is_ok());
        assert!(resp(204, &[], "{}").expect_no_content().is_err());
        assert!(resp(200, &[], "").expect_no_content().is_err());
    }

    #[test]
    fn problems_are_checked_exactly() {
        let ok = resp(400, &[PROBLEM_CT], &problem(400, "EMAIL_TAKEN"));
        assert!(ok.expect_problem(400, "EMAIL_TAKEN").is_ok());
        assert!(ok.expect_problem_any_code(400).is_ok());

        let got = |r: &Resp| r.expect_problem(400, "EMAIL_TAKEN").unwrap_err().got;
        assert!(got(&ok.clone_with_status(409)).ends_with("[status is 409]"));
        let wrong_code = resp(400, &[PROBLEM_CT], &problem(400, "OTHER"));
        assert!(got(&wrong_code).ends_with(r#"[code is "OTHER"]"#));
        let plain_json = resp(
            400,
            &[("content-type", "application/json")],
            &problem(400, "EMAIL_TAKEN"),
        );
        assert!(got(&plain_json).ends_with("[wrong Content-Type]"));
        let status_mismatch = resp(400, &[PROBLEM_CT], &problem(401, "EMAIL_TAKEN"));
        assert!(got(&status_mismatch).contains("`status` member"));
        let no_type = resp(
            400,
            &[PROBLEM_CT],
            r#"{"title":"T","status":400,"detail":"d","code":"EMAIL_TAKEN"}"#,
        );
        assert!(got(&no_type).contains(r#"missing keys ["type"]"#));
        let numeric_detail = resp(
            400,
            &[PROBLEM_CT],
            r#"{"type":"about:blank","title":"T","status":400,"detail":5,"code":"EMAIL_TAKEN"}"#,
        );
        assert!(got(&numeric_detail).contains("/detail should be string"));
    }

    #[test]
    fn problem_expectations_read_like_the_contract() {
        let r = resp(200, &[], "");
        assert_eq!(
            r.expect_problem(415, "UNSUPPORTED_MEDIA_TYPE")
                .unwrap_err()
                .expected,
            "status 415, application/problem+json {type: \"about:blank\", title, status: 415, \
             detail, code: \"UNSUPPORTED_MEDIA_TYPE\"}"
        );
        assert!(
            r.expect_validation("email")
                .unwrap_err()
                .expected
                .ends_with("code: \"VALIDATION_ERROR\", errors: [{field, message}]}")
        );
    }

    #[test]
    fn validation_errors_must_name_the_field() {
        let body = json!({
            "type": "about:blank", "title": "Unprocessable Entity", "status": 422,
            "detail": "invalid", "code": "VALIDATION_ERROR",
            "errors": [{"field": "password", "message": "too short"}],
        });
        let r = resp(422, &[PROBLEM_CT], &body.to_string());
        assert!(r.expect_validation("password").is_ok());
        let failure = r.expect_validation("email").unwrap_err();
        assert!(failure.expected.contains(r#"field "email""#));

        let without_errors = resp(422, &[PROBLEM_CT], &problem(422, "VALIDATION_ERROR"));
        assert!(
            without_errors
                .expect_validation("password")
                .unwrap_err()
                .got
                .contains(r#"missing keys ["errors"]"#)
        );
    }

    #[test]
    fn unauthorized_needs_the_exact_challenge() {
        let invalid = resp(
            401,
            &[
                PROBLEM_CT,
                ("www-authenticate", r#"Bearer error="invalid_token""#),
            ],
            &problem(401, "UNAUTHORIZED"),
        );
        assert!(invalid.expect_unauthorized(Challenge::InvalidToken).is_ok());
        let failure = invalid.expect_unauthorized(Challenge::Missing).unwrap_err();
        assert_eq!(
            failure.expected,
            "status 401, application/problem+json with code \"UNAUTHORIZED\", and exactly \
             `WWW-Authenticate: Bearer`"
        );
        assert!(
            failure
                .got
                .contains(r#"www-authenticate: Bearer error="invalid_token""#)
        );

        let none = resp(401, &[PROBLEM_CT], &problem(401, "UNAUTHORIZED"));
        assert!(none.expect_unauthorized(Challenge::Missing).is_err());
        let twice = resp(
            401,
            &[
                PROBLEM_CT,
                ("www-authenticate", "Bearer"),
                ("www-authenticate", "Bearer"),
            ],
            &problem(401, "UNAUTHORIZED"),
        );
        assert!(twice.expect_unauthorized(Challenge::Missing).is_err());
    }

    #[test]
    fn steps_prefix_the_expectation() {
        let failed: Result<(), Failure> = Err(Failure::new("status 401", "200"));
        assert_eq!(
            failed.step("old token"),
            Err(Failure::new("old token: status 401", "200"))
        );
        assert_eq!(Ok::<u8, Failure>(1).step("x"), Ok(1));
    }

    #[test]
    fn pointers() {
        let r = resp(200, &[], r#"{"user":{"email":"a@b.c","n":1}}"#);
        assert!(r.expect_at("/user/email", &json!("a@b.c")).is_ok());
        let failure = r.expect_at("/user/n", &json!(2)).unwrap_err();
        assert_eq!(failure.expected, "/user/n == 2");
        assert!(r.expect_at("/missing", &json!(null)).is_err());
        assert_eq!(r.str_at("/user/email").unwrap(), "a@b.c");
        assert_eq!(
            r.str_at("/user/n").unwrap_err().expected,
            "a string at /user/n"
        );
    }

    #[test]
    fn lists_check_every_item() {
        let shape = &crate::shape::FIELD_ERROR;
        let ok = resp(
            200,
            &[("content-type", "application/json")],
            r#"[{"field":"a","message":"m"}]"#,
        );
        assert_eq!(ok.expect_list_of(shape).unwrap().len(), 1);
        let bad = resp(
            200,
            &[("content-type", "application/json")],
            r#"[{"field":"a","message":"m"},{"field":"a"}]"#,
        );
        assert!(
            bad.expect_list_of(shape)
                .unwrap_err()
                .got
                .contains("item 1: the value has missing keys")
        );
    }

    #[test]
    fn indistinguishable_answers() {
        let body = problem(401, "INVALID_CREDENTIALS");
        let a = resp(
            401,
            &[
                PROBLEM_CT,
                ("date", "Mon"),
                ("content-length", "9"),
                ("x-request-id", "a1"),
            ],
            &body,
        );
        let b = resp(
            401,
            &[PROBLEM_CT, ("date", "Tue"), ("x-request-id", "b2")],
            &body,
        );
        assert!(a.expect_same_as(&b, "x").is_ok());

        let reordered = resp(
            401,
            &[PROBLEM_CT],
            r#"{"code":"INVALID_CREDENTIALS","detail":"d","status":401,"title":"T","type":"about:blank"}"#,
        );
        assert!(a.expect_same_as(&reordered, "x").is_ok());

        let other_header = resp(401, &[PROBLEM_CT, ("www-authenticate", "Bearer")], &body);
        let failure = a.expect_same_as(&other_header, "a wrong password and an unknown email");
        assert_eq!(
            failure.unwrap_err().expected,
            "identical status, headers and body for a wrong password and an unknown email"
        );
        let other_body = resp(401, &[PROBLEM_CT], &problem(401, "OTHER"));
        assert!(a.expect_same_as(&other_body, "x").is_err());
        assert!(a.clone_with_status(403).expect_same_as(&a, "x").is_err());
    }

    #[test]
    fn shape_failures_describe_the_shape() {
        use crate::shape::RBAC_TOKEN;
        let r = resp(
            404,
            &[("content-type", "application/json")],
            r#"{"detail":"Not Found"}"#,
        );
        let failure = r.expect_shape(200, &RBAC_TOKEN).unwrap_err();
        assert_eq!(
            failure.expected,
            "status 200 with body rbac token {access_token: string, token_type: \"bearer\"} \
             (application/json)"
        );
        assert!(failure.got.starts_with("GET /x -> 404"), "{}", failure.got);
        let wrong = resp(
            200,
            &[("content-type", "application/json")],
            r#"{"access_token":1}"#,
        );
        assert!(
            wrong
                .expect_shape(200, &RBAC_TOKEN)
                .unwrap_err()
                .got
                .contains("missing keys")
        );
    }

    #[test]
    fn exact_bodies_compare_everything() {
        let ct = ("content-type", "application/json");
        let r = resp(401, &[ct], r#"{"detail":"Nope"}"#);
        assert!(r.expect_exact(401, &json!({"detail": "Nope"})).is_ok());
        let failure = r
            .expect_exact(401, &json!({"detail": "Other"}))
            .unwrap_err();
        assert_eq!(
            failure.expected,
            r#"status 401 with exactly {"detail":"Other"} (Content-Type: application/json)"#
        );
        assert!(r.expect_exact(403, &json!({"detail": "Nope"})).is_err());
        let problem = resp(401, &[PROBLEM_CT], r#"{"detail":"Nope"}"#);
        assert!(
            problem
                .expect_exact(401, &json!({"detail": "Nope"}))
                .is_err()
        );
    }

    #[test]
    fn challenges_and_allow_headers() {
        let r = resp(
            405,
            &[("allow", "GET, post"), ("www-authenticate", "Bearer")],
            "",
        );
        assert!(r.expect_allow(&["POST", "GET"]).is_ok());
        assert!(r.expect_allow(&["DELETE"]).is_err());
        assert!(r.expect_challenge(Challenge::Missing).is_ok());
        assert!(r.expect_challenge(Challenge::InvalidToken).is_err());
        assert!(resp(405, &[], "").expect_allow(&["GET"]).is_err());
    }

    impl Resp {
        fn clone_with_status(&self, status: u16) -> Resp {
            Resp::new(
                self.request.clone(),
                status,
                self.headers.clone(),
                self.body.clone(),
            )
        }
    }
}
