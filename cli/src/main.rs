//! `cairn`: parses arguments and runs the command; errors are one line on stderr.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cairn_cli::Cli::parse();
    match cairn_cli::run(cli).map_err(anyhow::Error::from) {
        Ok(code) => code,
        Err(e) => {
            // One line: the error, then each cause once (no library message repeats its
            // cause, see the rule atop every error.rs).
            eprintln!("cairn: {e:#}");
            ExitCode::from(2)
        }
    }
}
