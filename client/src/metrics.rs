//! Prometheus text, parsed by `prom_text_format_parser` (quoted label values, escapes and
//! histograms handled by a grammar, not by splitting lines), and the figures cairn reads
//! from it: gauges and histogram quantiles.

use prom_text_format_parser::{Metric, Type, ValueType};

/// A parsed `/metrics` answer.
#[derive(Clone, Debug)]
pub struct Metrics {
    metrics: Vec<Metric>,
}

impl Metrics {
    /// Parses Prometheus text; fails only when nothing in it parses (a page that is not
    /// metrics at all). Lines past a malformed one are kept as far as the parser got.
    pub fn parse(text: &str) -> Result<Self, std::io::Error> {
        let (metrics, error) = prom_text_format_parser::parse_scrape(text);
        match error {
            Some(e) if metrics.is_empty() && !text.trim().is_empty() => {
                Err(std::io::Error::other(format!("{e:?}")))
            }
            _ => Ok(Self { metrics }),
        }
    }

    fn metric(&self, name: &str) -> Option<&Metric> {
        self.metrics.iter().find(|m| m.name == name)
    }

    /// The value of gauge (or counter, or untyped sample) `name`: its first sample.
    pub fn gauge(&self, name: &str) -> Option<f64> {
        let m = self.metric(name)?;
        if matches!(m.kind, Type::Histogram | Type::Summary) {
            return None;
        }
        value(m.samples.first()?)
    }

    /// The samples of `name` with the value of label `label` on each.
    pub fn by_label(&self, name: &str, label: &str) -> Vec<(String, f64)> {
        let Some(m) = self.metric(name) else {
            return Vec::new();
        };
        m.samples
            .iter()
            .filter_map(|s| {
                let l = s.labels.iter().find(|l| l.key == label)?;
                Some((l.value.clone(), value(s)?))
            })
            .collect()
    }

    /// The `q` quantile (0-1) of histogram `name`, in the histogram's unit: its cumulative
    /// buckets summed over label sets and interpolated linearly inside the bucket, like
    /// PromQL's `histogram_quantile` (without a rate: over the member's whole uptime).
    /// `None` when it is missing or empty.
    pub fn quantile(&self, name: &str, q: f64) -> Option<f64> {
        let m = self.metric(name)?;
        if m.kind != Type::Histogram {
            return None;
        }
        let mut buckets: Vec<(f64, f64)> = Vec::new();
        for s in &m.samples {
            if s.value.value_type != ValueType::Sample {
                continue;
            }
            let le = s.labels.iter().find(|l| l.key == "le")?;
            let le: f64 = le.value.parse().ok()?;
            let count = value(s)?;
            match buckets.iter_mut().find(|(b, _)| *b == le) {
                Some((_, c)) => *c += count,
                None => buckets.push((le, count)),
            }
        }
        quantile_of(buckets, q)
    }
}

fn value(s: &prom_text_format_parser::Sample) -> Option<f64> {
    s.value.value.parse().ok()
}

/// The quantile of cumulative `(upper bound, count)` buckets.
fn quantile_of(mut buckets: Vec<(f64, f64)>, q: f64) -> Option<f64> {
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut below = (0.0, 0.0);
    for &(le, count) in &buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(below.0);
            }
            let in_bucket = count - below.1;
            let fraction = if in_bucket > 0.0 {
                (rank - below.1) / in_bucket
            } else {
                1.0
            };
            return Some(below.0 + (le - below.0) * fraction);
        }
        below = (le, count);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP h A histogram.\n# TYPE h histogram\nh_bucket{le=\"0.001\"} 0\nh_bucket{le=\"0.002\"} 50\nh_bucket{le=\"0.004\"} 100\nh_bucket{le=\"+Inf\"} 100\nh_sum 0.2\nh_count 100\n# TYPE etcd_server_quota_backend_bytes gauge\netcd_server_quota_backend_bytes 2.147483648e+09\n# TYPE x_total counter\nx_total{a=\"b\"} 3\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 2.4576e+07\n";

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let m = Metrics::parse(TEXT).expect("parse");
        let p99 = m.quantile("h", 0.99).expect("p99");
        assert!((p99 - 0.00396).abs() < 1e-9, "{p99}");
        assert_eq!(m.quantile("h", 0.5), Some(0.002));
        assert_eq!(m.quantile("missing", 0.99), None);
    }

    #[test]
    fn gauges_with_and_without_labels() {
        let m = Metrics::parse(TEXT).expect("parse");
        assert_eq!(
            m.gauge("etcd_server_quota_backend_bytes"),
            Some(2147483648.0)
        );
        assert_eq!(m.gauge("x_total"), Some(3.0));
        assert_eq!(m.gauge("process_resident_memory_bytes"), Some(24_576_000.0));
        assert_eq!(m.gauge("x"), None);
        assert_eq!(m.gauge("h"), None);
    }

    /// A hand-written `split(',')` took `b` for a label of its own here.
    #[test]
    fn quoted_commas_and_escapes_in_label_values() {
        let text = "# TYPE h histogram\nh_bucket{path=\"a,le=\\\"9\\\"\",le=\"1\"} 4\nh_bucket{path=\"a,le=\\\"9\\\"\",le=\"+Inf\"} 4\nh_sum 1\nh_count 4\n# TYPE g gauge\ng{name=\"x,y\"} 7\n";
        let m = Metrics::parse(text).expect("parse");
        assert_eq!(m.quantile("h", 0.5), Some(0.5));
        assert_eq!(m.by_label("g", "name"), vec![("x,y".to_string(), 7.0)]);
    }

    #[test]
    fn a_page_that_is_not_metrics_is_refused() {
        assert!(Metrics::parse("<html>404</html>").is_err());
        assert!(Metrics::parse("").is_ok());
    }
}
