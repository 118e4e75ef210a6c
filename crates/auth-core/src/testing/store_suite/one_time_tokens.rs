//! Cases of [`OneTimeTokenStore`](crate::store::OneTimeTokenStore): tokens of the email
//! flows, consumed once, for their purpose only, replaced and deleted as told.

use uuid::Uuid;

use super::support::{T0, THREADS, make_user, one_time_token, race, random_hash};
use crate::store::{NewOneTimeToken, OneTimeTokenRecord, Store, StoreError, TokenPurpose};

/// The record a consumed `token` reads back as.
fn record_of(token: &NewOneTimeToken) -> OneTimeTokenRecord {
    OneTimeTokenRecord {
        user_id: token.user_id,
        purpose: token.purpose,
        email: token.email.clone(),
        created_at: token.created_at,
        expires_at: token.expires_at,
    }
}

/// Consumes `token` at `now` for its own purpose.
fn consume(store: &dyn Store, token: &NewOneTimeToken, now: i64) -> Option<OneTimeTokenRecord> {
    store
        .consume_one_time_token(&token.hash, token.purpose, now)
        .expect("consume")
}

/// A token reads back as stored, once, and only for its own purpose: consuming it for
/// another purpose finds nothing and leaves it; an unknown hash is `None`; a taken hash is
/// a `Conflict`; a token of an unknown user is `Other`. Every purpose is kept apart.
pub fn one_time_tokens_are_single_use_for_their_purpose(store: &dyn Store) {
    let t = T0;
    let user = make_user(store, "once@example.com");
    let mut token = one_time_token(&user, TokenPurpose::EmailChange, t);
    token.email = "New.Address@example.com".to_owned();
    store.create_one_time_token(&token).expect("create");

    for other in TokenPurpose::ALL
        .into_iter()
        .filter(|p| *p != token.purpose)
    {
        let found = store
            .consume_one_time_token(&token.hash, other, t + 1)
            .expect("other purpose");
        assert_eq!(found, None, "{other:?}");
    }
    assert_eq!(consume(store, &token, t + 1), Some(record_of(&token)));
    assert_eq!(consume(store, &token, t + 1), None, "single use");
    let unknown = store
        .consume_one_time_token(&random_hash(), TokenPurpose::VerifyEmail, t)
        .expect("unknown");
    assert_eq!(unknown, None);

    // A taken hash is a conflict, and the stored token is left as it was.
    let first = one_time_token(&user, TokenPurpose::VerifyEmail, t);
    store.create_one_time_token(&first).expect("create");
    let same_hash = NewOneTimeToken {
        hash: first.hash,
        ..one_time_token(&user, TokenPurpose::MagicLink, t + 5)
    };
    match store.create_one_time_token(&same_hash) {
        Err(StoreError::Conflict) => {}
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert_eq!(consume(store, &first, t + 1), Some(record_of(&first)));

    // An unknown user is refused (foreign key), and it is not a conflict.
    let mut orphan = one_time_token(&user, TokenPurpose::PasswordReset, t);
    orphan.user_id = Uuid::new_v4();
    match store.create_one_time_token(&orphan) {
        Err(StoreError::Other(_)) => {}
        other => panic!("expected Other, got {other:?}"),
    }
    assert_eq!(consume(store, &orphan, t), None);

    // Every purpose round-trips.
    for purpose in TokenPurpose::ALL {
        let token = one_time_token(&user, purpose, t + 10);
        store.create_one_time_token(&token).expect("create");
        assert_eq!(consume(store, &token, t + 11), Some(record_of(&token)));
    }
}

/// A token works while `expires_at > now`; consumed at or after its expiry it is `None`
/// and deleted (consuming it again, even at an earlier `now`, finds nothing).
pub fn expired_one_time_tokens_are_consumed_as_none_and_gone(store: &dyn Store) {
    let t = T0;
    let user = make_user(store, "expired-once@example.com");
    let live = one_time_token(&user, TokenPurpose::PasswordReset, t);
    let at_expiry = one_time_token(&user, TokenPurpose::PasswordReset, t);
    let past = one_time_token(&user, TokenPurpose::MagicLink, t);
    for token in [&live, &at_expiry, &past] {
        store.create_one_time_token(token).expect("create");
    }
    let expiry = live.expires_at;
    assert_eq!(consume(store, &live, expiry - 1), Some(record_of(&live)));
    assert_eq!(
        consume(store, &at_expiry, expiry),
        None,
        "expired at expires_at"
    );
    assert_eq!(consume(store, &at_expiry, t), None, "and gone");
    assert_eq!(consume(store, &past, expiry + 1000), None);
    assert_eq!(consume(store, &past, t), None, "and gone");
    assert_eq!(
        store.purge_one_time_tokens(i64::MAX, 100).expect("purge"),
        0
    );
}

/// `replace_others` deletes the user's other tokens of the same purpose in the same write,
/// so only the newest works; tokens of other purposes, and other users', stay. Without it
/// every token of the purpose works.
pub fn replacing_one_time_tokens_keeps_only_the_newest(store: &dyn Store) {
    let t = T0;
    let user = make_user(store, "replace@example.com");
    let other_user = make_user(store, "replace-other@example.com");
    let old: Vec<_> = (0..3)
        .map(|i| one_time_token(&user, TokenPurpose::PasswordReset, t + i))
        .collect();
    for token in &old {
        store.create_one_time_token(token).expect("create");
    }
    let verify = one_time_token(&user, TokenPurpose::VerifyEmail, t);
    store.create_one_time_token(&verify).expect("create");
    let theirs = one_time_token(&other_user, TokenPurpose::PasswordReset, t);
    store.create_one_time_token(&theirs).expect("create");

    let mut newest = one_time_token(&user, TokenPurpose::PasswordReset, t + 10);
    newest.replace_others = true;
    store.create_one_time_token(&newest).expect("replace");
    for token in &old {
        assert_eq!(consume(store, token, t + 11), None, "replaced");
    }
    assert_eq!(consume(store, &newest, t + 11), Some(record_of(&newest)));
    assert_eq!(consume(store, &verify, t + 11), Some(record_of(&verify)));
    assert_eq!(consume(store, &theirs, t + 11), Some(record_of(&theirs)));

    // Replacing when there is nothing to replace just stores the token.
    let mut alone = one_time_token(&user, TokenPurpose::MagicLink, t + 20);
    alone.replace_others = true;
    store.create_one_time_token(&alone).expect("create");
    assert_eq!(consume(store, &alone, t + 21), Some(record_of(&alone)));
}

/// Tokens made at once with `replace_others`, for one user and purpose, leave exactly one
/// working: each replacement excludes the others.
pub fn concurrent_replacing_one_time_tokens_leave_one(store: &dyn Store) {
    let t = T0;
    let user = make_user(store, "replace-race@example.com");
    let tokens: Vec<NewOneTimeToken> = (0..THREADS)
        .map(|_| NewOneTimeToken {
            replace_others: true,
            ..one_time_token(&user, TokenPurpose::MagicLink, t)
        })
        .collect();
    let results = race(THREADS, |i| store.create_one_time_token(&tokens[i]));
    assert!(results.iter().all(Result::is_ok), "{results:?}");
    let working = tokens
        .iter()
        .filter(|token| consume(store, token, t + 1).is_some())
        .count();
    assert_eq!(working, 1);
}

/// Of callers consuming one token at once, exactly one gets it.
pub fn concurrent_consumes_of_a_one_time_token_have_one_winner(store: &dyn Store) {
    let t = T0;
    let user = make_user(store, "consume-race@example.com");
    let token = one_time_token(&user, TokenPurpose::PasswordReset, t);
    store.create_one_time_token(&token).expect("create");
    let results = race(THREADS, |_| {
        store.consume_one_time_token(&token.hash, token.purpose, t + 1)
    });
    let won: Vec<_> = results
        .into_iter()
        .filter_map(|r| r.expect("consume"))
        .collect();
    assert_eq!(won, vec![record_of(&token)]);
}

/// `delete_one_time_tokens` deletes every token of the user and purpose and counts them;
/// other purposes and other users' tokens stay.
pub fn one_time_tokens_are_deleted_by_user_and_purpose(store: &dyn Store) {
    let t = T0;
    let user = make_user(store, "delete-once@example.com");
    let other_user = make_user(store, "delete-other@example.com");
    let resets: Vec<_> = (0..3)
        .map(|i| one_time_token(&user, TokenPurpose::PasswordReset, t + i))
        .collect();
    let link = one_time_token(&user, TokenPurpose::MagicLink, t);
    let theirs = one_time_token(&other_user, TokenPurpose::PasswordReset, t);
    for token in resets.iter().chain([&link, &theirs]) {
        store.create_one_time_token(token).expect("create");
    }
    let deleted = store
        .delete_one_time_tokens(user.id, TokenPurpose::PasswordReset)
        .expect("delete");
    assert_eq!(deleted, 3);
    let again = store
        .delete_one_time_tokens(user.id, TokenPurpose::PasswordReset)
        .expect("again");
    assert_eq!(again, 0);
    let unknown = store
        .delete_one_time_tokens(Uuid::new_v4(), TokenPurpose::PasswordReset)
        .expect("unknown user");
    assert_eq!(unknown, 0);
    for token in &resets {
        assert_eq!(consume(store, token, t + 5), None);
    }
    assert_eq!(consume(store, &link, t + 5), Some(record_of(&link)));
    assert_eq!(consume(store, &theirs, t + 5), Some(record_of(&theirs)));
}

/// Deleting a user deletes their one-time tokens, and nobody else's.
pub fn one_time_tokens_go_with_their_user(store: &dyn Store) {
    let t = T0;
    let user = make_user(store, "gone-once@example.com");
    let bystander = make_user(store, "stays-once@example.com");
    let tokens: Vec<_> = TokenPurpose::ALL
        .into_iter()
        .map(|purpose| one_time_token(&user, purpose, t))
        .collect();
    let theirs = one_time_token(&bystander, TokenPurpose::VerifyEmail, t);
    for token in tokens.iter().chain([&theirs]) {
        store.create_one_time_token(token).expect("create");
    }
    assert!(store.delete_user(user.id, None).expect("delete"));
    for token in &tokens {
        assert_eq!(consume(store, token, t + 1), None, "{:?}", token.purpose);
    }
    assert_eq!(consume(store, &theirs, t + 1), Some(record_of(&theirs)));
    assert_eq!(
        store.purge_one_time_tokens(i64::MAX, 100).expect("purge"),
        0,
        "nothing left"
    );
}
