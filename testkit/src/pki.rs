//! A throwaway certificate authority with a server and a client certificate, as PEM files.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use tempfile::TempDir;

use crate::Error;

/// Test PKI: a CA, a server certificate and a client certificate, written as PEM files into
/// a temporary directory that lives as long as any clone of this value (members started with
/// [`MemberBuilder::tls`](crate::MemberBuilder::tls) keep a clone).
///
/// The server certificate is valid for `localhost` and the IPs 127.0.0.1 to 127.0.0.254, with
/// both the server and the client auth usage (etcd dials itself with it). The client
/// certificate has the client auth usage and the common name `testkit-client`.
#[derive(Clone, Debug)]
pub struct Pki {
    dir: Arc<TempDir>,
}

const CA: &str = "ca.pem";
const SERVER_CERT: &str = "server.pem";
const SERVER_KEY: &str = "server-key.pem";
const CLIENT_CERT: &str = "client.pem";
const CLIENT_KEY: &str = "client-key.pem";

impl Pki {
    /// Generates fresh keys and certificates and writes them into a new temporary directory.
    pub fn new() -> Result<Self, Error> {
        let dir = tempfile::Builder::new()
            .prefix("testkit-pki-")
            .tempdir()
            .map_err(|e| Error::io("creating a temporary directory for the PKI", e))?;

        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "cairn testkit CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let issuer = Issuer::new(ca_params, ca_key);

        let server_key = KeyPair::generate()?;
        let mut server_params = CertificateParams::new(vec!["localhost".to_string()])?;
        server_params.subject_alt_names.extend(
            (1..=254).map(|last| SanType::IpAddress(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last)))),
        );
        server_params
            .distinguished_name
            .push(DnType::CommonName, "cairn testkit server");
        server_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        server_params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let server_cert = server_params.signed_by(&server_key, &issuer)?;

        let client_key = KeyPair::generate()?;
        let mut client_params = CertificateParams::new(Vec::<String>::new())?;
        client_params
            .distinguished_name
            .push(DnType::CommonName, "testkit-client");
        client_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        client_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client_params.signed_by(&client_key, &issuer)?;

        for (name, pem) in [
            (CA, ca_cert.pem()),
            (SERVER_CERT, server_cert.pem()),
            (SERVER_KEY, server_key.serialize_pem()),
            (CLIENT_CERT, client_cert.pem()),
            (CLIENT_KEY, client_key.serialize_pem()),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, pem)
                .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        }
        Ok(Self { dir: Arc::new(dir) })
    }

    /// The directory holding the PEM files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The CA certificate (what `--trusted-ca-file` and etcdctl's `--cacert` take).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join(CA)
    }

    /// The server certificate (`--cert-file`).
    pub fn server_cert_file(&self) -> PathBuf {
        self.dir.path().join(SERVER_CERT)
    }

    /// The server's private key (`--key-file`).
    pub fn server_key_file(&self) -> PathBuf {
        self.dir.path().join(SERVER_KEY)
    }

    /// The client certificate (etcdctl's `--cert`).
    pub fn client_cert_file(&self) -> PathBuf {
        self.dir.path().join(CLIENT_CERT)
    }

    /// The client's private key (etcdctl's `--key`).
    pub fn client_key_file(&self) -> PathBuf {
        self.dir.path().join(CLIENT_KEY)
    }
}

#[cfg(test)]
mod tests {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};

    use super::*;

    #[test]
    fn pki_files_parse() {
        let pki = Pki::new().unwrap();
        for cert in [
            pki.ca_file(),
            pki.server_cert_file(),
            pki.client_cert_file(),
        ] {
            let certs: Vec<_> = CertificateDer::pem_file_iter(&cert)
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(certs.len(), 1, "{}", cert.display());
        }
        for key in [pki.server_key_file(), pki.client_key_file()] {
            PrivateKeyDer::from_pem_file(&key).unwrap();
            KeyPair::from_pem(&std::fs::read_to_string(&key).unwrap()).unwrap();
        }
        let clone = pki.clone();
        drop(pki);
        assert!(clone.ca_file().exists(), "files live as long as a clone");
    }
}
