//! The caller's personal access tokens.

use std::time::Duration;

use uuid::Uuid;

use super::audit::Event;
use super::mfa::SecondFactor;
use super::{Accounts, Client, Context, IssuedPersonalToken};
use crate::cache::Stale;
use crate::clock::secs;
use crate::error::Error;
use crate::principal::Principal;
use crate::store::{AuditKind, NewPersonalToken, PersonalTokenRecord};
use crate::token::{OpaqueToken, PERSONAL_PREFIX};

/// The personal-token service.
#[derive(Clone, Copy)]
pub struct PersonalTokens<'a>(pub(super) &'a Context);

impl PersonalTokens<'_> {
    /// Creates a personal access token for the caller of a session, who proves the current
    /// password: a stolen access token alone cannot become a long-lived credential, and a
    /// personal token cannot mint more (`Forbidden`). A wrong password is
    /// `WrongCurrentPassword` and counts as a failed login of the account (so guessing through
    /// this route hits the login limit, then `RateLimited`).
    pub async fn create_for(
        &self,
        principal: &Principal,
        current_password: String,
        proof: &SecondFactor,
        client: Client<'_>,
        name: String,
        expires_in: Option<Duration>,
    ) -> Result<IssuedPersonalToken, Error> {
        if principal.session_id().is_none() {
            return Err(Error::Forbidden);
        }
        Accounts(self.0)
            .verify_current_password(principal, current_password, client)
            .await?;
        super::mfa::step_up(self.0, principal, proof, client).await?;
        self.create_from(principal.user.id, name, expires_in, client)
            .await
    }

    /// Creates a personal access token for the user (whose credentials the caller checked);
    /// `expires_in` of `None` never expires. Recorded as `token.created` with no client; see
    /// [`PersonalTokens::create_from`].
    pub async fn create(
        &self,
        user_id: Uuid,
        name: String,
        expires_in: Option<Duration>,
    ) -> Result<IssuedPersonalToken, Error> {
        self.create_from(user_id, name, expires_in, Client::default())
            .await
    }

    /// [`PersonalTokens::create`] on behalf of `client`, recorded as `token.created` (detail:
    /// the token's id, never the token).
    pub async fn create_from(
        &self,
        user_id: Uuid,
        name: String,
        expires_in: Option<Duration>,
        client: Client<'_>,
    ) -> Result<IssuedPersonalToken, Error> {
        let now = self.0.now();
        let token = OpaqueToken::generate(PERSONAL_PREFIX);
        let new = NewPersonalToken {
            id: Uuid::new_v4(),
            user_id,
            name,
            hash: token.hash,
            created_at: now,
            expires_at: expires_in.map(|ttl| now.saturating_add(secs(ttl))),
        };
        let record = self
            .0
            .store(move |store| store.create_personal_token(&new))
            .await?;
        Event::new(AuditKind::TokenCreated)
            .user(user_id)
            .from(client)
            .detail(serde_json::json!({ "token_id": record.id }))
            .record(self.0)
            .await;
        Ok(IssuedPersonalToken {
            record,
            secret: token.secret,
        })
    }

    /// The caller's personal tokens, oldest first.
    pub async fn list(&self, principal: &Principal) -> Result<Vec<PersonalTokenRecord>, Error> {
        let user_id = principal.user.id;
        self.0
            .store(move |store| store.list_personal_tokens(user_id))
            .await
    }

    /// Revokes one of the caller's personal tokens (recorded as `token.revoked`); `NotFound`
    /// for anything else.
    pub async fn revoke(
        &self,
        principal: &Principal,
        token_id: Uuid,
        client: Client<'_>,
    ) -> Result<(), Error> {
        let user_id = principal.user.id;
        let deleted = self
            .0
            .revoking(Stale::User(user_id), move |store| {
                store.delete_personal_token(user_id, token_id)
            })
            .await?;
        if !deleted {
            return Err(Error::NotFound);
        }
        Event::new(AuditKind::TokenRevoked)
            .user(user_id)
            .from(client)
            .detail(serde_json::json!({ "token_id": token_id }))
            .record(self.0)
            .await;
        Ok(())
    }
}
