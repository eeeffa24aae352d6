//! Every file one host should have, with its contents, mode and how a plan shows a change to
//! it.

use std::sync::Arc;

use cairn_inventory::{Host, Inventory};
use serde::Serialize;

use crate::{layout, local_file, render, Error, Pki};

/// How a change to a file is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// A unified diff.
    Text,
    /// Hashes only: a private key never appears in a plan.
    Secret,
    /// Hashes only; read on the host as a hash, never downloaded.
    Binary,
}

/// File contents with their SHA-256, hashed once however many hosts get them.
#[derive(Clone, Debug)]
pub struct Blob {
    /// The bytes (shared: every host gets the same binary).
    pub bytes: Arc<[u8]>,
    /// Their SHA-256, hex.
    pub sha256: String,
}

impl Blob {
    /// Hashes `bytes`.
    pub fn new(bytes: impl Into<Arc<[u8]>>) -> Self {
        let bytes = bytes.into();
        let sha256 = crate::plan::sha256_hex(&bytes);
        Self { bytes, sha256 }
    }
}

/// One file as the inventory wants it on a host.
#[derive(Clone, Debug)]
pub struct DesiredFile {
    /// Absolute path on the host.
    pub path: String,
    /// The contents.
    pub contents: Blob,
    /// Permission bits.
    pub mode: u32,
    /// How a change is shown.
    pub kind: FileKind,
}

/// Owner of every file the provisioner writes; the unit runs the server as root.
pub const OWNER: &str = "root:root";

/// The files for `host`: the server binary, with TLS the CA, the member's certificate and
/// key, then the env file (with `bootstrap`'s initial-cluster values) and the unit.
pub fn host_files(
    inventory: &Inventory,
    host: &Host,
    pki: Option<&Pki>,
    binary: &Blob,
    bootstrap: &render::Bootstrap,
) -> Result<Vec<DesiredFile>, Error> {
    let mut files = vec![DesiredFile {
        path: layout::binary(inventory.cluster.server).into(),
        contents: binary.clone(),
        mode: 0o755,
        kind: FileKind::Binary,
    }];
    if let Some(pki) = pki {
        for (path, local, mode, kind) in [
            (layout::CA_CERT, pki.ca_cert(), 0o644, FileKind::Text),
            (
                layout::MEMBER_CERT,
                pki.member_cert(&host.name),
                0o644,
                FileKind::Text,
            ),
            (
                layout::MEMBER_KEY,
                pki.member_key(&host.name),
                0o600,
                FileKind::Secret,
            ),
        ] {
            files.push(DesiredFile {
                path: path.into(),
                contents: Blob::new(local_file::read(&local)?),
                mode,
                kind,
            });
        }
    }
    for (path, text) in [
        (
            layout::ENV_FILE,
            render::env_file(inventory, host, bootstrap),
        ),
        (layout::UNIT_FILE, render::unit_file(inventory, host)),
    ] {
        files.push(DesiredFile {
            path: path.into(),
            contents: Blob::new(text.into_bytes()),
            mode: 0o644,
            kind: FileKind::Text,
        });
    }
    Ok(files)
}
