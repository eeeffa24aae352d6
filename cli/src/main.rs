//! `cairn`: parses arguments and runs the command; errors are one line on stderr.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cairn_cli::Cli::parse();
    match cairn_cli::run(cli).map_err(anyhow::Error::from) {
        Ok(code) => code,
        Err(e) => {
            // Every cause once: most library errors already end with their direct cause,
            // while deeper causes (a refused connection under a transport error) are only in
            // the chain.
            let mut line = String::new();
            for cause in e.chain() {
                let text = cause.to_string();
                if !line.contains(&text) {
                    if !line.is_empty() {
                        line.push_str(": ");
                    }
                    line.push_str(&text);
                }
            }
            eprintln!("cairn: {line}");
            ExitCode::from(2)
        }
    }
}
