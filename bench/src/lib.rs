//! The checks and load generators operators run before trusting a machine or a cluster with
//! etcd: the disk's fdatasync latency ([`disk`]), etcd benchmark's workloads ([`load`],
//! reported by [`report`]), etcdctl's performance check ([`perf`]) and memory growth with the
//! data ([`datascale`], reading [`metrics`]); the writing checks use a scratch [`prefix`].

pub mod datascale;
pub mod disk;
pub mod error;
pub mod load;
pub mod metrics;
pub mod perf;
pub mod prefix;
pub mod report;

pub use error::Error;

/// Runs `f` to completion on a runtime of its own, for synchronous callers of the async checks.
pub(crate) fn block_on<F: std::future::Future>(f: F) -> Result<F::Output, Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    Ok(runtime.block_on(f))
}
