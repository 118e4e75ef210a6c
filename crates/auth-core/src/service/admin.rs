//! Account administration. An [`Admin`] exists only once the caller passed the role check
//! ([`crate::Auth::admin`]) or is a trusted in-process caller ([`crate::Auth::operator`]),
//! so no handler can forget the check.
//!
//! Every change here that could take the admin role from its last active holder (roles,
//! deactivation, deletion) is guarded in the store, [`ADMIN_ROLE`] protected: the check and
//! the change are one locked transaction, and `LastAdmin` is the answer whoever asks.

use uuid::Uuid;

use super::accounts::{create, require_organization, role_set};
use super::{Context, NewAccount};
use crate::cache::Stale;
use crate::error::Error;
use crate::principal::ADMIN_ROLE;
use crate::store::{OrganizationRecord, Revocation, UserPatch, UserQuery, UserRecord};
use crate::validate::email_key;

/// The administration capability.
#[derive(Clone, Copy)]
pub struct Admin<'a>(pub(super) &'a Context);

/// What a patch revokes: deactivation revokes every session and personal token of the user.
fn revocation_of(patch: &UserPatch) -> Revocation {
    if patch.is_active == Some(false) {
        Revocation::EVERYTHING
    } else {
        Revocation::NOTHING
    }
}

impl Admin<'_> {
    /// Creates an account (any roles, organization, active flag, or an imported hash).
    pub async fn create_user(&self, account: NewAccount) -> Result<UserRecord, Error> {
        create(self.0, account).await
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
        self.0.store(move |store| store.list_users(&query)).await
    }

    /// One user; `NotFound` for an unknown id.
    pub async fn user(&self, id: Uuid) -> Result<UserRecord, Error> {
        self.0
            .store(move |store| store.find_user(id))
            .await?
            .ok_or(Error::NotFound)
    }

    /// Applies a patch; deactivation revokes every session and token of the user, in the
    /// same transaction. `LastAdmin`, changing nothing, when the patch would leave no active
    /// admin; `NotFound` for an unknown id.
    pub async fn update_user(&self, id: Uuid, mut patch: UserPatch) -> Result<UserRecord, Error> {
        if let Some(Some(organization_id)) = patch.organization_id {
            require_organization(self.0, organization_id).await?;
        }
        patch.roles = patch.roles.map(role_set);
        let revoke = revocation_of(&patch);
        let now = self.0.now();
        self.0
            .revoking(Stale::User(id), move |store| {
                store.update_user(id, &patch, revoke, now, Some(ADMIN_ROLE))
            })
            .await?
            .ok_or(Error::NotFound)
    }

    /// Revokes every session (with its refresh tokens) and every personal token of the
    /// user, leaving the account as it is: they can log in again. `NotFound` for an
    /// unknown id.
    pub async fn revoke_credentials(&self, id: Uuid) -> Result<(), Error> {
        let now = self.0.now();
        let patch = UserPatch::default();
        self.0
            .revoking(Stale::User(id), move |store| {
                // Nothing changes but the credentials, so no admin can be lost: unguarded.
                store.update_user(id, &patch, Revocation::EVERYTHING, now, None)
            })
            .await?
            .map(drop)
            .ok_or(Error::NotFound)
    }

    /// Deletes a user and everything of theirs. `LastAdmin`, deleting nothing, for the last
    /// active admin; `NotFound` for an unknown id.
    pub async fn delete_user(&self, id: Uuid) -> Result<(), Error> {
        let deleted = self
            .0
            .revoking(Stale::User(id), move |store| {
                store.delete_user(id, Some(ADMIN_ROLE))
            })
            .await?;
        if deleted {
            Ok(())
        } else {
            Err(Error::NotFound)
        }
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
            .0
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
            created_at: self.0.now(),
        };
        let stored = organization.clone();
        self.0
            .store(move |store| store.create_organization(&stored))
            .await?;
        Ok(organization)
    }

    /// Every organization, oldest first.
    pub async fn organizations(&self) -> Result<Vec<OrganizationRecord>, Error> {
        self.0.store(|store| store.list_organizations()).await
    }
}
