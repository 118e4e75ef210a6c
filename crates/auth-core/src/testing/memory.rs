//! [`MemoryStore`]: the whole storage contract in memory, for tests.
//!
//! One [`Mutex`] guards plain collections, and every method is one critical section that
//! checks everything before it writes anything: each call is atomic like a database
//! transaction, and conditional writes have exactly one winner. Where the trait docs are
//! silent, it does what `auth-diesel`'s store does (its tables' keys, unique indexes,
//! foreign keys and cascades are mirrored here); the store contract suite
//! ([`super::store_suite`]) checks both.

mod audit;
mod counters;
mod credentials;
mod keys;
mod mail;
mod mfa;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Mutex, MutexGuard};

use serde_json::Value;
use uuid::Uuid;

use crate::store::{
    NewUser, OneTimeTokenRecord, OrganizationRecord, OrganizationStore, PersonalTokenRecord,
    PreviousRefresh, QueuedMail, Revocation, RoleRecord, SessionRecord, SessionRevocation,
    SigningKeyRecord, Store, StoreError, StoreResult, TokenHash, UserPatch, UserQuery, UserRecord,
    UserStore,
};

/// A [`Store`] in memory: nothing is persisted, everything is lost on drop. Cheap to
/// create (one per test); share it behind an `Arc` or a reference across threads.
///
/// Never part of a production build: it exists only with the `test-support` feature (or in
/// this crate's own tests).
#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
    /// Whether audit appends fail (as an unreachable database would), for the core's tests.
    #[cfg(test)]
    audit_fails: std::sync::atomic::AtomicBool,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state, for one critical section. A mutex poisoned by a panicking caller is
    /// reported as `StoreError::Other` rather than propagated as a panic.
    fn lock(&self) -> StoreResult<MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| StoreError::Other("memory store mutex poisoned".to_owned()))
    }

    /// Poisons the mutex, as a caller panicking inside a critical section would.
    #[cfg(test)]
    pub(super) fn poison(&self) {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = self.state.lock();
            panic!("poisoning the memory store");
        }));
    }
}

/// Every table of the store.
#[derive(Debug, Default)]
struct State {
    settings: HashMap<String, String>,
    organizations: HashMap<Uuid, OrganizationRecord>,
    /// By name (names are unique; roles are never removed).
    roles: BTreeMap<String, RoleRecord>,
    users: HashMap<Uuid, StoredUser>,
    sessions: HashMap<Uuid, SessionRecord>,
    /// Session id → its refresh state (one entry per session, however often refreshed).
    refresh: HashMap<Uuid, StoredRefresh>,
    personal_tokens: HashMap<Uuid, StoredPersonalToken>,
    login_failures: Vec<LoginFailure>,
    /// (email key, IP) → last successful login.
    known_addresses: HashMap<(String, String), i64>,
    rate_limit_hits: Vec<RateLimitHit>,
    signing_keys: Vec<SigningKeyRecord>,
    /// By hash (the primary key); a user's go with the user.
    one_time_tokens: HashMap<TokenHash, OneTimeTokenRecord>,
    mail_queue: HashMap<Uuid, QueuedMail>,
    /// The audit log, in insertion order.
    audit: Vec<crate::store::AuditEventRecord>,
    /// Second factors, passkeys and challenges.
    mfa: mfa::MfaTables,
}

/// A user row: the record (its `roles` always the sorted, distinct names of its
/// assignments) and the unique normalized email.
#[derive(Debug)]
struct StoredUser {
    email_key: String,
    record: UserRecord,
}

/// A session's refresh state (the columns a database keeps on the session row).
#[derive(Debug)]
struct StoredRefresh {
    generation: u64,
    current: TokenHash,
    previous: Option<PreviousRefresh>,
}

/// A personal-token row.
#[derive(Debug)]
struct StoredPersonalToken {
    hash: TokenHash,
    record: PersonalTokenRecord,
}

/// One failed login.
#[derive(Debug)]
struct LoginFailure {
    email_key: String,
    ip: String,
    at: i64,
}

/// One recorded rate-limit hit.
#[derive(Debug)]
struct RateLimitHit {
    bucket: String,
    key: String,
    at: i64,
}

/// "A foreign key refused the write", as a database reports it.
/// The page of `matching` (already filtered and sorted) at `offset`, at most `limit` long,
/// and how many matched in all: what every listing of the store answers.
fn page<T: Clone>(matching: Vec<&T>, offset: u64, limit: u32) -> (Vec<T>, u64) {
    let total = u64::try_from(matching.len()).unwrap_or(u64::MAX);
    let offset = usize::try_from(offset).unwrap_or(usize::MAX);
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let page = matching
        .into_iter()
        .skip(offset)
        .take(limit)
        .cloned()
        .collect();
    (page, total)
}

fn missing(what: &str) -> StoreError {
    StoreError::Other(format!("foreign key violation: no such {what}"))
}

/// The distinct names of `names`, sorted by byte order.
fn role_set(names: &[String]) -> Vec<String> {
    let mut set = names.to_vec();
    set.sort_unstable();
    set.dedup();
    set
}

impl State {
    /// `Ok` when `organization` is `None` or exists.
    fn check_organization(&self, organization: Option<Uuid>) -> StoreResult<()> {
        match organization {
            Some(id) if !self.organizations.contains_key(&id) => Err(missing("organization")),
            _ => Ok(()),
        }
    }

    /// Creates the roles of `names` that do not exist yet (without a description).
    fn ensure_roles(&mut self, names: &[String]) {
        for name in names {
            self.roles
                .entry(name.clone())
                .or_insert_with(|| RoleRecord {
                    id: Uuid::new_v4(),
                    name: name.clone(),
                    description: None,
                });
        }
    }

    /// Deletes the sessions matching `doomed` and, with them, their refresh tokens.
    fn delete_sessions(&mut self, doomed: impl Fn(&SessionRecord) -> bool) {
        let mut gone = HashSet::new();
        self.sessions.retain(|id, session| {
            let keep = !doomed(session);
            if !keep {
                gone.insert(*id);
            }
            keep
        });
        if !gone.is_empty() {
            self.refresh.retain(|id, _| !gone.contains(id));
        }
    }

    /// Carries out `revoke` for the user `user_id`.
    fn revoke(&mut self, user_id: Uuid, revoke: Revocation) {
        match revoke.sessions {
            SessionRevocation::None => {}
            SessionRevocation::All => self.delete_sessions(|s| s.user_id == user_id),
            SessionRevocation::AllExcept(keep) => {
                self.delete_sessions(|s| s.user_id == user_id && s.id != keep);
            }
        }
        if revoke.personal_tokens {
            self.personal_tokens
                .retain(|_, token| token.record.user_id != user_id);
        }
    }

    /// The user's record, if the user exists.
    fn user(&self, id: Uuid) -> Option<&UserRecord> {
        self.users.get(&id).map(|u| &u.record)
    }

    /// `LastActiveHolder` when user `id` is an active holder of `role`, would not be one
    /// after the change (`stays` false), and no other active user holds it.
    fn guard_last_holder(&self, id: Uuid, role: &str, stays: bool) -> StoreResult<()> {
        let holds = |user: &UserRecord| user.is_active && user.roles.iter().any(|r| r == role);
        let Some(user) = self.user(id) else {
            return Ok(());
        };
        if stays || !holds(user) {
            return Ok(());
        }
        let others = self
            .users
            .values()
            .any(|other| other.record.id != id && holds(&other.record));
        if others {
            Ok(())
        } else {
            Err(StoreError::LastActiveHolder)
        }
    }
}

impl UserStore for MemoryStore {
    fn create_user(&self, user: &NewUser) -> StoreResult<UserRecord> {
        let mut state = self.lock()?;
        let taken = state.users.contains_key(&user.id)
            || state.users.values().any(|u| u.email_key == user.email_key);
        if taken {
            return Err(StoreError::Conflict);
        }
        state.check_organization(user.organization_id)?;
        let roles = role_set(&user.roles);
        state.ensure_roles(&roles);
        let record = UserRecord {
            id: user.id,
            email: user.email.clone(),
            password_hash: user.password_hash.clone(),
            full_name: user.full_name.clone(),
            phone: None,
            is_active: user.is_active,
            roles,
            organization_id: user.organization_id,
            attributes: Value::Object(serde_json::Map::new()),
            created_at: user.now,
            updated_at: user.now,
            email_verified_at: None,
        };
        state.users.insert(
            user.id,
            StoredUser {
                email_key: user.email_key.clone(),
                record: record.clone(),
            },
        );
        Ok(record)
    }

    fn find_user_by_email(&self, email_key: &str) -> StoreResult<Option<UserRecord>> {
        let state = self.lock()?;
        Ok(state
            .users
            .values()
            .find(|u| u.email_key == email_key)
            .map(|u| u.record.clone()))
    }

    fn find_user(&self, id: Uuid) -> StoreResult<Option<UserRecord>> {
        Ok(self.lock()?.user(id).cloned())
    }

    fn update_user(
        &self,
        id: Uuid,
        patch: &UserPatch,
        revoke: Revocation,
        now: i64,
        protect: Option<&str>,
    ) -> StoreResult<Option<UserRecord>> {
        if matches!(&patch.attributes, Some(value) if !value.is_object()) {
            return Err(StoreError::Other(
                "user attributes must be a JSON object".to_owned(),
            ));
        }
        let mut state = self.lock()?;
        let Some(current) = state.user(id) else {
            return Ok(None);
        };
        if let Some(role) = protect.filter(|_| patch.may_demote()) {
            let stays = patch.keeps_active_holder(current.is_active, &current.roles, role);
            state.guard_last_holder(id, role, stays)?;
        }
        if let Some(organization) = patch.organization_id {
            state.check_organization(organization)?;
        }
        state.check_new_email(id, patch)?;
        // Everything is checked: from here on nothing fails, so nothing half-writes.
        let roles = patch.roles.as_deref().map(role_set);
        if let Some(names) = &roles {
            state.ensure_roles(names);
        }
        let Some(user) = state.users.get_mut(&id) else {
            return Ok(None);
        };
        mail::patch_address(user, patch);
        let record = &mut user.record;
        if let Some(hash) = &patch.password_hash {
            record.password_hash.clone_from(hash);
        }
        if let Some(full_name) = &patch.full_name {
            record.full_name.clone_from(full_name);
        }
        if let Some(phone) = &patch.phone {
            record.phone.clone_from(phone);
        }
        if let Some(is_active) = patch.is_active {
            record.is_active = is_active;
        }
        if let Some(names) = roles {
            record.roles = names;
        }
        if let Some(organization) = patch.organization_id {
            record.organization_id = organization;
        }
        if let Some(attributes) = &patch.attributes {
            record.attributes.clone_from(attributes);
        }
        record.updated_at = now;
        let updated = record.clone();
        state.revoke(id, revoke);
        Ok(Some(updated))
    }

    fn replace_password_hash(
        &self,
        id: Uuid,
        expected: &str,
        new: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let mut state = self.lock()?;
        match state.users.get_mut(&id) {
            Some(user) if user.record.password_hash == expected => {
                user.record.password_hash = new.to_owned();
                user.record.updated_at = now;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn delete_user(&self, id: Uuid, protect: Option<&str>) -> StoreResult<bool> {
        let mut state = self.lock()?;
        if let Some(role) = protect {
            state.guard_last_holder(id, role, false)?;
        }
        if state.users.remove(&id).is_none() {
            return Ok(false);
        }
        state.revoke(id, Revocation::EVERYTHING);
        state.forget_one_time_tokens(id);
        state.mfa.forget_user(id);
        Ok(true)
    }

    fn list_users(&self, query: &UserQuery) -> StoreResult<(Vec<UserRecord>, u64)> {
        let state = self.lock()?;
        let mut matching: Vec<&UserRecord> = state
            .users
            .values()
            .filter(|u| {
                query
                    .email_key
                    .as_ref()
                    .is_none_or(|key| &u.email_key == key)
            })
            .map(|u| &u.record)
            .collect();
        matching.sort_unstable_by_key(|u| (u.created_at, u.id));
        Ok(page(matching, query.offset, query.limit))
    }

    fn user_roles(&self, user_id: Uuid) -> StoreResult<Vec<RoleRecord>> {
        let state = self.lock()?;
        let Some(user) = state.user(user_id) else {
            return Ok(Vec::new());
        };
        // `roles` is sorted, so the records come out sorted by name.
        Ok(user
            .roles
            .iter()
            .filter_map(|name| state.roles.get(name).cloned())
            .collect())
    }
}

impl OrganizationStore for MemoryStore {
    fn create_organization(&self, organization: &OrganizationRecord) -> StoreResult<()> {
        let mut state = self.lock()?;
        if state.organizations.contains_key(&organization.id) {
            return Err(StoreError::Conflict);
        }
        state
            .organizations
            .insert(organization.id, organization.clone());
        Ok(())
    }

    fn find_organization(&self, id: Uuid) -> StoreResult<Option<OrganizationRecord>> {
        Ok(self.lock()?.organizations.get(&id).cloned())
    }

    fn list_organizations(&self) -> StoreResult<Vec<OrganizationRecord>> {
        let state = self.lock()?;
        let mut all: Vec<OrganizationRecord> = state.organizations.values().cloned().collect();
        all.sort_unstable_by_key(|o| (o.created_at, o.id));
        Ok(all)
    }
}

impl Store for MemoryStore {
    fn ping(&self) -> StoreResult<()> {
        self.lock().map(drop)
    }
}
