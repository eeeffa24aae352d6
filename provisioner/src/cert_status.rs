//! `cairn certs status`: every certificate in `[tls] dir` and the one each member presents on
//! its client and peer ports, with names, serial, fingerprint and days left; flags a member
//! serving another certificate than the local copy (drift: not rolled out, or replaced on the
//! host) and certificates within `[tls] renew_before_days` or `[alerts] cert_expiry_*` days.

use std::fmt::{self, Write as _};
use std::future::Future;
use std::time::Duration;

use cairn_client::ServedChainReader;
use cairn_inventory::Inventory;
use serde::Serialize;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use crate::{Clock, Error};
use cairn_pki::local_file;
use cairn_pki::{self as pki, Client, Pki};

/// Reads the certificate chain a TLS port presents.
pub trait ServedCerts: Send + Sync {
    /// The chain `url` (`https://host:port`) presents, leaf first, as DER.
    fn chain(&self, url: &str) -> impl Future<Output = Result<Vec<Vec<u8>>, Error>> + Send;
}

/// [`ServedCerts`] over TLS, presenting the admin certificate (members require one) and
/// accepting whatever the member presents, since reading it is the point.
pub struct TlsServedCerts(ServedChainReader);

impl TlsServedCerts {
    /// A reader with `pki`'s admin certificate; each connection is given up after `timeout`.
    pub fn new(pki: &Pki, timeout: Duration) -> Result<Self, Error> {
        let files = pki.client_files(Client::Admin);
        Ok(Self(ServedChainReader::new(Some(&files), timeout)?))
    }
}

impl ServedCerts for TlsServedCerts {
    async fn chain(&self, url: &str) -> Result<Vec<Vec<u8>>, Error> {
        Ok(self.0.chain(url).await?)
    }
}

/// How close a certificate is to its end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expiry {
    /// Further off than every threshold.
    Ok,
    /// Within `[tls] renew_before_days`: the next `cairn provision` reissues it.
    Renew,
    /// Within `[alerts] cert_expiry_warning_days`.
    Warning,
    /// Within `[alerts] cert_expiry_critical_days`.
    Critical,
    /// Past its end.
    Expired,
}

impl fmt::Display for Expiry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Expiry::Ok => "ok",
            Expiry::Renew => "renew",
            Expiry::Warning => "warning",
            Expiry::Critical => "critical",
            Expiry::Expired => "expired",
        })
    }
}

/// The days thresholds certificates are graded against.
#[derive(Clone, Copy, Debug)]
pub struct Thresholds {
    /// `[tls] renew_before_days`.
    pub renew_before_days: f64,
    /// `[alerts] cert_expiry_warning_days`.
    pub warning_days: f64,
    /// `[alerts] cert_expiry_critical_days`.
    pub critical_days: f64,
}

impl Thresholds {
    /// The inventory's thresholds.
    pub fn of(inventory: &Inventory) -> Self {
        Self {
            renew_before_days: inventory
                .tls
                .as_ref()
                .map_or(0.0, |t| f64::from(t.renew_before_days)),
            warning_days: inventory.alerts.cert_expiry_warning_days,
            critical_days: inventory.alerts.cert_expiry_critical_days,
        }
    }

    fn grade(&self, seconds_left: i64) -> Expiry {
        let days = seconds_left as f64 / 86_400.0;
        if seconds_left < 0 {
            Expiry::Expired
        } else if days <= self.critical_days {
            Expiry::Critical
        } else if days <= self.warning_days {
            Expiry::Warning
        } else if days <= self.renew_before_days {
            Expiry::Renew
        } else {
            Expiry::Ok
        }
    }
}

/// What one certificate says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertInfo {
    /// Subject DN.
    pub subject: String,
    /// Issuer DN.
    pub issuer: String,
    /// Subject alternative names (DNS names and IP addresses).
    pub sans: Vec<String>,
    /// Serial number, hex.
    pub serial: String,
    /// SHA-256 of the DER, hex: what drift is judged by.
    pub sha256: String,
    /// End of validity, UTC (`2026-01-02T03:04:05Z`).
    pub not_after: String,
    /// Whole days left (negative once expired).
    pub days_left: i64,
    /// Graded against the thresholds.
    pub expiry: Expiry,
}

impl CertInfo {
    /// Reads a DER certificate; `None` when it does not parse.
    pub fn parse(der: &[u8], now: OffsetDateTime, thresholds: &Thresholds) -> Option<Self> {
        let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
        let not_after = cert.validity().not_after.to_datetime();
        let left = not_after.unix_timestamp() - now.unix_timestamp();
        Some(Self {
            subject: cert.subject().to_string(),
            issuer: cert.issuer().to_string(),
            sans: sans(&cert),
            serial: cert.raw_serial_as_string().replace(':', ""),
            sha256: hex(&Sha256::digest(der)),
            not_after: format!(
                "{}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                not_after.year(),
                u8::from(not_after.month()),
                not_after.day(),
                not_after.hour(),
                not_after.minute(),
                not_after.second()
            ),
            days_left: left.div_euclid(86_400),
            expiry: thresholds.grade(left),
        })
    }
}

/// One certificate of `[tls] dir`.
#[derive(Clone, Debug, Serialize)]
pub struct LocalCert {
    /// `ca` (`ca#2` for the second of a bundle), a member name or a client's file stem.
    pub name: String,
    /// The file, in `[tls] dir`.
    pub file: String,
    /// Its contents.
    #[serde(flatten)]
    pub cert: CertInfo,
}

/// Which of a member's ports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Port {
    /// The client port.
    Client,
    /// The peer port.
    Peer,
}

/// What one member presents on one port.
#[derive(Clone, Debug, Serialize)]
pub struct ServedCert {
    /// Member name.
    pub member: String,
    /// Which port.
    pub port: Port,
    /// Its URL.
    pub url: String,
    /// The presented leaf, when the handshake got one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert: Option<CertInfo>,
    /// How many certificates the chain has.
    pub chain_len: usize,
    /// The leaf differs from the member's certificate in `[tls] dir`.
    pub drift: bool,
    /// Why nothing could be read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Every certificate, local and served.
#[derive(Clone, Debug, Serialize)]
pub struct CertStatus {
    /// `[tls] dir`'s certificates: the CA(s), the members', the clients'.
    pub local: Vec<LocalCert>,
    /// Each member's client and peer port, in inventory order.
    pub served: Vec<ServedCert>,
}

impl CertStatus {
    /// Reads `[tls] dir` and asks every member's ports at once.
    pub async fn gather<S: ServedCerts>(
        inventory: &Inventory,
        served: &S,
        clock: &dyn Clock,
    ) -> Result<Self, Error> {
        let setup = inventory.cluster.transport.setup_command();
        let tls = inventory.tls.as_ref().ok_or_else(|| Error::NoTls {
            setup,
            inventory: inventory.path.clone(),
        })?;
        let pki = Pki::existing(tls);
        let now = OffsetDateTime::from(clock.now());
        let thresholds = Thresholds::of(inventory);
        let info = |der: &[u8], path: &std::path::Path| {
            CertInfo::parse(der, now, &thresholds).ok_or_else(|| Error::LocalRead {
                path: path.to_path_buf(),
                source: std::io::Error::other("not a PEM certificate"),
            })
        };
        let mut local = Vec::new();
        let ca_path = pki.ca_cert();
        let ca = pki::bundle(&read(&ca_path, setup)?);
        for (i, der) in ca.iter().enumerate() {
            local.push(LocalCert {
                name: if i == 0 {
                    "ca".into()
                } else {
                    format!("ca#{}", i + 1)
                },
                file: file_name(&ca_path),
                cert: info(der, &ca_path)?,
            });
        }
        let leaves = inventory
            .hosts
            .iter()
            .map(|h| (h.name.clone(), pki.member_cert(&h.name)))
            .chain(
                Client::ALL
                    .into_iter()
                    .map(|c| (c.stem().to_string(), pki.client_cert(c))),
            );
        for (name, path) in leaves {
            let der = pki::bundle(&read(&path, setup)?)
                .into_iter()
                .next()
                .unwrap_or_default();
            local.push(LocalCert {
                name,
                file: file_name(&path),
                cert: info(&der, &path)?,
            });
        }
        let asks = inventory.hosts.iter().flat_map(|h| {
            [
                (h.name.clone(), Port::Client, inventory.client_url(h)),
                (h.name.clone(), Port::Peer, inventory.peer_url(h)),
            ]
        });
        let local_ref = &local;
        let thresholds = &thresholds;
        let served = futures::future::join_all(asks.map(|(member, port, url)| async move {
            let own = local_ref
                .iter()
                .find(|l| l.name == member)
                .map(|l| l.cert.sha256.as_str());
            match served.chain(&url).await {
                Ok(chain) => {
                    let cert = chain
                        .first()
                        .and_then(|der| CertInfo::parse(der, now, thresholds));
                    let drift = cert.as_ref().map(|c| c.sha256.as_str()) != own;
                    ServedCert {
                        member,
                        port,
                        url,
                        chain_len: chain.len(),
                        drift,
                        error: cert
                            .is_none()
                            .then(|| "no readable certificate presented".to_string()),
                        cert,
                    }
                }
                Err(e) => ServedCert {
                    member,
                    port,
                    url,
                    cert: None,
                    chain_len: 0,
                    drift: false,
                    error: Some(cairn_client::chain(&e)),
                },
            }
        }))
        .await;
        Ok(Self { local, served })
    }

    /// Certificates expiring within a threshold, drifted or unreadable ports: what makes
    /// `cairn certs status` exit 1.
    pub fn problems(&self) -> usize {
        let local = self
            .local
            .iter()
            .filter(|l| l.cert.expiry != Expiry::Ok)
            .count();
        let served = self
            .served
            .iter()
            .filter(|s| {
                s.drift
                    || s.error.is_some()
                    || s.cert.as_ref().is_some_and(|c| c.expiry != Expiry::Ok)
            })
            .count();
        local + served
    }
}

impl fmt::Display for CertStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rows = vec![row(&[
            "NAME", "SUBJECT", "ISSUER", "SERIAL", "SHA256", "EXPIRES", "DAYS", "STATE", "SANS",
        ])];
        for l in &self.local {
            let c = &l.cert;
            rows.push(vec![
                l.name.clone(),
                c.subject.clone(),
                c.issuer.clone(),
                short(&c.serial),
                short(&c.sha256),
                c.not_after[..10].to_string(),
                c.days_left.to_string(),
                c.expiry.to_string(),
                c.sans.join(","),
            ]);
        }
        f.write_str(&table(&rows))?;
        f.write_char('\n')?;
        let mut rows = vec![row(&[
            "MEMBER", "PORT", "URL", "SERIAL", "SHA256", "EXPIRES", "DAYS", "STATE", "LOCAL",
        ])];
        for s in &self.served {
            let port = match s.port {
                Port::Client => "client",
                Port::Peer => "peer",
            };
            let mut cells = vec![s.member.clone(), port.into(), s.url.clone()];
            match (&s.cert, &s.error) {
                (Some(c), _) => cells.extend([
                    short(&c.serial),
                    short(&c.sha256),
                    c.not_after[..10].to_string(),
                    c.days_left.to_string(),
                    c.expiry.to_string(),
                    if s.drift { "DRIFT" } else { "same" }.to_string(),
                ]),
                (None, error) => cells.extend([
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "-".into(),
                    "error".into(),
                    error.clone().unwrap_or_default(),
                ]),
            }
            rows.push(cells);
        }
        f.write_str(&table(&rows))
    }
}

fn read(path: &std::path::Path, setup: &'static str) -> Result<String, Error> {
    match std::fs::read_to_string(path) {
        Err(source) if source.kind() == std::io::ErrorKind::NotFound => {
            Err(Error::NoClientCertificate {
                setup,
                path: path.to_path_buf(),
                source,
            })
        }
        _ => Ok(local_file::read_string(path)?),
    }
}

fn file_name(path: &std::path::Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Columns padded to their widest cell, two spaces apart, no trailing blanks.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (cell, width) in r.iter().zip(&widths) {
            let _ = write!(line, "{cell:width$}  ");
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The first 16 hex digits: enough to tell certificates apart in a table.
fn short(hex: &str) -> String {
    hex.chars().take(16).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn sans(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(ext)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    ext.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns.to_string()),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => Some(std::net::IpAddr::from(<[u8; 4]>::try_from(*bytes).ok()?).to_string()),
                16 => Some(std::net::IpAddr::from(<[u8; 16]>::try_from(*bytes).ok()?).to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_grade_the_closest_first() {
        let t = Thresholds {
            renew_before_days: 30.0,
            warning_days: 14.0,
            critical_days: 3.0,
        };
        let day = 86_400;
        assert_eq!(t.grade(31 * day), Expiry::Ok);
        assert_eq!(t.grade(30 * day), Expiry::Renew);
        assert_eq!(t.grade(14 * day), Expiry::Warning);
        assert_eq!(t.grade(2 * day), Expiry::Critical);
        assert_eq!(t.grade(-1), Expiry::Expired);
    }

    #[test]
    fn tables_pad_columns_and_trim_line_ends() {
        let rows = vec![row(&["A", "BB", "C"]), row(&["long", "x", ""])];
        assert_eq!(table(&rows), "A     BB  C\nlong  x\n");
    }
}
