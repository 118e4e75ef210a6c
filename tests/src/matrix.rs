//! The server configurations the workspace's own launchers check every adapter and database
//! with (`cargo xtask conformance` and `crates/auth-server/tests/conformance.rs`), and the
//! skips expected there: defined once, so the two cannot drift apart.
//!
//! Every server of the matrix applies [`MATRIX_LIMITS`], uses [`SUITE_REUSE_INTERVAL`],
//! trusts 127.0.0.1 as a proxy (so each case comes from a client IP of its own) and gives
//! the suite hooks to manage users, an admin user and, when signing with HS256, its secret.
//! Under those conditions a skip is expected only if its group's profile is not mounted or
//! it is listed in [`EXPECTED_SKIPS`]; [`unexpected_skips`] finds the others.
//!
//! [`SUITE_REUSE_INTERVAL`]: crate::SUITE_REUSE_INTERVAL

use std::fmt;

use crate::profile::Profile;
use crate::{Limits, Mount, Outcome, Report};

/// How a server under test signs access tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum Signing {
    /// HS256 with a random secret the suite is given.
    Hs256,
    /// EdDSA with keys the server keeps in its database; the suite knows no secret.
    Eddsa,
}

impl Signing {
    /// The name used on the server's command line (`--signing-algorithm`).
    pub const fn name(self) -> &'static str {
        match self {
            Signing::Hs256 => "hs256",
            Signing::Eddsa => "eddsa",
        }
    }
}

/// One server configuration: the profiles it mounts and how it signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerConfig<'a> {
    /// The `--profiles` list (`name` or `name=/prefix`, comma-separated).
    pub profiles: &'a str,
    /// How access tokens are signed.
    pub signing: Signing,
}

impl ServerConfig<'_> {
    /// The column label in reports: the profile set, with ` (eddsa)` when signing with
    /// EdDSA.
    pub fn label(&self) -> String {
        match self.signing {
            Signing::Hs256 => self.profiles.to_owned(),
            Signing::Eddsa => format!("{} (eddsa)", self.profiles),
        }
    }
}

impl fmt::Display for ServerConfig<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

/// The configurations every adapter is checked with on every database: the default profile
/// set signing with HS256, `personal-token` and `jwt-user` alone (they claim `native`'s
/// `POST /api/v1/auth/login`, so they cannot be mounted beside it), and the default set again
/// signing with EdDSA.
pub const MATRIX: &[ServerConfig<'static>] = &[
    ServerConfig {
        profiles: "native,envelope,rbac",
        signing: Signing::Hs256,
    },
    ServerConfig {
        profiles: "personal-token",
        signing: Signing::Hs256,
    },
    ServerConfig {
        profiles: "jwt-user",
        signing: Signing::Hs256,
    },
    ServerConfig {
        profiles: "native,envelope,rbac",
        signing: Signing::Eddsa,
    },
];

/// The proxies every server of the matrix trusts: a range holding the suite's own address
/// (127.0.0.1) and [`ANOTHER_PROXY`].
pub const TRUSTED_PROXIES: &str = "127.0.0.0/8";

/// The WebAuthn relying-party id of the matrix's servers (`--webauthn-rp-id`).
pub const WEBAUTHN_RP_ID: &str = "localhost";
/// The origin their passkeys may be used from (`--webauthn-rp-origin`).
pub const WEBAUTHN_ORIGIN: &str = "http://localhost:5173";

/// The origin the matrix's servers allow for CORS (`--cors-allowed-origins`), passed to the
/// suite as [`crate::Target::cors_origin`].
pub const CORS_ORIGIN: &str = "http://app.conformance.test:5173";

/// A second proxy of [`TRUSTED_PROXIES`], for the case of a request passing two proxies.
pub const ANOTHER_PROXY: std::net::IpAddr =
    std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 10, 20, 30));

/// The rate limits every server of the matrix applies, which the rate-limit cases exhaust.
pub const MATRIX_LIMITS: Limits = Limits::CONTRACT;

/// Which configurations of the matrix an [`ExpectedSkip`] applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Every configuration.
    Always,
    /// Configurations signing this way.
    Signing(Signing),
    /// Configurations with exactly this profile list.
    Profiles(&'static str),
}

impl When {
    fn matches(self, config: &ServerConfig<'_>) -> bool {
        match self {
            When::Always => true,
            When::Signing(signing) => config.signing == signing,
            When::Profiles(profiles) => config.profiles == profiles,
        }
    }
}

/// A case that may be skipped on the matrix, with the reason why that is right (the
/// jsonschema-rs `xfail` idea: never dropped silently, always named).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExpectedSkip {
    /// The case, `group/name`.
    pub case: &'static str,
    /// The configurations where it is expected.
    pub when: When,
    /// Why the case cannot run there.
    pub reason: &'static str,
}

/// Every skip the matrix may show besides the groups of profiles a configuration does not
/// mount (those follow from [`ServerConfig::profiles`] and need no entry).
pub const EXPECTED_SKIPS: &[ExpectedSkip] = &[
    ExpectedSkip {
        case: "attacks/hs256_signed_with_the_public_key",
        when: When::Signing(Signing::Hs256),
        reason: NO_PUBLIC_KEY,
    },
    ExpectedSkip {
        case: "attacks/expired_beyond_leeway",
        when: When::Signing(Signing::Eddsa),
        reason: NO_SECRET,
    },
    ExpectedSkip {
        case: "attacks/exp_as_string",
        when: When::Signing(Signing::Eddsa),
        reason: NO_SECRET,
    },
    ExpectedSkip {
        case: "attacks/nbf_in_the_future",
        when: When::Signing(Signing::Eddsa),
        reason: NO_SECRET,
    },
    ExpectedSkip {
        case: "attacks/wrong_or_missing_issuer",
        when: When::Signing(Signing::Eddsa),
        reason: NO_SECRET,
    },
    ExpectedSkip {
        case: "attacks/missing_required_claims",
        when: When::Signing(Signing::Eddsa),
        reason: NO_SECRET,
    },
    ExpectedSkip {
        case: "rate_limits/refresh_limited_per_ip",
        when: When::Always,
        reason: "the contract's refresh limit (300/900) is above Limits::MAX_EXERCISED: \
                 exhausting it would add 300 refreshes to every run",
    },
    ExpectedSkip {
        case: "personal-token/token_accepted_by_other_profiles",
        when: When::Profiles("personal-token"),
        reason: MOUNTED_ALONE,
    },
    ExpectedSkip {
        case: "jwt-user/token_accepted_by_other_profiles",
        when: When::Profiles("jwt-user"),
        reason: MOUNTED_ALONE,
    },
];

/// Why the key-confusion case needs EdDSA.
const NO_PUBLIC_KEY: &str =
    "an HS256 server publishes no public key for an attacker to use as an HMAC secret";
/// Why the crafted-token cases need HS256.
const NO_SECRET: &str = "crafted tokens are signed with the server's HS256 secret; an EdDSA \
                         server's private key stays in its database, out of the suite's reach";
/// Why a login-claiming profile has no other profile to accept its tokens.
const MOUNTED_ALONE: &str = "it claims native's POST /api/v1/auth/login, so the matrix mounts \
                             it alone: no other profile is there to accept its token";

/// A skip [`unexpected_skips`] found: the case and the reason the suite gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnexpectedSkip {
    /// The report's label.
    pub label: String,
    /// The case, `group/name`.
    pub case: String,
    /// The reason the suite gave for skipping it.
    pub reason: String,
}

impl fmt::Display for UnexpectedSkip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {} skipped: {}", self.label, self.case, self.reason)
    }
}

/// The skips in `report` (a run of `config` set up as the matrix sets servers up) that are
/// neither a group of an unmounted profile nor listed in [`EXPECTED_SKIPS`] for `config`.
pub fn unexpected_skips(config: &ServerConfig<'_>, report: &Report) -> Vec<UnexpectedSkip> {
    // An unparsable list mounts nothing the suite knows, so every profile counts as absent.
    let mounted = crate::http::mounted(&Mount::parse_list(config.profiles).unwrap_or_default());
    report
        .cases
        .iter()
        .filter_map(|case| {
            let Outcome::Skipped(reason) = &case.outcome else {
                return None;
            };
            let path = format!("{}/{}", case.group, case.name);
            let unmounted = Profile::ALL.iter().any(|profile| {
                *reason == format!("profile {} not mounted", profile.name())
                    && !mounted.iter().any(|(p, _)| p == profile)
            });
            let listed = EXPECTED_SKIPS
                .iter()
                .any(|skip| skip.case == path && skip.when.matches(config));
            (!unmounted && !listed).then(|| UnexpectedSkip {
                label: report.label.clone(),
                case: path,
                reason: reason.clone(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CaseOutcome;

    fn report(cases: Vec<(&'static str, &'static str, Outcome)>) -> Report {
        Report {
            label: "l".to_owned(),
            cases: cases
                .into_iter()
                .map(|(group, name, outcome)| CaseOutcome {
                    group,
                    name,
                    outcome,
                })
                .collect(),
        }
    }

    #[test]
    fn labels_name_the_profiles_and_eddsa() {
        let labels: Vec<String> = MATRIX.iter().map(ServerConfig::label).collect();
        assert_eq!(
            labels,
            [
                "native,envelope,rbac",
                "personal-token",
                "jwt-user",
                "native,envelope,rbac (eddsa)"
            ]
        );
        for config in MATRIX {
            assert!(Mount::parse_list(config.profiles).is_ok(), "{config}");
        }
    }

    #[test]
    fn only_unmounted_groups_and_listed_cases_may_be_skipped() {
        let config = ServerConfig {
            profiles: "native",
            signing: Signing::Hs256,
        };
        let skipped = |why: &str| Outcome::Skipped(why.to_owned());
        let found = unexpected_skips(
            &config,
            &report(vec![
                ("rbac", "a", skipped("profile rbac not mounted")),
                ("login", "b", skipped("profile native not mounted")),
                ("login", "c", skipped("the target gave no rate limits")),
                ("login", "d", Outcome::Passed),
            ]),
        );
        let cases: Vec<&str> = found.iter().map(|s| s.case.as_str()).collect();
        assert_eq!(cases, ["login/b", "login/c"]);
        assert_eq!(
            found[1].to_string(),
            "l: login/c skipped: the target gave no rate limits"
        );
    }

    #[test]
    fn every_expected_skip_names_a_case() {
        let names = crate::case_names();
        for skip in EXPECTED_SKIPS {
            assert!(
                names.iter().any(|(g, n)| format!("{g}/{n}") == skip.case),
                "{skip:?} names no case"
            );
            assert!(!skip.reason.is_empty(), "{skip:?} gives no reason");
        }
    }
}
