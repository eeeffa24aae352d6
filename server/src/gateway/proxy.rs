//! The gateway's proxying, as etcd 3.4's `tcpproxy`: each client connection goes to the next
//! active endpoint in turn and its bytes are copied both ways untouched (TLS passes through
//! end to end). An endpoint that refuses a connection is deactivated and the connection tries
//! the next one; a deactivated endpoint is dialled again every `retry_delay` and takes
//! connections again once it answers. With no endpoint active, the client is disconnected.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};

/// How long one dial of an endpoint may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// The endpoints and which of them take connections.
#[derive(Debug)]
pub struct Remotes {
    endpoints: Vec<String>,
    active: Mutex<Vec<bool>>,
    next: AtomicUsize,
    retry_delay: Duration,
}

impl Remotes {
    /// Every endpoint (`host:port`) active at first, as etcd's gateway starts.
    pub fn new(endpoints: Vec<String>, retry_delay: Duration) -> Arc<Self> {
        let active = Mutex::new(vec![true; endpoints.len()]);
        Arc::new(Self {
            endpoints,
            active,
            next: AtomicUsize::new(0),
            retry_delay,
        })
    }

    fn is_active(&self, i: usize) -> bool {
        self.active.lock().unwrap_or_else(PoisonError::into_inner)[i]
    }

    fn set_active(&self, i: usize, active: bool) {
        self.active.lock().unwrap_or_else(PoisonError::into_inner)[i] = active;
    }

    /// The active endpoints from the next one in turn, each once.
    fn in_turn(&self) -> Vec<usize> {
        let n = self.endpoints.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|k| (start + k) % n)
            .filter(|&i| self.is_active(i))
            .collect()
    }

    /// A connection to the next active endpoint that answers; `None` when none does.
    async fn dial(&self) -> Option<TcpStream> {
        for i in self.in_turn() {
            match dial(&self.endpoints[i]).await {
                Ok(s) => return Some(s),
                Err(e) => {
                    self.set_active(i, false);
                    tracing::warn!(
                        address = %self.endpoints[i],
                        interval = self.retry_delay.as_secs(),
                        error = %e,
                        "deactivated endpoint"
                    );
                }
            }
        }
        None
    }

    /// Every `retry_delay`, dials the deactivated endpoints and reactivates those that answer.
    pub async fn monitor(self: Arc<Self>) {
        let mut ticks = tokio::time::interval(self.retry_delay.max(Duration::from_millis(10)));
        ticks.tick().await;
        loop {
            ticks.tick().await;
            for i in 0..self.endpoints.len() {
                if self.is_active(i) {
                    continue;
                }
                if dial(&self.endpoints[i]).await.is_ok() {
                    self.set_active(i, true);
                    tracing::info!(address = %self.endpoints[i], "activated endpoint");
                }
            }
        }
    }
}

async fn dial(endpoint: &str) -> std::io::Result<TcpStream> {
    let stream = tokio::time::timeout(DIAL_TIMEOUT, TcpStream::connect(endpoint))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "dial timed out"))??;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Accepts clients on `listener` and proxies each to an endpoint, until the listener fails.
pub async fn serve(listener: TcpListener, remotes: Arc<Remotes>) -> std::io::Result<()> {
    tokio::spawn(remotes.clone().monitor());
    loop {
        let (mut client, peer) = listener.accept().await?;
        let _ = client.set_nodelay(true);
        let remotes = remotes.clone();
        tokio::spawn(async move {
            let Some(mut upstream) = remotes.dial().await else {
                tracing::warn!(client = %peer, "no endpoint is active; closing the client connection");
                return;
            };
            // Either side closing ends both; errors are the peers' business.
            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn echo() -> (String, tokio::task::JoinHandle<()>) {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr").to_string();
        let task = tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        (addr, task)
    }

    /// An address nothing listens on: a port bound and released.
    fn closed() -> String {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").to_string()
    }

    #[tokio::test]
    async fn connections_take_turns_and_skip_an_endpoint_that_refuses() {
        let (a, ta) = echo().await;
        let (b, tb) = echo().await;
        let dead = closed();
        let remotes = Remotes::new(vec![a, dead, b], Duration::from_secs(3600));
        for _ in 0..6 {
            let mut s = remotes.dial().await.expect("an endpoint answers");
            s.write_all(b"ping").await.expect("write");
            let mut buf = [0u8; 4];
            s.read_exact(&mut buf).await.expect("echo");
            assert_eq!(&buf, b"ping");
        }
        assert!(
            !remotes.is_active(1),
            "the refusing endpoint is deactivated"
        );
        assert!(remotes.is_active(0) && remotes.is_active(2));
        ta.abort();
        tb.abort();
    }

    #[tokio::test]
    async fn a_deactivated_endpoint_is_taken_back_once_it_answers() {
        let port_holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = port_holder.local_addr().expect("addr");
        drop(port_holder);
        let remotes = Remotes::new(vec![addr.to_string()], Duration::from_millis(50));
        assert!(remotes.dial().await.is_none(), "nothing listens yet");
        assert!(!remotes.is_active(0));
        let monitor = tokio::spawn(remotes.clone().monitor());
        let l = TcpListener::bind(addr).await.expect("rebind");
        tokio::time::timeout(Duration::from_secs(10), async {
            while !remotes.is_active(0) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("reactivated within the retry delay");
        assert!(remotes.dial().await.is_some());
        drop(l);
        monitor.abort();
    }
}
