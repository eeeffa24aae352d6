//! Progress on stderr: per host for `cairn provision` (one spinner line per host on a
//! terminal, plain `host: step` lines otherwise: logs, CI), and a byte bar for backup
//! transfers on a terminal.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use cairn_provisioner::converge::Progress;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// Progress for the hosts of one run.
pub struct HostProgress {
    bars: Option<(MultiProgress, Mutex<HashMap<String, ProgressBar>>)>,
    lines: bool,
}

impl HostProgress {
    /// Spinners when stderr is a terminal and `quiet` is false, lines otherwise; nothing at
    /// all when `quiet` (JSON output).
    pub fn new(hosts: &[&str], quiet: bool) -> Self {
        let quiet = quiet || crate::ui::get().quiet;
        if quiet || !std::io::stderr().is_terminal() {
            return Self {
                bars: None,
                lines: !quiet,
            };
        }
        let multi = MultiProgress::new();
        let style = ProgressStyle::with_template("{spinner} {prefix:.bold} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        let width = hosts.iter().map(|h| h.len()).max().unwrap_or(0);
        let bars = hosts
            .iter()
            .map(|h| {
                let bar = multi.add(ProgressBar::new_spinner().with_style(style.clone()));
                bar.set_prefix(format!("{h:<width$}"));
                bar.set_message("waiting");
                bar.enable_steady_tick(Duration::from_millis(120));
                (h.to_string(), bar)
            })
            .collect();
        Self {
            bars: Some((multi, Mutex::new(bars))),
            lines: false,
        }
    }

    fn bar(&self, host: &str) -> Option<ProgressBar> {
        let (_, bars) = self.bars.as_ref()?;
        bars.lock().ok()?.get(host).cloned()
    }

    /// Stops every spinner that is still turning.
    pub fn clear(&self) {
        if let Some((multi, bars)) = &self.bars {
            if let Ok(bars) = bars.lock() {
                for bar in bars.values() {
                    if !bar.is_finished() {
                        bar.finish();
                    }
                }
            }
            let _ = multi.clear();
        }
    }
}

impl Progress for HostProgress {
    fn step(&self, host: &str, step: &str) {
        match self.bar(host) {
            Some(bar) => bar.set_message(step.to_string()),
            None if self.lines => eprintln!("{host}: {step}"),
            None => {}
        }
    }

    fn done(&self, host: &str, ok: bool, summary: &str) {
        let mark = if ok { "ok" } else { "FAILED" };
        // Host errors already start with the host's name.
        let prefix = format!("{host}: ");
        let summary = summary.strip_prefix(&prefix).unwrap_or(summary);
        match self.bar(host) {
            Some(bar) => bar.finish_with_message(format!("{mark}: {summary}")),
            None if self.lines => eprintln!("{host}: {mark}: {summary}"),
            None => {}
        }
    }
}

/// A byte bar for one backup transfer at a time.
struct TransferBar(Mutex<Option<ProgressBar>>);

impl cairn_backupd::TransferProgress for TransferBar {
    fn begin(&self, total: Option<u64>) {
        let bar = total.map_or_else(ProgressBar::no_length, ProgressBar::new);
        if let Ok(style) = ProgressStyle::with_template(
            "{bytes}/{total_bytes} {wide_bar} {binary_bytes_per_sec} {eta}",
        ) {
            bar.set_style(style);
        }
        *self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(bar);
    }

    fn set_total(&self, total: u64) {
        if let Some(bar) = &*self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            bar.set_length(total);
        }
    }

    fn advance(&self, bytes: u64) {
        if let Some(bar) = &*self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            bar.inc(bytes);
        }
    }

    fn end(&self) {
        if let Some(bar) = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            bar.finish_and_clear();
        }
    }
}

/// Backup transfers' progress: a bar when stderr is a terminal (and not `--quiet`),
/// nothing otherwise.
pub fn transfer_progress() -> std::sync::Arc<dyn cairn_backupd::TransferProgress> {
    if std::io::stderr().is_terminal() && !crate::ui::get().quiet {
        std::sync::Arc::new(TransferBar(Mutex::new(None)))
    } else {
        std::sync::Arc::new(cairn_backupd::NoProgress)
    }
}
