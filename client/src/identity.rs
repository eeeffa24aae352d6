//! The client certificates cairn's PKI issues, and where they live in its TLS directory.
//! Defined once here: the PKI writes these files, every tool reads them.

use std::path::{Path, PathBuf};

/// The CA bundle every member and client trusts.
pub const CA_FILE: &str = "ca.pem";
/// The CA's private key (on the operator's machine only).
pub const CA_KEY_FILE: &str = "ca-key.pem";

/// The clients that get a certificate of their own; each is named in the CA's logs and, with
/// etcd's auth enabled, maps to a user of its common name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientIdentity {
    /// etcdctl and `cairn status`/`cairn provision` (common name `root`, etcd's admin user).
    Admin,
    /// The backup daemon.
    Backup,
    /// The inspection tool.
    Inspector,
    /// Prometheus scraping the client port (`prometheus.pem`, as `cairn rules` expects).
    Prometheus,
}

impl ClientIdentity {
    /// Every client, in the order they are issued.
    pub const ALL: [ClientIdentity; 4] = [
        ClientIdentity::Admin,
        ClientIdentity::Backup,
        ClientIdentity::Inspector,
        ClientIdentity::Prometheus,
    ];

    /// File stem in the TLS directory (`admin` for `admin.pem` and `admin-key.pem`).
    pub fn stem(self) -> &'static str {
        match self {
            ClientIdentity::Admin => "admin",
            ClientIdentity::Backup => "backup",
            ClientIdentity::Inspector => "inspector",
            ClientIdentity::Prometheus => "prometheus",
        }
    }

    /// The certificate's common name (etcd's user name under certificate auth).
    pub fn common_name(self) -> &'static str {
        match self {
            ClientIdentity::Admin => "root",
            ClientIdentity::Backup => "cairn-backup",
            ClientIdentity::Inspector => "cairn-inspector",
            ClientIdentity::Prometheus => "prometheus",
        }
    }

    /// The certificate file's name.
    pub fn cert_file(self) -> String {
        format!("{}.pem", self.stem())
    }

    /// The key file's name.
    pub fn key_file(self) -> String {
        format!("{}-key.pem", self.stem())
    }
}

/// A member's certificate file name in the TLS directory.
pub fn member_cert_file(member: &str) -> String {
    format!("{member}.pem")
}

/// A member's key file name in the TLS directory.
pub fn member_key_file(member: &str) -> String {
    format!("{member}-key.pem")
}

/// The CA to trust and the client certificate to present.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificate (PEM).
    pub ca: PathBuf,
    /// Client certificate (PEM).
    pub cert: PathBuf,
    /// Its key (PEM).
    pub key: PathBuf,
}

impl TlsFiles {
    /// `client`'s files in the PKI directory `dir`.
    pub fn in_dir(dir: &Path, client: ClientIdentity) -> Self {
        Self {
            ca: dir.join(CA_FILE),
            cert: dir.join(client.cert_file()),
            key: dir.join(client.key_file()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names() {
        let f = TlsFiles::in_dir(Path::new("/pki"), ClientIdentity::Backup);
        assert_eq!(f.ca, Path::new("/pki/ca.pem"));
        assert_eq!(f.cert, Path::new("/pki/backup.pem"));
        assert_eq!(f.key, Path::new("/pki/backup-key.pem"));
        assert_eq!(member_key_file("m1"), "m1-key.pem");
        assert_eq!(ClientIdentity::Admin.common_name(), "root");
    }
}
