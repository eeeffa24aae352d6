//! A member's resident memory, read from its Prometheus `/metrics` (etcd and cairn-server
//! serve it on every client URL) through the client crate: http, or https with the check's
//! CA and client certificate.

use std::time::Duration;

use cairn_client::HttpClient;

use crate::load::Tls;
use crate::Error;

/// The metric read.
pub const RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
/// How long connecting, sending and reading the answer may take in all.
const TIMEOUT: Duration = Duration::from_secs(10);

/// The `/metrics` URL of a client URL.
pub use cairn_client::http::metrics_url;

/// Fetches `url` and returns the value of [`RESIDENT_MEMORY`], in bytes.
pub async fn resident_memory(tls: Option<&Tls>, url: &str) -> Result<u64, Error> {
    let http = HttpClient::from_parts(
        tls.and_then(|t| t.ca.as_deref()),
        tls.and_then(|t| t.identity.as_ref())
            .map(|(c, k)| (c.as_path(), k.as_path())),
        TIMEOUT,
    )?;
    let bytes = http
        .metrics(url)
        .await?
        .gauge(RESIDENT_MEMORY)
        .ok_or_else(|| Error::MetricMissing {
            url: url.to_string(),
            metric: RESIDENT_MEMORY,
        })?;
    Ok(bytes.max(0.0) as u64)
}
