//! Wire types of the web console's account commands: `web_users_add`, `web_users_list`,
//! `web_users_passwd`, `web_users_remove` (docs/admin-protocol.md, docs/web.md).
//!
//! Shapes only; what the commands do is `commands::web`, and they are local-only
//! (`commands::access::local_only`): a console session, even an owner's, cannot mint or remove
//! accounts. A password crosses the admin socket once, in the add or passwd request, which only
//! the gateway's own users can open; it is never in a reply.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a console account may do: `owner` runs the gateway (admin scope), `volunteer` reads and
/// answers conversations (send scope).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebRole {
    Owner,
    Volunteer,
}

impl WebRole {
    pub fn as_str(self) -> &'static str {
        match self {
            WebRole::Owner => "owner",
            WebRole::Volunteer => "volunteer",
        }
    }

    pub fn parse(s: &str) -> Option<WebRole> {
        [WebRole::Owner, WebRole::Volunteer]
            .into_iter()
            .find(|r| r.as_str() == s)
    }
}

impl fmt::Display for WebRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `web_users_add`: a new console account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebUserAddArgs {
    /// The login name: `[A-Za-z0-9_.-]`, 1–64 characters.
    pub name: String,
    pub role: WebRole,
    /// At least 10 characters; stored only as an Argon2id hash.
    pub password: String,
}

/// `web_users_passwd`: a new password for an account; its sessions end.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebUserPasswdArgs {
    pub name: String,
    pub password: String,
}

/// `web_users_remove`: the account and its sessions go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebUserNameArgs {
    pub name: String,
}

/// One console account (never its password or hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebUserItem {
    pub name: String,
    pub role: WebRole,
    pub created_at: String,
    /// Sessions not yet expired.
    pub sessions: u64,
}

/// `web_users_passwd` / `web_users_remove` → what changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebUserChanged {
    pub name: String,
    /// Sessions ended by the change.
    pub sessions_ended: u64,
}
