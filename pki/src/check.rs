//! Whether a certificate already in the TLS directory can be kept: readable, its key's,
//! signed by the CA, issued for the wanted names and usages, and not near its end.

use std::collections::BTreeSet;
use std::net::IpAddr;

use rcgen::{KeyPair, PublicKeyData};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use crate::report::Reason;

/// A subject alternative name, ordered so wanted and present sets compare.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum San {
    Ip(IpAddr),
    Dns(String),
}

impl San {
    pub(crate) fn parse(s: &str) -> Self {
        match s.parse::<IpAddr>() {
            Ok(ip) => San::Ip(ip),
            Err(_) => San::Dns(s.to_ascii_lowercase()),
        }
    }
}

/// What one leaf certificate must be.
#[derive(Clone, Debug)]
pub(crate) struct Wanted {
    pub(crate) name: String,
    pub(crate) common_name: String,
    pub(crate) sans: BTreeSet<San>,
    /// Members serve clients and peers; clients only authenticate.
    pub(crate) server: bool,
}

/// The DER of every certificate in `pem` (a CA bundle), in file order.
pub fn bundle(pem: &str) -> Vec<Vec<u8>> {
    x509_parser::pem::Pem::iter_from_buffer(pem.as_bytes())
        .map_while(Result::ok)
        .filter(|p| p.label == "CERTIFICATE")
        .map(|p| p.contents)
        .collect()
}

/// The certificate of `bundle_pem` whose public key is `key`'s.
pub(crate) fn signer_in(bundle_pem: &str, key: &KeyPair) -> Option<Vec<u8>> {
    bundle(bundle_pem)
        .into_iter()
        .find(|der| with_cert(der, |c| c.public_key().raw == key.subject_public_key_info()))
}

/// The DER of the first certificate in `pem`.
pub(crate) fn parse_pem(pem: &str) -> Option<Vec<u8>> {
    let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes()).ok()?;
    (parsed.label == "CERTIFICATE").then_some(parsed.contents)
}

/// Runs `f` on the parsed certificate; `false` when it does not parse.
pub(crate) fn with_cert(der: &[u8], f: impl FnOnce(&X509Certificate<'_>) -> bool) -> bool {
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
pub(crate) fn check_ca(
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

pub(crate) fn check_leaf(
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

pub(crate) fn sans_of(cert: &X509Certificate<'_>) -> BTreeSet<San> {
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
