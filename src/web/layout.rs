//! The page frame every console page shares: head, navigation (with the logout form), one
//! `<main>` with one `<h1>`, and the small helpers pages use (URL path escaping of numbers).
//!
//! The element ids here are part of the contract the browser tests rely on (docs/web.md,
//! "Element ids the tests rely on"); renaming one breaks them. `maud` escapes every
//! interpolated value; nothing here uses `PreEscaped` on data.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::session::Session;

/// Which navigation entry a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Dashboard,
    Conversations,
    Broadcast,
    Members,
    Calls,
    Modems,
}

/// A rendered page as an HTML response.
pub fn html(page: Markup) -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page.into_string(),
    )
        .into_response()
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · gsmgate" }
            link rel="stylesheet" href="/static/console.css";
            script src="/static/console.js" defer {}
        }
    }
}

fn nav_link(id: &str, href: &str, label: &str, here: bool) -> Markup {
    html! {
        li {
            @if here {
                a id=(id) href=(href) aria-current="page" { (label) }
            } @else {
                a id=(id) href=(href) { (label) }
            }
        }
    }
}

/// A whole page for the session's account.
pub fn page(s: &Session, nav: Nav, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header {
                    nav aria-label="Console" {
                        ul {
                            (nav_link("nav-dashboard", "/", "Dashboard", nav == Nav::Dashboard))
                            (nav_link("nav-conversations", "/conversations", "Conversations",
                                nav == Nav::Conversations))
                            @if s.is_owner() {
                                (nav_link("nav-broadcast", "/broadcast", "Broadcast",
                                    nav == Nav::Broadcast))
                            }
                            (nav_link("nav-members", "/members", "Members", nav == Nav::Members))
                            (nav_link("nav-calls", "/calls", "Calls", nav == Nav::Calls))
                            (nav_link("nav-modems", "/modems", "Modems", nav == Nav::Modems))
                        }
                        form id="logout" method="post" action="/logout" {
                            (csrf(s))
                            span.who { (s.user) " (" (s.role) ")" }
                            " "
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page without an account (login, errors before a session).
pub fn bare(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// An error page: what failed and a way on.
pub fn error_page(title: &str, message: &str) -> Markup {
    bare(
        title,
        html! {
            p.error role="alert" { (message) }
            p { a href="/" { "Back to the console" } }
        },
    )
}

/// The hidden CSRF field every form carries.
pub fn csrf(s: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf); }
}

/// A phone number as one URL path segment (`+` as `%2B`; numbers hold nothing else that needs
/// escaping, but anything else is escaped too).
pub fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A notice line after an action (`?done=…`), or nothing.
pub fn notice(text: Option<&str>) -> Markup {
    html! {
        @if let Some(t) = text {
            p.notice role="status" { (t) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_become_one_path_segment() {
        assert_eq!(path_segment("+15551234567"), "%2B15551234567");
        assert_eq!(path_segment("a/b?c"), "a%2Fb%3Fc");
    }
}
