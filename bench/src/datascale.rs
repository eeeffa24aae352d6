//! `check datascale`: how a member's memory grows with its data. Keys with 1 KiB values are
//! written in steps until the scratch prefix holds 10,000, then 100,000, then 1,000,000 of
//! them (or the steps asked for); after each step the member's resident memory is read from
//! its `/metrics` and compared with the figure before the first write. The prefix must be
//! empty at the start and is deleted at the end, also when a step fails.

use std::fmt;

use serde::Serialize;

use crate::load::{self, Halt, LoadSpec, Mode, Progress, Stop, Tls};
use crate::report::ErrorCount;
use crate::{metrics, prefix, Error};

/// The check's default prefix.
pub const DEFAULT_PREFIX: &str = "/cairn-check-datascale/";
/// The default steps: keys under the prefix after each.
pub const DEFAULT_STEPS: [u64; 3] = [10_000, 100_000, 1_000_000];
/// Value length in bytes.
pub const VALUE_SIZE: usize = 1024;
/// Digits of the key index after the prefix.
const KEY_SIZE: usize = 8;
/// Concurrent clients writing (etcdctl's datascale uses 50 for its smallest load).
const CLIENTS: usize = 50;
/// Connections they share.
const CONNS: usize = 10;

/// One run of the check.
#[derive(Clone, Debug, PartialEq)]
pub struct DatascaleCheck {
    /// Client URLs; keys are written through all of them.
    pub endpoints: Vec<String>,
    /// The `/metrics` URL whose memory is reported; by default the first endpoint's.
    pub metrics_url: String,
    /// The scratch prefix; it must be empty and is deleted afterwards.
    pub prefix: String,
    /// Keys under the prefix after each step, increasing.
    pub steps: Vec<u64>,
    /// TLS, for `https` endpoints.
    pub tls: Option<Tls>,
    /// A login, for a cluster with auth enabled.
    pub credentials: Option<cairn_client::Credentials>,
}

impl DatascaleCheck {
    /// The default check against `endpoints`, stopping once `max` keys are written (the
    /// default steps up to and including `max`).
    pub fn new(endpoints: Vec<String>, max: u64) -> Self {
        let metrics_url = metrics::metrics_url(endpoints.first().map_or("", String::as_str));
        Self {
            endpoints,
            metrics_url,
            prefix: DEFAULT_PREFIX.to_string(),
            steps: DEFAULT_STEPS.into_iter().filter(|&n| n <= max).collect(),
            tls: None,
            credentials: None,
        }
    }

    fn validate(&self) -> Result<(), Error> {
        let increasing = self.steps.windows(2).all(|w| w[0] < w[1]);
        if self.steps.first().is_none_or(|&n| n == 0) || !increasing {
            return Err(Error::Steps {
                steps: self.steps.clone(),
            });
        }
        Ok(())
    }

    /// The load of step `n` (0-based): `count` puts of distinct keys under the step's own
    /// sub-prefix.
    fn spec(&self, n: usize, count: u64) -> LoadSpec {
        LoadSpec {
            conns: CONNS,
            clients: CLIENTS,
            stop: Stop::Total(count),
            key_size: KEY_SIZE,
            val_size: VALUE_SIZE,
            key_space_size: count,
            sequential_keys: true,
            tls: self.tls.clone(),
            credentials: self.credentials.clone(),
            key_prefix: format!("{}{n}/", self.prefix).into_bytes(),
            ..LoadSpec::new(Mode::Put, self.endpoints.clone())
        }
    }
}

/// What one step measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    /// Keys under the prefix after the step, as the member counts them.
    pub keys: i64,
    /// Puts issued in the step.
    pub written: u64,
    /// Puts that failed.
    pub errors: u64,
    /// The distinct errors, most frequent first.
    pub error_kinds: Vec<ErrorCount>,
    /// How long the step's writes took, in seconds.
    pub elapsed_secs: f64,
    /// Puts per second.
    pub throughput: f64,
    /// The member's resident memory after the step, in bytes.
    pub memory_bytes: u64,
    /// Growth since before the first step, in bytes (negative if it shrank).
    pub memory_growth_bytes: i64,
}

/// What the check measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DatascaleReport {
    /// The scratch prefix (deleted afterwards).
    pub prefix: String,
    /// Value size of every key, in bytes.
    pub value_size: usize,
    /// Where memory was read.
    pub metrics_url: String,
    /// Resident memory before the first write, in bytes.
    pub memory_before_bytes: u64,
    /// The steps, in order.
    pub steps: Vec<Step>,
    /// Whether every put succeeded.
    pub passed: bool,
}

fn mib(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

impl fmt::Display for DatascaleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "check datascale: {}-byte values under {:?}; memory from {}",
            self.value_size, self.prefix, self.metrics_url
        )?;
        writeln!(
            f,
            "memory before: {:.1} MiB",
            mib(self.memory_before_bytes as f64)
        )?;
        writeln!(
            f,
            "{:>10}  {:>12}  {:>8}  {:>12}  {:>12}",
            "keys", "writes/s", "errors", "memory MiB", "growth MiB"
        )?;
        for s in &self.steps {
            writeln!(
                f,
                "{:>10}  {:>12.1}  {:>8}  {:>12.1}  {:>+12.1}",
                s.keys,
                s.throughput,
                s.errors,
                mib(s.memory_bytes as f64),
                mib(s.memory_growth_bytes as f64)
            )?;
            for e in &s.error_kinds {
                writeln!(f, "  [{}]\t{}", e.count, e.error)?;
            }
        }
        writeln!(
            f,
            "{}",
            if self.passed {
                "PASS"
            } else {
                "FAIL: some writes failed"
            }
        )
    }
}

async fn steps(
    check: &DatascaleCheck,
    before: u64,
    admin: &etcd_client::Client,
    progress: &Progress,
    halt: &Halt,
) -> Result<Vec<Step>, Error> {
    let mut done = Vec::with_capacity(check.steps.len());
    let mut written_so_far = 0;
    for (n, &target) in check.steps.iter().enumerate() {
        if halt.is_halted() {
            break;
        }
        let written = target - written_so_far;
        written_so_far = target;
        let spec = check.spec(n, written);
        let load = load::run_until_halted(&spec, progress.clone(), halt.clone()).await?;
        let keys = prefix::count(admin, &check.prefix).await?;
        let memory_bytes = metrics::resident_memory(check.tls.as_ref(), &check.metrics_url).await?;
        done.push(Step {
            keys,
            written,
            errors: load.errors,
            error_kinds: load.error_kinds,
            elapsed_secs: load.elapsed_secs,
            throughput: load.throughput,
            memory_bytes,
            memory_growth_bytes: memory_bytes as i64 - before as i64,
        });
    }
    Ok(done)
}

/// Runs the check: refuses a non-empty prefix, writes step by step reading memory after each,
/// and deletes the prefix (also when a step failed or the check was interrupted).
pub async fn run(check: &DatascaleCheck, progress: Progress) -> Result<DatascaleReport, Error> {
    check.validate()?;
    let admin = load::connect(&LoadSpec {
        conns: 1,
        ..check.spec(0, 1)
    })
    .await?
    .remove(0);
    prefix::ensure_empty(&admin, &check.prefix).await?;
    let before = metrics::resident_memory(check.tls.as_ref(), &check.metrics_url).await?;
    let halt = Halt::default();
    let work = steps(check, before, &admin, &progress, &halt);
    let outcome = prefix::unless_interrupted(&halt, work).await;
    let cleanup = prefix::delete(&admin, &check.prefix).await;
    let steps = outcome?;
    cleanup?;
    Ok(DatascaleReport {
        prefix: check.prefix.clone(),
        value_size: VALUE_SIZE,
        metrics_url: check.metrics_url.clone(),
        memory_before_bytes: before,
        passed: steps.iter().all(|s| s.errors == 0),
        steps,
    })
}

/// [`run`] on a runtime of its own, for synchronous callers.
pub fn run_blocking(check: &DatascaleCheck, progress: Progress) -> Result<DatascaleReport, Error> {
    crate::block_on(run(check, progress))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_stop_at_the_max() {
        let ep = vec!["http://127.0.0.1:2379".to_string()];
        assert_eq!(DatascaleCheck::new(ep.clone(), 10_000).steps, [10_000]);
        assert_eq!(
            DatascaleCheck::new(ep.clone(), 1_000_000).steps,
            DEFAULT_STEPS
        );
        let c = DatascaleCheck::new(ep, 100_000);
        assert_eq!(c.steps, [10_000, 100_000]);
        assert_eq!(c.metrics_url, "http://127.0.0.1:2379/metrics");
    }

    #[test]
    fn steps_must_increase_from_one() {
        let ok = DatascaleCheck::new(vec!["127.0.0.1:2379".into()], 100_000);
        assert!(ok.validate().is_ok());
        for steps in [vec![], vec![0, 5], vec![5, 5], vec![10, 5]] {
            let bad = DatascaleCheck {
                steps: steps.clone(),
                ..ok.clone()
            };
            assert!(
                matches!(bad.validate(), Err(Error::Steps { .. })),
                "{steps:?}"
            );
        }
    }

    #[test]
    fn each_step_writes_distinct_keys_under_its_own_sub_prefix() {
        let c = DatascaleCheck::new(vec!["127.0.0.1:2379".into()], 100_000);
        let spec = c.spec(1, 90_000);
        assert_eq!(spec.stop, Stop::Total(90_000));
        assert_eq!(spec.key_space_size, 90_000);
        assert!(spec.sequential_keys);
        assert_eq!(spec.val_size, 1024);
        assert_eq!(spec.key_prefix, b"/cairn-check-datascale/1/");
    }
}
