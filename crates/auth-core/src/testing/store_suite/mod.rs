//! The store contract suite: every written promise of [`crate::store`], as cases any
//! [`Store`] must pass. One suite, run against every implementation (the
//! [`MemoryStore`](super::MemoryStore) here, SQLite and PostgreSQL in `auth-diesel`), so
//! they cannot drift apart.
//!
//! Each case is a plain `fn(&dyn Store)` that panics on a broken promise and expects a store
//! of its own, empty. Time is fixed: a store never reads the clock, so no case sleeps.
//!
//! Two ways to run it:
//!
//! - [`store_contract_tests!`](crate::store_contract_tests) stamps one `#[test]` per case,
//!   named after it, so each shows up (and can be filtered or ignored) in cargo's output:
//!
//!   ```
//!   mod memory {
//!       auth_core::store_contract_tests!(fixture = auth_core::testing::MemoryStore::new());
//!   }
//!   mod remote {
//!       // Attributes go on every stamped test, e.g. to ignore them without a server.
//!       auth_core::store_contract_tests!(
//!           #[ignore = "needs a database server"]
//!           fixture = super::remote_fixture()
//!       );
//!   }
//!   # fn remote_fixture() -> auth_core::testing::MemoryStore {
//!   #     auth_core::testing::MemoryStore::new()
//!   # }
//!   # fn main() {}
//!   ```
//!
//! - [`run_store_suite`] runs every case of [`CASES`] in one test.
//!
//! The fixture expression is evaluated once per case; it yields anything that is a
//! [`StoreFixture`]: a store itself, or a guard owning one (and a temporary database that
//! goes when the guard drops).

mod audit;
mod emails;
mod guards;
mod keys;
mod login_reservations;
mod mail_queue;
mod mfa;
mod mfa_challenges;
mod one_time_tokens;
mod personal_tokens;
mod purges;
mod rate_limits;
mod refresh;
mod revocations;
mod sessions;
mod support;
mod user_updates;
mod users;

pub use audit::{
    audit_events_are_filtered_and_paged, audit_events_round_trip_newest_first,
    old_audit_events_are_purged,
};
pub use emails::{
    a_taken_email_is_a_conflict_and_writes_nothing, email_verified_at_round_trips,
    update_user_changes_the_email,
};
pub use guards::{
    concurrent_guarded_demotions_keep_an_active_holder, guarded_changes_keep_an_active_holder,
    password_hash_replacement_is_compare_and_set,
};
pub use keys::{
    only_inactive_signing_keys_are_deleted, ping_and_settings, reseal_is_all_or_nothing,
    settings_are_read_and_deleted, signing_keys_switch_the_active_one,
};
pub use login_reservations::{
    concurrent_login_reservations_respect_the_limit,
    known_addresses_are_held_only_to_the_email_ip_limit, login_reservations_count_until_released,
};
pub use mail_queue::{
    concurrent_mail_claims_hand_each_message_out_once, mail_is_claimed_when_due_oldest_first,
    mail_is_rescheduled_and_deleted,
};
pub use mfa::{
    concurrent_mfa_uses_have_one_winner, deleting_totp_removes_its_recovery_codes,
    mfa_rows_go_with_their_user, passkeys_are_listed_oldest_first_and_unique,
    passkeys_are_touched_and_deleted_by_their_owner, recovery_codes_are_used_once,
    reset_mfa_removes_every_factor, totp_setup_is_pending_until_confirmed,
    totp_steps_are_compare_and_set,
};
pub use mfa_challenges::{
    challenges_are_found_by_purpose_until_expiry,
    challenges_are_taken_once_for_their_purpose_while_live,
    concurrent_challenge_failures_are_each_counted,
    concurrent_takes_of_a_challenge_have_one_winner, expired_challenges_are_purged_in_batches,
    failed_challenges_are_counted_and_deleted_at_max,
};
pub use one_time_tokens::{
    concurrent_consumes_of_a_one_time_token_have_one_winner,
    concurrent_replacing_one_time_tokens_leave_one,
    expired_one_time_tokens_are_consumed_as_none_and_gone,
    one_time_tokens_are_deleted_by_user_and_purpose,
    one_time_tokens_are_single_use_for_their_purpose, one_time_tokens_go_with_their_user,
    replacing_one_time_tokens_keeps_only_the_newest,
};
pub use personal_tokens::{credential_lookups_carry_the_users_roles, personal_tokens};
pub use purges::{
    expired_one_time_tokens_are_purged_in_batches, expired_personal_tokens_are_purged_in_batches,
    expired_sessions_are_purged_in_batches, known_addresses_are_purged_in_batches,
};
pub use rate_limits::{
    clear_login_failures_forgets_only_that_email, concurrent_rate_limit_hits_respect_the_limit,
    login_failures_are_counted_per_window, nth_login_failure_per_series,
    purge_rate_limits_removes_old_rows, rate_limit_hits_count_in_their_window,
};
pub use refresh::{
    access_rotation_is_conditional_on_jti, concurrent_refresh_rotation_has_one_winner,
    many_rotations_keep_two_generations, refresh_rotation,
};
pub use revocations::{
    change_password_keeps_only_given_session, deactivation_deletes_sessions_and_tokens,
    revocation_is_carried_out_as_given, update_user_deactivation_deletes_sessions_and_tokens,
};
pub use sessions::{
    expired_session_reads_as_revoked, refresh_tokens_belong_to_their_session, session_lifecycle,
};
pub use user_updates::{
    update_password_hash_keeps_sessions, update_user_patches_each_field, update_user_replaces_roles,
};
pub use users::{
    concurrent_create_user_has_one_winner, delete_user_cascades,
    email_conflict_is_case_insensitive, list_users_pages_and_counts, organizations,
    user_roles_have_ids_and_descriptions, user_roundtrip,
};

use crate::store::Store;

/// What a case runs against: a fresh, empty store, plus whatever keeps its backing database
/// alive for the case (dropped after it).
pub trait StoreFixture {
    /// The store under test.
    fn store(&self) -> &dyn Store;
}

impl<S: Store> StoreFixture for S {
    fn store(&self) -> &dyn Store {
        self
    }
}

/// One case of the suite: its name and the function checking it.
pub type Case = (&'static str, fn(&dyn Store));

crate::__store_suite!(@cases consts ());

/// Runs every case of [`CASES`] in order, each on a fresh fixture from `make`, and panics
/// (naming the case on stderr) at the first broken promise. Prefer
/// [`store_contract_tests!`](crate::store_contract_tests), which reports each case by name.
pub fn run_store_suite<F: StoreFixture>(mut make: impl FnMut() -> F) {
    for (name, case) in CASES {
        eprintln!("store contract case: {name}");
        let fixture = make();
        case(fixture.store());
    }
}

/// Internal: the one list of cases, and what [`CASES`] and
/// [`store_contract_tests!`](crate::store_contract_tests) are made of. Not part of the API.
#[doc(hidden)]
#[macro_export]
macro_rules! __store_suite {
    (@cases $mode:ident $args:tt) => {
        $crate::__store_suite!($mode $args [
            ping_and_settings
            user_roundtrip
            email_conflict_is_case_insensitive
            concurrent_create_user_has_one_winner
            session_lifecycle
            refresh_rotation
            concurrent_refresh_rotation_has_one_winner
            many_rotations_keep_two_generations
            access_rotation_is_conditional_on_jti
            expired_session_reads_as_revoked
            refresh_tokens_belong_to_their_session
            deactivation_deletes_sessions_and_tokens
            change_password_keeps_only_given_session
            revocation_is_carried_out_as_given
            personal_tokens
            update_password_hash_keeps_sessions
            update_user_patches_each_field
            update_user_replaces_roles
            update_user_deactivation_deletes_sessions_and_tokens
            guarded_changes_keep_an_active_holder
            concurrent_guarded_demotions_keep_an_active_holder
            password_hash_replacement_is_compare_and_set
            list_users_pages_and_counts
            delete_user_cascades
            organizations
            user_roles_have_ids_and_descriptions
            login_failures_are_counted_per_window
            nth_login_failure_per_series
            clear_login_failures_forgets_only_that_email
            rate_limit_hits_count_in_their_window
            concurrent_rate_limit_hits_respect_the_limit
            purge_rate_limits_removes_old_rows
            expired_sessions_are_purged_in_batches
            expired_personal_tokens_are_purged_in_batches
            known_addresses_are_purged_in_batches
            concurrent_login_reservations_respect_the_limit
            login_reservations_count_until_released
            known_addresses_are_held_only_to_the_email_ip_limit
            signing_keys_switch_the_active_one
            settings_are_read_and_deleted
            only_inactive_signing_keys_are_deleted
            reseal_is_all_or_nothing
            credential_lookups_carry_the_users_roles
            email_verified_at_round_trips
            update_user_changes_the_email
            a_taken_email_is_a_conflict_and_writes_nothing
            one_time_tokens_are_single_use_for_their_purpose
            expired_one_time_tokens_are_consumed_as_none_and_gone
            replacing_one_time_tokens_keeps_only_the_newest
            concurrent_replacing_one_time_tokens_leave_one
            concurrent_consumes_of_a_one_time_token_have_one_winner
            one_time_tokens_are_deleted_by_user_and_purpose
            one_time_tokens_go_with_their_user
            expired_one_time_tokens_are_purged_in_batches
            mail_is_claimed_when_due_oldest_first
            mail_is_rescheduled_and_deleted
            concurrent_mail_claims_hand_each_message_out_once
            audit_events_round_trip_newest_first
            audit_events_are_filtered_and_paged
            old_audit_events_are_purged
            totp_setup_is_pending_until_confirmed
            totp_steps_are_compare_and_set
            concurrent_mfa_uses_have_one_winner
            deleting_totp_removes_its_recovery_codes
            recovery_codes_are_used_once
            passkeys_are_listed_oldest_first_and_unique
            passkeys_are_touched_and_deleted_by_their_owner
            reset_mfa_removes_every_factor
            mfa_rows_go_with_their_user
            challenges_are_found_by_purpose_until_expiry
            failed_challenges_are_counted_and_deleted_at_max
            concurrent_challenge_failures_are_each_counted
            challenges_are_taken_once_for_their_purpose_while_live
            concurrent_takes_of_a_challenge_have_one_winner
            expired_challenges_are_purged_in_batches
        ]);
    };
    (consts () [$($case:ident)*]) => {
        /// Every case of the suite, by name, in order.
        pub const CASES: &[Case] = &[$((stringify!($case), $case as fn(&dyn Store))),*];
    };
    (tests ([$($attrs:tt)*] $make:expr) [$case:ident $($rest:ident)*]) => {
        #[test]
        $($attrs)*
        fn $case() {
            let fixture = $make;
            $crate::testing::store_suite::$case(
                $crate::testing::store_suite::StoreFixture::store(&fixture),
            );
        }
        $crate::__store_suite!(tests ([$($attrs)*] $make) [$($rest)*]);
    };
    (tests ([$($attrs:tt)*] $make:expr) []) => {};
}

/// Stamps one `#[test]` per case of the store contract suite, named after the case, in the
/// module where it is invoked. `fixture = <expr>` is evaluated afresh for every case and must
/// yield a [`StoreFixture`](crate::testing::store_suite::StoreFixture); attributes written
/// before it (e.g. `#[cfg_attr(..., ignore = "...")]`) go on every test.
///
/// ```
/// mod memory {
///     auth_core::store_contract_tests!(fixture = auth_core::testing::MemoryStore::new());
/// }
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! store_contract_tests {
    ($(#[$attr:meta])* fixture = $make:expr $(,)?) => {
        $crate::__store_suite!(@cases tests ([$(#[$attr])*] $make));
    };
}
