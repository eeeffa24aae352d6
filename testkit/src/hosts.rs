//! Machines to provision, on one machine: one real sshd per host on its own loopback address,
//! each in its own mount namespace where /etc/cairn, /var/lib/cairn, /usr/local/bin,
//! /etc/systemd/system, /run and /var/log are that host's directories, and Debian's Python
//! `systemctl` (first on the PATH through /usr/local/bin) runs the units. The provisioner's
//! tests, its benchmark and the `cairn` commands that work over SSH all need the same hosts,
//! so they live here. Dropping [`Hosts`] kills every process in each host's namespace (sshd,
//! sessions, and the services systemctl started), also when a test fails.
//!
//! Needs root (mount namespaces, binding the host paths); sshd, sudo and the systemctl script
//! come from Debian's packages and are fetched once when missing.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use rustix::process::{kill_process, Pid, Signal};

use crate::{free_port, run_command, wait_until, Daemon, Error};

/// How long an sshd may take to listen.
const SSHD_READY: Duration = Duration::from_secs(20);

/// The uid of the extra user [`Hosts::start_with_user`] adds to each host.
pub const USER_UID: u32 = 4242;

/// The directories each host has of its own, as (host path, directory under the host's root).
pub const MOUNTS: [(&str, &str); 6] = [
    ("/etc/cairn", "etc-cairn"),
    ("/var/lib/cairn", "var-lib-cairn"),
    ("/usr/local/bin", "usr-local-bin"),
    ("/etc/systemd/system", "etc-systemd-system"),
    ("/run", "run"),
    ("/var/log", "var-log"),
];

/// One test host.
#[derive(Debug)]
pub struct TestHost {
    /// Its member name (`m1`, `m2`, ...).
    pub name: String,
    /// The loopback address its sshd listens on, and its members will.
    pub address: Ipv4Addr,
    /// Its sshd's port.
    pub ssh_port: u16,
    /// The host's own directories live under here.
    pub root: PathBuf,
    sshd: Option<Daemon>,
}

impl TestHost {
    /// A path as the host sees it (`/etc/cairn/cairn.env`), on this machine. Panics for a
    /// path outside the host's own directories ([`MOUNTS`]): that is the test's mistake.
    pub fn path(&self, path: &str) -> PathBuf {
        let (mount, dir) = MOUNTS
            .iter()
            .find(|(m, _)| path.starts_with(&format!("{m}/")))
            .unwrap_or_else(|| panic!("{path} is not in a host directory"));
        self.root.join(dir).join(&path[mount.len() + 1..])
    }

    fn sshd_pid(&self) -> Option<u32> {
        self.sshd.as_ref().map(Daemon::pid)
    }

    /// Pids of every process in this host's mount namespace.
    pub fn processes(&self) -> Vec<u32> {
        let Some(pid) = self.sshd_pid() else {
            return Vec::new();
        };
        let Ok(ns) = std::fs::read_link(format!("/proc/{pid}/ns/mnt")) else {
            return Vec::new();
        };
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|p| std::fs::read_link(format!("/proc/{p}/ns/mnt")).is_ok_and(|n| n == ns))
            .collect()
    }

    /// Pids of the host's processes running `program` (by `comm`).
    pub fn pids_of(&self, program: &str) -> Vec<u32> {
        let comm: String = program.chars().take(15).collect();
        self.processes()
            .into_iter()
            .filter(|p| {
                std::fs::read_to_string(format!("/proc/{p}/comm"))
                    .is_ok_and(|c| c.trim_end() == comm)
            })
            .collect()
    }

    /// Kills the host's processes running `program` (a member crashing, or killed half-way
    /// through a join) and waits until they are gone.
    pub fn kill(&self, program: &str, timeout: Duration) -> Result<(), Error> {
        for pid in self.pids_of(program) {
            if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
                let _ = kill_process(pid, Signal::KILL);
            }
        }
        wait_until(
            &format!("{program} on {} to die", self.name),
            timeout,
            || self.pids_of(program).is_empty(),
        )
    }

    /// Kills every process of the host, sshd last.
    fn kill_all(&mut self) {
        let sshd = self.sshd_pid();
        for pid in self.processes() {
            if Some(pid) != sshd {
                // It may have exited since it was listed.
                if let Some(pid) = i32::try_from(pid).ok().and_then(Pid::from_raw) {
                    let _ = kill_process(pid, Signal::KILL);
                }
            }
        }
        self.sshd = None;
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// The test hosts, an SSH client key and an empty known_hosts.
#[derive(Debug)]
pub struct Hosts {
    /// The hosts, m1 first.
    pub hosts: Vec<TestHost>,
    /// The private key every host authorizes (for root, and the extra user if any).
    pub identity: PathBuf,
    /// The authorized_keys file every host reads (for root and the extra user): append a
    /// public key to let it in.
    pub authorized_keys: PathBuf,
    /// A known_hosts path, absent until a client records the hosts' keys.
    pub known_hosts: PathBuf,
    /// Everything of the hosts (and the inventory [`Hosts::write_inventory`] writes) is in
    /// here, removed on drop.
    pub dir: tempfile::TempDir,
}

impl Hosts {
    /// `n` hosts on 127.0.0.11 onwards, named m1, m2, ..., logged in to as root.
    pub fn start(n: u8) -> Result<Self, Error> {
        Self::start_with_user(n, None)
    }

    /// Like [`Hosts::start`]; with `user`, each host also has that user (its own
    /// /etc/passwd, /etc/shadow and /etc/group in its namespace) with passwordless sudo (its
    /// own /etc/sudoers.d), so nothing of the machine's user database changes.
    pub fn start_with_user(n: u8, user: Option<&str>) -> Result<Self, Error> {
        let sshd = sshd()?;
        if user.is_some() {
            sudo()?;
        }
        let systemctl = python_systemctl()?;
        let dir = tempfile::tempdir().map_err(|e| Error::io("creating the hosts' directory", e))?;
        let identity = dir.path().join("id_ed25519");
        keygen(&identity)?;
        let authorized = dir.path().join("authorized_keys");
        copy(&identity.with_extension("pub"), &authorized)?;
        for (mount, _) in MOUNTS {
            mount_point(Path::new(mount))?;
        }
        // One sshd port for every host, so an inventory's `[ssh] port` reaches them all (as it
        // does a host that left the inventory and is reached from the member list).
        let addresses: Vec<Ipv4Addr> = (0..n).map(|i| Ipv4Addr::new(127, 0, 0, 11 + i)).collect();
        let ssh_port = common_free_port(&addresses)?;
        let mut hosts = Vec::new();
        for i in 0..n {
            let address = addresses[usize::from(i)];
            let name = format!("m{}", i + 1);
            let root = dir.path().join(&name);
            for (_, sub) in MOUNTS {
                create_dir(&root.join(sub))?;
            }
            create_dir(&root.join("run/sshd"))?;
            copy(&systemctl, &root.join("usr-local-bin/systemctl"))?;
            let host_key = root.join("ssh_host_ed25519_key");
            keygen(&host_key)?;
            let config = root.join("sshd_config");
            write(
                &config,
                format!(
                    "ListenAddress {address}:{ssh_port}\nHostKey {}\nPidFile {}\nAuthorizedKeysFile {}\n\
                     PermitRootLogin prohibit-password\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n\
                     Subsystem sftp internal-sftp\n",
                    host_key.display(),
                    root.join("sshd.pid").display(),
                    authorized.display()
                ),
            )?;
            let mut binds: Vec<(PathBuf, &str)> = MOUNTS
                .iter()
                .map(|(mount, sub)| (root.join(sub), *mount))
                .collect();
            if let Some(user) = user {
                binds.extend(user_database(&root, user)?);
            }
            // Bind mounts from positional arguments: $1 onto $2, $3 onto $4, ...; sshd last.
            let mut script = String::new();
            for i in 0..binds.len() {
                script.push_str(&format!(
                    "mount --bind \"${{{}}}\" \"${{{}}}\" && ",
                    2 * i + 1,
                    2 * i + 2
                ));
            }
            script.push_str(&format!(
                "exec {} -D -e -f \"${{{}}}\"",
                sshd.display(),
                2 * binds.len() + 1
            ));
            let mut cmd = Command::new("unshare");
            cmd.args(["-m", "--propagation", "private", "sh", "-c", &script, "sh"]);
            for (from, onto) in &binds {
                cmd.arg(from).arg(onto);
            }
            cmd.arg(&config);
            let daemon = Daemon::spawn(cmd, &root.join("sshd.log"))?;
            hosts.push(TestHost {
                name,
                address,
                ssh_port,
                root,
                sshd: Some(daemon),
            });
        }
        for h in &hosts {
            wait_until(&format!("sshd of {} to listen", h.name), SSHD_READY, || {
                TcpStream::connect((h.address, h.ssh_port)).is_ok()
            })
            .map_err(|_| Error::SshdNotListening {
                host: h.name.clone(),
                timeout: SSHD_READY,
                log: std::fs::read_to_string(h.root.join("sshd.log")).unwrap_or_default(),
            })?;
        }
        Ok(Self {
            hosts,
            authorized_keys: authorized,
            known_hosts: dir.path().join("known_hosts"),
            identity,
            dir,
        })
    }

    /// A port free on every host's address, for the members' client, peer and metrics ports.
    pub fn common_free_port(&self) -> Result<u16, Error> {
        let addresses: Vec<Ipv4Addr> = self.hosts.iter().map(|h| h.address).collect();
        common_free_port(&addresses)
    }

    /// Writes `cairn.toml` for these hosts into [`Hosts::dir`] and returns its path: a TLS
    /// cluster named `it` of `server` (`cairn` or `etcd`) pushing `binary`, ports free on
    /// every host, the hosts' key, known_hosts and their one sshd port, fast raft timings (50 ms heartbeats, 500 ms
    /// elections) so members elect quickly on loopback; `extra` is appended to `[cluster]`.
    pub fn write_inventory(
        &self,
        server: &str,
        binary: &Path,
        extra: &str,
    ) -> Result<PathBuf, Error> {
        let mut ports = BTreeSet::new();
        while ports.len() < 3 {
            ports.insert(self.common_free_port()?);
        }
        let ports: Vec<u16> = ports.into_iter().collect();
        let (client, peer, metrics) = (ports[0], ports[1], ports[2]);
        let mut text = format!(
            "[cluster]\nname = \"it\"\nserver = \"{server}\"\nbinary = \"{}\"\ntoken = \"it-1\"\n\
             client_port = {client}\npeer_port = {peer}\nmetrics_port = {metrics}\n\
             heartbeat_interval_ms = 50\nelection_timeout_ms = 500\n{extra}\n\
             [ssh]\nidentity_file = \"{}\"\nknown_hosts = \"{}\"\nport = {}\n\n[tls]\ndir = \"pki\"\n",
            binary.display(),
            self.identity.display(),
            self.known_hosts.display(),
            self.hosts.first().map_or(22, |h| h.ssh_port),
        );
        for h in &self.hosts {
            text.push_str(&format!(
                "\n[[hosts]]\nname = \"{}\"\naddress = \"{}\"\nssh_port = {}\n",
                h.name, h.address, h.ssh_port
            ));
        }
        let path = self.dir.path().join("cairn.toml");
        write(&path, text)?;
        Ok(path)
    }

    /// Every file under the hosts' directories with its contents (sshd's own files aside), to
    /// compare before and after a run that must change nothing.
    pub fn snapshot(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut files = Vec::new();
        for h in &self.hosts {
            for dir in ["etc-cairn", "usr-local-bin", "etc-systemd-system"] {
                collect(&h.root.join(dir), &mut files);
            }
        }
        files.sort();
        files
    }
}

/// A port free on every address of `addresses` right now.
fn common_free_port(addresses: &[Ipv4Addr]) -> Result<u16, Error> {
    let first = addresses.first().copied().unwrap_or(Ipv4Addr::LOCALHOST);
    loop {
        let port = free_port(first)?;
        if addresses
            .iter()
            .all(|a| TcpListener::bind((*a, port)).is_ok())
        {
            return Ok(port);
        }
    }
}

/// Makes sure `path` exists on the machine so a namespace can mount a host's directory over
/// it; an empty directory outside the namespaces.
pub fn mount_point(path: &Path) -> Result<(), Error> {
    create_dir(path)
}

fn create_dir(path: &Path) -> Result<(), Error> {
    std::fs::create_dir_all(path).map_err(|e| Error::io(format!("creating {}", path.display()), e))
}

fn copy(from: &Path, to: &Path) -> Result<(), Error> {
    std::fs::copy(from, to)
        .map(drop)
        .map_err(|e| Error::io(format!("copying {} to {}", from.display(), to.display()), e))
}

fn write(path: &Path, contents: impl AsRef<[u8]>) -> Result<(), Error> {
    std::fs::write(path, contents).map_err(|e| Error::io(format!("writing {}", path.display()), e))
}

fn chmod(path: &Path, mode: u32) -> Result<(), Error> {
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))
        .map_err(|e| Error::io(format!("chmod {mode:o} {}", path.display()), e))
}

fn collect(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let path = e.path();
        if path.is_dir() {
            collect(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
}

/// A copy of the machine's /etc/passwd, /etc/shadow and /etc/group with `user` added
/// (home /tmp, no password), and a sudoers.d granting it passwordless sudo; as (file, where it
/// is bound) pairs.
fn user_database(root: &Path, user: &str) -> Result<Vec<(PathBuf, &'static str)>, Error> {
    let etc = root.join("etc-users");
    create_dir(&etc.join("sudoers.d"))?;
    let extra = [
        (
            "passwd",
            "/etc/passwd",
            format!("{user}:x:{USER_UID}:{USER_UID}:cairn test:/tmp:/bin/sh\n"),
            0o644,
        ),
        (
            "shadow",
            "/etc/shadow",
            format!("{user}:*:19000:0:99999:7:::\n"),
            0o640,
        ),
        (
            "group",
            "/etc/group",
            format!("{user}:x:{USER_UID}:\n"),
            0o644,
        ),
    ];
    let mut binds = Vec::new();
    for (name, system, line, mode) in extra {
        let mut text = std::fs::read_to_string(system)
            .map_err(|e| Error::io(format!("reading {system}"), e))?;
        text.push_str(&line);
        let copy = etc.join(name);
        write(&copy, text)?;
        chmod(&copy, mode)?;
        binds.push((copy, system));
    }
    let rule = etc.join("sudoers.d/cairn-test");
    write(&rule, format!("{user} ALL=(ALL) NOPASSWD: ALL\n"))?;
    chmod(&rule, 0o440)?;
    binds.push((etc.join("sudoers.d"), "/etc/sudoers.d"));
    Ok(binds)
}

/// Runs a setup command; anything but exit code 0 is an error with its stderr.
fn setup(cmd: Command, timeout: Duration) -> Result<(), Error> {
    let command = format!("{cmd:?}");
    let out = run_command(cmd, timeout)?;
    if out.success() {
        Ok(())
    } else {
        Err(Error::Setup {
            command,
            code: out.code,
            stderr: out.stderr,
        })
    }
}

fn keygen(path: &Path) -> Result<(), Error> {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", "ed25519", "-N", "", "-C", "cairn-test", "-f"])
        .arg(path);
    setup(cmd, Duration::from_secs(30))
}

/// Installs a Debian package once per process when `marker` is missing.
fn apt_install(package: &str, marker: &Path) -> Result<(), Error> {
    if marker.exists() {
        return Ok(());
    }
    let mut cmd = Command::new("apt-get");
    cmd.args(["install", "-y", "--no-install-recommends", package])
        .env("DEBIAN_FRONTEND", "noninteractive");
    setup(cmd, Duration::from_secs(600))
}

/// Tests start hosts in parallel: one of them installs, the others wait for it.
static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Debian's sudo, installed when missing.
fn sudo() -> Result<(), Error> {
    let _one = INSTALLING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    apt_install("sudo", Path::new("/usr/bin/sudo"))
}

/// Debian's sshd, installed when missing.
fn sshd() -> Result<PathBuf, Error> {
    let sshd = PathBuf::from("/usr/sbin/sshd");
    let _one = INSTALLING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    apt_install("openssh-server", &sshd)?;
    Ok(sshd)
}

/// Debian's Python systemctl, unpacked (never installed: that would remove systemd) into a
/// cache directory once per machine.
fn python_systemctl() -> Result<PathBuf, Error> {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    if let Some(path) = PATH.get() {
        return Ok(path.clone());
    }
    let _one = INSTALLING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let cache = std::env::temp_dir().join("cairn-test-systemctl");
    let script = cache.join("root/usr/bin/systemctl");
    if !script.exists() {
        create_dir(&cache)?;
        let mut download = Command::new("apt-get");
        download.args(["download", "systemctl"]).current_dir(&cache);
        setup(download, Duration::from_secs(300))?;
        let deb = std::fs::read_dir(&cache)
            .map_err(|e| Error::io(format!("listing {}", cache.display()), e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == "deb"))
            .ok_or_else(|| {
                Error::io(
                    format!(
                        "apt-get download systemctl left no .deb in {}",
                        cache.display()
                    ),
                    std::io::ErrorKind::NotFound.into(),
                )
            })?;
        let mut unpack = Command::new("dpkg-deb");
        unpack.arg("-x").arg(&deb).arg(cache.join("root"));
        setup(unpack, Duration::from_secs(60))?;
    }
    Ok(PATH.get_or_init(|| script).clone())
}
