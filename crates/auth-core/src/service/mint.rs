//! Minting a session's tokens: one access token (with a fresh `jti`) and one refresh token,
//! written once for login, both refresh forms. Every lifetime is bounded here, once: by the
//! lifetime of the profile that opened the session and by the session's absolute end.

use std::time::Duration;

use uuid::Uuid;

use super::{Context, TokenPair};
use crate::clock::secs;
use crate::error::Error;
use crate::store::{NewRefreshToken, SessionBounds, TokenHash, UserRecord};
use crate::token::{Claims, OpaqueToken, REFRESH_PREFIX, new_jti};

/// A new token pair for a session, with what the store must record of it. The refresh
/// token's text names its generation, which a bearer-form refresh only learns from the
/// store: so the pair is put together last, by [`Minted::pair`].
pub(super) struct Minted {
    /// The access token and its lifetime.
    access_token: String,
    expires_in: u64,
    /// The access token's id: the session's new current one.
    pub(super) jti: String,
    session_id: Uuid,
    /// The refresh token's secret part (256 random bits), never stored.
    secret: String,
    /// What the store keeps of it.
    pub(super) hash: TokenHash,
    /// When the refresh token was minted, and when it (and so the session) expires.
    pub(super) created_at: i64,
    pub(super) refresh_expires_at: i64,
}

impl Minted {
    /// The refresh token as stored, as generation `generation` of the session.
    pub(super) fn refresh(&self, generation: u64) -> NewRefreshToken {
        NewRefreshToken {
            hash: self.hash,
            session_id: self.session_id,
            generation,
            created_at: self.created_at,
            expires_at: self.refresh_expires_at,
        }
    }

    /// What the client gets, the refresh token being generation `generation`.
    pub(super) fn pair(&self, generation: u64) -> TokenPair {
        TokenPair {
            access_token: self.access_token.clone(),
            expires_in: self.expires_in,
            refresh_token: refresh_token_text(self.session_id, generation, &self.secret),
            refresh_expires_in: u64::try_from(self.refresh_expires_at - self.created_at)
                .unwrap_or(0),
        }
    }
}

/// A refresh token's text: `authrt_<session id, 32 hex digits>.<generation>.<secret>`.
fn refresh_token_text(session_id: Uuid, generation: u64, secret: &str) -> String {
    format!(
        "{REFRESH_PREFIX}{}.{generation}.{secret}",
        session_id.simple()
    )
}

/// A presented refresh token's parts: session, generation and secret part. `None` for
/// anything not of the form [`refresh_token_text`] writes.
pub(super) fn parse_refresh_token(token: &str) -> Option<(Uuid, u64, &str)> {
    let rest = token.strip_prefix(REFRESH_PREFIX)?;
    let mut parts = rest.splitn(3, '.');
    let (session, generation, secret) = (parts.next()?, parts.next()?, parts.next()?);
    let plain = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    if session.len() != 32 || !plain(generation) || secret.len() != 43 {
        return None;
    }
    let valid_secret = secret
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid_secret {
        return None;
    }
    Some((
        Uuid::try_parse(session).ok()?,
        generation.parse().ok()?,
        secret,
    ))
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
    let refresh = OpaqueToken::generate("");
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
        access_token,
        expires_in: u64::try_from(exp - now).unwrap_or(0),
        jti,
        session_id,
        secret: refresh.secret,
        hash: refresh.hash,
        created_at: now,
        refresh_expires_at: now
            .saturating_add(secs(ctx.config.refresh_ttl))
            .min(ends_at),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_tokens_parse_back_and_nothing_else_does() {
        let id = Uuid::new_v4();
        let secret = OpaqueToken::generate("").secret;
        let text = refresh_token_text(id, 41, &secret);
        assert_eq!(parse_refresh_token(&text), Some((id, 41, secret.as_str())));
        let simple = id.simple();
        for bad in [
            String::new(),
            "authrt_".to_owned(),
            format!("authrt_{simple}.41"),
            format!("authrt_{simple}.x.{secret}"),
            format!("authrt_{simple}.-1.{secret}"),
            format!("authrt_{simple}.99999999999999999999.{secret}"),
            format!("authrt_{simple}.1.{secret}x"),
            format!("authrt_{simple}.1.{}", "!".repeat(43)),
            format!("authrt_{}.1.{secret}", id.hyphenated()),
            format!("authpt_{simple}.1.{secret}"),
        ] {
            assert_eq!(parse_refresh_token(&bad), None, "{bad}");
        }
    }
}
