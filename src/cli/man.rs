//! `gsmgate completions SHELL` and `gsmgate man [--dir DIR]`: shell completions and man pages
//! generated from the clap definitions of [`super::Cli`], so they can never drift from the real
//! command line. The Debian packaging script (tests/packaging/build-deb.sh) runs the freshly built
//! binary to produce the files it ships; users can also install them by hand.
//!
//! Why verbs and not a build.rs: a build script cannot see the CLI types without compiling the whole
//! crate a second time; running the binary costs nothing and, for the arm64 package, works under
//! qemu-user. The pages are arch-independent, so either binary gives the same bytes.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use super::Cli;

/// Arguments of `gsmgate completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to generate completions for.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Arguments of `gsmgate man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write gsmgate.1 and one page per verb (gsmgate-doctor.1, gsmgate-pdu-decode.1 ...) into
    /// this directory instead of printing gsmgate.1 to stdout.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Print the completion script for one shell.
pub fn completions(args: CompletionsArgs) -> ExitCode {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "gsmgate", &mut out);
    match out.flush() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("writing completions: {e}")),
    }
}

/// Print the top-level man page, or write every page into a directory.
pub fn man(args: ManArgs) -> ExitCode {
    let cmd = Cli::command();
    match args.dir {
        Some(dir) => {
            if let Err(e) = std::fs::create_dir_all(&dir) {
                return fail(&format!("cannot create {}: {e}", dir.display()));
            }
            match clap_mangen::generate_to(cmd, &dir) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&format!("writing man pages into {}: {e}", dir.display())),
            }
        }
        None => {
            let mut out = std::io::stdout().lock();
            let rendered = clap_mangen::Man::new(cmd)
                .render(&mut out)
                .and_then(|()| out.flush());
            match rendered {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => fail(&format!("writing the man page: {e}")),
            }
        }
    }
}

fn fail(msg: &str) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(super::EXIT_FAILURE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn man_pages_cover_every_verb() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            man(ManArgs {
                dir: Some(dir.path().to_owned())
            }),
            ExitCode::SUCCESS
        );
        for page in [
            "gsmgate.1",
            "gsmgate-doctor.1",
            "gsmgate-modems.1",
            "gsmgate-modems-scan.1",
            "gsmgate-pdu-decode.1",
        ] {
            let text = std::fs::read_to_string(dir.path().join(page))
                .unwrap_or_else(|e| panic!("{page}: {e}"));
            assert!(text.contains(".TH"), "{page} is not roff");
        }
    }

    #[test]
    fn bash_completion_knows_the_new_verbs() {
        let mut cmd = Cli::command();
        let mut out = Vec::new();
        clap_complete::generate(Shell::Bash, &mut cmd, "gsmgate", &mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("doctor"));
        assert!(text.contains("scan"));
    }
}
