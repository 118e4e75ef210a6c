//! The settings of second factors and passkeys (issue 15).

use auth_core::config::{MfaSettings, WebauthnSettings};

/// `serve`'s second-factor and passkey flags.
#[derive(Debug, Clone, clap::Args)]
pub struct MfaArgs {
    /// The WebAuthn relying-party id: the domain passkeys are bound to (e.g. `example.com`;
    /// never an IP address). Without it the passkey routes answer 404. Needs
    /// `--webauthn-rp-origin`.
    #[arg(
        long,
        env = "AUTH_WEBAUTHN_RP_ID",
        hide_env_values = true,
        requires = "webauthn_rp_origin"
    )]
    pub webauthn_rp_id: Option<String>,
    /// The exact origins whose pages may register and use passkeys, comma-separated
    /// (`https://app.example.com,https://example.com`); each on the RP id or a subdomain of
    /// it, `https` (or `http://localhost` for development).
    #[arg(
        long,
        env = "AUTH_WEBAUTHN_RP_ORIGIN",
        hide_env_values = true,
        value_delimiter = ',',
        requires = "webauthn_rp_id"
    )]
    pub webauthn_rp_origin: Vec<String>,
    /// The issuer authenticator apps show beside a TOTP account (default: `--issuer`).
    #[arg(long, env = "AUTH_TOTP_ISSUER", hide_env_values = true)]
    pub totp_issuer: Option<String>,
    /// Let accounts with a second factor log in with the password alone through the seed
    /// profiles (`envelope`, `personal-token`, `rbac`, `jwt-user`), which have no second
    /// step. Default off: such a login is refused with the profile's 403, "Multi-factor
    /// authentication required". A deliberate downgrade: `--mfa-seed-password-only true`.
    #[arg(
        long,
        env = "AUTH_MFA_SEED_PASSWORD_ONLY",
        hide_env_values = true,
        default_value_t = false,
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL",
        value_parser = clap::builder::BoolishValueParser::new()
    )]
    pub mfa_seed_password_only: bool,
}

impl MfaArgs {
    /// The core's settings; a bad relying party is refused here, before anything starts,
    /// with what is wrong.
    pub fn settings(&self, issuer: &str) -> anyhow::Result<MfaSettings> {
        let webauthn = match &self.webauthn_rp_id {
            Some(rp_id) => {
                auth_core::passkey::RelyingParty::new(rp_id, &self.webauthn_rp_origin, issuer)
                    .map_err(|why| {
                        anyhow::anyhow!("--webauthn-rp-id / --webauthn-rp-origin: {why}")
                    })?;
                Some(WebauthnSettings {
                    rp_id: rp_id.clone(),
                    origins: self.webauthn_rp_origin.clone(),
                })
            }
            None => None,
        };
        Ok(MfaSettings {
            totp_issuer: self.totp_issuer.clone(),
            seed_profiles_password_only: self.mfa_seed_password_only,
            webauthn,
        })
    }
}
