//! Helpers every profile's cases share: users made through `native`'s `/register` when it is
//! mounted, else through the target's hook; the admin user's token; access-token claims; and
//! the check that a token works on the other mounted profiles' authenticated routes.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Value, json};

use crate::Hooks;
use crate::check::Step as _;
use crate::http::{Ctx, Resp};
use crate::jwt::Jwt;
use crate::native::{FULL_NAME, unique_email, unique_password};
use crate::profile::Profile;
use crate::report::Failure;
use crate::runner::{CaseError, CaseResult};
use crate::shape::{AUTH, RBAC_ME, USER};

/// The bcrypt cost of imported seed users: the cheapest.
const SEED_HASH_COST: u32 = 4;

/// A user a case created, with the password it knows.
#[derive(Debug, Clone)]
pub(crate) struct User {
    /// Email as created (lower case, so every profile echoes it unchanged).
    pub(crate) email: String,
    /// Password.
    pub(crate) password: String,
    /// Full name given at creation.
    pub(crate) full_name: Option<String>,
}

impl User {
    /// A user no other case uses, named [`FULL_NAME`].
    pub(crate) fn fresh() -> Self {
        Self {
            email: unique_email(),
            password: unique_password(),
            full_name: Some(FULL_NAME.to_owned()),
        }
    }

    /// `{"email": ..., "password": ...}`.
    pub(crate) fn credentials(&self) -> Value {
        json!({"email": self.email, "password": self.password})
    }

    /// The credentials with a wrong password.
    pub(crate) fn with_wrong_password(&self) -> Value {
        json!({"email": self.email, "password": unique_password()})
    }
}

/// Credentials of nobody.
pub(crate) fn unknown_credentials() -> Value {
    json!({"email": unique_email(), "password": unique_password()})
}

impl Ctx {
    /// The target's hooks, or a skip when it has none.
    pub(crate) fn require_hooks(&self) -> Result<Arc<dyn Hooks>, CaseError> {
        self.hooks().cloned().ok_or_else(|| {
            CaseError::Skipped("the target offers no hook to manage users".to_owned())
        })
    }

    /// Creates `user`: through `native`'s `/register` when it is mounted, else through the
    /// `create_user` hook; Skipped when neither is available.
    pub(crate) async fn create_user(&self, user: &User) -> Result<(), CaseError> {
        if self.mounted(Profile::Native) {
            let mut body = user.credentials();
            if let Some(name) = &user.full_name {
                body["full_name"] = json!(name);
            }
            if self.users_via_admin() {
                // See `Ctx::users_via_admin`: registrations would hit the per-IP limit.
                self.admin_create_raw(&body)
                    .await?
                    .expect_shape(201, &USER)
                    .step("creating a user through the admin API")?;
                return Ok(());
            }
            self.register_raw(&body)
                .await?
                .expect_shape(201, &AUTH)
                .map_err(|failure| Failure {
                    expected: format!("registering a user: {}", failure.expected),
                    got: failure.got,
                })?;
            return Ok(());
        }
        let Some(hooks) = self.hooks() else {
            return Err(CaseError::Skipped(
                "no way to create users: profile native not mounted and the target offers no \
                 hooks"
                    .to_owned(),
            ));
        };
        hooks
            .create_user(&user.email, &user.password, user.full_name.as_deref(), &[])
            .await
            .map_err(|error| {
                Failure::new(
                    format!("the create_user({}) hook succeeds", user.email),
                    error,
                )
                .into()
            })
    }

    /// Creates a fresh user (see [`Ctx::create_user`]).
    pub(crate) async fn new_user(&self) -> Result<User, CaseError> {
        let user = User::fresh();
        self.create_user(&user).await?;
        Ok(user)
    }

    /// Creates an active user `email` whose credentials are `password_hash`, through the
    /// `import_user` hook; Skipped without hooks.
    pub(crate) async fn import_user(&self, email: &str, password_hash: &str) -> CaseResult {
        let hooks = self.require_hooks()?;
        hooks
            .import_user(email, password_hash)
            .await
            .map_err(|error| {
                Failure::new(format!("the import_user({email}) hook succeeds"), error).into()
            })
    }

    /// Creates a fresh user and deactivates them; Skipped without hooks.
    pub(crate) async fn new_inactive_user(&self) -> Result<User, CaseError> {
        let hooks = self.require_hooks()?;
        let user = self.new_user().await?;
        hooks
            .set_active(&user.email, false)
            .await
            .map_err(|error| Failure::new("the set_active(false) hook succeeds", error))?;
        Ok(user)
    }

    /// Makes sure a seed's example user exists with this password. A deployment the suite
    /// ran against before already has it, so a refusal is not an error yet: the reason comes
    /// back, for the case to show if logging in fails too.
    ///
    /// Some seeds' examples use a common password (`password123`), which a server refuses
    /// to set by default: with hooks, the user is imported with a bcrypt hash of it, as a
    /// deployment migrating the seed's users would have them.
    pub(crate) async fn ensure_seed_user(
        &self,
        email: &str,
        password: &str,
    ) -> Result<Option<String>, CaseError> {
        let user = User {
            email: email.to_owned(),
            password: password.to_owned(),
            full_name: None,
        };
        let created = if self.hooks().is_some() {
            let hash = bcrypt::hash(password, SEED_HASH_COST).map_err(|error| {
                Failure::new("a bcrypt hash of the seed's password", error.to_string())
            })?;
            self.import_user(email, &hash).await
        } else {
            self.create_user(&user).await
        };
        match created {
            Ok(()) => Ok(None),
            Err(CaseError::Failed(failure))
                if self.hooks().is_none() && failure.got.contains("-> 422") =>
            {
                // The deployment refuses the seed's (common) password; without hooks to
                // import it, the case can run only when the user is already there.
                let login = self.login_raw(&user.credentials()).await?;
                if login.status == 200 {
                    Ok(None)
                } else {
                    Err(CaseError::Skipped(format!(
                        "no seed user {email}: the deployment refuses its example password \
                         as a new password (422), so the suite cannot create it; import it \
                         (auth-server user create --password-hash) to run this case"
                    )))
                }
            }
            Err(CaseError::Failed(failure)) => Ok(Some(failure.got)),
            Err(skip) => Err(skip),
        }
    }

    /// Logs the admin user in through `native` and returns the access token; Skipped when
    /// the target gave no admin credentials.
    pub(crate) async fn admin_token(&self) -> Result<String, CaseError> {
        let Some(admin) = self.admin_credentials() else {
            return Err(CaseError::Skipped(
                "the target gave no admin credentials".to_owned(),
            ));
        };
        let resp = self
            .login_raw(&json!({"email": admin.email, "password": admin.password}))
            .await?;
        resp.expect_shape(200, &AUTH).map_err(|failure| Failure {
            expected: format!("the admin user logs in: {}", failure.expected),
            got: failure.got,
        })?;
        Ok(resp.str_at("/token/access_token")?.to_owned())
    }

    /// `token` (issued by `issuer` to `email`) is accepted as a bearer token by every other
    /// mounted profile's authenticated route that shows the user: `native`'s and `rbac`'s
    /// `GET /me`. Skipped when no other such profile is mounted.
    pub(crate) async fn expect_accepted_elsewhere(
        &self,
        issuer: Profile,
        token: &str,
        email: &str,
    ) -> CaseResult {
        let mut checked = 0;
        if issuer != Profile::Native && self.mounted(Profile::Native) {
            let resp = self.me(token).await?;
            resp.expect_shape(200, &USER)
                .step(&format!("{} token on native GET /me", issuer.name()))?;
            resp.expect_at("/email", &json!(email))?;
            checked += 1;
        }
        if issuer != Profile::Rbac && self.mounted(Profile::Rbac) {
            let resp = self.rbac_me(token).await?;
            resp.expect_shape(200, &RBAC_ME)
                .step(&format!("{} token on rbac GET /me", issuer.name()))?;
            resp.expect_at("/user/email", &json!(email))?;
            checked += 1;
        }
        if checked == 0 {
            return Err(CaseError::Skipped(format!(
                "no profile with authenticated routes is mounted beside {}",
                issuer.name()
            )));
        }
        Ok(())
    }

    /// `rbac`'s `GET /me` with `bearer`.
    pub(crate) async fn rbac_me(&self, bearer: &str) -> Result<Resp, Failure> {
        self.at(Profile::Rbac, Method::GET, "/me")
            .bearer(bearer)
            .send()
            .await
    }
}

/// The claims of access token `token`, which must be a JWT.
pub(crate) fn jwt_claims(token: &str) -> Result<Value, Failure> {
    Jwt::parse(token)
        .and_then(|jwt| jwt.claims())
        .map_err(|why| Failure::new("an access token that is a JWT with JSON claims", why))
}

/// The claims of `token`, checked to have `exp - iat == lifetime`.
pub(crate) fn expect_jwt_lifetime(token: &str, lifetime: i64) -> Result<Value, Failure> {
    let claims = jwt_claims(token)?;
    let (iat, exp) = (claims["iat"].as_i64(), claims["exp"].as_i64());
    if iat.zip(exp).is_some_and(|(iat, exp)| exp - iat == lifetime) {
        Ok(claims)
    } else {
        Err(Failure::new(
            format!("an access token whose claims have exp - iat == {lifetime}"),
            format!("claims {claims}"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn token(claims: &Value) -> String {
        format!(
            "{}.{}.sig",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256"}"#),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        )
    }

    #[test]
    fn lifetimes_are_exact() {
        let good = token(&json!({"iat": 100, "exp": 1900}));
        assert_eq!(expect_jwt_lifetime(&good, 1800).unwrap()["iat"], 100);
        let failure = expect_jwt_lifetime(&good, 3600).unwrap_err();
        assert!(failure.expected.contains("exp - iat == 3600"));
        assert!(failure.got.contains("1900"));
        assert!(expect_jwt_lifetime(&token(&json!({"exp": 1})), 1).is_err());
        assert!(jwt_claims("opaque").is_err());
    }

    #[test]
    fn fresh_users_differ() {
        let (a, b) = (User::fresh(), User::fresh());
        assert_ne!(a.email, b.email);
        assert_ne!(a.credentials(), b.credentials());
        assert_eq!(a.with_wrong_password()["email"], json!(a.email));
    }
}
