//! Token parsing: any bytes as an `Authorization` header and as a JWT.
#![no_main]

use std::sync::LazyLock;

use auth_core::clock::SystemClock;
use auth_core::service::bearer_token;
use auth_core::{Config, Signing};
use auth_core::token::TokenSigner;
use libfuzzer_sys::fuzz_target;

static SIGNER: LazyLock<Option<TokenSigner>> = LazyLock::new(|| {
    TokenSigner::new(
        &Config {
            signing: Signing::Hs256 {
                secret: vec![42; 32],
            },
            ..Config::default()
        },
        std::sync::Arc::new(SystemClock::new()),
    )
    .ok()
});

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = bearer_token(Some(text));
    if let Some(signer) = SIGNER.as_ref() {
        // Forged input must never verify (the secret is not in the corpus' reach).
        assert!(signer.verify(text).is_err());
    }
});
