//! Questions on the terminal before a command changes hosts; scripts answer with `--yes`.

use std::io::{BufRead, IsTerminal, Write};

use crate::Error;

/// The line typed after `prompt`, or `None` when stdin is not a terminal (nobody to ask).
pub(crate) fn ask(prompt: &str) -> Result<Option<String>, Error> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return Ok(None);
    }
    print!("{prompt}");
    std::io::stdout().flush().map_err(Error::Terminal)?;
    let mut answer = String::new();
    stdin
        .lock()
        .read_line(&mut answer)
        .map_err(Error::Terminal)?;
    Ok(Some(answer.trim().to_string()))
}

/// Asks `question` as a yes/no question; without a terminal, refuses (scripts pass `--yes`).
pub(crate) fn confirm(question: &str) -> Result<bool, Error> {
    confirm_or(question, Error::NeedsYes)
}

/// Like [`confirm`], with `no_terminal` as the error when nobody can answer.
pub(crate) fn confirm_or(question: &str, no_terminal: Error) -> Result<bool, Error> {
    let answer = ask(&format!("{question} [y/N] "))?.ok_or(no_terminal)?;
    Ok(matches!(answer.as_str(), "y" | "Y" | "yes"))
}

/// Asks for an encrypted SSH key's passphrase on the terminal, without echo; never when
/// stdin is not a terminal (a script gets the error that says how to give one).
pub(crate) struct TerminalPassphrase;

impl cairn_provisioner::ssh_auth::PassphrasePrompt for TerminalPassphrase {
    fn passphrase(&self, path: &std::path::Path) -> Option<String> {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        rpassword::prompt_password(format!("Passphrase for {}: ", path.display())).ok()
    }
}
