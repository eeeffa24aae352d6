//! A storage failure the member cannot go on from (the store can no longer be trusted to
//! match the log or what clients were told): reported here, and the binary's `main`, which
//! waits for one on a thread of its own, exits at once, like etcd. Library code never exits
//! the process; the thread that hit the failure stops where it is.

use std::sync::{Condvar, Mutex, OnceLock};

/// The first failure reported (later ones are logged only).
static FAILURE: Mutex<Option<String>> = Mutex::new(None);
static REPORTED: OnceLock<Condvar> = OnceLock::new();

fn reported() -> &'static Condvar {
    REPORTED.get_or_init(Condvar::new)
}

/// Reports `e` and stops the calling thread for good: nothing after a fatal storage error may
/// run on this member.
pub(crate) fn fatal(e: &crate::Error) -> ! {
    tracing::error!(error = %crate::error::chain(e), "storage failure, stopping");
    {
        let mut failure = FAILURE
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        failure.get_or_insert_with(|| crate::error::chain(e));
    }
    reported().notify_all();
    loop {
        std::thread::park();
    }
}

/// Blocks until a fatal failure is reported; its message. For the binary's `main`, which
/// exits the process then.
pub fn wait_for_failure() -> String {
    let mut failure = FAILURE
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        if let Some(e) = failure.as_ref() {
            return e.clone();
        }
        failure = reported()
            .wait(failure)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
    }
}
