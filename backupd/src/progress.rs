//! Where transfers report their bytes: a progress bar in the CLI, nowhere in the daemon and
//! in tests. The library only counts; drawing is the binary's business.

/// Told about one transfer at a time (a snapshot streamed up, an object fetched).
pub trait TransferProgress: Send + Sync {
    /// A transfer starts; its size when known.
    fn begin(&self, total: Option<u64>);
    /// Its size, once known.
    fn set_total(&self, total: u64);
    /// `bytes` more went through.
    fn advance(&self, bytes: u64);
    /// The transfer is over (done or failed).
    fn end(&self);
}

/// Progress that goes nowhere.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoProgress;

impl TransferProgress for NoProgress {
    fn begin(&self, _: Option<u64>) {}
    fn set_total(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn end(&self) {}
}
