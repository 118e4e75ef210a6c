//! What second factors and passkeys need stored (issue 15): a TOTP factor per user (its
//! secret sealed by the core, never in plain text here), its recovery codes (only their
//! hashes), passkeys (the credential as the WebAuthn library serializes it: a public key and a
//! sign counter, nothing secret), and the short-lived challenges of multi-factor sign-in,
//! step-up and the WebAuthn ceremonies (only the hash of the token that names each one).

use uuid::Uuid;

use super::{StoreResult, TokenHash};

/// A user's TOTP factor, pending (set up, not yet confirmed) or enabled.
#[derive(Clone, PartialEq, Eq)]
pub struct TotpRecord {
    /// The account.
    pub user_id: Uuid,
    /// The shared secret, sealed by the core (nonce, ciphertext and tag).
    pub secret_sealed: Vec<u8>,
    /// When it was confirmed with a first code; `None` while pending (it then does nothing).
    pub confirmed_at: Option<i64>,
    /// The last time step a code was accepted for: no code of that step or an earlier one is
    /// accepted again (a replayed code is refused).
    pub last_used_step: Option<i64>,
    /// When it was set up.
    pub created_at: i64,
}

impl std::fmt::Debug for TotpRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TotpRecord")
            .field("user_id", &self.user_id)
            .field("confirmed_at", &self.confirmed_at)
            .field("last_used_step", &self.last_used_step)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// Which second factors a user has, in one read (every login of the user asks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MfaFactors {
    /// A confirmed TOTP factor.
    pub totp: bool,
    /// Unused recovery codes.
    pub recovery_codes: u64,
    /// Registered passkeys.
    pub passkeys: u64,
}

impl MfaFactors {
    /// Whether the user has a second factor at all (a confirmed TOTP or a passkey).
    pub fn any(&self) -> bool {
        self.totp || self.passkeys > 0
    }
}

/// A registered passkey.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasskeyRecord {
    /// Our id (in URLs).
    pub id: Uuid,
    /// The account.
    pub user_id: Uuid,
    /// The credential id, base64url without padding; unique across users.
    pub credential_id: String,
    /// A name the user gave it.
    pub name: String,
    /// The credential as the WebAuthn library serializes it (public key, sign counter,
    /// flags), replaced after each sign-in that changed it.
    pub data: String,
    /// When it was registered.
    pub created_at: i64,
    /// When it last signed in.
    pub last_used_at: Option<i64>,
}

/// What a challenge is for. Stored as [`ChallengePurpose::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChallengePurpose {
    /// The second step of a sign-in whose first factor passed (the `mfa_token`).
    MfaLogin,
    /// A passkey assertion proving a signed-in user is present (step-up).
    StepUp,
    /// A passkey registration ceremony.
    PasskeyRegistration,
    /// A passwordless sign-in with a passkey.
    PasskeyLogin,
}

impl ChallengePurpose {
    /// Every purpose.
    pub const ALL: [ChallengePurpose; 4] = [
        ChallengePurpose::MfaLogin,
        ChallengePurpose::StepUp,
        ChallengePurpose::PasskeyRegistration,
        ChallengePurpose::PasskeyLogin,
    ];

    /// The stored name, e.g. `mfa_login`.
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengePurpose::MfaLogin => "mfa_login",
            ChallengePurpose::StepUp => "step_up",
            ChallengePurpose::PasskeyRegistration => "passkey_registration",
            ChallengePurpose::PasskeyLogin => "passkey_login",
        }
    }

    /// The purpose a stored name names.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// A challenge: named by a token the client holds (only its hash is stored), single use,
/// short-lived.
#[derive(Clone, PartialEq, Eq)]
pub struct ChallengeRecord {
    /// SHA-256 of the token.
    pub hash: TokenHash,
    /// What it is for.
    pub purpose: ChallengePurpose,
    /// The account (`None` for a passkey sign-in without an email: the passkey names it).
    pub user_id: Option<Uuid>,
    /// The WebAuthn ceremony's state, as the library serializes it (`None` when the
    /// challenge has no passkey part).
    pub state: Option<String>,
    /// Wrong answers so far.
    pub failures: u32,
    /// When it was made.
    pub created_at: i64,
    /// When it stops working.
    pub expires_at: i64,
}

impl std::fmt::Debug for ChallengeRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChallengeRecord")
            .field("purpose", &self.purpose)
            .field("user_id", &self.user_id)
            .field("failures", &self.failures)
            .field("created_at", &self.created_at)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Second factors, recovery codes, passkeys and challenges. Every row of a user goes with the
/// user ([`super::UserStore::delete_user`]).
pub trait MfaStore {
    /// Which factors the user has (a pending TOTP does not count).
    fn mfa_factors(&self, user_id: Uuid) -> StoreResult<MfaFactors>;

    /// The user's TOTP factor, pending or confirmed.
    fn totp(&self, user_id: Uuid) -> StoreResult<Option<TotpRecord>>;
    /// Stores a pending TOTP factor, replacing a pending one. False, writing nothing, when the
    /// user has a confirmed one (it must be disabled first).
    fn begin_totp(&self, user_id: Uuid, secret_sealed: &[u8], now: i64) -> StoreResult<bool>;
    /// Confirms the pending factor whose sealed secret is `secret_sealed` (so a setup that
    /// replaced it meanwhile is not confirmed instead): sets `confirmed_at = now` and
    /// `last_used_step = step`, and replaces the user's recovery codes by `codes`, in one
    /// transaction. False, writing nothing, when there is no such pending factor.
    fn confirm_totp(
        &self,
        user_id: Uuid,
        secret_sealed: &[u8],
        step: i64,
        codes: &[TokenHash],
        now: i64,
    ) -> StoreResult<bool>;
    /// Records that a code of `step` was accepted: true only when the factor is confirmed
    /// and its `last_used_step` is absent or earlier (a compare-and-set: of concurrent uses of
    /// one code exactly one wins).
    fn use_totp_step(&self, user_id: Uuid, step: i64) -> StoreResult<bool>;
    /// Deletes the user's TOTP factor, pending or confirmed, and every recovery code. False
    /// when there was no factor.
    fn delete_totp(&self, user_id: Uuid) -> StoreResult<bool>;

    /// Replaces every recovery code of the user by `codes` (hashes), in one transaction.
    fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        codes: &[TokenHash],
        now: i64,
    ) -> StoreResult<()>;
    /// Uses up one recovery code: deletes it and returns true, or false when the user has no
    /// such code (of concurrent uses exactly one wins).
    fn use_recovery_code(&self, user_id: Uuid, hash: &TokenHash) -> StoreResult<bool>;

    /// Stores a passkey. `Conflict` when its credential id is registered (to anyone).
    fn add_passkey(&self, passkey: &PasskeyRecord) -> StoreResult<()>;
    /// The user's passkeys, oldest first.
    fn list_passkeys(&self, user_id: Uuid) -> StoreResult<Vec<PasskeyRecord>>;
    /// The passkey with this credential id.
    fn find_passkey(&self, credential_id: &str) -> StoreResult<Option<PasskeyRecord>>;
    /// After a sign-in: replaces the passkey's `data` and sets `last_used_at = now`. False
    /// when it is gone.
    fn touch_passkey(&self, id: Uuid, data: &str, now: i64) -> StoreResult<bool>;
    /// Deletes one of the user's passkeys. False when the user has no such passkey.
    fn delete_passkey(&self, user_id: Uuid, id: Uuid) -> StoreResult<bool>;

    /// Removes every factor of the user: TOTP (pending or not), recovery codes, passkeys and
    /// open challenges, in one transaction. Returns what the user had.
    fn reset_mfa(&self, user_id: Uuid) -> StoreResult<MfaFactors>;

    /// Stores a new challenge.
    fn create_challenge(&self, challenge: &ChallengeRecord) -> StoreResult<()>;
    /// The challenge with this hash and purpose, unless it expired at or before `now`.
    fn find_challenge(
        &self,
        hash: &TokenHash,
        purpose: ChallengePurpose,
        now: i64,
    ) -> StoreResult<Option<ChallengeRecord>>;
    /// Counts one wrong answer; at `max` failures the challenge is deleted. Returns the
    /// failures counted so far, or `None` when the challenge is gone.
    fn fail_challenge(&self, hash: &TokenHash, max: u32) -> StoreResult<Option<u32>>;
    /// Uses the challenge up: deletes it and returns it, unless it expired at or before `now`
    /// or is gone (of concurrent takers exactly one gets it).
    fn take_challenge(
        &self,
        hash: &TokenHash,
        purpose: ChallengePurpose,
        now: i64,
    ) -> StoreResult<Option<ChallengeRecord>>;
    /// Deletes at most `limit` challenges that expired at or before `before` (housekeeping);
    /// how many went. Safe to run concurrently from several instances.
    fn purge_expired_challenges(&self, before: i64, limit: u32) -> StoreResult<u64>;
}
