//! The HTML report as a person sees it: `serve` inspects a real cairn-server cluster holding a
//! value over the fail limit, keeps its history in a state file, and serves the report at
//! `/`; Debian's Chromium, headless, loads it from loopback, and the test reads back the DOM
//! it built and a screenshot of it: the page renders, the failing check comes first (the
//! first status colour under the verdict is the failure's red), the members and the trends
//! of the runs so far are there.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cairn_inspector::{serve, EtcdSource, FileStore, Job};
use cairn_testkit::run_command;

use crate::{
    cairn_cluster, client, clock, options, targets, test_limits, LEADER_TIMEOUT, REQUEST_TIMEOUT,
};

/// The page's width in the browser, and a height that holds all of it.
const WINDOW: (u32, u32) = (1200, 2600);
/// Status colours of the report's stylesheet.
const RED: [u8; 3] = [0xc6, 0x28, 0x28];
const AMBER: [u8; 3] = [0xf9, 0xa8, 0x25];
const GREEN: [u8; 3] = [0x2e, 0x7d, 0x32];

/// Debian's Chromium with the flags this machine's closed network needs, and a profile of
/// its own; `what` is `--dump-dom` or `--screenshot=FILE`.
fn chromium(profile: &Path, what: &str, url: &str) -> String {
    let mut cmd = Command::new("chromium");
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        &format!("--window-size={},{}", WINDOW.0, WINDOW.1),
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .arg(what)
    .arg(url);
    let out = run_command(cmd, Duration::from_secs(120))
        .expect("chromium (Debian's chromium package) runs");
    assert!(out.success(), "chromium {what}: {out:?}");
    out.stdout
}

fn near(pixel: &[u8], colour: [u8; 3]) -> bool {
    pixel
        .iter()
        .zip(colour)
        .all(|(p, c)| (i16::from(*p) - i16::from(c)).abs() <= 12)
}

/// The screenshot's rows, as RGB(A) bytes, and its bytes per pixel.
fn decode(png_file: &Path) -> (Vec<Vec<u8>>, usize, u32) {
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(png_file).expect("screenshot"),
    ));
    let mut reader = decoder.read_info().expect("a PNG");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("frame");
    let bpp = info.color_type.samples();
    assert!(bpp >= 3, "{:?}", info.color_type);
    let stride = info.line_size;
    let rows = buf[..stride * info.height as usize]
        .chunks(stride)
        .map(<[u8]>::to_vec)
        .collect();
    (rows, bpp, info.width)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_report_renders_in_a_browser_with_the_failing_check_first() {
    let mut c = cairn_cluster().start().expect("cluster");
    c.wait_leader(LEADER_TIMEOUT).expect("leader");
    let mut kv = client(&c).await;
    for i in 0..50 {
        kv.put(format!("/jobs/j{i}"), "v", None).await.expect("put");
    }
    // 1.2 MiB: under the members' request limit, over the 1 MiB fail limit.
    kv.put("/blobs/big", vec![b'x'; 1_258_291], None)
        .await
        .expect("put 1.2 MiB");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = FileStore::new(dir.path().join("state/inspection.json"));
    let source = EtcdSource::new(targets(&c), None, None, REQUEST_TIMEOUT).expect("source");
    let opts = options(&c, test_limits());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}/", listener.local_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (runs_tx, mut runs) = tokio::sync::mpsc::unbounded_channel();
    let clock = clock();
    let job = Job {
        source: &source,
        clock: &clock,
        store: &store,
        options: &opts,
    };
    let served = serve(
        listener,
        Duration::from_secs(1),
        job,
        move |r| {
            let _ = runs_tx.send(r.as_ref().map(|r| r.status).map_err(|e| e.to_string()));
        },
        async {
            let _ = stopped.await;
        },
    );
    let check = async {
        // Two runs: the second page has a trend of two points.
        for _ in 0..2 {
            let run = tokio::time::timeout(Duration::from_secs(120), runs.recv())
                .await
                .expect("a run within 2 minutes")
                .expect("a run");
            assert_eq!(run, Ok(cairn_inspector::Status::Fail));
        }
        let profile = dir.path().join("chromium");
        let shot = dir.path().join("report.png");
        let (dom, shot) = tokio::task::spawn_blocking(move || {
            let dom = chromium(&profile, "--dump-dom", &url);
            chromium(&profile, &format!("--screenshot={}", shot.display()), &url);
            (dom, shot)
        })
        .await
        .expect("join");
        let _ = stop.send(());
        (dom, shot)
    };
    let (result, (dom, shot)) = tokio::join!(served, check);
    result.expect("serve");

    // The DOM the browser built: the failure first in what needs attention and among the
    // checks, every member up, the trends drawn.
    let at = |needle: &str| {
        dom.find(needle)
            .unwrap_or_else(|| panic!("no {needle} in\n{dom}"))
    };
    let attention = &dom[at("id=\"attention\"")..at("id=\"members\"")];
    let first_card = &attention[attention.find("class=\"card").expect("a card")..];
    assert!(
        first_card.starts_with("class=\"card fail\"") && first_card.contains("large_values"),
        "{attention}"
    );
    let checks = &dom[at("id=\"checks\"")..];
    assert!(
        checks[checks.find("class=\"card").expect("a check")..]
            .starts_with("class=\"card fail\" id=\"large_values\""),
        "{checks}"
    );
    for m in c.members() {
        assert!(
            dom.contains(&format!("<b>{}</b>", m.name())),
            "{}",
            m.name()
        );
    }
    assert_eq!(dom.matches("<tr class=\"up\">").count(), 3);
    let trends = &dom[at("id=\"trends\"")..at("id=\"prefixes\"")];
    assert!(trends.contains("<polyline"), "{trends}");

    // The screenshot: a page, not a blank; under the red verdict, the first status colour is
    // the failing check's red (no amber or green card above it).
    let (rows, bpp, width) = decode(&shot);
    assert_eq!(width, WINDOW.0);
    let coloured = |row: &[u8], colour| row.chunks(bpp).filter(|p| near(p, colour)).count();
    let header_end = rows
        .iter()
        .position(|r| coloured(r, RED) < width as usize / 2)
        .expect("the verdict header ends");
    assert!(
        header_end > 20,
        "a red verdict header at the top ({header_end} rows)"
    );
    let first = rows[header_end..].iter().find_map(|r| {
        [(RED, "red"), (AMBER, "amber"), (GREEN, "green")]
            .into_iter()
            .find(|(c, _)| coloured(r, *c) >= 4)
            .map(|(_, name)| name)
    });
    assert_eq!(
        first,
        Some("red"),
        "the first status colour under the verdict"
    );
    let ink = rows
        .iter()
        .map(|r| {
            r.chunks(bpp)
                .filter(|p| p[..3].iter().any(|v| *v < 200))
                .count()
        })
        .sum::<usize>();
    assert!(
        ink > 20_000,
        "the page has text and charts ({ink} dark pixels)"
    );
}
