//! The `process_*` metrics client_golang exports for etcd, read from `/proc/self` at each
//! scrape (Linux only, like etcd's).
//! prometheus-client has no process collector; reading the few `/proc` fields etcd's dashboards
//! use is simpler than a second metrics library beside it.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

/// Reads the process figures when the registry is encoded.
#[derive(Debug)]
struct ProcessMetrics;

/// Adds the `process_*` metrics to `registry`.
pub(super) fn register(registry: &mut Registry) {
    registry.register_collector(Box::new(ProcessMetrics));
}

/// What `/proc/self` says about this process.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Figures {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    start_time_seconds: f64,
    open_fds: f64,
    max_fds: f64,
    virtual_max_bytes: f64,
}

/// Parses `/proc/self/stat`: (utime + stime in ticks, starttime in ticks, vsize, rss pages).
fn parse_stat(stat: &str) -> Option<(u64, u64, u64, u64)> {
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // fields[0] is the state, field 3 of proc(5).
    let at = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some((at(14)? + at(15)?, at(22)?, at(23)?, at(24)?))
}

/// The soft limit named `name` in `/proc/self/limits` (`None` when unlimited).
fn parse_limit(limits: &str, name: &str) -> Option<Option<u64>> {
    let line = limits.lines().find(|l| l.starts_with(name))?;
    let soft = line[name.len()..].split_whitespace().next()?;
    if soft == "unlimited" {
        return Some(None);
    }
    soft.parse().ok().map(Some)
}

fn boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()
}

fn read() -> Option<Figures> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let (cpu_ticks, start_ticks, vsize, rss_pages) = parse_stat(&stat)?;
    let ticks = rustix::param::clock_ticks_per_second() as f64;
    let page = rustix::param::page_size() as f64;
    let btime = boot_time(&std::fs::read_to_string("/proc/stat").ok()?)? as f64;
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let unlimited = u64::MAX as f64;
    let max_fds = parse_limit(&limits, "Max open files")?.map_or(unlimited, |v| v as f64);
    let virtual_max_bytes =
        parse_limit(&limits, "Max address space")?.map_or(unlimited, |v| v as f64);
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as f64;
    Some(Figures {
        cpu_seconds: cpu_ticks as f64 / ticks,
        resident_bytes: rss_pages as f64 * page,
        virtual_bytes: vsize as f64,
        start_time_seconds: btime + start_ticks as f64 / ticks,
        open_fds,
        max_fds,
        virtual_max_bytes,
    })
}

impl Collector for ProcessMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Without /proc there is nothing true to report; the families are left out.
        let Some(f) = read() else { return Ok(()) };
        let cpu = ConstCounter::new(f.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges = [
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                f.max_fds,
            ),
            (
                "process_open_fds",
                "Number of open file descriptors.",
                f.open_fds,
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                f.resident_bytes,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                f.start_time_seconds,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                f.virtual_bytes,
            ),
            (
                "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.",
                f.virtual_max_bytes,
            ),
        ];
        for (name, help, value) in gauges {
            let g = ConstGauge::new(value);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "4242 (cairn (x) y) S 1 2 3 4 5 6 7 8 9 10 150 50 0 0 20 0 9 0 \
                    12345 1000000 250 18446744073709551615";
        assert_eq!(parse_stat(stat), Some((200, 12345, 1_000_000, 250)));
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            20000                524288               files\n\
                      Max address space         unlimited            unlimited            bytes\n";
        assert_eq!(parse_limit(limits, "Max open files"), Some(Some(20000)));
        assert_eq!(parse_limit(limits, "Max address space"), Some(None));
        assert_eq!(
            boot_time("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn reads_this_process() {
        let f = read().expect("/proc/self is readable on Linux");
        assert!(f.resident_bytes > 0.0 && f.open_fds > 0.0 && f.start_time_seconds > 0.0);
    }
}
