//! The command layer: every admin verb as one plain function, whatever transport carried it.
//!
//! A command takes the [`Context`] (store, settings, clock, and the handles of the running
//! dispatch runner, modems and voice layer) and its typed arguments from `protocol`, and returns
//! its typed reply or one [`CommandError`]. The Unix admin socket (`admin::server`, wired by the
//! daemon) is a thin transport: frame → decode → [`run`] → encode; the HTTP API and the web
//! console call the same functions, so a rule such as "an opted-out number is refused" is written
//! once, here, and every transport enforces it alike.
//!
//! What it owns: the business rules of the admin verbs (validation order, refusals, paging
//! limits, the home modem of a new member, a broadcast's expansion and ETA) and the conversion of
//! stored rows into wire types. What it must not touch: sockets, HTTP, framing, peer
//! credentials (the transports' job), SQL (`store`), the per-modem AT work (`modem`), the
//! inbound pipeline (`daemon`), or the configuration file (`config` fills [`Settings`]).
//!
//! Grouped by topic: [`messages`] (send, inbox, conversation), [`members`], [`review`] (possible
//! opt-outs waiting for a person), [`broadcasts`]
//! (broadcasts and the in-doubt rows a crash left), [`voice`] (calls, voicemail, greeting),
//! [`status`] (status, modems), [`hooks`] (webhook state and replays).
//!
//! Why the commands are synchronous: every one of them is a few SQLite statements, a file read
//! or a status snapshot. [`run`] executes the whole command on tokio's blocking pool once, instead
//! of each command wrapping each store call, and tests call the functions directly on a temporary
//! store without a runtime. Time comes from the context's [`Clock`] so tests pin it.

pub mod access;
pub mod activity;
pub mod broadcast_schedule;
pub mod broadcasts;
mod error;
mod held;
pub mod hooks;
pub mod members;
pub mod messages;
pub mod review;
mod sim_info;
pub mod status;
pub mod tokens;
pub mod ussd;
pub mod voice;
pub mod web;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

pub use access::{Caller, Transport};
pub use error::{CommandError, Result};
pub use hooks::WebhookSettings;

use crate::community::settings::CommunityConfig;
use crate::dispatch::{DispatchConfig, DispatchHandle, Limits};
use crate::modem::{ModemHandle, Profile};
use crate::protocol::{Reply, Request};
use crate::store::Store;
use crate::voice::VoiceHandle;

/// Page size of a listing whose request gives no `limit` (inbox, conversation, calls).
pub const DEFAULT_LIMIT: u32 = 50;
/// Largest page of those listings.
pub const MAX_LIMIT: u32 = 1000;

/// What the commands need to know of the configuration; `config` fills it from the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Every configured modem, in file order, enabled or not.
    pub modems: Vec<ModemSettings>,
    pub community: CommunityConfig,
    pub dispatch: DispatchConfig,
    /// `[voice] enabled`: `greeting_set` refuses while voice is off.
    pub voice_enabled: bool,
    /// The `[[webhook]]`s, for `webhooks` and `webhook_replay`.
    pub webhooks: Vec<WebhookSettings>,
    /// This gateway's site name when several share one database (`[store] site`); `status`
    /// and `modems` then show every site. `None` on a single Pi.
    pub site: Option<String>,
}

impl Settings {
    /// Names of the configured modems, in order.
    pub fn modem_names(&self) -> Vec<&str> {
        self.modems.iter().map(|m| m.name.as_str()).collect()
    }
}

/// One configured modem as the commands see it (no PIN: no command needs it).
#[derive(Debug, Clone, PartialEq)]
pub struct ModemSettings {
    pub name: String,
    pub profile: Profile,
    pub port: PathBuf,
    pub limits: Limits,
    pub enabled: bool,
    /// The SIM's own number in E.164, when configured.
    pub number: Option<String>,
}

/// Where "now" comes from: the system clock, or a fixed instant for tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    #[default]
    System,
    /// Always this many unix milliseconds.
    Fixed(i64),
}

impl Clock {
    /// Unix milliseconds now.
    pub fn now_ms(self) -> i64 {
        match self {
            Clock::System => crate::time::now_ms(),
            Clock::Fixed(ms) => ms,
        }
    }
}

/// Everything a command may use. Built once by the daemon and shared by every transport; tests
/// build one over a temporary store with [`Context::new`] and add only the handles they need.
pub struct Context {
    pub store: Store,
    pub settings: Arc<Settings>,
    pub clock: Clock,
    /// Woken after an enqueue so the runner does not wait for its next poll.
    dispatch: Option<DispatchHandle>,
    /// The running modems (enabled ones), by name.
    modems: Vec<(String, ModemHandle)>,
    voice: Option<voice::VoiceLink>,
    started: Instant,
}

impl Context {
    /// A context for unit tests: an in-memory store, no modems or webhooks, voice off, and a
    /// fixed clock (2023-11-14T22:13:20Z).
    #[cfg(test)]
    pub(crate) fn for_tests() -> Context {
        let settings = Settings {
            modems: Vec::new(),
            community: Default::default(),
            dispatch: Default::default(),
            voice_enabled: false,
            webhooks: Vec::new(),
            site: None,
        };
        let store = crate::store::Store::open_in_memory().expect("an in-memory store");
        Context::new(store, Arc::new(settings)).with_clock(Clock::Fixed(1_700_000_000_000))
    }

    /// A context over `store` with no running dispatch, modems or voice layer.
    pub fn new(store: Store, settings: Arc<Settings>) -> Context {
        Context {
            store,
            settings,
            clock: Clock::System,
            dispatch: None,
            modems: Vec::new(),
            voice: None,
            started: Instant::now(),
        }
    }

    pub fn with_clock(mut self, clock: Clock) -> Context {
        self.clock = clock;
        self
    }

    /// The dispatch runner to wake after an enqueue.
    pub fn with_dispatch(mut self, handle: DispatchHandle) -> Context {
        self.dispatch = Some(handle);
        self
    }

    /// The running modems, for `status` and `modems`.
    pub fn with_modems(mut self, modems: Vec<(String, ModemHandle)>) -> Context {
        self.modems = modems;
        self
    }

    /// The voice layer, for voicemail files and the greeting.
    pub fn with_voice(mut self, handle: VoiceHandle) -> Context {
        self.voice = Some(voice::VoiceLink::new(handle));
        self
    }

    /// When the daemon started (`status` reports the uptime).
    pub fn with_start(mut self, started: Instant) -> Context {
        self.started = started;
        self
    }

    /// Unix milliseconds now, by the context's clock.
    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Tells the dispatch runner the outbox has something new.
    fn wake_dispatch(&self) {
        if let Some(d) = &self.dispatch {
            d.wake();
        }
    }
}

/// Executes one command. `ping`, `version` and `watch` belong to the transport (they are about
/// the connection, not the gateway) and are refused here as an internal error.
pub fn execute(ctx: &Context, request: Request) -> Result<Reply> {
    match request {
        Request::Status(_) => status::status(ctx).map(Reply::Status),
        Request::Modems(_) => status::modems(ctx).map(Reply::Modems),
        Request::Send(a) => messages::send(ctx, &a).map(Reply::SendAccepted),
        Request::Inbox(a) => messages::inbox(ctx, &a).map(Reply::Inbox),
        Request::Conversation(a) => messages::conversation(ctx, &a).map(Reply::Conversation),
        Request::MembersList(a) => members::list(ctx, &a).map(Reply::MembersList),
        Request::MembersAdd(a) => members::add(ctx, &a).map(Reply::MembersAdd),
        Request::MembersRemove(a) => members::remove(ctx, &a).map(Reply::MembersRemove),
        Request::MembersTag(a) => members::tag(ctx, &a).map(Reply::MembersTag),
        Request::MembersImport(a) => members::import(ctx, &a).map(Reply::MembersImport),
        Request::MembersExport(a) => members::export(ctx, &a).map(Reply::MembersExport),
        Request::MembersReview(_) => review::list(ctx).map(Reply::MembersReview),
        Request::MembersReviewResolve(a) => {
            review::resolve(ctx, &a).map(Reply::MembersReviewResolve)
        }
        Request::Broadcast(a) => broadcasts::broadcast(ctx, &a).map(Reply::Broadcast),
        Request::Broadcasts(a) => broadcasts::list(ctx, &a).map(Reply::Broadcasts),
        Request::BroadcastProgress(a) => {
            broadcasts::progress(ctx, &a).map(Reply::BroadcastProgress)
        }
        Request::BroadcastPause(a) => broadcasts::pause(ctx, &a).map(Reply::BroadcastPause),
        Request::BroadcastResume(a) => broadcasts::resume(ctx, &a).map(Reply::BroadcastResume),
        Request::BroadcastCancel(a) => broadcasts::cancel(ctx, &a).map(Reply::BroadcastCancel),
        Request::InDoubt(_) => broadcasts::in_doubt(ctx).map(Reply::InDoubt),
        Request::InDoubtResolve(a) => {
            broadcasts::in_doubt_resolve(ctx, &a).map(Reply::InDoubtResolve)
        }
        Request::Calls(a) => voice::calls(ctx, &a).map(Reply::Calls),
        Request::VoicemailList(a) => voice::voicemail_list(ctx, &a).map(Reply::VoicemailList),
        Request::VoicemailExport(a) => voice::voicemail_export(ctx, &a).map(Reply::VoicemailExport),
        Request::VoicemailDelete(a) => voice::voicemail_delete(ctx, &a).map(Reply::VoicemailDelete),
        Request::GreetingSet(a) => voice::greeting_set(ctx, &a).map(Reply::GreetingSet),
        Request::MessageGet(a) => messages::get(ctx, &a).map(Reply::MessageGet),
        Request::Conversations(a) => messages::conversations(ctx, &a).map(Reply::Conversations),
        Request::MembersGet(a) => members::get(ctx, &a).map(Reply::MembersGet),
        Request::MembersUpdate(a) => members::update(ctx, &a).map(Reply::MembersUpdate),
        Request::TokensCreate(a) => tokens::create(ctx, &a).map(Reply::TokensCreate),
        Request::TokensList(a) => tokens::list(ctx, &a).map(Reply::TokensList),
        Request::TokensRevoke(a) => tokens::revoke(ctx, &a).map(Reply::TokensRevoke),
        Request::Ussd(a) => ussd::ussd(ctx, &a).map(Reply::Ussd),
        Request::Webhooks(_) => hooks::webhooks(ctx).map(Reply::Webhooks),
        Request::WebhookReplay(a) => hooks::webhook_replay(ctx, &a).map(Reply::WebhookReplay),
        Request::GreetingGet(_) => voice::greeting_get(ctx).map(Reply::GreetingGet),
        Request::WebUsersAdd(a) => web::add(ctx, &a).map(Reply::WebUsersAdd),
        Request::WebUsersList(_) => web::list(ctx).map(Reply::WebUsersList),
        Request::WebUsersPasswd(a) => web::passwd(ctx, &a).map(Reply::WebUsersPasswd),
        Request::WebUsersRemove(a) => web::remove(ctx, &a).map(Reply::WebUsersRemove),
        Request::Activity(a) => activity::activity(ctx, &a).map(Reply::Activity),
        Request::Ping(_) | Request::Version(_) | Request::Watch(_) => Err(CommandError::Internal(
            format!("{} is answered by the transport", request.name()),
        )),
    }
}

/// Executes one command for a local admin-socket user (see [`run_as`]).
pub async fn run(ctx: &Arc<Context>, request: Request) -> Result<Reply> {
    run_as(ctx, &Caller::local(), request).await
}

/// Executes one command for `caller` on tokio's blocking pool (commands do SQLite and file I/O):
/// the one place the transports cross from async into the synchronous command functions, and
/// the one place a caller's scope is checked ([`access::authorize`]).
pub async fn run_as(ctx: &Arc<Context>, caller: &Caller, request: Request) -> Result<Reply> {
    access::authorize(caller, &request)?;
    let ctx = Arc::clone(ctx);
    let name = request.name();
    match tokio::task::spawn_blocking(move || execute(&ctx, request)).await {
        Ok(r) => r,
        Err(e) => Err(CommandError::Internal(format!(
            "{name}: the command task failed: {e}"
        ))),
    }
}
