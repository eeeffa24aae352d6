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
