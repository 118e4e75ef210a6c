use super::*;
use serde_json::json;

fn rp() -> RelyingParty {
    RelyingParty::new(
        "example.com",
        &[
            "https://auth.example.com".to_owned(),
            "https://example.com:8443".to_owned(),
        ],
        "Example",
    )
    .expect("valid relying party")
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A registration credential with the shape of Chrome's `toJSON()`, whose contents are wrong.
fn bogus_registration(challenge: &str) -> Value {
    let client_data = json!({
        "type": "webauthn.create",
        "challenge": challenge,
        "origin": "https://auth.example.com",
        "crossOrigin": false,
    });
    json!({
        "id": "AAECAw",
        "rawId": "AAECAw",
        "type": "public-key",
        "authenticatorAttachment": "platform",
        "clientExtensionResults": {"credProps": {"rk": true}},
        "response": {
            "clientDataJSON": b64(client_data.to_string().as_bytes()),
            "attestationObject": b64(b"not cbor"),
            "authenticatorData": "AAAA",
            "publicKey": "AAAA",
            "publicKeyAlgorithm": -7,
            "transports": ["internal", "hybrid", "something-new"],
        },
    })
}

fn bogus_assertion(user_handle: Option<&[u8]>) -> Value {
    json!({
        "id": "AAECAw",
        "rawId": "AAECAw",
        "type": "public-key",
        "authenticatorAttachment": "platform",
        "clientExtensionResults": {},
        "response": {
            "clientDataJSON": b64(b"{}"),
            "authenticatorData": b64(&[0; 37]),
            "signature": b64(b"sig"),
            "userHandle": user_handle.map(b64),
        },
    })
}

fn has_null(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Object(map) => map.values().any(has_null),
        Value::Array(items) => items.iter().any(has_null),
        _ => false,
    }
}

#[test]
fn new_refuses_what_cannot_be_a_relying_party() {
    let refused = |rp_id: &str, origin: &str| {
        RelyingParty::new(rp_id, &[origin.to_owned()], "x").expect_err(origin)
    };
    assert!(refused("example.com", "not a url").contains("not a URL"));
    assert!(refused("example.com", "https://example.org").contains("not under the RP id"));
    assert!(refused("example.com", "https://badexample.com").contains("not under the RP id"));
    assert!(refused("example.com", "http://example.com").contains("https"));
    assert!(refused("127.0.0.1", "http://127.0.0.1:8080").contains("IP address"));
    assert!(refused("localhost", "http://127.0.0.1:8080").contains("no domain"));
    assert!(refused("example.com", "https://example.com/login").contains("without path"));
    assert!(RelyingParty::new("example.com", &[], "x").is_err());
    // One good origin does not excuse a bad one.
    let mixed = [
        "https://example.com".to_owned(),
        "https://evil.test".to_owned(),
    ];
    assert!(RelyingParty::new("example.com", &mixed, "x").is_err());
}

#[test]
fn new_accepts_localhost_over_http_and_subdomains() {
    let local = RelyingParty::new("localhost", &["http://localhost:5173".to_owned()], "Dev")
        .expect("localhost is a secure context");
    assert_eq!(local.rp_id(), "localhost");
    assert_eq!(local.origins(), ["http://localhost:5173"]);
    let rp = rp();
    assert_eq!(
        rp.origins(),
        ["https://auth.example.com", "https://example.com:8443"]
    );
    assert!(format!("{rp:?}").contains("example.com"));
}

#[test]
fn start_registration_gives_options_for_the_browser_and_a_state() {
    let rp = rp();
    let user = Uuid::new_v4();
    let (options, state) = rp
        .start_registration(user, "ada@example.com", "Ada", &["AAECAw".to_owned()])
        .expect("options");
    assert_eq!(options["rp"]["id"], "example.com");
    assert_eq!(options["rp"]["name"], "Example");
    assert_eq!(options["user"]["id"], b64(user.as_bytes()));
    assert_eq!(options["user"]["name"], "ada@example.com");
    assert_eq!(options["user"]["displayName"], "Ada");
    let challenge = options["challenge"].as_str().expect("challenge string");
    assert!(
        decode_b64(challenge).is_some_and(|c| c.len() >= 16),
        "{challenge}"
    );
    assert_eq!(options["authenticatorSelection"]["residentKey"], "required");
    assert_eq!(
        options["authenticatorSelection"]["userVerification"],
        "required"
    );
    assert_eq!(options["excludeCredentials"][0]["id"], "AAECAw");
    assert!(
        options.get("publicKey").is_none(),
        "the inner member, not the wrapper"
    );
    assert!(!has_null(&options), "{options}");

    // Garbage is refused, never a panic.
    for garbage in [
        json!(null),
        json!("x"),
        json!({}),
        json!({"id": 1}),
        json!([1, 2]),
    ] {
        assert!(
            matches!(
                rp.finish_registration(&state, &garbage),
                Err(PasskeyError::Malformed)
            ),
            "{garbage}"
        );
    }
    let wrong = rp.finish_registration(&state, &bogus_registration(challenge));
    assert!(matches!(wrong, Err(PasskeyError::Rejected(_))), "{wrong:?}");
    let other = rp.finish_registration(&state, &bogus_registration("AAAA"));
    assert!(matches!(other, Err(PasskeyError::Rejected(_))), "{other:?}");
    assert!(matches!(
        rp.finish_registration("{}", &bogus_registration(challenge)),
        Err(PasskeyError::State)
    ));
}

#[test]
fn a_bad_excluded_id_is_a_state_error() {
    let result = rp().start_registration(Uuid::new_v4(), "a", "A", &["not base64!".to_owned()]);
    assert!(matches!(result, Err(PasskeyError::State)));
}

#[test]
fn states_round_trip() {
    let rp = rp();
    let (_, registration) = rp
        .start_registration(Uuid::new_v4(), "a", "A", &[])
        .expect("registration");
    let parsed: PasskeyRegistration = serde_json::from_str(&registration).expect("deserializes");
    assert_eq!(
        serde_json::to_string(&parsed).expect("serializes"),
        registration
    );

    let (options, discoverable) = rp.start_discoverable().expect("discoverable");
    let parsed: DiscoverableAuthentication =
        serde_json::from_str(&discoverable).expect("deserializes");
    assert_eq!(
        serde_json::to_string(&parsed).expect("serializes"),
        discoverable
    );
    assert_eq!(options["rpId"], "example.com");
    assert_eq!(options["userVerification"], "required");
    assert!(options["challenge"].as_str().is_some_and(|c| !c.is_empty()));
    assert!(
        options["allowCredentials"]
            .as_array()
            .is_none_or(Vec::is_empty)
    );
    assert!(options.get("mediation").is_none());
    assert!(!has_null(&options), "{options}");

    // Each start has its own challenge.
    let (again, _) = rp.start_discoverable().expect("discoverable");
    assert_ne!(again["challenge"], options["challenge"]);
}

#[test]
fn finishing_an_assertion_refuses_garbage_without_panicking() {
    let rp = rp();
    let (_, state) = rp.start_discoverable().expect("discoverable");
    assert!(matches!(
        rp.finish_discoverable(&state, &json!({"nope": true}), "{}"),
        Err(PasskeyError::Malformed)
    ));
    assert!(matches!(
        rp.finish_discoverable(&state, &bogus_assertion(None), "not a passkey"),
        Err(PasskeyError::State)
    ));
    assert!(matches!(
        rp.finish_discoverable("garbage", &bogus_assertion(None), "{}"),
        Err(PasskeyError::State)
    ));
    assert!(matches!(
        rp.finish_authentication("garbage", &bogus_assertion(None), &[]),
        Err(PasskeyError::State)
    ));
}

#[test]
fn start_authentication_needs_passkeys_that_deserialize() {
    let rp = rp();
    assert!(matches!(
        rp.start_authentication(&[]),
        Err(PasskeyError::Rejected(_))
    ));
    assert!(matches!(
        rp.start_authentication(&["{\"x\":1}".to_owned()]),
        Err(PasskeyError::State)
    ));
}

#[test]
fn asserted_credential_reads_the_id_and_the_user_handle() {
    let user = Uuid::new_v4();
    let asserted =
        RelyingParty::asserted_credential(&bogus_assertion(Some(user.as_bytes()))).expect("reads");
    assert_eq!(asserted.credential_id, "AAECAw");
    assert_eq!(asserted.user_handle.as_deref(), Some(&user.as_bytes()[..]));
    assert_eq!(asserted.user_id(), Some(user));

    let anonymous = RelyingParty::asserted_credential(&bogus_assertion(None)).expect("reads");
    assert_eq!(anonymous.user_handle, None);
    assert_eq!(anonymous.user_id(), None);

    // Padded or standard base64, and a missing rawId, are read too.
    let mut padded = bogus_assertion(None);
    padded["rawId"] = json!("+/8=");
    assert_eq!(
        RelyingParty::asserted_credential(&padded)
            .expect("reads")
            .credential_id,
        "-_8"
    );
    let mut no_raw = bogus_assertion(None);
    if let Some(object) = no_raw.as_object_mut() {
        object.remove("rawId");
    }
    assert_eq!(
        RelyingParty::asserted_credential(&no_raw)
            .expect("reads")
            .credential_id,
        "AAECAw"
    );

    for garbage in [json!(null), json!({}), json!({"id": "AA", "rawId": "%%"})] {
        assert!(
            matches!(
                RelyingParty::asserted_credential(&garbage),
                Err(PasskeyError::Malformed)
            ),
            "{garbage}"
        );
    }
}

/// A real ceremony: what Chromium 156's virtual authenticator (CTAP2, internal, resident
/// key, user verification) sent from `http://localhost:PORT`, with the states and passkeys
/// this module made for it. Recorded once from the browser test's passkey flow, run against
/// a stand-in server over this module that logged them; it only needs recording again if
/// webauthn-rs changes its state or passkey format.
fn chrome() -> (RelyingParty, Value) {
    let recorded: Value =
        serde_json::from_str(include_str!("chrome.json")).expect("the recording is JSON");
    let origin = recorded["origin"].as_str().expect("origin").to_owned();
    let rp = RelyingParty::new("localhost", &[origin], "test").expect("relying party");
    (rp, recorded)
}

fn text(value: &Value) -> &str {
    value.as_str().expect("a string")
}

#[test]
fn a_real_registration_is_accepted_and_gives_the_credential_id() {
    let (rp, recorded) = chrome();
    let registration = &recorded["registration"];
    let registered = rp
        .finish_registration(text(&registration["state"]), &registration["credential"])
        .expect("Chromium's credential is accepted");
    assert_eq!(
        registered.credential_id,
        text(&registration["credential"]["rawId"])
    );
    assert_eq!(
        registered.credential_id,
        text(&recorded["registered"]["credential_id"])
    );
    assert_eq!(registered.data, text(&recorded["registered"]["data"]));

    // The same credential for another origin is refused.
    let elsewhere = RelyingParty::new("localhost", &["http://localhost:1".to_owned()], "x")
        .expect("relying party");
    let refused =
        elsewhere.finish_registration(text(&registration["state"]), &registration["credential"]);
    assert!(
        matches!(refused, Err(PasskeyError::Rejected(_))),
        "{refused:?}"
    );
}

#[test]
fn a_real_discoverable_sign_in_is_verified_and_its_counter_checked() {
    let (rp, recorded) = chrome();
    let sign_in = &recorded["discoverable"];
    let (state, credential) = (text(&sign_in["state"]), &sign_in["credential"]);
    let asserted = RelyingParty::asserted_credential(credential).expect("reads");
    assert_eq!(
        asserted.credential_id,
        text(&recorded["registered"]["credential_id"])
    );
    assert_eq!(
        asserted.user_id().map(|id| id.to_string()).as_deref(),
        recorded["user_id"].as_str()
    );
    let used = rp
        .finish_discoverable(state, credential, text(&sign_in["passkey"]))
        .expect("verified");
    assert_eq!(used.credential_id, asserted.credential_id);
    let data = used.data.expect("the counter moved");
    let counter = |data: &str| -> Value {
        serde_json::from_str::<Value>(data).expect("passkey JSON")["cred"]["counter"].clone()
    };
    assert!(counter(&data).as_u64() > counter(text(&sign_in["passkey"])).as_u64());

    // Against the passkey as a later sign-in left it, the same assertion is a replay.
    let later = text(&recorded["authentication"]["passkey"]);
    let replay = rp.finish_discoverable(state, credential, later);
    assert!(
        matches!(&replay, Err(PasskeyError::Rejected(_))),
        "{replay:?}"
    );
    // Another passkey than the one the assertion names.
    let other = text(&sign_in["passkey"]).replace(&asserted.credential_id, "AAECAw");
    assert!(matches!(
        rp.finish_discoverable(state, credential, &other),
        Err(PasskeyError::Rejected(_))
    ));
    // A signature that does not verify.
    let mut forged = credential.clone();
    forged["response"]["signature"] = Value::from(b64(&[0x30, 0x06, 2, 1, 1, 2, 1, 1]));
    assert!(matches!(
        rp.finish_discoverable(state, &forged, text(&sign_in["passkey"])),
        Err(PasskeyError::Rejected(_))
    ));
}

#[test]
fn a_real_sign_in_with_an_allow_list_is_verified() {
    let (rp, recorded) = chrome();
    let sign_in = &recorded["authentication"];
    let (state, credential) = (text(&sign_in["state"]), &sign_in["credential"]);
    let passkeys = [text(&sign_in["passkey"]).to_owned()];
    let used = rp
        .finish_authentication(state, credential, &passkeys)
        .expect("verified");
    assert_eq!(
        used.credential_id,
        text(&recorded["registered"]["credential_id"])
    );
    let after = used.data.expect("the counter moved");

    // The state keeps the passkeys as they were at the start; the same assertion finished
    // again against the stored passkey it has since moved on is a replay all the same.
    let replay = rp.finish_authentication(state, credential, &[after]);
    assert!(
        matches!(&replay, Err(PasskeyError::Rejected(m)) if m.contains("counter")),
        "{replay:?}"
    );

    // A passkey the user no longer has does not count, even if the state allowed it.
    assert!(matches!(
        rp.finish_authentication(state, credential, &[]),
        Err(PasskeyError::Rejected(_))
    ));
    // Another ceremony's assertion (its challenge) is refused.
    let other = &recorded["discoverable"]["credential"];
    assert!(matches!(
        rp.finish_authentication(state, other, &passkeys),
        Err(PasskeyError::Rejected(_))
    ));
}
