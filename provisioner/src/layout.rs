//! Where things land on a host. Fixed paths, the ones etcd guides use, so an operator finds
//! them without reading the inventory.

use cairn_inventory::ServerKind;

/// The etcd env file the unit reads (`ETCD_*` variables).
pub const ENV_FILE: &str = "/etc/cairn/cairn.env";
/// The systemd unit's name.
pub const UNIT_NAME: &str = "cairn.service";
/// The systemd unit file.
pub const UNIT_FILE: &str = "/etc/systemd/system/cairn.service";
/// The CA certificate the member trusts for clients and peers.
pub const CA_CERT: &str = "/etc/cairn/pki/ca.pem";
/// The member's certificate (client and peer traffic).
pub const MEMBER_CERT: &str = "/etc/cairn/pki/member.pem";
/// The member's private key.
pub const MEMBER_KEY: &str = "/etc/cairn/pki/member-key.pem";

/// The pushed server binary: named after what it is, so `ps` shows etcd as etcd.
pub fn binary(kind: ServerKind) -> &'static str {
    match kind {
        ServerKind::Cairn => "/usr/local/bin/cairn-server",
        ServerKind::Etcd => "/usr/local/bin/etcd",
    }
}

/// The backup daemon's systemd unit name (on the `[backup] host` only).
pub const BACKUPD_UNIT_NAME: &str = "cairn-backupd.service";
/// The backup daemon's unit file.
pub const BACKUPD_UNIT_FILE: &str = "/etc/systemd/system/cairn-backupd.service";
/// The pushed `cairn` binary the daemon runs (the operator's own, so versions match).
pub const CAIRN_BINARY: &str = "/usr/local/bin/cairn";
/// The daemon's files outside [`BACKUPD_DIR`], removed with it.
pub const BACKUPD_FILES: [&str; 2] = [BACKUPD_UNIT_FILE, CAIRN_BINARY];
/// Everything else the daemon reads lives here, apart from the member's files.
pub const BACKUPD_DIR: &str = "/etc/cairn/backupd";
/// The daemon's inventory: the operator's, with this host's paths.
pub const BACKUPD_INVENTORY: &str = "/etc/cairn/backupd/cairn.toml";
/// The daemon's TLS directory: the CA and the `cairn-backup` client certificate, under the
/// names `[tls] dir` uses.
pub const BACKUPD_PKI_DIR: &str = "/etc/cairn/backupd/pki";
/// The backup encryption key, when `[backup] encryption_key_file` is set.
pub const BACKUPD_KEY: &str = "/etc/cairn/backupd/backup.key";
/// Root's password for the daemon's logins, when `[auth]` gives one (mode 0600).
pub const BACKUPD_ROOT_PASSWORD: &str = "/etc/cairn/backupd/root.password";
/// The daemon's `AWS_*` variables, when `[backup] environment_file` is set.
pub const BACKUPD_ENV_FILE: &str = "/etc/cairn/backupd/aws.env";
