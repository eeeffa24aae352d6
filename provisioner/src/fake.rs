//! An in-memory cluster for unit tests: hosts with files and a unit, and a probe whose answers
//! follow the units (a started member needs a few questions before it answers, a restarted
//! leader hands leadership to another running member). Every write and systemctl call is
//! recorded, and a restart while another member is not healthy is recorded as a violation.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::host::{Exec, Host, ServiceState, Systemctl, WriteFile};
use crate::probe::{ClusterMember, MemberStatus, Probe};
use crate::Error;

/// One machine.
#[derive(Clone, Debug, Default)]
pub(crate) struct Machine {
    pub files: BTreeMap<String, (Vec<u8>, u32)>,
    pub dirs: Vec<String>,
    pub active: bool,
    pub enabled: bool,
    /// The backup daemon's unit.
    pub daemon_active: bool,
    pub daemon_enabled: bool,
    /// Status questions left before a (re)started member answers.
    pub warming: u32,
    pub unreachable: bool,
    /// What every program run on it (`test -d` aside, answered from `dirs`) returns.
    pub exec_reply: Exec,
    /// Its data directory has data (a started member writes some).
    pub data: bool,
}

/// Something a host was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    Write(String, String),
    Append(String, String),
    Systemctl(String, Systemctl),
    /// systemctl on the backup daemon's unit.
    Daemon(String, Systemctl),
    MoveLeader(String, String),
    MemberAdd(String),
    MemberRemove(u64),
    Remove(String, String),
    Run(String, Vec<String>),
}

#[derive(Debug, Default)]
pub(crate) struct World {
    pub machines: HashMap<String, Machine>,
    pub order: Vec<String>,
    pub leader: Option<String>,
    pub events: Vec<Event>,
    pub violations: Vec<String>,
    /// Questions a member needs after a start before it answers.
    pub warmup: u32,
    /// The member list once a membership change was made (before: the active machines).
    pub members: Option<Vec<ClusterMember>>,
}

impl World {
    fn healthy(&self, name: &str) -> bool {
        self.machines
            .get(name)
            .is_some_and(|m| m.active && m.warming == 0 && !m.unreachable)
    }
}

/// A shared [`World`].
#[derive(Clone, Debug, Default)]
pub(crate) struct Fake(pub Arc<Mutex<World>>);

impl Fake {
    pub fn new(names: &[&str], warmup: u32) -> Self {
        let world = World {
            machines: names
                .iter()
                .map(|n| (n.to_string(), Machine::default()))
                .collect(),
            order: names.iter().map(|n| n.to_string()).collect(),
            warmup,
            ..World::default()
        };
        Self(Arc::new(Mutex::new(world)))
    }

    /// Every host answers programs run on it with exit code `code` and `stderr`.
    pub fn reply_to_runs(&self, code: u32, stderr: &[u8]) {
        for m in self.world().machines.values_mut() {
            m.exec_reply.code = Some(code);
            m.exec_reply.stderr = stderr.to_vec();
        }
    }

    pub fn world(&self) -> MutexGuard<'_, World> {
        self.0.lock().expect("world")
    }

    pub fn host(&self, name: &str) -> FakeHost {
        FakeHost {
            name: name.to_string(),
            fake: self.clone(),
        }
    }
}

/// A host of the fake world.
#[derive(Clone, Debug)]
pub(crate) struct FakeHost {
    name: String,
    fake: Fake,
}

impl FakeHost {
    fn machine<T>(&self, f: impl FnOnce(&mut Machine) -> T) -> Result<T, Error> {
        let mut world = self.fake.world();
        let m = world.machines.get_mut(&self.name).expect("machine");
        if m.unreachable {
            return Err(Error::Connect {
                host: self.name.clone(),
                addr: format!("{}:22", self.name),
                source: std::io::ErrorKind::ConnectionRefused.into(),
            });
        }
        Ok(f(m))
    }
}

impl Host for FakeHost {
    fn name(&self) -> &str {
        &self.name
    }

    async fn file_sha256(&self, path: &str) -> Result<Option<String>, Error> {
        self.machine(|m| m.files.get(path).map(|(c, _)| crate::plan::sha256_hex(c)))
    }

    async fn read_file(&self, path: &str) -> Result<Option<Vec<u8>>, Error> {
        self.machine(|m| m.files.get(path).map(|(c, _)| c.clone()))
    }

    async fn write_file(&self, file: WriteFile<'_>) -> Result<(), Error> {
        self.machine(|m| {
            m.files
                .insert(file.path.to_string(), (file.contents.to_vec(), file.mode))
        })?;
        let mut world = self.fake.world();
        world
            .events
            .push(Event::Write(self.name.clone(), file.path.to_string()));
        Ok(())
    }

    async fn create_dir(&self, path: &str, _mode: u32) -> Result<(), Error> {
        self.machine(|m| m.dirs.push(path.to_string()))
    }

    async fn run(&self, argv: &[&str]) -> Result<Exec, Error> {
        if let ["test", "-d", dir] = argv {
            let found = self.machine(|m| m.dirs.iter().any(|d| d == dir))?;
            return Ok(Exec {
                code: Some(if found { 0 } else { 1 }),
                ..Exec::default()
            });
        }
        let reply = self.machine(|m| m.exec_reply.clone())?;
        let argv = argv.iter().map(|a| a.to_string()).collect();
        self.fake
            .world()
            .events
            .push(Event::Run(self.name.clone(), argv));
        Ok(reply)
    }

    async fn append_file(&self, path: &str, contents: &[u8]) -> Result<(), Error> {
        self.machine(|m| {
            m.files
                .entry(path.to_string())
                .or_insert_with(|| (Vec::new(), 0o600))
                .0
                .extend_from_slice(contents)
        })?;
        let event = Event::Append(self.name.clone(), path.to_string());
        self.fake.world().events.push(event);
        Ok(())
    }

    async fn has_entries(&self, _path: &str) -> Result<bool, Error> {
        self.machine(|m| m.data)
    }

    async fn remove_file(&self, path: &str) -> Result<(), Error> {
        self.machine(|m| m.files.remove(path))?;
        let event = Event::Remove(self.name.clone(), path.to_string());
        self.fake.world().events.push(event);
        Ok(())
    }

    async fn remove_dir_all(&self, path: &str) -> Result<(), Error> {
        self.machine(|m| {
            if m.dirs.iter().any(|d| d == path) {
                m.data = false;
            }
            let prefix = format!("{path}/");
            m.files.retain(|f, _| !f.starts_with(&prefix));
        })?;
        let event = Event::Remove(self.name.clone(), path.to_string());
        self.fake.world().events.push(event);
        Ok(())
    }

    async fn service_state(&self, unit: &str) -> Result<ServiceState, Error> {
        let daemon = unit == crate::layout::BACKUPD_UNIT_NAME;
        self.machine(|m| match daemon {
            true => ServiceState {
                active: m.daemon_active,
                enabled: m.daemon_enabled,
            },
            false => ServiceState {
                active: m.active,
                enabled: m.enabled,
            },
        })
    }

    async fn systemctl(&self, action: Systemctl, unit: &str) -> Result<(), Error> {
        self.machine(|_| ())?;
        if unit == crate::layout::BACKUPD_UNIT_NAME && action != Systemctl::DaemonReload {
            self.machine(|m| match action {
                Systemctl::Enable => m.daemon_enabled = true,
                Systemctl::Disable => m.daemon_enabled = false,
                Systemctl::Start | Systemctl::Restart => m.daemon_active = true,
                Systemctl::Stop => m.daemon_active = false,
                Systemctl::DaemonReload => {}
            })?;
            let event = Event::Daemon(self.name.clone(), action);
            self.fake.world().events.push(event);
            return Ok(());
        }
        let mut world = self.fake.world();
        world
            .events
            .push(Event::Systemctl(self.name.clone(), action));
        let warmup = world.warmup;
        if action == Systemctl::Restart {
            let others_down: Vec<String> = world
                .order
                .iter()
                .filter(|n| **n != self.name && !world.healthy(n))
                .cloned()
                .collect();
            if !others_down.is_empty() {
                let v = format!("{} restarted while {others_down:?} not healthy", self.name);
                world.violations.push(v);
            }
        }
        let m = world.machines.get_mut(&self.name).expect("machine");
        match action {
            Systemctl::Enable => m.enabled = true,
            Systemctl::Start | Systemctl::Restart => {
                m.active = true;
                m.warming = warmup;
                m.data = true;
            }
            Systemctl::Stop => m.active = false,
            Systemctl::Disable => m.enabled = false,
            Systemctl::DaemonReload => {}
        }
        // A restarted leader hands over to another running member.
        if matches!(action, Systemctl::Restart | Systemctl::Stop)
            && world.leader.as_deref() == Some(&self.name)
        {
            let next = world
                .order
                .iter()
                .find(|n| **n != self.name && world.healthy(n))
                .cloned();
            world.leader = next;
        }
        Ok(())
    }
}

/// The probe of the fake world.
pub(crate) struct FakeProbe(pub Fake);

impl FakeProbe {
    fn id(world: &World, name: &str) -> u64 {
        world
            .order
            .iter()
            .position(|n| n == name)
            .map_or(0, |i| i as u64 + 1)
    }

    /// Member `name`'s peer URL: the inventories of the unit tests have `10.0.0.<id>` hosts.
    pub fn peer_url(world: &World, name: &str) -> String {
        format!("http://10.0.0.{}:2380", Self::id(world, name))
    }

    fn list(world: &World) -> Vec<ClusterMember> {
        if let Some(members) = &world.members {
            return members
                .iter()
                .map(|m| {
                    let name = world
                        .order
                        .iter()
                        .find(|n| {
                            m.has_peer_url(&Self::peer_url(world, n))
                                && world.machines.get(*n).is_some_and(|x| x.active)
                        })
                        .cloned()
                        .unwrap_or_else(|| m.name.clone());
                    // A running member has published its client URL.
                    let client_urls = if world.machines.get(&name).is_some_and(|x| x.active) {
                        vec![format!("https://{name}:2379")]
                    } else {
                        m.client_urls.clone()
                    };
                    ClusterMember {
                        name,
                        client_urls,
                        ..m.clone()
                    }
                })
                .collect();
        }
        // Before any membership change: every machine that ever ran is a member.
        world
            .order
            .iter()
            .filter(|n| world.machines.get(*n).is_some_and(|m| m.active || m.data))
            .map(|n| ClusterMember {
                id: Self::id(world, n),
                name: n.clone(),
                peer_urls: vec![Self::peer_url(world, n)],
                client_urls: if world.machines.get(n).is_some_and(|m| m.active) {
                    vec![format!("https://{n}:2379")]
                } else {
                    Vec::new()
                },
            })
            .collect()
    }
}

impl Probe for FakeProbe {
    async fn status(&self, member: &str) -> Result<MemberStatus, Error> {
        let mut world = self.0.world();
        let m = world.machines.get_mut(member).expect("machine");
        if !m.active || m.unreachable {
            return Err(Error::Timeout {
                host: member.to_string(),
                what: "status".into(),
                after: std::time::Duration::ZERO,
            });
        }
        if m.warming > 0 {
            m.warming -= 1;
            return Err(Error::Timeout {
                host: member.to_string(),
                what: "status (warming up)".into(),
                after: std::time::Duration::ZERO,
            });
        }
        if world.leader.is_none() {
            world.leader = Some(member.to_string());
        }
        let leader = world.leader.clone().unwrap_or_default();
        Ok(MemberStatus {
            member_id: Self::id(&world, member),
            leader_id: Self::id(&world, &leader),
            revision: 1,
            db_size: 4096,
            version: "3.4.23".into(),
            raft_term: 2,
        })
    }

    async fn move_leader(&self, leader: &str, to: u64) -> Result<(), Error> {
        let mut world = self.0.world();
        assert_eq!(
            world.leader.as_deref(),
            Some(leader),
            "move-leader sent to a follower"
        );
        let name = world
            .order
            .get(to as usize - 1)
            .cloned()
            .expect("member id");
        world
            .events
            .push(Event::MoveLeader(leader.to_string(), name.clone()));
        world.leader = Some(name);
        Ok(())
    }

    async fn member_list(&self, member: &str) -> Result<Vec<ClusterMember>, Error> {
        let world = self.0.world();
        if !world.healthy(member) {
            return Err(Error::Timeout {
                host: member.to_string(),
                what: "member list".into(),
                after: std::time::Duration::ZERO,
            });
        }
        Ok(Self::list(&world))
    }

    async fn member_add(&self, _via: &str, peer_url: &str) -> Result<ClusterMember, Error> {
        let mut world = self.0.world();
        let mut members = Self::list(&world);
        let name = world
            .order
            .iter()
            .find(|n| Self::peer_url(&world, n) == peer_url)
            .cloned()
            .unwrap_or_default();
        let member = ClusterMember {
            id: Self::id(&world, &name),
            name: String::new(),
            peer_urls: vec![peer_url.to_string()],
            client_urls: Vec::new(),
        };
        members.push(member.clone());
        world.members = Some(members);
        world.events.push(Event::MemberAdd(name));
        Ok(member)
    }

    async fn member_remove(&self, _via: &str, id: u64) -> Result<(), Error> {
        let mut world = self.0.world();
        let mut members = Self::list(&world);
        members.retain(|m| m.id != id);
        world.members = Some(members);
        world.events.push(Event::MemberRemove(id));
        Ok(())
    }
}
