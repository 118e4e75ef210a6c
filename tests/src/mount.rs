//! The public description of a deployment's mounted profiles and its admin user.

use std::fmt;

use crate::profile::Profile;

/// The profiles mounted when a deployment configures none.
pub const DEFAULT_PROFILES: &[&str] = &["native", "envelope", "rbac"];

/// A mounted profile and its prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// Profile name: `native`, `envelope`, `personal-token`, `rbac`, `jwt-user`, or `admin`
    /// (only to move `native`'s admin routes away from `/api/v1/admin`).
    pub name: String,
    /// Where it is mounted, e.g. `/api/v1/auth`: starts with `/`, no trailing `/`.
    pub prefix: String,
}

impl Mount {
    /// The profiles called `names` at their default prefixes (`native`, `personal-token` and
    /// `jwt-user` at `/api/v1/auth`, `envelope` at `/api/auth`, `rbac` at `/api/v2/auth`).
    /// A name the suite does not know has no default prefix and is left out; use
    /// [`Mount::parse_list`] to have it refused instead.
    pub fn defaults(names: &[&str]) -> Vec<Mount> {
        names
            .iter()
            .filter_map(|name| Profile::from_name(name))
            .map(|profile| Mount {
                name: profile.name().to_owned(),
                prefix: profile.default_prefix().to_owned(),
            })
            .collect()
    }

    /// Parses a comma-separated list of `name` or `name=/prefix`, the server's `--profiles`
    /// syntax, e.g. `native,envelope=/legacy/auth`.
    pub fn parse_list(list: &str) -> Result<Vec<Mount>, ParseMountError> {
        let mut mounts: Vec<Mount> = Vec::new();
        for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let (name, prefix) = match item.split_once('=') {
                Some((name, prefix)) => (name.trim(), Some(prefix.trim())),
                None => (item, None),
            };
            let profile = Profile::from_name(name).ok_or_else(|| {
                let known: Vec<&str> = Profile::ALL.iter().map(|p| p.name()).collect();
                ParseMountError(format!(
                    "unknown profile `{name}` (known: {})",
                    known.join(", ")
                ))
            })?;
            let prefix = prefix.unwrap_or(profile.default_prefix());
            if !prefix.starts_with('/') || prefix.ends_with('/') || prefix.contains("//") {
                return Err(ParseMountError(format!(
                    "invalid prefix `{prefix}` for `{name}`: it must start with `/`, not end \
                     with `/`, and not be `/` alone"
                )));
            }
            if mounts.iter().any(|m| m.name == name) {
                return Err(ParseMountError(format!("profile `{name}` is listed twice")));
            }
            mounts.push(Mount {
                name: name.to_owned(),
                prefix: prefix.to_owned(),
            });
        }
        if mounts.is_empty() {
            return Err(ParseMountError("no profile listed".to_owned()));
        }
        Ok(mounts)
    }

    /// The list in [`Mount::parse_list`]'s syntax, prefixes shown only where they are not
    /// the default: `native,envelope=/legacy/auth`.
    pub fn list_label(mounts: &[Mount]) -> String {
        let items: Vec<String> = mounts.iter().map(Mount::to_string).collect();
        items.join(",")
    }
}

impl fmt::Display for Mount {
    /// `name`, or `name=/prefix` when the prefix is not the profile's default.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let default = Profile::from_name(&self.name).map(Profile::default_prefix);
        if default == Some(self.prefix.as_str()) {
            f.write_str(&self.name)
        } else {
            write!(f, "{}={}", self.name, self.prefix)
        }
    }
}

/// Why a profile list was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseMountError(String);

impl fmt::Display for ParseMountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ParseMountError {}

/// An email and password that log in through `native`.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Email address.
    pub email: String,
    /// Password.
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("email", &self.email)
            .field("password", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(name: &str, prefix: &str) -> Mount {
        Mount {
            name: name.to_owned(),
            prefix: prefix.to_owned(),
        }
    }

    #[test]
    fn defaults_use_each_profiles_prefix() {
        assert_eq!(
            Mount::defaults(DEFAULT_PROFILES),
            [
                mount("native", "/api/v1/auth"),
                mount("envelope", "/api/auth"),
                mount("rbac", "/api/v2/auth"),
            ]
        );
        assert_eq!(
            Mount::defaults(&["personal-token", "nonsense", "jwt-user"]),
            [
                mount("personal-token", "/api/v1/auth"),
                mount("jwt-user", "/api/v1/auth"),
            ]
        );
    }

    #[test]
    fn lists_parse_with_and_without_prefixes() {
        assert_eq!(
            Mount::parse_list(" native, envelope = /x ,").unwrap(),
            [mount("native", "/api/v1/auth"), mount("envelope", "/x")]
        );
        for bad in [
            "",
            " , ",
            "nope",
            "native=x",
            "native=/x/",
            "native=/",
            "rbac,rbac",
        ] {
            assert!(Mount::parse_list(bad).is_err(), "{bad:?}");
        }
        assert!(
            Mount::parse_list("nope")
                .unwrap_err()
                .to_string()
                .contains("known: native, admin, envelope")
        );
    }

    #[test]
    fn labels_show_only_moved_prefixes() {
        let mounts = Mount::parse_list("native,envelope=/legacy,jwt-user").unwrap();
        assert_eq!(
            Mount::list_label(&mounts),
            "native,envelope=/legacy,jwt-user"
        );
        assert_eq!(
            Mount::parse_list(&Mount::list_label(&mounts)).unwrap(),
            mounts
        );
    }

    #[test]
    fn credentials_hide_the_password() {
        let credentials = Credentials {
            email: "a@example.com".to_owned(),
            password: "secret-password".to_owned(),
        };
        assert!(!format!("{credentials:?}").contains("secret"));
    }
}
