//! The few native-profile calls the chaos cases make, over reqwest, each with a timeout so
//! a hung server shows as an error instead of a stuck case.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Where the native profile is mounted by default.
const NATIVE: &str = "/api/v1/auth";

/// An answer: status, `Retry-After` present, body (JSON, or null), how long it took.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Whether `Retry-After` came with it.
    pub retry_after: bool,
    /// Its delay, when it was a number of seconds.
    pub retry_after_secs: Option<u64>,
    /// The JSON body, or `Value::Null`.
    pub body: Value,
    /// Time from sending to the whole answer read.
    pub took: Duration,
}

impl Answer {
    /// The token pair of a register, login or refresh answer.
    pub fn pair(&self) -> Option<Pair> {
        let token = self.body.get("token").unwrap_or(&self.body);
        Some(Pair {
            access: token.get("access_token")?.as_str()?.to_owned(),
            refresh: token.get("refresh_token")?.as_str()?.to_owned(),
        })
    }
}

/// An access and a refresh token.
#[derive(Debug, Clone)]
pub struct Pair {
    /// The bearer for `/me` and `/logout`.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
}

/// A client of one server (by base URL).
#[derive(Debug, Clone)]
pub struct Api {
    http: reqwest::Client,
}

/// A transport failure: no answer (refused, reset, timed out).
pub type NoAnswer = reqwest::Error;

impl Api {
    /// A client whose calls time out after `timeout`; `fresh_connections` gives every call
    /// a connection of its own (no keep-alive pool).
    pub fn new(timeout: Duration, fresh_connections: bool) -> Self {
        let mut builder = reqwest::Client::builder().timeout(timeout);
        if fresh_connections {
            builder = builder.pool_max_idle_per_host(0);
        }
        Self {
            http: builder.build().unwrap_or_default(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<Answer, NoAnswer> {
        let start = Instant::now();
        let response = request.send().await?;
        let status = response.status().as_u16();
        let retry_after_header = response.headers().get("retry-after");
        let retry_after = retry_after_header.is_some();
        let retry_after_secs = retry_after_header
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        let bytes = response.bytes().await?;
        Ok(Answer {
            status,
            retry_after,
            retry_after_secs,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            took: start.elapsed(),
        })
    }

    fn post(&self, base: &str, route: &str, body: Value) -> reqwest::RequestBuilder {
        self.http.post(format!("{base}{NATIVE}{route}")).json(&body)
    }

    /// `POST /register`.
    pub async fn register(&self, base: &str, email: &str, pw: &str) -> Result<Answer, NoAnswer> {
        let body = json!({"email": email, "password": pw, "full_name": "Chaos Case"});
        self.send(self.post(base, "/register", body)).await
    }

    /// `POST /login`.
    pub async fn login(&self, base: &str, email: &str, pw: &str) -> Result<Answer, NoAnswer> {
        let body = json!({"email": email, "password": pw});
        self.send(self.post(base, "/login", body)).await
    }

    /// `POST /refresh`.
    pub async fn refresh(&self, base: &str, refresh: &str) -> Result<Answer, NoAnswer> {
        let body = json!({"refresh_token": refresh});
        self.send(self.post(base, "/refresh", body)).await
    }

    /// `POST /logout` with `access`.
    pub async fn logout(&self, base: &str, access: &str) -> Result<Answer, NoAnswer> {
        let request = self
            .http
            .post(format!("{base}{NATIVE}/logout"))
            .bearer_auth(access);
        self.send(request).await
    }

    /// `GET /me` with `access`.
    pub async fn me(&self, base: &str, access: &str) -> Result<Answer, NoAnswer> {
        let request = self
            .http
            .get(format!("{base}{NATIVE}/me"))
            .bearer_auth(access);
        self.send(request).await
    }
}

/// A fresh email for a run.
pub fn unique_email(tag: &str) -> String {
    format!("{tag}-{:016x}@example.com", crate::server::rand_seed())
}

/// A password no list holds.
pub fn unique_password() -> String {
    format!("pw-{:016x}-chaos", crate::server::rand_seed())
}
