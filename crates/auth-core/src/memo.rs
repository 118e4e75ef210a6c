//! A bounded in-process memo with a generation guard: the one mechanism behind the principal
//! cache and the verified-token memo.
//!
//! The guard closes a race: a value computed from the database (or from keys) before an
//! eviction must not be stored after it, or it would resurrect what the eviction removed. So
//! callers read [`Memo::generation`] before computing and pass it to [`Memo::put`], which
//! stores nothing if any removal happened in between.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The memo. Past `max_entries` it starts afresh, so a flood of distinct keys cannot grow
/// memory without bound.
pub(crate) struct Memo<K, V> {
    entries: Mutex<HashMap<K, V>>,
    generation: AtomicU64,
    max_entries: usize,
}

impl<K: Eq + Hash, V: Clone> Memo<K, V> {
    /// An empty memo holding at most `max_entries`.
    pub(crate) fn new(max_entries: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            max_entries,
        }
    }

    /// The value for `key` when `fresh` accepts it.
    pub(crate) fn get<Q>(&self, key: &Q, fresh: impl FnOnce(&V) -> bool) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries.lock().ok()?;
        let value = entries.get(key)?;
        fresh(value).then(|| value.clone())
    }

    /// Take this before computing a value; pass it to [`Memo::put`].
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Stores a value computed at `generation`, unless something was removed since.
    pub(crate) fn put(&self, key: K, value: V, generation: u64) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if entries.len() >= self.max_entries {
            entries.clear();
        }
        entries.insert(key, value);
    }

    /// Removes one entry (and invalidates computations in flight).
    pub(crate) fn remove<Q>(&self, key: &Q)
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        if let Ok(mut entries) = self.entries.lock() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            entries.remove(key);
        }
    }

    /// Keeps only the entries `keep` accepts (and invalidates computations in flight).
    pub(crate) fn retain(&self, mut keep: impl FnMut(&K, &V) -> bool) {
        if let Ok(mut entries) = self.entries.lock() {
            self.generation.fetch_add(1, Ordering::AcqRel);
            entries.retain(|key, value| keep(key, value));
        }
    }

    /// Removes everything (and invalidates computations in flight).
    pub(crate) fn clear(&self) {
        self.retain(|_, _| false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_computed_before_a_removal_is_not_stored() {
        let memo: Memo<u32, &str> = Memo::new(10);
        let before = memo.generation();
        memo.remove(&7);
        memo.put(1, "stale", before);
        assert_eq!(memo.get(&1, |_| true), None);
        memo.put(1, "fresh", memo.generation());
        assert_eq!(memo.get(&1, |_| true), Some("fresh"));
        assert_eq!(memo.get(&1, |_| false), None, "the caller judges freshness");
    }

    #[test]
    fn it_starts_afresh_when_full() {
        let memo: Memo<u32, u32> = Memo::new(2);
        for key in 0..3 {
            memo.put(key, key, memo.generation());
        }
        assert_eq!(memo.get(&0, |_| true), None);
        assert_eq!(memo.get(&2, |_| true), Some(2));
        memo.retain(|key, _| *key != 2);
        assert_eq!(memo.get(&2, |_| true), None);
    }
}
