//! Cases of [`KeyStore`](crate::store::KeyStore) and the health probe: settings and
//! signing keys.

use super::support::{T0, THREADS, race, strings};
use crate::store::{Reseal, ResealedKey, ResealedSetting, SigningKeyRecord, Store, StoreError};

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

/// `setting` reads what is stored (`None` when nothing is); `delete_setting` removes one
/// setting (false when there was none), after which `get_or_init_setting` stores anew.
pub fn settings_are_read_and_deleted(store: &dyn Store) {
    assert_eq!(store.setting("absent").expect("read absent"), None);
    store.get_or_init_setting("k", "v1").expect("init");
    store.get_or_init_setting("other", "x").expect("init other");
    assert_eq!(store.setting("k").expect("read"), Some("v1".to_owned()));

    assert!(store.delete_setting("k").expect("delete"));
    assert_eq!(store.setting("k").expect("read deleted"), None);
    assert!(!store.delete_setting("k").expect("delete again"));
    assert_eq!(
        store.setting("other").expect("other kept"),
        Some("x".to_owned())
    );
    assert_eq!(
        store.get_or_init_setting("k", "v2").expect("init anew"),
        "v2"
    );
}

/// `delete_signing_key` deletes an inactive key only: the active key and unknown kids are
/// false and change nothing.
pub fn only_inactive_signing_keys_are_deleted(store: &dyn Store) {
    let t = T0;
    for (kid, at) in [("k1", t), ("k2", t + 1), ("k3", t + 2)] {
        store
            .add_signing_key(&signing_key(kid, at, true))
            .expect("add");
    }
    assert!(!store.delete_signing_key("k3").expect("delete active"));
    assert!(!store.delete_signing_key("nope").expect("delete unknown"));
    assert_eq!(
        key_state(store),
        (strings(&["k3", "k2", "k1"]), strings(&["k3"]))
    );

    assert!(store.delete_signing_key("k1").expect("delete inactive"));
    assert!(!store.delete_signing_key("k1").expect("delete again"));
    assert_eq!(key_state(store), (strings(&["k3", "k2"]), strings(&["k3"])));
}

/// The reseal of keys `kids` and setting `s` from their current values to `new-…` ones.
fn reseal_of(store: &dyn Store, kids: &[&str]) -> Reseal {
    let keys = store.signing_keys().expect("keys");
    let signing_keys = kids
        .iter()
        .map(|kid| {
            let key = keys.iter().find(|k| k.kid == *kid).expect("a stored key");
            ResealedKey {
                kid: key.kid.clone(),
                old_private_key: key.private_key.clone(),
                new_private_key: format!("new-{kid}").into_bytes(),
            }
        })
        .collect();
    let old_value = store.setting("s").expect("read").expect("setting s");
    Reseal {
        signing_keys,
        settings: vec![ResealedSetting {
            key: "s".to_owned(),
            new_value: format!("new-{old_value}"),
            old_value,
        }],
    }
}

/// `reseal` replaces every listed private key and setting at once, provided each still holds
/// its old value and every stored key is listed; otherwise it is false and changes nothing.
pub fn reseal_is_all_or_nothing(store: &dyn Store) {
    assert!(store.reseal(&Reseal::default()).expect("empty reseal"));
    let t = T0;
    store
        .add_signing_key(&signing_key("k1", t, true))
        .expect("add k1");
    store
        .add_signing_key(&signing_key("k2", t + 1, true))
        .expect("add k2");
    store.get_or_init_setting("s", "sealed").expect("init s");
    store.get_or_init_setting("other", "x").expect("init other");
    let before = store.signing_keys().expect("keys");

    // A key left out, a stale key, a stale setting, a key listed twice: nothing written.
    let mut stale_key = reseal_of(store, &["k1", "k2"]);
    stale_key.signing_keys[0].old_private_key = b"stale".to_vec();
    let mut stale_setting = reseal_of(store, &["k1", "k2"]);
    stale_setting.settings[0].old_value = "stale".to_owned();
    for refused in [
        reseal_of(store, &["k2"]),
        stale_key,
        stale_setting,
        reseal_of(store, &["k2", "k2"]),
    ] {
        assert!(!store.reseal(&refused).expect("reseal"), "{refused:?}");
        assert_eq!(store.signing_keys().expect("keys"), before, "{refused:?}");
        assert_eq!(store.setting("s").expect("s"), Some("sealed".to_owned()));
    }

    // All of it: replaced, and nothing else changes (not the active flags).
    assert!(
        store
            .reseal(&reseal_of(store, &["k1", "k2"]))
            .expect("reseal")
    );
    let after = store.signing_keys().expect("keys");
    let expected: Vec<SigningKeyRecord> = before
        .into_iter()
        .map(|key| SigningKeyRecord {
            private_key: format!("new-{}", key.kid).into_bytes(),
            ..key
        })
        .collect();
    assert_eq!(after, expected);
    assert_eq!(
        store.setting("s").expect("s"),
        Some("new-sealed".to_owned())
    );
    assert_eq!(store.setting("other").expect("other"), Some("x".to_owned()));
}
