//! Console sessions: the `gsmgate_session` cookie, its lookup on every request, and the CSRF
//! token of every form (docs/web.md, "Security").
//!
//! A session id is 32 random bytes from the OS CSPRNG; the cookie carries it, the store keeps
//! only its SHA-256 (like API tokens: 256 bits need no slow hash). The cookie is `HttpOnly`
//! (scripts cannot read it), `SameSite=Strict` (no other site's page can make the browser send
//! it), `Path=/`, and `Secure` when the listener is TLS. Sessions expire after
//! [`IDLE_MS`] without a request, and [`MAX_AGE_MS`] after the login whatever the activity (a
//! stolen cookie, or a console left open on a shared computer, does not live for ever); "last
//! seen" is written at most once a minute, not per request.
//!
//! CSRF: each session has its own random token, rendered into a hidden `csrf` input of every
//! form and compared in constant time on every POST; a missing or wrong one is 403. The login
//! form, which has no session yet, uses a double-submit token: a short-lived `gsmgate_login`
//! cookie whose value the form must echo, so a foreign page cannot log a browser into an
//! account of the attacker's choosing.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use super::{Web, WebError};
use crate::commands::Caller;
use crate::commands::tokens::secret_hash;
use crate::protocol::{Scope, WebRole};

/// The session cookie's name.
pub const COOKIE: &str = "gsmgate_session";
/// The login form's double-submit cookie.
pub const LOGIN_COOKIE: &str = "gsmgate_login";
/// A session ends after this long without a request (8 hours: a volunteer's shift).
pub const IDLE_MS: i64 = 8 * 3600 * 1000;
/// A session ends this long after its login, used or not (a day: an owner logs in once a day).
pub const MAX_AGE_MS: i64 = 24 * 3600 * 1000;
/// How often "last seen" (and with it the idle expiry) is written.
const TOUCH_EVERY_MS: i64 = 60_000;

/// The logged-in account of a request.
#[derive(Debug, Clone)]
pub struct Session {
    /// SHA-256 of the cookie value (what the store knows).
    pub id_hash: String,
    pub user_id: i64,
    pub user: String,
    pub role: WebRole,
    pub csrf: String,
}

impl Session {
    /// The command layer's caller for this account.
    pub fn caller(&self) -> Caller {
        Caller::web(self.user.clone(), self.scope())
    }

    /// Owner → `admin`, volunteer → `send` (docs/web.md, "Roles").
    pub fn scope(&self) -> Scope {
        match self.role {
            WebRole::Owner => Scope::Admin,
            WebRole::Volunteer => Scope::Send,
        }
    }

    pub fn is_owner(&self) -> bool {
        self.role == WebRole::Owner
    }

    /// Refuses (403) unless the account is an owner; `what` names the page for the message.
    pub fn require_owner(&self, what: &str) -> Result<(), WebError> {
        if self.is_owner() {
            Ok(())
        } else {
            Err(WebError::Forbidden(format!(
                "{what} is for owners; {} is a volunteer",
                self.user
            )))
        }
    }

    /// Refuses (403) a form whose `csrf` field is missing or is not this session's token.
    pub fn check_csrf(&self, form: &Form) -> Result<(), WebError> {
        match form.get("csrf") {
            Some(t) if same(t, &self.csrf) => Ok(()),
            Some(_) => Err(WebError::Forbidden(
                "the form's security token is wrong; reload the page and try again".into(),
            )),
            None => Err(WebError::Forbidden(
                "the form has no security token; reload the page and try again".into(),
            )),
        }
    }
}

/// Constant-time equality of two tokens.
pub fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// 32 random bytes as URL-safe base64: session ids, CSRF and login tokens.
pub fn random_token() -> String {
    let mut raw = [0u8; 32];
    rand::fill(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// A `Set-Cookie` value for `name`; `max_age` `Some(0)` deletes it, `None` makes it last until
/// the browser closes (the server's idle expiry ends the session anyway).
pub fn set_cookie(name: &str, value: &str, secure: bool, max_age: Option<u64>) -> String {
    let mut c = format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/");
    if let Some(secs) = max_age {
        c.push_str(&format!("; Max-Age={secs}"));
    }
    if secure {
        c.push_str("; Secure");
    }
    c
}

/// When a session created at `created_at` and used at `now` expires: after the idle time, but
/// never past its maximum age.
pub fn expiry(created_at: i64, now: i64) -> i64 {
    now.saturating_add(IDLE_MS)
        .min(created_at.saturating_add(MAX_AGE_MS))
}

/// Finds the live session of a request's cookie, touching it when due.
pub async fn lookup(web: &Web, headers: &HeaderMap) -> Result<Option<Session>, WebError> {
    let Some(id) = cookie(headers, COOKIE) else {
        return Ok(None);
    };
    let id_hash = secret_hash(&id);
    let store = web.ctx.store.clone();
    let now = web.ctx.now();
    let found = {
        let h = id_hash.clone();
        tokio::task::spawn_blocking(move || {
            let row = store.web_session(&h, now)?;
            if let Some(r) = &row
                && now - r.last_seen >= TOUCH_EVERY_MS
            {
                store.web_session_touch(&h, now, expiry(r.created_at, now))?;
            }
            Ok::<_, crate::store::StoreError>(row)
        })
        .await
        .map_err(|e| WebError::Internal(format!("session lookup: {e}")))?
        .map_err(|e| WebError::Internal(format!("session lookup: {e}")))?
    };
    let Some(row) = found else { return Ok(None) };
    let Some(role) = WebRole::parse(&row.role) else {
        return Err(WebError::Internal(format!(
            "console user {:?} has unknown role {:?}",
            row.user, row.role
        )));
    };
    Ok(Some(Session {
        id_hash,
        user_id: row.user_id,
        user: row.user,
        role,
        csrf: row.csrf,
    }))
}

/// The session of a page request; without one the browser is sent to the login page.
pub struct Page(pub Session);

impl FromRequestParts<Web> for Page {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, WebError> {
        lookup(web, &parts.headers)
            .await?
            .map(Page)
            .ok_or(WebError::Login)
    }
}

/// The session of a script's request (event stream, JSON); without one: 401.
pub struct ApiSession(pub Session);

impl FromRequestParts<Web> for ApiSession {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, web: &Web) -> Result<Self, WebError> {
        lookup(web, &parts.headers)
            .await?
            .map(ApiSession)
            .ok_or(WebError::Unauthorized)
    }
}

/// A submitted `application/x-www-form-urlencoded` body, as name/value pairs.
#[derive(Debug, Default)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Form {
        Form(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    pub fn from_pairs(pairs: Vec<(String, String)>) -> Form {
        Form(pairs)
    }

    /// The first value of field `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The field's value trimmed, `None` when absent or blank.
    pub fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn cookies_are_found_among_others_and_flags_are_set() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; gsmgate_session=abc ; b=2"),
        );
        assert_eq!(cookie(&h, COOKIE).as_deref(), Some("abc"));
        assert_eq!(cookie(&h, "gsmgate"), None);
        let c = set_cookie(COOKIE, "v", true, None);
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Secure"] {
            assert!(c.contains(flag), "{c}");
        }
        assert!(!set_cookie(COOKIE, "v", false, Some(0)).contains("Secure"));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
        let f = Form::parse(b"csrf=x%2By&text=a+b&empty=");
        assert_eq!(f.get("csrf"), Some("x+y"));
        assert_eq!(f.get("text"), Some("a b"));
        assert_eq!(f.text("empty"), None);
    }

    /// A session used every 7 hours stays alive past its idle time, but not past a day.
    #[tokio::test]
    async fn a_used_session_still_ends_a_day_after_its_login() {
        use crate::commands::{Clock, Context};
        let base = Context::for_tests();
        let store = base.store.clone();
        let t0 = 1_700_000_000_000;
        let uid = store.web_user_add("ann", "owner", "x", t0).unwrap();
        let id = "the-cookie-value";
        let h = secret_hash(id);
        store
            .web_session_create(&h, uid, "csrf", t0, t0 + IDLE_MS)
            .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            axum::http::HeaderValue::from_str(&format!("{COOKIE}={id}")).unwrap(),
        );
        let at = |t: i64| {
            let ctx =
                Context::new(store.clone(), base.settings.clone()).with_clock(Clock::Fixed(t));
            std::sync::Arc::new(crate::web::WebState::new(
                std::sync::Arc::new(ctx),
                None,
                tokio_util::sync::CancellationToken::new(),
                false,
                std::time::Duration::from_secs(5),
            ))
        };
        let hour = 3600 * 1000;
        for t in [7, 14, 21] {
            let s = lookup(&at(t0 + t * hour), &headers).await.unwrap();
            assert!(s.is_some(), "alive at {t} h");
        }
        // 21 h + the idle time would be 29 h; the day ends it at 24 h.
        assert!(
            lookup(&at(t0 + 24 * hour - 1), &headers)
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            lookup(&at(t0 + 24 * hour), &headers)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(expiry(t0, t0), t0 + IDLE_MS);
        assert_eq!(expiry(t0, t0 + 20 * hour), t0 + MAX_AGE_MS);
    }
}
