//! `check perf`: etcdctl 3.4's performance check. A profile's write rate is offered by its
//! number of clients (each on its own connection) for 60 s: puts of random 256-byte keys under
//! a scratch prefix with 1,024-byte values, as etcdctl writes them. The cluster passes when
//! there were no errors, the throughput was above 90% of the target, the slowest request took
//! at most 0.5 s and the standard deviation was at most 0.1 s — etcdctl's criteria.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

use crate::load::{self, Halt, LoadSpec, Mode, Progress, Stop, Tls};
use crate::report::LoadReport;
use crate::{prefix, Error};

/// etcdctl's default prefix for the check's keys.
pub const DEFAULT_PREFIX: &str = "/etcdctl-check-perf/";
/// How long etcdctl runs a profile.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(60);
/// Key length after the prefix, in bytes (etcdctl's `ksize`).
pub const KEY_SIZE: usize = 256;
/// Value length in bytes (etcdctl's `vsize`).
pub const VALUE_SIZE: usize = 1024;
/// The throughput must be above this share of the target.
pub const MIN_THROUGHPUT_SHARE: f64 = 0.9;
/// The slowest request may take at most this many seconds.
pub const MAX_SLOWEST_SECS: f64 = 0.5;
/// The latency's standard deviation may be at most this many seconds.
pub const MAX_STDDEV_SECS: f64 = 0.1;

/// One of etcdctl's load profiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Profile {
    /// Its name (`s`, `m`, `l`, `xl`).
    pub name: &'static str,
    /// Target writes per second over all clients.
    pub writes_per_sec: u64,
    /// Concurrent clients, each on its own connection.
    pub clients: usize,
}

/// etcdctl's profiles: small, medium, large and extra large.
pub const PROFILES: [Profile; 4] = [
    Profile {
        name: "s",
        writes_per_sec: 150,
        clients: 50,
    },
    Profile {
        name: "m",
        writes_per_sec: 1000,
        clients: 200,
    },
    Profile {
        name: "l",
        writes_per_sec: 8000,
        clients: 500,
    },
    Profile {
        name: "xl",
        writes_per_sec: 15000,
        clients: 1000,
    },
];

impl Profile {
    /// The profile called `name`, if there is one.
    pub fn named(name: &str) -> Option<Self> {
        PROFILES.into_iter().find(|p| p.name == name)
    }
}

/// One criterion's outcome.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Criterion {
    /// `errors`, `throughput`, `slowest` or `stddev`.
    pub name: &'static str,
    /// Whether it was met.
    pub passed: bool,
    /// What was measured (errors; writes/s; seconds).
    pub measured: f64,
    /// The bound (0 errors; the lowest throughput that fails; seconds).
    pub limit: f64,
    /// etcdctl's line for it, without the PASS/FAIL tag.
    pub message: String,
}

/// The check's verdict: every criterion, and whether all were met.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PerfVerdict {
    /// Whether every criterion was met.
    pub passed: bool,
    /// The criteria, in etcdctl's order.
    pub criteria: Vec<Criterion>,
}

/// Judges a run of `profile` by etcdctl's criteria.
pub fn judge(report: &LoadReport, profile: &Profile) -> PerfVerdict {
    let errors = report.errors as f64;
    let slowest = report.latency_ms.max / 1e3;
    let stddev = report.latency_ms.stddev / 1e3;
    let target = profile.writes_per_sec as f64;
    // etcdctl prints int(RPS)+1.
    let writes = report.throughput as u64 + 1;
    let mut criteria = vec![Criterion {
        name: "errors",
        passed: report.errors == 0,
        measured: errors,
        limit: 0.0,
        message: if report.errors == 0 {
            "No errors".to_string()
        } else {
            let kinds: Vec<String> = report
                .error_kinds
                .iter()
                .map(|k| format!("ERROR({}) -> {}", k.error, k.count))
                .collect();
            format!("too many errors: {}", kinds.join("; "))
        },
    }];
    let throughput_ok = report.throughput / target > MIN_THROUGHPUT_SHARE;
    criteria.push(Criterion {
        name: "throughput",
        passed: throughput_ok,
        measured: report.throughput,
        limit: target * MIN_THROUGHPUT_SHARE,
        message: if throughput_ok {
            format!("Throughput is {writes} writes/s")
        } else {
            format!("Throughput too low: {writes} writes/s")
        },
    });
    let slowest_ok = slowest <= MAX_SLOWEST_SECS;
    criteria.push(Criterion {
        name: "slowest",
        passed: slowest_ok,
        measured: slowest,
        limit: MAX_SLOWEST_SECS,
        message: if slowest_ok {
            format!("Slowest request took {slowest:.6}s")
        } else {
            format!("Slowest request took too long: {slowest:.6}s")
        },
    });
    let stddev_ok = stddev <= MAX_STDDEV_SECS;
    criteria.push(Criterion {
        name: "stddev",
        passed: stddev_ok,
        measured: stddev,
        limit: MAX_STDDEV_SECS,
        message: if stddev_ok {
            format!("Stddev is {stddev:.6}s")
        } else {
            format!("Stddev too high: {stddev:.6}s")
        },
    });
    PerfVerdict {
        passed: criteria.iter().all(|c| c.passed),
        criteria,
    }
}

/// One run of the check.
#[derive(Clone, Debug, PartialEq)]
pub struct PerfCheck {
    /// The profile.
    pub profile: Profile,
    /// Client URLs.
    pub endpoints: Vec<String>,
    /// The scratch prefix; it must be empty and is deleted afterwards.
    pub prefix: String,
    /// How long to offer the load (etcdctl: 60 s).
    pub duration: Duration,
    /// TLS, for `https` endpoints.
    pub tls: Option<Tls>,
    /// A login, for a cluster with auth enabled.
    pub credentials: Option<cairn_client::Credentials>,
}

impl PerfCheck {
    /// etcdctl's check of `profile` against `endpoints`: 60 s under `/etcdctl-check-perf/`.
    pub fn new(profile: Profile, endpoints: Vec<String>) -> Self {
        Self {
            profile,
            endpoints,
            prefix: DEFAULT_PREFIX.to_string(),
            duration: DEFAULT_DURATION,
            tls: None,
            credentials: None,
        }
    }

    /// The load run: puts of random keys, one connection per client, paced at the target.
    pub fn spec(&self) -> LoadSpec {
        LoadSpec {
            conns: self.profile.clients,
            clients: self.profile.clients,
            stop: Stop::Duration(self.duration),
            key_size: KEY_SIZE,
            val_size: VALUE_SIZE,
            key_space_size: u64::MAX,
            rate: self.profile.writes_per_sec,
            tls: self.tls.clone(),
            credentials: self.credentials.clone(),
            key_prefix: self.prefix.clone().into_bytes(),
            ..LoadSpec::new(Mode::Put, self.endpoints.clone())
        }
    }
}

/// What the check measured and its verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PerfReport {
    /// The profile run.
    pub profile: Profile,
    /// The scratch prefix (deleted afterwards).
    pub prefix: String,
    /// How long the load was offered, in seconds.
    pub duration_secs: f64,
    /// The load run's figures.
    pub load: LoadReport,
    /// The verdict.
    pub verdict: PerfVerdict,
}

impl fmt::Display for PerfReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.load;
        writeln!(
            f,
            "check perf, load {:?}: {} writes/s from {} clients for {:.0} s under {:?}",
            self.profile.name,
            self.profile.writes_per_sec,
            self.profile.clients,
            self.duration_secs,
            self.prefix
        )?;
        writeln!(
            f,
            "{} writes in {:.4} s, {} failed; latency avg {:.4} ms, p99 {:.4} ms, max {:.4} ms",
            l.count, l.elapsed_secs, l.errors, l.latency_ms.avg, l.latency_ms.p99, l.latency_ms.max
        )?;
        for c in &self.verdict.criteria {
            let tag = if c.passed { "PASS" } else { "FAIL" };
            writeln!(f, "{tag}: {}", c.message)?;
        }
        writeln!(f, "{}", if self.verdict.passed { "PASS" } else { "FAIL" })
    }
}

/// Runs the check: refuses a non-empty prefix, offers the load, deletes the prefix (also
/// when the load failed or was interrupted) and judges the run.
pub async fn run(check: &PerfCheck, progress: Progress) -> Result<PerfReport, Error> {
    let spec = check.spec();
    let admin = load::connect(&LoadSpec {
        conns: 1,
        ..spec.clone()
    })
    .await?
    .remove(0);
    prefix::ensure_empty(&admin, &check.prefix).await?;
    let halt = Halt::default();
    let load = load::run_until_halted(&spec, progress, halt.clone());
    let outcome = prefix::unless_interrupted(&halt, load).await;
    let cleanup = prefix::delete(&admin, &check.prefix).await;
    let load = outcome?;
    cleanup?;
    Ok(PerfReport {
        profile: check.profile,
        prefix: check.prefix.clone(),
        duration_secs: check.duration.as_secs_f64(),
        verdict: judge(&load, &check.profile),
        load,
    })
}

/// [`run`] on a runtime of its own, for synchronous callers.
pub fn run_blocking(check: &PerfCheck, progress: Progress) -> Result<PerfReport, Error> {
    crate::block_on(run(check, progress))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{new_histogram, ErrorCount};

    const S: Profile = PROFILES[0];

    /// A run of `n` requests of `ms` milliseconds each, plus `slow` requests of `slow_ms`,
    /// over `secs` seconds.
    fn run_of(n: u64, ms: u64, slow: u64, slow_ms: u64, secs: f64) -> LoadReport {
        let mut h = new_histogram();
        h.record_n(ms * 1_000_000, n).unwrap();
        if slow > 0 {
            h.record_n(slow_ms * 1_000_000, slow).unwrap();
        }
        LoadReport::new("put", "requests", &h, secs)
    }

    fn failed(v: &PerfVerdict) -> Vec<&'static str> {
        v.criteria
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn profiles_are_etcdctls() {
        let table: Vec<_> = PROFILES
            .iter()
            .map(|p| (p.name, p.writes_per_sec, p.clients))
            .collect();
        assert_eq!(
            table,
            [
                ("s", 150, 50),
                ("m", 1000, 200),
                ("l", 8000, 500),
                ("xl", 15000, 1000)
            ]
        );
        assert_eq!(Profile::named("xl"), Some(PROFILES[3]));
        assert_eq!(Profile::named("xxl"), None);
    }

    #[test]
    fn a_steady_run_at_the_target_passes() {
        // 150 writes/s for 60 s, 2 ms each.
        let v = judge(&run_of(9000, 2, 0, 0, 60.0), &S);
        assert!(v.passed, "{v:?}");
        let names: Vec<_> = v.criteria.iter().map(|c| c.name).collect();
        assert_eq!(names, ["errors", "throughput", "slowest", "stddev"]);
        assert_eq!(v.criteria[1].message, "Throughput is 151 writes/s");
    }

    #[test]
    fn low_throughput_alone_fails() {
        // Exactly 90% of the target is not enough (etcdctl: RPS/limit <= 0.9 fails).
        let v = judge(&run_of(8100, 2, 0, 0, 60.0), &S);
        assert_eq!(failed(&v), ["throughput"]);
        assert!(!v.passed);
        assert!(v.criteria[1].message.starts_with("Throughput too low: "));
        assert!(judge(&run_of(8200, 2, 0, 0, 60.0), &S).passed);
    }

    #[test]
    fn one_slow_request_alone_fails() {
        // One request of 600 ms among 9,000 of 2 ms: stddev stays about 6 ms.
        let v = judge(&run_of(8999, 2, 1, 600, 60.0), &S);
        assert_eq!(failed(&v), ["slowest"]);
        assert!(v.criteria[2]
            .message
            .starts_with("Slowest request took too long: 0.6"));
    }

    #[test]
    fn a_high_stddev_alone_fails() {
        // Half the requests at 10 ms, half at 400 ms: slowest 0.4 s, stddev 0.195 s.
        let v = judge(&run_of(4500, 10, 4500, 400, 60.0), &S);
        assert_eq!(failed(&v), ["stddev"]);
        assert!(v.criteria[3].measured > MAX_STDDEV_SECS);
    }

    #[test]
    fn errors_alone_fail() {
        let mut r = run_of(9000, 2, 0, 0, 60.0);
        r.errors = 3;
        r.error_kinds.push(ErrorCount {
            error: "boom".into(),
            count: 3,
        });
        let v = judge(&r, &S);
        assert_eq!(failed(&v), ["errors"]);
        assert_eq!(v.criteria[0].message, "too many errors: ERROR(boom) -> 3");
    }

    #[test]
    fn the_text_has_a_line_per_criterion_and_a_verdict() {
        let load = run_of(9000, 2, 0, 0, 60.0);
        let report = PerfReport {
            profile: S,
            prefix: DEFAULT_PREFIX.into(),
            duration_secs: 60.0,
            verdict: judge(&load, &S),
            load,
        };
        let text = report.to_string();
        let lines: Vec<&str> = text.lines().collect();
        let want = [
            "PASS: No errors",
            "PASS: Throughput is 151 writes/s",
            "PASS: Slowest request took 0.0020",
            "PASS: Stddev is 0.0000",
        ];
        assert_eq!(lines.len(), 2 + want.len() + 1, "{text}");
        for (line, want) in lines[2..].iter().zip(want) {
            assert!(line.starts_with(want), "{line:?} vs {want:?} in\n{text}");
        }
        assert_eq!(lines.last(), Some(&"PASS"), "{text}");
    }

    #[test]
    fn the_load_is_etcdctls() {
        let spec = PerfCheck::new(PROFILES[1], vec!["127.0.0.1:2379".into()]).spec();
        assert_eq!((spec.conns, spec.clients, spec.rate), (200, 200, 1000));
        assert_eq!((spec.key_size, spec.val_size), (256, 1024));
        assert_eq!(spec.stop, Stop::Duration(Duration::from_secs(60)));
        assert_eq!(spec.key_prefix, b"/etcdctl-check-perf/");
    }
}
