//! The TLS directory as a whole: every certificate the inventory needs, checked and (re)issued
//! in one run, and where each file is.

use std::collections::BTreeSet;
use std::path::PathBuf;

use cairn_client::Clock;
use cairn_inventory::{Inventory, Tls};
use time::OffsetDateTime;

use crate::check::{San, Wanted};
use crate::issue::{ensure_ca, ensure_leaf};
use crate::report::{Issued, Outcome, Renewal};
use cairn_client::ClientIdentity as Client;

use crate::{local_file, Error};

/// The TLS directory after [`Pki::ensure`]: where each certificate is, and what the run did.
#[derive(Clone, Debug)]
pub struct Pki {
    dir: PathBuf,
    report: Vec<Issued>,
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

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;
    use std::time::{Duration as StdDuration, SystemTime};

    use x509_parser::certificate::X509Certificate;

    use super::*;
    use crate::check::{parse_pem, sans_of};
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};

    use crate::Reason;
    use cairn_client::FakeClock;

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
