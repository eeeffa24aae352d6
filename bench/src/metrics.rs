//! A member's resident memory, read from its Prometheus `/metrics` (etcd and cairn-server
//! serve it on every client URL). The fetch is a plain HTTP/1.0 GET over a TCP stream: HTTP/1.0
//! keeps the answer un-chunked and ends it by closing the connection, so no HTTP client
//! library is needed. https URLs are not fetched; point the check at an http
//! `--listen-metrics-urls` URL instead.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::error::MetricsProblem;
use crate::Error;

/// The metric read.
pub const RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
/// How long connecting, sending and reading the answer may take in all.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read (etcd's metrics are some 100 KiB).
const MAX_ANSWER: u64 = 16 * 1024 * 1024;

/// The `/metrics` URL of a client URL (`http://HOST:PORT`, or a bare `HOST:PORT`).
pub fn metrics_url(client_url: &str) -> String {
    let base = client_url.trim_end_matches('/');
    if base.contains("://") {
        format!("{base}/metrics")
    } else {
        format!("http://{base}/metrics")
    }
}

/// The value of the unlabelled sample `metric` in a Prometheus text answer.
pub fn sample(text: &str, metric: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(metric)?;
        // `metric 1.5e+07` (no labels); not `metric_other ...`.
        let value = rest.strip_prefix(' ')?.split_whitespace().next()?;
        value.parse().ok()
    })
}

/// Splits `http://HOST:PORT/PATH` into (`HOST:PORT`, `/PATH`).
fn split_http(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("http://")?;
    let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
    (!authority.is_empty()).then_some((authority, path))
}

async fn get(authority: &str, path: &str) -> std::io::Result<Vec<u8>> {
    let mut stream = TcpStream::connect(authority).await?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\nAccept: text/plain\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.take(MAX_ANSWER).read_to_end(&mut answer).await?;
    Ok(answer)
}

/// Fetches `url` (`http://...`) and returns the value of [`RESIDENT_MEMORY`], in bytes.
pub async fn resident_memory(url: &str) -> Result<u64, Error> {
    let answer_problem = |problem| Error::MetricsAnswer {
        url: url.to_string(),
        problem,
    };
    let (authority, path) =
        split_http(url).ok_or_else(|| answer_problem(MetricsProblem::NotHttp))?;
    let answer = tokio::time::timeout(TIMEOUT, get(authority, path))
        .await
        .unwrap_or_else(|_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                format!("no answer within {TIMEOUT:?}"),
            ))
        })
        .map_err(|source| Error::MetricsFetch {
            url: url.to_string(),
            source,
        })?;
    let text = String::from_utf8_lossy(&answer);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status_line = head.lines().next().unwrap_or_default();
    if status_line.split_whitespace().nth(1) != Some("200") {
        return Err(answer_problem(MetricsProblem::Status {
            status_line: status_line.to_string(),
        }));
    }
    let bytes = sample(body, RESIDENT_MEMORY).ok_or_else(|| {
        answer_problem(MetricsProblem::Missing {
            metric: RESIDENT_MEMORY,
        })
    })?;
    Ok(bytes.max(0.0) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_are_found_by_exact_name() {
        let text = "# HELP process_resident_memory_bytes Resident memory size in bytes.\n\
                    # TYPE process_resident_memory_bytes gauge\n\
                    process_resident_memory_bytes_max 1\n\
                    process_resident_memory_bytes 2.4576e+07\n";
        assert_eq!(sample(text, RESIDENT_MEMORY), Some(24_576_000.0));
        assert_eq!(
            sample("process_resident_memory_bytes 123\n", RESIDENT_MEMORY),
            Some(123.0)
        );
        assert_eq!(sample("other 1\n", RESIDENT_MEMORY), None);
    }

    #[test]
    fn urls() {
        assert_eq!(
            metrics_url("http://127.0.0.1:2379"),
            "http://127.0.0.1:2379/metrics"
        );
        assert_eq!(
            metrics_url("127.0.0.1:2379/"),
            "http://127.0.0.1:2379/metrics"
        );
        assert_eq!(
            split_http("http://127.0.0.1:2379/metrics"),
            Some(("127.0.0.1:2379", "/metrics"))
        );
        assert_eq!(split_http("http://h:1"), Some(("h:1", "/")));
        assert_eq!(split_http("https://h:1/metrics"), None);
    }

    #[tokio::test]
    async fn an_https_url_is_refused_without_connecting() {
        let err = resident_memory("https://127.0.0.1:1/metrics")
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::MetricsAnswer {
                    problem: MetricsProblem::NotHttp,
                    ..
                }
            ),
            "{err}"
        );
    }
}
