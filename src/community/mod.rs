//! What a message means: opt-in, keywords (STOP / HELP / START and their synonyms), compliance
//! texts, onboarding questions, segments, broadcast preparation, member import/export and the
//! contact card.
//!
//! This module is a pure core: no I/O, no SQL, no tokio, no clock. Every decision is a function of
//! (message, member state, settings, `now`) that returns [`Action`]s, which the daemon's inbound
//! pipeline applies in order through `store` and `dispatch`, and which the command layer
//! (`commands`) uses for the admin verbs. Keeping it pure lets the rules be specified by table
//! tests and checked by property tests over random interleavings of joins, STOPs and broadcasts,
//! and keeps consent logic in one place instead of spread over the I/O paths. It must not touch
//! the database, the modems, the dispatch runner or the configuration file: it imports neither
//! `store`, `dispatch` nor `config`, and owns its settings ([`settings`]), which `config` fills.
//! [`MemberStatus`] and [`MessageKind`] are the crate's shared vocabulary (`crate::model`), the
//! same types `store` and `dispatch` use; the string values of [`ConsentEvent`] and [`Flag`] are
//! the ones `store` keeps in its columns.
//!
//! Layout: `member` (member view, E.164 numbers, time zones, tags), `keywords` (keyword matching
//! and the opt-out intent heuristic), `decide` (the inbound decision and the [`may_send`] guard),
//! `onboarding` (questions and answers), `templates`, `segment` (the `--segment` filter
//! language), `broadcast` (per-member rendering and the SMS preview), `csv` (RFC 4180 import and
//! export), `vcard` (the contact card and its port-9204 SMS), `owners` (owner commands by SMS), `settings`.

pub mod broadcast;
pub mod csv;
pub mod decide;
pub mod keywords;
pub mod member;
pub mod onboarding;
pub mod owners;
pub mod segment;
pub mod settings;
pub mod templates;
pub mod tz;
pub mod vcard;

pub use broadcast::{BroadcastOptions, Preview, PreviewTally, preview, render_for};
pub use csv::{
    ImportRow, RowError, export_members, export_members_with, parse_import, parse_import_with,
};
pub use decide::{
    Action, Decision, Flag, Inbound, MessageKind, NewMemberSpec, Rule, Standing, decide, may_send,
    stop_confirmation,
};
pub use keywords::{KeywordClass, classify, looks_like_opt_out, normalise_message};
pub use member::{
    ConsentEvent, MemberField, MemberStatus, MemberView, normalise_number, normalise_tags,
};
pub use segment::Segment;
pub use templates::{Vars, render};
pub use vcard::{CardMessage, card_message, vcard_submits, vcard_text};

/// Everything that can go wrong in the community core. Each variant names the input it rejects so
/// the admin client can print one clear line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommunityError {
    #[error("number {input:?}: {reason}")]
    InvalidNumber { input: String, reason: String },
    #[error("region {input:?}: not a two-letter ISO 3166 region code of the numbering plan")]
    InvalidRegion { input: String },
    #[error("tag {input:?}: {reason}")]
    InvalidTag { input: String, reason: String },
    #[error("time zone {input:?}: not in the tz database")]
    InvalidTimeZone { input: String },
    #[error("segment {input:?}: {reason}")]
    Segment { input: String, reason: String },
    #[error("template: {reason}")]
    Template { reason: String },
    #[error("csv line {line}: {reason}")]
    Csv { line: usize, reason: String },
    #[error("{} invalid row(s): {}", .0.len(), csv::join_errors(.0))]
    Import(Vec<RowError>),
    #[error("contact card: {reason}")]
    Card { reason: String },
    #[error("pdu: {0}")]
    Pdu(String),
}
