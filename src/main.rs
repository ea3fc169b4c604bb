//! The `gsmgate` binary: parses the command line and hands over to [`gsmgate::cli`]. All wiring
//! lives in the library so tests can drive the same code in-process.

fn main() -> std::process::ExitCode {
    gsmgate::cli::main()
}
