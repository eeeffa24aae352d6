//! Prometheus' template functions `humanize`, `humanizeDuration` and `humanizePercentage`
//! (Go's `%.4g` underneath), so the generated promtool tests can state the exact annotation
//! text an alert will carry.

/// Go's `fmt.Sprintf("%.4g", v)`.
pub(crate) fn g4(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v == 0.0 {
        return "0".into();
    }
    let sci = format!("{v:.3e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("integer exponent");
    if !(-4..4).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{}e{sign}{:02}", trim_zeros(mantissa), exp.abs())
    } else {
        let decimals = usize::try_from(3 - exp).expect("exp below 4");
        trim_zeros(&format!("{v:.decimals$}")).to_string()
    }
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// `humanize`: SI prefixes, four significant digits.
pub(crate) fn humanize(mut v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return g4(v);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for p in ["k", "M", "G", "T", "P", "E", "Z", "Y"] {
            if v.abs() < 1000.0 {
                break;
            }
            prefix = p;
            v /= 1000.0;
        }
    } else {
        for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = p;
            v *= 1000.0;
        }
    }
    format!("{}{prefix}", g4(v))
}

/// `humanizeDuration`: seconds as `1d 2h 3m 4s`, or `1.5s`, `250ms`.
pub(crate) fn humanize_duration(mut v: f64) -> String {
    if !v.is_finite() {
        return g4(v);
    }
    if v == 0.0 {
        return format!("{}s", g4(v));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        v = v.abs();
        // Go truncates with int64(v).
        let whole = v as i64;
        let (days, hours, minutes, seconds) = (
            whole / 86_400,
            whole / 3600 % 24,
            whole / 60 % 60,
            whole % 60,
        );
        return if days != 0 {
            format!("{sign}{days}d {hours}h {minutes}m {seconds}s")
        } else if hours != 0 {
            format!("{sign}{hours}h {minutes}m {seconds}s")
        } else if minutes != 0 {
            format!("{sign}{minutes}m {seconds}s")
        } else {
            format!("{sign}{}s", g4(v))
        };
    }
    let mut prefix = "";
    for p in ["m", "u", "n", "p", "f", "a", "z", "y"] {
        if v.abs() >= 1.0 {
            break;
        }
        prefix = p;
        v *= 1000.0;
    }
    format!("{}{prefix}s", g4(v))
}

/// `humanizePercentage`: a ratio as a percentage.
pub(crate) fn humanize_percentage(v: f64) -> String {
    format!("{}%", g4(v * 100.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Outputs of Go's `fmt.Sprintf("%.4g", v)`.
    #[test]
    fn g4_matches_go() {
        for (v, go) in [
            (0.0, "0"),
            (1.0, "1"),
            (97.5, "97.5"),
            (1234.5678, "1235"),
            (12345.0, "1.234e+04"),
            (1e6, "1e+06"),
            (0.0001234, "0.0001234"),
            (0.00001, "1e-05"),
            (9.99996, "10"),
            (-2.5, "-2.5"),
            (0.3, "0.3"),
        ] {
            assert_eq!(g4(v), go, "{v}");
        }
    }

    /// Outputs of Prometheus 2.42's template functions.
    #[test]
    fn humanize_functions_match_prometheus() {
        assert_eq!(humanize(1.0), "1");
        assert_eq!(humanize(1234.0), "1.234k");
        assert_eq!(humanize(0.25), "250m");
        assert_eq!(humanize(0.0), "0");
        assert_eq!(humanize_duration(0.3), "300ms");
        assert_eq!(humanize_duration(1.5), "1.5s");
        assert_eq!(humanize_duration(90.0), "1m 30s");
        assert_eq!(humanize_duration(14_400.0), "4h 0m 0s");
        assert_eq!(humanize_duration(90_061.0), "1d 1h 1m 1s");
        assert_eq!(humanize_duration(0.0), "0s");
        assert_eq!(humanize_percentage(0.25), "25%");
    }
}
