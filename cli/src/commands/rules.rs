//! `cairn rules [-i INVENTORY] --out DIR`: alert rules, their promtool tests, `prometheus.yml`
//! and a Grafana dashboard for the inventory's cluster.

use std::path::PathBuf;
use std::process::ExitCode;

use cairn_inventory::InventoryArg;
use clap::Args;

use crate::Error;

/// `cairn rules`.
#[derive(Debug, Args)]
pub struct RulesArgs {
    /// The cluster.
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Directory the files are written to (created if missing; existing files are replaced).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Multiplies every alert's `for`: small values make alerts fire within seconds, for
    /// tests against a live Prometheus.
    #[arg(long, default_value_t = 1.0, hide = true, value_parser = positive)]
    pub for_scale: f64,
}

fn positive(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("{s:?} is not a number above 0")),
    }
}

/// Writes the files and lists them; inventory warnings go to stderr.
pub fn run(args: RulesArgs) -> Result<ExitCode, Error> {
    let inventory = args.inventory.load()?;
    for warning in inventory.warnings() {
        eprintln!("cairn: warning: {warning}");
    }
    let options = cairn_rules::Options {
        for_scale: args.for_scale,
    };
    for path in cairn_rules::generate(&inventory, &options, &args.out)? {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
