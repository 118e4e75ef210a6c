//! The browser's cookie jar as the cookie flow checks it: the [`Cookie`] type as
//! `Storage.getCookies` and `Network.getCookies` give it, and the steps built from it (each
//! auth cookie's attributes, which cookies go to which path, values the page must not read).

use serde::Deserialize;

use super::API_PATH;
use super::flows::Step;
use super::tab::Tab;

/// The access cookie of the cookie transport with `--cookie-secure false`, and its path.
pub const ACCESS_COOKIE: (&str, &str) = ("auth_access", "/");
/// The refresh cookie of the cookie transport with `--cookie-secure false`, and its path.
pub const REFRESH_COOKIE: (&str, &str) = ("auth_refresh", "/api/v1/auth/refresh");

/// A cookie as the browser keeps it (`Storage.getCookies`, `Network.getCookies`); its
/// fields are read only here.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cookie {
    name: String,
    value: String,
    path: String,
    http_only: bool,
    secure: bool,
    /// Absent when the cookie set none.
    #[serde(default)]
    same_site: Option<String>,
}

impl Cookie {
    /// Its name and the attributes checked, as [`attribute_steps`] compares them.
    fn attributes(&self) -> String {
        format!(
            "{} path={} httpOnly={} secure={} sameSite={}",
            self.name,
            self.path,
            self.http_only,
            self.secure,
            self.same_site.as_deref().unwrap_or("(none)")
        )
    }
}

/// The browser's cookies, or a failed step.
pub fn jar(tab: &mut Tab<'_>, name: &str, steps: &mut Vec<Step>) -> Option<Vec<Cookie>> {
    match tab.cookies() {
        Ok(cookies) => Some(cookies),
        Err(err) => {
            steps.push(Step::error(name, "Storage.getCookies answers", &err));
            None
        }
    }
}

/// Each auth cookie's attributes as the browser stored them.
pub fn attribute_steps(when: &str, cookies: &[Cookie]) -> Vec<Step> {
    [ACCESS_COOKIE, REFRESH_COOKIE]
        .into_iter()
        .map(|(name, path)| {
            let expected = format!("{name} path={path} httpOnly=true secure=false sameSite=Lax");
            let found: Vec<&Cookie> = cookies.iter().filter(|c| c.name == name).collect();
            let got = if found.is_empty() {
                format!("no {name} cookie (the browser has: {})", names(cookies))
            } else {
                found
                    .iter()
                    .map(|c| c.attributes())
                    .collect::<Vec<_>>()
                    .join("; ")
            };
            Step::new(
                format!("{name} cookie {when}"),
                got == expected,
                expected,
                got,
            )
        })
        .collect()
}

/// The names of `cookies`, comma-separated; `none` when there is none.
pub fn names(cookies: &[Cookie]) -> String {
    if cookies.is_empty() {
        return "none".to_owned();
    }
    cookies
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Which cookies the browser would send to `api` + `path` (`Network.getCookies`): all of
/// `sent`, none of `withheld`.
pub fn sent_to(tab: &mut Tab<'_>, api: &str, path: &str, sent: &[&str], withheld: &[&str]) -> Step {
    let name = format!("cookies the browser sends to {API_PATH}{path}");
    let url = format!("{api}{path}");
    let expected = format!(
        "{}{}",
        sent.join(" and "),
        if withheld.is_empty() {
            String::new()
        } else {
            format!(", not {}", withheld.join(", "))
        }
    );
    match tab.cookies_for(&url) {
        Ok(cookies) => {
            let has = |n: &str| cookies.iter().any(|c| c.name == n);
            let ok = sent.iter().all(|n| has(n)) && !withheld.iter().any(|n| has(n));
            Step::new(name, ok, expected, names(&cookies))
        }
        Err(err) => Step::error(name, expected, &err),
    }
}

/// The auth cookies among `cookies`.
pub fn auth_cookies(cookies: &[Cookie]) -> Vec<Cookie> {
    cookies
        .iter()
        .filter(|c| c.name == ACCESS_COOKIE.0 || c.name == REFRESH_COOKIE.0)
        .cloned()
        .collect()
}

/// The value of the cookie `name` among `cookies`, if there is one.
pub fn cookie_value(cookies: &[Cookie], name: &str) -> Option<String> {
    cookies
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.value.clone())
}

/// No value of `cookies` shows up in anything the page could read (answer bodies,
/// `document.cookie`).
pub fn hidden(when: &str, cookies: &[Cookie], seen: &[String]) -> Step {
    let mut leaked: Vec<&str> = cookies
        .iter()
        .filter(|c| !c.value.is_empty() && seen.iter().any(|text| text.contains(&c.value)))
        .map(|c| c.name.as_str())
        .collect();
    leaked.sort_unstable();
    leaked.dedup();
    Step::new(
        format!("no cookie value readable by the page {when}"),
        leaked.is_empty(),
        "no auth cookie value in any answer body or document.cookie",
        if leaked.is_empty() {
            format!("none in {} strings", seen.len())
        } else {
            format!("the value of {} is", leaked.join(", "))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cookie(name: &str, path: &str, same_site: Option<&str>) -> Cookie {
        Cookie {
            name: name.to_owned(),
            value: format!("{name}-value"),
            path: path.to_owned(),
            http_only: true,
            secure: false,
            same_site: same_site.map(str::to_owned),
        }
    }

    #[test]
    fn attributes_are_checked_as_the_browser_stored_them() {
        let good = [
            cookie("auth_access", "/", Some("Lax")),
            cookie("auth_refresh", "/api/v1/auth/refresh", Some("Lax")),
        ];
        assert!(attribute_steps("now", &good).iter().all(|s| s.ok));
        let bad = [cookie("auth_access", "/", None)];
        let steps = attribute_steps("now", &bad);
        assert!(!steps[0].ok);
        assert_eq!(
            steps[0].got,
            "auth_access path=/ httpOnly=true secure=false sameSite=(none)"
        );
        assert_eq!(
            steps[1].got,
            "no auth_refresh cookie (the browser has: auth_access)"
        );
    }

    #[test]
    fn a_cookie_value_in_what_the_page_read_is_a_leak() {
        let values = [cookie("auth_access", "/", Some("Lax"))];
        assert!(hidden("x", &values, &["{\"user\":{}}".to_owned()]).ok);
        let leaked = hidden("x", &values, &["a=auth_access-value".to_owned()]);
        assert!(!leaked.ok);
        assert_eq!(leaked.got, "the value of auth_access is");
    }
}
