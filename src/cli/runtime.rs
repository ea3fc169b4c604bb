//! The one async set-up of the short-lived verbs (admin requests, `doctor`, `modems scan`): a
//! current-thread tokio runtime, built per invocation, and the mapping of a verb's outcome to the
//! process exit code. It owns nothing else: what a verb prints is [`super::output`]'s, what it asks
//! the daemon is the verb's own.
//!
//! Why a current-thread runtime: each of these verbs waits on one socket or a handful of serial
//! ports in turn, so worker threads would only add start-up time. `gsmgate daemon` and `gsmgate
//! sim` are long-running services with their own multi-thread runtimes (see their files) and do
//! not come through here.

use std::future::Future;
use std::process::ExitCode;

/// How a verb ended, for the exit code.
pub(super) enum Outcome {
    Ok,
    /// The request was answered but refused something (bad import rows): exit 1, already printed.
    Refused,
}

/// Runs `fut` to completion on a fresh current-thread runtime. When the runtime cannot be built
/// the reason is printed and the exit code to return is given back instead.
pub(super) fn run_current_thread<T>(fut: impl Future<Output = T>) -> Result<T, ExitCode> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Ok(rt.block_on(fut)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            Err(ExitCode::from(super::EXIT_FAILURE))
        }
    }
}

/// Runs a verb and maps its outcome to an exit code: an error is one `error: …` line on stderr
/// with its whole cause chain, and exit 1.
pub(super) fn block_on(fut: impl Future<Output = anyhow::Result<Outcome>>) -> ExitCode {
    match run_current_thread(fut) {
        Ok(Ok(Outcome::Ok)) => ExitCode::SUCCESS,
        Ok(Ok(Outcome::Refused)) => ExitCode::from(super::EXIT_FAILURE),
        Ok(Err(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(super::EXIT_FAILURE)
        }
        Err(code) => code,
    }
}
