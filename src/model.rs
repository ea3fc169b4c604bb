//! The crate's shared vocabulary: why a message is sent ([`MessageKind`]) and where a member
//! stands ([`MemberStatus`]), each with its one spelling (the value the database keeps and the
//! admin protocol shows) and, for a kind, its default priority.
//!
//! It sits below every other layer and imports nothing from the crate: `store` keeps these values
//! in its columns, `dispatch` schedules and retries by kind, `community` decides with them, and
//! all three name the same type, so no layer imports another for a name and nothing converts
//! through a string. It must not grow logic beyond names, priorities and parsing: what to *do*
//! with a kind or a status belongs to the layer that does it (retry and in-doubt policy in
//! `dispatch`, consent in `community`, the claim order in `store`'s SQL). It knows no SQL either:
//! `store` implements the column conversions for these types itself.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Why a message is sent (the store's `outbox.kind`). The order of the variants is the strict
/// priority order, highest first, so sorting kinds sorts them by [`MessageKind::default_priority`].
///
/// The one confirmation of a STOP is a `Compliance` message like the others: what sets it apart
/// is a consent rule (community's `Action::ConfirmOptOut`, and the store letting a compliance row
/// written at or after the opt-out through), not how it is scheduled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MessageKind {
    /// STOP/HELP/START confirmations, the welcome and the compliance line.
    Compliance,
    /// An automatic answer to a member's text (contact card, onboarding questions, a voicemail
    /// call-back text).
    Reply,
    /// A one-to-one message from the leader (`send`, conversation).
    Direct,
    /// One recipient's copy of a broadcast.
    Bulk,
}

impl MessageKind {
    /// Every kind, highest priority first.
    pub const ALL: [MessageKind; 4] = [
        MessageKind::Compliance,
        MessageKind::Reply,
        MessageKind::Direct,
        MessageKind::Bulk,
    ];

    /// The stored (and wire) name.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Compliance => "compliance",
            MessageKind::Reply => "reply",
            MessageKind::Direct => "direct",
            MessageKind::Bulk => "bulk",
        }
    }

    /// The kind with this stored name, exactly as [`MessageKind::as_str`] spells it.
    pub fn parse(s: &str) -> Option<MessageKind> {
        MessageKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The priority a row of this kind gets unless the caller sets one (higher goes first):
    /// compliance 300, reply 200, direct 150, bulk 100. The gaps leave room for a caller's own
    /// priority between two kinds.
    pub fn default_priority(self) -> i64 {
        match self {
            MessageKind::Compliance => 300,
            MessageKind::Reply => 200,
            MessageKind::Direct => 150,
            MessageKind::Bulk => 100,
        }
    }
}

impl fmt::Display for MessageKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a member stands (the store's `members.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberStatus {
    /// Double opt-in: joined, has not yet confirmed with a start keyword.
    PendingConfirmation,
    Active,
    OptedOut,
}

impl MemberStatus {
    pub const ALL: [MemberStatus; 3] = [
        MemberStatus::PendingConfirmation,
        MemberStatus::Active,
        MemberStatus::OptedOut,
    ];

    /// The stored (and wire) name.
    pub fn as_str(self) -> &'static str {
        match self {
            MemberStatus::PendingConfirmation => "pending_confirmation",
            MemberStatus::Active => "active",
            MemberStatus::OptedOut => "opted_out",
        }
    }

    /// The status with this stored name, exactly as [`MemberStatus::as_str`] spells it. What a
    /// person types goes through [`FromStr`] instead, which is forgiving.
    pub fn parse(s: &str) -> Option<MemberStatus> {
        MemberStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for MemberStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MemberStatus {
    type Err = String;

    /// A status as a person types it (the segment language, the CLI): the stored names in any
    /// case and with spaces around, plus `pending` as a short form.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "pending" => Ok(MemberStatus::PendingConfirmation),
            other => MemberStatus::parse(other).ok_or_else(|| {
                format!("unknown status {other:?} (known: pending_confirmation, active, opted_out)")
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_by_name_and_order_by_priority() {
        for k in MessageKind::ALL {
            assert_eq!(MessageKind::parse(k.as_str()), Some(k));
            assert_eq!(serde_json::to_string(&k).unwrap(), format!("\"{k}\""));
        }
        assert_eq!(MessageKind::parse("urgent"), None);
        assert_eq!(MessageKind::parse("Bulk"), None);
        let mut by_prio = MessageKind::ALL;
        by_prio.sort_by_key(|k| std::cmp::Reverse(k.default_priority()));
        assert_eq!(by_prio, MessageKind::ALL);
        let mut sorted = MessageKind::ALL;
        sorted.sort();
        assert_eq!(sorted, MessageKind::ALL);
    }

    #[test]
    fn statuses_round_trip_and_typed_input_is_forgiving() {
        for s in MemberStatus::ALL {
            assert_eq!(MemberStatus::parse(s.as_str()), Some(s));
            assert_eq!(s.as_str().parse::<MemberStatus>(), Ok(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{s}\""));
        }
        assert_eq!(
            " Pending ".parse::<MemberStatus>(),
            Ok(MemberStatus::PendingConfirmation)
        );
        assert_eq!(MemberStatus::parse("pending"), None);
        assert!("gone".parse::<MemberStatus>().is_err());
    }
}
