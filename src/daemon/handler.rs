//! The daemon's answer to each admin command: the [`admin::Handler`](crate::admin::Handler) the
//! admin server calls for everything except `ping`, `version` and `watch`.
//!
//! It reads and writes through the store (on the blocking pool), reads modem health from the
//! actors' status snapshots, and wakes the dispatch runner after an enqueue. It never sends
//! anything itself: `send` only stores the message (durably, before the reply: the guarantee
//! "accepted means in SQLite") and the runner takes it from there.
//!
//! Refusals are decided here, in this order, so the error a user sees is the most useful one:
//! an unparsable number (`invalid_number`), an opted-out number (`opted_out`, STOP is absolute),
//! an unknown modem (`not_found`), an empty or over-long text (`invalid_request`).

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::broadcast;
use tracing::{error, info};

use super::events::EventBus;
use super::inbound::registration_word;
use super::voice::VoiceAdmin;
use super::{DaemonError, Dispatch, now_ms, with_store};
use crate::admin::protocol::{
    ConversationArgs, ConversationItem, Direction, InboxArgs, InboxItem, ModemInfo, SendAccepted,
    SendArgs, StatusData,
};
use crate::admin::{ErrorBody, ErrorCode, Event, Handler, Peer, Reply, Request};
use crate::community;
use crate::community::service;
use crate::config::{self, Config};
use crate::modem::{ModemHandle, ModemState};
use crate::pdu;
use crate::store::{self, BroadcastState, MessageKind, NewOutbox, OutboxState, Store};

/// Page size when a request gives no `limit`.
const DEFAULT_LIMIT: u32 = 50;
/// Largest page served.
const MAX_LIMIT: u32 = 1000;
/// Inbound messages scanned for the "received today" counts.
const TODAY_SCAN: u32 = 5000;
/// Most SMS parts one message may take (the concatenation header counts to 255).
const MAX_PARTS: usize = 255;

/// The gateway's admin handler.
pub struct GatewayHandler {
    store: Store,
    cfg: Arc<Config>,
    bus: EventBus,
    dispatch: Dispatch,
    modems: Vec<(config::ModemConfig, ModemHandle)>,
    started: Instant,
    voice: VoiceAdmin,
}

pub(crate) fn internal(e: DaemonError) -> ErrorBody {
    error!(error = %e, "admin request failed");
    ErrorBody::new(
        ErrorCode::Internal,
        format!("the daemon could not answer: {e}"),
    )
}

/// RFC 3339 (UTC) for unix milliseconds.
pub(crate) fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms)
        .map(|t| t.to_string())
        .unwrap_or_else(|_| ms.to_string())
}

/// Unix milliseconds of the start of today, local time.
fn start_of_today_ms() -> i64 {
    jiff::ZonedDateTime::now()
        .start_of_day()
        .map(|z| z.timestamp().as_millisecond())
        .unwrap_or_else(|_| now_ms() - now_ms().rem_euclid(86_400_000))
}

/// The word the protocol uses for an outbox state.
fn state_word(s: OutboxState) -> &'static str {
    match s {
        OutboxState::Claimed => "sending",
        other => other.as_str(),
    }
}

impl GatewayHandler {
    pub fn new(
        store: Store,
        cfg: Arc<Config>,
        bus: EventBus,
        dispatch: Dispatch,
        modems: Vec<(config::ModemConfig, ModemHandle)>,
        started: Instant,
        voice: VoiceAdmin,
    ) -> GatewayHandler {
        GatewayHandler {
            store,
            cfg,
            bus,
            dispatch,
            modems,
            started,
            voice,
        }
    }

    async fn status(&self) -> Result<Reply, ErrorBody> {
        let since = start_of_today_ms();
        let names: Vec<String> = self.modems.iter().map(|(m, _)| m.name.clone()).collect();
        let (counts, members, broadcasts, sent_today, received_today) =
            with_store(&self.store, "reading the status", move |s| {
                let counts = s.state_counts()?;
                let members = s.member_counts()?;
                let broadcasts = s
                    .broadcasts(MAX_LIMIT)?
                    .into_iter()
                    .filter(|b| {
                        matches!(b.state, BroadcastState::Running | BroadcastState::Scheduled)
                    })
                    .count();
                let mut sent = 0u64;
                for n in &names {
                    sent += u64::from(s.sends_since(n, since)?);
                }
                let received = s
                    .inbox(false, TODAY_SCAN)?
                    .into_iter()
                    .filter(|m| m.received_at >= since)
                    .count();
                Ok((counts, members, broadcasts, sent, received))
            })
            .await
            .map_err(internal)?;
        let ready = self
            .modems
            .iter()
            .filter(|(_, h)| h.status().state == ModemState::Ready)
            .count();
        Ok(Reply::Status(StatusData {
            version: env!("CARGO_PKG_VERSION").to_string(),
            uptime_secs: self.started.elapsed().as_secs(),
            modems_total: u32::try_from(self.cfg.modems.len()).unwrap_or(u32::MAX),
            modems_ready: u32::try_from(ready).unwrap_or(u32::MAX),
            outbox_queued: counts.queued,
            outbox_in_doubt: counts.in_doubt,
            sent_today,
            received_today: received_today as u64,
            members: members.active + members.pending_confirmation,
            broadcasts_active: u32::try_from(broadcasts).unwrap_or(u32::MAX),
        }))
    }

    async fn modems(&self) -> Result<Reply, ErrorBody> {
        let since = start_of_today_ms();
        let names: Vec<String> = self.cfg.modems.iter().map(|m| m.name.clone()).collect();
        let (sent, received) = with_store(&self.store, "reading modem counts", move |s| {
            let mut sent = Vec::new();
            for n in &names {
                sent.push((n.clone(), u64::from(s.sends_since(n, since)?)));
            }
            let received: Vec<String> = s
                .inbox(false, TODAY_SCAN)?
                .into_iter()
                .filter(|m| m.received_at >= since)
                .map(|m| m.modem)
                .collect();
            Ok((sent, received))
        })
        .await
        .map_err(internal)?;
        let mut out = Vec::new();
        for mc in &self.cfg.modems {
            let sent_today = sent
                .iter()
                .find(|(n, _)| *n == mc.name)
                .map(|(_, c)| *c)
                .unwrap_or(0);
            let received_today = received.iter().filter(|m| **m == mc.name).count() as u64;
            let handle = self.modems.iter().find(|(m, _)| m.name == mc.name);
            let info = match handle {
                Some((_, h)) => {
                    let st = h.status();
                    ModemInfo {
                        name: mc.name.clone(),
                        profile: mc.profile.as_str().to_string(),
                        port: mc.port.display().to_string(),
                        state: st.state.name().to_string(),
                        registration: st
                            .registration
                            .map(registration_word)
                            .unwrap_or("unknown")
                            .to_string(),
                        signal_dbm: st.dbm.map(i32::from),
                        operator: st.operator.clone(),
                        iccid: st.identity.iccid.clone(),
                        imsi: st.identity.imsi.clone(),
                        imei: st.identity.imei.clone(),
                        last_error: match &st.state {
                            ModemState::OutOfPool { reason } => Some(reason.clone()),
                            _ => st.last_error.clone(),
                        },
                        sent_today,
                        received_today,
                        per_day: Some(mc.limits.per_day),
                    }
                }
                None => ModemInfo {
                    name: mc.name.clone(),
                    profile: mc.profile.as_str().to_string(),
                    port: mc.port.display().to_string(),
                    state: "disabled".into(),
                    registration: "unknown".into(),
                    signal_dbm: None,
                    operator: None,
                    iccid: None,
                    imsi: None,
                    imei: None,
                    last_error: None,
                    sent_today,
                    received_today,
                    per_day: Some(mc.limits.per_day),
                },
            };
            out.push(info);
        }
        Ok(Reply::Modems(out))
    }

    async fn send(&self, args: SendArgs) -> Result<Reply, ErrorBody> {
        let to = community::normalise_number(&args.to, None)
            .map_err(|e| {
                ErrorBody::new(
                    ErrorCode::InvalidNumber,
                    format!("{e}; give it in international form like +15551234567"),
                )
            })?
            .number;
        if let Some(m) = &args.modem
            && !self.cfg.modems.iter().any(|c| &c.name == m)
        {
            return Err(ErrorBody::new(
                ErrorCode::NotFound,
                format!(
                    "no modem named {m:?}; configured: {}",
                    self.cfg.modem_names().join(", ")
                ),
            ));
        }
        if args.text.trim().is_empty() {
            return Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                "field `text`: the message is empty",
            ));
        }
        let plan = pdu::plan(&args.text);
        if plan.parts.len() > MAX_PARTS {
            return Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                format!(
                    "field `text`: needs {} SMS parts; at most {MAX_PARTS} fit one message",
                    plan.parts.len()
                ),
            ));
        }
        let requested = args.modem.clone();
        let text = args.text.clone();
        let number = to.clone();
        let outcome = with_store(&self.store, "queueing a message", move |s| {
            if s.opted_out(&number)? {
                return Ok(None);
            }
            let home = s.member(&number)?.and_then(|m| m.home_modem);
            let now = now_ms();
            let mut row = NewOutbox::new(&number, &text, MessageKind::Direct, now);
            row.modem_pref = requested.or(home);
            s.enqueue(&row).map(Some)
        })
        .await
        .map_err(internal)?;
        let Some(id) = outcome else {
            return Err(ErrorBody::new(
                ErrorCode::OptedOut,
                format!("{to} texted STOP; nothing can be sent to it until it texts START"),
            ));
        };
        self.dispatch.wake();
        info!(id, to = %to, parts = plan.parts.len(), "message queued");
        Ok(Reply::SendAccepted(SendAccepted {
            id,
            parts: u32::try_from(plan.parts.len()).unwrap_or(u32::MAX),
            encoding: plan.alphabet.name().to_string(),
        }))
    }

    async fn inbox(&self, args: InboxArgs) -> Result<Reply, ErrorBody> {
        let limit = args.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
        let rows = with_store(&self.store, "reading the inbox", move |s| {
            s.inbox(args.unread_only, limit)
        })
        .await
        .map_err(internal)?;
        Ok(Reply::Inbox(
            rows.into_iter()
                .map(|m| InboxItem {
                    id: m.id,
                    from: m.sender,
                    text: m.text,
                    received_at: rfc3339(m.received_at),
                    modem: m.modem,
                    read: m.read,
                })
                .collect(),
        ))
    }

    async fn conversation(&self, args: ConversationArgs) -> Result<Reply, ErrorBody> {
        // Numbers are stored in E.164; an alphanumeric sender is looked up as given.
        let number = match community::normalise_number(&args.number, None) {
            Ok(n) => n.number,
            Err(e) if args.number.trim().starts_with('+') => {
                return Err(ErrorBody::new(ErrorCode::InvalidNumber, e.to_string()));
            }
            Err(_) if !args.number.trim().is_empty() => args.number.trim().to_string(),
            Err(e) => return Err(ErrorBody::new(ErrorCode::InvalidNumber, e.to_string())),
        };
        let limit = args.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
        let items = with_store(&self.store, "reading a conversation", move |s| {
            let entries = s.conversation(&number, limit)?;
            s.mark_thread_read(&number)?;
            let mut items = Vec::with_capacity(entries.len());
            for e in entries {
                let (direction, modem) = match e.direction {
                    store::Direction::In => (Direction::In, None),
                    store::Direction::Out => (
                        Direction::Out,
                        s.outbox_row(e.id).ok().and_then(|r| r.claimed_by),
                    ),
                };
                items.push(ConversationItem {
                    id: e.id,
                    direction,
                    text: e.text,
                    at: rfc3339(e.at),
                    status: e.state.map(|s| state_word(s).to_string()),
                    modem,
                });
            }
            Ok(items)
        })
        .await
        .map_err(internal)?;
        Ok(Reply::Conversation(items))
    }
}

impl GatewayHandler {
    /// Runs one community service function (synchronous SQLite) off the async runtime and maps
    /// its typed error to the admin error body.
    async fn svc<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Store, &Config, i64) -> service::Result<T> + Send + 'static,
    ) -> Result<T, ErrorBody> {
        let (store, cfg) = (self.store.clone(), Arc::clone(&self.cfg));
        match tokio::task::spawn_blocking(move || f(&store, &cfg, now_ms())).await {
            Ok(r) => r.map_err(ErrorBody::from),
            Err(e) => Err(internal(DaemonError::Task(format!(
                "community command: {e}"
            )))),
        }
    }
}

impl Handler for GatewayHandler {
    async fn handle(&self, request: Request, _peer: &Peer) -> Result<Reply, ErrorBody> {
        match request {
            Request::Status(_) => self.status().await,
            Request::Modems(_) => self.modems().await,
            Request::Send(a) => self.send(a).await,
            Request::Inbox(a) => self.inbox(a).await,
            Request::Conversation(a) => self.conversation(a).await,
            Request::MembersList(a) => self
                .svc(move |s, c, now| service::members_list(s, c, &a, now))
                .await
                .map(Reply::MembersList),
            Request::MembersAdd(a) => self
                .svc(move |s, c, now| service::members_add(s, c, &a, now))
                .await
                .map(Reply::MembersAdd),
            Request::MembersRemove(a) => self
                .svc(move |s, c, now| service::members_remove(s, c, &a, now))
                .await
                .map(Reply::MembersRemove),
            Request::MembersTag(a) => self
                .svc(move |s, c, now| service::members_tag(s, c, &a, now))
                .await
                .map(Reply::MembersTag),
            Request::MembersImport(a) => self
                .svc(move |s, c, now| service::members_import(s, c, &a, now))
                .await
                .map(Reply::MembersImport),
            Request::MembersExport(a) => self
                .svc(move |s, c, now| service::members_export(s, c, &a, now))
                .await
                .map(Reply::MembersExport),
            Request::Broadcast(a) => {
                let r = self
                    .svc(move |s, c, now| service::broadcast(s, c, &a, now))
                    .await?;
                if r.id.is_some() {
                    self.dispatch.wake();
                }
                Ok(Reply::Broadcast(r))
            }
            Request::Broadcasts(a) => self
                .svc(move |s, c, now| service::broadcasts(s, c, &a, now))
                .await
                .map(Reply::Broadcasts),
            Request::BroadcastProgress(a) => self
                .svc(move |s, c, now| service::broadcast_progress(s, c, &a, now))
                .await
                .map(Reply::BroadcastProgress),
            Request::BroadcastPause(a) => self
                .svc(move |s, c, now| service::broadcast_pause(s, c, &a, now))
                .await
                .map(Reply::BroadcastPause),
            Request::BroadcastResume(a) => {
                let r = self
                    .svc(move |s, c, now| service::broadcast_resume(s, c, &a, now))
                    .await?;
                self.dispatch.wake();
                Ok(Reply::BroadcastResume(r))
            }
            Request::BroadcastCancel(a) => self
                .svc(move |s, c, now| service::broadcast_cancel(s, c, &a, now))
                .await
                .map(Reply::BroadcastCancel),
            Request::InDoubt(_) => self.svc(service::in_doubt).await.map(Reply::InDoubt),
            Request::InDoubtResolve(a) => {
                let r = self
                    .svc(move |s, c, now| service::in_doubt_resolve(s, c, &a, now))
                    .await?;
                self.dispatch.wake();
                Ok(Reply::InDoubtResolve(r))
            }
            Request::Calls(a) => self.voice.calls(a).await,
            Request::VoicemailList(a) => self.voice.voicemail_list(a).await,
            Request::VoicemailExport(a) => self.voice.voicemail_export(a).await,
            Request::VoicemailDelete(a) => self.voice.voicemail_delete(a).await,
            Request::GreetingSet(a) => self.voice.greeting_set(a).await,
            // Answered by the server itself; reaching here would be a server bug.
            Request::Ping(_) | Request::Version(_) | Request::Watch(_) => Err(ErrorBody::new(
                ErrorCode::Internal,
                format!("{} is answered by the admin server", request.name()),
            )),
        }
    }

    fn events(&self) -> broadcast::Receiver<Event> {
        self.bus.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claimed_rows_read_as_sending() {
        assert_eq!(state_word(OutboxState::Claimed), "sending");
        assert_eq!(state_word(OutboxState::InDoubt), "in_doubt");
        assert_eq!(state_word(OutboxState::Delivered), "delivered");
    }

    #[test]
    fn timestamps_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
    }
}
