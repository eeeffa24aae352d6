//! How the commands that take `--endpoints` log in to a cluster with auth enabled (`bench`,
//! `check perf`, `check datascale`), defined once: etcd benchmark's `--user`, the password
//! from a file or the environment, never from the command line.

use std::path::PathBuf;

use cairn_client::Credentials;
use clap::Args;

use crate::Error;

/// A user to log in as; flatten it into a command's arguments.
#[derive(Clone, Debug, Default, Args)]
pub struct LoginArgs {
    /// Log in as this user (a cluster with auth enabled); the password comes from
    /// --password-file or CAIRN_PASSWORD.
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,
    /// A file whose first line is --user's password.
    #[arg(long, global = true, value_name = "FILE", requires = "user")]
    pub password_file: Option<PathBuf>,
}

impl LoginArgs {
    /// The login these flags give; `None` without `--user`.
    pub fn credentials(&self) -> Result<Option<Credentials>, Error> {
        let Some(user) = &self.user else {
            return Ok(None);
        };
        let password = match &self.password_file {
            Some(path) => std::fs::read_to_string(path)
                .map_err(|source| Error::PasswordFile {
                    path: path.clone(),
                    source,
                })?
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
            None => std::env::var("CAIRN_PASSWORD").map_err(|_| Error::NoPassword(user.clone()))?,
        };
        Ok(Some(Credentials {
            user: user.clone(),
            password,
        }))
    }
}
