//! What a run leaves on the deployment: the emails of users it may have created, and their
//! removal through the admin API at the end of a run.
//!
//! Every email the suite makes up ([`crate::native`]'s unique emails) and every email a
//! registration or admin creation answered 201 for is noted here. Notes are process-wide
//! because the emails are made in free functions all over the cases; the suite never deletes
//! a user it did not note, so a deployment's own users (even the seeds' example users, when
//! they existed before the run) are never touched.

use std::collections::BTreeSet;
use std::sync::Mutex;

use reqwest::Method;
use serde_json::{Value, json};

use crate::http::Ctx;
use crate::profile::Profile;
use crate::{Credentials, Target};

/// Emails this process's runs may have created users with.
static NOTED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Notes `email` as one a user may have been created with (stored lower case, as the server
/// compares emails ignoring case).
pub(crate) fn note_email(email: &str) {
    // A poisoned lock only means another thread panicked while inserting: the set is intact.
    let mut noted = NOTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    noted.insert(email.trim().to_lowercase());
}

/// Emails a registration or an admin creation of this process answered 201 for.
static CREATED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Notes `email` as one a user was created with (a 201 answer).
pub(crate) fn note_created(email: &str) {
    note_email(email);
    let mut created = CREATED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    created.insert(email.trim().to_lowercase());
}

/// Every noted email, sorted.
fn noted_emails() -> Vec<String> {
    let noted = NOTED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    noted.iter().cloned().collect()
}

/// Every email a user was created with, sorted.
fn created_emails() -> Vec<String> {
    let created = CREATED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    created.iter().cloned().collect()
}

/// What [`remove_created_users`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Cleanup {
    /// Emails of users the run created and deleted again.
    pub deleted: Vec<String>,
    /// Emails of users the run created (or may have) that are still there, with why.
    pub left: Vec<String>,
    /// Why nothing could be checked or deleted, if so (no admin credentials, say).
    pub problem: Option<String>,
}

/// Deletes, through the admin API (`GET /users?email=`, `DELETE /users/{id}`), every user
/// whose email this process noted, except the admin given in `target`. Without admin
/// credentials (or without `native` mounted) nothing can be looked up: then `left` lists
/// every email a registration answered 201 for, which is exactly what the run created.
pub async fn remove_created_users(target: &Target) -> Cleanup {
    let mut emails = noted_emails();
    let admin = target.admin.clone();
    if let Some(admin) = &admin {
        let own = admin.email.trim().to_lowercase();
        emails.retain(|email| *email != own);
    }
    let ctx = match Ctx::new(&Target {
        // One client address for the clean-up: only successful logins and admin calls.
        forwarded_for: false,
        ..target.clone()
    }) {
        Ok(ctx) => ctx,
        Err(failure) => return left_all(emails, failure.got),
    };
    let Some(admin) = admin.filter(|_| ctx.mounted(Profile::Admin)) else {
        let created = created_emails();
        if created.is_empty() {
            return Cleanup::default();
        }
        return Cleanup {
            deleted: Vec::new(),
            left: created,
            problem: Some(
                "no admin credentials (or native not mounted): users cannot be deleted".to_owned(),
            ),
        };
    };
    let token = match admin_login(&ctx, &admin).await {
        Ok(token) => token,
        Err(why) => return left_all(created_emails(), why),
    };
    let mut cleanup = Cleanup::default();
    for email in emails {
        match delete_user(&ctx, &token, &email).await {
            Ok(true) => cleanup.deleted.push(email),
            Ok(false) => {}
            Err(why) => cleanup.left.push(format!("{email} ({why})")),
        }
    }
    cleanup
}

/// Everything left, for one reason.
fn left_all(emails: Vec<String>, why: String) -> Cleanup {
    Cleanup {
        deleted: Vec::new(),
        left: emails,
        problem: Some(why),
    }
}

/// Checks before a run that `admin` logs in and may use the admin routes, so that wrong
/// credentials are one clear error rather than every admin case failing.
pub(crate) async fn check_admin(target: &Target, admin: &Credentials) -> Result<(), String> {
    let ctx = Ctx::new(target).map_err(|failure| failure.got)?;
    if !ctx.mounted(Profile::Admin) {
        return Ok(());
    }
    let token = admin_login(&ctx, admin)
        .await
        .map_err(|why| format!("the admin user --admin-email cannot log in: {why}"))?;
    let resp = ctx
        .at(Profile::Admin, Method::GET, "/users?limit=1")
        .bearer(&token)
        .send()
        .await
        .map_err(|failure| failure.got)?;
    match resp.status {
        200 => Ok(()),
        status => Err(format!(
            "the user --admin-email may not use the admin API (GET /api/v1/admin/users \
             answered {status}): give it the role admin"
        )),
    }
}

/// The admin's access token, from `native`'s `/login`.
pub(crate) async fn admin_login(ctx: &Ctx, admin: &Credentials) -> Result<String, String> {
    let resp = ctx
        .login_raw(&json!({"email": admin.email, "password": admin.password}))
        .await
        .map_err(|failure| failure.got)?;
    if resp.status != 200 {
        return Err(format!("the admin login answered {}", resp.status));
    }
    resp.str_at("/token/access_token")
        .map(str::to_owned)
        .map_err(|failure| failure.expected)
}

/// Deletes the user `email` if there is one: `Ok(true)` when deleted, `Ok(false)` when
/// nobody has that email.
async fn delete_user(ctx: &Ctx, token: &str, email: &str) -> Result<bool, String> {
    let found = ctx
        .at(
            Profile::Admin,
            Method::GET,
            &format!("/users?email={}", encode(email)),
        )
        .bearer(token)
        .send()
        .await
        .map_err(|failure| failure.got)?;
    if found.status != 200 {
        return Err(format!("looking it up answered {}", found.status));
    }
    let ids: Vec<String> = found
        .json()
        .and_then(|body| body["items"].as_array())
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let Some(id) = ids.first() else {
        return Ok(false);
    };
    let deleted = ctx
        .at(Profile::Admin, Method::DELETE, &format!("/users/{id}"))
        .bearer(token)
        .send()
        .await
        .map_err(|failure| failure.got)?;
    match deleted.status {
        204 | 404 => Ok(deleted.status == 204),
        status => Err(format!("deleting it answered {status}")),
    }
}

/// `text` percent-encoded for a query value: everything but letters, digits and `-._~`.
fn encode(text: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            // Writing to a String cannot fail.
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

/// The email in a 201 answer's body (`user.email` after a registration, `email` after an
/// admin creation), if any.
pub(crate) fn created_email(body: Option<&Value>) -> Option<&str> {
    let body = body?;
    body["user"]["email"].as_str().or(body["email"].as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notes_are_kept_lower_case_and_once() {
        note_email(" Cleanup-Test@Example.com ");
        note_email("cleanup-test@example.com");
        let noted = noted_emails();
        assert_eq!(
            noted
                .iter()
                .filter(|e| *e == "cleanup-test@example.com")
                .count(),
            1
        );
    }

    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(encode("c-1+x@example.com"), "c-1%2Bx%40example.com");
    }

    #[test]
    fn created_emails_come_from_either_shape() {
        let registered = json!({"user": {"email": "a@b.c"}, "token": {}});
        assert_eq!(created_email(Some(&registered)), Some("a@b.c"));
        assert_eq!(
            created_email(Some(&json!({"email": "d@e.f"}))),
            Some("d@e.f")
        );
        assert_eq!(created_email(Some(&json!({}))), None);
        assert_eq!(created_email(None), None);
    }
}
