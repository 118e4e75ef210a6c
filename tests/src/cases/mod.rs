//! The case registry: one module per group, each declaring its `CASES` with
//! [`cases!`](crate::runner::cases).

mod accounts;
mod admin;
mod attacks;
mod audit;
mod bearer;
mod client_addresses;
mod common;
mod concurrency;
mod cookies;
mod cors;
mod email;
mod envelope;
mod jwt_user;
mod last_admin;
mod lockout;
mod login;
mod logout;
mod me;
mod mfa;
mod openapi;
mod passkeys;
mod password;
mod personal_token;
mod rate_limits;
mod rbac;
mod refresh;
mod register;
mod sessions;
mod shared_rules;
mod tokens;

use crate::runner::Case;

/// Every group's cases, in report order.
const GROUPS: &[&[Case]] = &[
    shared_rules::CASES,
    register::CASES,
    login::CASES,
    me::CASES,
    refresh::CASES,
    logout::CASES,
    sessions::CASES,
    password::CASES,
    tokens::CASES,
    bearer::CASES,
    attacks::CASES,
    concurrency::CASES,
    rate_limits::CASES,
    lockout::CASES,
    client_addresses::CASES,
    accounts::CASES,
    admin::CASES,
    last_admin::CASES,
    audit::CASES,
    envelope::CASES,
    personal_token::CASES,
    rbac::CASES,
    jwt_user::CASES,
    cors::CASES,
    cookies::CASES,
    email::CASES,
    mfa::CASES,
    passkeys::CASES,
    openapi::CASES,
];

/// Every case, in report order.
pub(crate) fn all() -> impl Iterator<Item = &'static Case> {
    GROUPS.iter().flat_map(|group| group.iter())
}

/// What every case module uses.
mod prelude {
    pub(crate) use reqwest::Method;
    pub(crate) use serde_json::{Value, json};
    pub(crate) use uuid::Uuid;

    pub(crate) use crate::check::{Challenge, Step, UNAUTHORIZED};
    pub(crate) use crate::http::{Ctx, Resp};
    pub(crate) use crate::native::{Account, Pair, unique_email, unique_password};
    pub(crate) use crate::report::Failure;
    pub(crate) use crate::runner::{CaseError, CaseResult, cases};
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn case_paths_are_unique_and_groups_contiguous() {
        let paths: HashSet<String> = all().map(Case::path).collect();
        assert_eq!(paths.len(), all().count());
        for group in GROUPS {
            assert!(!group.is_empty());
            assert!(group.iter().all(|case| case.group == group[0].group));
        }
        let groups: HashSet<&str> = GROUPS.iter().map(|g| g[0].group).collect();
        assert_eq!(groups.len(), GROUPS.len());
    }
}
