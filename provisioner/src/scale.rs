//! Scaling a running cluster from the inventory: hosts the member list lacks join one at a
//! time (MemberAdd, then a first start with `initial-cluster-state=existing`, then a wait until
//! the new member has caught up), members the inventory no longer lists are removed (only
//! with `--allow-remove`, never below a healthy majority, never the last one).
//!
//! A join that stopped half-way is resumed from what the member list and the host say: an
//! added member that never started (no name, its peer URL known) is just started, a member
//! whose data directory is gone is removed and added again, a host with data but no
//! membership is refused (its data belongs to another membership).

use std::fmt;

use cairn_inventory::Inventory;
use serde::Serialize;

use crate::host::{Host, Systemctl};
use crate::plan::{HostPlan, ServiceAction};
use crate::probe::{ClusterMember, Probe};
use crate::render::Bootstrap;
use crate::steps::{ServiceEvent, Steps, Target};
use crate::{layout, Error};

pub use crate::plan::Join;

/// What one host of the inventory tells about itself before a run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostFacts {
    /// The bootstrap values of its env file, when it has one.
    pub env: Option<Bootstrap>,
    /// Its data directory has data.
    pub has_data: bool,
}

impl HostFacts {
    /// Reads the env file and looks into the data directory.
    pub async fn read<H: Host>(host: &H, data_dir: &str) -> Result<Self, Error> {
        let env = host
            .read_file(layout::ENV_FILE)
            .await?
            .and_then(|bytes| Bootstrap::from_env_file(&String::from_utf8_lossy(&bytes)));
        Ok(Self {
            env,
            has_data: host.has_entries(data_dir).await?,
        })
    }
}

/// A member the inventory no longer lists, to be removed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Removal {
    /// Its name in the member list (its address when it never started).
    pub name: String,
    /// Its member ID.
    pub id: u64,
    /// The host reached over SSH to stop it: its peer URL's host, with `[ssh]`'s port and user.
    pub address: String,
    /// Its data directory (`[cluster] data_dir`) is deleted too.
    pub purge: bool,
}

impl fmt::Display for Removal {
    /// The plan line(s) of the removal.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} ({}): not in the inventory", self.name, self.address)?;
        writeln!(
            f,
            "  member remove {:x} (needs --allow-remove), then stop and disable {}",
            self.id,
            layout::UNIT_NAME
        )?;
        if self.purge {
            writeln!(f, "  delete its data directory (--purge)")
        } else {
            writeln!(f, "  its data directory stays (--purge deletes it)")
        }
    }
}

/// What the run does to the selected hosts' membership: per host (in order) its env file's
/// bootstrap values and how it joins (`None`: it is a member already, or the cluster is new).
/// Removals are [`leaving`]'s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    /// Per selected host.
    pub hosts: Vec<(Bootstrap, Option<Join>)>,
}

/// The member list of the running cluster, from the first inventory member that answers;
/// `None` when none does (the cluster is new, or entirely down).
pub async fn discover<P: Probe>(probe: &P, inventory: &Inventory) -> Option<Vec<ClusterMember>> {
    let asks = inventory
        .hosts
        .iter()
        .map(|h| async move { probe.member_list(&h.name).await.ok() });
    futures::future::join_all(asks)
        .await
        .into_iter()
        .flatten()
        .next()
}

/// Decides membership from the inventory, what each `selected` host says (`facts`, one per
/// selected host) and the running cluster's member list (`None`: no cluster runs, every host
/// bootstraps a new one).
pub fn classify(
    inventory: &Inventory,
    selected: &[&cairn_inventory::Host],
    facts: &[HostFacts],
    members: Option<&[ClusterMember]>,
) -> Result<Membership, Error> {
    let Some(members) = members else {
        return Ok(Membership {
            hosts: facts
                .iter()
                .map(|f| {
                    let b = f
                        .env
                        .clone()
                        .unwrap_or_else(|| Bootstrap::new_cluster(inventory));
                    (b, None)
                })
                .collect(),
        });
    };
    // Who the cluster will have when each joiner starts: every current member (an unnamed one
    // under its inventory name), then the joiners in inventory order.
    let name_of = |m: &ClusterMember| -> Option<String> {
        if m.started() {
            return Some(m.name.clone());
        }
        inventory
            .hosts
            .iter()
            .find(|h| m.has_peer_url(&inventory.peer_url(h)))
            .map(|h| h.name.clone())
    };
    let mut roster: Vec<(String, String)> = members
        .iter()
        .filter_map(|m| Some((name_of(m)?, m.peer_urls.first()?.clone())))
        .collect();
    let mut hosts = Vec::new();
    for (h, f) in selected.iter().zip(facts) {
        let peer_url = inventory.peer_url(h);
        let member = members.iter().find(|m| m.has_peer_url(&peer_url));
        let join = match member {
            Some(m) if m.started() && f.has_data => None,
            Some(m) if m.started() => Some(Join::Readd { old_id: m.id }),
            Some(m) => Some(Join::Resume { id: m.id }),
            None if f.has_data => {
                return Err(Error::StaleData {
                    host: h.name.clone(),
                    data_dir: inventory.data_dir(h).display().to_string(),
                })
            }
            None => {
                roster.push((h.name.clone(), peer_url.clone()));
                Some(Join::Add)
            }
        };
        let bootstrap = match (join, &f.env) {
            (None, Some(env)) => env.clone(),
            (None, None) => Bootstrap::new_cluster(inventory),
            (Some(_), _) => Bootstrap::join(roster.iter().map(|(n, u)| (n.as_str(), u.as_str()))),
        };
        hosts.push((bootstrap, join));
    }
    Ok(Membership { hosts })
}

/// The members whose peer URL is no inventory host's, by name (the member list's order is
/// its IDs').
pub fn leaving(inventory: &Inventory, members: &[ClusterMember]) -> Vec<ClusterMember> {
    let mut out: Vec<ClusterMember> = members
        .iter()
        .filter(|m| {
            !inventory
                .hosts
                .iter()
                .any(|h| m.has_peer_url(&inventory.peer_url(h)))
        })
        .cloned()
        .collect();
    out.sort_by(|a, b| (&a.name, &a.peer_urls).cmp(&(&b.name, &b.peer_urls)));
    out
}

/// The address of a member's host: its first peer URL's host.
pub fn member_address(member: &ClusterMember) -> Option<String> {
    let url = url::Url::parse(member.peer_urls.first()?).ok()?;
    match url.host()? {
        url::Host::Ipv6(ip) => Some(ip.to_string()),
        host => Some(host.to_string()),
    }
}

/// The first of `voters` that answers with a leader.
async fn healthy_voter<'a, P: Probe>(probe: &P, voters: &'a [String]) -> Option<&'a str> {
    for v in voters {
        if probe.status(v).await.is_ok_and(|s| s.has_leader()) {
            return Some(v);
        }
    }
    None
}

/// Joins `target` (planned as `plan`, joining as `join` with its peer URL) to the running cluster whose
/// members are `voters`: only while every voter is healthy, then MemberAdd (unless resumed),
/// the files, the first start, and a wait until it answers with a leader, has caught up with
/// the leader's revision and is named in the member list.
pub async fn join<H: Host, P: Probe>(
    target: &Target<H>,
    plan: &HostPlan,
    join: Join,
    steps: Steps<'_, P>,
) -> Result<ServiceEvent, Error> {
    let (probe, voters, progress) = (steps.probe, steps.members, steps.progress);
    let name = target.host.name();
    let peer_url = target.peer_url.as_str();
    // One membership change at a time, each only while the cluster is whole: a second new
    // member added before the first runs would leave 2 of 5 unable to vote.
    for v in voters {
        steps.wait_healthy(v).await?;
    }
    let via = healthy_voter(probe, voters)
        .await
        .ok_or_else(|| Error::NoMemberReachable {
            endpoints: voters.join(", "),
        })?;
    if let Join::Readd { old_id } = join {
        progress.step(name, "stopping the member that lost its data");
        target
            .host
            .systemctl(Systemctl::Stop, layout::UNIT_NAME)
            .await?;
        progress.step(name, &format!("member remove {old_id:x}"));
        probe.member_remove(via, old_id).await?;
        target.host.remove_dir_all(&target.data_dir).await?;
    }
    if matches!(join, Join::Add | Join::Readd { .. }) {
        progress.step(name, "member add");
        probe.member_add(via, peer_url).await?;
    }
    steps.write_host(target, plan).await?;
    target.host.create_dir(&target.data_dir, 0o700).await?;
    progress.step(name, "starting (initial-cluster-state=existing)");
    let started = std::time::Instant::now();
    // A resumed member's unit may be active and failing: restart starts it either way.
    steps.restart_until_caught_up(target).await?;
    steps
        .poll_until(name, || async {
            let list = probe.member_list(via).await?;
            let named = list.iter().any(|m| m.has_peer_url(peer_url) && m.started());
            Ok((named, "it has not published its name yet".to_string()))
        })
        .await?;
    Ok(ServiceEvent {
        host: name.to_string(),
        action: ServiceAction::Start,
        healthy_after_ms: started.elapsed().as_millis(),
    })
}

/// Removes `removal` (reached as `host`) from the cluster whose inventory members are
/// `voters`: refused when it is the last member or when the members left would not have a
/// healthy majority of the current cluster; then MemberRemove through a healthy member, stop
/// and disable the unit, and with `purge` delete the data directory `data_dir`.
pub async fn remove<H: Host, P: Probe>(
    host: &H,
    removal: &Removal,
    data_dir: &str,
    steps: Steps<'_, P>,
) -> Result<(), Error> {
    let (probe, voters, progress) = (steps.probe, steps.members, steps.progress);
    let via = healthy_voter(probe, voters)
        .await
        .ok_or_else(|| Error::NoMemberReachable {
            endpoints: voters.join(", "),
        })?;
    let list = probe.member_list(via).await?;
    if list.len() <= 1 {
        return Err(Error::LastMember {
            member: removal.name.clone(),
        });
    }
    let mut healthy = 0;
    for m in list.iter().filter(|m| m.id != removal.id) {
        if voters.contains(&m.name) && probe.status(&m.name).await.is_ok_and(|s| s.has_leader()) {
            healthy += 1;
        }
    }
    let needed = list.len() / 2 + 1;
    if healthy < needed {
        return Err(Error::RemovalBelowQuorum {
            member: removal.name.clone(),
            healthy,
            needed,
            total: list.len(),
        });
    }
    progress.step(&removal.name, &format!("member remove {:x}", removal.id));
    probe.member_remove(via, removal.id).await?;
    progress.step(&removal.name, "stopping and disabling");
    host.systemctl(Systemctl::Stop, layout::UNIT_NAME).await?;
    host.systemctl(Systemctl::Disable, layout::UNIT_NAME)
        .await?;
    if removal.purge {
        progress.step(&removal.name, &format!("deleting {data_dir}"));
        host.remove_dir_all(data_dir).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::converge::{plan_all, Limits, Quiet};
    use crate::desired::{host_files, Blob};
    use crate::fake::{Event, Fake, FakeHost, FakeProbe};
    use crate::render::ClusterState;

    fn inventory(hosts: &[&str]) -> Inventory {
        let mut text = "[cluster]\nname = \"c\"\nbinary = \"b\"\ntoken = \"t\"\n".to_string();
        for (i, h) in hosts.iter().enumerate() {
            text.push_str(&format!(
                "[[hosts]]\nname = \"{h}\"\naddress = \"10.0.0.{}\"\n",
                i + 1
            ));
        }
        Inventory::parse(Path::new("/x/cairn.toml"), text).expect("inventory")
    }

    fn all(inv: &Inventory) -> Vec<&cairn_inventory::Host> {
        inv.hosts.iter().collect()
    }

    fn member(id: u64, name: &str, n: u8) -> ClusterMember {
        ClusterMember {
            id,
            name: name.into(),
            peer_urls: vec![format!("http://10.0.0.{n}:2380")],
            client_urls: Vec::new(),
        }
    }

    fn running(n: usize) -> HostFacts {
        HostFacts {
            env: Some(Bootstrap {
                initial_cluster: "a=http://10.0.0.1:2380".into(),
                state: ClusterState::New,
            }),
            has_data: n > 0,
        }
    }

    #[test]
    fn a_new_cluster_bootstraps_every_host_together() {
        let inv = inventory(&["a", "b"]);
        let m = classify(
            &inv,
            &all(&inv),
            &[HostFacts::default(), HostFacts::default()],
            None,
        )
        .expect("classify");
        assert_eq!(
            m.hosts,
            vec![(Bootstrap::new_cluster(&inv), None); 2],
            "{m:?}"
        );
    }

    #[test]
    fn new_hosts_join_one_after_another_and_members_keep_their_env_values() {
        let inv = inventory(&["a", "b", "c", "d", "e"]);
        let members = [member(1, "a", 1), member(2, "b", 2), member(3, "c", 3)];
        let facts = [
            running(1),
            running(1),
            running(1),
            HostFacts::default(),
            HostFacts::default(),
        ];
        let m = classify(&inv, &all(&inv), &facts, Some(&members)).expect("classify");
        for (bootstrap, join) in &m.hosts[..3] {
            assert_eq!((bootstrap, *join), (&running(1).env.expect("env"), None));
        }
        let abc = "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,c=http://10.0.0.3:2380";
        assert_eq!(
            m.hosts[3],
            (
                Bootstrap {
                    initial_cluster: format!("{abc},d=http://10.0.0.4:2380"),
                    state: ClusterState::Existing
                },
                Some(Join::Add)
            )
        );
        assert_eq!(
            m.hosts[4].0.initial_cluster,
            format!("{abc},d=http://10.0.0.4:2380,e=http://10.0.0.5:2380")
        );
    }

    #[test]
    fn half_done_joins_resume_and_lost_data_is_added_again() {
        let inv = inventory(&["a", "b", "c", "d"]);
        // d was added but never started; c's data directory is gone.
        let members = [
            member(1, "a", 1),
            member(2, "b", 2),
            member(3, "c", 3),
            member(4, "", 4),
        ];
        let facts = [running(1), running(1), running(0), HostFacts::default()];
        let m = classify(&inv, &all(&inv), &facts, Some(&members)).expect("classify");
        assert_eq!(m.hosts[2].1, Some(Join::Readd { old_id: 3 }));
        assert_eq!(m.hosts[3].1, Some(Join::Resume { id: 4 }));
        assert_eq!(
            m.hosts[3].0.initial_cluster,
            "a=http://10.0.0.1:2380,b=http://10.0.0.2:2380,c=http://10.0.0.3:2380,d=http://10.0.0.4:2380"
        );
    }

    #[test]
    fn a_removal_plan_says_what_happens_and_what_it_needs() {
        let mut r = Removal {
            name: "m4".into(),
            id: 0xab,
            address: "10.0.0.4".into(),
            purge: false,
        };
        assert_eq!(
            r.to_string(),
            "m4 (10.0.0.4): not in the inventory\n  member remove ab (needs --allow-remove), then stop and disable cairn.service\n  its data directory stays (--purge deletes it)\n"
        );
        r.purge = true;
        assert!(r
            .to_string()
            .ends_with("  delete its data directory (--purge)\n"));
    }

    #[test]
    fn members_missing_from_the_inventory_leave_in_name_order() {
        let inv = inventory(&["a", "b"]);
        let members = [
            member(1, "a", 1),
            member(8, "z", 9),
            member(2, "b", 2),
            member(9, "y", 8),
        ];
        let gone = leaving(&inv, &members);
        assert_eq!(gone, [member(9, "y", 8), member(8, "z", 9)]);
        assert_eq!(member_address(&gone[1]).as_deref(), Some("10.0.0.9"));
    }

    /// A run as `Session` does it, over the fake: facts, classification, plans, apply.
    async fn provision(fake: &Fake, inv: &Inventory) -> Vec<HostPlan> {
        let probe = FakeProbe(fake.clone());
        let members = discover(&probe, inv).await;
        let mut facts = Vec::new();
        for h in &inv.hosts {
            let data_dir = inv.data_dir(h).display().to_string();
            facts.push(
                HostFacts::read(&fake.host(&h.name), &data_dir)
                    .await
                    .expect("facts"),
            );
        }
        let m = classify(inv, &all(inv), &facts, members.as_deref()).expect("classify");
        let binary = Blob::new(b"bin".to_vec());
        let targets: Vec<Target<FakeHost>> = inv
            .hosts
            .iter()
            .zip(&m.hosts)
            .map(|(h, (bootstrap, _))| Target {
                host: fake.host(&h.name),
                files: host_files(inv, h, None, &binary, bootstrap).expect("files"),
                data_dir: inv.data_dir(h).display().to_string(),
                peer_url: inv.peer_url(h),
            })
            .collect();
        let limits = Limits {
            parallel: 2,
            health_timeout: std::time::Duration::from_secs(5),
            poll: std::time::Duration::from_millis(1),
        };
        let mut plans: Vec<HostPlan> = plan_all(&targets, &limits, &Quiet)
            .await
            .into_iter()
            .collect::<Result<_, _>>()
            .expect("plans");
        for (p, (_, join)) in plans.iter_mut().zip(&m.hosts) {
            if join.is_some() {
                p.membership = *join;
                p.service = ServiceAction::Start;
            }
        }
        let names: Vec<String> = inv.hosts.iter().map(|h| h.name.clone()).collect();
        crate::converge::apply(
            &targets,
            &plans,
            Steps::new(&probe, &names, &limits, &Quiet),
        )
        .await
        .expect("apply");
        plans
    }

    #[tokio::test]
    async fn new_hosts_are_added_and_started_one_at_a_time_without_restarting_members() {
        let fake = Fake::new(&["a", "b", "c", "d", "e"], 1);
        provision(&fake, &inventory(&["a", "b", "c"])).await;
        let before = fake.world().events.len();
        let plans = provision(&fake, &inventory(&["a", "b", "c", "d", "e"])).await;
        assert!(plans[..3].iter().all(HostPlan::is_empty), "{plans:?}");
        assert_eq!(plans[3].membership, Some(Join::Add));
        let text = plans[4].to_string();
        assert!(
            text.contains("  member add, then join the running cluster\n"),
            "{text}"
        );
        let (steps, env) = {
            let world = fake.world();
            let steps: Vec<String> = world.events[before..]
                .iter()
                .filter_map(|e| match e {
                    Event::MemberAdd(n) => Some(format!("add {n}")),
                    Event::Systemctl(n, a) if *a != Systemctl::DaemonReload => {
                        Some(format!("{} {n}", a.verb()))
                    }
                    _ => None,
                })
                .collect();
            let env = world.machines["e"].files[layout::ENV_FILE].0.clone();
            (steps, String::from_utf8_lossy(&env).into_owned())
        };
        assert_eq!(
            steps,
            [
                "add d",
                "enable d",
                "restart d",
                "add e",
                "enable e",
                "restart e"
            ]
        );
        assert!(
            env.contains("ETCD_INITIAL_CLUSTER_STATE=existing\n"),
            "{env}"
        );
        // Done: a third run changes nothing.
        let plans = provision(&fake, &inventory(&["a", "b", "c", "d", "e"])).await;
        assert!(plans.iter().all(HostPlan::is_empty), "{plans:?}");
    }

    #[tokio::test]
    async fn an_added_but_never_started_member_is_started_not_added_again() {
        let fake = Fake::new(&["a", "b", "c", "d"], 0);
        provision(&fake, &inventory(&["a", "b", "c"])).await;
        FakeProbe(fake.clone())
            .member_add("a", "http://10.0.0.4:2380")
            .await
            .expect("add");
        let before = fake.world().events.len();
        let plans = provision(&fake, &inventory(&["a", "b", "c", "d"])).await;
        assert_eq!(plans[3].membership, Some(Join::Resume { id: 4 }));
        let world = fake.world();
        assert!(!world.events[before..]
            .iter()
            .any(|e| matches!(e, Event::MemberAdd(_))));
        assert!(world.machines["d"].active);
    }

    fn removal(name: &str, id: u64) -> Removal {
        Removal {
            name: name.into(),
            id,
            address: format!("10.0.0.{id}"),
            purge: false,
        }
    }

    #[tokio::test]
    async fn a_removal_stops_and_disables_and_keeps_data_without_purge() {
        let fake = Fake::new(&["a", "b", "c", "d"], 0);
        provision(&fake, &inventory(&["a", "b", "c", "d"])).await;
        let voters: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let probe = FakeProbe(fake.clone());
        remove(
            &fake.host("d"),
            &removal("d", 4),
            "/var/lib/cairn",
            Steps::new(&probe, &voters, &Limits::default(), &Quiet),
        )
        .await
        .expect("remove d");
        let world = fake.world();
        let n = world.events.len();
        assert_eq!(
            world.events[n - 3..],
            [
                Event::MemberRemove(4),
                Event::Systemctl("d".into(), Systemctl::Stop),
                Event::Systemctl("d".into(), Systemctl::Disable)
            ]
        );
        assert!(world.machines["d"].data, "data kept without --purge");
    }

    #[tokio::test]
    async fn removals_below_a_healthy_majority_or_of_the_last_member_are_refused() {
        let fake = Fake::new(&["a", "b", "c", "d"], 0);
        provision(&fake, &inventory(&["a", "b", "c", "d"])).await;
        for down in ["b", "c"] {
            fake.world().machines.get_mut(down).expect("m").active = false;
        }
        let voters: Vec<String> = ["a", "b", "c"].map(String::from).to_vec();
        let probe = FakeProbe(fake.clone());
        let err = remove(
            &fake.host("d"),
            &removal("d", 4),
            "/d",
            Steps::new(&probe, &voters, &Limits::default(), &Quiet),
        )
        .await
        .expect_err("b and c are down");
        assert_eq!(
            err.to_string(),
            "d is not removed: only 1 of the other members are healthy and a majority of the 4-member cluster is 3; bring the other members back first"
        );
        assert!(!fake
            .world()
            .events
            .iter()
            .any(|e| matches!(e, Event::MemberRemove(_))));

        let alone = Fake::new(&["a"], 0);
        provision(&alone, &inventory(&["a"])).await;
        let err = remove(
            &alone.host("a"),
            &removal("a", 1),
            "/d",
            Steps::new(
                &FakeProbe(alone.clone()),
                &["a".to_string()],
                &Limits::default(),
                &Quiet,
            ),
        )
        .await
        .expect_err("last member");
        assert!(matches!(err, Error::LastMember { .. }), "{err}");
    }

    #[test]
    fn a_new_host_with_data_from_another_membership_is_refused() {
        let inv = inventory(&["a", "b"]);
        let err = classify(
            &inv,
            &all(&inv),
            &[running(1), running(1)],
            Some(&[member(1, "a", 1)]),
        )
        .expect_err("b has data");
        assert!(
            err.to_string().starts_with("b: /var/lib/cairn has data"),
            "{err}"
        );
    }
}
