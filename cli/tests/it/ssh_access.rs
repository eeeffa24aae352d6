//! How `cairn` logs in over SSH, as fleets are set up: a passphrase-protected key held by
//! `ssh-agent`, a host reachable only through a bastion, and both named in an OpenSSH client
//! configuration instead of the inventory. Real sshd test hosts (testkit's), on loopback; the
//! target's sshd port is fenced (iptables, owner match) so only the bastion's sessions reach
//! it. `cairn check disk` is the command: it connects, pushes a file and runs one.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use cairn_testkit::hosts::{Hosts, USER_UID};
use cairn_testkit::{CmdOutput, Daemon, UserFence};

use crate::BIN;

/// The bastion's login user (not root: the fence lets this uid's connections through).
const HOP_USER: &str = "hop";
const PASSPHRASE: &str = "correct horse battery";

fn cairn(inventory: &Path, agent: Option<&Path>) -> CmdOutput {
    let mut c = Command::new(BIN);
    c.args([
        "check",
        "disk",
        "--accept-new-host-keys",
        "--size-mib",
        "1",
        "-o",
        "json",
        "-i",
    ])
    .arg(inventory)
    .env_remove("SSH_AUTH_SOCK");
    if let Some(socket) = agent {
        c.env("SSH_AUTH_SOCK", socket);
    }
    cairn_testkit::run_command(c, Duration::from_secs(300)).expect("run cairn")
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("runs");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_host_behind_a_bastion_is_reached_with_an_agent_key_named_in_ssh_config() {
    let hosts = Hosts::start_with_user(2, Some(HOP_USER)).expect("hosts");
    let (bastion, target) = (&hosts.hosts[0], &hosts.hosts[1]);
    let dir = tempfile::tempdir().expect("tempdir");

    // An encrypted key, authorized on both hosts and held by an agent.
    let key = dir.path().join("id_locked");
    run(Command::new("ssh-keygen")
        .args([
            "-q", "-t", "ed25519", "-C", "locked", "-N", PASSPHRASE, "-f",
        ])
        .arg(&key));
    let public = std::fs::read_to_string(key.with_extension("pub")).expect("public key");
    let mut authorized = std::fs::read_to_string(&hosts.authorized_keys).expect("authorized");
    authorized.push_str(&public);
    std::fs::write(&hosts.authorized_keys, authorized).expect("authorize");
    let socket = dir.path().join("agent.sock");
    let mut agent = Command::new("ssh-agent");
    agent.arg("-D").arg("-a").arg(&socket);
    let _agent = Daemon::spawn(agent, &dir.path().join("agent.log")).expect("ssh-agent");
    cairn_testkit::wait_until("ssh-agent to listen", Duration::from_secs(10), || {
        socket.exists()
    })
    .expect("agent socket");
    let askpass = dir.path().join("askpass");
    std::fs::write(&askpass, format!("#!/bin/sh\necho '{PASSPHRASE}'\n")).expect("askpass");
    std::fs::set_permissions(
        &askpass,
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .expect("chmod");
    run(Command::new("ssh-add")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &socket)
        .env("SSH_ASKPASS", &askpass)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("DISPLAY", "none")
        .stdin(std::process::Stdio::null()));

    // Only the bastion's sessions (its user's processes) reach the target's sshd.
    let _fence = UserFence::new(target.address, target.ssh_port, USER_UID).expect("fence");

    let config = dir.path().join("ssh_config");
    let port = target.ssh_port;
    let write_config = |jump: &str| {
        std::fs::write(
            &config,
            format!(
                "Host {target}\n  Port {port}\n  User root\n{jump}\
                 Host {bastion}\n  Port {port}\n  User {HOP_USER}\n\
                 Host *\n  ServerAliveInterval 30\n  ForwardAgent no\n",
                target = target.address,
                bastion = bastion.address,
            ),
        )
        .expect("ssh config");
    };
    let inventory = dir.path().join("cairn.toml");
    let write_inventory = |ssh: &str| {
        std::fs::write(
            &inventory,
            format!(
                "[cluster]\nname = \"it\"\ntoken = \"it-1\"\nbinary = \"{BIN}\"\n\n\
                 [ssh]\nidentity_file = \"{}\"\nknown_hosts = \"{}\"\nconfig = \"{}\"\n{ssh}\n\n\
                 [[hosts]]\nname = \"{}\"\naddress = \"{}\"\n",
                key.display(),
                hosts.known_hosts.display(),
                config.display(),
                target.name,
                target.address,
            ),
        )
        .expect("inventory");
    };

    // Directly, the fence refuses the connection: what follows goes through the bastion.
    write_config("");
    write_inventory("");
    let out = cairn(&inventory, Some(&socket));
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr
            .contains(&format!("m2: cannot connect to {}:{port}", target.address)),
        "{}",
        out.stderr
    );

    // ProxyJump from the configuration, the agent's key at both hops.
    write_config(&format!("  ProxyJump {}\n", bastion.address));
    let out = cairn(&inventory, Some(&socket));
    let rows: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", out.stdout, out.stderr));
    assert_eq!(rows[0]["host"], target.name.as_str(), "{rows}");
    assert!(rows[0]["report"]["writes"].as_u64() > Some(0), "{rows}");
    assert!(
        target.path("/usr/local/bin/cairn").exists(),
        "the binary went through the tunnel"
    );

    // No agent and no terminal: the encrypted key cannot be opened, and the error says how.
    let out = cairn(&inventory, None);
    assert_eq!(out.code, 2, "{}{}", out.stdout, out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "{}: the SSH key is encrypted; add it to ssh-agent (ssh-add",
            key.display()
        )),
        "{}",
        out.stderr
    );

    // The inventory's jump instead of the configuration's, the passphrase from a file.
    write_config("");
    let pass = dir.path().join("passphrase");
    std::fs::write(&pass, format!("{PASSPHRASE}\n")).expect("passphrase file");
    write_inventory(&format!(
        "passphrase_file = \"{}\"\njump = \"{HOP_USER}@{}:{port}\"",
        pass.display(),
        bastion.address
    ));
    let out = cairn(&inventory, None);
    let rows: serde_json::Value = serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", out.stdout, out.stderr));
    assert!(rows[0]["report"]["writes"].as_u64() > Some(0), "{rows}");
}
