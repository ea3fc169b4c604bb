//! `gsmgate check-config FILE` and `gsmgate check-config --default`: validate a configuration file
//! (the systemd unit runs this as `ExecStartPre`, so a bad file stops the start with the reason in
//! the journal) or print the embedded default. Wiring only; all checking lives in
//! [`crate::config`].

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use super::output::plural;
use crate::config::{Config, ConfigError, EMBEDDED_DEFAULT_TOML};

/// Arguments of `gsmgate check-config`.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("what").required(true).args(["file", "default"]))]
pub struct CheckConfigArgs {
    /// The configuration file to check.
    pub file: Option<PathBuf>,
    /// Print the embedded default configuration (what `gsmgate daemon` runs without --config).
    #[arg(long)]
    pub default: bool,
}

/// Exit 0 and print `FILE: OK (N modems: names)` for a valid file; exit 1 and print every issue
/// (`file:line: key: message`) to stderr otherwise.
pub fn run(args: CheckConfigArgs) -> ExitCode {
    let Some(file) = args.file else {
        // `--default`: the group makes one of the two present.
        let mut out = std::io::stdout().lock();
        return match out.write_all(EMBEDDED_DEFAULT_TOML.as_bytes()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(_) => ExitCode::from(super::EXIT_FAILURE),
        };
    };
    match Config::from_file(&file) {
        Ok(config) => {
            let names = config.modem_names();
            println!(
                "{}: OK ({} modem{}: {})",
                file.display(),
                names.len(),
                plural(names.len() as u64),
                names.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(ConfigError::Invalid { issues }) => {
            for issue in &issues {
                eprintln!("{issue}");
            }
            ExitCode::from(super::EXIT_FAILURE)
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(super::EXIT_FAILURE)
        }
    }
}
