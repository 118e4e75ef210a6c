//! Minting a session's tokens: one access token (with a fresh `jti`) and one refresh token,
//! written once for login, both refresh forms.

use std::time::Duration;

use uuid::Uuid;

use super::{Context, TokenPair};
use crate::clock::secs;
use crate::error::Error;
use crate::store::{NewRefreshToken, UserRecord};
use crate::token::{Claims, OpaqueToken, REFRESH_PREFIX, new_jti};

/// A new token pair for a session, with what the store must record of it.
pub(super) struct Minted {
    /// What the client gets.
    pub(super) pair: TokenPair,
    /// The access token's id: the session's new current one.
    pub(super) jti: String,
    /// The refresh token as stored (its hash).
    pub(super) refresh: NewRefreshToken,
}

/// Mints a pair for `session_id` of `user` at `now`: the access token lives `access_ttl`, the
/// refresh token (and so the session it keeps alive) the configured refresh lifetime.
pub(super) fn mint(
    ctx: &Context,
    user: &UserRecord,
    session_id: Uuid,
    now: i64,
    access_ttl: Duration,
) -> Result<Minted, Error> {
    let jti = new_jti();
    let refresh = OpaqueToken::generate(REFRESH_PREFIX);
    let access_token = ctx.signer.sign(&Claims {
        iss: ctx.signer.issuer().to_owned(),
        sub: user.id.to_string(),
        sid: session_id.to_string(),
        jti: jti.clone(),
        iat: now,
        exp: now.saturating_add(secs(access_ttl)),
        nbf: None,
        email: user.email.clone(),
        roles: user.roles.clone(),
        org_id: user.organization_id,
    })?;
    Ok(Minted {
        pair: TokenPair {
            access_token,
            expires_in: access_ttl.as_secs(),
            refresh_token: refresh.secret,
        },
        jti,
        refresh: NewRefreshToken {
            hash: refresh.hash,
            session_id,
            created_at: now,
            expires_at: now.saturating_add(secs(ctx.config.refresh_ttl)),
        },
    })
}
