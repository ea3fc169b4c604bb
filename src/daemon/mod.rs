//! The daemon wiring (docs/architecture.md, the top floor): the one place that spawns the gateway's long-lived
//! tasks and connects the layers below — the store, the in-process simulator, one modem actor per
//! configured modem, the dispatch runner, the inbound pipeline and the admin socket (whose commands
//! are `commands`) — and that talks
//! to systemd (READY / STATUS / WATCHDOG / STOPPING).
//!
//! It owns start-up order, shutdown order and the event bus the admin `watch` verb reads. It does
//! not decide what a message means (`community`), when it goes out (`dispatch`), how it is stored
//! (`store`) or how a modem is driven (`modem`): each of those is called, never re-implemented.
//!
//! Shape (as tokio's mini-redis): [`run`] takes the configuration and a
//! `CancellationToken` and returns when the token fires and everything has stopped; the CLI turns
//! SIGTERM/SIGINT into that token. Tests use [`Daemon::start`] instead, which returns a
//! [`RunningDaemon`] with the socket path, the simulator and the store, so they can drive the
//! gateway in-process on a temp dir and poll for conditions instead of sleeping.
//!
//! Start-up order, and why (docs/daemon.md has the long form): state dir → store (nothing runs
//! without its database) → simulator (its pseudo-terminals must exist before a modem opens them) →
//! modem actors → dispatch runner → voice layer → inbound pipeline (it forwards call URCs to the
//! voice layer) → admin socket. The admin socket comes last so that a client that can connect finds a gateway that works, and READY=1 is sent only after a
//! `ping` over that socket has been answered. Shutdown runs the other way: STOPPING=1, cancel
//! everything, wait for the task tracker (a modem finishes its in-flight send), remove the socket,
//! stop the simulator.
//!
//! The store's API is synchronous (one connection behind a mutex, fsync on commit), so every call
//! from async code goes through [`Store::call`] ([`with_store`] names the action for the log): an fsync must not stall a tokio
//! worker that is also reading a modem's port.

pub mod events;
pub mod failure;
pub mod handler;
pub mod inbound;
pub mod logging;
pub mod maintenance;
pub mod memory;
pub mod notify;
mod owners;
mod sims;
pub mod upkeep;
pub mod voice;

use std::collections::HashMap;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{error, info, warn};

use crate::admin::{self, AccessPolicy};
use crate::commands;
use crate::config::{self, Config, Principal};
use crate::dispatch::runner::{self, DispatchHandle, PoolModem, SendObserver};
use crate::http;
use crate::metrics::Metrics;
use crate::modem::{self, ModemEvent, ModemHandle};
use crate::sim::{self, SimConfig, SimHandle, Simulator};
use crate::store::{self, Store, StoreError};

pub use events::EventBus;

use crate::time::now_ms;

/// File name of the database inside `state_dir`.
pub const DATABASE_FILE: &str = "gsmgate.db";
/// Depth of the channel all modem actors publish their events on. Actors keep a small backlog and
/// stop reading the SIM while it is full, so a bound here costs latency, never messages.
const MODEM_EVENT_DEPTH: usize = 256;
/// Depth of the channel the dispatch runner reports outcomes on.
const DISPATCH_EVENT_DEPTH: usize = 256;
/// Mode of a state directory the daemon creates (group may read: backups, the admin group).
const STATE_DIR_MODE: u32 = 0o750;

/// Errors of the daemon: each names the thing that failed, so the CLI can print one clear line.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot create state directory {path}: {source}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    OpenStore(#[source] Box<StoreError>),
    /// The database of an initialised state dir is missing, empty or damaged, or cannot be
    /// opened. Its message names the file (and the restore command where a restore is the
    /// remedy); an open failure keeps its cause chain so `failure::diagnose` can tell a full or
    /// read-only disk.
    #[error(transparent)]
    Database(Box<store::integrity::StartCheckError>),
    #[error("database error while {action}: {source}")]
    Store {
        action: &'static str,
        #[source]
        source: Box<StoreError>,
    },
    #[error("cannot start the modem simulator in {dir}: {source}")]
    Simulator {
        dir: PathBuf,
        #[source]
        source: sim::SimError,
    },
    #[error("cannot start the dispatch runner: {0}")]
    Dispatch(String),
    #[error("admin socket: {0}")]
    Admin(#[from] admin::AdminError),
    #[error(transparent)]
    Http(#[from] http::HttpError),
    #[error("admin socket {path} was bound but does not answer: {reason}")]
    AdminNotAnswering { path: PathBuf, reason: String },
    #[error("a daemon task failed: {0}")]
    Task(String),
    #[error("cannot start the voice layer: {0}")]
    Voice(#[source] crate::voice::VoiceError),
    #[error("cannot start webhooks and hooks: {0}")]
    Hooks(#[source] crate::hooks::HooksError),
}

/// Knobs that are not configuration but matter to tests, benchmarks and the demo.
#[derive(Debug, Clone)]
pub struct DaemonOptions {
    /// Timeouts of every modem actor (tests use [`modem::Timeouts::fast`]).
    pub modem_timeouts: modem::Timeouts,
    /// The simulator to start instead of the one `[simulator]` describes (tests set latencies and
    /// seeds here); ignored when `[simulator]` is disabled.
    pub sim: Option<SimConfig>,
    /// How often STATUS= is refreshed.
    pub status_interval: Duration,
    /// How long an incomplete concatenated message waits for its missing parts.
    pub reassembly_timeout: Duration,
    /// Print the "admin socket at …" line on stdout (the CLI does; tests keep stdout quiet).
    pub announce: bool,
    /// What the rate limits call a minute (`RunnerConfig::minute`); `None` = 60 s. Benchmarks
    /// shorten it to run a per-minute-limited pool in seconds; never set by the CLI.
    pub limit_minute: Option<Duration>,
    /// How often the full `PRAGMA integrity_check` runs (default daily).
    pub integrity_interval: Duration,
    /// Overrides `[daemon] backup_every_hours` (tests run the schedule in milliseconds).
    pub backup_interval: Option<Duration>,
    /// Overrides the webhooks' retry schedule (tests retry in milliseconds, not seconds).
    pub hooks_retry: Option<crate::hooks::RetryPolicy>,
    /// How often the SIM upkeep task looks and what it calls an hour (tests shorten both).
    pub upkeep: upkeep::UpkeepTiming,
    /// How often a site writes its heartbeat (PostgreSQL store; tests shorten it). `None`: 10 s.
    pub site_heartbeat: Option<Duration>,
    /// Overrides `[dispatch] failover_after_minutes` (tests fail over in seconds, not minutes).
    pub failover_after: Option<Duration>,
    /// Holds the inbound pipeline this long before it records a modem's SIM at `Ready` (tests
    /// widen the window in which the runner must not claim for it); `None` in production.
    pub sim_record_delay: Option<Duration>,
}

impl Default for DaemonOptions {
    fn default() -> Self {
        DaemonOptions {
            modem_timeouts: modem::Timeouts::default(),
            sim: None,
            status_interval: Duration::from_secs(5),
            reassembly_timeout: Duration::from_secs(600),
            announce: false,
            limit_minute: None,
            integrity_interval: maintenance::DEFAULT_INTEGRITY_INTERVAL,
            backup_interval: None,
            hooks_retry: None,
            upkeep: upkeep::UpkeepTiming::default(),
            site_heartbeat: None,
            failover_after: None,
            sim_record_delay: None,
        }
    }
}

fn principal_names(list: &[Principal]) -> Vec<String> {
    list.iter()
        .map(|p| match p {
            Principal::Name(n) => n.clone(),
            Principal::Id(id) => id.to_string(),
        })
        .collect()
}

/// Runs a store call on the blocking pool (see the module doc).
pub(crate) async fn with_store<T, F>(
    store: &Store,
    action: &'static str,
    f: F,
) -> Result<T, DaemonError>
where
    T: Send + 'static,
    F: FnOnce(&Store) -> store::Result<T> + Send + 'static,
{
    store.call(f).await.map_err(|source| DaemonError::Store {
        action,
        source: Box::new(source),
    })
}

// Each piece of the wiring is handed over by name; a struct would only rename the list.
#[allow(clippy::too_many_arguments)]
fn start_dispatch(
    store: &Store,
    cfg: &Config,
    modems: &[(config::ModemConfig, ModemHandle)],
    events: mpsc::Sender<runner::DispatchEvent>,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
    opts: &DaemonOptions,
    observer: Arc<dyn SendObserver>,
) -> Result<DispatchHandle, DaemonError> {
    let pool = modems
        .iter()
        .map(|(mc, handle)| PoolModem {
            name: mc.name.clone(),
            handle: handle.clone(),
            limits: mc.limits,
            number: mc.number.clone(),
        })
        .collect();
    let mut rc = cfg.runner_config();
    if let Some(minute) = opts.limit_minute {
        rc.minute = minute;
    }
    if let Some(after) = opts.failover_after {
        rc.failover_after = Some(after);
    }
    if let config::StoreSettings::Postgres { site, .. } = &cfg.store {
        rc.site = Some(site.clone());
    }
    if let Some(every) = opts.site_heartbeat {
        rc.heartbeat_every = every;
    }
    rc.observer = Some(observer);
    // The pipeline records every init's SIM (daemon/sims.rs) and opens the gate.
    rc.wait_for_sim = true;
    let handle = runner::spawn(store.clone(), pool, rc, events, tracker, shutdown)
        .map_err(|e| DaemonError::Dispatch(e.to_string()))?;
    Ok(handle)
}

/// Entry point for tests and embedders: [`Daemon::start`] / [`Daemon::start_with`].
pub struct Daemon;

/// A started daemon. Dropping it without [`RunningDaemon::shutdown`] cancels its tasks but does not
/// wait for them.
pub struct RunningDaemon {
    socket: PathBuf,
    http_addr: Option<std::net::SocketAddr>,
    sim: Option<SimHandle>,
    store: Store,
    shutdown: CancellationToken,
    tracker: TaskTracker,
    supervisor: Option<JoinHandle<()>>,
    started: Instant,
    ready_after: Duration,
    metrics: Metrics,
}

impl Daemon {
    /// Starts the gateway with default options and a fresh shutdown token.
    pub async fn start(cfg: Config) -> Result<RunningDaemon, DaemonError> {
        Daemon::start_with(cfg, DaemonOptions::default(), CancellationToken::new()).await
    }

    /// Starts the gateway; it stops when `shutdown` fires or [`RunningDaemon::shutdown`] is
    /// called. Returns once the admin socket has answered a ping (READY=1 has been sent).
    pub async fn start_with(
        cfg: Config,
        opts: DaemonOptions,
        shutdown: CancellationToken,
    ) -> Result<RunningDaemon, DaemonError> {
        let started = Instant::now();
        let cfg = Arc::new(cfg);
        let state_dir = cfg.daemon.state_dir.clone();
        create_state_dir(&state_dir)?;

        let db = state_dir.join(DATABASE_FILE);
        let store = open_store(&cfg.store, &db).await?;

        // Everything spawned from here on is cancelled again if a later step fails.
        let tracker = TaskTracker::new();
        let token = shutdown.child_token();
        let guard = StartGuard {
            token: token.clone(),
            tracker: tracker.clone(),
            sim: None,
        };
        let mut guard = guard;

        guard.sim = start_simulator(&cfg, &opts).await?;

        let bus = EventBus::new();
        // Subscribed before anything publishes, so the journal sees every modem's first `ready`.
        let journal_feed = bus.subscribe();
        let (modems, modem_rx) = spawn_modems(&cfg, &opts, &tracker, &token);
        let handles: HashMap<String, ModemHandle> = modems
            .iter()
            .map(|(mc, h)| (mc.name.clone(), h.clone()))
            .collect();

        register_modems(&store, &modems).await?;

        // Metrics (docs/http-api.md "Metrics"): fed by the runner's observer and by the bus,
        // subscribed here before anything publishes; the HTTP layer serves `metrics.render()`.
        let modem_handles = modems.iter().map(|(_, h)| h.clone()).collect();
        let metrics = Metrics::new(store.clone(), modem_handles, started);
        tracker.spawn(
            metrics
                .clone()
                .follow_events(bus.subscribe(), token.clone()),
        );

        let (dispatch_tx, dispatch_rx) = mpsc::channel(DISPATCH_EVENT_DEPTH);
        let dispatch = start_dispatch(
            &store,
            &cfg,
            &modems,
            dispatch_tx,
            &tracker,
            token.clone(),
            &opts,
            metrics.send_observer(),
        )?;
        tracker.spawn(events::forward_dispatch(
            dispatch_rx,
            bus.clone(),
            token.clone(),
        ));
        let health = store.watch_write_health();
        tracker.spawn(events::watch_storage(health, bus.clone(), token.clone()));

        let (voice, call_urcs) = voice::start(
            &cfg,
            &modems,
            guard.sim.as_ref(),
            &store,
            &bus,
            &dispatch,
            &tracker,
            token.clone(),
        )?;

        let mut pipeline = inbound::Pipeline::load(
            store.clone(),
            cfg.clone(),
            bus.clone(),
            dispatch.clone(),
            handles.clone(),
            opts.reassembly_timeout,
        )
        .await?;
        pipeline.forward_call_urcs(call_urcs);
        if let Some(hold) = opts.sim_record_delay {
            pipeline.hold_sim_records(hold);
        }
        tracker.spawn(inbound::run(pipeline, modem_rx, token.clone()));

        start_hooks(
            &cfg,
            &opts,
            &store,
            &metrics,
            journal_feed,
            &tracker,
            &token,
        )
        .await?;

        let ctx = Arc::new(
            commands::Context::new(store.clone(), Arc::new(cfg.command_settings()))
                .with_dispatch(dispatch.clone())
                .with_modems(
                    modems
                        .iter()
                        .map(|(mc, h)| (mc.name.clone(), h.clone()))
                        .collect(),
                )
                .with_voice(voice)
                .with_start(started),
        );
        let handler = handler::GatewayHandler::new(ctx.clone(), bus.clone());
        let socket = start_admin(&cfg, handler, &tracker, &token).await?;
        let http_addr = start_http(&cfg, ctx, &bus, &metrics, &tracker, &token).await?;
        logging::publish_to(Some(bus.sender()));

        // READY only once the socket answers: a ping proves accept loop and a connection task.
        confirm_answering(&socket).await?;
        let ready_after = started.elapsed();
        notify::ready();
        info!(socket = %socket.display(), ready_ms = ready_after.as_millis() as u64, "gsmgate ready");
        if opts.announce {
            announce(&cfg, &socket, guard.sim.as_ref());
        }

        let supervisor = spawn_upkeep(
            &cfg, &opts, db, &store, &dispatch, &modems, handles, &bus, &tracker, &token,
        );
        tracker.close();
        let sim = guard.sim.take();
        guard.disarm();
        Ok(RunningDaemon {
            socket,
            http_addr,
            sim,
            store,
            shutdown: token,
            tracker,
            supervisor: Some(supervisor),
            started,
            ready_after,
            metrics,
        })
    }
}

/// Opens the database `[store]` names. SQLite: refusing a lost or damaged file instead of
/// creating an empty one (the marker and `quick_check`, docs/store.md). PostgreSQL: reading the
/// password, connecting and migrating; an unreachable server fails the start with the reason
/// (systemd restarts the daemon), docs/scale-out.md.
async fn open_store(settings: &config::StoreSettings, db: &Path) -> Result<Store, DaemonError> {
    if let config::StoreSettings::Postgres { pg, password, site } = settings {
        let mut pg = (**pg).clone();
        let password = match password {
            config::PasswordSource::File(path) => Some(store::pg::Password::from_file(path)),
            config::PasswordSource::Env(name) => Some(store::pg::Password::from_env(name)),
            config::PasswordSource::None => None,
        };
        if let Some(password) = password {
            let password =
                password.map_err(|e| DaemonError::OpenStore(Box::new(StoreError::from(e))))?;
            pg = pg.with_password(password);
        }
        info!(target = %pg.target(), site = %site, "opening the PostgreSQL store");
        return tokio::task::spawn_blocking(move || Store::open_postgres(pg))
            .await
            .map_err(|e| DaemonError::Task(format!("opening the database: {e}")))?
            .map_err(|e| DaemonError::OpenStore(Box::new(e)));
    }
    let opened = db.to_path_buf();
    tokio::task::spawn_blocking(move || store::integrity::open_checked(&opened))
        .await
        .map_err(|e| DaemonError::Task(format!("opening the database: {e}")))?
        .map_err(|e| DaemonError::Database(Box::new(e)))
}

/// The embedded simulator, when `[simulator] enabled`: started before the modems open its ports.
async fn start_simulator(
    cfg: &Config,
    opts: &DaemonOptions,
) -> Result<Option<SimHandle>, DaemonError> {
    if !cfg.simulator.enabled {
        return Ok(None);
    }
    let sc = opts
        .sim
        .clone()
        .unwrap_or_else(|| cfg.simulator.sim_config());
    let dir = sc.dir.clone();
    let handle = Simulator::start(sc)
        .await
        .map_err(|source| DaemonError::Simulator { dir, source })?;
    info!(dir = %cfg.simulator.dir.display(), modems = cfg.simulator.modems, "simulator started");
    Ok(Some(handle))
}

/// Webhooks and local hooks: consumers of the store's event journal (src/hooks/), fed from
/// `journal_feed`, which was subscribed before anything published.
async fn start_hooks(
    cfg: &Config,
    opts: &DaemonOptions,
    store: &Store,
    metrics: &Metrics,
    journal_feed: tokio::sync::broadcast::Receiver<crate::protocol::Event>,
    tracker: &TaskTracker,
    token: &CancellationToken,
) -> Result<(), DaemonError> {
    metrics.set_webhook_stats(Arc::new(WebhookFiguresSource(cfg.hooks.webhooks.clone())));
    let mut settings = cfg.hooks.clone();
    if let Some(retry) = opts.hooks_retry {
        settings.retry = retry;
    }
    crate::hooks::start(store, &settings, journal_feed, tracker, token.clone())
        .await
        .map_err(DaemonError::Hooks)
}

/// The HTTP API, console and metrics when `[http]` is configured; returns the bound address.
async fn start_http(
    cfg: &Config,
    ctx: Arc<commands::Context>,
    bus: &EventBus,
    metrics: &Metrics,
    tracker: &TaskTracker,
    token: &CancellationToken,
) -> Result<Option<std::net::SocketAddr>, DaemonError> {
    let Some(settings) = &cfg.http else {
        return Ok(None);
    };
    let server = http::start(
        settings,
        ctx,
        Some(bus.sender()),
        Some(metrics.clone()),
        token.clone(),
    )
    .await?;
    tracker.spawn(async move {
        let _ = server.task.await;
    });
    Ok(Some(server.local_addr))
}

/// The background work that starts once the gateway answers: SIM upkeep (balance, keep-alive),
/// integrity checks and backups, and the status supervisor (returned: it outlives the tracker).
#[allow(clippy::too_many_arguments)]
fn spawn_upkeep(
    cfg: &Config,
    opts: &DaemonOptions,
    db: PathBuf,
    store: &Store,
    dispatch: &DispatchHandle,
    modems: &[(config::ModemConfig, ModemHandle)],
    handles: HashMap<String, ModemHandle>,
    bus: &EventBus,
    tracker: &TaskTracker,
    token: &CancellationToken,
) -> JoinHandle<()> {
    tracker.spawn(upkeep::run(
        store.clone(),
        dispatch.clone(),
        modems.to_vec(),
        opts.upkeep,
        token.clone(),
    ));
    // The integrity check and the backups are of the SQLite file; a PostgreSQL server checks
    // its own pages and is backed up with its own tools (docs/scale-out.md, "Backups").
    if cfg.store == config::StoreSettings::Sqlite {
        tracker.spawn(maintenance::run(
            maintenance_schedule(cfg, opts, db),
            bus.clone(),
            token.clone(),
        ));
    }
    tokio::spawn(supervise(
        store.clone(),
        handles,
        token.clone(),
        opts.status_interval,
    ))
}

/// The integrity-check and backup schedule from `[daemon]` and the options.
fn maintenance_schedule(cfg: &Config, opts: &DaemonOptions, db: PathBuf) -> maintenance::Schedule {
    let d = &cfg.daemon;
    maintenance::Schedule {
        db,
        integrity_every: opts.integrity_interval,
        backups: d.backup_dir.clone().map(|dir| maintenance::BackupSchedule {
            dir,
            every: opts
                .backup_interval
                .unwrap_or(Duration::from_secs(u64::from(d.backup_every_hours) * 3600)),
            keep: d.backup_keep as usize,
        }),
    }
}

/// The webhooks' delivery counters for `/metrics`, read from the store at each scrape.
struct WebhookFiguresSource(Vec<crate::hooks::WebhookConfig>);

impl crate::metrics::WebhookStats for WebhookFiguresSource {
    fn webhook_figures(&self, store: &Store) -> store::Result<Vec<crate::metrics::WebhookFigures>> {
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(crate::hooks::snapshot(store, &self.0)?
            .into_iter()
            .map(|w| crate::metrics::WebhookFigures {
                webhook: w.name,
                backlog: n(w.backlog),
                delivered_total: n(w.delivered_total),
                failures_total: n(w.failed_total),
            })
            .collect())
    }
}

/// Spawns one actor per enabled `[[modem]]`; their events arrive on the returned receiver.
fn spawn_modems(
    cfg: &Config,
    opts: &DaemonOptions,
    tracker: &TaskTracker,
    token: &CancellationToken,
) -> (
    Vec<(config::ModemConfig, ModemHandle)>,
    mpsc::Receiver<ModemEvent>,
) {
    let (modem_tx, modem_rx) = mpsc::channel::<ModemEvent>(MODEM_EVENT_DEPTH);
    let mut modems: Vec<(config::ModemConfig, ModemHandle)> = Vec::new();
    for mc in cfg.modems.iter().filter(|m| m.enabled) {
        // Not a start error: on a Pi a USB modem may enumerate after the daemon starts, or be
        // unplugged for a while; one missing modem must not keep the other three from
        // working. Its actor waits for the path (state `vanished`, then `out_of_pool` with an
        // alert) and initialises it when it appears.
        if !mc.port.exists() {
            warn!(
                modem = %mc.name,
                port = %mc.port.display(),
                "port does not exist (yet); the modem joins the pool when it appears \
                 (check [[modem]] port and the cable, or set enabled = false)"
            );
        }
    }
    for mc in cfg.modems.iter().filter(|m| m.enabled) {
        let (handle, actor) = modem::spawn(
            mc.actor_config(opts.modem_timeouts),
            modem_tx.clone(),
            token.clone(),
        );
        tracker.spawn(actor.run());
        modems.push((mc.clone(), handle));
    }
    drop(modem_tx);
    if modems.is_empty() {
        warn!("no enabled [[modem]]: the gateway can neither send nor receive");
    }
    (modems, modem_rx)
}

/// Records each running modem in the store with its profile.
async fn register_modems(
    store: &Store,
    modems: &[(config::ModemConfig, ModemHandle)],
) -> Result<(), DaemonError> {
    // The store's modem rows make `modem_pref` (sticky sender) meaningful to the claim.
    let names: Vec<(String, String)> = modems
        .iter()
        .map(|(mc, _)| (mc.name.clone(), mc.profile.as_str().to_string()))
        .collect();
    with_store(store, "registering the modems", move |s| {
        let now = now_ms();
        for (name, profile) in names {
            let mut id = match s.modem(&name)? {
                Some(row) => row.identity,
                None => store::ModemIdentity {
                    name: name.clone(),
                    iccid: None,
                    imsi: None,
                    imei: None,
                    own_number: None,
                    profile: None,
                },
            };
            id.profile = Some(profile);
            s.upsert_modem(&id, now)?;
        }
        Ok(())
    })
    .await?;
    Ok(())
}

/// Binds the admin socket with the configured access policy and serves it until shutdown.
/// Returns the socket's path.
async fn start_admin(
    cfg: &Config,
    handler: handler::GatewayHandler,
    tracker: &TaskTracker,
    token: &CancellationToken,
) -> Result<PathBuf, DaemonError> {
    let socket = cfg.daemon.admin_socket.clone();
    let access = AccessPolicy::from_names(
        &principal_names(&cfg.daemon.admin_allow_users),
        &principal_names(&cfg.daemon.admin_allow_groups),
    )
    .map_err(admin::AdminError::from)?;
    let group = match cfg.daemon.admin_allow_groups.first() {
        Some(Principal::Id(id)) => Some(*id),
        Some(Principal::Name(n)) => {
            Some(admin::peer::resolve_group(n).map_err(admin::AdminError::from)?)
        }
        None => None,
    };
    let listener = admin::bind(&socket, cfg.daemon.socket_mode, group).await?;
    let handler = Arc::new(handler);
    {
        let token = token.clone();
        tracker.spawn(async move {
            if let Err(e) = admin::serve(listener, handler, access, token.clone()).await {
                error!(error = %e, "admin server stopped");
                token.cancel();
            }
        });
    }
    Ok(socket)
}

/// Cancels what a failed start-up had already spawned.
struct StartGuard {
    token: CancellationToken,
    tracker: TaskTracker,
    sim: Option<SimHandle>,
}

impl StartGuard {
    fn disarm(mut self) {
        self.sim = None;
        // A successful start hands the token to RunningDaemon: do not cancel it.
        self.token = CancellationToken::new();
    }
}

impl Drop for StartGuard {
    fn drop(&mut self) {
        self.token.cancel();
        self.tracker.close();
        if let Some(sim) = self.sim.take() {
            // Best effort: the simulator's tasks end with the runtime if this cannot run.
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(sim.shutdown());
            }
        }
    }
}

fn create_state_dir(path: &Path) -> Result<(), DaemonError> {
    if path.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(STATE_DIR_MODE)
        .create(path)
        .map_err(|source| DaemonError::StateDir {
            path: path.to_path_buf(),
            source,
        })
}

async fn confirm_answering(socket: &Path) -> Result<(), DaemonError> {
    let fail = |reason: String| DaemonError::AdminNotAnswering {
        path: socket.to_path_buf(),
        reason,
    };
    let attempt = async {
        let mut client = admin::Client::connect(socket)
            .await
            .map_err(|e| fail(e.to_string()))?;
        client.ping().await.map_err(|e| fail(e.to_string()))?;
        Ok::<(), DaemonError>(())
    };
    match tokio::time::timeout(Duration::from_secs(10), attempt).await {
        Ok(r) => r,
        Err(_) => Err(fail("no answer to ping within 10 s".into())),
    }
}

fn announce(cfg: &Config, socket: &Path, sim: Option<&SimHandle>) {
    println!(
        "gsmgate: admin socket at {} — try `gsmgate status`",
        socket.display()
    );
    if let Some(control) = sim.and_then(|s| s.paths().control) {
        println!(
            "gsmgate: simulator ({} modems) control socket at {}",
            cfg.simulator.modems,
            control.display()
        );
    }
}

/// The main loop: refreshes STATUS= and pings the watchdog, but only while healthy — this loop
/// is running (so the runtime is responsive) and a trivial store query answers in time. A wedged
/// database or runtime therefore stops the pings and systemd restarts the service.
async fn supervise(
    store: Store,
    modems: HashMap<String, ModemHandle>,
    shutdown: CancellationToken,
    status_interval: Duration,
) {
    let watchdog = sd_notify::watchdog_enabled();
    let tick = match watchdog {
        Some(w) => (w / 2).min(status_interval).max(Duration::from_millis(100)),
        None => status_interval,
    };
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_status = String::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = interval.tick() => {}
        }
        let counts = tokio::time::timeout(
            Duration::from_secs(5),
            with_store(&store, "checking health", |s| s.state_counts()),
        )
        .await;
        match counts {
            Ok(Ok(c)) => {
                let ready = modems
                    .values()
                    .filter(|h| h.status().state == modem::ModemState::Ready)
                    .count();
                let line = format!(
                    "{ready}/{} modems ready, {} queued, {} in doubt",
                    modems.len(),
                    c.queued,
                    c.in_doubt
                );
                if line != last_status {
                    notify::status(&line);
                    last_status = line;
                }
                if watchdog.is_some() {
                    notify::watchdog();
                }
            }
            Ok(Err(e)) => warn!(error = %e, "health check failed; not pinging the watchdog"),
            Err(_) => warn!("health check timed out; not pinging the watchdog"),
        }
    }
}

impl RunningDaemon {
    /// The admin socket path.
    pub fn socket_path(&self) -> &Path {
        &self.socket
    }

    /// The in-process simulator, when `[simulator]` is enabled.
    /// Where the HTTP API listens (the real port when the config said port 0), if it runs.
    pub fn http_addr(&self) -> Option<std::net::SocketAddr> {
        self.http_addr
    }

    pub fn sim(&self) -> Option<SimHandle> {
        self.sim.clone()
    }

    /// The daemon's store (tests inspect it directly).
    pub fn store(&self) -> Store {
        self.store.clone()
    }

    /// The daemon's Prometheus metrics (`GET /metrics` renders them).
    pub fn metrics(&self) -> Metrics {
        self.metrics.clone()
    }

    /// Time from `start` to the admin socket answering.
    pub fn ready_after(&self) -> Duration {
        self.ready_after
    }

    /// Time since `start`.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    /// A token that fires when the daemon stops (also on an internal fatal error).
    pub fn stopped(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Stops the gateway: STOPPING=1, cancel, wait for every task (modems finish an in-flight
    /// send), remove the socket file, stop the simulator.
    pub async fn shutdown(mut self) {
        notify::stopping();
        self.shutdown.cancel();
        self.tracker.wait().await;
        if let Some(s) = self.supervisor.take() {
            let _ = s.await;
        }
        logging::publish_to(None);
        if let Err(e) = admin::remove_socket(&self.socket) {
            warn!(error = %e, "could not remove the admin socket");
        }
        if let Some(sim) = self.sim.take() {
            sim.shutdown().await;
        }
        info!("gsmgate stopped");
    }
}

impl Drop for RunningDaemon {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Runs the gateway until `shutdown` fires: the library form of `gsmgate daemon`.
pub async fn run(cfg: Config, shutdown: CancellationToken) -> Result<(), DaemonError> {
    let opts = DaemonOptions {
        announce: true,
        ..DaemonOptions::default()
    };
    let daemon = Daemon::start_with(cfg, opts, shutdown.clone()).await?;
    daemon.stopped().cancelled().await;
    daemon.shutdown().await;
    Ok(())
}
