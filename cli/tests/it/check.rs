//! `cairn check perf` and `cairn check datascale` against real members (cairn-server and
//! Debian's etcd 3.4), on short hidden overrides of their durations and steps. Whether a
//! member passes is not asserted (that depends on the machine): the verdict's structure, the
//! exit code following it, the refusal of a non-empty prefix and the cleanup are.

use std::process::{Command, Output};

use cairn_testkit::Member;

use crate::{cairn, etcd, BIN};

const PERF_PREFIX: &str = "/etcdctl-check-perf/";
const DATASCALE_PREFIX: &str = "/cairn-check-datascale/";

fn check(member: &Member, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("check")
        .args(args)
        .args(["--endpoints", &member.client_url()])
        .output()
        .expect("run cairn")
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn keys_under(member: &Member, prefix: &str) -> Vec<String> {
    let out = member
        .etcdctl(&["get", "--prefix", prefix, "--keys-only"])
        .expect("etcdctl get");
    assert_eq!(out.code, 0, "{}", out.stderr);
    out.stdout.split_whitespace().map(str::to_string).collect()
}

/// Profile s for 3 s: a verdict with etcdctl's four criteria, the exit code following it,
/// and nothing left under the prefix.
fn perf_against(member: &Member) {
    let out = check(
        member,
        &["perf", "--load", "s", "--duration", "3s", "-w", "json"],
    );
    let report = json(&out);
    assert_eq!(report["profile"]["name"], "s", "{report:#}");
    assert_eq!(report["profile"]["writes_per_sec"], 150, "{report:#}");
    assert_eq!(report["profile"]["clients"], 50, "{report:#}");
    assert_eq!(report["prefix"], PERF_PREFIX, "{report:#}");
    assert!(report["load"]["count"].as_u64().unwrap() > 0, "{report:#}");
    let verdict = &report["verdict"];
    let criteria = verdict["criteria"].as_array().expect("criteria");
    let names: Vec<&str> = criteria
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["errors", "throughput", "slowest", "stddev"],
        "{report:#}"
    );
    let all = criteria.iter().all(|c| c["passed"].as_bool().unwrap());
    assert_eq!(verdict["passed"].as_bool(), Some(all), "{report:#}");
    assert_eq!(
        out.status.code(),
        Some(if all { 0 } else { 1 }),
        "{report:#}"
    );
    assert!(
        keys_under(member, PERF_PREFIX).is_empty(),
        "prefix left behind"
    );
}

#[test]
fn check_perf_against_cairn_server() {
    let member = cairn();
    perf_against(&member);
    // The text: a line per criterion, then the verdict.
    let out = check(&member, &["perf", "--duration", "2s", "--prefix", "/text/"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 7, "{text}");
    let tail = &lines[lines.len() - 5..];
    for (line, what) in tail
        .iter()
        .zip(["errors", "Throughput", "Slowest request", "Stddev"])
    {
        assert!(
            (line.starts_with("PASS: ") || line.starts_with("FAIL: ")) && line.contains(what)
                || what == "errors" && line.contains("rror"),
            "{line:?} in\n{text}"
        );
    }
    let verdict = tail[4];
    assert!(verdict == "PASS" || verdict == "FAIL", "{text}");
    assert_eq!(out.status.success(), verdict == "PASS", "{text}");
    assert!(
        keys_under(&member, "/text/").is_empty(),
        "prefix left behind"
    );
}

#[test]
fn check_perf_against_etcd() {
    perf_against(&etcd());
}

#[test]
fn checks_refuse_a_prefix_with_keys_and_leave_it_alone() {
    let member = cairn();
    for (prefix, args) in [
        (PERF_PREFIX, &["perf", "--duration", "1s"][..]),
        (DATASCALE_PREFIX, &["datascale", "--steps", "10"]),
    ] {
        let key = format!("{prefix}mine");
        let put = member.etcdctl(&["put", &key, "v"]).expect("etcdctl put");
        assert_eq!(put.code, 0, "{}", put.stderr);
        let out = check(&member, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!("cairn: prefix {prefix:?} has keys; delete them")),
            "{err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
        assert_eq!(keys_under(&member, prefix), [key], "{args:?}");
    }
}

/// Steps of 1,000 and 3,000 keys: the member's counts increase, memory figures are there,
/// and the prefix is empty afterwards.
fn datascale_against(member: &Member) {
    let out = check(member, &["datascale", "--steps", "1000,3000", "-w", "json"]);
    let report = json(&out);
    assert!(out.status.success(), "{report:#}");
    assert_eq!(report["passed"], true, "{report:#}");
    assert_eq!(report["value_size"], 1024, "{report:#}");
    assert!(
        report["memory_before_bytes"].as_u64().unwrap() > 0,
        "{report:#}"
    );
    let steps = report["steps"].as_array().expect("steps");
    let keys: Vec<i64> = steps.iter().map(|s| s["keys"].as_i64().unwrap()).collect();
    assert_eq!(keys, [1000, 3000], "{report:#}");
    let written: Vec<u64> = steps
        .iter()
        .map(|s| s["written"].as_u64().unwrap())
        .collect();
    assert_eq!(written, [1000, 2000], "{report:#}");
    for s in steps {
        assert_eq!(s["errors"], 0, "{report:#}");
        assert!(s["memory_bytes"].as_u64().unwrap() > 0, "{report:#}");
        assert!(s["memory_growth_bytes"].is_i64(), "{report:#}");
        assert!(s["throughput"].as_f64().unwrap() > 0.0, "{report:#}");
    }
    assert!(
        keys_under(member, DATASCALE_PREFIX).is_empty(),
        "prefix left behind"
    );
}

#[test]
fn check_datascale_against_cairn_server() {
    datascale_against(&cairn());
}

#[test]
fn check_datascale_against_etcd() {
    datascale_against(&etcd());
}
