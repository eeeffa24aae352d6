//! `cairn`: parses arguments and runs the command; errors are one line on stderr (with `-v`,
//! the error and then each cause on a line of its own).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cairn_cli::Cli::parse();
    let verbose = cli.ui.verbose;
    match cairn_cli::run(cli).map_err(anyhow::Error::from) {
        Ok(code) => code,
        Err(e) if verbose => {
            eprintln!("cairn: {e}");
            for cause in e.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::from(2)
        }
        Err(e) => {
            // One line: the error, then each cause once (no library message repeats its
            // cause, see the rule atop every error.rs).
            eprintln!("cairn: {e:#}");
            ExitCode::from(2)
        }
    }
}
