//! `gsmgate sim`: runs the modem simulator standalone until SIGTERM or SIGINT. Wiring only: it
//! turns flags into a [`SimConfig`], starts [`Simulator`], prints one JSON line with the paths
//! once they exist, and removes them on the way out.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use crate::sim::{MsRange, Profile, SimConfig, Simulator};

/// Flags of `gsmgate sim`.
#[derive(Debug, Args)]
pub struct SimArgs {
    /// Number of simulated modems.
    #[arg(long, default_value_t = 1)]
    pub modems: usize,
    /// Folder for DIR/modemN, DIR/modemN.audio and DIR/control.sock (created if missing).
    #[arg(long)]
    pub dir: PathBuf,
    /// Profile per modem, in order (generic, huawei, simcom, quectel, sim800, wavecom, zte); one
    /// value applies to all modems, missing ones are generic.
    #[arg(long = "profile")]
    pub profiles: Vec<Profile>,
    /// SIM PIN for every modem (SIMs start locked).
    #[arg(long)]
    pub pin: Option<String>,
    /// SMS storage capacity per memory.
    #[arg(long, default_value_t = 30)]
    pub capacity: usize,
    /// Delay from Ctrl-Z to +CMGS, as MIN-MAX milliseconds.
    #[arg(long, default_value = "300-1500", value_name = "MIN-MAX")]
    pub send_latency_ms: String,
    /// Delay of other commands, as MIN-MAX milliseconds.
    #[arg(long, default_value = "2-20", value_name = "MIN-MAX")]
    pub latency_ms: String,
    /// Period of Huawei ^RSSI/^BOOT noise in milliseconds (0 = off).
    #[arg(long, default_value_t = 10_000)]
    pub noise_interval_ms: u64,
    /// Seed for latencies and fault rates.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
}

fn range(s: &str, flag: &str) -> anyhow::Result<MsRange> {
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: u64 = a.trim().parse().with_context(|| format!("--{flag}: {s:?} is not MIN-MAX"))?;
    let b: u64 = b.trim().parse().with_context(|| format!("--{flag}: {s:?} is not MIN-MAX"))?;
    if b < a {
        bail!("--{flag}: MAX is below MIN in {s:?}");
    }
    Ok(MsRange(a, b))
}

fn config(args: &SimArgs) -> anyhow::Result<SimConfig> {
    if args.modems == 0 {
        bail!("--modems must be at least 1");
    }
    let send = range(&args.send_latency_ms, "send-latency-ms")?;
    let default = range(&args.latency_ms, "latency-ms")?;
    let mut cfg = SimConfig::new(&args.dir, args.modems, Profile::Generic);
    cfg.seed = args.seed;
    for (i, spec) in cfg.modems.iter_mut().enumerate() {
        spec.profile = match args.profiles.as_slice() {
            [one] => *one,
            many => many.get(i).copied().unwrap_or_default(),
        };
        spec.pin = args.pin.clone();
        spec.capacity = args.capacity;
        spec.latency.send = send;
        spec.latency.default = default;
        spec.noise_interval_ms = args.noise_interval_ms;
    }
    Ok(cfg)
}

async fn run_async(args: SimArgs) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let cfg = config(&args)?;
    let mut term = signal(SignalKind::terminate()).context("installing the SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing the SIGINT handler")?;
    let sim = Simulator::start(cfg).await.context("starting the simulator")?;
    println!("{}", serde_json::to_string(&sim.paths()).context("printing the paths")?);
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    sim.shutdown().await;
    Ok(())
}

/// Runs the verb.
pub fn run(args: SimArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("gsmgate sim: cannot start the runtime: {e}");
            return ExitCode::from(super::EXIT_FAILURE);
        }
    };
    match rt.block_on(run_async(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gsmgate sim: {e:#}");
            ExitCode::from(super::EXIT_FAILURE)
        }
    }
}
