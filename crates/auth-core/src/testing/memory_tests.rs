//! The store contract suite on the [`MemoryStore`], one test per case, and what only the
//! memory store has to show.

use super::MemoryStore;
use super::store_suite::{CASES, run_store_suite};
use crate::store::{Store, StoreError, UserStore};

crate::store_contract_tests!(fixture = MemoryStore::new());

#[test]
fn run_store_suite_runs_every_case() {
    let mut made = 0;
    run_store_suite(|| {
        made += 1;
        MemoryStore::new()
    });
    assert_eq!(made, CASES.len(), "a fresh store per case");
}

#[test]
fn cases_have_distinct_names() {
    let mut names: Vec<&str> = CASES.iter().map(|(name, _)| *name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), CASES.len());
}

#[test]
fn a_poisoned_store_reports_other() {
    let store = MemoryStore::new();
    store.poison();
    assert!(matches!(store.ping(), Err(StoreError::Other(_))));
    assert!(matches!(
        store.find_user(uuid::Uuid::new_v4()),
        Err(StoreError::Other(_))
    ));
}
