//! etcd's mixin alerts (`contrib/mixin/alerts/alerts.libsonnet` in etcd's repository) under
//! their names and expressions, with the inventory's job, cluster label and thresholds.

use crate::alert::{Alert, Probe, Scenario, Series, Severity, Template, Threshold, ValueFormat};
use crate::context::{eval_minutes, with, Ctx, Labels};
use crate::series;

/// Every etcd alert, in the mixin's order.
pub(crate) fn alerts(c: &Ctx<'_>) -> Vec<Alert> {
    let mut v = vec![
        members_down(c),
        insufficient_members(c),
        no_leader(c),
        leader_changes(c),
    ];
    v.extend(failed_grpc(c));
    v.push(grpc_slow(c));
    v.push(peer_slow(c));
    v.push(failed_proposals(c));
    v.extend(fsync(c));
    v.push(commit(c));
    v.push(quota_low(c));
    v.push(db_growth(c));
    v.push(fragmentation(c));
    v
}

/// `etcd cluster "<cluster>": `, the mixin's description prefix.
fn cluster_prefix(c: &Ctx<'_>) -> Template {
    Template::text("etcd cluster \"")
        .label(c.cluster_label)
        .t("\": ")
}

/// Samples per test series: past the evaluation time.
fn len(eval: u64) -> u64 {
    eval + 5
}

fn scenario(series: Vec<Series>, value: f64, labels: Labels) -> Scenario {
    Scenario {
        series,
        value,
        labels,
    }
}

/// `up` for every member, the first `down` of them 0.
fn up(c: &Ctx<'_>, down: usize, len: u64) -> Vec<Series> {
    (0..c.inv.hosts.len())
        .map(|i| {
            let v = if i < down { 0.0 } else { 1.0 };
            series::gauge("up", &c.member_labels(i), v, len)
        })
        .collect()
}

fn members_down(c: &Ctx<'_>) -> Alert {
    let sel = &c.etcd_sel;
    let range = c.inv.alerts.scrape_interval_seconds * 4;
    let for_ms = c.for_ms(20);
    let eval = eval_minutes(1, &[for_ms]);
    Alert {
        name: "etcdMembersDown",
        severity: Severity::Warning,
        expr: format!(
            "max without (endpoint) (\n  sum without (instance) (up{{{sel}}} == bool 0)\nor\n  count without (To) (\n    sum without (instance) (rate(etcd_network_peer_sent_failures_total{{{sel}}}[{range}s])) > 0.01\n  )\n)\n> 0"
        ),
        for_ms,
        threshold: None,
        summary: "etcd cluster members are down.".into(),
        description: cluster_prefix(c)
            .t("members are down (")
            .value(ValueFormat::Number)
            .t(")."),
        probe: Probe {
            eval_minutes: eval,
            fire: scenario(up(c, 1, len(eval)), 1.0, c.etcd_labels()),
            quiet: scenario(up(c, 0, len(eval)), 0.0, c.etcd_labels()),
        },
    }
}

fn insufficient_members(c: &Ctx<'_>) -> Alert {
    let sel = &c.etcd_sel;
    let n = c.inv.hosts.len();
    let quorum = n / 2 + 1;
    let for_ms = c.for_ms(3);
    let eval = eval_minutes(1, &[for_ms]);
    Alert {
        name: "etcdInsufficientMembers",
        severity: Severity::Critical,
        expr: format!(
            "sum(up{{{sel}}} == bool 1) without (instance) < ((count(up{{{sel}}}) without (instance) + 1) / 2)"
        ),
        for_ms,
        threshold: None,
        summary: "etcd cluster has insufficient number of members.".into(),
        description: cluster_prefix(c)
            .t("insufficient members (")
            .value(ValueFormat::Number)
            .t(")."),
        probe: Probe {
            eval_minutes: eval,
            fire: scenario(
                up(c, n - quorum + 1, len(eval)),
                (quorum - 1) as f64,
                c.etcd_labels(),
            ),
            quiet: scenario(up(c, n - quorum, len(eval)), quorum as f64, c.etcd_labels()),
        },
    }
}

fn no_leader(c: &Ctx<'_>) -> Alert {
    let for_ms = c.for_ms(1);
    let eval = eval_minutes(0, &[for_ms]);
    let has_leader = |first: f64| {
        (0..c.inv.hosts.len())
            .map(|i| {
                let v = if i == 0 { first } else { 1.0 };
                series::gauge("etcd_server_has_leader", &c.member_labels(i), v, len(eval))
            })
            .collect()
    };
    Alert {
        name: "etcdNoLeader",
        severity: Severity::Critical,
        expr: format!("etcd_server_has_leader{{{}}} == 0", c.etcd_sel),
        for_ms,
        threshold: None,
        summary: "etcd cluster has no leader.".into(),
        description: cluster_prefix(c)
            .t("member ")
            .label("instance")
            .t(" has no leader."),
        probe: Probe {
            eval_minutes: eval,
            fire: scenario(has_leader(0.0), 0.0, c.member_labels(0)),
            quiet: scenario(has_leader(1.0), 1.0, c.member_labels(0)),
        },
    }
}

fn leader_changes(c: &Ctx<'_>) -> Alert {
    let sel = &c.etcd_sel;
    let limit = f64::from(c.inv.alerts.leader_changes_per_15m);
    let for_ms = c.for_ms(5);
    // The counter steps at minute 2; the 15-minute window holds the step until minute 17.
    let eval = eval_minutes(2, &[for_ms]);
    let changes = |step: f64| {
        (0..c.inv.hosts.len())
            .map(|i| {
                let s = if i == 0 { step } else { 0.0 };
                Series {
                    series: series::name(
                        "etcd_server_leader_changes_seen_total",
                        &c.member_labels(i),
                    ),
                    values: format!("0+0x1 {s}+0x{}", len(eval)),
                }
            })
            .collect()
    };
    let (fire, quiet) = (limit * 2.0, limit - 1.0);
    Alert {
        name: "etcdHighNumberOfLeaderChanges",
        severity: Severity::Warning,
        expr: format!(
            "increase((max without (instance) (etcd_server_leader_changes_seen_total{{{sel}}}) or 0*absent(etcd_server_leader_changes_seen_total{{{sel}}}))[15m:1m]) >= {limit}"
        ),
        for_ms,
        threshold: Some(Threshold::AtLeast(limit)),
        summary: "etcd cluster has high number of leader changes.".into(),
        description: cluster_prefix(c)
            .value(ValueFormat::Number)
            .t(" leader changes within the last 15 minutes. Frequent elections may be a sign of insufficient resources, high network latency, or disruptions by other components and should be investigated."),
        probe: Probe {
            eval_minutes: eval,
            fire: scenario(changes(fire), fire, c.etcd_labels()),
            quiet: scenario(changes(quiet), quiet, c.etcd_labels()),
        },
    }
}

fn failed_grpc(c: &Ctx<'_>) -> [Alert; 2] {
    let sel = &c.etcd_sel;
    let (warn, crit) = (
        c.inv.alerts.failed_grpc_warning_percent,
        c.inv.alerts.failed_grpc_critical_percent,
    );
    let fors = [c.for_ms(10), c.for_ms(5)];
    let eval = eval_minutes(5, &fors);
    // A million requests a minute, `percent` of them Unavailable.
    let requests = |percent: f64| {
        let failed = (percent * 10_000.0).round();
        let labels = with(
            c.member_labels(0),
            &[
                ("grpc_service", "etcdserverpb.KV"),
                ("grpc_method", "Range"),
                ("grpc_type", "unary"),
            ],
        );
        let series = vec![
            series::counter(
                "grpc_server_handled_total",
                &with(labels.clone(), &[("grpc_code", "OK")]),
                1_000_000.0 - failed,
                len(eval),
            ),
            series::counter(
                "grpc_server_handled_total",
                &with(labels, &[("grpc_code", "Unavailable")]),
                failed,
                len(eval),
            ),
        ];
        let result = with(
            c.member_labels(0),
            &[
                ("grpc_service", "etcdserverpb.KV"),
                ("grpc_method", "Range"),
            ],
        );
        scenario(series, failed / 10_000.0, result)
    };
    let alert = |severity, limit: f64, for_ms, fire: f64, quiet: f64| {
        Alert {
        name: "etcdHighNumberOfFailedGRPCRequests",
        severity,
        expr: format!(
            "100 * sum(rate(grpc_server_handled_total{{{sel}, grpc_code=~\"Unknown|FailedPrecondition|ResourceExhausted|Internal|Unavailable|DataLoss|DeadlineExceeded\"}}[5m])) without (grpc_type, grpc_code)\n  /\nsum(rate(grpc_server_handled_total{{{sel}}}[5m])) without (grpc_type, grpc_code)\n  > {limit}"
        ),
        for_ms,
        threshold: Some(Threshold::Above(limit)),
        summary: "etcd cluster has high number of failed grpc requests.".into(),
        description: cluster_prefix(c)
            .value(ValueFormat::Number)
            .t("% of requests for ")
            .label("grpc_method")
            .t(" failed on etcd instance ")
            .label("instance")
            .t("."),
        probe: Probe {
            eval_minutes: eval,
            fire: requests(fire),
            quiet: requests(quiet),
        },
    }
    };
    let mid = (warn + crit) / 2.0;
    [
        alert(Severity::Warning, warn, fors[0], mid, warn / 2.0),
        alert(Severity::Critical, crit, fors[1], (crit + 100.0) / 2.0, mid),
    ]
}

/// The mixin's per-member p99 expression over a histogram.
fn p99_expr(metric: &str, sel: &str, limit: f64) -> String {
    format!("histogram_quantile(0.99, rate({metric}_bucket{{{sel}}}[5m]))\n> {limit}")
}

fn grpc_slow(c: &Ctx<'_>) -> Alert {
    let limit = c.inv.alerts.grpc_p99_seconds;
    let for_ms = c.for_ms(10);
    let eval = eval_minutes(5, &[for_ms]);
    let labels = with(
        c.member_labels(0),
        &[
            ("grpc_service", "etcdserverpb.KV"),
            ("grpc_method", "Range"),
        ],
    );
    let s = |p99: f64| {
        let input = with(labels.clone(), &[("grpc_type", "unary")]);
        scenario(
            series::histogram("grpc_server_handling_seconds", &input, p99, len(eval)),
            p99,
            labels.clone(),
        )
    };
    Alert {
        name: "etcdGRPCRequestsSlow",
        severity: Severity::Critical,
        expr: format!(
            "histogram_quantile(0.99, sum(rate(grpc_server_handling_seconds_bucket{{{}, grpc_method!=\"Defragment\", grpc_type=\"unary\"}}[5m])) without(grpc_type))\n> {limit}",
            c.etcd_sel
        ),
        for_ms,
        threshold: Some(Threshold::Above(limit)),
        summary: "etcd grpc requests are slow".into(),
        description: cluster_prefix(c)
            .t("99th percentile of gRPC requests is ")
            .value(ValueFormat::Duration)
            .t(" on etcd instance ")
            .label("instance")
            .t(" for ")
            .label("grpc_method")
            .t(" method."),
        probe: Probe {
            eval_minutes: eval,
            fire: s(limit * 2.0),
            quiet: s(limit / 2.0),
        },
    }
}

fn peer_slow(c: &Ctx<'_>) -> Alert {
    let limit = c.inv.alerts.peer_rtt_p99_seconds;
    let metric = "etcd_network_peer_round_trip_time_seconds";
    let for_ms = c.for_ms(10);
    let eval = eval_minutes(5, &[for_ms]);
    let labels = with(c.member_labels(0), &[("To", "8e9e05c52164694d")]);
    let s = |p99: f64| {
        scenario(
            series::histogram(metric, &labels, p99, len(eval)),
            p99,
            labels.clone(),
        )
    };
    Alert {
        name: "etcdMemberCommunicationSlow",
        severity: Severity::Warning,
        expr: p99_expr(metric, &c.etcd_sel, limit),
        for_ms,
        threshold: Some(Threshold::Above(limit)),
        summary: "etcd cluster member communication is slow.".into(),
        description: cluster_prefix(c)
            .t("member communication with ")
            .label("To")
            .t(" is taking ")
            .value(ValueFormat::Duration)
            .t(" on etcd instance ")
            .label("instance")
            .t("."),
        probe: Probe {
            eval_minutes: eval,
            fire: s(limit * 2.0),
            quiet: s(limit / 2.0),
        },
    }
}

fn failed_proposals(c: &Ctx<'_>) -> Alert {
    let limit = c.inv.alerts.failed_proposals_per_second;
    let for_ms = c.for_ms(15);
    // A full 15-minute window: the rate is the counter's exact slope.
    let eval = eval_minutes(15, &[for_ms]);
    let labels = c.member_labels(0);
    let s = |per_second: f64| {
        scenario(
            vec![series::counter(
                "etcd_server_proposals_failed_total",
                &labels,
                per_second * 60.0,
                len(eval),
            )],
            per_second,
            labels.clone(),
        )
    };
    Alert {
        name: "etcdHighNumberOfFailedProposals",
        severity: Severity::Warning,
        expr: format!(
            "rate(etcd_server_proposals_failed_total{{{}}}[15m]) > {limit}",
            c.etcd_sel
        ),
        for_ms,
        threshold: Some(Threshold::Above(limit)),
        summary: "etcd cluster has high number of proposal failures.".into(),
        description: cluster_prefix(c)
            .value(ValueFormat::Number)
            .t(" proposal failures per second over the last 15 minutes on etcd instance ")
            .label("instance")
            .t("."),
        probe: Probe {
            eval_minutes: eval,
            fire: s(limit * 2.0),
            quiet: s(limit / 2.0),
        },
    }
}

fn fsync(c: &Ctx<'_>) -> [Alert; 2] {
    let metric = "etcd_disk_wal_fsync_duration_seconds";
    let (warn, crit) = (
        c.inv.alerts.fsync_p99_warning_seconds,
        c.inv.alerts.fsync_p99_critical_seconds,
    );
    let for_ms = c.for_ms(10);
    let eval = eval_minutes(5, &[for_ms]);
    let labels = c.member_labels(0);
    let s = |p99: f64| {
        scenario(
            series::histogram(metric, &labels, p99, len(eval)),
            p99,
            labels.clone(),
        )
    };
    let alert = |severity, limit, fire, quiet| Alert {
        name: "etcdHighFsyncDurations",
        severity,
        expr: p99_expr(metric, &c.etcd_sel, limit),
        for_ms,
        threshold: Some(Threshold::Above(limit)),
        summary: "etcd cluster 99th percentile fsync durations are too high.".into(),
        description: cluster_prefix(c)
            .t("99th percentile fsync durations are ")
            .value(ValueFormat::Duration)
            .t(" on etcd instance ")
            .label("instance")
            .t("."),
        probe: Probe {
            eval_minutes: eval,
            fire: s(fire),
            quiet: s(quiet),
        },
    };
    let mid = (warn + crit) / 2.0;
    [
        alert(Severity::Warning, warn, mid, warn / 2.0),
        alert(Severity::Critical, crit, crit * 2.0, mid),
    ]
}

fn commit(c: &Ctx<'_>) -> Alert {
    let metric = "etcd_disk_backend_commit_duration_seconds";
    let limit = c.inv.alerts.commit_p99_seconds;
    let for_ms = c.for_ms(10);
    let eval = eval_minutes(5, &[for_ms]);
    let labels = c.member_labels(0);
    let s = |p99: f64| {
        scenario(
            series::histogram(metric, &labels, p99, len(eval)),
            p99,
            labels.clone(),
        )
    };
    Alert {
        name: "etcdHighCommitDurations",
        severity: Severity::Warning,
        expr: p99_expr(metric, &c.etcd_sel, limit),
        for_ms,
        threshold: Some(Threshold::Above(limit)),
        summary: "etcd cluster 99th percentile commit durations are too high.".into(),
        description: cluster_prefix(c)
            .t("99th percentile commit durations ")
            .value(ValueFormat::Duration)
            .t(" on etcd instance ")
            .label("instance")
            .t("."),
        probe: Probe {
            eval_minutes: eval,
            fire: s(limit * 2.0),
            quiet: s(limit / 2.0),
        },
    }
}

/// The members' quota: the inventory's, or etcd's default of 2 GiB.
fn quota(c: &Ctx<'_>) -> f64 {
    c.inv
        .cluster
        .quota_backend_bytes
        .unwrap_or(2 * 1024 * 1024 * 1024) as f64
}

fn quota_low(c: &Ctx<'_>) -> Alert {
    let sel = &c.etcd_sel;
    let limit = c.inv.alerts.quota_used_percent;
    let for_ms = c.for_ms(10);
    let eval = eval_minutes(1, &[for_ms]);
    let labels = c.member_labels(0);
    let q = quota(c);
    let s = |percent: f64| {
        scenario(
            vec![
                series::gauge(
                    "etcd_mvcc_db_total_size_in_bytes",
                    &labels,
                    q * percent / 100.0,
                    len(eval),
                ),
                series::gauge("etcd_server_quota_backend_bytes", &labels, q, len(eval)),
            ],
            percent,
            labels.clone(),
        )
    };
    Alert {
        name: "etcdDatabaseQuotaLowSpace",
        severity: Severity::Critical,
        expr: format!(
            "(last_over_time(etcd_mvcc_db_total_size_in_bytes{{{sel}}}[5m]) / last_over_time(etcd_server_quota_backend_bytes{{{sel}}}[5m]))*100 > {limit}"
        ),
        for_ms,
        threshold: Some(Threshold::Above(limit)),
        summary: "etcd cluster database is running full.".into(),
        description: cluster_prefix(c)
            .t("database size is ")
            .value(ValueFormat::Number)
            .t("% of the defined quota on etcd instance ")
            .label("instance")
            .t(", please defrag or increase the quota as the writes to etcd will be disabled when it is full."),
        probe: Probe {
            eval_minutes: eval,
            fire: s((limit + 100.0) / 2.0),
            quiet: s(limit / 2.0),
        },
    }
}

fn db_growth(c: &Ctx<'_>) -> Alert {
    let sel = &c.etcd_sel;
    let for_ms = c.for_ms(10);
    let eval = eval_minutes(2, &[for_ms]);
    let labels = c.member_labels(0);
    let q = quota(c);
    let quota_series = series::gauge("etcd_server_quota_backend_bytes", &labels, q, len(eval));
    // Growing by the whole quota every hour passes it within four hours.
    let growing = series::counter(
        "etcd_mvcc_db_total_size_in_bytes",
        &labels,
        q / 60.0,
        len(eval),
    );
    let flat = series::gauge(
        "etcd_mvcc_db_total_size_in_bytes",
        &labels,
        q / 10.0,
        len(eval),
    );
    Alert {
        name: "etcdExcessiveDatabaseGrowth",
        severity: Severity::Warning,
        expr: format!(
            "predict_linear(etcd_mvcc_db_total_size_in_bytes{{{sel}}}[4h], 4*60*60) > etcd_server_quota_backend_bytes{{{sel}}}"
        ),
        for_ms,
        threshold: None,
        summary: "etcd cluster database growing very fast.".into(),
        description: cluster_prefix(c)
            .t("Predicting running out of disk space in the next four hours, based on write observations within the past four hours on etcd instance ")
            .label("instance")
            .t(", please check as it might be disruptive."),
        probe: Probe {
            eval_minutes: eval,
            fire: scenario(vec![growing, quota_series.clone()], 0.0, labels.clone()),
            quiet: scenario(vec![flat, quota_series], 0.0, labels),
        },
    }
}

fn fragmentation(c: &Ctx<'_>) -> Alert {
    let sel = &c.etcd_sel;
    let (ratio, min) = (
        c.inv.alerts.fragmentation_ratio,
        c.inv.alerts.fragmentation_min_bytes,
    );
    let for_ms = c.for_ms(10);
    let eval = eval_minutes(1, &[for_ms]);
    let labels = c.member_labels(0);
    let s = |r: f64| {
        let in_use = 2.0 * min as f64;
        scenario(
            vec![
                series::gauge(
                    "etcd_mvcc_db_total_size_in_use_in_bytes",
                    &labels,
                    in_use,
                    len(eval),
                ),
                series::gauge(
                    "etcd_mvcc_db_total_size_in_bytes",
                    &labels,
                    in_use / r,
                    len(eval),
                ),
            ],
            r,
            labels.clone(),
        )
    };
    Alert {
        name: "etcdDatabaseHighFragmentationRatio",
        severity: Severity::Warning,
        expr: format!(
            "(last_over_time(etcd_mvcc_db_total_size_in_use_in_bytes{{{sel}}}[5m]) / last_over_time(etcd_mvcc_db_total_size_in_bytes{{{sel}}}[5m])) < {ratio} and etcd_mvcc_db_total_size_in_use_in_bytes{{{sel}}} > {min}"
        ),
        for_ms,
        threshold: Some(Threshold::Below(ratio)),
        summary: format!(
            "etcd database size in use is less than {} of the actual allocated storage.",
            crate::humanize::humanize_percentage(ratio)
        ),
        description: cluster_prefix(c)
            .t("database size in use on instance ")
            .label("instance")
            .t(" is ")
            .value(ValueFormat::Percentage)
            .t(" of the actual allocated disk space, please run defragmentation (e.g. etcdctl defrag) to retrieve the unused fragmented disk space."),
        probe: Probe {
            eval_minutes: eval,
            fire: s(ratio / 2.0),
            quiet: s((ratio + 1.0) / 2.0),
        },
    }
}
