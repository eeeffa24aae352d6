//! prometheus-client writes OpenMetrics text; etcd serves Prometheus' text format 0.0.4. The
//! two differ in ways scrapers and dashboards see, so the OpenMetrics output is rewritten:
//!
//! - a counter family `x` (samples `x_total`) is declared as `x_total`, as etcd declares it;
//! - families without samples are left out (client_golang writes nothing for them);
//! - `le` bucket bounds are written as Go writes them (`1`, not `1.0`), so the series'
//!   label values equal etcd's;
//! - `# UNIT` and `# EOF` lines, which 0.0.4 does not have, are dropped.

/// Rewrites prometheus-client's OpenMetrics text as Prometheus text format 0.0.4.
pub(super) fn to_prometheus_text(open_metrics: &str) -> String {
    let mut out = String::with_capacity(open_metrics.len());
    // HELP/TYPE lines of the current family, written once its first sample shows up.
    let mut header: Vec<String> = Vec::new();
    let mut help: Option<(String, String)> = None;
    for line in open_metrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            header.clear();
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help = Some((name.to_string(), text.to_string()));
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            let name = if kind == "counter" {
                format!("{name}_total")
            } else {
                name.to_string()
            };
            header.clear();
            if let Some((_, text)) = help.take() {
                header.push(format!("# HELP {name} {text}"));
            }
            header.push(format!("# TYPE {name} {kind}"));
        } else if line.starts_with('#') {
            // `# UNIT`, `# EOF`.
        } else if !line.is_empty() {
            for h in header.drain(..) {
                out.push_str(&h);
                out.push('\n');
            }
            out.push_str(&go_style_le(line));
            out.push('\n');
        }
    }
    out
}

/// Rewrites the value of an `le="…"` label as Go's `strconv.FormatFloat(v, 'g', -1, 64)`
/// writes bucket bounds of ordinary size (`1`, `0.001`, `+Inf`).
fn go_style_le(line: &str) -> std::borrow::Cow<'_, str> {
    const LE: &str = "le=\"";
    let Some(start) = line.find(LE).map(|i| i + LE.len()) else {
        return line.into();
    };
    let Some(len) = line[start..].find('"') else {
        return line.into();
    };
    let raw = &line[start..start + len];
    let Ok(v) = raw.parse::<f64>() else {
        return line.into();
    };
    let formatted = if v.is_infinite() {
        "+Inf".to_string()
    } else {
        format!("{v}")
    };
    format!("{}{}{}", &line[..start], formatted, &line[start + len..]).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_empty_families_and_bounds_follow_prometheus_text() {
        let om = "# HELP c_seen Things seen.\n# TYPE c_seen counter\nc_seen_total 3\n\
                  # HELP empty Nothing yet.\n# TYPE empty counter\n\
                  # HELP g A gauge.\n# TYPE g gauge\ng{a=\"x\"} 1\n\
                  # HELP h A histogram.\n# TYPE h histogram\nh_sum 0.5\nh_count 1\n\
                  h_bucket{le=\"1.0\"} 1\nh_bucket{x=\"y\",le=\"0.001\"} 0\nh_bucket{le=\"+Inf\"} 1\n\
                  # EOF\n";
        assert_eq!(
            to_prometheus_text(om),
            "# HELP c_seen_total Things seen.\n# TYPE c_seen_total counter\nc_seen_total 3\n\
             # HELP g A gauge.\n# TYPE g gauge\ng{a=\"x\"} 1\n\
             # HELP h A histogram.\n# TYPE h histogram\nh_sum 0.5\nh_count 1\n\
             h_bucket{le=\"1\"} 1\nh_bucket{x=\"y\",le=\"0.001\"} 0\nh_bucket{le=\"+Inf\"} 1\n"
        );
    }
}
