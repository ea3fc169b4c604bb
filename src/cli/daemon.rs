//! `gsmgate daemon [--config FILE]`: runs the gateway in the foreground until SIGTERM or SIGINT.
//! Wiring only: it loads the configuration (the embedded default without `--config`: a simulated
//! pool of two modems with state in ./gsmgate-state), installs logging, builds a multi-thread
//! runtime, turns the signals into the shutdown token and runs [`crate::daemon::run`]. Exit 0 after
//! a clean shutdown, 1 otherwise, with what failed on stderr: one line, then one indented line
//! per cause (each said once; the file and "read-only", "disk full" or "corrupt" when that is the
//! cause).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::daemon;

/// Flags of `gsmgate daemon`.
#[derive(Debug, Args)]
pub struct DaemonArgs {
    /// Configuration file (TOML). Without it the embedded default runs: two simulated modems,
    /// state and admin socket in ./gsmgate-state.
    #[arg(long, short = 'c', value_name = "FILE", env = "GSMGATE_CONFIG")]
    pub config: Option<PathBuf>,
}

fn load(args: &DaemonArgs) -> anyhow::Result<Config> {
    match &args.config {
        Some(path) => Ok(Config::from_file(path)?),
        None => Ok(Config::embedded_default()),
    }
}

async fn run_async(cfg: Config) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let token = CancellationToken::new();
    let on_signal = token.clone();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
        on_signal.cancel();
    });
    daemon::run(cfg, token).await?;
    Ok(())
}

/// The lines printed for a failed start: what failed, then each cause once on its own line
/// (`daemon::failure::explain`: no cause repeated, the file named with "read-only", "disk full"
/// or "corrupt" when that is the cause).
pub fn error_lines(e: &anyhow::Error) -> Vec<String> {
    let err: &(dyn std::error::Error + 'static) = e.as_ref();
    let mut lines = daemon::failure::explain(err);
    if lines.is_empty() {
        lines.push(e.to_string());
    }
    lines
}

fn fail_with(e: &anyhow::Error) -> ExitCode {
    let lines = error_lines(e);
    let mut it = lines.iter();
    if let Some(first) = it.next() {
        eprintln!("gsmgate daemon: {first}");
    }
    for cause in it {
        eprintln!("  {cause}");
    }
    ExitCode::from(super::EXIT_FAILURE)
}

/// Runtime worker threads at most. The daemon's async work is a few serial ports, sockets and
/// timers; store calls run on the blocking pool. Two workers keep a stalled task from holding
/// up the rest, and on a Pi's four cores spare two threads (their stacks and malloc arenas)
/// that had nothing to do (docs/daemon.md, "Footprint").
const WORKERS: usize = 2;

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs the verb.
pub fn run(args: DaemonArgs) -> ExitCode {
    let fail = |e: &dyn std::fmt::Display| {
        eprintln!("gsmgate daemon: {e}");
        ExitCode::from(super::EXIT_FAILURE)
    };
    let cfg = match load(&args) {
        Ok(c) => c,
        Err(e) => return fail_with(&e),
    };
    if let Err(e) = daemon::logging::init(&cfg.daemon.log) {
        return fail(&e);
    }
    daemon::memory::limit_malloc_arenas();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .worker_threads(WORKERS.min(cores()))
        .thread_name("gsmgate")
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the runtime: {e}")),
    };
    match rt.block_on(run_async(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail_with(&e),
    }
}
