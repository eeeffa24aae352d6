//! `certs status` for fixed certificates (`tests/fixtures/certs-status/pki`) at a fixed time,
//! with members answering from memory: the table and the JSON compared with
//! `tests/golden/certs-status.{txt,json}`. `UPDATE_GOLDEN=1` issues the certificates again and
//! rewrites both copies; review the diff.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cairn_inventory::Inventory;
use cairn_pki::Pki;
use cairn_pki::Renewal;
use cairn_provisioner::cert_status::{CertStatus, ServedCerts};
use cairn_provisioner::{Error, FakeClock};

const DAY: Duration = Duration::from_secs(86_400);

/// The instant the status is taken at (2027-01-15).
fn at() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_800_000_000)
}

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/certs-status")
}

fn inventory(dir: &Path) -> Inventory {
    let mut text = "[cluster]\nname = \"golden\"\nbinary = \"cairn-server\"\ntoken = \"t\"\n\
                    [tls]\ndir = \"pki\"\nrenew_before_days = 45\n"
        .to_string();
    for i in 1..=3 {
        text.push_str(&format!(
            "[[hosts]]\nname = \"m{i}\"\naddress = \"127.0.0.{}\"\n",
            10 + i
        ));
    }
    Inventory::parse(&dir.join("cairn.toml"), text).expect("inventory")
}

/// CA and every leaf issued 785 days before [`at`] (40 days left: within renew_before_days),
/// then m1 and m2 again 10 days before it; m2's first certificate kept as `m2-old.pem`.
fn issue(pki_dir: &Path) {
    let work = tempfile::tempdir().expect("tempdir");
    let inv = inventory(work.path());
    let tls = inv.tls.clone().expect("tls");
    Pki::ensure(&inv, &tls, &FakeClock::new(at() - DAY * 785)).expect("first issue");
    let dir = work.path().join("pki");
    std::fs::rename(dir.join("m2.pem"), dir.join("m2-old.pem")).expect("keep m2");
    std::fs::remove_file(dir.join("m1.pem")).expect("drop m1");
    Pki::ensure_with(
        &inv,
        &tls,
        &FakeClock::new(at() - DAY * 10),
        Renewal::AsNeeded,
    )
    .expect("second issue");
    let _ = std::fs::remove_dir_all(pki_dir);
    std::fs::create_dir_all(pki_dir).expect("fixture dir");
    for entry in std::fs::read_dir(&dir).expect("ls") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        if !name.ends_with("-key.pem") {
            std::fs::copy(&path, pki_dir.join(name)).expect("copy");
        }
    }
}

/// m1 serves its certificate, m2 its old one on the peer port, m3 does not answer.
struct Served(BTreeMap<String, Vec<u8>>);

fn der(path: &Path) -> Vec<u8> {
    let pem = std::fs::read(path).expect("pem");
    let (_, p) = x509_parser::pem::parse_x509_pem(&pem).expect("pem block");
    p.contents
}

impl ServedCerts for Served {
    async fn chain(&self, url: &str) -> Result<Vec<Vec<u8>>, Error> {
        match self.0.get(url) {
            Some(der) => Ok(vec![der.clone()]),
            None => Err(Error::Timeout {
                host: url.to_string(),
                what: "a TLS handshake".into(),
                after: Duration::from_secs(5),
            }),
        }
    }
}

#[tokio::test]
async fn certs_status_of_fixed_certificates_matches_the_golden_table_and_json() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let dir = fixture();
    if update {
        issue(&dir.join("pki"));
    }
    let inv = inventory(&dir);
    let pki = dir.join("pki");
    let mut served = BTreeMap::new();
    let (m1, m2) = (&inv.hosts[0], &inv.hosts[1]);
    served.insert(inv.client_url(m1), der(&pki.join("m1.pem")));
    served.insert(inv.peer_url(m1), der(&pki.join("m1.pem")));
    served.insert(inv.client_url(m2), der(&pki.join("m2.pem")));
    served.insert(inv.peer_url(m2), der(&pki.join("m2-old.pem")));
    let status = CertStatus::gather(&inv, &Served(served), &FakeClock::new(at()))
        .await
        .expect("status");
    assert_eq!(
        status.problems(),
        1 + 2 + 5,
        "m2 drifted, m3 silent, 5 local to renew"
    );
    let outputs = [
        ("certs-status.txt", status.to_string()),
        (
            "certs-status.json",
            serde_json::to_string_pretty(&status).expect("json") + "\n",
        ),
    ];
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    for (name, text) in outputs {
        let path = golden.join(name);
        if update {
            std::fs::write(&path, &text).expect("write golden");
            continue;
        }
        let want =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(
            want == text,
            "{} differs; if intended: UPDATE_GOLDEN=1 cargo test -p cairn-provisioner --test it certs_status, then review git diff\n{text}",
            path.display()
        );
    }
}
