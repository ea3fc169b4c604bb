//! The web console's account commands (`web_users_add`, `web_users_list`, `web_users_passwd`,
//! `web_users_remove`, all local-only) and the one password check every console login passes
//! through, [`authenticate`].
//!
//! Passwords are hashed with Argon2id at the `argon2` crate's default parameters (19 MiB, two
//! passes, one lane: OWASP's recommended minimum, about 50 ms on a Pi 4) and a random salt, stored
//! as a PHC string. Unlike API tokens, passwords are chosen by people and guessable, so a slow
//! hash is what protects them if the database leaks. [`authenticate`] verifies against a dummy
//! hash when the name is unknown, so the answer time does not tell which names exist. What it
//! must not touch: sessions and cookies (the `web` transport), SQL (`store`).

use std::sync::OnceLock;

use argon2::{Argon2, PasswordHasher, PasswordVerifier};
use tracing::info;

use super::{CommandError, Context, Result};
use crate::protocol::{
    WebRole, WebUserAddArgs, WebUserChanged, WebUserItem, WebUserNameArgs, WebUserPasswdArgs,
};
use crate::store::Store;
use crate::time::rfc3339;

/// Shortest password accepted: long enough that the login throttle makes guessing hopeless.
pub const MIN_PASSWORD_CHARS: usize = 10;
/// Longest password accepted (Argon2 itself takes any length; this bounds the work per login).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// A console account whose password was just verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebAccount {
    pub id: i64,
    pub name: String,
    pub role: WebRole,
}

fn valid_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(CommandError::Invalid(format!(
            "field `name`: {:?} is not a user name; use 1-64 of A-Z a-z 0-9 _ - .",
            name.chars().take(80).collect::<String>()
        )))
    }
}

fn valid_password(password: &str) -> Result<()> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(CommandError::Invalid(format!(
            "field `password`: use at least {MIN_PASSWORD_CHARS} characters"
        )));
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(CommandError::Invalid(format!(
            "field `password`: use at most {MAX_PASSWORD_BYTES} bytes"
        )));
    }
    Ok(())
}

/// The Argon2id PHC string of `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| CommandError::Internal(format!("hashing a password: {e}")))
}

/// A hash no password matches in practice, verified when a name is unknown so the time of a
/// failed login does not depend on whether the name exists.
fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let mut raw = [0u8; 32];
        rand::fill(&mut raw);
        let secret: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        hash_password(&secret).unwrap_or_default()
    })
}

fn role_of(name: &str, role: &str) -> Result<WebRole> {
    WebRole::parse(role).ok_or_else(|| {
        CommandError::Internal(format!("console user {name:?} has unknown role {role:?}"))
    })
}

/// The account `name` when `password` is its password; `None` otherwise (unknown name or wrong
/// password alike, in about the same time).
pub fn authenticate(store: &Store, name: &str, password: &str) -> Result<Option<WebAccount>> {
    if name.len() > 64 || password.len() > MAX_PASSWORD_BYTES {
        return Ok(None);
    }
    let found = store.web_user_credentials(name)?;
    let hash = found
        .as_ref()
        .map(|(_, _, h)| h.as_str())
        .unwrap_or_else(|| dummy_hash());
    // Argon2's verify compares the derived key in constant time itself.
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok();
    match found {
        Some((id, role, _)) if ok => Ok(Some(WebAccount {
            id,
            name: name.to_string(),
            role: role_of(name, &role)?,
        })),
        _ => Ok(None),
    }
}

/// `web_users_add`: a new account.
pub fn add(ctx: &Context, args: &WebUserAddArgs) -> Result<WebUserItem> {
    valid_name(&args.name)?;
    valid_password(&args.password)?;
    let hash = hash_password(&args.password)?;
    let now = ctx.now();
    ctx.store
        .web_user_add(&args.name, args.role.as_str(), &hash, now)?;
    info!(user = %args.name, role = %args.role, "web console user added");
    Ok(WebUserItem {
        name: args.name.clone(),
        role: args.role,
        created_at: rfc3339(now),
        sessions: 0,
    })
}

/// `web_users_list`: every account by name (never a hash).
pub fn list(ctx: &Context) -> Result<Vec<WebUserItem>> {
    ctx.store
        .web_users(ctx.now())?
        .into_iter()
        .map(|u| {
            Ok(WebUserItem {
                role: role_of(&u.name, &u.role)?,
                name: u.name,
                created_at: rfc3339(u.created_at),
                sessions: u.sessions,
            })
        })
        .collect()
}

/// `web_users_passwd`: a new password; every session of the account ends.
pub fn passwd(ctx: &Context, args: &WebUserPasswdArgs) -> Result<WebUserChanged> {
    valid_password(&args.password)?;
    let hash = hash_password(&args.password)?;
    let ended = ctx
        .store
        .web_user_set_password(&args.name, &hash, ctx.now())?;
    info!(user = %args.name, sessions_ended = ended, "web console password changed");
    Ok(WebUserChanged {
        name: args.name.clone(),
        sessions_ended: ended,
    })
}

/// `web_users_remove`: the account and its sessions go; its audit rows stay.
pub fn remove(ctx: &Context, args: &WebUserNameArgs) -> Result<WebUserChanged> {
    let before = ctx
        .store
        .web_users(ctx.now())?
        .into_iter()
        .find(|u| u.name == args.name)
        .map(|u| u.sessions)
        .unwrap_or(0);
    ctx.store.web_user_remove(&args.name)?;
    info!(user = %args.name, "web console user removed");
    Ok(WebUserChanged {
        name: args.name.clone(),
        sessions_ended: before,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context::for_tests()
    }

    #[test]
    fn a_password_authenticates_until_changed_and_bad_input_is_refused() {
        let c = ctx();
        let added = add(
            &c,
            &WebUserAddArgs {
                name: "ann".into(),
                role: WebRole::Volunteer,
                password: "correct horse".into(),
            },
        )
        .unwrap();
        assert_eq!(added.role, WebRole::Volunteer);
        let acct = authenticate(&c.store, "ann", "correct horse")
            .unwrap()
            .unwrap();
        assert_eq!((acct.name.as_str(), acct.role), ("ann", WebRole::Volunteer));
        for (name, pw) in [
            ("ann", "correct hors"),
            ("ann", ""),
            ("bob", "correct horse"),
            ("ann", &"x".repeat(5000)),
        ] {
            assert!(
                authenticate(&c.store, name, pw).unwrap().is_none(),
                "{name} {pw}"
            );
        }
        // The hash is Argon2id, never the password.
        let (_, _, hash) = c.store.web_user_credentials("ann").unwrap().unwrap();
        assert!(hash.starts_with("$argon2id$") && !hash.contains("correct"));
        passwd(
            &c,
            &WebUserPasswdArgs {
                name: "ann".into(),
                password: "battery staple".into(),
            },
        )
        .unwrap();
        assert!(
            authenticate(&c.store, "ann", "correct horse")
                .unwrap()
                .is_none()
        );
        assert!(
            authenticate(&c.store, "ann", "battery staple")
                .unwrap()
                .is_some()
        );
        for (name, pw) in [("a b", "long enough pw"), ("ok", "short")] {
            let r = add(
                &c,
                &WebUserAddArgs {
                    name: name.into(),
                    role: WebRole::Owner,
                    password: pw.into(),
                },
            );
            assert!(matches!(r, Err(CommandError::Invalid(_))), "{name}");
        }
        assert_eq!(list(&c).unwrap().len(), 1);
        remove(&c, &WebUserNameArgs { name: "ann".into() }).unwrap();
        assert!(list(&c).unwrap().is_empty());
        assert!(
            authenticate(&c.store, "ann", "battery staple")
                .unwrap()
                .is_none()
        );
    }
}
