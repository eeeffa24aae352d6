//! `cairn certs rotate`: new certificates rolled out by the provisioner's own run
//! ([`Session`]), so a rotation is a rolling restart like any other change: members restart
//! one at a time, each only while every member is healthy, the next only once the restarted
//! one is back with a leader and caught up, the leader last after handing leadership away.
//!
//! A leaf rotation reissues every member and client certificate from the same CA in one
//! roll-out. A CA rotation rolls out the three phases of [`cairn_pki::rotation`] (where the order
//! and what clients see in each is explained), resuming a phase an earlier run left under
//! way.

use std::time::Instant;

use cairn_inventory::{Inventory, Tls};
use serde::Serialize;
use time::OffsetDateTime;

use crate::converge::Progress;
use crate::provision::scratch_copy;
use crate::{Clock, Error, Options, Report, Session};
use cairn_pki::rotation::{self, Phase};
use cairn_pki::Renewal;

/// One roll-out of new certificates to every member.
#[derive(Clone, Debug, Serialize)]
pub struct Rollout {
    /// The CA rotation's phase; absent for a leaf rotation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The provisioner's report of it.
    pub report: Report,
}

/// What a rotation did (or, with `--plan`, would do first).
#[derive(Clone, Debug, Serialize)]
pub struct Rotation {
    /// `--plan`: nothing was changed.
    pub plan_only: bool,
    /// A CA rotation that resumed the phase an earlier run left under way.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed: Option<Phase>,
    /// The roll-outs done, in order (with `--plan`, the first one planned).
    pub rollouts: Vec<Rollout>,
    /// With `--plan`, the CA rotation's phases after the planned one.
    pub pending: Vec<Phase>,
    /// Wall time of the whole rotation.
    pub elapsed_ms: u128,
}

/// Reissues every member and client certificate from the same CA and rolls them out.
pub async fn rotate_leaves(
    inventory: &Inventory,
    options: &Options,
    clock: &dyn Clock,
    progress: &dyn Progress,
) -> Result<Rotation, Error> {
    let started = Instant::now();
    let tls = tls_of(inventory)?;
    if let Some(phase) = rotation::current(&tls.dir)? {
        return Err(Error::RotationInProgress {
            phase,
            marker: tls.dir.join(rotation::MARKER),
        });
    }
    let options = Options {
        renewal: Renewal::AllLeaves,
        limit: Vec::new(),
        ..options.clone()
    };
    let report = run(inventory, &options, clock, progress).await?;
    Ok(Rotation {
        plan_only: options.plan_only,
        resumed: None,
        rollouts: vec![Rollout {
            phase: None,
            report,
        }],
        pending: Vec::new(),
        elapsed_ms: started.elapsed().as_millis(),
    })
}

/// Rolls out a new CA in phases, from the phase under way if an earlier run stopped. With
/// `--plan` only the next phase is planned, on a copy of `[tls] dir`.
pub async fn rotate_ca(
    inventory: &Inventory,
    options: &Options,
    clock: &dyn Clock,
    progress: &dyn Progress,
) -> Result<Rotation, Error> {
    let started = Instant::now();
    let tls = tls_of(inventory)?;
    if let (Some(cert), Some(_)) = (&tls.ca_cert, &tls.ca_key) {
        return Err(Error::OperatorCaRotation { cert: cert.clone() });
    }
    for file in ["ca.pem", "ca-key.pem"] {
        let path = tls.dir.join(file);
        if let Err(source) = std::fs::metadata(&path) {
            return Err(Error::NoClientCertificate {
                setup: inventory.cluster.transport.setup_command(),
                path,
                source,
            });
        }
    }
    let resumed = rotation::current(&tls.dir)?;
    let mut phases = Phase::remaining(resumed);
    // Every phase restarts every member: a phase resumed after its files were written
    // everywhere but not every member restarted has no file left to change.
    let options = Options {
        renewal: Renewal::AsNeeded,
        limit: Vec::new(),
        restart_all: true,
        ..options.clone()
    };
    let now = OffsetDateTime::from(clock.now());
    let mut rollouts = Vec::new();
    if options.plan_only {
        let scratch = scratch_copy(tls)?;
        let first = phases.remove(0);
        rotation::enter(scratch.path(), first, now)?;
        let mut planned = inventory.clone();
        planned.tls = Some(Tls {
            dir: scratch.path().to_path_buf(),
            ..tls.clone()
        });
        let report = run(&planned, &options, clock, progress).await?;
        rollouts.push(Rollout {
            phase: Some(first),
            report,
        });
    } else {
        for phase in phases.drain(..) {
            rotation::enter(&tls.dir, phase, now)?;
            let report = run(inventory, &options, clock, progress).await?;
            rollouts.push(Rollout {
                phase: Some(phase),
                report,
            });
        }
        rotation::finish(&tls.dir)?;
    }
    Ok(Rotation {
        plan_only: options.plan_only,
        resumed,
        rollouts,
        pending: phases,
        elapsed_ms: started.elapsed().as_millis(),
    })
}

fn tls_of(inventory: &Inventory) -> Result<&Tls, Error> {
    inventory.tls.as_ref().ok_or_else(|| Error::NoTls {
        setup: inventory.cluster.transport.setup_command(),
        inventory: inventory.path.clone(),
    })
}

/// One provisioner run: planned, then applied unless `--plan`.
async fn run(
    inventory: &Inventory,
    options: &Options,
    clock: &dyn Clock,
    progress: &dyn Progress,
) -> Result<Report, Error> {
    let session = Session::plan(inventory, options, clock, progress).await?;
    if options.plan_only {
        Ok(session.finish_plan().await)
    } else {
        session.apply(&crate::upgrade::NoHook, progress).await
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::converge::Quiet;
    use cairn_pki::Pki;

    use crate::SystemClock;

    fn inventory(dir: &Path, tls_extra: &str) -> Inventory {
        let text = format!(
            "[cluster]\nname = \"c\"\nbinary = \"b\"\ntoken = \"t\"\n[tls]\n{tls_extra}\n\
             [[hosts]]\nname = \"a\"\naddress = \"10.0.0.1\"\n"
        );
        Inventory::parse(&dir.join("cairn.toml"), text).expect("inventory")
    }

    #[tokio::test]
    async fn a_leaf_rotation_waits_for_a_ca_rotation_under_way() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inv = inventory(dir.path(), "");
        let tls = inv.tls.as_ref().expect("tls");
        Pki::ensure(&inv, tls, &SystemClock).expect("pki");
        rotation::enter(&tls.dir, Phase::TrustBoth, OffsetDateTime::now_utc()).expect("enter");
        let err = rotate_leaves(&inv, &Options::default(), &SystemClock, &Quiet)
            .await
            .expect_err("refused");
        assert!(
            matches!(
                err,
                Error::RotationInProgress {
                    phase: Phase::TrustBoth,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string()
                .ends_with("finish it with `cairn certs rotate --ca` first"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn the_operators_ca_is_not_rotated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inv = inventory(
            dir.path(),
            "ca_cert = \"my-ca.pem\"\nca_key = \"my-ca-key.pem\"",
        );
        let err = rotate_ca(&inv, &Options::default(), &SystemClock, &Quiet)
            .await
            .expect_err("refused");
        assert!(matches!(err, Error::OperatorCaRotation { .. }), "{err}");
        let text = err.to_string();
        assert!(!text.contains('\n'), "{text}");
        assert!(text.contains("which cairn cannot rotate"), "{text}");
    }

    #[tokio::test]
    async fn a_ca_rotation_needs_the_ca_cairn_issued() {
        let dir = tempfile::tempdir().expect("tempdir");
        let inv = inventory(dir.path(), "");
        let err = rotate_ca(&inv, &Options::default(), &SystemClock, &Quiet)
            .await
            .expect_err("no CA yet");
        assert!(
            err.to_string()
                .ends_with("cairn provision issues the certificates there, run it first"),
            "{err}"
        );
    }
}
