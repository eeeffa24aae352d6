//! `cairn man [--out DIR]`: roff man pages, `cairn.1` and one per command (`cairn-backup-restore.1`),
//! from the same clap definition the binary parses with.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, CommandFactory};

use crate::{Cli, Error};

/// `cairn man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// The directory the pages are written to (created if missing), e.g.
    /// /usr/local/share/man/man1.
    #[arg(long, default_value = "man")]
    pub out: PathBuf,
}

/// Writes the pages and lists them.
pub fn run(args: &ManArgs) -> Result<ExitCode, Error> {
    let write = |source| Error::Write {
        path: args.out.clone(),
        source,
    };
    std::fs::create_dir_all(&args.out).map_err(write)?;
    clap_mangen::generate_to(Cli::command(), &args.out).map_err(write)?;
    let mut pages: Vec<_> = std::fs::read_dir(&args.out)
        .map_err(write)?
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("cairn") && n.ends_with(".1"))
        .collect();
    pages.sort();
    println!("{} man pages in {}", pages.len(), args.out.display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_for_the_binary_and_every_command() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("man1");
        run(&ManArgs { out: out.clone() }).expect("pages");
        let page = std::fs::read_to_string(out.join("cairn-backup-restore.1")).expect("page");
        assert!(page.contains(".TH cairn-backup-restore 1"), "{page}");
        assert!(page.contains("\\-\\-to\\-revision"), "{page}");
        assert!(out.join("cairn.1").exists());
    }
}
