//! What the account lifecycle over email needs stored (issue 13): one-time tokens (email
//! verification, password reset, magic link, email change) and the outgoing mail queue, which
//! keeps mail across crashes and restarts until it is delivered.

use uuid::Uuid;

use super::{StoreResult, TokenHash};

/// What a one-time token is for. Stored as [`TokenPurpose::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenPurpose {
    /// Proves the account's address (registration, resend).
    VerifyEmail,
    /// Sets a new password without the old one.
    PasswordReset,
    /// Signs in without a password.
    MagicLink,
    /// Confirms a new address before it replaces the old one.
    EmailChange,
}

impl TokenPurpose {
    /// Every purpose.
    pub const ALL: [TokenPurpose; 4] = [
        TokenPurpose::VerifyEmail,
        TokenPurpose::PasswordReset,
        TokenPurpose::MagicLink,
        TokenPurpose::EmailChange,
    ];

    /// The stored name, e.g. `password_reset`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::PasswordReset => "password_reset",
            TokenPurpose::MagicLink => "magic_link",
            TokenPurpose::EmailChange => "email_change",
        }
    }

    /// The purpose a stored name names.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == name)
    }
}

/// A one-time token to store (only its hash; the secret goes out by mail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOneTimeToken {
    /// SHA-256 of the secret.
    pub hash: TokenHash,
    /// The account it acts on.
    pub user_id: Uuid,
    /// What it is for.
    pub purpose: TokenPurpose,
    /// The address it was sent to: for an email change the new address, otherwise the
    /// account's address when the token was made (a token for an address the account no
    /// longer has is refused by the core).
    pub email: String,
    /// When it was made.
    pub created_at: i64,
    /// When it stops working.
    pub expires_at: i64,
    /// Delete the user's other tokens of this purpose in the same transaction, so only the
    /// newest works (password reset, magic link).
    pub replace_others: bool,
}

/// A stored one-time token, as consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneTimeTokenRecord {
    /// The account it acts on.
    pub user_id: Uuid,
    /// What it is for.
    pub purpose: TokenPurpose,
    /// The address it was sent to.
    pub email: String,
    /// When it was made.
    pub created_at: i64,
    /// When it stops working.
    pub expires_at: i64,
}

/// One-time tokens.
pub trait OneTimeTokenStore {
    /// Stores a token (and with `replace_others`, deletes the user's other tokens of its
    /// purpose), in one transaction.
    fn create_one_time_token(&self, token: &NewOneTimeToken) -> StoreResult<()>;
    /// Deletes the token of `hash` and `purpose` and returns it, when it exists and
    /// `expires_at > now`: single use, one winner among concurrent callers. An expired token
    /// is deleted too and `None` returned; a token of another purpose is left alone.
    fn consume_one_time_token(
        &self,
        hash: &TokenHash,
        purpose: TokenPurpose,
        now: i64,
    ) -> StoreResult<Option<OneTimeTokenRecord>>;
    /// Deletes every token of `user_id` of `purpose` (e.g. the reset tokens after a reset);
    /// how many went.
    fn delete_one_time_tokens(&self, user_id: Uuid, purpose: TokenPurpose) -> StoreResult<u64>;
    /// Deletes at most `limit` tokens with `expires_at <= before` (housekeeping); how many
    /// went.
    fn purge_one_time_tokens(&self, before: i64, limit: u32) -> StoreResult<u64>;
}

/// A message waiting in the outgoing queue. `payload` is the message sealed by the core
/// (recipient, subject and bodies: the bodies carry links with tokens, so a copy of the
/// database must not read them); a store keeps the bytes as they are.
#[derive(Clone, PartialEq, Eq)]
pub struct QueuedMail {
    /// Primary key, chosen by the core.
    pub id: Uuid,
    /// The sealed message.
    pub payload: Vec<u8>,
    /// Delivery attempts so far.
    pub attempts: u32,
    /// Not to be tried before this time.
    pub next_attempt_at: i64,
    /// When it was queued.
    pub created_at: i64,
}

impl std::fmt::Debug for QueuedMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedMail")
            .field("id", &self.id)
            .field("attempts", &self.attempts)
            .field("next_attempt_at", &self.next_attempt_at)
            .finish_non_exhaustive()
    }
}

/// The outgoing mail queue. Several instances may share it: [`MailQueueStore::claim_mail`]
/// hands each message to one sender at a time.
pub trait MailQueueStore {
    /// Queues a message.
    fn enqueue_mail(&self, mail: &QueuedMail) -> StoreResult<()>;
    /// Claims at most `limit` messages due at `now` (`next_attempt_at <= now`), oldest first,
    /// by moving their `next_attempt_at` to `lease_until` in the same transaction, so no
    /// other sender claims them meanwhile; returns them as they were before the claim
    /// (`attempts` unchanged).
    fn claim_mail(&self, now: i64, lease_until: i64, limit: u32) -> StoreResult<Vec<QueuedMail>>;
    /// Removes a delivered (or abandoned) message. False when it was not there.
    fn delete_mail(&self, id: Uuid) -> StoreResult<bool>;
    /// Records a failed attempt: `attempts` becomes `attempts`, and the message is next due at
    /// `next_attempt_at`. False when it was not there.
    fn reschedule_mail(&self, id: Uuid, attempts: u32, next_attempt_at: i64) -> StoreResult<bool>;
    /// How many messages wait (for health and tests).
    fn queued_mail_count(&self) -> StoreResult<u64>;
}
