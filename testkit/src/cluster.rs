//! A multi-member cluster of real processes, each member on its own loopback address (so a
//! test can cut members apart by address), with free ports, optional TLS for clients and
//! peers, and helpers to find the leader and to add members.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::{free_port, reserve_port, wait_until, CmdOutput, Error, Kind, Member, Pki};

/// Addresses handed out per cluster (members plus room for ones added later).
const IPS_PER_CLUSTER: u32 = 8;
/// First and last last-octet handed out (127.0.0.1-20 stay for single members).
const FIRST_IP: u32 = 24;
const LAST_IP: u32 = 248;
/// The next block of addresses.
static NEXT_IP: AtomicU32 = AtomicU32::new(0);

/// A block of loopback addresses no other cluster of this test process uses.
fn ip_block() -> u32 {
    let blocks = (LAST_IP - FIRST_IP) / IPS_PER_CLUSTER;
    FIRST_IP + (NEXT_IP.fetch_add(1, Ordering::Relaxed) % blocks) * IPS_PER_CLUSTER
}

/// Configures and starts a [`Cluster`]; see [`Cluster::builder`].
#[derive(Debug)]
#[must_use = "a ClusterBuilder does nothing until .start()"]
pub struct ClusterBuilder {
    kind: Kind,
    size: usize,
    cairn_binary: Option<PathBuf>,
    tls: Option<Pki>,
    args: Vec<String>,
    token: String,
}

impl ClusterBuilder {
    /// Number of members (default 3).
    pub fn size(mut self, n: usize) -> Self {
        self.size = n;
        self
    }

    /// The cairn-server binary (required for [`Kind::Cairn`]).
    pub fn cairn_binary(mut self, path: impl Into<PathBuf>) -> Self {
        self.cairn_binary = Some(path.into());
        self
    }

    /// TLS for clients and peers, with mutual authentication on both, from `pki`.
    pub fn tls(mut self, pki: &Pki) -> Self {
        self.tls = Some(pki.clone());
        self
    }

    /// An extra argument for every member.
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    /// `--initial-cluster-token` (default `testkit-cluster`).
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.token = token.into();
        self
    }

    /// Starts every member at once and waits until each is ready.
    pub fn start(self) -> Result<Cluster, Error> {
        let base = ip_block();
        let mut planned = Vec::new();
        for i in 0..self.size {
            let ip = Ipv4Addr::new(127, 0, 0, (base + i as u32) as u8);
            // Both held while picking, so the two differ (a released port can come back).
            let (client, peer) = (reserve_port(ip)?, reserve_port(ip)?);
            let port = |l: &std::net::TcpListener| {
                l.local_addr()
                    .map(|a| a.port())
                    .map_err(|e| Error::io("reading a reserved port", e))
            };
            planned.push((format!("m{}", i + 1), ip, port(&client)?, port(&peer)?));
        }
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let initial_cluster = planned
            .iter()
            .map(|(name, ip, _, peer)| format!("{name}={scheme}://{ip}:{peer}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = Cluster {
            kind: self.kind,
            members: Vec::new(),
            cairn_binary: self.cairn_binary,
            tls: self.tls,
            args: self.args,
            token: self.token,
            base,
        };
        for (name, ip, client, peer) in planned {
            let b = cluster
                .member_builder(&name, ip)
                .ports(client, peer)
                .initial_cluster(initial_cluster.clone());
            cluster.members.push(b.prepare()?);
        }
        for m in &mut cluster.members {
            m.spawn()?;
        }
        for m in &mut cluster.members {
            m.wait_ready()?;
        }
        Ok(cluster)
    }
}

/// Running members of one cluster. Dropping it kills them all.
#[derive(Debug)]
pub struct Cluster {
    kind: Kind,
    members: Vec<Member>,
    cairn_binary: Option<PathBuf>,
    tls: Option<Pki>,
    args: Vec<String>,
    token: String,
    base: u32,
}

impl Cluster {
    /// Starts configuring a cluster of `kind`.
    pub fn builder(kind: Kind) -> ClusterBuilder {
        ClusterBuilder {
            kind,
            size: 3,
            cairn_binary: None,
            tls: None,
            args: Vec::new(),
            token: "testkit-cluster".into(),
        }
    }

    fn member_builder(&self, name: &str, ip: Ipv4Addr) -> crate::MemberBuilder {
        let mut b = Member::builder(self.kind)
            .name(name)
            .ip(ip)
            .token(self.token.clone());
        if let Some(bin) = &self.cairn_binary {
            b = b.cairn_binary(bin.clone());
        }
        if let Some(pki) = &self.tls {
            b = b.tls(pki).peer_tls();
        }
        for a in &self.args {
            b = b.arg(a.clone());
        }
        b
    }

    /// Which server the members run.
    pub fn kind(&self) -> Kind {
        self.kind
    }

    /// The members, in start order (`m1`, `m2`, ...).
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// Member `i` (0-based).
    pub fn member(&self, i: usize) -> &Member {
        &self.members[i]
    }

    /// Member `i`, to stop, kill or restart it.
    pub fn member_mut(&mut self, i: usize) -> &mut Member {
        &mut self.members[i]
    }

    /// Number of members (running or not).
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the cluster has no members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The PKI, when the cluster uses TLS.
    pub fn pki(&self) -> Option<&Pki> {
        self.tls.as_ref()
    }

    /// Every member's client URL, comma-separated (etcdctl's `--endpoints`).
    pub fn endpoints(&self) -> String {
        self.members
            .iter()
            .map(Member::client_url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Runs etcdctl against every member's endpoint (etcdctl picks one, and fails over).
    pub fn etcdctl(&self, args: &[&str]) -> Result<CmdOutput, Error> {
        self.members[0].etcdctl_at(&self.endpoints(), args)
    }

    /// Runs etcdctl against the running members only.
    pub fn etcdctl_running(&mut self, args: &[&str]) -> Result<CmdOutput, Error> {
        let mut urls = Vec::new();
        for m in &mut self.members {
            if m.is_running() {
                urls.push(m.client_url());
            }
        }
        self.members[0].etcdctl_at(&urls.join(","), args)
    }

    /// The index of the member that says it leads, among running members that answer and
    /// agree on a leader; `None` if they do not agree (yet).
    pub fn leader(&mut self) -> Option<usize> {
        let mut ids = Vec::new();
        let mut leaders = Vec::new();
        for i in 0..self.members.len() {
            if !self.members[i].is_running() {
                continue;
            }
            let (id, leader) = self.status_ids(i)?;
            ids.push((i, id));
            leaders.push(leader);
        }
        let first = *leaders.first()?;
        if first == 0 || leaders.iter().any(|&l| l != first) {
            return None;
        }
        ids.iter().find(|(_, id)| *id == first).map(|(i, _)| *i)
    }

    /// Waits (up to `timeout`) until the running members agree on a leader among them.
    pub fn wait_leader(&mut self, timeout: Duration) -> Result<usize, Error> {
        let mut found = None;
        wait_until("the running members to agree on a leader", timeout, || {
            found = self.leader();
            found.is_some()
        })?;
        Ok(found.expect("set when the wait succeeds"))
    }

    /// Member `i`'s own ID and the leader it knows, from `etcdctl endpoint status -w json`.
    pub fn status_ids(&self, i: usize) -> Option<(u64, u64)> {
        let out = self.members[i]
            .etcdctl(&[
                "--dial-timeout=1s",
                "--command-timeout=2s",
                "endpoint",
                "status",
                "-w",
                "json",
            ])
            .ok()?;
        if !out.success() {
            return None;
        }
        let v: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
        let status = &v.get(0)?["Status"];
        let id = status["header"]["member_id"].as_u64()?;
        let leader = status["leader"].as_u64()?;
        Some((id, leader))
    }

    /// Adds a member through `etcdctl member add` (as a learner with `learner`), then starts
    /// it with `--initial-cluster-state existing` and waits until it is ready. Returns its
    /// index.
    pub fn add_member(&mut self, learner: bool) -> Result<usize, Error> {
        let i = self.members.len();
        if i as u32 >= IPS_PER_CLUSTER {
            return Err(Error::Cluster(format!(
                "a cluster holds at most {IPS_PER_CLUSTER} members"
            )));
        }
        let name = format!("m{}", i + 1);
        let ip = Ipv4Addr::new(127, 0, 0, (self.base + i as u32) as u8);
        let (client, peer) = (free_port(ip)?, free_port(ip)?);
        let b = self.member_builder(&name, ip).ports(client, peer);
        let peer_url = b.peer_url(peer);
        let mut args = vec!["member", "add", name.as_str()];
        let urls = format!("--peer-urls={peer_url}");
        args.push(&urls);
        if learner {
            args.push("--learner");
        }
        let out = self.etcdctl(&args)?;
        if !out.success() {
            return Err(Error::Cluster(format!(
                "etcdctl member add failed: {out:?}"
            )));
        }
        let initial_cluster = out
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("ETCD_INITIAL_CLUSTER=\""))
            .map(|l| l.trim_end_matches('"').to_string())
            .ok_or_else(|| {
                Error::Cluster(format!(
                    "no ETCD_INITIAL_CLUSTER in member add's output: {out:?}"
                ))
            })?;
        let mut m = b.initial_cluster(initial_cluster).existing().prepare()?;
        m.spawn()?;
        m.wait_ready()?;
        self.members.push(m);
        Ok(i)
    }

    /// etcd's disaster recovery: stops every member, wipes its data dir, restores
    /// `snapshots[i]` into member `i` with the server's own restore command (`etcdctl snapshot
    /// restore`, or `cairn-server snapshot restore` with the same flags) and this cluster's
    /// names, peers and token, then starts them all again and waits until each is ready.
    pub fn restore_snapshots(&mut self, snapshots: &[&std::path::Path]) -> Result<(), Error> {
        let initial_cluster = self
            .members
            .iter()
            .map(|m| format!("{}={}", m.name(), m.peer_url()))
            .collect::<Vec<_>>()
            .join(",");
        for m in &mut self.members {
            m.stop()?;
        }
        for (m, snapshot) in self.members.iter().zip(snapshots) {
            let data_dir = m.data_dir().to_path_buf();
            std::fs::remove_dir_all(&data_dir)
                .map_err(|e| Error::io(format!("wiping {}", data_dir.display()), e))?;
            let mut restore = match self.kind {
                Kind::Etcd => {
                    let mut etcdctl = std::process::Command::new("etcdctl");
                    etcdctl.env("ETCDCTL_API", "3");
                    etcdctl
                }
                Kind::Cairn => std::process::Command::new(
                    self.cairn_binary.clone().ok_or(Error::NoCairnBinary)?,
                ),
            };
            restore
                .args(["snapshot", "restore"])
                .arg(snapshot)
                .args(["--name", m.name(), "--initial-cluster", &initial_cluster])
                .args(["--initial-cluster-token", &self.token])
                .args(["--initial-advertise-peer-urls", &m.peer_url()])
                .arg("--data-dir")
                .arg(&data_dir);
            let command = format!("{restore:?}");
            let out = crate::run_command(restore, Duration::from_secs(120))?;
            if !out.success() {
                return Err(Error::Setup {
                    command,
                    code: out.code,
                    stderr: out.stderr,
                });
            }
        }
        for m in &mut self.members {
            m.spawn()?;
        }
        for m in &mut self.members {
            m.wait_ready()?;
        }
        Ok(())
    }

    /// The member ID of member `i` (it must be running).
    pub fn member_id(&self, i: usize) -> Result<u64, Error> {
        self.status_ids(i)
            .map(|(id, _)| id)
            .ok_or_else(|| Error::Cluster(format!("member {i} did not report its status")))
    }

    /// Removes member `id` from the cluster through etcdctl, asking the running members other
    /// than `id` itself (a member that applies its own removal stops, and may do so before it
    /// answers).
    pub fn remove_member(&mut self, id: u64) -> Result<CmdOutput, Error> {
        let hex = format!("{id:x}");
        let mut urls = Vec::new();
        for i in 0..self.members.len() {
            if !self.members[i].is_running() {
                continue;
            }
            if self.status_ids(i).is_some_and(|(me, _)| me == id) {
                continue;
            }
            urls.push(self.members[i].client_url());
        }
        self.members[0].etcdctl_at(&urls.join(","), &["member", "remove", &hex])
    }
}
