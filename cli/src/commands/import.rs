//! `cairn import --endpoints URL[,URL...] [--cacert --cert --key] --out cairn.toml`: writes an
//! inventory for a cluster that runs already, from its member list and Status.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use cairn_inventory::Inventory;
use cairn_pki::{Client, Pki};
use cairn_provisioner::import::{inventory_text, read_cluster, Options};
use clap::Args;

use crate::Error;

/// `cairn import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Client URLs of one or more members.
    #[arg(long, value_name = "URL,...", value_delimiter = ',', required = true)]
    pub endpoints: Vec<String>,
    /// CA certificate (PEM) the members' certificates are signed by.
    #[arg(long, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM), when the members require one.
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// The client certificate's key (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
    /// The cluster's name in the inventory.
    #[arg(long, default_value = "main")]
    pub name: String,
    /// The inventory to write; refused when it exists.
    #[arg(long, value_name = "FILE")]
    pub out: PathBuf,
    /// How long each request may take, in seconds.
    #[arg(long, default_value_t = 5, value_name = "SECONDS")]
    pub timeout: u64,
}

/// The `[tls] dir` written next to the inventory (relative to it).
const TLS_DIR: &str = "pki";

/// Reads the cluster, writes the inventory (and with TLS the given CA and client
/// certificate into its `[tls] dir`, where `cairn status` looks for them), checks that it
/// loads.
pub fn run(args: ImportArgs) -> Result<ExitCode, Error> {
    if args.out.exists() {
        return Err(Error::OutExists(args.out));
    }
    let options = Options {
        endpoints: args.endpoints.clone(),
        cacert: args.cacert.clone(),
        cert: args.cert.clone().zip(args.key.clone()),
        timeout: Duration::from_secs(args.timeout.max(1)),
    };
    let runtime = tokio::runtime::Runtime::new().map_err(Error::Runtime)?;
    let cluster = runtime.block_on(read_cluster(&options))?;
    let text = inventory_text(&cluster, &args.name, &args.endpoints, TLS_DIR)?;
    // Checked before anything is written: an inventory that does not load must not be left
    // behind (a rerun is refused while the file exists).
    Inventory::parse(&args.out, text.clone())?;
    let write = |path: &Path, bytes: &[u8]| {
        std::fs::write(path, bytes).map_err(|source| Error::Write {
            path: path.to_path_buf(),
            source,
        })
    };
    write(&args.out, text.as_bytes())?;
    let inventory = Inventory::load(&args.out)?;
    if let Some(tls) = &inventory.tls {
        let pki = Pki::existing(tls);
        std::fs::create_dir_all(&tls.dir).map_err(|source| Error::Write {
            path: tls.dir.clone(),
            source,
        })?;
        let copy = |from: &Option<PathBuf>, to: PathBuf| -> Result<(), Error> {
            let Some(from) = from else { return Ok(()) };
            let bytes = std::fs::read(from).map_err(|source| Error::Read {
                path: from.clone(),
                source,
            })?;
            write(&to, &bytes)
        };
        copy(&args.cacert, pki.ca_cert())?;
        copy(&args.cert, pki.client_cert(Client::Admin))?;
        copy(&args.key, pki.client_key(Client::Admin))?;
    }
    println!(
        "{}: {} member(s) of {} {}; set [cluster] token and binary before cairn provision",
        args.out.display(),
        inventory.hosts.len(),
        match inventory.cluster.server {
            cairn_inventory::ServerKind::Cairn => "cairn-server",
            cairn_inventory::ServerKind::Etcd => "etcd",
        },
        cluster.version,
    );
    Ok(ExitCode::SUCCESS)
}
