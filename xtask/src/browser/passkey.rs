//! The passkey flow: WebAuthn in the page against Chromium's virtual authenticator
//! (`WebAuthn.addVirtualAuthenticator` on the tab), from `http://localhost:PORT` (an RP id
//! cannot be an IP address; `http://localhost` is a secure context), against a server started
//! with the RP id `localhost` and that origin ([`server_args`]).
//!
//! The page runs it in phases ([`PHASES`]); between them the test reads and changes what the
//! authenticator holds: one passkey after the first phase; then, the exclude list having
//! stopped a second registration on the authenticator that holds the first passkey, the
//! authenticator is emptied so that the same ceremony makes a second credential, and the first
//! is put back as a non-resident credential (an authenticator keeps one discoverable
//! credential per user of an RP: Chromium's refuses a second), so that it holds both; after
//! the first passkey's deletion, only it is left, discoverable again, for a sign-in with no
//! email that the server must refuse.

use anyhow::Context as _;
use serde_json::{Value, json};

use super::flows::{Step, page_phase};
use super::tab::Tab;

/// The page's functions of the flow, in order.
pub const PHASES: [&str; 5] = [
    "passkeyRegister",
    "passkeyStepUp",
    "passkeySecond",
    "passkeyDelete",
    "passkeyDeleted",
];

/// The RP id the server is started with: the page's host.
const RP_ID: &str = "localhost";

/// The server's WebAuthn settings for a page at `origin` (`http://localhost:PORT`).
pub fn server_args(origin: &str) -> Vec<String> {
    vec![
        "--webauthn-rp-id".to_owned(),
        RP_ID.to_owned(),
        "--webauthn-rp-origin".to_owned(),
        origin.to_owned(),
    ]
}

/// The virtual authenticator: a platform authenticator (CTAP2, internal) with resident keys
/// and user verification that always verifies, and presence simulated, so that every
/// ceremony completes without a person.
fn authenticator_options() -> Value {
    json!({
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": true,
        "hasUserVerification": true,
        "isUserVerified": true,
        "automaticPresenceSimulation": true,
    })
}

/// A virtual authenticator of the tab, by its id.
struct Authenticator {
    id: String,
}

impl Authenticator {
    /// Enables the tab's WebAuthn domain (no UI) and adds the authenticator.
    fn add(tab: &mut Tab<'_>) -> anyhow::Result<Self> {
        tab.call("WebAuthn.enable", json!({ "enableUI": false }))?;
        let added = tab.call(
            "WebAuthn.addVirtualAuthenticator",
            json!({ "options": authenticator_options() }),
        )?;
        let id = added["authenticatorId"]
            .as_str()
            .with_context(|| format!("WebAuthn.addVirtualAuthenticator answered {added}"))?;
        Ok(Self { id: id.to_owned() })
    }

    /// The credentials it holds, as `WebAuthn.getCredentials` gives them (with their private
    /// keys, so that one can be put back with [`Authenticator::add_credential`]).
    fn credentials(&self, tab: &mut Tab<'_>) -> anyhow::Result<Vec<Value>> {
        let answer = tab.call(
            "WebAuthn.getCredentials",
            json!({ "authenticatorId": self.id }),
        )?;
        answer["credentials"]
            .as_array()
            .cloned()
            .with_context(|| format!("WebAuthn.getCredentials answered {answer}"))
    }

    fn clear(&self, tab: &mut Tab<'_>) -> anyhow::Result<()> {
        tab.call(
            "WebAuthn.clearCredentials",
            json!({ "authenticatorId": self.id }),
        )?;
        Ok(())
    }

    fn add_credential(&self, tab: &mut Tab<'_>, credential: &Value) -> anyhow::Result<()> {
        tab.call(
            "WebAuthn.addCredential",
            json!({ "authenticatorId": self.id, "credential": credential }),
        )?;
        Ok(())
    }
}

/// The passkey flow on the page at `origin` (`http://localhost:PORT`) against `api`.
pub fn flow(tab: &mut Tab<'_>, origin: &str, api: &str) -> Vec<Step> {
    let mut steps = Vec::new();
    let _ = phases(tab, origin, api, &mut steps);
    steps
}

/// The phases and the authenticator's changes between them; `None` where the flow stopped.
fn phases(tab: &mut Tab<'_>, origin: &str, api: &str, steps: &mut Vec<Step>) -> Option<()> {
    let [register, step_up, second, delete, deleted] = PHASES;
    let ready = tab
        .navigate(&format!("{origin}/"))
        .and_then(|()| Authenticator::add(tab));
    let authenticator = held(
        steps,
        "the page on localhost with a virtual authenticator",
        "the page loaded and WebAuthn.addVirtualAuthenticator answered an id",
        ready,
    )?;
    page_phase(tab, None, register, api, steps)?;

    let credentials = authenticator.credentials(tab);
    let credentials = held(
        steps,
        "the authenticator holds the passkey",
        "WebAuthn.getCredentials answers",
        credentials,
    )?;
    steps.push(holds(
        "the authenticator holds one discoverable passkey for localhost",
        &credentials,
        1,
        1,
    ));
    page_phase(tab, None, step_up, "", steps)?;

    // The step-up used the first passkey: its counter is the one to put back.
    let first = authenticator.credentials(tab).and_then(|mut credentials| {
        let first = credentials
            .pop()
            .context("the authenticator holds nothing")?;
        authenticator.clear(tab)?;
        Ok(first)
    });
    let first = held(
        steps,
        "the authenticator emptied for the second passkey",
        "WebAuthn.getCredentials then WebAuthn.clearCredentials answer",
        first,
    )?;
    page_phase(tab, None, second, "", steps)?;

    let both = authenticator
        .add_credential(tab, &resident(&first, false))
        .and_then(|()| authenticator.credentials(tab));
    let both = held(
        steps,
        "the first passkey put back",
        "WebAuthn.addCredential then WebAuthn.getCredentials answer",
        both,
    )?;
    steps.push(holds(
        "the authenticator holds both passkeys (the first not discoverable)",
        &both,
        2,
        1,
    ));
    page_phase(tab, None, delete, "", steps)?;

    // Only the deleted passkey left, discoverable again (with its counter as it is now), so
    // that a sign-in with no email must use it.
    let first_id = first["credentialId"].clone();
    let left = authenticator.credentials(tab).and_then(|now| {
        let deleted = now
            .iter()
            .find(|c| c["credentialId"] == first_id)
            .cloned()
            .context("the authenticator no longer holds the first passkey")?;
        // As first held, with its user handle (a non-resident credential has none), and the
        // counter it has reached.
        let mut restored = resident(&first, true);
        restored["signCount"] = deleted["signCount"].clone();
        authenticator.clear(tab)?;
        authenticator.add_credential(tab, &restored)?;
        authenticator.credentials(tab)
    });
    let left = held(
        steps,
        "the authenticator left with the deleted passkey",
        "WebAuthn.getCredentials, clearCredentials, addCredential answer",
        left,
    )?;
    steps.push(holds(
        "the authenticator holds only the deleted passkey",
        &left,
        1,
        1,
    ));
    page_phase(tab, None, deleted, "", steps)?;
    Some(())
}

/// The value of a DevTools exchange, or a failed step (and `None`) when it failed.
fn held<T>(
    steps: &mut Vec<Step>,
    name: &str,
    expected: &str,
    result: anyhow::Result<T>,
) -> Option<T> {
    match result {
        Ok(value) => Some(value),
        Err(err) => {
            steps.push(Step::error(name, expected, &err));
            None
        }
    }
}

/// `credential` (as `WebAuthn.getCredentials` gives it) as a resident credential or not.
fn resident(credential: &Value, resident: bool) -> Value {
    let mut credential = credential.clone();
    credential["isResidentCredential"] = Value::from(resident);
    credential
}

/// A step: the authenticator holds `count` credentials for [`RP_ID`], `resident` of them
/// discoverable.
fn holds(name: &str, credentials: &[Value], count: usize, resident: usize) -> Step {
    let ours = credentials.iter().filter(|c| c["rpId"] == RP_ID).count();
    let discoverable = credentials
        .iter()
        .filter(|c| c["isResidentCredential"] == true && c["rpId"] == RP_ID)
        .count();
    Step::new(
        name,
        credentials.len() == count && ours == count && discoverable == resident,
        format!("{count} credential(s) for rpId {RP_ID}, {resident} of them resident"),
        format!(
            "{} credential(s), {ours} for {RP_ID}, {discoverable} of them resident",
            credentials.len()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_authenticator_is_a_platform_passkey_authenticator() {
        let options = authenticator_options();
        assert_eq!(options["protocol"], "ctap2");
        assert_eq!(options["transport"], "internal");
        for flag in [
            "hasResidentKey",
            "hasUserVerification",
            "isUserVerified",
            "automaticPresenceSimulation",
        ] {
            assert_eq!(options[flag], true, "{flag}");
        }
    }

    #[test]
    fn the_server_gets_the_rp_id_and_the_page_origin() {
        assert_eq!(
            server_args("http://localhost:4711"),
            [
                "--webauthn-rp-id",
                "localhost",
                "--webauthn-rp-origin",
                "http://localhost:4711"
            ]
        );
    }

    #[test]
    fn holds_counts_resident_credentials_for_localhost() {
        let resident =
            json!({ "credentialId": "a", "isResidentCredential": true, "rpId": "localhost" });
        let other =
            json!({ "credentialId": "b", "isResidentCredential": false, "rpId": "localhost" });
        assert!(holds("x", std::slice::from_ref(&resident), 1, 1).ok);
        assert!(holds("x", &[resident.clone(), other.clone()], 2, 1).ok);
        assert!(!holds("x", &[resident.clone(), other], 2, 2).ok);
        assert!(!holds("x", &[], 1, 1).ok);
        let elsewhere = json!({ "isResidentCredential": true, "rpId": "example.com" });
        assert!(!holds("x", &[elsewhere], 1, 1).ok);
        assert_eq!(
            super::resident(&resident, false)["isResidentCredential"],
            false
        );
    }
}
