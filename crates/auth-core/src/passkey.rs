//! Passkeys (WebAuthn): a thin wrapper over `webauthn-rs` that knows nothing of the store or
//! the services. Everything crosses it as JSON or strings: the options a page hands to
//! `navigator.credentials.create()` / `.get()`, the credential the page sends back (the JSON of
//! `PublicKeyCredential.toJSON()`), the ceremony state (serialized, so that the database can
//! keep it and any instance can finish the ceremony) and the stored passkey.
//!
//! Options are the *inner* `publicKey` member of webauthn-rs's challenge responses, the
//! dictionary that `PublicKeyCredential.parseCreationOptionsFromJSON` /
//! `parseRequestOptionsFromJSON` take, with `null` members left out. A page calls
//! `navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) })`.
//!
//! Credential ids are base64url without padding. User verification is required in every
//! ceremony (webauthn-rs's passkey API), the sign counter is checked and its new value handed
//! back to be stored ([`Used::data`]).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid, Webauthn, WebauthnBuilder,
};

/// A WebAuthn relying party: our RP id and the origins pages may use.
pub struct RelyingParty {
    webauthn: Webauthn,
    rp_id: String,
    origins: Vec<String>,
}

impl std::fmt::Debug for RelyingParty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelyingParty")
            .field("rp_id", &self.rp_id)
            .field("origins", &self.origins)
            .finish_non_exhaustive()
    }
}

/// A passkey that [`RelyingParty::finish_registration`] accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// Its credential id, base64url without padding. The caller must refuse an id that is
    /// already registered (to any account).
    pub credential_id: String,
    /// The passkey (public key, counter, flags) serialized, to store as it is.
    pub data: String,
}

/// The passkey an assertion was verified with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Used {
    /// Its credential id, base64url without padding.
    pub credential_id: String,
    /// The passkey's new serialized data, when the counter or the backup flags changed: store
    /// it in place of the old. `None` when nothing changed.
    pub data: Option<String>,
}

/// What an assertion claims, read without verifying anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asserted {
    /// The credential id it names, base64url without padding.
    pub credential_id: String,
    /// The user handle the authenticator returned (discoverable credentials return one: the
    /// user's UUID bytes, see [`RelyingParty::start_registration`]).
    pub user_handle: Option<Vec<u8>>,
}

impl Asserted {
    /// The user handle as the user id it was made from, when it is 16 bytes.
    pub fn user_id(&self) -> Option<Uuid> {
        self.user_handle
            .as_deref()
            .and_then(|bytes| Uuid::from_slice(bytes).ok())
    }
}

/// Why a ceremony could not go on.
#[derive(Debug, thiserror::Error)]
pub enum PasskeyError {
    /// The ceremony failed: bad signature, origin, challenge, RP id, counter regression, user
    /// not verified, a credential not among those allowed... The message is for logs (it holds
    /// no secret).
    #[error("passkey ceremony rejected: {0}")]
    Rejected(String),
    /// The credential is not the JSON of a `PublicKeyCredential`.
    #[error("not a WebAuthn credential")]
    Malformed,
    /// Server-side data does not deserialize: the ceremony state, a stored passkey or a stored
    /// credential id.
    #[error("passkey state or stored passkey does not deserialize")]
    State,
}

impl RelyingParty {
    /// A relying party for `rp_id` (a domain, never an IP address) that accepts ceremonies from
    /// `origins` (each `scheme://host[:port]`, the host `rp_id` or a subdomain of it; `https`,
    /// or `http` for `localhost`). `rp_name` may be shown to the user.
    pub fn new(rp_id: &str, origins: &[String], rp_name: &str) -> Result<Self, String> {
        let rp_id = rp_id.trim().to_ascii_lowercase();
        if rp_id.is_empty() {
            return Err("the WebAuthn RP id is empty".to_owned());
        }
        if rp_id.parse::<std::net::IpAddr>().is_ok() || rp_id.starts_with('[') {
            return Err(format!(
                "the WebAuthn RP id `{rp_id}` is an IP address; it must be a domain"
            ));
        }
        let mut urls = Vec::with_capacity(origins.len());
        for origin in origins {
            urls.push(parse_origin(&rp_id, origin)?);
        }
        let Some((first, rest)) = urls.split_first() else {
            return Err("no WebAuthn origin given".to_owned());
        };
        let mut builder = WebauthnBuilder::new(&rp_id, first)
            .map_err(|e| format!("WebAuthn RP id `{rp_id}` and origin `{first}`: {e}"))?
            .rp_name(rp_name);
        for url in rest {
            builder = builder.append_allowed_origin(url);
        }
        let webauthn = builder
            .build()
            .map_err(|e| format!("WebAuthn configuration: {e}"))?;
        let origins = urls
            .iter()
            .map(|u| u.origin().ascii_serialization())
            .collect();
        Ok(Self {
            webauthn,
            rp_id,
            origins,
        })
    }

    /// The RP id.
    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    /// The accepted origins, serialized (`https://example.com`, no trailing slash).
    pub fn origins(&self) -> &[String] {
        &self.origins
    }

    /// Starts registering a passkey for the user `user_id` (its bytes become the credential's
    /// user handle), excluding the credentials the user already has (ids as stored, base64url).
    /// Returns the creation options (the `publicKey` dictionary, see the module doc) and the
    /// ceremony state serialized.
    ///
    /// The options ask for a discoverable credential (`residentKey: "required"`), so that the
    /// passkey can sign in without an email ([`Self::start_discoverable`]), and for user
    /// verification.
    pub fn start_registration(
        &self,
        user_id: Uuid,
        user_name: &str,
        display_name: &str,
        exclude_credential_ids: &[String],
    ) -> Result<(Value, String), PasskeyError> {
        let exclude = exclude_credential_ids
            .iter()
            .map(|id| decode_b64(id).ok_or(PasskeyError::State))
            .collect::<Result<Vec<_>, _>>()?;
        let exclude = (!exclude.is_empty()).then_some(exclude);
        let (challenge, state) = self
            .webauthn
            .start_passkey_registration(user_id, user_name, display_name, exclude)
            .map_err(rejected)?;
        let mut options = to_json(&challenge.public_key)?;
        // webauthn-rs does not check residency when finishing, so asking for it is safe.
        if let Some(selection) = options
            .get_mut("authenticatorSelection")
            .and_then(Value::as_object_mut)
        {
            selection.insert("residentKey".to_owned(), Value::from("required"));
            selection.insert("requireResidentKey".to_owned(), Value::from(true));
        }
        Ok((strip_nulls(options), to_string(&state)?))
    }

    /// Checks the browser's credential (the JSON of `PublicKeyCredential.toJSON()` after
    /// `navigator.credentials.create()`) against the state from [`Self::start_registration`].
    pub fn finish_registration(
        &self,
        state: &str,
        credential: &Value,
    ) -> Result<Registered, PasskeyError> {
        let state: PasskeyRegistration =
            serde_json::from_str(state).map_err(|_| PasskeyError::State)?;
        let credential: RegisterPublicKeyCredential = parse_credential(credential)?;
        let passkey = self
            .webauthn
            .finish_passkey_registration(&credential, &state)
            .map_err(rejected)?;
        Ok(Registered {
            credential_id: URL_SAFE_NO_PAD.encode(passkey.cred_id()),
            data: to_string(&passkey)?,
        })
    }

    /// Request options that allow a known user's passkeys (each a [`Registered::data`] or a
    /// later [`Used::data`]), and the ceremony state. At least one passkey is needed.
    pub fn start_authentication(
        &self,
        passkeys: &[String],
    ) -> Result<(Value, String), PasskeyError> {
        let passkeys = parse_passkeys(passkeys)?;
        if passkeys.is_empty() {
            return Err(PasskeyError::Rejected("the user has no passkey".to_owned()));
        }
        let (challenge, state) = self
            .webauthn
            .start_passkey_authentication(&passkeys)
            .map_err(rejected)?;
        Ok((
            strip_nulls(to_json(&challenge.public_key)?),
            to_string(&state)?,
        ))
    }

    /// Request options with no allow-list (discoverable credentials: the authenticator offers
    /// the passkeys it holds for the RP id), and the ceremony state. The options are for a
    /// modal `navigator.credentials.get({publicKey})`; a page that wants autofill adds
    /// `mediation: "conditional"` itself.
    pub fn start_discoverable(&self) -> Result<(Value, String), PasskeyError> {
        let (challenge, state) = self
            .webauthn
            .start_discoverable_authentication()
            .map_err(rejected)?;
        Ok((
            strip_nulls(to_json(&challenge.public_key)?),
            to_string(&state)?,
        ))
    }

    /// The credential id an assertion names (base64url, no padding), without verifying
    /// anything, to look the passkey up; plus the user handle when present.
    pub fn asserted_credential(credential: &Value) -> Result<Asserted, PasskeyError> {
        let credential: PublicKeyCredential = parse_credential(credential)?;
        Ok(Asserted {
            credential_id: URL_SAFE_NO_PAD.encode(&credential.raw_id),
            user_handle: credential.response.user_handle,
        })
    }

    /// Verifies an assertion for a state from [`Self::start_authentication`]; `passkeys` are the
    /// user's stored passkeys now (a passkey deleted since the start no longer counts).
    pub fn finish_authentication(
        &self,
        state: &str,
        credential: &Value,
        passkeys: &[String],
    ) -> Result<Used, PasskeyError> {
        let state: PasskeyAuthentication =
            serde_json::from_str(state).map_err(|_| PasskeyError::State)?;
        let credential: PublicKeyCredential = parse_credential(credential)?;
        let mut passkeys = parse_passkeys(passkeys)?;
        let Some(passkey) = passkeys
            .iter_mut()
            .find(|p| p.cred_id().as_slice() == credential.raw_id.as_slice())
        else {
            return Err(PasskeyError::Rejected(
                "the credential is not one of the user's passkeys".to_owned(),
            ));
        };
        let result = self
            .webauthn
            .finish_passkey_authentication(&credential, &state)
            .map_err(rejected)?;
        used(passkey, &result)
    }

    /// Verifies an assertion for a state from [`Self::start_discoverable`] against the one
    /// stored passkey it named ([`Self::asserted_credential`]). The assertion must carry a user
    /// handle; the caller must check that [`Asserted::user_id`] is the passkey's owner.
    pub fn finish_discoverable(
        &self,
        state: &str,
        credential: &Value,
        passkey: &str,
    ) -> Result<Used, PasskeyError> {
        let state: DiscoverableAuthentication =
            serde_json::from_str(state).map_err(|_| PasskeyError::State)?;
        let credential: PublicKeyCredential = parse_credential(credential)?;
        let mut passkey: Passkey =
            serde_json::from_str(passkey).map_err(|_| PasskeyError::State)?;
        self.webauthn
            .identify_discoverable_authentication(&credential)
            .map_err(rejected)?;
        if passkey.cred_id().as_slice() != credential.raw_id.as_slice() {
            return Err(PasskeyError::Rejected(
                "the credential is not the passkey given".to_owned(),
            ));
        }
        let result = self
            .webauthn
            .finish_discoverable_authentication_v2(&credential, state, &passkey)
            .map_err(rejected)?;
        used(&mut passkey, &result)
    }
}

/// One origin, checked against the RP id.
fn parse_origin(rp_id: &str, origin: &str) -> Result<Url, String> {
    let url = Url::parse(origin.trim())
        .map_err(|e| format!("WebAuthn origin `{origin}` is not a URL: {e}"))?;
    if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "WebAuthn origin `{origin}` must be scheme://host[:port], without path or query"
        ));
    }
    let Some(host) = url.domain().map(str::to_ascii_lowercase) else {
        return Err(format!(
            "WebAuthn origin `{origin}` has no domain (an IP address cannot be an RP id)"
        ));
    };
    match url.scheme() {
        "https" => {}
        "http" if host == "localhost" || host.ends_with(".localhost") => {}
        _ => {
            return Err(format!(
                "WebAuthn origin `{origin}` must be https (http only for localhost)"
            ));
        }
    }
    if host != rp_id && !host.ends_with(&format!(".{rp_id}")) {
        return Err(format!(
            "WebAuthn origin `{origin}` is not under the RP id `{rp_id}` (its host must be \
             `{rp_id}` or a subdomain of it)"
        ));
    }
    Ok(url)
}

fn rejected(error: webauthn_rs::prelude::WebauthnError) -> PasskeyError {
    PasskeyError::Rejected(error.to_string())
}

/// The passkey after a verified assertion. webauthn-rs checks the sign counter against the
/// passkeys as they were when the ceremony started (its state keeps a copy); this checks it
/// again against the stored passkey now, so that of two ceremonies started before either
/// finished, an assertion whose counter another has since passed is refused too.
fn used(
    passkey: &mut Passkey,
    result: &webauthn_rs::prelude::AuthenticationResult,
) -> Result<Used, PasskeyError> {
    let credential_id = URL_SAFE_NO_PAD.encode(result.cred_id());
    let stored = stored_counter(passkey)?;
    if (result.counter() > 0 || stored > 0) && result.counter() <= stored {
        return Err(PasskeyError::Rejected(format!(
            "sign counter {} not above the stored {stored}: possibly a cloned authenticator",
            result.counter()
        )));
    }
    let data = match passkey.update_credential(result) {
        Some(true) => Some(to_string(&*passkey)?),
        Some(false) => None,
        None => {
            return Err(PasskeyError::Rejected(
                "the verified credential is not the passkey given".to_owned(),
            ));
        }
    };
    Ok(Used {
        credential_id,
        data,
    })
}

/// A passkey's stored sign counter (webauthn-rs keeps it private; its serialization shows it).
fn stored_counter(passkey: &Passkey) -> Result<u32, PasskeyError> {
    let value = to_json(passkey)?;
    value["cred"]["counter"]
        .as_u64()
        .and_then(|c| u32::try_from(c).ok())
        .ok_or(PasskeyError::State)
}

fn parse_passkeys(passkeys: &[String]) -> Result<Vec<Passkey>, PasskeyError> {
    passkeys
        .iter()
        .map(|p| serde_json::from_str(p).map_err(|_| PasskeyError::State))
        .collect()
}

fn to_json(value: &impl serde::Serialize) -> Result<Value, PasskeyError> {
    serde_json::to_value(value).map_err(|_| PasskeyError::State)
}

fn to_string(value: &impl serde::Serialize) -> Result<String, PasskeyError> {
    serde_json::to_string(value).map_err(|_| PasskeyError::State)
}

/// Decodes base64url with or without padding, and also the standard alphabet.
fn decode_b64(text: &str) -> Option<Vec<u8>> {
    let normalized: String = text
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            '+' => '-',
            '/' => '_',
            c => c,
        })
        .collect();
    URL_SAFE_NO_PAD.decode(normalized).ok()
}

/// The members of a credential's JSON that are binary.
const BINARY_MEMBERS: &[&str] = &[
    "clientDataJSON",
    "attestationObject",
    "authenticatorData",
    "signature",
    "userHandle",
];

/// A credential's JSON as webauthn-rs reads it: binary members as base64url without padding
/// (whatever base64 the client used), `rawId` from `id` when absent, a null `userHandle` left out.
/// Members webauthn-rs does not know (`authenticatorAttachment`, `publicKey`, ...) are ignored by
/// its types.
fn parse_credential<T: serde::de::DeserializeOwned>(credential: &Value) -> Result<T, PasskeyError> {
    let mut credential = credential.clone();
    let object = credential.as_object_mut().ok_or(PasskeyError::Malformed)?;
    if !object.contains_key("rawId")
        && let Some(id) = object.get("id").cloned()
    {
        object.insert("rawId".to_owned(), id);
    }
    if let Some(raw_id) = object.get_mut("rawId") {
        normalize_b64(raw_id)?;
    }
    if let Some(response) = object.get_mut("response").and_then(Value::as_object_mut) {
        if response.get("userHandle").is_some_and(Value::is_null) {
            response.remove("userHandle");
        }
        for name in BINARY_MEMBERS {
            if let Some(value) = response.get_mut(*name) {
                normalize_b64(value)?;
            }
        }
    }
    serde_json::from_value(credential).map_err(|_| PasskeyError::Malformed)
}

fn normalize_b64(value: &mut Value) -> Result<(), PasskeyError> {
    let text = value.as_str().ok_or(PasskeyError::Malformed)?;
    let bytes = decode_b64(text).ok_or(PasskeyError::Malformed)?;
    *value = Value::from(URL_SAFE_NO_PAD.encode(bytes));
    Ok(())
}

/// The value without `null` members: a WebIDL dictionary refuses `null` for a member that is
/// not nullable (`hints`, `attestationFormats`, ...), where an absent member is fine.
fn strip_nulls(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_nulls).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests;
