//! Test series in promtool's notation, one sample per minute; `len` is the number of
//! samples after the first.

use crate::alert::Series;
use crate::context::Labels;

/// `name{labels}` in promtool's notation.
pub(crate) fn name(metric: &str, labels: &Labels) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{metric}{{{}}}", inner.join(","))
}

/// A constant.
pub(crate) fn gauge(metric: &str, labels: &Labels, value: f64, len: u64) -> Series {
    Series {
        series: name(metric, labels),
        values: format!("{value}+0x{len}"),
    }
}

/// A counter growing by `per_minute` from 0.
pub(crate) fn counter(metric: &str, labels: &Labels, per_minute: f64, len: u64) -> Series {
    Series {
        series: name(metric, labels),
        values: format!("0+{per_minute}x{len}"),
    }
}

/// A histogram (`metric` without `_bucket`) whose p99 over any rate window is `p99`: 99%
/// of observations in `(p99/2, p99]`, 1% above.
pub(crate) fn histogram(metric: &str, labels: &Labels, p99: f64, len: u64) -> Vec<Series> {
    [
        (format!("{}", p99 / 2.0), 0.0),
        (format!("{p99}"), 99.0),
        ("+Inf".into(), 100.0),
    ]
    .into_iter()
    .map(|(le, per_minute)| {
        let mut l = labels.clone();
        l.insert("le".into(), le);
        counter(&format!("{metric}_bucket"), &l, per_minute, len)
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_put_p99_at_the_value() {
        let l = Labels::from([("job".to_string(), "etcd".to_string())]);
        let s = histogram("h", &l, 0.5, 10);
        assert_eq!(s[0].series, "h_bucket{job=\"etcd\",le=\"0.25\"}");
        assert_eq!(s[0].values, "0+0x10");
        assert_eq!(s[1].series, "h_bucket{job=\"etcd\",le=\"0.5\"}");
        assert_eq!(s[1].values, "0+99x10");
        assert_eq!(s[2].series, "h_bucket{job=\"etcd\",le=\"+Inf\"}");
        assert_eq!(s[2].values, "0+100x10");
    }
}
