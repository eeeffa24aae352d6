//! The flags every command shares for how it talks to people (ARCHITECTURE.md, "The command
//! line"): `-q/--quiet`, `-v/--verbose` and `--color`. [`crate::run`] sets them once; the
//! commands, the progress display and `main`'s error line read them.

use std::sync::OnceLock;

use clap::{Args, ValueEnum};

/// `--color`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless `NO_COLOR` is set (no-color.org).
    #[default]
    Auto,
    /// Always, even into a pipe.
    Always,
    /// Never.
    Never,
}

/// The shared flags, global: they go before or after the subcommand.
#[derive(Clone, Copy, Debug, Default, Args)]
pub struct Ui {
    /// Only results, warnings and errors: no progress.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More detail: every cause of an error (one per line), every figure of a report.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// When tables and logs are colored.
    #[arg(long, global = true, value_enum, default_value_t, value_name = "WHEN")]
    pub color: ColorWhen,
}

static UI: OnceLock<Ui> = OnceLock::new();

impl Ui {
    /// Whether to color output going to a stream that `is_terminal` or not.
    pub fn color(&self, is_terminal: bool) -> bool {
        self.color_with(
            is_terminal,
            std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
        )
    }

    fn color_with(&self, is_terminal: bool, no_color: bool) -> bool {
        match self.color {
            ColorWhen::Always => true,
            ColorWhen::Never => false,
            ColorWhen::Auto => is_terminal && !no_color,
        }
    }
}

/// Sets the flags for this process (the first call wins).
pub fn set(ui: Ui) {
    let _ = UI.set(ui);
}

/// The flags of this run (the defaults before [`set`]: library tests).
pub fn get() -> Ui {
    UI.get().copied().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_colors_a_terminal_unless_no_color_and_the_others_override() {
        let ui = |color| Ui {
            color,
            ..Ui::default()
        };
        assert!(ui(ColorWhen::Auto).color_with(true, false));
        assert!(!ui(ColorWhen::Auto).color_with(true, true));
        assert!(!ui(ColorWhen::Auto).color_with(false, false));
        assert!(ui(ColorWhen::Always).color_with(false, true));
        assert!(!ui(ColorWhen::Never).color_with(true, false));
    }
}
