//! Mounting profiles at prefixes: what a deployment is configured with ([`MountSpec`]), what
//! it serves ([`MountedProfile`]), and the paths every deployment serves whatever its
//! profiles.

use std::time::Duration;

use crate::profile::{self, Profile, Route};

/// Health check path, mounted whatever the profiles: 200 when the database answers, 503
/// otherwise.
pub const HEALTH_PATH: &str = "/healthz";
/// Liveness path, mounted whatever the profiles: 200 whenever the process answers; never
/// touches the database.
pub const LIVE_PATH: &str = "/livez";
/// Readiness path, mounted whatever the profiles: 200 when the database answers, 503 with
/// `Retry-After` otherwise (at once while the store knows the database is unreachable).
pub const READY_PATH: &str = "/readyz";
/// OpenAPI document path, mounted whatever the profiles.
pub const OPENAPI_PATH: &str = "/openapi.json";
/// JWKS path, mounted when tokens are signed with EdDSA keys.
pub const JWKS_PATH: &str = "/.well-known/jwks.json";

/// A profile to mount, as configured: `name` or `name=/prefix`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// Profile name.
    pub profile: String,
    /// Prefix; the profile's default when `None`.
    pub prefix: Option<String>,
    /// Access-token lifetime; the profile's default when `None`.
    pub access_ttl: Option<Duration>,
}

impl MountSpec {
    /// Parses a comma-separated list such as `native,envelope=/legacy/auth`.
    pub fn parse_list(list: &str) -> Result<Vec<MountSpec>, MountError> {
        list.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                let (name, prefix) = match item.split_once('=') {
                    Some((name, prefix)) => (name.trim(), Some(prefix.trim().to_owned())),
                    None => (item, None),
                };
                Ok(MountSpec {
                    profile: name.to_owned(),
                    prefix,
                    access_ttl: None,
                })
            })
            .collect()
    }
}

/// Why a set of mounts was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MountError {
    /// No profile of that name.
    #[error("unknown profile `{0}` (known: {known})", known = known_profiles())]
    UnknownProfile(String),
    /// A prefix must start with `/`, not end with `/`, and be more than `/`.
    #[error("invalid prefix `{0}`: it must start with `/`, not end with `/`, and not be `/` alone")]
    BadPrefix(String),
    /// Two mounted profiles claim the same method and path.
    #[error("profiles `{first}` and `{second}` both claim {route}")]
    Conflict {
        /// The first profile.
        first: String,
        /// The second profile.
        second: String,
        /// Method and path.
        route: String,
    },
    /// Nothing to mount.
    #[error("no profile to mount")]
    Empty,
}

fn known_profiles() -> String {
    profile::ALL
        .iter()
        .map(|p| p.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// A profile mounted at a prefix.
#[derive(Debug, Clone)]
pub struct MountedProfile {
    /// The profile.
    pub profile: &'static Profile,
    /// Its prefix, e.g. `/api/v1/auth`.
    pub prefix: String,
    /// Access-token lifetime in force.
    pub access_ttl: Option<Duration>,
}

impl MountedProfile {
    /// The part of `path` below the prefix (`""` or starting with `/`), if `path` is under it.
    pub(crate) fn relative<'p>(&self, path: &'p str) -> Option<&'p str> {
        let rest = path.strip_prefix(self.prefix.as_str())?;
        (rest.is_empty() || rest.starts_with('/')).then_some(rest)
    }

    /// Every route with its full path, in table order.
    pub fn routes(&self) -> impl Iterator<Item = MountedRoute<'_>> {
        self.profile
            .routes
            .iter()
            .map(move |route: &'static Route| MountedRoute {
                mount: self,
                route,
                full_path: format!("{}{}", self.prefix, route.path),
            })
    }
}

/// A route of a mounted profile, with its full path.
#[derive(Debug, Clone)]
pub struct MountedRoute<'a> {
    /// The mount.
    pub mount: &'a MountedProfile,
    /// The route.
    pub route: &'static Route,
    /// Prefix and route path.
    pub full_path: String,
}

/// Mounts the specs: the profiles found, prefixes checked, `admin` added with `native`,
/// conflicts refused, longest prefix first (so the most specific mount answers).
pub fn mount_all(specs: &[MountSpec]) -> Result<Vec<MountedProfile>, MountError> {
    if specs.is_empty() {
        return Err(MountError::Empty);
    }
    let mut specs = specs.to_vec();
    // The admin API comes with `native` unless mounted explicitly.
    let mounted = |name: &str| specs.iter().any(|s| s.profile == name);
    if mounted(profile::native::PROFILE.name) && !mounted(profile::admin::PROFILE.name) {
        specs.push(MountSpec {
            profile: profile::admin::PROFILE.name.to_owned(),
            prefix: None,
            access_ttl: None,
        });
    }
    let mut mounts = Vec::with_capacity(specs.len());
    for spec in &specs {
        let profile = profile::find(&spec.profile)
            .ok_or_else(|| MountError::UnknownProfile(spec.profile.clone()))?;
        let prefix = spec
            .prefix
            .clone()
            .unwrap_or_else(|| profile.default_prefix.to_owned());
        if !prefix.starts_with('/') || prefix.ends_with('/') || prefix.contains("//") {
            return Err(MountError::BadPrefix(prefix));
        }
        mounts.push(MountedProfile {
            profile,
            prefix,
            access_ttl: spec.access_ttl.or(profile.default_access_ttl),
        });
    }
    check_conflicts(&mounts)?;
    mounts.sort_by_key(|mount| std::cmp::Reverse(mount.prefix.len()));
    Ok(mounts)
}

fn check_conflicts(mounts: &[MountedProfile]) -> Result<(), MountError> {
    let mut claimed: Vec<(String, String, &'static str)> = Vec::new();
    for mount in mounts {
        for route in mount.routes() {
            let key = (route.route.method.to_owned(), normalize(&route.full_path));
            if [HEALTH_PATH, OPENAPI_PATH, JWKS_PATH].contains(&key.1.as_str()) {
                return Err(MountError::Conflict {
                    first: "built-in".to_owned(),
                    second: mount.profile.name.to_owned(),
                    route: format!("{} {}", key.0, route.full_path),
                });
            }
            if let Some((_, _, first)) = claimed.iter().find(|(m, p, _)| *m == key.0 && *p == key.1)
            {
                return Err(MountError::Conflict {
                    first: (*first).to_owned(),
                    second: mount.profile.name.to_owned(),
                    route: format!("{} {}", key.0, route.full_path),
                });
            }
            claimed.push((key.0, key.1, mount.profile.name));
        }
    }
    Ok(())
}

/// A path pattern with parameter names erased, so `/a/{id}` and `/a/{x}` compare equal.
fn normalize(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "{}" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_lists_parse() {
        let specs = MountSpec::parse_list("native, envelope=/x/auth,").unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[1].prefix.as_deref(), Some("/x/auth"));
        assert_eq!(normalize("/a/{id}/b"), normalize("/a/{x}/b"));
    }
}
