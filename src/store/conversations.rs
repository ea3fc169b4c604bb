//! Conversations: the thread for a number is every inbound message from it plus every outbox
//! row to it, in time order. Threads are keyed by the member's number (`messages_in.thread`,
//! `outbox.to_number`), so callers must store numbers in one normal form (E.164).

use crate::store::db::params;

use super::{OutboxState, Result, SqlContext, Store, flag};

/// Which way a conversation entry went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    In,
    Out,
}

/// One entry of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConversationEntry {
    pub direction: Direction,
    /// `messages_in.id` for `In`, `outbox.id` for `Out`.
    pub id: i64,
    pub text: String,
    /// Received time (in), or sent time falling back to creation time (out).
    pub at: i64,
    /// Inbound only.
    pub read: Option<bool>,
    /// Outbound only.
    pub state: Option<OutboxState>,
}

/// A thread in the inbox overview.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ThreadSummary {
    pub number: String,
    pub last_at: i64,
    pub unread: u64,
}

impl Store {
    /// The last `limit` entries of the conversation with `number`, oldest first.
    pub fn conversation(&self, number: &str, limit: u32) -> Result<Vec<ConversationEntry>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT * FROM (
                     SELECT 0 AS dir, id, text, received_at AS at, read, NULL AS state
                     FROM messages_in WHERE thread = ?1
                     UNION ALL
                     SELECT 1, id, text, coalesce(sent_at, created_at), NULL, state
                     FROM outbox WHERE to_number = ?1
                     ORDER BY at DESC, dir DESC, id DESC LIMIT ?2) AS recent
                 ORDER BY at, dir, id",
            )
            .ctx("reading a conversation")?;
        st.query_map(params![number, limit], |r| {
            let dir: i64 = r.get(0)?;
            let read: Option<i64> = r.get(4)?;
            Ok(ConversationEntry {
                direction: if dir == 0 {
                    Direction::In
                } else {
                    Direction::Out
                },
                id: r.get(1)?,
                text: r.get(2)?,
                at: r.get(3)?,
                read: read.map(flag),
                state: r.get(5)?,
            })
        })
        .ctx("reading a conversation")?
        .collect::<crate::store::db::DbResult<_>>()
        .ctx("reading a conversation")
    }

    /// Threads with inbound messages, most recent first, with their unread counts.
    pub fn threads(&self, limit: u32) -> Result<Vec<ThreadSummary>> {
        let conn = self.conn();
        let mut st = conn
            .prepare_cached(
                "SELECT thread, max(received_at), count(*) FILTER (WHERE read = 0)
                 FROM messages_in GROUP BY thread ORDER BY max(received_at) DESC LIMIT ?1",
            )
            .ctx("listing threads")?;
        st.query_map(params![limit], |r| {
            Ok(ThreadSummary {
                number: r.get(0)?,
                last_at: r.get(1)?,
                unread: r.get::<i64>(2)?.max(0) as u64,
            })
        })
        .ctx("listing threads")?
        .collect::<crate::store::db::DbResult<_>>()
        .ctx("listing threads")
    }

    /// Unread inbound messages in one thread.
    pub fn unread_count(&self, number: &str) -> Result<u64> {
        self.conn()
            .prepare_cached("SELECT count(*) FROM messages_in WHERE thread = ?1 AND read = 0")
            .and_then(|mut st| st.query_row(params![number], |r| r.get::<i64>(0)))
            .ctx("counting unread messages")
            .map(|n| n.max(0) as u64)
    }

    /// Marks every message in a thread read. Returns how many changed.
    pub fn mark_thread_read(&self, number: &str) -> Result<usize> {
        self.write("marking a thread read", |tx| {
            tx.execute(
                "UPDATE messages_in SET read = 1 WHERE thread = ?1 AND read = 0",
                params![number],
            )
            .ctx("marking a thread read")
        })
    }
}

#[cfg(test)]
crate::store::testing::backend_tests! {
mod tests {
    use super::*;
    use crate::store::{ClaimRoute, MessageKind, NewOutbox, NewSingle};

    fn inbound(s: &Store, from: &str, text: &str, at: i64) -> i64 {
        s.store_single(&NewSingle {
            modem: "m0".into(),
            sender: from.into(),
            text: text.into(),
            scts: at.to_string(),
            pdu_hex: None,
            received_at: at,
        })
        .unwrap()
        .id()
    }

    #[test]
    fn thread_interleaves_in_and_out_and_tracks_unread() {
        let s = fresh();
        let a = "+15550001";
        inbound(&s, a, "JOIN", 1_000);
        let reply = s
            .enqueue(&NewOutbox::new(a, "Welcome", MessageKind::Reply, 1_100))
            .unwrap();
        inbound(&s, a, "Paris", 2_000);
        inbound(&s, "+15550002", "hello", 2_500);
        s.enqueue(&NewOutbox::new(a, "Thanks", MessageKind::Reply, 3_000))
            .unwrap();
        // The welcome goes out at 1_500 (claim + send), so it sorts by its sent time.
        let row = s
            .claim_next_routed("m0", 1_500, &ClaimRoute::default())
            .unwrap()
            .unwrap();
        assert_eq!(row.id, reply);
        s.mark_sent(reply, 1_500).unwrap();

        let conv = s.conversation(a, 50).unwrap();
        let texts: Vec<_> = conv
            .iter()
            .map(|e| (e.direction, e.text.as_str(), e.at))
            .collect();
        assert_eq!(
            texts,
            [
                (Direction::In, "JOIN", 1_000),
                (Direction::Out, "Welcome", 1_500),
                (Direction::In, "Paris", 2_000),
                (Direction::Out, "Thanks", 3_000),
            ]
        );
        assert_eq!(conv[1].state, Some(OutboxState::Sent));
        assert_eq!(conv[0].read, Some(false));
        // The limit keeps the most recent entries.
        let last2 = s.conversation(a, 2).unwrap();
        assert_eq!(
            last2.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(),
            ["Paris", "Thanks"]
        );

        let threads = s.threads(10).unwrap();
        assert_eq!(threads[0].number, "+15550002");
        assert_eq!((threads[1].number.as_str(), threads[1].unread), (a, 2));
        assert_eq!(s.unread_count(a).unwrap(), 2);
        assert_eq!(s.mark_thread_read(a).unwrap(), 2);
        assert_eq!(s.unread_count(a).unwrap(), 0);
        assert_eq!(s.unread_count("+15550002").unwrap(), 1);
    }
}
}
