//! A client that keeps working against the cluster while certificates roll: puts and reads
//! back keys with the admin certificate, one endpoint per attempt, moving to the next
//! endpoint when one fails, re-reading the TLS files whenever `[tls] dir` changes them (as a
//! client following a CA rotation does). Bounded in operations and time.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_inventory::Inventory;
use cairn_pki::Client as Cert;
use cairn_pki::Pki;
use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

/// Most operations one run does.
const MAX_OPS: usize = 20_000;
/// Longest a run goes on.
const MAX_TIME: Duration = Duration::from_secs(900);
/// One attempt against one endpoint.
const ATTEMPT: Duration = Duration::from_secs(2);
/// How long one operation may go on being retried on other endpoints before it counts as
/// failed.
const OP_BOUND: Duration = Duration::from_secs(15);
/// Pace between operations, so the loop does not take the CPU the members need.
const PACE: Duration = Duration::from_millis(10);

/// What the client saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// Operations (a put and its read-back) that succeeded.
    pub ok: usize,
    /// Attempts that failed and were retried on another endpoint.
    pub retried: usize,
    /// Operations that failed on every endpoint for [`OP_BOUND`].
    pub failed: Vec<String>,
    /// How often the TLS files were re-read.
    pub reloads: usize,
    /// Acknowledged writes (key, value).
    pub acked: Vec<(String, String)>,
}

/// The running client.
pub struct LiveClient {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<Tally>,
}

struct Files {
    ca: PathBuf,
    cert: PathBuf,
    key: PathBuf,
}

impl Files {
    fn read(&self) -> Option<(Vec<u8>, Vec<u8>, Vec<u8>)> {
        Some((
            std::fs::read(&self.ca).ok()?,
            std::fs::read(&self.cert).ok()?,
            std::fs::read(&self.key).ok()?,
        ))
    }
}

async fn connect(endpoints: &[String], tls: &(Vec<u8>, Vec<u8>, Vec<u8>)) -> Vec<Option<Client>> {
    let options = ConnectOptions::new()
        .with_connect_timeout(ATTEMPT)
        .with_timeout(ATTEMPT)
        .with_tls(
            TlsOptions::new()
                .ca_certificate(Certificate::from_pem(tls.0.clone()))
                .identity(Identity::from_pem(tls.1.clone(), tls.2.clone())),
        );
    let mut clients = Vec::new();
    for e in endpoints {
        let c = tokio::time::timeout(
            ATTEMPT,
            Client::connect([e.as_str()], Some(options.clone())),
        )
        .await;
        clients.push(c.ok().and_then(Result::ok));
    }
    clients
}

async fn attempt(client: &mut Client, key: &str, value: &str) -> Result<(), String> {
    let work = async {
        client
            .put(key, value, None)
            .await
            .map_err(|e| e.to_string())?;
        let got = client.get(key, None).await.map_err(|e| e.to_string())?;
        match got.kvs().first().map(|kv| kv.value()) {
            Some(v) if v == value.as_bytes() => Ok(()),
            other => Err(format!("read back {other:?}")),
        }
    };
    tokio::time::timeout(ATTEMPT * 2, work)
        .await
        .map_err(|_| "timed out".to_string())?
}

impl LiveClient {
    /// Starts the loop against every member of `inv`.
    pub fn start(inv: &Inventory, prefix: &str) -> Self {
        let pki = Pki::existing(inv.tls.as_ref().expect("tls"));
        let files = Files {
            ca: pki.ca_cert(),
            cert: pki.client_cert(Cert::Admin),
            key: pki.client_key(Cert::Admin),
        };
        let endpoints = inv.endpoints();
        let prefix = prefix.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicUsize::new(0));
        let task = tokio::spawn({
            let (stop, ok) = (stop.clone(), ok.clone());
            async move {
                let started = Instant::now();
                let mut tally = Tally::default();
                let mut loaded = None;
                let mut clients: Vec<Option<Client>> = Vec::new();
                let mut pace = tokio::time::interval(PACE);
                for i in 0..MAX_OPS {
                    if stop.load(Ordering::Relaxed) || started.elapsed() > MAX_TIME {
                        break;
                    }
                    pace.tick().await;
                    let (key, value) = (format!("{prefix}/{i:06}"), format!("v{i}"));
                    let op_started = Instant::now();
                    let mut turn = i;
                    let mut last = String::new();
                    let done = loop {
                        if let Some(now) = files.read().filter(|n| Some(n) != loaded.as_ref()) {
                            clients = connect(&endpoints, &now).await;
                            loaded = Some(now);
                            tally.reloads += 1;
                        }
                        let n = endpoints.len();
                        let result = match clients.get_mut(turn % n) {
                            Some(Some(c)) => attempt(c, &key, &value).await,
                            _ => Err("not connected".to_string()),
                        };
                        match result {
                            Ok(()) => break true,
                            Err(e) => {
                                last = format!("{}: {e}", endpoints[turn % n]);
                                if clients.get(turn % n).is_some_and(Option::is_none) {
                                    // Reconnect this endpoint on the next reload.
                                    loaded = None;
                                }
                            }
                        }
                        if op_started.elapsed() > OP_BOUND {
                            break false;
                        }
                        tally.retried += 1;
                        turn += 1;
                    };
                    if done {
                        tally.ok += 1;
                        ok.fetch_add(1, Ordering::Relaxed);
                        tally.acked.push((key, value));
                    } else {
                        tally.failed.push(format!("{key}: {last}"));
                    }
                }
                tally
            }
        });
        Self { stop, ok, task }
    }

    /// Operations that succeeded so far.
    pub fn ok(&self) -> &AtomicUsize {
        &self.ok
    }

    /// Stops the loop and returns what it saw.
    pub async fn finish(self) -> Tally {
        self.stop.store(true, Ordering::Relaxed);
        self.task.await.expect("live client task")
    }
}

/// Every acknowledged write, read back through the current TLS files: none may be lost.
pub async fn assert_all_present(inv: &Inventory, tally: &Tally) {
    let pki = Pki::existing(inv.tls.as_ref().expect("tls"));
    let tls = (
        std::fs::read(pki.ca_cert()).expect("ca"),
        std::fs::read(pki.client_cert(Cert::Admin)).expect("cert"),
        std::fs::read(pki.client_key(Cert::Admin)).expect("key"),
    );
    let endpoints = inv.endpoints();
    let mut clients = connect(&endpoints, &tls).await;
    let client = clients
        .iter_mut()
        .find_map(Option::as_mut)
        .expect("a member to read from");
    let Some((first, _)) = tally.acked.first() else {
        panic!("no write was acknowledged");
    };
    let prefix = first.rsplit_once('/').expect("prefix").0.to_string() + "/";
    let got = client
        .get(
            prefix.as_str(),
            Some(etcd_client::GetOptions::new().with_prefix()),
        )
        .await
        .expect("read every key");
    let stored: std::collections::HashMap<String, String> = got
        .kvs()
        .iter()
        .map(|kv| {
            (
                kv.key_str().expect("utf-8").to_string(),
                kv.value_str().expect("utf-8").to_string(),
            )
        })
        .collect();
    let lost: Vec<&(String, String)> = tally
        .acked
        .iter()
        .filter(|(k, v)| stored.get(k) != Some(v))
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged writes lost: {:?}",
        lost.len(),
        tally.acked.len(),
        &lost[..lost.len().min(5)]
    );
}
