//! Logging in and out: `GET`/`POST /login`, `POST /logout` (this session), `POST
//! /logout-everywhere` (every session of the account, e.g. after a lost phone).
//!
//! The password is checked by `commands::web::authenticate` (Argon2id, constant time, the same
//! time for unknown names) on the blocking pool; the throttle is asked first, so a throttled
//! login costs no hashing. A failed login says only that the name or password is wrong.

use std::net::SocketAddr;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use tracing::{info, warn};

use super::layout::{bare, html};
use super::session::{
    COOKIE, Form, IDLE_MS, LOGIN_COOKIE, Page, cookie, lookup, random_token, same, set_cookie,
};
use super::{Web, WebError};
use crate::commands::tokens::secret_hash;
use crate::commands::web::authenticate;

/// How long the login form's double-submit cookie lives.
const LOGIN_COOKIE_SECS: u64 = 3600;

fn login_page(token: &str, error: Option<&str>, username: &str) -> Markup {
    bare(
        "Log in",
        html! {
            @if let Some(e) = error {
                p.error role="alert" { (e) }
            }
            form id="login" method="post" action="/login" {
                input type="hidden" name="csrf" value=(token);
                p {
                    label for="username" { "Name" }
                    input id="username" name="username" type="text" autocomplete="username"
                        required value=(username);
                }
                p {
                    label for="password" { "Password" }
                    input id="password" name="password" type="password"
                        autocomplete="current-password" required;
                }
                p { button id="login-submit" type="submit" { "Log in" } }
            }
        },
    )
}

/// The login form with a fresh double-submit token (cookie + hidden field).
fn login_response(web: &Web, status: StatusCode, error: Option<&str>, username: &str) -> Response {
    let token = random_token();
    let mut r = (status, html(login_page(&token, error, username))).into_response();
    if let Ok(v) = HeaderValue::from_str(&set_cookie(
        LOGIN_COOKIE,
        &token,
        web.secure,
        Some(LOGIN_COOKIE_SECS),
    )) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// `GET /login`; an already logged-in browser goes to the dashboard.
pub async fn form(State(web): State<Web>, headers: HeaderMap) -> Result<Response, WebError> {
    if lookup(&web, &headers).await?.is_some() {
        return Ok(redirect("/"));
    }
    Ok(login_response(&web, StatusCode::OK, None, ""))
}

/// A 303 to `to` (after a POST, so a reload does not post again).
pub fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// `POST /login`.
pub async fn submit(
    State(web): State<Web>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    let expected = cookie(&headers, LOGIN_COOKIE);
    match (form.get("csrf"), expected.as_deref()) {
        (Some(given), Some(exp)) if same(given, exp) => {}
        _ => {
            return Err(WebError::Forbidden(
                "the login form's security token is missing or stale; reload the login page".into(),
            ));
        }
    }
    let username = form.get("username").unwrap_or("").trim().to_string();
    let password = form.get("password").unwrap_or("").to_string();
    let ip = Some(peer.ip());
    if let Err(wait) = web.throttle.check(&username, ip, Instant::now()) {
        warn!(user = %username, client = %peer.ip(), "console login throttled");
        return Err(WebError::Throttled(wait));
    }
    let store = web.ctx.store.clone();
    let name = username.clone();
    let account = tokio::task::spawn_blocking(move || authenticate(&store, &name, &password))
        .await
        .map_err(|e| WebError::Internal(format!("login: {e}")))??;
    let Some(account) = account else {
        web.throttle.failed(&username, ip, Instant::now());
        warn!(user = %username, client = %peer.ip(), "console login failed");
        return Ok(login_response(
            &web,
            StatusCode::UNAUTHORIZED,
            Some("That name and password do not match an account."),
            &username,
        ));
    };
    web.throttle.succeeded(&username);
    let id = random_token();
    let csrf = random_token();
    let now = web.ctx.now();
    let store = web.ctx.store.clone();
    let (id_hash, user_id) = (secret_hash(&id), account.id);
    tokio::task::spawn_blocking(move || {
        store.web_session_create(&id_hash, user_id, &csrf, now, now + IDLE_MS)
    })
    .await
    .map_err(|e| WebError::Internal(format!("login: {e}")))?
    .map_err(|e| WebError::Internal(format!("creating a session: {e}")))?;
    info!(user = %account.name, role = %account.role, client = %peer.ip(), "console login");
    let mut r = redirect("/");
    let h = r.headers_mut();
    for c in [
        set_cookie(COOKIE, &id, web.secure, None),
        set_cookie(LOGIN_COOKIE, "", web.secure, Some(0)),
    ] {
        if let Ok(v) = HeaderValue::from_str(&c) {
            h.append(header::SET_COOKIE, v);
        }
    }
    Ok(r)
}

fn logged_out(web: &Web) -> Response {
    let mut r = redirect("/login");
    if let Ok(v) = HeaderValue::from_str(&set_cookie(COOKIE, "", web.secure, Some(0))) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

/// `POST /logout`: this session ends.
pub async fn logout(
    State(web): State<Web>,
    Page(s): Page,
    body: Bytes,
) -> Result<Response, WebError> {
    s.check_csrf(&Form::parse(&body))?;
    let store = web.ctx.store.clone();
    let h = s.id_hash.clone();
    tokio::task::spawn_blocking(move || store.web_session_delete(&h))
        .await
        .map_err(|e| WebError::Internal(format!("logout: {e}")))?
        .map_err(|e| WebError::Internal(format!("ending a session: {e}")))?;
    info!(user = %s.user, "console logout");
    Ok(logged_out(&web))
}

/// `POST /logout-everywhere`: every session of the account ends, this one included.
pub async fn logout_everywhere(
    State(web): State<Web>,
    Page(s): Page,
    body: Bytes,
) -> Result<Response, WebError> {
    s.check_csrf(&Form::parse(&body))?;
    let store = web.ctx.store.clone();
    let user_id = s.user_id;
    let n = tokio::task::spawn_blocking(move || store.web_sessions_delete_user(user_id))
        .await
        .map_err(|e| WebError::Internal(format!("logout: {e}")))?
        .map_err(|e| WebError::Internal(format!("ending sessions: {e}")))?;
    info!(user = %s.user, sessions = n, "console logout everywhere");
    web.audit(&s, "logout_everywhere", format!("{n} sessions ended"))
        .await;
    Ok(logged_out(&web))
}
