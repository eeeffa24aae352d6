//! What a load run measured: latency percentiles from an HDR histogram, a bucketed latency
//! histogram like etcd's benchmark tool prints, and the text rendering of a
//! [`LoadReport`].

use std::fmt;

use hdrhistogram::Histogram;
use serde::Serialize;

/// How many buckets the latency histogram has (etcd's benchmark uses 10).
pub const BUCKETS: usize = 10;
/// The width of the longest histogram bar, in characters.
const BAR_WIDTH: u64 = 40;

/// A fresh latency histogram recording nanoseconds with 3 significant figures.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::<u64>::new(3).expect("3 significant figures is valid")
}

/// Latency figures in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Fastest.
    pub min: f64,
    /// Mean.
    pub avg: f64,
    /// Standard deviation.
    pub stddev: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest.
    pub max: f64,
}

fn ms(ns: f64) -> f64 {
    ns / 1e6
}

impl LatencySummary {
    /// The figures of `hist` (nanoseconds); all zero when it is empty.
    pub fn of(hist: &Histogram<u64>) -> Self {
        if hist.is_empty() {
            return Self::default();
        }
        let q = |q: f64| ms(hist.value_at_quantile(q) as f64);
        Self {
            min: ms(hist.min() as f64),
            avg: ms(hist.mean()),
            stddev: ms(hist.stdev()),
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: ms(hist.max() as f64),
        }
    }
}

/// One bar of the latency histogram: the samples above the previous bucket's bound and up
/// to this one's.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Bucket {
    /// Upper bound, in milliseconds.
    pub le_ms: f64,
    /// Samples in the bucket.
    pub count: u64,
}

/// etcd's histogram: `BUCKETS + 1` bounds evenly spaced from the fastest to the slowest
/// sample (the first bucket holds the samples equal to the fastest); each sample is counted
/// in the first bucket whose bound it does not exceed. Empty for an empty histogram.
pub fn buckets(hist: &Histogram<u64>) -> Vec<Bucket> {
    if hist.is_empty() {
        return Vec::new();
    }
    let (fastest, slowest) = (hist.min() as f64, hist.max() as f64);
    let step = (slowest - fastest) / BUCKETS as f64;
    let bounds: Vec<f64> = (0..=BUCKETS)
        .map(|i| {
            if i == BUCKETS {
                slowest
            } else {
                fastest + step * i as f64
            }
        })
        .collect();
    let mut counts = vec![0_u64; bounds.len()];
    for v in hist.iter_recorded() {
        // `min()` is the lowest value equivalent to the fastest sample: compare like with like.
        let value = (hist.lowest_equivalent(v.value_iterated_to()) as f64).clamp(fastest, slowest);
        let i = bounds
            .iter()
            .position(|&b| value <= b)
            .unwrap_or(bounds.len() - 1);
        counts[i] += v.count_at_value();
    }
    bounds
        .into_iter()
        .zip(counts)
        .map(|(b, count)| Bucket {
            le_ms: ms(b),
            count,
        })
        .collect()
}

/// How many times one error was seen.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ErrorCount {
    /// The error, as the client library reported it.
    pub error: String,
    /// How many requests failed with it.
    pub count: u64,
}

/// What a load run measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadReport {
    /// The workload (`put`, `range`, `txn-put`, `watch`, `lease-keepalive`).
    pub mode: String,
    /// What was counted and timed: `requests`, or `events` for watch (put-to-event delivery).
    pub unit: String,
    /// Successful samples: requests answered, or events delivered to all watchers.
    pub count: u64,
    /// Requests that failed.
    pub errors: u64,
    /// The distinct errors, most frequent first.
    pub error_kinds: Vec<ErrorCount>,
    /// Wall time from the first request to the last sample, in seconds.
    pub elapsed_secs: f64,
    /// Samples per second.
    pub throughput: f64,
    /// Latency per sample.
    pub latency_ms: LatencySummary,
    /// The latency histogram.
    pub histogram: Vec<Bucket>,
    /// gRPC connections used.
    pub conns: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// For watch: the puts issued and their latency; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub puts: Option<PutSide>,
}

/// The writer's side of a watch run.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PutSide {
    /// Puts answered.
    pub count: u64,
    /// Watchers, each of which received every put's event.
    pub watchers: usize,
    /// Put latency.
    pub latency_ms: LatencySummary,
}

impl LoadReport {
    /// Builds the report of `hist` (nanoseconds) over `elapsed_secs`.
    pub fn new(mode: &str, unit: &str, hist: &Histogram<u64>, elapsed_secs: f64) -> Self {
        let count = hist.len();
        Self {
            mode: mode.to_string(),
            unit: unit.to_string(),
            count,
            errors: 0,
            error_kinds: Vec::new(),
            elapsed_secs,
            throughput: if elapsed_secs > 0.0 {
                count as f64 / elapsed_secs
            } else {
                0.0
            },
            latency_ms: LatencySummary::of(hist),
            histogram: buckets(hist),
            conns: 0,
            clients: 0,
            puts: None,
        }
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let l = &self.latency_ms;
        writeln!(
            f,
            "{}: {} {} in {:.4} secs ({} conns, {} clients)",
            self.mode, self.count, self.unit, self.elapsed_secs, self.conns, self.clients
        )?;
        if let Some(p) = &self.puts {
            writeln!(
                f,
                "puts: {} to {} watchers, put latency avg {:.4} ms, p99 {:.4} ms",
                p.count, p.watchers, p.latency_ms.avg, p.latency_ms.p99
            )?;
        }
        writeln!(f, "\nSummary:")?;
        writeln!(f, "  Total:\t{:.4} secs.", self.elapsed_secs)?;
        writeln!(f, "  Slowest:\t{:.4} ms.", l.max)?;
        writeln!(f, "  Fastest:\t{:.4} ms.", l.min)?;
        writeln!(f, "  Average:\t{:.4} ms.", l.avg)?;
        writeln!(f, "  Stddev:\t{:.4} ms.", l.stddev)?;
        let per_sec = if self.unit == "events" {
            "Events/sec"
        } else {
            "Requests/sec"
        };
        writeln!(f, "  {per_sec}:\t{:.4}", self.throughput)?;
        let top = self.histogram.iter().map(|b| b.count).max().unwrap_or(0);
        if !self.histogram.is_empty() {
            writeln!(f, "\nLatency histogram (ms):")?;
            for b in &self.histogram {
                let width = (b.count * BAR_WIDTH).checked_div(top).unwrap_or(0);
                let bar = "∎".repeat(width as usize);
                writeln!(f, "  {:.4} [{}]\t|{bar}", b.le_ms, b.count)?;
            }
        }
        writeln!(f, "\nLatency distribution:")?;
        for (name, v) in [
            ("min", l.min),
            ("p50", l.p50),
            ("p90", l.p90),
            ("p99", l.p99),
            ("p99.9", l.p999),
            ("max", l.max),
        ] {
            writeln!(f, "  {name} in {v:.4} ms.")?;
        }
        if self.errors > 0 {
            writeln!(f, "\nError distribution ({} failed requests):", self.errors)?;
            for e in &self.error_kinds {
                writeln!(f, "  [{}]\t{}", e.count, e.error)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1..=100 ms, one sample each.
    fn one_to_hundred_ms() -> Histogram<u64> {
        let mut h = new_histogram();
        for i in 1..=100_u64 {
            h.record(i * 1_000_000).unwrap();
        }
        h
    }

    fn close(a: f64, b: f64) -> bool {
        // 3 significant figures: within 0.1%.
        (a - b).abs() <= b.abs() * 1e-3
    }

    #[test]
    fn percentiles_of_known_inputs() {
        let s = LatencySummary::of(&one_to_hundred_ms());
        for (got, want) in [
            (s.min, 1.0),
            (s.avg, 50.5),
            (s.p50, 50.0),
            (s.p90, 90.0),
            (s.p99, 99.0),
            (s.p999, 100.0),
            (s.max, 100.0),
        ] {
            assert!(close(got, want), "{got} vs {want} in {s:?}");
        }
        // Population standard deviation of 1..=100.
        assert!((s.stddev - 28.866).abs() < 0.05, "{s:?}");
        assert_eq!(
            LatencySummary::of(&new_histogram()),
            LatencySummary::default()
        );
    }

    #[test]
    fn buckets_of_known_inputs() {
        let b = buckets(&one_to_hundred_ms());
        assert_eq!(b.len(), BUCKETS + 1);
        // Bounds 1, 10.9, 20.8, ... 100 ms.
        for (i, bucket) in b.iter().enumerate() {
            assert!(close(bucket.le_ms, 1.0 + 9.9 * i as f64), "{b:?}");
        }
        let counts: Vec<u64> = b.iter().map(|b| b.count).collect();
        assert_eq!(counts, [1, 9, 10, 10, 10, 10, 10, 10, 10, 10, 10]);
        assert_eq!(counts.iter().sum::<u64>(), 100);
    }

    #[test]
    fn equal_samples_fill_the_first_bucket() {
        let mut h = new_histogram();
        h.record_n(5_000_000, 7).unwrap();
        let b = buckets(&h);
        assert_eq!(b[0].count, 7);
        assert_eq!(b.iter().map(|b| b.count).sum::<u64>(), 7);
        assert!(buckets(&new_histogram()).is_empty());
    }

    #[test]
    fn text_report_has_summary_histogram_and_distribution() {
        let mut r = LoadReport::new("put", "requests", &one_to_hundred_ms(), 2.0);
        assert_eq!(r.count, 100);
        assert_eq!(r.throughput, 50.0);
        r.errors = 2;
        r.error_kinds.push(ErrorCount {
            error: "boom".into(),
            count: 2,
        });
        let text = r.to_string();
        assert!(
            text.starts_with("put: 100 requests in 2.0000 secs"),
            "{text}"
        );
        assert!(text.contains("Requests/sec:\t50.0000"), "{text}");
        // The fullest bucket has the full 40-character bar.
        assert!(
            text.contains(&format!("[10]\t|{}\n", "∎".repeat(40))),
            "{text}"
        );
        assert!(text.contains("[1]\t|∎∎∎∎\n"), "{text}");
        assert!(text.contains("  p99 in 99.0"), "{text}");
        assert!(text.contains("  [2]\tboom"), "{text}");
    }
}
