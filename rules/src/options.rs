//! Generator settings that are not the cluster's.

/// Generator settings that are not the cluster's.
#[derive(Clone, Debug, PartialEq)]
pub struct Options {
    /// Multiplies every alert's `for` (1 in production; small in tests against a live
    /// Prometheus so alerts fire within seconds).
    pub for_scale: f64,
}

impl Default for Options {
    fn default() -> Self {
        Self { for_scale: 1.0 }
    }
}
