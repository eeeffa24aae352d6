//! `cairn completions bash|zsh|fish|elvish|powershell`: the shell's completion script on
//! stdout, from the same clap definition the binary parses with, so it never drifts.

use std::process::ExitCode;

use clap::{Args, CommandFactory};
use clap_complete::Shell;

use crate::{Cli, Error};

/// `cairn completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell.
    pub shell: Shell,
}

/// Prints the script.
pub fn run(args: &CompletionsArgs) -> Result<ExitCode, Error> {
    clap_complete::generate(
        args.shell,
        &mut Cli::command(),
        "cairn",
        &mut std::io::stdout(),
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shell's script names the commands and the shared flags.
    #[test]
    fn every_shell_gets_a_script_with_the_commands() {
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "cairn", &mut out);
            let text = String::from_utf8(out).expect("utf-8");
            for word in ["restore", "inventory", "completions", "color"] {
                assert!(text.contains(word), "{shell}: {word}");
            }
        }
    }
}
