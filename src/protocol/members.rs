//! Wire types of the member commands: list (a page of a segment), add, remove, tag, import (CSV,
//! all rows or none, with a dry run) and export.
//!
//! Shapes only; what the commands do is `commands::members`. A member's `joined_at` is an RFC 3339
//! UTC string; `status` is `pending_confirmation`, `active` or `opted_out`.

use serde::{Deserialize, Serialize};

use super::serde_helpers::{is_false, null_as_empty, null_as_false};

/// `members_list`: members matching a segment, by join time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembersListArgs {
    /// A `--segment` filter (docs/community.md); absent = everyone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// Page size, default [`DEFAULT_LIST_LIMIT`], at most [`MAX_LIST_LIMIT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u32>,
}

/// `members_add`: one member, added as active.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberAddArgs {
    /// Any form the default region reads (`(312) 555-0101`), or international.
    pub number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_empty"
    )]
    pub tags: Vec<String>,
    /// An IANA zone; absent = derived from the number and city.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// `members_get`: one member by number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberGetArgs {
    pub number: String,
}

/// `members_update`: change some fields of one member. An absent field is left as it is; an
/// empty string clears a text field; `tags` replaces the whole tag set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberUpdateArgs {
    pub number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// `members_remove`: one member by number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRemoveArgs {
    pub number: String,
}

/// `members_tag`: add tags to a member, or remove them with `remove`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberTagArgs {
    pub number: String,
    pub tags: Vec<String>,
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "null_as_false"
    )]
    pub remove: bool,
}

/// `members_import`: CSV text (the file's content, read by the client).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembersImportArgs {
    pub csv: String,
    /// Check every row, import nothing.
    #[serde(
        default,
        skip_serializing_if = "is_false",
        deserialize_with = "null_as_false"
    )]
    pub dry_run: bool,
}

/// `members_export`: CSV of the members matching a segment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembersExportArgs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// Paged export: at most this many members (up to 10,000); absent = all in one reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Paged export: the `next` of the previous page (an opaque cursor); absent = the first
    /// page. Pages after the first carry no CSV header.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

/// One member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberItem {
    pub number: String,
    pub name: Option<String>,
    pub city: Option<String>,
    pub region: Option<String>,
    /// IANA zone; `null` = the configured default zone applies.
    pub time_zone: Option<String>,
    pub tags: Vec<String>,
    /// `active`, `pending_confirmation` or `opted_out`.
    pub status: String,
    pub home_modem: Option<String>,
    /// RFC 3339 UTC.
    pub joined_at: String,
    /// Why `home_modem` is the home: `geomatch` (its number has the member's area code),
    /// `country` (its country code), `balance`, `sticky` (the modem they texted to join),
    /// `failover`; `null` when unknown (members from before this was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub home_reason: Option<String>,
    /// Custom fields (configured onboarding answers such as `shirt_size`), by name.
    #[serde(default)]
    pub fields: std::collections::BTreeMap<String, String>,
    /// When and how the number opted out; present only while it is opted out. Additive: older
    /// daemons leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opt_out: Option<OptOutItem>,
}

/// When and how a number opted out (its latest `opted_out` consent event).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct OptOutItem {
    /// RFC 3339 UTC.
    pub at: String,
    /// `sms` (the member texted a stop keyword), `cli` (an operator's decision, e.g. a review)
    /// or `import`.
    pub source: String,
    /// The keyword or text that caused it, when recorded.
    pub detail: Option<String>,
}

/// `members_list` → a page and the segment's size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MembersPage {
    /// Members matching the segment (all pages).
    pub total: u64,
    pub members: Vec<MemberItem>,
}

/// `members_remove` → the number removed (normalised).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MemberRemoved {
    pub number: String,
}

/// `members_import` → what was imported, or every bad row (then nothing was imported).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImportResult {
    pub dry_run: bool,
    /// Rows stored (0 on a dry run or when any row is bad).
    pub imported: usize,
    /// Rows that are (or would be) stored `opted_out` because the number texted STOP.
    pub suppressed: usize,
    /// Valid rows in the file.
    pub valid: usize,
    /// Every bad row, spreadsheet-numbered (header = row 1). Non-empty = nothing imported.
    pub errors: Vec<RowError>,
}

/// `members_export` → CSV in the import format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportData {
    pub count: usize,
    pub csv: String,
    /// Paged export: the cursor of the next page (`after`); `null` when this was the last.
    #[serde(default)]
    pub next: Option<String>,
}

/// One bad import row: its number in the file (header = row 1) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RowError {
    pub row: usize,
    pub message: String,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "row {}: {}", self.row, self.message)
    }
}

/// One number in `members_review`: texts that read like an opt-out but are no keyword ("Stop
/// please"), which nobody has reviewed yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewItem {
    pub number: String,
    /// The member's status, `null` for a number that is no member.
    pub status: Option<String>,
    /// Unreviewed flagged messages from the number.
    pub messages: u32,
    /// The newest of them: inbox id, text and RFC 3339 UTC reception time.
    pub last_id: i64,
    pub last_text: String,
    pub last_at: String,
}

/// `members_review_resolve`: the decision about one number's possible opt-outs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewResolveArgs {
    pub number: String,
    pub action: ReviewAction,
}

/// `opt_out`: treat the texts as a STOP (the number is suppressed, queued messages are cancelled,
/// the stop confirmation is sent, the consent log records source `cli`). `keep`: not an opt-out;
/// the texts leave the review list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReviewAction {
    OptOut,
    Keep,
}

/// `members_review_resolve` → what was done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewResolved {
    /// The number, normalised.
    pub number: String,
    pub action: ReviewAction,
    /// Flagged messages marked reviewed.
    pub messages: usize,
    /// Queued messages cancelled by the opt-out (0 for `keep`).
    pub cancelled: usize,
    /// Outbox id of the stop confirmation, for `opt_out`.
    pub confirmation: Option<i64>,
}
