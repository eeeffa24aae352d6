//! Waiting on conditions with a timeout (never on fixed sleeps).

use std::time::{Duration, Instant};

use crate::Error;

/// How often [`wait_until`] (and everything built on it) re-checks its condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Polls `cond` every [`POLL_INTERVAL`] until it returns `true`, for at most `timeout`.
///
/// `cond` is always called at least once, and once more at the deadline. On timeout the
/// error names `what`, so write it as the thing awaited ("key /a to appear").
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
) -> Result<(), Error> {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return Ok(());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::Timeout {
                what: what.to_string(),
                timeout,
            });
        }
        std::thread::sleep(POLL_INTERVAL.min(deadline - now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_until_succeeds_or_times_out_with_a_clear_error() {
        let mut calls = 0;
        wait_until("the third call", Duration::from_secs(5), || {
            calls += 1;
            calls == 3
        })
        .unwrap();
        assert_eq!(calls, 3);

        let start = Instant::now();
        let err = wait_until("never", Duration::from_millis(100), || false).unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert!(matches!(err, Error::Timeout { .. }));
        assert_eq!(err.to_string(), "timed out after 100ms waiting for never");
    }
}
