//! Test hosts: one real sshd per host on its own loopback address, each in its own mount
//! namespace where /etc/cairn, /var/lib/cairn, /usr/local/bin, /etc/systemd/system, /run and
//! /var/log are that host's directories, and Debian's Python `systemctl` (first on the PATH
//! through /usr/local/bin) runs the units. Dropping [`Hosts`] kills every process in each
//! host's namespace (sshd, sessions, and the services systemctl started), also when a test
//! fails.

use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use cairn_testkit::{free_port, run_command, wait_until, Daemon};

use crate::mount_point;

/// The directories each host has of its own, as (host path, directory under the host's root).
pub(crate) const MOUNTS: [(&str, &str); 6] = [
    ("/etc/cairn", "etc-cairn"),
    ("/var/lib/cairn", "var-lib-cairn"),
    ("/usr/local/bin", "usr-local-bin"),
    ("/etc/systemd/system", "etc-systemd-system"),
    ("/run", "run"),
    ("/var/log", "var-log"),
];

/// One test host.
pub(crate) struct TestHost {
    pub name: String,
    pub address: Ipv4Addr,
    pub ssh_port: u16,
    /// The host's own directories live under here.
    pub root: PathBuf,
    sshd: Option<Daemon>,
}

impl TestHost {
    /// A path as the host sees it (`/etc/cairn/cairn.env`), on this machine.
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

    /// Kills every process of the host, sshd last.
    fn kill_all(&mut self) {
        let sshd = self.sshd_pid();
        for pid in self.processes() {
            if Some(pid) != sshd {
                // It may have exited since it was listed.
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .stderr(std::process::Stdio::null())
                    .status();
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
pub(crate) struct Hosts {
    pub hosts: Vec<TestHost>,
    pub identity: PathBuf,
    pub known_hosts: PathBuf,
    pub dir: tempfile::TempDir,
}

impl Hosts {
    /// `n` hosts on 127.0.0.11 onwards, named m1, m2, ..., logged in to as root.
    pub fn start(n: u8) -> Self {
        Self::start_with_user(n, None)
    }

    /// Like [`Hosts::start`]; with `user`, each host also has that user (its own
    /// /etc/passwd, /etc/shadow and /etc/group in its namespace) with passwordless sudo (its
    /// own /etc/sudoers.d), so nothing of the machine's user database changes.
    pub fn start_with_user(n: u8, user: Option<&str>) -> Self {
        let sshd = sshd();
        if user.is_some() {
            sudo();
        }
        let systemctl = python_systemctl();
        let dir = tempfile::tempdir().expect("tempdir");
        let identity = dir.path().join("id_ed25519");
        keygen(&identity);
        let authorized = dir.path().join("authorized_keys");
        std::fs::copy(identity.with_extension("pub"), &authorized).expect("authorized_keys");
        for (mount, _) in MOUNTS {
            mount_point(Path::new(mount));
        }
        let mut hosts = Vec::new();
        for i in 0..n {
            let address = Ipv4Addr::new(127, 0, 0, 11 + i);
            let name = format!("m{}", i + 1);
            let root = dir.path().join(&name);
            for (_, sub) in MOUNTS {
                std::fs::create_dir_all(root.join(sub)).expect("host dir");
            }
            std::fs::create_dir_all(root.join("run/sshd")).expect("/run/sshd");
            std::fs::copy(&systemctl, root.join("usr-local-bin/systemctl")).expect("systemctl");
            let host_key = root.join("ssh_host_ed25519_key");
            keygen(&host_key);
            let ssh_port = free_port(address).expect("free port");
            let config = root.join("sshd_config");
            std::fs::write(
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
            )
            .expect("sshd_config");
            let mut binds: Vec<(PathBuf, &str)> = MOUNTS
                .iter()
                .map(|(mount, sub)| (root.join(sub), *mount))
                .collect();
            if let Some(user) = user {
                binds.extend(user_database(&root, user));
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
            let daemon = Daemon::spawn(cmd, &root.join("sshd.log")).expect("start sshd");
            hosts.push(TestHost {
                name,
                address,
                ssh_port,
                root,
                sshd: Some(daemon),
            });
        }
        for h in &hosts {
            wait_until(
                &format!("sshd of {} to listen", h.name),
                Duration::from_secs(20),
                || TcpStream::connect((h.address, h.ssh_port)).is_ok(),
            )
            .unwrap_or_else(|e| {
                panic!(
                    "{e}\n{}",
                    std::fs::read_to_string(h.root.join("sshd.log")).unwrap_or_default()
                )
            });
        }
        Self {
            hosts,
            known_hosts: dir.path().join("known_hosts"),
            identity,
            dir,
        }
    }

    /// A port free on every host's address, for the members' client, peer and metrics ports.
    pub fn common_free_port(&self) -> u16 {
        loop {
            let port = free_port(self.hosts[0].address).expect("free port");
            if self
                .hosts
                .iter()
                .all(|h| TcpListener::bind((h.address, port)).is_ok())
            {
                return port;
            }
        }
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
fn user_database(root: &Path, user: &str) -> Vec<(PathBuf, &'static str)> {
    let etc = root.join("etc-users");
    std::fs::create_dir_all(etc.join("sudoers.d")).expect("etc-users");
    let extra = [
        (
            "passwd",
            format!("{user}:x:4242:4242:cairn test:/tmp:/bin/sh\n"),
        ),
        ("shadow", format!("{user}:*:19000:0:99999:7:::\n")),
        ("group", format!("{user}:x:4242:\n")),
    ];
    let mut binds = Vec::new();
    for (name, line) in extra {
        let system = format!("/etc/{name}");
        let mut text = std::fs::read_to_string(&system).unwrap_or_else(|e| panic!("{system}: {e}"));
        text.push_str(&line);
        let copy = etc.join(name);
        std::fs::write(&copy, text).expect("user database copy");
        let mode = if name == "shadow" { 0o640 } else { 0o644 };
        std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .expect("chmod");
        binds.push((
            copy,
            match name {
                "passwd" => "/etc/passwd",
                "shadow" => "/etc/shadow",
                _ => "/etc/group",
            },
        ));
    }
    let rule = etc.join("sudoers.d/cairn-test");
    std::fs::write(&rule, format!("{user} ALL=(ALL) NOPASSWD: ALL\n")).expect("sudoers");
    std::fs::set_permissions(&rule, std::os::unix::fs::PermissionsExt::from_mode(0o440))
        .expect("chmod sudoers");
    binds.push((etc.join("sudoers.d"), "/etc/sudoers.d"));
    binds
}

fn keygen(path: &Path) {
    let mut cmd = Command::new("ssh-keygen");
    cmd.args(["-q", "-t", "ed25519", "-N", "", "-C", "cairn-test", "-f"])
        .arg(path);
    let out = run_command(cmd, Duration::from_secs(30)).expect("ssh-keygen");
    assert!(out.success(), "ssh-keygen: {}", out.stderr);
}

/// Debian's sudo, installed when missing.
fn sudo() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        if !Path::new("/usr/bin/sudo").exists() {
            let mut cmd = Command::new("apt-get");
            cmd.args(["install", "-y", "--no-install-recommends", "sudo"])
                .env("DEBIAN_FRONTEND", "noninteractive");
            let out = run_command(cmd, Duration::from_secs(600)).expect("apt-get");
            assert!(out.success(), "apt-get install sudo: {}", out.stderr);
        }
    });
}

/// Debian's sshd, installed when missing.
fn sshd() -> PathBuf {
    let sshd = PathBuf::from("/usr/sbin/sshd");
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        if !sshd.exists() {
            let mut cmd = Command::new("apt-get");
            cmd.args(["install", "-y", "--no-install-recommends", "openssh-server"])
                .env("DEBIAN_FRONTEND", "noninteractive");
            let out = run_command(cmd, Duration::from_secs(600)).expect("apt-get");
            assert!(
                out.success(),
                "apt-get install openssh-server: {}",
                out.stderr
            );
        }
    });
    sshd
}

/// Debian's Python systemctl, unpacked (never installed: that would remove systemd) into a
/// cache directory once per machine.
fn python_systemctl() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let cache = std::env::temp_dir().join("cairn-test-systemctl");
        let script = cache.join("root/usr/bin/systemctl");
        if script.exists() {
            return script;
        }
        std::fs::create_dir_all(&cache).expect("cache dir");
        let mut download = Command::new("apt-get");
        download.args(["download", "systemctl"]).current_dir(&cache);
        let out = run_command(download, Duration::from_secs(300)).expect("apt-get download");
        assert!(out.success(), "apt-get download systemctl: {}", out.stderr);
        let deb = std::fs::read_dir(&cache)
            .expect("cache")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == "deb"))
            .expect("downloaded .deb");
        let mut unpack = Command::new("dpkg-deb");
        unpack.arg("-x").arg(&deb).arg(cache.join("root"));
        let out = run_command(unpack, Duration::from_secs(60)).expect("dpkg-deb");
        assert!(out.success(), "dpkg-deb -x: {}", out.stderr);
        script
    })
    .clone()
}
