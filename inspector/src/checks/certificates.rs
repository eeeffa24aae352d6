//! Certificates: days until every member's served certificate and every certificate of the
//! local PKI expires, graded with `[alerts] cert_expiry_*_days`. Served certificates are named
//! `<member>-server` like the `certificate` label of `cairn_certificate_expiry_timestamp_seconds`.

use std::time::SystemTime;

use super::summarize;
use crate::unix_seconds;
use crate::Error;
use crate::{CheckId, CheckResult, Figure, Limit, Limits, Status, Unit};
use cairn_client::chain;

/// One certificate found, or why it could not be read.
#[derive(Debug)]
pub struct Found {
    /// Its name in the report (`m1-server`, `pki/ca.pem`).
    pub name: String,
    /// Its expiry (seconds since the Unix epoch), or why there is none.
    pub not_after: Result<u64, Error>,
    /// The member serving it did not answer at all (the membership check fails for it): a
    /// certificate that could not be read is then unknown, not wrong, and reissuing it would
    /// not help.
    pub member_silent: bool,
}

/// Grades `found` at `now`; `tls` says whether the cluster serves TLS at all.
pub fn evaluate(found: &[Found], tls: bool, now: SystemTime, limits: &Limits) -> CheckResult {
    let a = &limits.alerts;
    let limit = Limit::below(a.cert_expiry_warning_days, a.cert_expiry_critical_days);
    let now = unix_seconds(now) as f64;
    let mut figures = Vec::new();
    let mut findings = Vec::new();
    let mut floor = Status::Pass;
    let mut soonest: Option<(f64, &str)> = None;
    let mut unchecked = Vec::new();
    for c in found {
        match &c.not_after {
            Err(_) if c.member_silent => {
                floor = floor.max(Status::Warn);
                unchecked.push(c.name.as_str());
            }
            Err(e) => {
                floor = Status::Fail;
                findings.push(format!("{}: {}", c.name, chain(e)));
            }
            Ok(t) => {
                let days = (*t as f64 - now) / 86_400.0;
                let f = Figure::graded(&c.name, "days_left", days, Unit::Days, limit);
                if f.status != Status::Pass {
                    findings.push(format!("{} expires in {days:.1} days", c.name));
                }
                if soonest.is_none_or(|(d, _)| days < d) {
                    soonest = Some((days, &c.name));
                }
                figures.push(f);
            }
        }
    }
    let fine = match soonest {
        Some((days, name)) => format!(
            "{} certificates, the first to expire is {name} in {days:.0} days",
            figures.len()
        ),
        None if !tls => "the cluster does not use TLS: no certificates to check".into(),
        None => "no certificates found".into(),
    };
    let mut summary = summarize(&findings, fine);
    if !findings.is_empty() {
        summary.push_str("; run `cairn provision` to reissue and roll them out");
    }
    if !unchecked.is_empty() {
        summary.push_str(&format!(
            "; {} not checked: the member does not answer (see membership)",
            unchecked.join(", ")
        ));
    }
    CheckResult::new(CheckId::Certificates, floor, summary, figures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn near_expiry_is_a_failure_and_far_is_a_pass() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let found = [
            Found {
                name: "m1-server".into(),
                not_after: Ok(1_000_000_000 + 3 * 86_400),
                member_silent: false,
            },
            Found {
                name: "pki/ca.pem".into(),
                not_after: Ok(1_000_000_000 + 3650 * 86_400),
                member_silent: false,
            },
        ];
        let r = evaluate(&found, true, now, &Limits::default());
        assert_eq!(r.status, Status::Fail);
        assert_eq!(r.figures[0].value, 3.0);
        assert!(
            r.summary.starts_with("m1-server expires in 3.0 days"),
            "{}",
            r.summary
        );
        let r = evaluate(&found[1..], true, now, &Limits::default());
        assert_eq!(r.status, Status::Pass);
        let r = evaluate(&[], false, now, &Limits::default());
        assert_eq!(
            r.summary,
            "the cluster does not use TLS: no certificates to check"
        );
    }

    /// A paused member's certificate cannot be read; that is no reason to reissue it.
    #[test]
    fn a_silent_members_certificate_is_unknown_not_failed() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000_000);
        let timeout = || Error::NoEndpoints;
        let found = [
            Found {
                name: "m1-server".into(),
                not_after: Ok(1_000_000_000 + 300 * 86_400),
                member_silent: false,
            },
            Found {
                name: "m2-server".into(),
                not_after: Err(timeout()),
                member_silent: true,
            },
        ];
        let r = evaluate(&found, true, now, &Limits::default());
        assert_eq!(r.status, Status::Warn, "{}", r.summary);
        assert_eq!(
            r.summary,
            "1 certificates, the first to expire is m1-server in 300 days; m2-server not checked: the member does not answer (see membership)"
        );
        assert!(!r.summary.contains("reissue"));
        let r = evaluate(
            &[Found {
                name: "m2-server".into(),
                not_after: Err(timeout()),
                member_silent: false,
            }],
            true,
            now,
            &Limits::default(),
        );
        assert_eq!(r.status, Status::Fail);
        assert!(r.summary.contains("reissue"), "{}", r.summary);
    }
}
