//! `cairn destroy [-i INVENTORY] [--purge] [--yes]`: tears the cluster down on every host
//! after the operator typed the cluster's name (or passed `--yes`).

use std::process::ExitCode;

use cairn_inventory::InventoryArg;
use cairn_provisioner::destroy::{destroy, Options};
use cairn_provisioner::ssh::Timeouts;
use clap::Args;

use crate::progress::HostProgress;
use crate::prompt::ask;
use crate::ssh_args::SshArgs;
use crate::{Error, Output};

/// `cairn destroy`.
#[derive(Debug, Args)]
pub struct DestroyArgs {
    /// The cluster.
    #[command(flatten)]
    pub inventory: InventoryArg,
    /// Empty the members' data directories too: the cluster's data is gone for good.
    #[arg(long)]
    pub purge: bool,
    /// Do not ask for the cluster's name (scripts).
    #[arg(long, short = 'y')]
    pub yes: bool,
    /// How hosts are reached.
    #[command(flatten)]
    pub ssh: SshArgs,
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

/// Confirms, tears down and reports what was removed per host.
pub fn run(args: DestroyArgs) -> Result<ExitCode, Error> {
    let inventory = args.inventory.load()?;
    let name = &inventory.cluster.name;
    if !args.yes {
        let data = if args.purge {
            "and their data directories (--purge)"
        } else {
            "(data directories stay)"
        };
        let answer = ask(&format!(
            "This stops and removes cluster {name} from {} host(s): services, units, env files, certificates and the server binary {data}.\nType the cluster's name to go on: ",
            inventory.hosts.len()
        ))?
        .ok_or(Error::DestroyNeedsYes)?;
        if answer != *name {
            return Err(Error::NotConfirmed);
        }
    }
    let options = Options {
        purge: args.purge,
        accept_new_host_keys: args.ssh.accept_new_host_keys,
        parallel: args.ssh.parallel(),
        timeouts: Timeouts::default(),
    };
    let json = args.output == Output::Json;
    let names = inventory.member_names();
    let runtime = tokio::runtime::Runtime::new().map_err(Error::Runtime)?;
    let progress = HostProgress::new(&names, json);
    let result = runtime.block_on(destroy(&inventory, &options, &progress));
    progress.clear();
    let done = result?;
    if json {
        println!("{}", serde_json::to_string_pretty(&done)?);
    } else {
        for t in &done {
            let data = match &t.purged {
                Some(dir) => format!("{dir} emptied"),
                None => "data kept".into(),
            };
            println!("{}: {} file(s) removed, {data}", t.host, t.removed.len());
        }
    }
    Ok(ExitCode::SUCCESS)
}
