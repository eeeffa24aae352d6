//! The cluster's certificates, kept in the inventory's `[tls] dir`: a CA (generated, or the
//! operator's own), one certificate per member used for both client and peer traffic, and
//! client certificates for the admin (etcdctl), the backup daemon, the inspector and
//! Prometheus.
//!
//! Every run checks what is already there and reissues only what is missing, no longer signed
//! by the CA, issued for other names, or within `renew_before_days` of expiry, so a second run
//! writes nothing and the members keep the certificates they were started with.
//! [`Renewal::AllLeaves`] reissues every member and client certificate from the same CA
//! (`cairn certs rotate`).
//!
//! `ca.pem` is what members and clients trust. It may hold more than one CA certificate while
//! a CA rotation is under way ([`crate::ca_phase`]); the one signing is always the one whose
//! key is `ca-key.pem`.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use cairn_inventory::{Inventory, Tls};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType,
};
use rustls_pki_types::CertificateDer;
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use crate::local_file;
use crate::{Clock, Error};

/// How long a generated CA is valid.
pub const CA_VALIDITY_DAYS: i64 = 3650;
/// How long member and client certificates are valid.
pub const LEAF_VALIDITY_DAYS: i64 = 825;
/// Start of validity before "now", so hosts whose clocks lag a little accept new certificates.
const BACKDATE: Duration = Duration::hours(1);

/// The clients that get a certificate of their own (defined with their file names in the
/// client crate, which every tool reads them through).
pub use cairn_client::ClientIdentity as Client;

/// Which leaves a run reissues besides those that cannot be kept.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Renewal {
    /// Only what is missing, damaged, renamed, not signed by the CA or expiring.
    #[default]
    AsNeeded,
    /// Every member and client certificate, signed by the same CA (`cairn certs rotate`).
    AllLeaves,
}

/// What a run did with one certificate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "outcome", content = "reason")]
pub enum Outcome {
    /// There was none: issued.
    Created,
    /// The existing one is kept as it is.
    Reused,
    /// The existing one could not be kept: issued again.
    Reissued(Reason),
}

/// Why an existing certificate is not kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// The certificate or its key is not readable PEM.
    Unreadable,
    /// The key file does not belong to the certificate.
    KeyMismatch,
    /// Not signed by the current CA (the CA was replaced).
    NotSignedByCa,
    /// Issued for other names or addresses than the inventory now wants.
    NamesChanged,
    /// Lacks the server/client usages the member or client needs.
    UsagesChanged,
    /// Expires within `renew_before_days` (or has expired).
    Expiring {
        /// Whole days left (negative once expired).
        days_left: i64,
    },
    /// Its validity starts in the future.
    NotYetValid,
    /// A rotation of every leaf was asked for.
    Rotated,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Unreadable => f.write_str("unreadable"),
            Reason::KeyMismatch => f.write_str("key does not match"),
            Reason::NotSignedByCa => f.write_str("not signed by the CA"),
            Reason::NamesChanged => f.write_str("names changed"),
            Reason::UsagesChanged => f.write_str("usages changed"),
            Reason::Expiring { days_left } if *days_left < 0 => f.write_str("expired"),
            Reason::Expiring { days_left } => write!(f, "expires in {days_left} days"),
            Reason::NotYetValid => f.write_str("not valid yet"),
            Reason::Rotated => f.write_str("rotated"),
        }
    }
}

/// One certificate of the run and what happened to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Issued {
    /// `ca`, a member name, or a client's file stem.
    pub name: String,
    /// What was done.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// The TLS directory after [`Pki::ensure`]: where each certificate is, and what the run did.
#[derive(Clone, Debug)]
pub struct Pki {
    dir: PathBuf,
    report: Vec<Issued>,
}

/// A subject alternative name, ordered so wanted and present sets compare.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum San {
    Ip(IpAddr),
    Dns(String),
}

impl San {
    fn parse(s: &str) -> Self {
        match s.parse::<IpAddr>() {
            Ok(ip) => San::Ip(ip),
            Err(_) => San::Dns(s.to_ascii_lowercase()),
        }
    }
}

/// What one leaf certificate must be.
#[derive(Clone, Debug)]
struct Wanted {
    name: String,
    common_name: String,
    sans: BTreeSet<San>,
    /// Members serve clients and peers; clients only authenticate.
    server: bool,
}

impl Pki {
    /// Makes `[tls] dir` hold a valid CA and every certificate the inventory needs, reusing
    /// what can be reused. Keys are written 0600, certificates 0644, each atomically.
    pub fn ensure(inventory: &Inventory, tls: &Tls, clock: &dyn Clock) -> Result<Self, Error> {
        Self::ensure_with(inventory, tls, clock, Renewal::AsNeeded)
    }

    /// [`Pki::ensure`], reissuing also what `renewal` asks for.
    pub fn ensure_with(
        inventory: &Inventory,
        tls: &Tls,
        clock: &dyn Clock,
        renewal: Renewal,
    ) -> Result<Self, Error> {
        let now = OffsetDateTime::from(clock.now());
        let dir = tls.dir.clone();
        local_file::create_private_dir(&dir)?;
        let mut report = Vec::new();
        let (issuer, signer, ca_outcome) = ensure_ca(&dir, tls, now)?;
        report.push(Issued {
            name: "ca".into(),
            outcome: ca_outcome,
        });
        let mut wanted = Vec::new();
        for host in &inventory.hosts {
            let mut sans: BTreeSet<San> = ["127.0.0.1", "localhost", &host.address, &host.name]
                .into_iter()
                .map(San::parse)
                .collect();
            sans.extend(tls.extra_sans.iter().map(|s| San::parse(s)));
            sans.extend(host.extra_sans.iter().map(|s| San::parse(s)));
            wanted.push(Wanted {
                name: host.name.clone(),
                common_name: host.name.clone(),
                sans,
                server: true,
            });
        }
        for client in Client::ALL {
            wanted.push(Wanted {
                name: client.stem().into(),
                common_name: client.common_name().into(),
                sans: BTreeSet::new(),
                server: false,
            });
        }
        for w in &wanted {
            let outcome = ensure_leaf(
                &dir,
                &signer,
                &issuer,
                w,
                now,
                tls.renew_before_days,
                renewal,
            )?;
            report.push(Issued {
                name: w.name.clone(),
                outcome,
            });
        }
        Ok(Self { dir, report })
    }

    /// The certificates already in `[tls] dir`, unchecked: for tools that only use them
    /// (`cairn status`) after `cairn provision` made them.
    pub fn existing(tls: &Tls) -> Self {
        Self {
            dir: tls.dir.clone(),
            report: Vec::new(),
        }
    }

    /// What the run did, the CA first.
    pub fn report(&self) -> &[Issued] {
        &self.report
    }

    /// Whether any certificate was created or reissued.
    pub fn changed(&self) -> bool {
        self.report.iter().any(|i| i.outcome != Outcome::Reused)
    }

    /// The TLS directory.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// `client`'s CA, certificate and key files, for reaching members.
    pub fn client_files(&self, client: Client) -> cairn_client::TlsFiles {
        cairn_client::TlsFiles::in_dir(&self.dir, client)
    }

    /// The CA certificate (or, during a CA rotation, certificates) every member and client
    /// trusts.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join(cairn_client::identity::CA_FILE)
    }

    /// A member's certificate (server and client usages, for client and peer traffic).
    pub fn member_cert(&self, member: &str) -> PathBuf {
        self.dir
            .join(cairn_client::identity::member_cert_file(member))
    }

    /// A member's private key.
    pub fn member_key(&self, member: &str) -> PathBuf {
        self.dir
            .join(cairn_client::identity::member_key_file(member))
    }

    /// A client's certificate.
    pub fn client_cert(&self, client: Client) -> PathBuf {
        self.dir.join(client.cert_file())
    }

    /// A client's private key.
    pub fn client_key(&self, client: Client) -> PathBuf {
        self.dir.join(client.key_file())
    }
}

/// The CA to sign with and its certificate (DER): the operator's (copied to `ca.pem` for the
/// clients and hosts) or one generated in the directory, renewed like any certificate.
fn ensure_ca(
    dir: &Path,
    tls: &Tls,
    now: OffsetDateTime,
) -> Result<(Issuer<'static, KeyPair>, Vec<u8>, Outcome), Error> {
    let ca_path = dir.join("ca.pem");
    if let (Some(cert_path), Some(key_path)) = (&tls.ca_cert, &tls.ca_key) {
        let cert_pem = local_file::read_string(cert_path)?;
        let key_pem = local_file::read_string(key_path)?;
        let operator_ca = |source| Error::OperatorCa {
            cert: cert_path.clone(),
            key: key_path.clone(),
            source,
        };
        let key = KeyPair::from_pem(&key_pem).map_err(operator_ca)?;
        let signer = parse_pem(&cert_pem)
            .filter(|der| with_cert(der, |c| c.public_key().raw == key.subject_public_key_info()));
        let Some(signer) = signer else {
            return Err(Error::OperatorCaKeyMismatch {
                cert: cert_path.clone(),
                key: key_path.clone(),
            });
        };
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key).map_err(operator_ca)?;
        let outcome = match std::fs::read_to_string(&ca_path) {
            Ok(existing) if existing == cert_pem => Outcome::Reused,
            Ok(_) => Outcome::Reissued(Reason::NotSignedByCa),
            Err(_) => Outcome::Created,
        };
        if outcome != Outcome::Reused {
            local_file::write_atomic(&ca_path, cert_pem.as_bytes(), 0o644)?;
        }
        return Ok((issuer, signer, outcome));
    }
    let key_path = dir.join("ca-key.pem");
    let existing = read_pair(&ca_path, &key_path);
    let verdict = existing
        .as_ref()
        .map(|(cert, key)| check_ca(cert, key, now, tls.renew_before_days));
    let outcome = match verdict {
        Some(Ok(())) => Outcome::Reused,
        Some(Err(reason)) => Outcome::Reissued(reason),
        None => Outcome::Created,
    };
    if outcome != Outcome::Reused {
        let (cert, key) = generate_ca("cairn CA", now)?;
        local_file::write_atomic(&key_path, key.as_bytes(), 0o600)?;
        local_file::write_atomic(&ca_path, cert.as_bytes(), 0o644)?;
    }
    let cert_pem = local_file::read_string(&ca_path)?;
    let key_pem = local_file::read_string(&key_path)?;
    let issue = |source| Error::Issue {
        name: "ca".into(),
        source,
    };
    let key = KeyPair::from_pem(&key_pem).map_err(issue)?;
    let signer = signer_in(&cert_pem, &key).ok_or(Error::Issue {
        name: "ca".into(),
        source: rcgen::Error::CouldNotParseCertificate,
    })?;
    let issuer =
        Issuer::from_ca_cert_der(&CertificateDer::from(signer.as_slice()), key).map_err(issue)?;
    Ok((issuer, signer, outcome))
}

/// A new self-signed CA valid from `now`: its certificate and key, PEM.
pub(crate) fn generate_ca(
    common_name: &str,
    now: OffsetDateTime,
) -> Result<(String, String), Error> {
    let issue = |source| Error::Issue {
        name: "ca".into(),
        source,
    };
    let key = KeyPair::generate().map_err(issue)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = now - BACKDATE;
    params.not_after = now + Duration::days(CA_VALIDITY_DAYS);
    let cert = params.self_signed(&key).map_err(issue)?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// The DER of every certificate in `pem` (a CA bundle), in file order.
pub(crate) fn bundle(pem: &str) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .map_while(Result::ok)
        .filter(|p| p.label == "CERTIFICATE")
        .map(|p| p.contents)
        .collect()
}

/// The certificate of `bundle_pem` whose public key is `key`'s.
fn signer_in(bundle_pem: &str, key: &KeyPair) -> Option<Vec<u8>> {
    bundle(bundle_pem)
        .into_iter()
        .find(|der| with_cert(der, |c| c.public_key().raw == key.subject_public_key_info()))
}

fn ensure_leaf(
    dir: &Path,
    ca_der: &[u8],
    issuer: &Issuer<'_, KeyPair>,
    wanted: &Wanted,
    now: OffsetDateTime,
    renew_before_days: u32,
    renewal: Renewal,
) -> Result<Outcome, Error> {
    let cert_path = dir.join(format!("{}.pem", wanted.name));
    let key_path = dir.join(format!("{}-key.pem", wanted.name));
    let outcome = match read_pair(&cert_path, &key_path) {
        None => Outcome::Created,
        Some((cert, key)) => {
            match check_leaf(&cert, &key, ca_der, wanted, now, renew_before_days) {
                Ok(()) if renewal == Renewal::AllLeaves => Outcome::Reissued(Reason::Rotated),
                Ok(()) => return Ok(Outcome::Reused),
                Err(reason) => Outcome::Reissued(reason),
            }
        }
    };
    let issue = |source| Error::Issue {
        name: wanted.name.clone(),
        source,
    };
    let key = KeyPair::generate().map_err(issue)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, wanted.common_name.as_str());
    params.distinguished_name = dn;
    for san in &wanted.sans {
        params.subject_alt_names.push(match san {
            San::Ip(ip) => SanType::IpAddress(*ip),
            San::Dns(name) => SanType::DnsName(name.clone().try_into().map_err(issue)?),
        });
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = if wanted.server {
        vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ]
    } else {
        vec![ExtendedKeyUsagePurpose::ClientAuth]
    };
    params.use_authority_key_identifier_extension = true;
    params.not_before = now - BACKDATE;
    params.not_after = now + Duration::days(LEAF_VALIDITY_DAYS);
    let cert = params.signed_by(&key, issuer).map_err(issue)?;
    local_file::write_atomic(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
    local_file::write_atomic(&cert_path, cert.pem().as_bytes(), 0o644)?;
    Ok(outcome)
}

/// Both files of a pair, or `None` when either is missing (then the pair is created anew).
fn read_pair(cert: &Path, key: &Path) -> Option<(String, String)> {
    Some((
        std::fs::read_to_string(cert).ok()?,
        std::fs::read_to_string(key).ok()?,
    ))
}

/// The DER of the first certificate in `pem`.
fn parse_pem(pem: &str) -> Option<Vec<u8>> {
    let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    (parsed.label == "CERTIFICATE").then_some(parsed.contents)
}

/// Runs `f` on the parsed certificate; `false` when it does not parse.
fn with_cert(der: &[u8], f: impl FnOnce(&X509Certificate<'_>) -> bool) -> bool {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, cert)) => f(&cert),
        Err(_) => false,
    }
}

fn key_matches(cert: &X509Certificate<'_>, key_pem: &str) -> bool {
    KeyPair::from_pem(key_pem).is_ok_and(|k| cert.public_key().raw == k.subject_public_key_info())
}

fn check_validity(
    cert: &X509Certificate<'_>,
    now: OffsetDateTime,
    renew_before_days: u32,
) -> Result<(), Reason> {
    let validity = cert.validity();
    if validity.not_before.timestamp() > now.unix_timestamp() {
        return Err(Reason::NotYetValid);
    }
    let left = validity.not_after.timestamp() - now.unix_timestamp();
    if left <= i64::from(renew_before_days) * 86_400 {
        return Err(Reason::Expiring {
            days_left: left.div_euclid(86_400),
        });
    }
    Ok(())
}

/// Runs `check` on the certificate in `cert_pem` once it is readable and `key_pem` is its key.
fn checked(
    cert_pem: &str,
    key_pem: &str,
    check: impl FnOnce(&X509Certificate<'_>) -> Result<(), Reason>,
) -> Result<(), Reason> {
    let der = parse_pem(cert_pem).ok_or(Reason::Unreadable)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|_| Reason::Unreadable)?;
    if !key_matches(&cert, key_pem) {
        return Err(Reason::KeyMismatch);
    }
    check(&cert)
}

/// Checks the certificate of the bundle `cert_pem` that belongs to `key_pem`.
fn check_ca(
    cert_pem: &str,
    key_pem: &str,
    now: OffsetDateTime,
    renew_before_days: u32,
) -> Result<(), Reason> {
    if bundle(cert_pem).is_empty() {
        return Err(Reason::Unreadable);
    }
    let key = KeyPair::from_pem(key_pem).map_err(|_| Reason::Unreadable)?;
    let der = signer_in(cert_pem, &key).ok_or(Reason::KeyMismatch)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).map_err(|_| Reason::Unreadable)?;
    if !cert.is_ca() || cert.verify_signature(None).is_err() {
        return Err(Reason::UsagesChanged);
    }
    check_validity(&cert, now, renew_before_days)
}

fn check_leaf(
    cert_pem: &str,
    key_pem: &str,
    ca_der: &[u8],
    wanted: &Wanted,
    now: OffsetDateTime,
    renew_before_days: u32,
) -> Result<(), Reason> {
    checked(cert_pem, key_pem, |cert| {
        let (_, ca) =
            x509_parser::parse_x509_certificate(ca_der).map_err(|_| Reason::NotSignedByCa)?;
        if cert.issuer().as_raw() != ca.subject().as_raw()
            || cert.verify_signature(Some(ca.public_key())).is_err()
        {
            return Err(Reason::NotSignedByCa);
        }
        let common_name = cert
            .subject()
            .iter_common_name()
            .next()
            .and_then(|cn| cn.as_str().ok());
        if common_name != Some(wanted.common_name.as_str()) || sans_of(cert) != wanted.sans {
            return Err(Reason::NamesChanged);
        }
        let usages = cert
            .extended_key_usage()
            .ok()
            .flatten()
            .map(|e| (e.value.server_auth, e.value.client_auth));
        if usages != Some((wanted.server, true)) {
            return Err(Reason::UsagesChanged);
        }
        check_validity(cert, now, renew_before_days)
    })
}

fn sans_of(cert: &X509Certificate<'_>) -> BTreeSet<San> {
    let Ok(Some(ext)) = cert.subject_alternative_name() else {
        return BTreeSet::new();
    };
    ext.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(San::Dns(dns.to_ascii_lowercase())),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => Some(San::Ip(IpAddr::from(<[u8; 4]>::try_from(*bytes).ok()?))),
                16 => Some(San::Ip(IpAddr::from(<[u8; 16]>::try_from(*bytes).ok()?))),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration as StdDuration, SystemTime};

    use super::*;
    use crate::FakeClock;

    const INVENTORY: &str =
        "[cluster]\nname = \"main\"\nbinary = \"cairn-server\"\ntoken = \"t\"\n\
        [tls]\nextra_sans = [\"etcd.example.com\"]\n\
        [[hosts]]\nname = \"etcd1\"\naddress = \"10.0.0.1\"\nextra_sans = [\"10.9.9.9\"]\n\
        [[hosts]]\nname = \"etcd2\"\naddress = \"etcd2.example.com\"\n";

    fn inventory(dir: &Path, text: &str) -> Inventory {
        Inventory::parse(&dir.join("cairn.toml"), text.into()).expect("inventory")
    }

    fn ensure(inv: &Inventory, at: SystemTime) -> Pki {
        let tls = inv.tls.as_ref().expect("tls");
        Pki::ensure(inv, tls, &FakeClock::new(at)).expect("ensure")
    }

    fn outcomes(pki: &Pki) -> Vec<(String, Outcome)> {
        pki.report()
            .iter()
            .map(|i| (i.name.clone(), i.outcome.clone()))
            .collect()
    }

    fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .expect("ls")
            .map(|e| {
                let e = e.expect("entry");
                (
                    e.file_name().to_string_lossy().into_owned(),
                    std::fs::read(e.path()).expect("read"),
                )
            })
            .collect();
        files.sort();
        files
    }

    fn parsed<T>(path: &Path, f: impl FnOnce(&X509Certificate<'_>) -> T) -> T {
        let pem = std::fs::read_to_string(path).expect("read cert");
        let der = parse_pem(&pem).expect("pem");
        let (_, cert) = x509_parser::parse_x509_certificate(&der).expect("x509");
        f(&cert)
    }

    const DAY: StdDuration = StdDuration::from_secs(86_400);

    #[test]
    fn a_first_run_creates_everything_and_a_second_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inv = inventory(dir.path(), INVENTORY);
        let t0 = SystemTime::now();
        let first = ensure(&inv, t0);
        let names: Vec<_> = outcomes(&first).into_iter().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            [
                "ca",
                "etcd1",
                "etcd2",
                "admin",
                "backup",
                "inspector",
                "prometheus"
            ]
        );
        assert!(first.report().iter().all(|i| i.outcome == Outcome::Created));
        let pki_dir = dir.path().join("pki");
        let before = snapshot(&pki_dir);
        assert_eq!(before.len(), 14, "a certificate and a key each");
        let second = ensure(&inv, t0 + DAY);
        assert!(!second.changed(), "{:?}", outcomes(&second));
        assert_eq!(snapshot(&pki_dir), before, "not a byte rewritten");
        for (name, _) in &before {
            let mode = std::fs::metadata(pki_dir.join(name))
                .expect("stat")
                .permissions()
                .mode()
                & 0o777;
            let want = if name.ends_with("-key.pem") {
                0o600
            } else {
                0o644
            };
            assert_eq!(mode, want, "{name}");
        }
        assert_eq!(
            std::fs::metadata(&pki_dir)
                .expect("stat")
                .permissions()
                .mode()
                & 0o777,
            0o700
        );
    }

    #[test]
    fn member_certificates_carry_every_name_and_both_usages() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inv = inventory(dir.path(), INVENTORY);
        let pki = ensure(&inv, SystemTime::now());
        let sans = parsed(&pki.member_cert("etcd1"), sans_of);
        let want: BTreeSet<San> = [
            "10.0.0.1",
            "etcd1",
            "127.0.0.1",
            "localhost",
            "etcd.example.com",
            "10.9.9.9",
        ]
        .into_iter()
        .map(San::parse)
        .collect();
        assert_eq!(sans, want);
        assert!(parsed(&pki.member_cert("etcd2"), sans_of)
            .contains(&San::Dns("etcd2.example.com".into())));
        let usages = |c: &X509Certificate<'_>| {
            let eku = c.extended_key_usage().expect("eku").expect("present");
            (eku.value.server_auth, eku.value.client_auth)
        };
        assert_eq!(parsed(&pki.member_cert("etcd2"), usages), (true, true));
        assert_eq!(
            parsed(&pki.client_cert(Client::Admin), usages),
            (false, true)
        );
        let cn = |c: &X509Certificate<'_>| {
            c.subject()
                .iter_common_name()
                .next()
                .and_then(|cn| cn.as_str().ok())
                .map(str::to_owned)
        };
        assert_eq!(
            parsed(&pki.client_cert(Client::Admin), cn).as_deref(),
            Some("root")
        );
        let ca_der = parse_pem(&std::fs::read_to_string(pki.ca_cert()).expect("ca")).expect("pem");
        let (_, ca) = x509_parser::parse_x509_certificate(&ca_der).expect("ca x509");
        for path in [
            pki.member_cert("etcd1"),
            pki.client_cert(Client::Prometheus),
        ] {
            parsed(&path, |c| c.verify_signature(Some(ca.public_key()))).expect("signed by the CA");
        }
    }

    #[test]
    fn leaves_are_renewed_within_renew_before_days_and_the_ca_is_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inv = inventory(dir.path(), INVENTORY);
        let t0 = SystemTime::now();
        ensure(&inv, t0);
        // 30 days before the leaves expire (825 days): one day more and they are kept.
        let kept = ensure(&inv, t0 + DAY * (825 - 31));
        assert!(!kept.changed(), "{:?}", outcomes(&kept));
        let renewed = ensure(&inv, t0 + DAY * (825 - 29));
        let outs = outcomes(&renewed);
        assert_eq!(outs[0], ("ca".into(), Outcome::Reused));
        for (name, outcome) in &outs[1..] {
            assert!(
                matches!(outcome, Outcome::Reissued(Reason::Expiring { days_left }) if *days_left == 29),
                "{name}: {outcome:?}"
            );
        }
        // The renewed ones are good for another 825 days from then.
        let again = ensure(&inv, t0 + DAY * (825 - 28));
        assert!(!again.changed(), "{:?}", outcomes(&again));
    }

    #[test]
    fn a_ca_near_its_end_is_replaced_and_every_leaf_follows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inv = inventory(dir.path(), INVENTORY);
        let t0 = SystemTime::now();
        ensure(&inv, t0);
        let late = ensure(&inv, t0 + DAY * (3650 - 10));
        let outs = outcomes(&late);
        assert!(
            matches!(outs[0].1, Outcome::Reissued(Reason::Expiring { .. })),
            "{outs:?}"
        );
        assert!(
            outs[1..]
                .iter()
                .all(|(_, o)| *o == Outcome::Reissued(Reason::NotSignedByCa)),
            "{outs:?}"
        );
    }

    #[test]
    fn a_rotation_reissues_every_leaf_from_the_same_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inv = inventory(dir.path(), INVENTORY);
        let t0 = SystemTime::now();
        let first = ensure(&inv, t0);
        let serial = |p: &Path| parsed(p, |c| c.raw_serial().to_vec());
        let before = serial(&first.member_cert("etcd1"));
        let ca_before = std::fs::read(first.ca_cert()).expect("ca");
        let tls = inv.tls.as_ref().expect("tls");
        let rotated =
            Pki::ensure_with(&inv, tls, &FakeClock::new(t0), Renewal::AllLeaves).expect("rotate");
        let outs = outcomes(&rotated);
        assert_eq!(outs[0], ("ca".into(), Outcome::Reused));
        assert!(
            outs[1..]
                .iter()
                .all(|(_, o)| *o == Outcome::Reissued(Reason::Rotated)),
            "{outs:?}"
        );
        assert_ne!(serial(&rotated.member_cert("etcd1")), before);
        assert_eq!(std::fs::read(rotated.ca_cert()).expect("ca"), ca_before);
        // The new leaves are the CA's: an ordinary run keeps them.
        assert!(!ensure(&inv, t0).changed());
    }

    #[test]
    fn changed_names_reissue_only_that_member() {
        let dir = tempfile::tempdir().expect("tempdir");
        let t0 = SystemTime::now();
        ensure(&inventory(dir.path(), INVENTORY), t0);
        let text = INVENTORY.replace("\"10.9.9.9\"", "\"10.9.9.9\", \"etcd1.example.com\"");
        let outs = outcomes(&ensure(&inventory(dir.path(), &text), t0));
        let changed: Vec<_> = outs.iter().filter(|(_, o)| *o != Outcome::Reused).collect();
        assert_eq!(
            changed,
            [&("etcd1".to_string(), Outcome::Reissued(Reason::NamesChanged))]
        );
    }

    #[test]
    fn damaged_files_are_reissued_with_the_reason() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inv = inventory(dir.path(), INVENTORY);
        let t0 = SystemTime::now();
        ensure(&inv, t0);
        let pki = dir.path().join("pki");
        std::fs::write(pki.join("etcd2.pem"), "garbage").expect("damage");
        std::fs::copy(pki.join("backup-key.pem"), pki.join("admin-key.pem")).expect("swap key");
        std::fs::remove_file(pki.join("inspector.pem")).expect("remove");
        let outs = outcomes(&ensure(&inv, t0));
        let changed: Vec<_> = outs
            .into_iter()
            .filter(|(_, o)| *o != Outcome::Reused)
            .collect();
        assert_eq!(
            changed,
            [
                ("etcd2".into(), Outcome::Reissued(Reason::Unreadable)),
                ("admin".into(), Outcome::Reissued(Reason::KeyMismatch)),
                ("inspector".into(), Outcome::Created),
            ]
        );
    }

    #[test]
    fn certificates_not_yet_valid_are_reissued() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inv = inventory(dir.path(), INVENTORY);
        let t0 = SystemTime::now();
        ensure(&inv, t0);
        // The clock went back a day: nothing issued "tomorrow" can be used today.
        let outs = outcomes(&ensure(&inv, t0 - DAY));
        assert!(outs.iter().all(|(_, o)| *o != Outcome::Reused), "{outs:?}");
        assert_eq!(outs[0].1, Outcome::Reissued(Reason::NotYetValid));
    }

    fn operator_ca(dir: &Path) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
        params
            .distinguished_name
            .push(DnType::CommonName, "Operator CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).expect("self-signed");
        let (c, k) = (dir.join("my-ca.pem"), dir.join("my-ca-key.pem"));
        std::fs::write(&c, cert.pem()).expect("write ca");
        std::fs::write(&k, key.serialize_pem()).expect("write key");
        (c, k)
    }

    #[test]
    fn the_operators_ca_signs_and_is_copied_but_its_key_stays_out() {
        let dir = tempfile::tempdir().expect("tempdir");
        operator_ca(dir.path());
        let text = INVENTORY.replace(
            "[tls]\n",
            "[tls]\nca_cert = \"my-ca.pem\"\nca_key = \"my-ca-key.pem\"\n",
        );
        let inv = inventory(dir.path(), &text);
        let pki = ensure(&inv, SystemTime::now());
        assert_eq!(
            std::fs::read(pki.ca_cert()).expect("ca.pem"),
            std::fs::read(dir.path().join("my-ca.pem")).expect("my-ca.pem")
        );
        assert!(!dir.path().join("pki/ca-key.pem").exists());
        let issuer = parsed(&pki.member_cert("etcd1"), |c| c.issuer().to_string());
        assert_eq!(issuer, "CN=Operator CA");
        assert!(!ensure(&inv, SystemTime::now()).changed());
    }

    #[test]
    fn an_operator_key_of_another_ca_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, key) = operator_ca(dir.path());
        std::fs::rename(&key, dir.path().join("first-key.pem")).expect("keep first key");
        operator_ca(dir.path());
        let text = INVENTORY.replace(
            "[tls]\n",
            "[tls]\nca_cert = \"my-ca.pem\"\nca_key = \"first-key.pem\"\n",
        );
        let inv = inventory(dir.path(), &text);
        let err = Pki::ensure(
            &inv,
            inv.tls.as_ref().expect("tls"),
            &FakeClock::new(SystemTime::now()),
        )
        .expect_err("mismatch");
        assert!(matches!(err, Error::OperatorCaKeyMismatch { .. }), "{err}");
        assert!(
            err.to_string()
                .ends_with("give the CA's own key in [tls] ca_key"),
            "{err}"
        );
    }
}
