//! Issuing: the CA (generated, or the operator's own) and each leaf, written with their keys
//! 0600 and atomically, so an interrupted run never leaves half a pair behind.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData, SanType,
};
use rustls_pki_types::CertificateDer;
use time::{Duration, OffsetDateTime};

use cairn_inventory::Tls;

use crate::check::{check_ca, check_leaf, parse_pem, signer_in, with_cert, San, Wanted};
use crate::report::{Outcome, Reason, Renewal};
use crate::{local_file, Error};

/// How long a generated CA is valid.
pub const CA_VALIDITY_DAYS: i64 = 3650;
/// How long member and client certificates are valid.
pub const LEAF_VALIDITY_DAYS: i64 = 825;
/// Start of validity before "now", so hosts whose clocks lag a little accept new certificates.
const BACKDATE: Duration = Duration::hours(1);

/// The CA to sign with and its certificate (DER): the operator's (copied to `ca.pem` for the
/// clients and hosts) or one generated in the directory, renewed like any certificate.
pub(crate) fn ensure_ca(
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
pub fn generate_ca(common_name: &str, now: OffsetDateTime) -> Result<(String, String), Error> {
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

pub(crate) fn ensure_leaf(
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
