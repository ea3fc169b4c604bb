//! Wire types of the API-token commands: `tokens_create`, `tokens_list`, `tokens_revoke`
//! (docs/http-api.md, "Tokens"), and the [`Scope`] words every transport shares.
//!
//! Shapes only; what the commands do is `commands::tokens`, what each scope allows is
//! `commands::access`. A token's secret crosses the wire exactly once, in [`TokenCreated`].

use std::fmt;

use serde::{Deserialize, Serialize};

/// What a caller may do. Ordered: each scope includes the ones before it (`send` may read, `admin`
/// may do everything an API caller may).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Everything that only reads: status, modems, inbox, conversations, members, broadcasts,
    /// calls, voicemail, events, metrics.
    Read,
    /// `read`, plus sending one text (`POST /api/v1/messages`).
    Send,
    /// Everything: members, broadcasts, voicemail deletion, the greeting.
    Admin,
}

impl Scope {
    pub const ALL: &'static [Scope] = &[Scope::Read, Scope::Send, Scope::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Send => "send",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.iter().copied().find(|c| c.as_str() == s)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `tokens_create`: a new API token called `name` with `scope`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensCreateArgs {
    /// Shown in logs with every API call made with the token: `[A-Za-z0-9_.-]`, 1–64 characters.
    pub name: String,
    pub scope: Scope,
}

/// `tokens_revoke`: the active token called `name` stops working at once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensRevokeArgs {
    pub name: String,
}

/// `tokens_create` → the token, with its secret (shown this once; only a hash is kept).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenCreated {
    pub name: String,
    pub scope: Scope,
    /// The bearer secret for `Authorization: Bearer …`.
    pub secret: String,
    pub created_at: String,
}

/// One token in `tokens_list` (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenItem {
    pub name: String,
    pub scope: Scope,
    pub created_at: String,
    /// Last API call with it, to the minute; `null` if never used.
    pub last_used_at: Option<String>,
    /// When it was revoked; `null` while active.
    pub revoked_at: Option<String>,
}
