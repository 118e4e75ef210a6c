//! Cases of [`KeyStore`](crate::store::KeyStore) and the health probe: settings and
//! signing keys.

use super::support::{T0, THREADS, race, strings};
use crate::store::{SigningKeyRecord, Store, StoreError};

/// `ping` answers; `get_or_init_setting` keeps the first value, also when initializers race.
pub fn ping_and_settings(store: &dyn Store) {
    store.ping().expect("ping");
    assert_eq!(store.get_or_init_setting("k", "v1").expect("init"), "v1");
    assert_eq!(store.get_or_init_setting("k", "v2").expect("again"), "v1");
    assert_eq!(store.get_or_init_setting("other", "x").expect("other"), "x");

    // Racing initializers all agree on one value.
    let values = race(THREADS, |i| {
        store
            .get_or_init_setting("race", &format!("value-{i}"))
            .expect("race")
    });
    assert!(values.iter().all(|v| v == &values[0]), "{values:?}");
}

fn signing_key(kid: &str, created_at: i64, active: bool) -> SigningKeyRecord {
    let mut private_key = vec![0u8, 255, 1, 254];
    private_key.extend_from_slice(kid.as_bytes());
    SigningKeyRecord {
        kid: kid.to_owned(),
        algorithm: "EdDSA".to_owned(),
        public_key: (0..32).collect(),
        private_key,
        created_at,
        active,
    }
}

/// The kids of the stored keys (newest first) and which one is active.
fn key_state(store: &dyn Store) -> (Vec<String>, Vec<String>) {
    let keys = store.signing_keys().expect("signing keys");
    let kids = keys.iter().map(|k| k.kid.clone()).collect();
    let active = keys
        .iter()
        .filter(|k| k.active)
        .map(|k| k.kid.clone())
        .collect();
    (kids, active)
}

/// Keys come newest first (ties by kid, descending); adding an active key deactivates every
/// other one, also when activations race; a taken kid is a `Conflict` that changes nothing.
pub fn signing_keys_switch_the_active_one(store: &dyn Store) {
    let t = T0;
    assert!(store.signing_keys().expect("empty").is_empty());

    let k1 = signing_key("k1", t, true);
    store.add_signing_key(&k1).expect("add k1");
    assert_eq!(store.signing_keys().expect("keys"), vec![k1.clone()]);

    // An inactive key leaves the active one alone.
    store
        .add_signing_key(&signing_key("k2", t + 1, false))
        .expect("add k2");
    assert_eq!(key_state(store), (strings(&["k2", "k1"]), strings(&["k1"])));

    // An active key deactivates every other one.
    let k3 = signing_key("k3", t + 2, true);
    store.add_signing_key(&k3).expect("add k3");
    assert_eq!(
        key_state(store),
        (strings(&["k3", "k2", "k1"]), strings(&["k3"]))
    );
    let keys = store.signing_keys().expect("keys");
    assert_eq!(keys[0], k3);
    assert_eq!(
        keys[2],
        SigningKeyRecord {
            active: false,
            ..k1
        }
    );

    // Same creation time: the greater kid comes first.
    store
        .add_signing_key(&signing_key("k4", t + 2, true))
        .expect("add k4");
    assert_eq!(
        key_state(store),
        (strings(&["k4", "k3", "k2", "k1"]), strings(&["k4"]))
    );

    // A taken kid is a conflict and changes nothing (not even the active flags).
    match store.add_signing_key(&signing_key("k2", t + 3, true)) {
        Err(StoreError::Conflict) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(
        key_state(store),
        (strings(&["k4", "k3", "k2", "k1"]), strings(&["k4"]))
    );

    // Racing activations leave exactly one active key.
    race(THREADS, |i| {
        let key = signing_key(&format!("race-{i}"), t + 10, true);
        store.add_signing_key(&key).expect("add racing key");
    });
    let (kids, active) = key_state(store);
    assert_eq!(kids.len(), 4 + THREADS);
    assert_eq!(active.len(), 1, "{active:?}");
}
