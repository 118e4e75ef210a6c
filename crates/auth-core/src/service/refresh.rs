//! Both refresh forms. Body form: a refresh token names its session and generation; the
//! current generation is exchanged once; the previous one, replayed within the reuse
//! interval, gets the same answer byte for byte; any other (the previous outside the window
//! or superseded by a bearer-form refresh, or any older generation) is reuse and revokes the
//! session. Bearer form: the session of the access token presented is rotated, its current
//! refresh token superseded.

use std::time::Duration;

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};

use super::mint::{mint, parse_refresh_token};
use super::{Client, Context, Sessions, Throttle, ThrottledAction, TokenPair};
use crate::cache::Stale;
use crate::clock::secs;
use crate::error::Error;
use crate::principal::{Credential, Principal};
use crate::store::{
    AccessRotation, PreviousRefresh, RefreshRecord, RefreshRotation, TokenHash, Use,
};
use crate::token::hash_token;

impl Sessions<'_> {
    /// Exchanges a refresh token (body form). See the contract's refresh semantics: one use;
    /// replays within the reuse interval while the successor is unused (the token is the
    /// session's previous generation) get the same pair; any other reuse revokes the session.
    ///
    /// Something that cannot be a refresh token is refused before any write, so it does not
    /// use up the client's refresh limit; every other attempt counts against it first.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        client: Client<'_>,
        access_ttl: Duration,
    ) -> Result<TokenPair, Error> {
        let (session_id, generation, secret) =
            parse_refresh_token(refresh_token).ok_or(Error::InvalidToken)?;
        let ctx: &Context = self.0;
        Throttle(ctx).hit(ThrottledAction::Refresh, client).await?;
        let hash = hash_token(secret);
        // Two rounds at most: if a concurrent exchange wins the first, the second replays it.
        for _ in 0..2 {
            let now = ctx.now();
            let record = ctx
                .store(move |store| store.find_refresh_token(session_id))
                .await?
                .ok_or(Error::InvalidToken)?;
            if record.session_expires_at <= now {
                return Err(Error::InvalidToken);
            }
            match judge(&record, generation, &hash) {
                Verdict::Unknown => return Err(Error::InvalidToken),
                Verdict::Current => {}
                Verdict::Previous(previous) => {
                    let in_window =
                        in_reuse_window(now, previous.used_at, ctx.config.refresh_reuse_interval);
                    let replay = previous
                        .replay
                        .as_deref()
                        .and_then(|blob| open_replay(refresh_token, blob));
                    if let (true, Some(pair)) = (in_window, replay) {
                        return Ok(pair);
                    }
                    return self.reuse(&record).await;
                }
                Verdict::Older => return self.reuse(&record).await,
            }
            // The rotation below sets `last_used_at`; no separate touch.
            let seen = Use {
                now,
                touch_before: i64::MIN,
            };
            let (_, user) = ctx
                .store(move |store| store.session_with_user(session_id, seen))
                .await?
                .ok_or(Error::InvalidToken)?;
            if !user.is_active {
                return Err(Error::InvalidToken);
            }
            let minted = mint(
                ctx,
                &user,
                session_id,
                record.session_bounds,
                now,
                access_ttl,
            )?;
            let next = generation.checked_add(1).ok_or(Error::InvalidToken)?;
            let pair = minted.pair(next);
            let rotation = RefreshRotation {
                old: hash,
                replay: seal_replay(refresh_token, &pair)?,
                new: minted.refresh(next),
                new_access_jti: minted.jti,
                now,
            };
            let rotated = ctx
                .revoking(Stale::Session(session_id), move |store| {
                    store.rotate_refresh_token(&rotation)
                })
                .await?;
            if rotated {
                return Ok(pair);
            }
        }
        Err(Error::InvalidToken)
    }

    /// Reuse of a refresh token of `record`'s session: revokes the session.
    async fn reuse(&self, record: &RefreshRecord) -> Result<TokenPair, Error> {
        tracing::warn!(session = %record.session_id, "refresh token reuse: revoking the session");
        let (user_id, session_id) = (record.user_id, record.session_id);
        self.0
            .revoking(Stale::Session(session_id), move |store| {
                store.delete_session(user_id, session_id)
            })
            .await?;
        Err(Error::InvalidToken)
    }

    /// Bearer-form refresh: rotates the session of the access token presented. Personal
    /// tokens are refused. The session's unused refresh token is superseded as used, with no
    /// replay: whoever presents it later triggers reuse detection, which revokes the session
    /// (so a stolen access token cannot quietly take a session over from its owner). Of concurrent calls with one access token, one wins.
    /// The caller was authenticated first, so a refused bearer costs no write; the attempt
    /// then counts against the client's refresh limit.
    pub async fn refresh_session(
        &self,
        principal: &Principal,
        client: Client<'_>,
        access_ttl: Duration,
    ) -> Result<TokenPair, Error> {
        let Credential::Session {
            session_id,
            jti,
            bounds,
        } = &principal.credential
        else {
            return Err(Error::InvalidToken);
        };
        let ctx: &Context = self.0;
        Throttle(ctx).hit(ThrottledAction::Refresh, client).await?;
        let now = ctx.now();
        let minted = mint(ctx, &principal.user, *session_id, *bounds, now, access_ttl)?;
        let rotation = AccessRotation {
            session_id: *session_id,
            old_access_jti: jti.clone(),
            new_access_jti: minted.jti.clone(),
            new_refresh: minted.hash,
            expires_at: minted.refresh_expires_at,
            now,
        };
        let rotated = ctx
            .revoking(Stale::Session(*session_id), move |store| {
                store.rotate_access_token(&rotation)
            })
            .await?;
        rotated
            .map(|generation| minted.pair(generation))
            .ok_or(Error::InvalidToken)
    }
}

/// What a presented refresh token is to its session.
enum Verdict<'a> {
    /// The current generation: it may be exchanged.
    Current,
    /// The previous generation: replayed within the reuse interval, reuse otherwise.
    Previous(&'a PreviousRefresh),
    /// An older generation: reuse.
    Older,
    /// Not a token of this session as far as can be told (a newer generation, or a secret
    /// that does not match its generation's): refused, revoking nothing.
    Unknown,
}

/// Judges a token of `generation` whose secret part hashes to `hash`. Hashes are compared in
/// constant time. Generations older than the previous are not stored, so they cannot be
/// checked: naming one is reuse (the session ids it takes are in every access token).
fn judge<'a>(record: &'a RefreshRecord, generation: u64, hash: &TokenHash) -> Verdict<'a> {
    let current = record.generation;
    if generation == current {
        return if hash.ct_eq(&record.current) {
            Verdict::Current
        } else {
            Verdict::Unknown
        };
    }
    match &record.previous {
        Some(previous) if generation.checked_add(1) == Some(current) => {
            if hash.ct_eq(&previous.hash) {
                Verdict::Previous(previous)
            } else {
                Verdict::Unknown
            }
        }
        _ if generation < current => Verdict::Older,
        _ => Verdict::Unknown,
    }
}

/// Whether a refresh token used at `used_at` may still be replayed at `now` (both whole Unix
/// seconds, truncated). Inclusive, so every replay less than `interval` after the use is
/// honoured as the contract promises, whatever the fractions of a second truncated away: the
/// window closes between `interval` and `interval` + 1 s after the use. An interval under one
/// second (0 in particular) allows no replay at all.
fn in_reuse_window(now: i64, used_at: i64, interval: Duration) -> bool {
    let interval = secs(interval);
    interval > 0 && now <= used_at.saturating_add(interval)
}

/// The key that protects a refresh token's replay: derived from the token, which the server
/// does not keep, so a database dump reveals nothing usable.
fn replay_cipher(refresh_token: &str) -> ChaCha20Poly1305 {
    let mut digest = Sha256::new();
    digest.update(b"auth-core/refresh-replay/v1\0");
    digest.update(refresh_token.as_bytes());
    let key: [u8; 32] = digest.finalize().into();
    ChaCha20Poly1305::new(Key::from_slice(&key))
}

fn seal_replay(refresh_token: &str, pair: &TokenPair) -> Result<Vec<u8>, Error> {
    let plaintext = serde_json::to_vec(pair).map_err(|_| Error::Internal)?;
    let nonce: [u8; 12] = rand::random();
    let mut sealed = nonce.to_vec();
    let ciphertext = replay_cipher(refresh_token)
        .encrypt(Nonce::from_slice(&nonce), plaintext.as_slice())
        .map_err(|_| Error::Internal)?;
    sealed.extend_from_slice(&ciphertext);
    Ok(sealed)
}

fn open_replay(refresh_token: &str, sealed: &[u8]) -> Option<TokenPair> {
    if sealed.len() < 12 {
        return None;
    }
    let (nonce, ciphertext) = sealed.split_at(12);
    let plaintext = replay_cipher(refresh_token)
        .decrypt(Nonce::from_slice(nonce), ciphertext)
        .ok()?;
    serde_json::from_slice(&plaintext).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_within_the_reuse_interval_are_honoured_despite_whole_seconds() {
        let interval = Duration::from_secs(2);
        // Used at 100.9 s (stored as 100), replayed 1.2 s later at 102.1 s (102): inside.
        assert!(in_reuse_window(102, 100, interval));
        assert!(in_reuse_window(100, 100, interval));
        // 3 s or more after the use, whatever the fractions: outside.
        assert!(!in_reuse_window(103, 100, interval));
        assert!(!in_reuse_window(i64::MAX, 100, interval));
        // No interval, no replay, not even within the same second.
        assert!(!in_reuse_window(100, 100, Duration::ZERO));
        assert!(!in_reuse_window(100, 100, Duration::from_millis(900)));
    }

    #[test]
    fn replay_round_trip_needs_the_token() {
        let pair = TokenPair {
            access_token: "a".into(),
            expires_in: 60,
            refresh_token: "r".into(),
            refresh_expires_in: 3600,
        };
        let sealed = seal_replay("authrt_one", &pair).unwrap();
        assert_eq!(open_replay("authrt_one", &sealed), Some(pair));
        assert_eq!(open_replay("authrt_two", &sealed), None);
        assert_eq!(open_replay("authrt_one", &sealed[..5]), None);
    }
}
