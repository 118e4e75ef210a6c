//! Minting a session's tokens: one access token (with a fresh `jti`) and one refresh token,
//! written once for login, both refresh forms. Every lifetime is bounded here, once: by the
//! lifetime of the profile that opened the session and by the session's absolute end.

use std::time::Duration;

use uuid::Uuid;

use super::{Context, TokenPair};
use crate::clock::secs;
use crate::error::Error;
use crate::store::{NewRefreshToken, SessionBounds, UserRecord};
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

/// Mints a pair for `session_id` of `user` at `now`. The access token lives `access_ttl` (the
/// asking profile's), but never longer than the lifetime of the profile that opened the
/// session; the refresh token (and so the session it keeps alive) the configured refresh
/// lifetime; neither past the session's absolute end. `InvalidToken` once that end is reached.
pub(super) fn mint(
    ctx: &Context,
    user: &UserRecord,
    session_id: Uuid,
    bounds: SessionBounds,
    now: i64,
    access_ttl: Duration,
) -> Result<Minted, Error> {
    let ends_at = bounds
        .created_at
        .saturating_add(secs(ctx.config.session_lifetime));
    if now >= ends_at {
        return Err(Error::InvalidToken);
    }
    let access_ttl = bounds
        .access_ttl
        .map_or(secs(access_ttl), |cap| cap.min(secs(access_ttl)));
    let exp = now.saturating_add(access_ttl).min(ends_at);
    let jti = new_jti();
    let refresh = OpaqueToken::generate(REFRESH_PREFIX);
    let access_token = ctx.signer.sign(&Claims {
        iss: ctx.signer.issuer().to_owned(),
        sub: user.id.to_string(),
        sid: session_id.to_string(),
        jti: jti.clone(),
        iat: now,
        exp,
        nbf: None,
        email: user.email.clone(),
        roles: user.roles.clone(),
        org_id: user.organization_id,
    })?;
    Ok(Minted {
        pair: TokenPair {
            access_token,
            expires_in: u64::try_from(exp - now).unwrap_or(0),
            refresh_token: refresh.secret,
        },
        jti,
        refresh: NewRefreshToken {
            hash: refresh.hash,
            session_id,
            created_at: now,
            expires_at: now
                .saturating_add(secs(ctx.config.refresh_ttl))
                .min(ends_at),
        },
    })
}
