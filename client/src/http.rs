//! `/metrics` and `/health` over reqwest: http, or https presenting the client certificate
//! (members require one on their client port). Every request is bounded by one timeout.

use std::time::Duration;

use std::path::Path;

use crate::metrics::Metrics;
use crate::tls::verified_config_parts;
use crate::{Error, TlsFiles};

/// The largest answer read (etcd's metrics are some 100 KiB).
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// What a member's `/health` says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Health {
    /// `"health": "true"`.
    pub healthy: bool,
    /// etcd's `reason` (empty when healthy, or from servers that give none).
    pub reason: String,
}

/// An HTTP client for members' HTTP endpoints.
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: reqwest::Client,
}

impl HttpClient {
    /// A client presenting `tls`'s certificate and trusting its CA on https URLs (without
    /// `tls`, https URLs fail verification); each request is given up after `timeout`.
    pub fn new(tls: Option<&TlsFiles>, timeout: Duration) -> Result<Self, Error> {
        Self::from_parts(
            tls.map(|t| t.ca.as_path()),
            tls.map(|t| (t.cert.as_path(), t.key.as_path())),
            timeout,
        )
    }

    /// [`HttpClient::new`] from loose parts (etcdctl-style `--cacert`, `--cert`, `--key`).
    pub fn from_parts(
        ca: Option<&Path>,
        identity: Option<(&Path, &Path)>,
        timeout: Duration,
    ) -> Result<Self, Error> {
        let config = verified_config_parts(ca, identity)?;
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(config)
            .timeout(timeout)
            .connect_timeout(timeout)
            .no_proxy()
            .build()
            .map_err(|source| Error::Http {
                url: String::new(),
                source,
            })?;
        Ok(Self { client })
    }

    /// The body of a GET of `url`, which must answer 200.
    pub async fn get_text(&self, url: &str) -> Result<String, Error> {
        let failed = |source| Error::Http {
            url: url.to_string(),
            source,
        };
        let mut answer = self.client.get(url).send().await.map_err(failed)?;
        let status = answer.status();
        if !status.is_success() {
            return Err(Error::HttpStatus {
                url: url.to_string(),
                status: status.as_u16(),
            });
        }
        let mut body = Vec::new();
        while let Some(chunk) = answer.chunk().await.map_err(failed)? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_ANSWER_BYTES {
                break;
            }
        }
        body.truncate(MAX_ANSWER_BYTES);
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// The Prometheus metrics at `url` (a client URL, or a `--listen-metrics-urls` URL; see
    /// [`metrics_url`]).
    pub async fn metrics(&self, url: &str) -> Result<Metrics, Error> {
        let url = metrics_url(url);
        let text = self.get_text(&url).await?;
        Metrics::parse(&text).map_err(|source| Error::MetricsText { url, source })
    }

    /// What the member at `url` (a client URL) says at `/health`. etcd answers 503 with a
    /// body when unhealthy, so any status with etcd's JSON counts as an answer.
    pub async fn health(&self, url: &str) -> Result<Health, Error> {
        let url = format!("{}/health", url.trim_end_matches('/'));
        let failed = |source| Error::Http {
            url: url.clone(),
            source,
        };
        let answer = self.client.get(&url).send().await.map_err(failed)?;
        let status = answer.status().as_u16();
        let body = answer.text().await.map_err(failed)?;
        parse_health(&body).ok_or(Error::HttpStatus { url, status })
    }
}

/// The `/metrics` URL of a client URL (`http://HOST:PORT`, or a bare `HOST:PORT`); a URL
/// that already ends in `/metrics` is kept.
pub fn metrics_url(url: &str) -> String {
    let base = url.trim_end_matches('/');
    let base = if base.contains("://") {
        base.to_string()
    } else {
        format!("http://{base}")
    };
    if base.ends_with("/metrics") {
        base
    } else {
        format!("{base}/metrics")
    }
}

/// etcd's `{"health":"true","reason":""}` (3.4 gives no reason).
#[derive(serde::Deserialize)]
struct HealthBody {
    health: String,
    #[serde(default)]
    reason: String,
}

fn parse_health(body: &str) -> Option<Health> {
    let b: HealthBody = serde_json::from_str(body).ok()?;
    Some(Health {
        healthy: b.health == "true",
        reason: b.reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_urls() {
        assert_eq!(
            metrics_url("http://127.0.0.1:2379"),
            "http://127.0.0.1:2379/metrics"
        );
        assert_eq!(
            metrics_url("127.0.0.1:2379/"),
            "http://127.0.0.1:2379/metrics"
        );
        assert_eq!(
            metrics_url("https://h:2381/metrics"),
            "https://h:2381/metrics"
        );
    }

    #[test]
    fn health_bodies() {
        assert_eq!(
            parse_health(r#"{"health":"true"}"#),
            Some(Health {
                healthy: true,
                reason: String::new()
            })
        );
        assert_eq!(
            parse_health(r#"{"health": "false", "reason": "RAFT NO LEADER"}"#),
            Some(Health {
                healthy: false,
                reason: "RAFT NO LEADER".into()
            })
        );
        assert_eq!(parse_health("404 page not found"), None);
    }
}
