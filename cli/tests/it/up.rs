//! `cairn up` as a newcomer runs it: a local 3-member TLS cluster of this workspace's
//! cairn-server, used with Debian's etcdctl over TLS, stopped by SIGINT with no process left;
//! started again on the same data; a member that cannot start stops the others; a killed
//! member is restarted, one that keeps failing is left down while the others serve; SIGKILL
//! of `cairn up` takes the members with it.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use cairn_testkit::{run_command, wait_until};

use crate::BIN;

/// How long the cluster may take to come up (debug builds on a loaded machine).
pub(crate) const UP_TIMEOUT: Duration = Duration::from_secs(120);
/// How long `cairn up` may take to stop its members.
pub(crate) const STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// A local inventory for three members on 127.0.0.1 with ports free right now.
pub(crate) fn inventory(dir: &Path) -> PathBuf {
    let listeners: Vec<TcpListener> = (0..6)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("free port"))
        .collect();
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().expect("port").port())
        .collect();
    let binary = cairn_testkit::cairn_server_binary().expect("cairn-server binary");
    let mut text = format!(
        "[cluster]\nname = \"up\"\nbinary = \"{}\"\ntoken = \"up-1\"\ntransport = \"local\"\ndata_dir = \"members\"\n\n[tls]\n",
        binary.display()
    );
    for (i, pair) in ports.chunks(2).enumerate() {
        text.push_str(&format!(
            "\n[[hosts]]\nname = \"m{}\"\naddress = \"127.0.0.1\"\nclient_port = {}\npeer_port = {}\n",
            i + 1,
            pair[0],
            pair[1]
        ));
    }
    let path = dir.join("cairn.toml");
    std::fs::write(&path, text).expect("write inventory");
    path
}

/// A running `cairn up`; dropping it interrupts it and, if that is not enough, kills it
/// (its members get SIGTERM when it dies).
pub(crate) struct Up {
    child: Child,
    log: PathBuf,
}

impl Up {
    pub(crate) fn start(inventory: &Path) -> Self {
        let log = inventory.with_extension(format!("{}.log", std::process::id()));
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = Command::new(BIN)
            .args(["up", "-i"])
            .arg(inventory)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("start cairn up");
        Self { child, log }
    }

    /// Started, and up: every member answers with a leader.
    pub(crate) fn ready(inventory: &Path) -> Self {
        let mut up = Self::start(inventory);
        up.wait_for("Ctrl-C stops every member");
        up
    }

    /// The client endpoints of the etcdctl line it printed.
    pub(crate) fn endpoints(&self) -> String {
        endpoints(&self.output())
    }

    pub(crate) fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for `text` in the output; fails with the output when `cairn up` exits first.
    pub(crate) fn wait_for(&mut self, text: &str) {
        let mut exited = None;
        let found = wait_until(&format!("cairn up to print {text:?}"), UP_TIMEOUT, || {
            exited = self.child.try_wait().expect("try_wait");
            exited.is_some() || self.output().contains(text)
        });
        assert!(
            found.is_ok() && self.output().contains(text),
            "{found:?} (exited: {exited:?})\n{}",
            self.output()
        );
    }

    /// The members' process IDs, from the `mN: pid P` lines.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.output()
            .lines()
            .filter_map(|l| l.split_once("| m")?.1.split_once(": pid ")?.1.parse().ok())
            .collect()
    }

    pub(crate) fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }

    pub(crate) fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let mut status = None;
        wait_until("cairn up to exit", timeout, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        })
        .unwrap_or_else(|e| panic!("{e}\n{}", self.output()));
        status.expect("exited")
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-INT", &self.child.id().to_string()])
                .status();
            let _ = wait_until("cairn up to exit", STOP_TIMEOUT, || {
                !matches!(self.child.try_wait(), Ok(None))
            });
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

pub(crate) fn gone(pids: &[u32]) -> bool {
    pids.iter()
        .all(|p| !Path::new(&format!("/proc/{p}")).exists())
}

pub(crate) fn etcdctl(dir: &Path, endpoints: &str, args: &[&str]) -> cairn_testkit::CmdOutput {
    let pki = dir.join("pki");
    let mut cmd = Command::new("etcdctl");
    cmd.env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoints}"))
        .arg(format!("--cacert={}", pki.join("ca.pem").display()))
        .arg(format!("--cert={}", pki.join("admin.pem").display()))
        .arg(format!("--key={}", pki.join("admin-key.pem").display()))
        .args(args);
    run_command(cmd, Duration::from_secs(30)).expect("run etcdctl")
}

/// The endpoints from the printed etcdctl command line.
pub(crate) fn endpoints(output: &str) -> String {
    output
        .split("--endpoints=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no etcdctl line in\n{output}"))
        .to_string()
}

#[test]
fn up_serves_etcdctl_over_tls_and_sigint_stops_every_member() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inventory = inventory(dir.path());

    let mut up = Up::ready(&inventory);
    let out = up.output();
    assert!(out.contains("certificates in"), "{out}");
    assert!(out.contains(": 8 issued, 0 reused"), "{out}");
    let endpoints = endpoints(&out);
    assert_eq!(endpoints.matches("https://127.0.0.1:").count(), 3, "{out}");
    let pids = up.pids();
    assert_eq!(pids.len(), 3, "{out}");
    // The files are what a provisioned host gets, under the member's directory standing in
    // for its `/`.
    let root = dir.path().join("members/m2");
    let env = std::fs::read_to_string(root.join("etc/cairn/cairn.env")).expect("env");
    assert!(env.contains("ETCD_NAME=m2\n"), "{env}");
    assert!(env.contains("ETCD_CLIENT_CERT_AUTH=true\n"), "{env}");
    assert!(
        env.contains("ETCD_PEER_CERT_FILE=/etc/cairn/pki/member.pem\n"),
        "{env}"
    );
    assert_eq!(
        std::fs::read(root.join("etc/cairn/pki/member.pem")).expect("pushed certificate"),
        std::fs::read(dir.path().join("pki/m2.pem")).expect("issued certificate")
    );
    let unit =
        std::fs::read_to_string(root.join("etc/systemd/system/cairn.service")).expect("unit");
    assert!(
        unit.contains("ExecStart=/usr/local/bin/cairn-server"),
        "{unit}"
    );
    assert!(root.join("usr/local/bin/cairn-server").is_file());

    // Up means every member is listed with its client URLs (the leader once was not yet).
    let list = etcdctl(dir.path(), &endpoints, &["member", "list", "-w", "json"]);
    assert!(list.success(), "{list:?}");
    let list: serde_json::Value = serde_json::from_str(&list.stdout).expect("json");
    let members = list["members"].as_array().expect("members");
    assert_eq!(members.len(), 3, "{list}");
    for m in members {
        assert!(
            m["clientURLs"].as_array().is_some_and(|u| !u.is_empty()),
            "{m} has no client URLs once up said the cluster is up"
        );
    }

    let put = etcdctl(dir.path(), &endpoints, &["put", "greeting", "hello"]);
    assert!(put.success(), "{put:?}");
    let status = etcdctl(
        dir.path(),
        &endpoints,
        &["endpoint", "status", "-w", "json"],
    );
    assert!(status.success(), "{status:?}");
    let rows: serde_json::Value = serde_json::from_str(&status.stdout).expect("json");
    let leaders: Vec<u64> = rows
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| r["Status"]["leader"].as_u64().expect("leader"))
        .collect();
    assert_eq!(leaders.len(), 3);
    assert!(leaders.iter().all(|&l| l != 0 && l == leaders[0]), "{rows}");
    // Linearizable reads on every member at once (etcdctl's multi-endpoint health check):
    // every member healthy, every time.
    for run in 0..10 {
        let health = etcdctl(dir.path(), &endpoints, &["endpoint", "health"]);
        let text = format!("{}{}", health.stdout, health.stderr);
        assert!(health.success(), "run {run}: {text}");
        assert_eq!(text.matches(" is healthy").count(), 3, "run {run}: {text}");
    }

    up.signal("-INT");
    let exit = up.wait_exit(STOP_TIMEOUT);
    let out = up.output();
    assert!(exit.success(), "{exit:?}\n{out}");
    for m in ["m1", "m2", "m3"] {
        assert!(out.contains(&format!("{m}: exit status: 0")), "{out}");
    }
    assert!(gone(&pids), "members left behind: {pids:?}");

    // Again: the same certificates and the same data.
    let mut again = Up::start(&inventory);
    again.wait_for("Ctrl-C stops every member");
    let out = again.output();
    assert!(out.contains(": 0 issued, 8 reused"), "{out}");
    let get = etcdctl(
        dir.path(),
        &endpoints,
        &["get", "greeting", "--print-value-only"],
    );
    assert_eq!((get.code, get.stdout.trim()), (0, "hello"), "{get:?}");
    let pids = again.pids();
    again.signal("-TERM");
    assert!(again.wait_exit(STOP_TIMEOUT).success());
    assert!(gone(&pids), "members left behind: {pids:?}");
}

/// m2's client port, as the inventory has it.
fn m2_client_port(inventory: &Path) -> u16 {
    let text = std::fs::read_to_string(inventory).expect("inventory");
    text.split("name = \"m2\"")
        .nth(1)
        .and_then(|r| r.split("client_port = ").nth(1))
        .and_then(|r| r.lines().next())
        .and_then(|p| p.parse().ok())
        .expect("m2's port")
}

#[test]
fn a_port_held_by_another_process_is_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inventory = inventory(dir.path());
    let port = m2_client_port(&inventory);
    let _taken = TcpListener::bind(("127.0.0.1", port)).expect("take m2's port");

    let mut up = Up::start(&inventory);
    let exit = up.wait_exit(UP_TIMEOUT);
    let out = up.output();
    assert_eq!(exit.code(), Some(2), "{out}");
    assert_eq!(
        out.lines().find(|l| l.starts_with("cairn: ")),
        Some(
            format!(
                "cairn: m2: 127.0.0.1:{port} (client_port) is in use by another process; stop it, or give m2 another client_port in the inventory: Address already in use (os error 98)"
            )
            .as_str()
        ),
        "{out}"
    );
    assert!(up.pids().is_empty(), "members were started: {out}");
    let members = dir.path().join("members");
    for m in ["m1", "m2", "m3"] {
        assert!(!members.join(m).exists(), "{m}'s files were written");
    }
    assert!(!dir.path().join("pki").exists(), "certificates were issued");
}

#[test]
fn a_member_that_cannot_start_stops_the_others() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inventory = inventory(dir.path());
    // m2's storage cannot be created: its place is taken by a file.
    let m2_data = dir.path().join("members/m2/data");
    std::fs::create_dir_all(&m2_data).expect("m2 data dir");
    std::fs::write(m2_data.join("member"), "not a directory").expect("block m2's storage");

    let mut up = Up::start(&inventory);
    // It gives up on its own once m2 fails.
    let exit = up.wait_exit(UP_TIMEOUT);
    let out = up.output();
    assert_eq!(exit.code(), Some(2), "{out}");
    let error = out
        .lines()
        .find(|l| l.starts_with("cairn: "))
        .unwrap_or_else(|| panic!("no error line in\n{out}"));
    assert!(error.starts_with("cairn: member m2 exited"), "{error}");
    let pids = up.pids();
    assert_eq!(pids.len(), 3, "{out}");
    assert!(gone(&pids), "members left behind: {pids:?}");
}

/// The client endpoints of the printed etcdctl line, and the health of each.
pub(crate) fn healthy_members(dir: &Path, endpoints: &str) -> usize {
    let health = etcdctl(dir, endpoints, &["endpoint", "health"]);
    format!("{}{}", health.stdout, health.stderr)
        .matches(" is healthy")
        .count()
}

/// The pids `cairn up` restarted members with.
fn restarted_pids(output: &str) -> Vec<u32> {
    output
        .lines()
        .filter_map(|l| {
            l.split_once("[cairn up] restarted: pid ")?
                .1
                .trim()
                .parse()
                .ok()
        })
        .collect()
}

#[test]
fn a_killed_member_is_restarted_and_the_cluster_heals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inventory = inventory(dir.path());
    let mut up = Up::ready(&inventory);
    let endpoints = up.endpoints();
    let pids = up.pids();
    assert_eq!(pids.len(), 3);
    let killed = Command::new("kill")
        .args(["-KILL", &pids[1].to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    up.wait_for("[cairn up] restarted: pid");
    wait_until("every member to be healthy again", UP_TIMEOUT, || {
        healthy_members(dir.path(), &endpoints) == 3
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", up.output()));
    let put = etcdctl(dir.path(), &endpoints, &["put", "after", "restart"]);
    assert!(put.success(), "{put:?}");
    let restarted = restarted_pids(&up.output());
    assert_eq!(restarted.len(), 1, "{}", up.output());

    up.signal("-INT");
    let exit = up.wait_exit(STOP_TIMEOUT);
    assert!(exit.success(), "{exit:?}\n{}", up.output());
    let all: Vec<u32> = pids.iter().chain(&restarted).copied().collect();
    assert!(gone(&all), "members left behind: {all:?}");
}

#[test]
fn a_crash_looping_member_stays_down_while_the_others_serve() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inventory = inventory(dir.path());
    let mut up = Up::ready(&inventory);
    let endpoints = up.endpoints();
    let pids = up.pids();
    // m3 cannot start any more: its store's directory is now a file.
    let store = dir.path().join("members/m3/data/member");
    std::fs::rename(&store, dir.path().join("m3-store-aside")).expect("move the store aside");
    std::fs::write(&store, b"not a directory").expect("block the store");
    let killed = Command::new("kill")
        .args(["-KILL", &pids[2].to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    up.wait_for("[cairn up] failed 6 times within");
    let out = up.output();
    assert_eq!(
        out.matches("[cairn up] failed; restarting in").count(),
        5,
        "{out}"
    );
    // cairn up keeps serving with the other two.
    assert!(up.child.try_wait().expect("try_wait").is_none(), "{out}");
    wait_until("the two others to be healthy", UP_TIMEOUT, || {
        healthy_members(dir.path(), &endpoints) == 2
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", up.output()));
    let put = etcdctl(dir.path(), &endpoints, &["put", "still", "serving"]);
    assert!(put.success(), "{put:?}");

    up.signal("-INT");
    let exit = up.wait_exit(STOP_TIMEOUT);
    assert!(exit.success(), "{exit:?}\n{}", up.output());
    let all: Vec<u32> = pids
        .iter()
        .chain(&restarted_pids(&up.output()))
        .copied()
        .collect();
    assert!(gone(&all), "members left behind: {all:?}");
}

/// One request line to `cairn up`'s control socket, as the local transport sends it; the
/// answer line.
fn control_line(socket: &Path, request: &serde_json::Value) -> String {
    use std::io::{BufRead, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(socket).expect("control socket");
    writeln!(stream, "{request}").expect("send");
    let mut answer = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut answer)
        .expect("answer");
    answer
}

/// `action` on member's cairn.service (its state with `None`); the answer.
fn control(socket: &Path, member: &str, action: Option<&str>) -> serde_json::Value {
    let request = serde_json::json!({"member": member, "unit": "cairn.service", "action": action});
    serde_json::from_str(&control_line(socket, &request)).expect("json answer")
}

#[test]
fn a_member_stopped_through_the_control_socket_stays_down_until_started() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inventory = inventory(dir.path());
    let mut up = Up::ready(&inventory);
    let endpoints = up.endpoints();
    let pids = up.pids();
    let socket = dir.path().join("members/control.sock");
    let running = serde_json::json!({"state": {"active": true, "enabled": true}});
    assert_eq!(control(&socket, "m3", None), running);

    // A second cairn up of the same inventory is refused while this one runs.
    let second = Command::new(BIN)
        .args(["up", "-i"])
        .arg(&inventory)
        .output()
        .expect("run a second cairn up");
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(err.contains("already runs"), "{err}");

    let stopped = serde_json::json!({"state": {"active": false, "enabled": true}});
    assert_eq!(control(&socket, "m3", Some("stop")), stopped);
    assert!(gone(&pids[2..]), "m3 still runs");
    // Not restarted: the two others serve (after an election, if m3 led), m3 stays down.
    wait_until("a write to the two others", UP_TIMEOUT, || {
        etcdctl(dir.path(), &endpoints, &["put", "while", "stopped"]).success()
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", up.output()));
    assert_eq!(healthy_members(dir.path(), &endpoints), 2);
    assert_eq!(control(&socket, "m3", None), stopped);
    assert!(!up.output().contains("restarted"), "{}", up.output());
    let started = control(&socket, "m3", Some("start"));
    assert_eq!(started, running);
    wait_until("m3 to be healthy again", UP_TIMEOUT, || {
        healthy_members(dir.path(), &endpoints) == 3
    })
    .unwrap_or_else(|e| panic!("{e}\n{}", up.output()));
    let other = control(&socket, "m1", Some("start"));
    assert_eq!(other, running, "starting a running member changes nothing");
    let unknown_unit = control_line(
        &socket,
        &serde_json::json!({"member": "m1", "unit": "cairn-backupd.service", "action": "start"}),
    );
    assert!(unknown_unit.contains("\"refused\""), "{unknown_unit}");

    up.signal("-INT");
    let exit = up.wait_exit(STOP_TIMEOUT);
    assert!(exit.success(), "{exit:?}\n{}", up.output());
    assert!(!socket.exists(), "the control socket is left behind");
    let out = up.output();
    let all: Vec<u32> = pids
        .iter()
        .copied()
        .chain(out.lines().filter_map(|l| {
            l.split_once("[cairn up] started: pid ")?
                .1
                .trim()
                .parse()
                .ok()
        }))
        .collect();
    assert_eq!(all.len(), 4, "{out}");
    assert!(gone(&all), "members left behind: {all:?}");
}

#[test]
fn members_do_not_outlive_a_killed_cairn_up() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inventory = inventory(dir.path());
    let mut up = Up::ready(&inventory);
    let pids = up.pids();
    up.signal("-KILL");
    up.wait_exit(STOP_TIMEOUT);
    wait_until("the members to stop", STOP_TIMEOUT, || gone(&pids))
        .unwrap_or_else(|e| panic!("{e}: {pids:?}"));
}

#[test]
fn provision_plans_a_local_inventory_and_up_refuses_an_ssh_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let inventory = inventory(dir.path());
    // With no cairn up running: the plan is the first start, under the member directories.
    let out = Command::new(BIN)
        .args(["provision", "--plan", "-i"])
        .arg(&inventory)
        .output()
        .expect("run cairn provision");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{text}{err}");
    for m in ["m1", "m2", "m3"] {
        assert!(text.contains(m), "{text}");
    }
    assert!(text.contains("/etc/cairn/cairn.env"), "{text}");
    assert!(
        !dir.path().join("members/m1/etc").exists(),
        "--plan wrote files"
    );
    // Applying it needs the members' supervisor.
    let out = Command::new(BIN)
        .args(["provision", "--yes", "-i"])
        .arg(&inventory)
        .output()
        .expect("run cairn provision");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no cairn up answers on"), "{err}");

    let ssh = dir.path().join("ssh.toml");
    std::fs::write(
        &ssh,
        "[cluster]\nname = \"c\"\nbinary = \"b\"\ntoken = \"t\"\n\n[[hosts]]\nname = \"a\"\naddress = \"10.0.0.1\"\n",
    )
    .expect("write");
    let out = Command::new(BIN)
        .args(["up", "-i"])
        .arg(&ssh)
        .output()
        .expect("run cairn up");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("transport is \"ssh\": cairn up runs members on this machine"),
        "{err}"
    );
}
