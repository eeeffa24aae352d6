//! `cairn status [-i INVENTORY]`: every member's leader flag, revision, database size and
//! version, asked with the admin client certificate.

use std::process::ExitCode;
use std::time::Duration;

use cairn_inventory::InventoryArg;
use cairn_pki::Pki;
use cairn_provisioner::probe::EtcdProbe;
use cairn_provisioner::status::ClusterStatus;
use clap::Args;

use crate::{Error, Output};

/// `cairn status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The cluster.
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// How long each member may take to answer, in seconds.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub timeout: u64,
    /// Output format.
    #[arg(
        short = 'o',
        long,
        visible_short_alias = 'w',
        value_enum,
        default_value_t
    )]
    pub output: Output,
}

/// Prints the table; exits 1 when a member does not answer.
pub fn run(args: StatusArgs) -> Result<ExitCode, Error> {
    let inventory = args.inventory.load()?;
    let pki = inventory.tls.as_ref().map(Pki::existing);
    let probe = EtcdProbe::new(
        &inventory,
        pki.as_ref(),
        Duration::from_secs(args.timeout.max(1)),
    )?;
    let runtime = tokio::runtime::Runtime::new().map_err(Error::Runtime)?;
    let status = runtime.block_on(ClusterStatus::query(&inventory, &probe));
    if args.output == Output::Json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{status}");
    }
    if status.answering() == status.members.len() {
        Ok(ExitCode::SUCCESS)
    } else {
        Ok(ExitCode::from(1))
    }
}
