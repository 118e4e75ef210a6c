//! Client-side helpers for the `native` profile's routes: unique test users, sign-up and
//! sign-in flows, and checks that a token is accepted or refused.

use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::check::Challenge;
use crate::check::Step as _;
use crate::http::{Ctx, Req, Resp};
use crate::profile::Profile;
use crate::report::Failure;
use crate::shape::{AUTH, NEW_PERSONAL_TOKEN, TOKEN_PAIR, USER};

/// Problem code of bad credentials.
pub(crate) const INVALID_CREDENTIALS: &str = "INVALID_CREDENTIALS";
/// Problem detail of bad credentials at login.
const INVALID_CREDENTIALS_DETAIL: &str = "Incorrect email or password";
/// The full name given to users the suite registers.
pub(crate) const FULL_NAME: &str = "Conformance Tester";

/// Passwords among the 10,000 most common, at least 8 characters long: a default server
/// refuses each wherever a password is set (issue 10, rule 10).
pub(crate) const COMMON_PASSWORDS: &[&str] = &["password123", "qwertyuiop", "Sunshine"];

/// A fresh address no other case (or earlier run) uses.
pub(crate) fn unique_email() -> String {
    let email = format!("c-{}@example.com", Uuid::new_v4().simple());
    // Any of them may become a user (directly or as a changed email): the clean-up looks
    // each one up.
    crate::cleanup::note_email(&email);
    email
}

/// A fresh valid password.
pub(crate) fn unique_password() -> String {
    format!("pw-{}", Uuid::new_v4().simple())
}

/// An access token and the refresh token of the same session.
#[derive(Debug, Clone)]
pub(crate) struct Pair {
    /// The JWT access token.
    pub(crate) access: String,
    /// The refresh token.
    pub(crate) refresh: String,
}

/// A user the suite registered, and the session registration opened.
#[derive(Debug, Clone)]
pub(crate) struct Account {
    /// The email as registered.
    pub(crate) email: String,
    /// The current password.
    pub(crate) password: String,
    /// The user object registration answered.
    pub(crate) user: Value,
    /// The user's id.
    pub(crate) id: String,
    /// The registration session's tokens.
    pub(crate) pair: Pair,
}

/// A personal access token the suite created.
#[derive(Debug, Clone)]
pub(crate) struct PersonalToken {
    /// Its id, as listed by `GET /tokens`.
    pub(crate) id: String,
    /// The secret.
    pub(crate) token: String,
}

/// Notes the email a 201 answer created a user with, for the clean-up.
fn note_if_created(resp: &Resp) {
    if resp.status == 201
        && let Some(email) = crate::cleanup::created_email(resp.json())
    {
        crate::cleanup::note_created(email);
    }
}

impl Ctx {
    /// Starts a request to `route` (e.g. "/login") under the `native` prefix.
    pub(crate) fn native(&self, method: Method, route: &str) -> Req {
        self.at(Profile::Native, method, route)
    }

    /// `POST route` with a JSON body.
    pub(crate) async fn post_json(&self, route: &str, body: &Value) -> Result<Resp, Failure> {
        self.native(Method::POST, route).json(body).send().await
    }

    /// `POST /register`.
    pub(crate) async fn register_raw(&self, body: &Value) -> Result<Resp, Failure> {
        let resp = self.post_json("/register", body).await?;
        note_if_created(&resp);
        Ok(resp)
    }

    /// `POST /api/v1/admin/users` with the admin's token (see [`Ctx::admin_bearer`]).
    pub(crate) async fn admin_create_raw(&self, body: &Value) -> Result<Resp, Failure> {
        let send = |token: String| {
            self.at(Profile::Admin, Method::POST, "/users")
                .bearer(&token)
                .json(body)
                .send()
        };
        let mut resp = send(self.admin_bearer(false).await?).await?;
        if resp.status == 401 {
            // A case may have ended the admin's session the token came from: log in again.
            resp = send(self.admin_bearer(true).await?).await?;
        }
        note_if_created(&resp);
        Ok(resp)
    }

    /// Registers a new user with a unique email and checks the answer's shape.
    pub(crate) async fn register(&self) -> Result<Account, Failure> {
        let email = unique_email();
        let password = unique_password();
        let body = json!({"email": email, "password": password, "full_name": FULL_NAME});
        let resp = if self.users_via_admin() {
            // The deployment limits registrations per client IP and cannot tell the suite's
            // cases apart: the admin creates the user, and a login (never rate limited when
            // it succeeds) gives the same `{user, token}` answer a registration does.
            self.admin_create_raw(&body)
                .await?
                .expect_shape(201, &USER)
                .step("creating a user through the admin API")?;
            let resp = self
                .login_raw(&json!({"email": email, "password": password}))
                .await?;
            resp.expect_shape(200, &AUTH)?;
            resp
        } else {
            let resp = self.register_raw(&body).await?;
            resp.expect_shape(201, &AUTH)?;
            resp
        };
        resp.expect_at("/user/email", &json!(email))?;
        let pair = pair_at(&resp, "/token")?;
        Ok(Account {
            id: resp.str_at("/user/id")?.to_owned(),
            user: resp.json().map_or(Value::Null, |body| body["user"].clone()),
            email,
            password,
            pair,
        })
    }

    /// `POST /login` with a JSON body.
    pub(crate) async fn login_raw(&self, body: &Value) -> Result<Resp, Failure> {
        self.post_json("/login", body).await
    }

    /// Logs in, sending `user_agent` when given, and checks the answer is `200 {user, token}`
    /// for `account`.
    pub(crate) async fn login(
        &self,
        account: &Account,
        user_agent: Option<&str>,
    ) -> Result<Pair, Failure> {
        let mut req = self.native(Method::POST, "/login").json(&json!({
            "email": account.email,
            "password": account.password,
        }));
        if let Some(user_agent) = user_agent {
            req = req.header("user-agent", user_agent);
        }
        let resp = req.send().await?;
        resp.expect_shape(200, &AUTH)?;
        resp.expect_at("/user/id", &json!(account.id))?;
        pair_at(&resp, "/token")
    }

    /// Logging in with `password` gets the bad-credentials answer.
    pub(crate) async fn expect_login_refused(
        &self,
        email: &str,
        password: &str,
    ) -> Result<Resp, Failure> {
        let resp = self
            .login_raw(&json!({"email": email, "password": password}))
            .await?;
        resp.expect_problem(401, INVALID_CREDENTIALS)?;
        resp.expect_at("/detail", &json!(INVALID_CREDENTIALS_DETAIL))?;
        Ok(resp)
    }

    /// Logging in to `account` with a wrong password and to an unknown email both get the
    /// bad-credentials answer, and the two answers cannot be told apart.
    pub(crate) async fn expect_wrong_password_indistinguishable(
        &self,
        account: &Account,
    ) -> Result<(), Failure> {
        let wrong_password = self
            .expect_login_refused(&account.email, &unique_password())
            .await?;
        let unknown_email = self
            .expect_login_refused(&unique_email(), &unique_password())
            .await?;
        wrong_password.expect_same_as(&unknown_email, "a wrong password and an unknown email")
    }

    /// `POST /refresh` with `{"refresh_token": token}`.
    pub(crate) async fn refresh_raw(&self, refresh_token: &str) -> Result<Resp, Failure> {
        self.post_json("/refresh", &json!({"refresh_token": refresh_token}))
            .await
    }

    /// Refreshes with `refresh_token`, expecting 200 and a new token pair.
    pub(crate) async fn refresh(&self, refresh_token: &str) -> Result<Pair, Failure> {
        let resp = self.refresh_raw(refresh_token).await?;
        resp.expect_shape(200, &TOKEN_PAIR)?;
        pair_at(&resp, "")
    }

    /// `GET /me` with `bearer`.
    pub(crate) async fn me(&self, bearer: &str) -> Result<Resp, Failure> {
        self.native(Method::GET, "/me").bearer(bearer).send().await
    }

    /// `bearer` is accepted: `GET /me` answers `account`'s user.
    pub(crate) async fn expect_accepted(
        &self,
        bearer: &str,
        account: &Account,
    ) -> Result<(), Failure> {
        let resp = self.me(bearer).await?;
        resp.expect_shape(200, &USER)?;
        resp.expect_at("/id", &json!(account.id))
    }

    /// `bearer` is refused: `GET /me` answers 401 with `error="invalid_token"`.
    pub(crate) async fn expect_rejected(&self, bearer: &str) -> Result<(), Failure> {
        self.me(bearer)
            .await?
            .expect_unauthorized(Challenge::InvalidToken)
    }

    /// `GET /sessions` with `bearer`.
    pub(crate) async fn sessions(&self, bearer: &str) -> Result<Resp, Failure> {
        self.native(Method::GET, "/sessions")
            .bearer(bearer)
            .send()
            .await
    }

    /// `POST /tokens` with `bearer` and `body`.
    pub(crate) async fn create_token_raw(
        &self,
        bearer: &str,
        body: &Value,
    ) -> Result<Resp, Failure> {
        self.native(Method::POST, "/tokens")
            .bearer(bearer)
            .json(body)
            .send()
            .await
    }

    /// Creates a personal access token for `account` (with its session's access token and
    /// its current password), expecting 201 with the secret.
    pub(crate) async fn create_token(
        &self,
        account: &Account,
        expires_in: Option<u64>,
    ) -> Result<PersonalToken, Failure> {
        let bearer = account.pair.access.as_str();
        let mut body = json!({
            "name": format!("pat-{}", Uuid::new_v4().simple()),
            "current_password": account.password,
        });
        if let Some(seconds) = expires_in {
            body["expires_in"] = json!(seconds);
        }
        let resp = self.create_token_raw(bearer, &body).await?;
        resp.expect_shape(201, &NEW_PERSONAL_TOKEN)?;
        Ok(PersonalToken {
            id: resp.str_at("/id")?.to_owned(),
            token: resp.str_at("/token")?.to_owned(),
        })
    }

    /// `DELETE route` with `bearer`.
    pub(crate) async fn delete(&self, route: &str, bearer: &str) -> Result<Resp, Failure> {
        self.native(Method::DELETE, route)
            .bearer(bearer)
            .send()
            .await
    }
}

/// The token pair at `pointer` of an answer whose shape was already checked.
pub(crate) fn pair_at(resp: &Resp, pointer: &str) -> Result<Pair, Failure> {
    Ok(Pair {
        access: resp.str_at(&format!("{pointer}/access_token"))?.to_owned(),
        refresh: resp.str_at(&format!("{pointer}/refresh_token"))?.to_owned(),
    })
}

/// Ids of the objects in a JSON array.
pub(crate) fn ids(items: &[Value]) -> Vec<&str> {
    items
        .iter()
        .filter_map(|item| item["id"].as_str())
        .collect()
}
