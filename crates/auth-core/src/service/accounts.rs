//! Accounts: creating them, checking credentials (upgrading old hashes), changing passwords.

use uuid::Uuid;

use super::audit::Event;
use super::mfa::{FirstFactor, Gate, Next, SecondFactor, after_first_factor, step_up};
use super::throttle::Admitted;
use super::{
    Client, Context, EmailFlows, NewAccount, SessionGrant, SessionTerms, Sessions, Throttle,
    ThrottledAction,
};
use crate::cache::Stale;
use crate::error::{Error, Input, Rule};
use crate::password::{Verification, is_supported_hash};
use crate::principal::Principal;
use crate::store::{
    AuditKind, FailureQuery, NewUser, Revocation, RoleRecord, SessionRevocation, StoreError,
    UserPatch, UserRecord,
};
use crate::validate::{check_email, check_new_password, email_key, is_common_password};

/// The account service.
#[derive(Clone, Copy)]
pub struct Accounts<'a>(pub(super) &'a Context);

impl Accounts<'_> {
    /// Registers an account (no roles, active) and opens its first session; rate-limited per
    /// client IP.
    pub async fn register(
        &self,
        email: String,
        password: String,
        full_name: Option<String>,
        client: Client<'_>,
        terms: SessionTerms,
    ) -> Result<SessionGrant, Error> {
        Throttle(self.0)
            .hit(ThrottledAction::Register, client)
            .await?;
        let account = NewAccount {
            email,
            password,
            full_name,
            is_active: true,
            ..NewAccount::default()
        };
        let user = create(self.0, account).await?;
        // The account exists now: a verification mail that cannot be queued must not undo
        // it (the user can ask for another one).
        if let Err(err) = EmailFlows(self.0).send_verification(&user).await {
            tracing::warn!(error = %err, "verification mail not queued");
        }
        Sessions(self.0).open(user, client.user_agent, terms).await
    }

    /// The caller's roles with ids and descriptions, sorted by name.
    pub async fn roles(&self, principal: &Principal) -> Result<Vec<RoleRecord>, Error> {
        let user_id = principal.user.id;
        self.0.store(move |store| store.user_roles(user_id)).await
    }

    /// Checks an email and password. Unknown email and wrong password cost the same hash and
    /// give the same `InvalidCredentials`; only the right password reveals `AccountInactive`.
    /// Rate-limited per the contract: bad credentials count, a success clears the email's
    /// failures, and a limited attempt gets `RateLimited` before any lookup or hash.
    /// Recorded in the audit log: `login.succeeded`, or `login.failed` with the reason (and
    /// the account as target when the address has one), or `rate_limit.tripped`.
    pub async fn check_credentials(
        &self,
        email: &str,
        password: String,
        client: Client<'_>,
    ) -> Result<UserRecord, Error> {
        let (user, passed) = self.check_password(email, password, client).await?;
        // The personal-token profile has no second step.
        match after_first_factor(
            self.0,
            user,
            FirstFactor::Password(passed),
            client,
            Gate::Seed,
        )
        .await?
        {
            Next::Open(user) => Ok(user),
            Next::SecondStep(_) => Err(Error::MfaRequired),
        }
    }

    /// [`Accounts::check_credentials`] recording refusals only: a right password leaves the
    /// throttle's bookkeeping to the caller ([`PasswordPassed`]), which records the success
    /// once it has decided the login goes on.
    pub(super) async fn check_password(
        &self,
        email: &str,
        password: String,
        client: Client<'_>,
    ) -> Result<(UserRecord, PasswordPassed), Error> {
        let throttle = Throttle(self.0);
        let key = email_key(email);
        let now = self.0.now();
        let query = throttle.failure_query(&key, client, now);
        let admitted = throttle.admit(&query, now, client).await?;
        let looked_up = {
            let key = key.clone();
            self.0
                .store(move |store| store.find_user_by_email(&key))
                .await
        };
        let user = match looked_up {
            Ok(user) => user,
            Err(err) => {
                throttle.release(admitted).await;
                return Err(err);
            }
        };
        let phc = user.as_ref().map(|u| u.password_hash.clone());
        let rehash_password = password.clone();
        let verification = match self.0.hasher.verify(password, phc).await {
            Ok(verification) => verification,
            Err(err) => {
                // Not checked (e.g. the hashing queue is full): not a failure either.
                throttle.release(admitted).await;
                return Err(err);
            }
        };
        match (user, verification) {
            (Some(user), Verification::Match | Verification::MatchNeedsRehash)
                if !user.is_active =>
            {
                throttle.release(admitted).await;
                login_failed(self.0, Some(user.id), "account_inactive", client).await;
                Err(Error::AccountInactive)
            }
            (Some(user), verification @ (Verification::Match | Verification::MatchNeedsRehash)) => {
                if verification == Verification::MatchNeedsRehash {
                    self.upgrade_hash(&user, rehash_password).await;
                }
                Ok((
                    user,
                    PasswordPassed {
                        admitted,
                        query,
                        now,
                    },
                ))
            }
            (user, _) => {
                throttle.failed(admitted, now).await;
                let target = user.map(|u| u.id);
                login_failed(self.0, target, "invalid_credentials", client).await;
                Err(Error::InvalidCredentials)
            }
        }
    }

    /// Checks the current password of the caller (a step-up): wrong counts as a failed login
    /// of the account from this client in all three series, and past the limit the attempt
    /// is `RateLimited` before any hash.
    pub async fn verify_current_password(
        &self,
        principal: &Principal,
        password: String,
        client: Client<'_>,
    ) -> Result<(), Error> {
        let throttle = Throttle(self.0);
        let now = self.0.now();
        let query = throttle.failure_query(&email_key(&principal.user.email), client, now);
        let admitted = throttle.admit(&query, now, client).await?;
        let verified = self
            .0
            .hasher
            .verify(password, Some(principal.user.password_hash.clone()))
            .await;
        match verified {
            Ok(Verification::Mismatch) => {
                throttle.failed(admitted, now).await;
                Event::new(AuditKind::LoginFailed)
                    .user(principal.user.id)
                    .from(client)
                    .reason("wrong_current_password")
                    .record(self.0)
                    .await;
                Err(Error::WrongCurrentPassword)
            }
            Ok(_) => {
                throttle.release(admitted).await;
                Ok(())
            }
            Err(err) => {
                throttle.release(admitted).await;
                Err(err)
            }
        }
    }

    /// Re-hashes a verified password with the configured parameters, replacing the hash it
    /// was verified against and only that one: a password changed since (its new hash) is
    /// never overwritten. A failure is logged and the login goes on: the old hash still
    /// verifies. Same password, so nothing to revoke.
    async fn upgrade_hash(&self, user: &UserRecord, password: String) {
        let hash = match self.0.hasher.hash(password).await {
            Ok(hash) => hash,
            Err(err) => {
                tracing::warn!(error = %err, "password hash upgrade skipped");
                return;
            }
        };
        let (user_id, now) = (user.id, self.0.now());
        let verified = user.password_hash.clone();
        let upgraded = self
            .0
            .store(move |store| store.replace_password_hash(user_id, &verified, &hash, now))
            .await;
        match upgraded {
            Ok(true) => tracing::info!(user = %user_id, "password hash upgraded"),
            Ok(false) => {
                tracing::info!(user = %user_id, "password changed meanwhile; hash upgrade dropped")
            }
            Err(err) => tracing::warn!(error = %err, "password hash upgrade not stored"),
        }
    }

    /// Changes the caller's password after checking the current one (a wrong one counts as a
    /// failed login, see [`Accounts::verify_current_password`]). Every other session is
    /// revoked, in the same transaction (the caller's own session and personal tokens are
    /// kept: the caller just proved the current password).
    pub async fn change_password(
        &self,
        principal: &Principal,
        current_password: String,
        new_password: String,
        proof: &SecondFactor,
        client: Client<'_>,
    ) -> Result<(), Error> {
        self.verify_current_password(principal, current_password, client)
            .await?;
        step_up(self.0, principal, proof, client).await?;
        check_password_policy(self.0, Input::NewPassword, &new_password)?;
        let hash = self.0.hasher.hash(new_password).await?;
        let user_id = principal.user.id;
        let revoke = Revocation {
            sessions: principal
                .session_id()
                .map_or(SessionRevocation::All, SessionRevocation::AllExcept),
            personal_tokens: false,
        };
        let patch = UserPatch {
            password_hash: Some(hash),
            ..UserPatch::default()
        };
        let now = self.0.now();
        self.0
            .revoking(Stale::User(user_id), move |store| {
                store.update_user(user_id, &patch, revoke, now, None)
            })
            .await?;
        Event::new(AuditKind::PasswordChanged)
            .user(user_id)
            .from(client)
            .record(self.0)
            .await;
        // The change revoked every other session of the user.
        Event::new(AuditKind::SessionsRevokedAll)
            .user(user_id)
            .from(client)
            .detail(serde_json::json!({
                "via": "password.changed",
                "kept_current": principal.session_id().is_some(),
            }))
            .record(self.0)
            .await;
        // The change is made: a notice that cannot be queued is logged, not an error.
        if let Err(err) = EmailFlows(self.0)
            .notify_password_changed(&principal.user)
            .await
        {
            tracing::warn!(error = %err, "password-change notice not queued");
        }
        Ok(())
    }
}

/// A right password whose throttle bookkeeping waits for the login's outcome.
#[must_use = "a passed password ends as succeeded or held"]
pub(super) struct PasswordPassed {
    admitted: Admitted,
    query: FailureQuery,
    now: i64,
}

impl PasswordPassed {
    /// The login succeeds: the email's failures are forgotten, the address known.
    pub(super) async fn succeeded(self, ctx: &Context) -> Result<(), Error> {
        Throttle(ctx)
            .succeeded(self.admitted, &self.query, self.now)
            .await
    }

    /// The login waits for a second factor (or is refused without a failure): the
    /// reservation goes, the failures stay.
    pub(super) async fn held(self, ctx: &Context) {
        Throttle(ctx).release(self.admitted).await;
    }
}

/// Records a refused login (of the account `target` when the address has one).
pub(super) async fn login_failed(
    ctx: &Context,
    target: Option<Uuid>,
    reason: &'static str,
    client: Client<'_>,
) {
    Event::new(AuditKind::LoginFailed)
        .target(target)
        .from(client)
        .reason(reason)
        .record(ctx)
        .await;
}

/// Checks a password being set: length, and (when configured) not a common one.
pub(super) fn check_password_policy(
    ctx: &Context,
    input: Input,
    password: &str,
) -> Result<(), Error> {
    check_new_password(password).map_err(|rule| Error::Invalid(input, rule))?;
    if ctx.config.refuse_common_passwords && is_common_password(password) {
        return Err(Error::Invalid(input, Rule::NotCommon));
    }
    Ok(())
}

/// Creates an account after checking email and password. `EmailTaken` when the address is
/// in use in any letter case.
pub(super) async fn create(ctx: &Context, account: NewAccount) -> Result<UserRecord, Error> {
    let email = account.email.trim().to_owned();
    if let Err(rule) = check_email(&email) {
        return Err(Error::Invalid(Input::Email, rule));
    }
    if let Some(hash) = &account.password_hash {
        if !is_supported_hash(hash) {
            return Err(Error::Invalid(Input::PasswordHash, Rule::Format));
        }
    } else {
        check_password_policy(ctx, Input::Password, &account.password)?;
    }
    if let Some(organization_id) = account.organization_id {
        require_organization(ctx, organization_id).await?;
    }
    let password_hash = match account.password_hash {
        Some(hash) => hash,
        None => ctx.hasher.hash(account.password).await?,
    };
    let user = NewUser {
        id: Uuid::new_v4(),
        email_key: email_key(&email),
        email,
        password_hash,
        full_name: account.full_name,
        is_active: account.is_active,
        roles: role_set(account.roles),
        organization_id: account.organization_id,
        now: ctx.now(),
    };
    match ctx.store_raw(move |store| store.create_user(&user)).await? {
        Ok(user) => Ok(user),
        Err(StoreError::Conflict) => Err(Error::EmailTaken),
        Err(other) => Err(other.into()),
    }
}

/// `organization_id` must name an existing organization.
pub(super) async fn require_organization(ctx: &Context, id: Uuid) -> Result<(), Error> {
    match ctx.store(move |store| store.find_organization(id)).await? {
        Some(_) => Ok(()),
        None => Err(Error::Invalid(Input::Organization, Rule::Exists)),
    }
}

/// Role names sorted and without repeats, as stores keep them.
pub(super) fn role_set(mut roles: Vec<String>) -> Vec<String> {
    roles.sort();
    roles.dedup();
    roles
}
