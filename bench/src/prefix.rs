//! The scratch prefix of the checks that write (`check perf`, `check datascale`): they refuse
//! a prefix that already has keys, count what they wrote and delete the prefix afterwards.

use std::future::Future;
use std::time::Duration;

use etcd_client::{Client, DeleteOptions, GetOptions};

use crate::load::Halt;
use crate::Error;

/// How long one of these requests may take (deleting a million keys takes a while).
const TIMEOUT: Duration = Duration::from_secs(120);

fn timed_out() -> etcd_client::Error {
    etcd_client::Error::IoError(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("no answer within {TIMEOUT:?}"),
    ))
}

fn failed(what: &'static str, prefix: &str) -> impl FnOnce(etcd_client::Error) -> Error {
    let prefix = prefix.to_string();
    move |source| Error::Prefix {
        what,
        prefix,
        source,
    }
}

/// How many keys `prefix` holds.
pub async fn count(client: &Client, prefix: &str) -> Result<i64, Error> {
    let mut kv = client.kv_client();
    let get = kv.get(
        prefix,
        Some(GetOptions::new().with_prefix().with_count_only()),
    );
    let resp = tokio::time::timeout(TIMEOUT, get)
        .await
        .map_err(|_| timed_out())
        .and_then(|r| r)
        .map_err(failed("counting the keys under", prefix))?;
    Ok(resp.count())
}

/// Fails with [`Error::PrefixNotEmpty`] when `prefix` holds any key.
pub async fn ensure_empty(client: &Client, prefix: &str) -> Result<(), Error> {
    if count(client, prefix).await? > 0 {
        return Err(Error::PrefixNotEmpty {
            prefix: prefix.to_string(),
        });
    }
    Ok(())
}

/// Deletes every key under `prefix`.
pub async fn delete(client: &Client, prefix: &str) -> Result<(), Error> {
    let mut kv = client.kv_client();
    let del = kv.delete(prefix, Some(DeleteOptions::new().with_prefix()));
    tokio::time::timeout(TIMEOUT, del)
        .await
        .map_err(|_| timed_out())
        .and_then(|r| r)
        .map_err(failed("deleting the keys under", prefix))?;
    Ok(())
}

/// `work`'s outcome; on Ctrl-C, `halt` is halted, `work` is awaited to its (early) end so
/// that no request is left in flight, and [`Error::Interrupted`] is returned — the caller then
/// deletes the prefix.
pub async fn unless_interrupted<T>(
    halt: &Halt,
    work: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    let mut work = std::pin::pin!(work);
    tokio::select! {
        outcome = &mut work => outcome,
        // Without a signal handler the work simply runs to its end.
        Ok(()) = tokio::signal::ctrl_c() => {
            halt.halt();
            // Halted runs start no request; those in flight end within the request timeout.
            let _ = work.await;
            Err(Error::Interrupted)
        }
    }
}
