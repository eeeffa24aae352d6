//! The CA rotation's state in `[tls] dir` (`cairn certs rotate --ca`): which phase it is in
//! and the files of each phase, so a run that stops anywhere resumes where it stopped.
//!
//! # Why three phases, in this order
//!
//! Members check each other's certificates (peer traffic) and the clients' against `ca.pem`
//! (read at start), and clients check the members' against their copy of `ca.pem`. Each phase
//! is rolled out one member at a time, so during a roll some members run the phase's files
//! and the others the previous phase's; every pair must still accept each other:
//!
//! 1. [`Phase::TrustBoth`]: `ca.pem` becomes old + new CA; every certificate is still signed
//!    by the old CA. Members on either `ca.pem` accept old-signed certificates, so peers and
//!    clients (old certificate, old `ca.pem`) keep working throughout.
//! 2. [`Phase::NewLeaves`]: every member and client certificate is reissued by the new CA
//!    (`ca-key.pem` becomes the new CA's key). All members already trust both CAs (phase 1 is
//!    complete), so a member presenting a new certificate is accepted by its peers, and a
//!    client's old or new certificate by every member. A client must trust the bundle from
//!    now on: members present new-signed certificates. The local `ca.pem` is the bundle since
//!    phase 1, so clients reading `[tls] dir` have it before any member changes.
//! 3. [`Phase::DropOld`]: `ca.pem` becomes the new CA alone. Every certificate in use is
//!    new-signed (phase 2 is complete), so members that no longer trust the old CA refuse
//!    nobody. A client must use its new certificate from now on: it was written to `[tls]
//!    dir` when phase 2 started, before any member dropped the old CA.
//!
//! Swapping 1 and 2 would have members present certificates their peers do not trust yet
//! (quorum lost); dropping the old CA before phase 2 completes would refuse old-signed
//! members and clients.
//!
//! # Files and resuming
//!
//! The marker `ca-rotation` names the phase being rolled out. It is written before the
//! phase's local files are changed, each change is idempotent ([`enter`]), and a roll-out
//! pushes whatever differs and restarts every member (files already written do not show
//! which members still run the old ones), so a run interrupted anywhere re-enters the
//! marker's phase and goes on. During the rotation `ca-prev.pem` keeps the old CA certificate and `ca-next.pem`
//! (with `ca-next-key.pem` until phase 2) the new one; [`finish`] removes them and the marker.

use std::path::Path;

use time::OffsetDateTime;

use crate::issue::generate_ca;
use crate::{local_file, Error};

/// The marker file naming the phase under way.
pub const MARKER: &str = "ca-rotation";
const CA: &str = "ca.pem";
const CA_KEY: &str = "ca-key.pem";
const PREV: &str = "ca-prev.pem";
const NEXT: &str = "ca-next.pem";
const NEXT_KEY: &str = "ca-next-key.pem";

pub use crate::phase::Phase;

/// The phase under way in `dir`, if a rotation is.
pub fn current(dir: &Path) -> Result<Option<Phase>, Error> {
    let path = dir.join(MARKER);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(Error::Read { path, source }),
    };
    Phase::ALL
        .into_iter()
        .find(|p| p.name() == text.trim())
        .map(Some)
        .ok_or(Error::RotationMarker {
            path,
            found: text.trim().to_string(),
        })
}

/// Marks `phase` as under way and changes the local files to it; every step is idempotent,
/// so entering a phase again after an interruption completes it.
pub fn enter(dir: &Path, phase: Phase, now: OffsetDateTime) -> Result<(), Error> {
    local_file::write_atomic(&dir.join(MARKER), format!("{phase}\n").as_bytes(), 0o644)?;
    match phase {
        Phase::TrustBoth => {
            if !dir.join(NEXT_KEY).exists() {
                let name = format!(
                    "cairn CA {}-{:02}-{:02} {:02}:{:02}:{:02}",
                    now.year(),
                    u8::from(now.month()),
                    now.day(),
                    now.hour(),
                    now.minute(),
                    now.second()
                );
                let (cert, key) = generate_ca(&name, now)?;
                local_file::write_atomic(&dir.join(NEXT), cert.as_bytes(), 0o644)?;
                local_file::write_atomic(&dir.join(NEXT_KEY), key.as_bytes(), 0o600)?;
            }
            if !dir.join(PREV).exists() {
                let old = local_file::read(&dir.join(CA))?;
                local_file::write_atomic(&dir.join(PREV), &old, 0o644)?;
            }
            let mut both = local_file::read_string(&dir.join(PREV))?;
            if !both.ends_with('\n') {
                both.push('\n');
            }
            both.push_str(&local_file::read_string(&dir.join(NEXT))?);
            local_file::write_atomic(&dir.join(CA), both.as_bytes(), 0o644)?;
        }
        Phase::NewLeaves => {
            let next_key = dir.join(NEXT_KEY);
            if next_key.exists() {
                let key = local_file::read(&next_key)?;
                local_file::write_atomic(&dir.join(CA_KEY), &key, 0o600)?;
                remove(&next_key)?;
            }
        }
        Phase::DropOld => {
            let next = dir.join(NEXT);
            if next.exists() {
                let cert = local_file::read(&next)?;
                local_file::write_atomic(&dir.join(CA), &cert, 0o644)?;
            }
        }
    }
    Ok(())
}

/// Removes the rotation's files once the last phase is rolled out; the marker goes last.
pub fn finish(dir: &Path) -> Result<(), Error> {
    for name in [NEXT, NEXT_KEY, PREV, MARKER] {
        remove(&dir.join(name))?;
    }
    Ok(())
}

fn remove(path: &Path) -> Result<(), Error> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(Error::Write {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use cairn_inventory::Inventory;

    use super::*;
    use cairn_client::FakeClock;

    use crate::{Outcome, Pki, Reason};

    fn inventory(dir: &Path) -> Inventory {
        let text = "[cluster]\nname = \"c\"\nbinary = \"b\"\ntoken = \"t\"\n[tls]\n\
                    [[hosts]]\nname = \"a\"\naddress = \"10.0.0.1\"\n";
        Inventory::parse(&dir.join("cairn.toml"), text.into()).expect("inventory")
    }

    fn ensure(inv: &Inventory) -> Vec<(String, Outcome)> {
        let tls = inv.tls.as_ref().expect("tls");
        Pki::ensure(inv, tls, &FakeClock::new(SystemTime::now()))
            .expect("ensure")
            .report()
            .iter()
            .map(|i| (i.name.clone(), i.outcome.clone()))
            .collect()
    }

    fn subjects(path: &Path) -> Vec<String> {
        let pem = std::fs::read_to_string(path).expect("read");
        crate::bundle(&pem)
            .iter()
            .map(|der| {
                let (_, c) = x509_parser::parse_x509_certificate(der).expect("x509");
                c.subject().to_string()
            })
            .collect()
    }

    fn now() -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    #[test]
    fn the_phases_trust_both_then_reissue_then_drop_the_old_ca() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inv = inventory(dir.path());
        let tls = dir.path().join("pki");
        ensure(&inv);
        assert_eq!(current(&tls).expect("no marker"), None);
        assert_eq!(subjects(&tls.join(CA)), ["CN=cairn CA"]);

        enter(&tls, Phase::TrustBoth, now()).expect("trust both");
        assert_eq!(current(&tls).expect("marker"), Some(Phase::TrustBoth));
        let both = subjects(&tls.join(CA));
        assert_eq!(both.len(), 2, "{both:?}");
        assert_eq!(both[0], "CN=cairn CA");
        assert!(both[1].starts_with("CN=cairn CA 2"), "{both:?}");
        // Still signed by the old CA: nothing is reissued.
        let outs = ensure(&inv);
        assert!(outs.iter().all(|(_, o)| *o == Outcome::Reused), "{outs:?}");

        enter(&tls, Phase::NewLeaves, now()).expect("new leaves");
        let outs = ensure(&inv);
        assert_eq!(outs[0], ("ca".into(), Outcome::Reused));
        assert!(
            outs[1..]
                .iter()
                .all(|(_, o)| *o == Outcome::Reissued(Reason::NotSignedByCa)),
            "{outs:?}"
        );
        assert_eq!(subjects(&tls.join(CA)), both, "both still trusted");

        enter(&tls, Phase::DropOld, now()).expect("drop old");
        assert_eq!(subjects(&tls.join(CA)), both[1..]);
        let outs = ensure(&inv);
        assert!(outs.iter().all(|(_, o)| *o == Outcome::Reused), "{outs:?}");
        finish(&tls).expect("finish");
        assert_eq!(current(&tls).expect("no marker"), None);
        for gone in [NEXT, NEXT_KEY, PREV] {
            assert!(!tls.join(gone).exists(), "{gone}");
        }
    }

    #[test]
    fn entering_a_phase_again_changes_nothing_more() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inv = inventory(dir.path());
        let tls = dir.path().join("pki");
        ensure(&inv);
        for phase in Phase::ALL {
            enter(&tls, phase, now()).expect("enter");
            if phase == Phase::NewLeaves {
                ensure(&inv);
            }
            let before = snapshot(&tls);
            enter(&tls, phase, now()).expect("enter again");
            assert_eq!(snapshot(&tls), before, "{phase}");
            assert_eq!(current(&tls).expect("marker"), Some(phase));
        }
    }

    fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<_> = std::fs::read_dir(dir)
            .expect("ls")
            .map(|e| {
                let e = e.expect("entry");
                let name = e.file_name().to_string_lossy().into_owned();
                (name, std::fs::read(e.path()).expect("read"))
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn the_remaining_phases_start_at_the_one_under_way() {
        assert_eq!(Phase::remaining(None), Phase::ALL);
        assert_eq!(
            Phase::remaining(Some(Phase::NewLeaves)),
            [Phase::NewLeaves, Phase::DropOld]
        );
        assert_eq!(Phase::remaining(Some(Phase::DropOld)), [Phase::DropOld]);
    }

    #[test]
    fn an_unknown_marker_is_refused_with_its_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(MARKER), "phase-9\n").expect("marker");
        let err = current(dir.path()).expect_err("unknown phase");
        assert!(
            matches!(&err, Error::RotationMarker { found, .. } if found == "phase-9"),
            "{err}"
        );
    }
}
