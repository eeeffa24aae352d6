//! Reading quantiles from Prometheus' text format: the cumulative `_bucket` series of one
//! histogram, summed over label sets, interpolated linearly inside the bucket like
//! PromQL's `histogram_quantile` (without a rate: over the member's whole uptime).

/// The `q` quantile (0-1) of histogram `name` in `text`, in the histogram's unit; `None`
/// when it is missing or empty.
pub fn quantile(text: &str, name: &str, q: f64) -> Option<f64> {
    let prefix = format!("{name}_bucket{{");
    let mut buckets: Vec<(f64, f64)> = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let (labels, value) = rest.rsplit_once('}')?;
        let le = labels
            .split(',')
            .find_map(|l| l.trim().strip_prefix("le=\""))?
            .trim_end_matches('"');
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().ok()?
        };
        let count: f64 = value.split_whitespace().next()?.parse().ok()?;
        match buckets.iter_mut().find(|(b, _)| *b == le) {
            Some((_, c)) => *c += count,
            None => buckets.push((le, count)),
        }
    }
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

/// The value of gauge `name` (its first sample) in `text`.
pub fn gauge(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let rest = match rest.strip_prefix('{') {
            Some(r) => r.split_once('}')?.1,
            None => rest,
        };
        if !rest.starts_with(' ') {
            return None;
        }
        rest.split_whitespace().next()?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# TYPE h histogram\nh_bucket{le=\"0.001\"} 0\nh_bucket{le=\"0.002\"} 50\nh_bucket{le=\"0.004\"} 100\nh_bucket{le=\"+Inf\"} 100\nh_sum 0.2\nh_count 100\netcd_server_quota_backend_bytes 2.147483648e+09\nx_total{a=\"b\"} 3\n";

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let p99 = quantile(TEXT, "h", 0.99).expect("p99");
        assert!((p99 - 0.00396).abs() < 1e-9, "{p99}");
        assert_eq!(quantile(TEXT, "h", 0.5), Some(0.002));
        assert_eq!(quantile(TEXT, "missing", 0.99), None);
    }

    #[test]
    fn gauges_with_and_without_labels() {
        assert_eq!(
            gauge(TEXT, "etcd_server_quota_backend_bytes"),
            Some(2147483648.0)
        );
        assert_eq!(gauge(TEXT, "x_total"), Some(3.0));
        assert_eq!(gauge(TEXT, "x"), None);
    }
}
