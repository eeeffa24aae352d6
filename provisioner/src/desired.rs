//! Every file one host should have, with its contents, mode and how a plan shows a change to
//! it.

use std::sync::Arc;

use cairn_inventory::{Host, Inventory};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::{layout, render, Error};
use cairn_pki::local_file;
use cairn_pki::Client;
use cairn_pki::Pki;

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
        let sha256 = sha256_hex(&bytes);
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
    /// The service a change to it restarts.
    pub service: Service,
}

/// Which service reads a file, so a change restarts only that one: a new retention setting
/// must not restart a cluster member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// The member (`cairn.service`).
    Member,
    /// The backup daemon (`cairn-backupd.service`).
    Backupd,
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
        service: Service::Member,
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
                service: Service::Member,
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
            service: Service::Member,
        });
    }
    Ok(files)
}

/// The backup daemon's files for the `[backup] host` (none for other hosts, or without
/// `[backup]`): the `cairn` binary, its inventory, with TLS the CA and the `cairn-backup`
/// client certificate, the encryption key and `AWS_*` file when set, and the unit.
pub fn backupd_files(
    inventory: &Inventory,
    host: &Host,
    pki: Option<&Pki>,
    cairn: Option<&Blob>,
) -> Result<Vec<DesiredFile>, Error> {
    let Some(backup) = &inventory.backup else {
        return Ok(Vec::new());
    };
    // cairn up runs the members only; next to it the daemon runs in the foreground
    // (`cairn backupd -i INVENTORY`), reading the operator's own files.
    if inventory.cluster.transport == cairn_inventory::Transport::Local {
        return Ok(Vec::new());
    }
    if inventory.backup_host().map(|h| &h.name) != Some(&host.name) {
        return Ok(Vec::new());
    }
    let cairn = cairn.ok_or(Error::NoDaemonBinary)?;
    let file = |path: &str, contents: Blob, mode: u32, kind: FileKind| DesiredFile {
        path: path.into(),
        contents,
        mode,
        kind,
        service: Service::Backupd,
    };
    let mut files = vec![file(
        layout::CAIRN_BINARY,
        cairn.clone(),
        0o755,
        FileKind::Binary,
    )];
    if let Some(pki) = pki {
        let dir = layout::BACKUPD_PKI_DIR;
        for (name, local, mode, kind) in [
            ("ca.pem", pki.ca_cert(), 0o644, FileKind::Text),
            (
                "backup.pem",
                pki.client_cert(Client::Backup),
                0o644,
                FileKind::Text,
            ),
            (
                "backup-key.pem",
                pki.client_key(Client::Backup),
                0o600,
                FileKind::Secret,
            ),
        ] {
            let contents = Blob::new(local_file::read(&local)?);
            files.push(file(&format!("{dir}/{name}"), contents, mode, kind));
        }
    }
    for (path, local) in [
        (layout::BACKUPD_KEY, &backup.encryption_key_file),
        (layout::BACKUPD_ENV_FILE, &backup.environment_file),
    ] {
        if let Some(local) = local {
            let contents = Blob::new(local_file::read(local)?);
            files.push(file(path, contents, 0o600, FileKind::Secret));
        }
    }
    // Root's password, when the daemon logs in with it (no certificate to log in with).
    if let Some((_, password)) = inventory.root_login()? {
        files.push(file(
            layout::BACKUPD_ROOT_PASSWORD,
            Blob::new(format!("{password}\n").into_bytes()),
            0o600,
            FileKind::Secret,
        ));
    }
    files.push(file(
        layout::BACKUPD_INVENTORY,
        Blob::new(render::backupd_inventory(inventory)?.into_bytes()),
        0o644,
        FileKind::Text,
    ));
    files.push(file(
        layout::BACKUPD_UNIT_FILE,
        Blob::new(render::backupd_unit(inventory).into_bytes()),
        0o644,
        FileKind::Text,
    ));
    Ok(files)
}
/// Hex SHA-256 of `bytes`, as `sha256sum` prints it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
