//! Rolling restarts of running members whose files changed, a new `binary` (an upgrade)
//! included: one member at a time, the leader last after handing leadership away, each
//! member's files pushed just before its own restart, and the next member only once the
//! restarted one answers with a leader and has caught up with the leader's revision. The
//! first failure stops the roll: the members not reached keep their old files and binary,
//! on disk and running.
//!
//! Before the first change to a running cluster the caller's [`BeforeFirstChange`] runs
//! (`cairn provision` takes a backup there).

use std::future::Future;
use std::time::Instant;

use crate::host::Host;
use crate::plan::{HostPlan, ServiceAction};
use crate::probe::Probe;
use crate::steps::{ServiceEvent, Steps, Target};
use crate::Error;

/// Why a [`BeforeFirstChange`] hook failed: whatever its own error type is.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// Runs once before a run first touches a running cluster (a restart, a join or a removal),
/// so the state before the change can be kept (a backup); its failure stops the run with
/// nothing changed.
pub trait BeforeFirstChange: Send + Sync {
    /// Called before the first member is touched.
    fn before_first_change(&self) -> impl Future<Output = Result<(), HookError>> + Send;
}

/// A hook that does nothing, for callers without a backup.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHook;

impl BeforeFirstChange for NoHook {
    async fn before_first_change(&self) -> Result<(), HookError> {
        Ok(())
    }
}

/// Restarts the targets whose plan says [`ServiceAction::Restart`], one at a time, the leader
/// last; `all_members` are the inventory's members, all healthy before each restart.
pub async fn roll<H: Host, P: Probe>(
    targets: &[Target<H>],
    plans: &[HostPlan],
    steps: Steps<'_, P>,
) -> Result<Vec<ServiceEvent>, Error> {
    let (probe, all_members, progress) = (steps.probe, steps.members, steps.progress);
    let mut restarting: Vec<(&Target<H>, &HostPlan)> = targets
        .iter()
        .zip(plans)
        .filter(|(_, p)| p.service == ServiceAction::Restart)
        .collect();
    let mut events = Vec::new();
    while !restarting.is_empty() {
        let (next, leader_id) = next_to_restart(probe, &restarting).await;
        let (target, plan) = restarting.remove(next);
        let name = target.host.name();
        // Never take a member down while another one is not back: that could cost quorum.
        // (A member that is down already, e.g. after a failed upgrade, goes first: restarting
        // it costs nothing.)
        let mut healthy = Ok(());
        for member in all_members.iter().filter(|m| *m != name) {
            if let Err(e) = steps.wait_healthy(member).await {
                healthy = Err((member.clone(), e));
                break;
            }
        }
        if let Err((member, e)) = healthy {
            restarting.insert(next, (target, plan));
            return Err(stopped(member, e, &restarting, None));
        }
        let started = Instant::now();
        let restarted = async {
            steps.write_host(target, plan).await?;
            if let Some(own_id) = leader_id {
                steps.hand_over_leadership(name, own_id).await;
            }
            progress.step(name, "restarting");
            steps.restart_until_caught_up(target).await
        };
        if let Err(e) = restarted.await {
            return Err(stopped(name.to_string(), e, &restarting, Some(name)));
        }
        events.push(ServiceEvent {
            host: name.to_string(),
            action: ServiceAction::Restart,
            healthy_after_ms: started.elapsed().as_millis(),
        });
    }
    Ok(events)
}

/// The roll's error: what failed, at which member, and who was not reached.
fn stopped<H: Host>(
    member: String,
    source: Error,
    left: &[(&Target<H>, &HostPlan)],
    failed: Option<&str>,
) -> Error {
    Error::RollStopped {
        member,
        remaining: left
            .iter()
            .map(|(t, _)| t.host.name().to_string())
            .filter(|n| Some(n.as_str()) != failed)
            .collect(),
        source: Box::new(source),
    }
}

/// Index of the member to restart next: one that is down (no answer or no leader) first,
/// then the first follower (the leader goes last), and the leader's own ID when only the
/// leader is left.
async fn next_to_restart<H: Host, P: Probe>(
    probe: &P,
    restarting: &[(&Target<H>, &HostPlan)],
) -> (usize, Option<u64>) {
    let mut leader = None;
    let mut follower = None;
    for (i, (t, _)) in restarting.iter().enumerate() {
        match probe.status(t.host.name()).await {
            Ok(s) if s.is_leader() => leader = Some((i, s.member_id)),
            Ok(s) if s.has_leader() => {
                follower.get_or_insert(i);
            }
            _ => return (i, None),
        }
    }
    match (follower, leader) {
        (Some(i), _) => (i, None),
        (None, Some((i, id))) => (i, Some(id)),
        (None, None) => (0, None),
    }
}
