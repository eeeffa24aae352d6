//! `serve`: inspections of a real cairn-server cluster on a schedule, their results served
//! at `/metrics` under the names `cairn rules`' alerts use.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use cairn_inspector::{serve, EtcdSource, Job, NoStore};
use cairn_testkit::wait_until;

use crate::{cairn_cluster, clock, options, targets, test_limits, LEADER_TIMEOUT, REQUEST_TIMEOUT};

fn get_metrics(addr: std::net::SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exports_each_checks_status_and_the_last_run() {
    let mut c = cairn_cluster().start().expect("cluster");
    c.wait_leader(LEADER_TIMEOUT).expect("leader");
    let source = EtcdSource::new(targets(&c), None, None, REQUEST_TIMEOUT).expect("source");
    let opts = options(&c, test_limits());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (runs_tx, mut runs) = tokio::sync::mpsc::unbounded_channel();
    let clock = clock();
    let job = Job {
        source: &source,
        clock: &clock,
        store: &NoStore,
        options: &opts,
    };
    let served = serve(
        listener,
        Duration::from_secs(3600),
        job,
        move |r| {
            let _ = runs_tx.send(r.as_ref().map(|r| r.status).map_err(|e| e.to_string()));
        },
        async {
            let _ = stopped.await;
        },
    );
    let check = async {
        let first = tokio::time::timeout(Duration::from_secs(120), runs.recv())
            .await
            .expect("a run within 2 minutes")
            .expect("a run");
        assert_eq!(first, Ok(cairn_inspector::Status::Pass));
        let text = tokio::task::spawn_blocking(move || {
            let mut text = String::new();
            wait_until("the metrics to hold a run", Duration::from_secs(10), || {
                text = get_metrics(addr).unwrap_or_default();
                text.contains("cairn_inspection_runs_total 1")
            })
            .map(|()| text)
        })
        .await
        .expect("join")
        .expect("metrics");
        assert!(
            text.starts_with("HTTP/1.0 200") || text.starts_with("HTTP/1.1 200"),
            "{text}"
        );
        for check in [
            "membership",
            "consistency",
            "database",
            "large_values",
            "key_count_growth",
            "hot_prefixes",
            "latency",
            "certificates",
        ] {
            let line = format!("cairn_inspection_check_status{{check=\"{check}\"}} 0.0");
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
        assert!(
            text.contains("cairn_inspection_last_run_timestamp_seconds "),
            "{text}"
        );
        let _ = stop.send(());
    };
    let (served, ()) = tokio::join!(served, check);
    served.expect("serve ends cleanly");
}
