//! The API-token commands (`tokens_create`, `tokens_list`, `tokens_revoke`) and the one check
//! every HTTP request passes through, [`authenticate`].
//!
//! A secret is 32 random bytes from the operating system's CSPRNG (through `rand`), written as
//! `gsmgate_` + URL-safe base64, and shown once. Only its SHA-256 is stored: a token has 256 bits
//! of entropy, so a fast hash is enough (a slow password hash such as Argon2 protects guessable
//! secrets, which these are not) and a lookup stays cheap on every request. The presented token
//! is hashed and found by its hash; the stored hash is then compared in constant time, so the
//! comparison leaks nothing about a near miss.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::info;

use super::access::Caller;
use super::{CommandError, Context, Result};
use crate::protocol::{NoArgs, Scope, TokenCreated, TokenItem, TokensCreateArgs, TokensRevokeArgs};
use crate::store::{Store, TokenRow};
use crate::time::rfc3339;

/// What every secret starts with, so a leaked one is recognisable (secret scanners, logs).
pub const SECRET_PREFIX: &str = "gsmgate_";

/// The hex SHA-256 of a presented secret: what the store keeps and looks up.
pub fn secret_hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let mut hex = String::with_capacity(64);
    for b in digest {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
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
            "field `name`: {:?} is not a token name; use 1-64 of A-Z a-z 0-9 _ - .",
            name.chars().take(80).collect::<String>()
        )))
    }
}

fn item(r: TokenRow) -> Result<TokenItem> {
    let scope = Scope::parse(&r.scope).ok_or_else(|| {
        CommandError::Internal(format!(
            "token {:?} has unknown scope {:?}",
            r.name, r.scope
        ))
    })?;
    Ok(TokenItem {
        name: r.name,
        scope,
        created_at: rfc3339(r.created_at),
        last_used_at: r.last_used_at.map(rfc3339),
        revoked_at: r.revoked_at.map(rfc3339),
    })
}

/// `tokens_create`: a new token; its secret is in the reply and nowhere else.
pub fn create(ctx: &Context, args: &TokensCreateArgs) -> Result<TokenCreated> {
    valid_name(&args.name)?;
    let mut raw = [0u8; 32];
    rand::fill(&mut raw);
    let secret = format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw));
    let row = ctx.store.create_token(
        &args.name,
        args.scope.as_str(),
        &secret_hash(&secret),
        ctx.now(),
    )?;
    info!(token = %row.name, scope = %args.scope, "API token created");
    Ok(TokenCreated {
        name: row.name,
        scope: args.scope,
        secret,
        created_at: rfc3339(row.created_at),
    })
}

/// `tokens_list`: every token, active first; never a secret or a hash.
pub fn list(ctx: &Context, _: &NoArgs) -> Result<Vec<TokenItem>> {
    ctx.store.tokens()?.into_iter().map(item).collect()
}

/// `tokens_revoke`: the token stops working with the next request.
pub fn revoke(ctx: &Context, args: &TokensRevokeArgs) -> Result<TokenItem> {
    let row = ctx.store.revoke_token(&args.name, ctx.now())?;
    info!(token = %row.name, "API token revoked");
    item(row)
}

/// The caller a presented bearer secret stands for, or `None` when it matches no active token.
/// Returns the token's row id too, for the caller's "last used" bookkeeping.
pub fn authenticate(store: &Store, presented: &str) -> Result<Option<(i64, Caller)>> {
    // Longer than any secret this code makes: refuse before hashing a megabyte.
    if presented.len() > 256 {
        return Ok(None);
    }
    let hash = secret_hash(presented);
    let Some(found) = store.token_by_hash(&hash)? else {
        return Ok(None);
    };
    if !bool::from(found.secret_hash.as_bytes().ct_eq(hash.as_bytes())) {
        return Ok(None);
    }
    let Some(scope) = Scope::parse(&found.scope) else {
        return Err(CommandError::Internal(format!(
            "token {:?} has unknown scope {:?}",
            found.name, found.scope
        )));
    };
    Ok(Some((found.id, Caller::http(found.name, scope))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Context {
        Context::for_tests()
    }

    #[test]
    fn a_created_secret_authenticates_until_revoked() {
        let c = ctx();
        let made = create(
            &c,
            &TokensCreateArgs {
                name: "crm".into(),
                scope: Scope::Send,
            },
        )
        .unwrap();
        assert!(made.secret.starts_with(SECRET_PREFIX) && made.secret.len() > 40);
        let (_, caller) = authenticate(&c.store, &made.secret).unwrap().unwrap();
        assert_eq!((caller.name.as_str(), caller.scope), ("crm", Scope::Send));
        // Wrong, truncated, empty and huge secrets match nothing.
        for bad in [
            "",
            "gsmgate_",
            &made.secret[..made.secret.len() - 1],
            &format!("{}x", made.secret),
            &"a".repeat(10_000),
        ] {
            assert!(authenticate(&c.store, bad).unwrap().is_none(), "{bad:?}");
        }
        // The store never holds the secret itself.
        let listed = list(&c, &NoArgs {}).unwrap();
        assert_eq!(listed.len(), 1);
        assert!(!format!("{listed:?}").contains(&made.secret));
        revoke(&c, &TokensRevokeArgs { name: "crm".into() }).unwrap();
        assert!(authenticate(&c.store, &made.secret).unwrap().is_none());
    }

    #[test]
    fn two_secrets_differ_and_names_are_checked() {
        let c = ctx();
        let a = create(
            &c,
            &TokensCreateArgs {
                name: "a".into(),
                scope: Scope::Read,
            },
        )
        .unwrap();
        let b = create(
            &c,
            &TokensCreateArgs {
                name: "b".into(),
                scope: Scope::Read,
            },
        )
        .unwrap();
        assert_ne!(a.secret, b.secret);
        for bad in ["", "has space", "x/y", &"n".repeat(65)] {
            let r = create(
                &c,
                &TokensCreateArgs {
                    name: bad.into(),
                    scope: Scope::Read,
                },
            );
            assert!(matches!(r, Err(CommandError::Invalid(_))), "{bad:?}");
        }
        let dup = create(
            &c,
            &TokensCreateArgs {
                name: "a".into(),
                scope: Scope::Admin,
            },
        );
        assert!(matches!(dup, Err(CommandError::Conflict(_))));
    }
}
