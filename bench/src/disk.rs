//! The disk check of the etcd guides, done natively: sequential writes of 2,300 bytes (about a
//! WAL entry), each followed by fdatasync, 22 MiB in all — what
//! `fio --rw=write --ioengine=sync --fdatasync=1 --size=22m --bs=2300` measures. etcd needs the
//! 99th percentile of fdatasync under 10 ms; slower disks cause leader loss under load.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::Error;

/// What to measure.
#[derive(Clone, Debug)]
pub struct DiskCheck {
    /// Directory on the disk to check (the data dir's file system).
    pub dir: PathBuf,
    /// Bytes per write.
    pub block_size: usize,
    /// Bytes written in all.
    pub total_bytes: u64,
    /// The p99 fdatasync latency below which the disk passes.
    pub threshold: Duration,
}

impl DiskCheck {
    /// The guides' test on `dir`: 2,300-byte writes, 22 MiB, p99 under 10 ms.
    pub fn etcd_guide(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            block_size: 2300,
            total_bytes: 22 * 1024 * 1024,
            threshold: Duration::from_millis(10),
        }
    }
}

/// What the check measured. Also read back from JSON: `cairn check disk -i` runs the check
/// on every host and collects these reports.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DiskReport {
    /// The directory checked.
    pub dir: PathBuf,
    /// Writes made (each followed by fdatasync).
    pub writes: u64,
    /// Bytes per write.
    pub block_size: usize,
    /// fdatasync latency percentiles and maximum, in milliseconds.
    pub fdatasync_ms: Percentiles,
    /// The p99 threshold, in milliseconds.
    pub threshold_ms: f64,
    /// Whether p99 is under the threshold on a real disk.
    pub passed: bool,
    /// The memory file system the directory is on (`tmpfs`, `ramfs`): fdatasync costs
    /// nothing there, so the figures say nothing of a disk and the check does not pass.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_fs: Option<String>,
}

impl DiskReport {
    /// `PASS`, `FAIL`, or `WARN` for a memory file system.
    pub fn verdict(&self) -> &'static str {
        match (&self.memory_fs, self.passed) {
            (Some(_), _) => "WARN",
            (None, true) => "PASS",
            (None, false) => "FAIL",
        }
    }
}

/// The memory file system `dir` is on, if it is on one.
fn memory_fs(dir: &Path) -> Option<String> {
    // statfs(2)'s f_type of tmpfs and ramfs (linux/magic.h).
    const TMPFS_MAGIC: u64 = 0x0102_1994;
    const RAMFS_MAGIC: u64 = 0x8584_58f6;
    let stat = rustix::fs::statfs(dir).ok()?;
    #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
    match u64::try_from(stat.f_type).ok()? {
        TMPFS_MAGIC => Some("tmpfs".into()),
        RAMFS_MAGIC => Some("ramfs".into()),
        _ => None,
    }
}

/// Latency figures in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
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

impl std::fmt::Display for DiskReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let p = &self.fdatasync_ms;
        writeln!(
            f,
            "disk check of {}: {} writes of {} bytes, each followed by fdatasync",
            self.dir.display(),
            self.writes,
            self.block_size
        )?;
        writeln!(
            f,
            "fdatasync latency: p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
            p.p50, p.p90, p.p99, p.p999, p.max
        )?;
        if let Some(fs) = &self.memory_fs {
            write!(
                f,
                "WARN: {} is on {fs}, which is memory, not a disk: fdatasync costs nothing there (p99 {:.3} ms), so this says nothing of the disk etcd will use; check a directory on that disk",
                self.dir.display(),
                p.p99
            )
        } else if self.passed {
            write!(
                f,
                "PASS: p99 {:.3} ms is under {} ms",
                p.p99, self.threshold_ms
            )
        } else {
            write!(
                f,
                "FAIL: p99 {:.3} ms is not under {} ms; etcd on this disk risks leader loss under load (use an SSD, or a disk of its own)",
                p.p99, self.threshold_ms
            )
        }
    }
}

/// Removes the test file however the check ends.
struct Scratch {
    path: PathBuf,
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

fn file_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::File {
        path: path.to_path_buf(),
        source,
    }
}

/// Runs the check: writes to a scratch file in `check.dir`, removed afterwards.
pub fn run(check: &DiskCheck) -> Result<DiskReport, Error> {
    let writes = check.total_bytes / check.block_size.max(1) as u64;
    if writes == 0 || check.block_size == 0 {
        return Err(Error::NothingToMeasure {
            block_size: check.block_size,
        });
    }
    let scratch = Scratch {
        path: check
            .dir
            .join(format!(".cairn-disk-check-{}", std::process::id())),
    };
    let mut file: File = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&scratch.path)
        .map_err(file_err(&scratch.path))?;
    let block = vec![0x5a_u8; check.block_size];
    let mut hist = Histogram::<u64>::new(3).expect("3 significant figures is valid");
    for _ in 0..writes {
        file.write_all(&block).map_err(file_err(&scratch.path))?;
        let started = Instant::now();
        file.sync_data().map_err(file_err(&scratch.path))?;
        hist.record(started.elapsed().as_nanos().max(1) as u64)
            .expect("histogram auto-resizes");
    }
    let ms = |ns: u64| ns as f64 / 1e6;
    let fdatasync_ms = Percentiles {
        p50: ms(hist.value_at_quantile(0.5)),
        p90: ms(hist.value_at_quantile(0.9)),
        p99: ms(hist.value_at_quantile(0.99)),
        p999: ms(hist.value_at_quantile(0.999)),
        max: ms(hist.max()),
    };
    let threshold_ms = check.threshold.as_secs_f64() * 1000.0;
    let memory_fs = memory_fs(&check.dir);
    Ok(DiskReport {
        dir: check.dir.clone(),
        writes,
        block_size: check.block_size,
        passed: fdatasync_ms.p99 < threshold_ms && memory_fs.is_none(),
        fdatasync_ms,
        threshold_ms,
        memory_fs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small(dir: &Path) -> DiskCheck {
        DiskCheck {
            total_bytes: 500 * 2300,
            ..DiskCheck::etcd_guide(dir)
        }
    }

    #[test]
    fn measures_every_write_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let report = run(&small(dir.path())).unwrap();
        assert_eq!(report.writes, 500);
        let p = report.fdatasync_ms;
        assert!(
            p.p50 > 0.0 && p.p50 <= p.p90 && p.p90 <= p.p99 && p.p99 <= p.p999 && p.p999 <= p.max
        );
        assert_eq!(report.passed, p.p99 < 10.0);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            0,
            "scratch file removed"
        );
    }

    #[test]
    fn the_verdict_follows_the_threshold() {
        let dir = tempfile::tempdir().unwrap();
        let strict = DiskCheck {
            threshold: Duration::ZERO,
            ..small(dir.path())
        };
        let report = run(&strict).unwrap();
        assert!(!report.passed);
        assert_eq!(report.memory_fs, None, "the test directory is on a disk");
        assert!(report.to_string().contains("FAIL"));
        let lenient = DiskCheck {
            threshold: Duration::from_secs(3600),
            ..small(dir.path())
        };
        let report = run(&lenient).unwrap();
        assert!(report.passed);
        assert!(report.to_string().contains("PASS"));
    }

    #[test]
    fn tmpfs_is_not_a_disk_and_the_report_says_so() {
        // /dev/shm is a tmpfs on Linux: fdatasync returns at once there.
        let dir = tempfile::tempdir_in("/dev/shm").unwrap();
        let report = run(&small(dir.path())).unwrap();
        assert_eq!(report.memory_fs.as_deref(), Some("tmpfs"), "{report}");
        assert!(!report.passed);
        assert_eq!(report.verdict(), "WARN");
        let text = report.to_string();
        assert!(
            text.lines().last().is_some_and(|l| l.starts_with(&format!(
                "WARN: {} is on tmpfs, which is memory, not a disk",
                dir.path().display()
            ))),
            "{text}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["memory_fs"], "tmpfs");
    }

    #[test]
    fn a_missing_directory_is_one_clear_error() {
        let err = run(&DiskCheck::etcd_guide("/nonexistent/cairn")).unwrap_err();
        assert!(
            err.to_string()
                .starts_with("/nonexistent/cairn/.cairn-disk-check-"),
            "{err}"
        );
        assert!(err.to_string().contains("must exist and be writable"));
        let err = run(&DiskCheck {
            total_bytes: 10,
            ..DiskCheck::etcd_guide("/tmp")
        })
        .unwrap_err();
        assert!(matches!(err, Error::NothingToMeasure { .. }));
    }
}
