//! Account administration. An [`Admin`] exists only once the caller passed the role check
//! ([`crate::Auth::admin`]) or is a trusted in-process caller ([`crate::Auth::operator`]),
//! so no handler can forget the check.
//!
//! Every change here that could take the admin role from its last active holder (roles,
//! deactivation, deletion) is guarded in the store, [`ADMIN_ROLE`] protected: the check and
//! the change are one locked transaction, and `LastAdmin` is the answer whoever asks.

use uuid::Uuid;

use serde_json::{Value, json};

use super::accounts::{create, require_organization, role_set};
use super::audit::{Event, Origin};
use super::{Client, Context, NewAccount};
use crate::cache::Stale;
use crate::error::Error;
use crate::principal::ADMIN_ROLE;
use crate::store::{
    AuditEventRecord, AuditKind, AuditQuery, OrganizationRecord, Revocation, UserPatch, UserQuery,
    UserRecord,
};
use crate::validate::email_key;

/// The administration capability. Every change it makes is recorded in the audit log with
/// the admin as actor (none for an operator) and the request's origin
/// ([`Admin::with_client`]).
#[derive(Clone)]
pub struct Admin<'a> {
    pub(super) ctx: &'a Context,
    /// The admin acting (`None` for [`crate::Auth::operator`]).
    pub(super) actor: Option<Uuid>,
    /// Where the admin's request came from.
    pub(super) origin: Origin,
}

/// The names of the fields a patch sets (never their values).
fn changed_fields(patch: &UserPatch) -> Vec<&'static str> {
    let set = [
        ("email", patch.email.is_some()),
        ("email_verified_at", patch.email_verified_at.is_some()),
        ("password", patch.password_hash.is_some()),
        ("full_name", patch.full_name.is_some()),
        ("phone", patch.phone.is_some()),
        ("is_active", patch.is_active.is_some()),
        ("roles", patch.roles.is_some()),
        ("organization_id", patch.organization_id.is_some()),
        ("attributes", patch.attributes.is_some()),
    ];
    set.into_iter()
        .filter_map(|(name, is_set)| is_set.then_some(name))
        .collect()
}

/// What a patch revokes: deactivation revokes every session and personal token of the user.
fn revocation_of(patch: &UserPatch) -> Revocation {
    if patch.is_active == Some(false) {
        Revocation::EVERYTHING
    } else {
        Revocation::NOTHING
    }
}

impl<'a> Admin<'a> {
    /// The capability for `actor` (`None`: an operator), with nothing known of the origin.
    pub(super) fn new(ctx: &'a Context, actor: Option<Uuid>) -> Self {
        Self {
            ctx,
            actor,
            origin: Origin::default(),
        }
    }

    /// The same capability acting on behalf of a request from `client`: its IP and
    /// `User-Agent` go into the audit events of the actions.
    #[must_use]
    pub fn with_client(mut self, client: Client<'_>) -> Self {
        self.origin = Origin::from(client);
        self
    }

    /// Records `kind` about `target` with the admin as actor.
    async fn record(&self, kind: AuditKind, target: Option<Uuid>, detail: Option<Value>) {
        let mut event = Event::new(kind)
            .actor(self.actor)
            .target(target)
            .from(self.origin.clone());
        if let Some(detail) = detail {
            event = event.detail(detail);
        }
        event.record(self.ctx).await;
    }

    /// Creates an account (any roles, organization, active flag, or an imported hash).
    pub async fn create_user(&self, account: NewAccount) -> Result<UserRecord, Error> {
        let user = create(self.ctx, account).await?;
        let detail = json!({ "roles": user.roles, "is_active": user.is_active });
        self.record(AuditKind::AdminUserCreated, Some(user.id), Some(detail))
            .await;
        Ok(user)
    }

    /// A page of the audit log matching `query`, newest first, and the total matching.
    pub async fn audit(&self, query: AuditQuery) -> Result<(Vec<AuditEventRecord>, u64), Error> {
        self.ctx.store(move |store| store.list_audit(&query)).await
    }

    /// A page of users (optionally only the one with `email`) and the total matching.
    pub async fn users(
        &self,
        email: Option<&str>,
        limit: u32,
        offset: u64,
    ) -> Result<(Vec<UserRecord>, u64), Error> {
        let query = UserQuery {
            email_key: email.map(email_key),
            limit,
            offset,
        };
        self.ctx.store(move |store| store.list_users(&query)).await
    }

    /// One user; `NotFound` for an unknown id.
    pub async fn user(&self, id: Uuid) -> Result<UserRecord, Error> {
        self.ctx
            .store(move |store| store.find_user(id))
            .await?
            .ok_or(Error::NotFound)
    }

    /// Applies a patch; deactivation revokes every session and token of the user, in the
    /// same transaction. `LastAdmin`, changing nothing, when the patch would leave no active
    /// admin; `NotFound` for an unknown id.
    pub async fn update_user(&self, id: Uuid, mut patch: UserPatch) -> Result<UserRecord, Error> {
        if let Some(Some(organization_id)) = patch.organization_id {
            require_organization(self.ctx, organization_id).await?;
        }
        patch.roles = patch.roles.map(role_set);
        let revoke = revocation_of(&patch);
        let now = self.ctx.now();
        let fields = changed_fields(&patch);
        let user = self
            .ctx
            .revoking(Stale::User(id), move |store| {
                store.update_user(id, &patch, revoke, now, Some(ADMIN_ROLE))
            })
            .await?
            .ok_or(Error::NotFound)?;
        let detail = json!({ "fields": fields });
        self.record(AuditKind::AdminUserUpdated, Some(id), Some(detail))
            .await;
        Ok(user)
    }

    /// Revokes every session (with its refresh tokens) and every personal token of the
    /// user, leaving the account as it is: they can log in again. `NotFound` for an
    /// unknown id.
    pub async fn revoke_credentials(&self, id: Uuid) -> Result<(), Error> {
        let now = self.ctx.now();
        let patch = UserPatch::default();
        self.ctx
            .revoking(Stale::User(id), move |store| {
                // Nothing changes but the credentials, so no admin can be lost: unguarded.
                store.update_user(id, &patch, Revocation::EVERYTHING, now, None)
            })
            .await?
            .ok_or(Error::NotFound)?;
        self.record(AuditKind::AdminSessionsRevoked, Some(id), None)
            .await;
        Ok(())
    }

    /// Removes every second factor of the user (TOTP, recovery codes, passkeys, open
    /// challenges), e.g. after a lost phone: they sign in with the password alone until
    /// they set one up again. Audited, and the user gets a notice by mail. `NotFound` for an
    /// unknown id.
    pub async fn reset_mfa(&self, id: Uuid) -> Result<(), Error> {
        let user = self.user(id).await?;
        let had = self.ctx.store(move |store| store.reset_mfa(id)).await?;
        self.record(
            AuditKind::AdminMfaReset,
            Some(id),
            Some(serde_json::json!({
                "totp": had.totp,
                "passkeys": had.passkeys,
                "recovery_codes": had.recovery_codes,
            })),
        )
        .await;
        if had.any()
            && let Err(err) = super::EmailFlows(self.ctx)
                .notify_factor(&user, false, "every second factor (by an administrator)")
                .await
        {
            tracing::warn!(error = %err, "second-factor notice not queued");
        }
        Ok(())
    }

    /// Deletes a user and everything of theirs. `LastAdmin`, deleting nothing, for the last
    /// active admin; `NotFound` for an unknown id.
    pub async fn delete_user(&self, id: Uuid) -> Result<(), Error> {
        let deleted = self
            .ctx
            .revoking(Stale::User(id), move |store| {
                store.delete_user(id, Some(ADMIN_ROLE))
            })
            .await?;
        if !deleted {
            return Err(Error::NotFound);
        }
        self.record(AuditKind::AdminUserDeleted, Some(id), None)
            .await;
        Ok(())
    }

    /// Activates or deactivates the account with this email (deactivation revokes every
    /// session and personal token). `NotFound` for an unknown email; `LastAdmin` for the
    /// last active admin's deactivation.
    pub async fn set_active_by_email(
        &self,
        email: &str,
        active: bool,
    ) -> Result<UserRecord, Error> {
        let key = email_key(email);
        let user = self
            .ctx
            .store(move |store| store.find_user_by_email(&key))
            .await?
            .ok_or(Error::NotFound)?;
        let patch = UserPatch {
            is_active: Some(active),
            ..UserPatch::default()
        };
        self.update_user(user.id, patch).await
    }

    /// Creates an organization.
    pub async fn create_organization(&self, name: String) -> Result<OrganizationRecord, Error> {
        let organization = OrganizationRecord {
            id: Uuid::new_v4(),
            name,
            created_at: self.ctx.now(),
        };
        let stored = organization.clone();
        self.ctx
            .store(move |store| store.create_organization(&stored))
            .await?;
        let detail = json!({ "organization_id": organization.id });
        self.record(AuditKind::AdminOrganizationCreated, None, Some(detail))
            .await;
        Ok(organization)
    }

    /// Every organization, oldest first.
    pub async fn organizations(&self) -> Result<Vec<OrganizationRecord>, Error> {
        self.ctx.store(|store| store.list_organizations()).await
    }
}
