//! A Grafana dashboard for one cluster: leadership, database size against the quota, disk
//! latencies, gRPC traffic and errors, peer traffic, and cairn's inspection, backup and
//! certificate metrics. Queries use the same selectors as the alerts.

use serde_json::{json, Value};

use crate::context::Ctx;

/// A panel: title, visualisation, unit and `(query, legend)` pairs.
struct Panel<'a> {
    title: &'a str,
    kind: &'a str,
    unit: &'a str,
    queries: Vec<(String, &'a str)>,
}

/// The dashboard's JSON model.
pub(crate) fn dashboard(c: &Ctx<'_>) -> Value {
    let e = &c.etcd_sel;
    let k = &c.cairn_sel;
    let p99 = |metric: &str| {
        format!(
            "histogram_quantile(0.99, sum by (instance, le) (rate({metric}_bucket{{{e}}}[5m])))"
        )
    };
    let rows: Vec<(&str, Vec<Panel<'_>>)> = vec![
        ("Cluster", vec![
            Panel { title: "Members up", kind: "stat", unit: "none", queries: vec![(format!("sum(up{{{e}}})"), "up")] },
            Panel { title: "Has leader", kind: "stat", unit: "none", queries: vec![(format!("etcd_server_has_leader{{{e}}}"), "{{instance}}")] },
            Panel { title: "Leader", kind: "stat", unit: "none", queries: vec![(format!("etcd_server_is_leader{{{e}}} == 1"), "{{instance}}")] },
            Panel { title: "Leader changes (1h)", kind: "timeseries", unit: "none", queries: vec![(format!("increase(etcd_server_leader_changes_seen_total{{{e}}}[1h])"), "{{instance}}")] },
        ]),
        ("Database", vec![
            Panel { title: "DB size vs quota", kind: "timeseries", unit: "bytes", queries: vec![
                (format!("etcd_mvcc_db_total_size_in_bytes{{{e}}}"), "allocated {{instance}}"),
                (format!("etcd_mvcc_db_total_size_in_use_in_bytes{{{e}}}"), "in use {{instance}}"),
                (format!("etcd_server_quota_backend_bytes{{{e}}}"), "quota {{instance}}"),
            ] },
            Panel { title: "Quota used", kind: "gauge", unit: "percent", queries: vec![(format!("100 * etcd_mvcc_db_total_size_in_bytes{{{e}}} / etcd_server_quota_backend_bytes{{{e}}}"), "{{instance}}")] },
            Panel { title: "Keys", kind: "timeseries", unit: "none", queries: vec![(format!("etcd_debugging_mvcc_keys_total{{{e}}}"), "{{instance}}")] },
        ]),
        ("Disk", vec![
            Panel { title: "WAL fsync p99", kind: "timeseries", unit: "s", queries: vec![(p99("etcd_disk_wal_fsync_duration_seconds"), "{{instance}}")] },
            Panel { title: "Backend commit p99", kind: "timeseries", unit: "s", queries: vec![(p99("etcd_disk_backend_commit_duration_seconds"), "{{instance}}")] },
        ]),
        ("Traffic", vec![
            Panel { title: "gRPC requests", kind: "timeseries", unit: "reqps", queries: vec![(format!("sum by (grpc_method) (rate(grpc_server_handled_total{{{e}}}[5m]))"), "{{grpc_method}}")] },
            Panel { title: "gRPC errors", kind: "timeseries", unit: "percent", queries: vec![(format!("100 * sum by (instance) (rate(grpc_server_handled_total{{{e}, grpc_code!=\"OK\"}}[5m])) / sum by (instance) (rate(grpc_server_handled_total{{{e}}}[5m]))"), "{{instance}}")] },
            Panel { title: "Proposals", kind: "timeseries", unit: "ops", queries: vec![
                (format!("sum(rate(etcd_server_proposals_committed_total{{{e}}}[5m]))"), "committed"),
                (format!("sum(rate(etcd_server_proposals_failed_total{{{e}}}[5m]))"), "failed"),
                (format!("sum(etcd_server_proposals_pending{{{e}}})"), "pending"),
            ] },
            Panel { title: "Peer traffic", kind: "timeseries", unit: "Bps", queries: vec![
                (format!("sum by (instance) (rate(etcd_network_peer_sent_bytes_total{{{e}}}[5m]))"), "sent {{instance}}"),
                (format!("sum by (instance) (rate(etcd_network_peer_received_bytes_total{{{e}}}[5m]))"), "received {{instance}}"),
            ] },
            Panel { title: "Peer round trip p99", kind: "timeseries", unit: "s", queries: vec![(p99("etcd_network_peer_round_trip_time_seconds"), "{{instance}}")] },
        ]),
        ("cairn", vec![
            Panel { title: "Inspection checks (0 pass, 1 warn, 2 fail)", kind: "stat", unit: "none", queries: vec![(format!("cairn_inspection_check_status{{{k}}}"), "{{check}}")] },
            Panel { title: "Since last inspection", kind: "stat", unit: "s", queries: vec![(format!("time() - cairn_inspection_last_run_timestamp_seconds{{{k}}}"), "inspection")] },
            Panel { title: "Since last backup", kind: "stat", unit: "s", queries: vec![(format!("time() - cairn_backup_last_success_timestamp_seconds{{{k}}}"), "backup")] },
            Panel { title: "Backup failures (24h)", kind: "stat", unit: "none", queries: vec![(format!("increase(cairn_backup_failures_total{{{k}}}[24h])"), "failures")] },
            Panel { title: "Certificate days left", kind: "bargauge", unit: "d", queries: vec![(format!("(cairn_certificate_expiry_timestamp_seconds{{{k}}} - time()) / 86400"), "{{certificate}}")] },
        ]),
    ];
    let mut panels = Vec::new();
    let mut id = 1;
    let mut y = 0;
    for (row, row_panels) in rows {
        panels.push(
            json!({"id": id, "type": "row", "title": row, "collapsed": false,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}}),
        );
        id += 1;
        y += 1;
        let width = 24 / row_panels.len() as u64;
        for (i, p) in row_panels.into_iter().enumerate() {
            let targets: Vec<Value> = p
                .queries
                .into_iter()
                .enumerate()
                .map(|(n, (expr, legend))| {
                    json!({"refId": char::from(b'A' + n as u8).to_string(), "expr": expr,
                        "legendFormat": legend, "datasource": {"type": "prometheus", "uid": "${datasource}"}})
                })
                .collect();
            panels.push(json!({
                "id": id, "type": p.kind, "title": p.title,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": width, "x": width * i as u64, "y": y},
                "fieldConfig": {"defaults": {"unit": p.unit}, "overrides": []},
                "targets": targets,
            }));
            id += 1;
        }
        y += 8;
    }
    let name = &c.inv.cluster.name;
    json!({
        "uid": format!("cairn-{name}"),
        "title": format!("cairn / {name}"),
        "tags": ["cairn", "etcd"],
        "schemaVersion": 39,
        "editable": true,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "30s",
        "templating": {"list": [{
            "name": "datasource", "label": "Prometheus", "type": "datasource", "query": "prometheus",
        }]},
        "panels": panels,
    })
}
