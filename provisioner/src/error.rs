//! The crate's one error type. Host-side errors name the host, so a run over many hosts says
//! which one failed and what to do about it.
//!
//! The rule for every message here: it says what failed and what to do; the cause is the
//! `#[source]`, never also interpolated into the message, so a printed chain names each
//! cause once.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why provisioning (or a status query) stopped.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The inventory is unusable (also a missing binary or key file).
    #[error(transparent)]
    Inventory(#[from] cairn_inventory::Error),
    /// `cairn up` was given an inventory of remote hosts.
    #[error("{}: transport is \"ssh\": cairn up runs members on this machine; set [cluster] transport = \"local\" (see examples/local.toml), or use cairn provision for these hosts", path.display())]
    NotLocal {
        /// The inventory.
        path: PathBuf,
    },
    /// A local member's port is held by another process.
    #[error("{member}: {addr} ({key}) is in use by another process; stop it, or give {member} another {key} in the inventory")]
    PortInUse {
        /// Member name.
        member: String,
        /// `address:port`.
        addr: String,
        /// The inventory key of the port.
        key: &'static str,
        /// Why the port could not be bound.
        #[source]
        source: io::Error,
    },
    /// An action on a local member's service, with no `cairn up` to carry it out.
    #[error("no cairn up answers on {} (start the local cluster with `cairn up -i INVENTORY` first)", socket.display())]
    LocalControlDown {
        /// The control socket.
        socket: PathBuf,
        /// Why it could not be reached.
        #[source]
        source: io::Error,
    },
    /// `cairn up` refused an action on a local member's service.
    #[error("{host}: cairn up refused the {unit} request: {reason}")]
    LocalService {
        /// The member.
        host: String,
        /// The unit.
        unit: String,
        /// What `cairn up` answered.
        reason: String,
    },
    /// A local member's unit file has no command to run.
    #[error("{}: no ExecStart= line (run cairn up or cairn provision again to rewrite it)", path.display())]
    LocalUnit {
        /// The unit file.
        path: PathBuf,
    },
    /// A second `cairn up` of the same inventory.
    #[error("a cairn up of this inventory already runs (it answers on {}); use it, or stop it first", socket.display())]
    AlreadyUp {
        /// Its control socket.
        socket: PathBuf,
    },
    /// A program could not be run on this machine for a local member.
    #[error("{host}: cannot run {program}")]
    LocalRun {
        /// The member.
        host: String,
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A local member's process could not be started.
    #[error("cannot start {member} ({}); build it with cargo build --release -p cairn-server or fix [cluster] binary", binary.display())]
    Spawn {
        /// The member.
        member: String,
        /// The binary.
        binary: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A local member's process ended on its own.
    #[error("member {member} exited ({status}); its last lines:\n{}", last_lines.join("\n"))]
    MemberExited {
        /// The member.
        member: String,
        /// How it ended.
        status: std::process::ExitStatus,
        /// What it printed last.
        last_lines: Vec<String>,
    },
    /// Every member of a local cluster is down (each failed past the start limit, or exited).
    #[error("every member is down; their logs above say why")]
    AllMembersDown,
    /// Waiting for a local member's process failed.
    #[error("cannot wait for member {member}")]
    Wait {
        /// The member.
        member: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The daemon's inventory could not be written as TOML (a value TOML cannot hold).
    #[error("cannot write the backup daemon's inventory")]
    BackupdInventory(#[from] toml::ser::Error),
    /// `cairn backupd --check` failed on the daemon's host: it could not read its inventory,
    /// reach the store or reach the cluster.
    #[error("{host}: the backup daemon's check failed, so it was not started: {output}")]
    DaemonCheck {
        /// The `[backup] host`.
        host: String,
        /// The check's last line.
        output: String,
    },
    /// A restore built a different number of data directories than the inventory has hosts.
    #[error("the restore built {dirs} data directories but the inventory has {hosts} hosts; restore with the inventory you provision")]
    RestoreMismatch {
        /// Data directories built.
        dirs: usize,
        /// Hosts in the inventory.
        hosts: usize,
    },
    /// The old data could not be moved aside before a restore.
    #[error("{host}: cannot set the data in {data_dir} aside ({output}); nothing was written there, fix it and run the restore again")]
    SetAside {
        /// The host.
        host: String,
        /// Its data directory.
        data_dir: String,
        /// What the command said.
        output: String,
    },
    /// A large file sent in pieces could not be put in place.
    #[error("{host}: cannot put {path} in place ({output}); run the restore again")]
    Push {
        /// The host.
        host: String,
        /// The file.
        path: String,
        /// What the command said.
        output: String,
    },
    /// `[backup]` asks for a daemon, but the run was not given a `cairn` binary to push.
    #[error("[backup] is set, so the backup daemon needs a cairn binary to push; run cairn provision from the cairn binary you want on the hosts")]
    NoDaemonBinary,
    /// A local file could not be read.
    #[error("{}: cannot read it", path.display())]
    LocalRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A local file or directory could not be written.
    #[error("{}: cannot write it", path.display())]
    LocalWrite {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// `--limit` names a host the inventory does not have.
    #[error("--limit {name}: no such host in the inventory (its hosts: {known})")]
    UnknownHost {
        /// The name given.
        name: String,
        /// The inventory's member names.
        known: String,
    },
    /// The SSH key could not be used.
    #[error("{}: cannot use this SSH key (a wrong passphrase, or not an OpenSSH private key); set [ssh] identity_file to another key", path.display())]
    SshKey {
        /// The key file.
        path: PathBuf,
        /// russh's reason.
        #[source]
        source: russh::keys::Error,
    },
    /// A key or passphrase file could not be read.
    #[error("{}: cannot read this file", path.display())]
    SshKeyRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// An encrypted key with no passphrase to open it.
    #[error("{}: the SSH key is encrypted; add it to ssh-agent (ssh-add {}), run on a terminal to be asked, or set [ssh] passphrase_file", path.display(), path.display())]
    KeyEncrypted {
        /// The key file.
        path: PathBuf,
    },
    /// No agent and no key file to log in with.
    #[error("{host}: no SSH key to log in with: no ssh-agent ($SSH_AUTH_SOCK) and none of {looked} exists; start ssh-agent and ssh-add your key, or set [ssh] identity_file")]
    NoSshKey {
        /// Member name.
        host: String,
        /// The key files looked for.
        looked: String,
    },
    /// The agent did not answer.
    #[error("{}: the ssh-agent did not list its keys; check that it runs (ssh-add -l) or set [ssh] agent = false", socket.display())]
    Agent {
        /// `$SSH_AUTH_SOCK`.
        socket: PathBuf,
        /// Why.
        #[source]
        source: russh::keys::Error,
    },
    /// The agent did not sign.
    #[error("{host}: the ssh-agent did not sign the login; check it with ssh-add -l, or set [ssh] agent = false")]
    AgentSign {
        /// Member name.
        host: String,
        /// Why.
        #[source]
        source: russh::AgentAuthError,
    },
    /// `~/.ssh/config` could not be read.
    #[error("{}: cannot read this OpenSSH client configuration; fix it, or point [ssh] config elsewhere", path.display())]
    SshConfig {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: ssh2_config::SshParserError,
    },
    /// `~/.ssh/config` has a ProxyJump cairn cannot follow.
    #[error("the ProxyJump ~/.ssh/config gives for {host} cannot be used; set [ssh] jump or the host's ssh_jump")]
    SshConfigJump {
        /// The host looked up.
        host: String,
        /// Why.
        #[source]
        source: cairn_inventory::model::BadJump,
    },
    /// A bastion would not open the connection to the next hop.
    #[error("{host}: the jump host could not connect on to {next}; check the address and that the bastion allows forwarding (AllowTcpForwarding)")]
    JumpRefused {
        /// The bastion's login name.
        host: String,
        /// `address:port` it was asked to reach.
        next: String,
        /// russh's reason.
        #[source]
        source: Box<russh::Error>,
    },
    /// The host could not be reached.
    #[error("{host}: cannot connect to {addr}; check the address, [ssh] port and that sshd runs")]
    Connect {
        /// Member name.
        host: String,
        /// `address:port`.
        addr: String,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The SSH session failed.
    #[error("{host}: the SSH session failed")]
    Ssh {
        /// Member name.
        host: String,
        /// russh's reason.
        #[source]
        source: russh::Error,
    },
    /// The host presented another key than known_hosts records for it.
    #[error("{host}: the host key of {addr} does not match {}:{line}; if the host was reinstalled, remove that line and run again with --accept-new-host-keys", known_hosts.display())]
    HostKeyMismatch {
        /// Member name.
        host: String,
        /// `address:port` as known_hosts names it.
        addr: String,
        /// The known_hosts file.
        known_hosts: PathBuf,
        /// Its line with the recorded key.
        line: usize,
    },
    /// The host is not in known_hosts and new keys were not to be trusted.
    #[error("{host}: {addr} is not in {}; check its key fingerprint ({fingerprint}) and run again with --accept-new-host-keys to record it", known_hosts.display())]
    UnknownHostKey {
        /// Member name.
        host: String,
        /// `address:port`.
        addr: String,
        /// The known_hosts file.
        known_hosts: PathBuf,
        /// SHA256 fingerprint of the presented key.
        fingerprint: String,
    },
    /// known_hosts could not be read or written.
    #[error("{}: cannot use the known hosts file", known_hosts.display())]
    KnownHosts {
        /// The file.
        known_hosts: PathBuf,
        /// russh's reason.
        #[source]
        source: russh::keys::Error,
    },
    /// The server accepted none of the keys.
    #[error("{host}: {target} accepted none of the keys tried ({tried}); add the public key to the user's authorized_keys, or set [ssh] identity_file")]
    AuthRejected {
        /// Member name.
        host: String,
        /// `user@address:port`.
        target: String,
        /// The keys tried, agent keys by comment.
        tried: String,
    },
    /// A step took longer than allowed.
    #[error("{host}: {what} did not finish within {after:?}")]
    Timeout {
        /// Member name.
        host: String,
        /// The step.
        what: String,
        /// The limit.
        after: Duration,
    },
    /// A command on the host failed.
    #[error("{host}: `{command}` failed with exit code {code}: {stderr}")]
    Command {
        /// Member name.
        host: String,
        /// The command.
        command: String,
        /// Its exit code (-1: killed by a signal or no status).
        code: i32,
        /// The end of what it printed on stderr.
        stderr: String,
    },
    /// A host answered something the provisioner cannot read.
    #[error("{host}: unexpected output from `{command}`: {output:?}")]
    UnexpectedOutput {
        /// Member name.
        host: String,
        /// The command.
        command: String,
        /// What it printed.
        output: String,
    },
    /// A program run on a host printed something other than the JSON report expected.
    #[error("{host}: `{command}` did not print its JSON report")]
    Report {
        /// Member name.
        host: String,
        /// The command.
        command: String,
        /// Why its output is not the report.
        #[source]
        source: serde_json::Error,
    },
    /// The admin client certificate (or the CA) is not in `[tls] dir`.
    #[error("{}: cannot read it; {setup} issues the certificates there, run it first", path.display())]
    NoClientCertificate {
        /// What issues them: `cairn provision`, or `cairn up` on a local inventory.
        setup: &'static str,
        /// The missing file.
        path: PathBuf,
        /// Why it cannot be read.
        #[source]
        source: io::Error,
    },
    /// No member answered.
    #[error("no member of the cluster answered ({endpoints}); check that the members run (cairn provision starts them)")]
    NoMemberReachable {
        /// The client URLs tried.
        endpoints: String,
    },
    /// A member did not become healthy after a start or restart.
    #[error("{member} did not become healthy with a leader within {after:?} ({last}); nothing more was restarted, see the member's log on its host")]
    Unhealthy {
        /// Member name.
        member: String,
        /// How long it was waited for.
        after: Duration,
        /// The last thing seen.
        last: String,
    },
    /// Certificates were asked for but the inventory has no `[tls]`.
    #[error("{}: there is no [tls] section, so no certificates to rotate or show; add [tls] and run {setup}", inventory.display())]
    NoTls {
        /// What issues them: `cairn provision`, or `cairn up` on a local inventory.
        setup: &'static str,
        /// The inventory file.
        inventory: PathBuf,
    },
    /// `cairn certs rotate --ca` with the operator's own CA.
    #[error("[tls] ca_cert {} is your own CA, which cairn cannot rotate: rotate it in your PKI, or remove ca_cert and ca_key from [tls] to have cairn generate a CA it can rotate", cert.display())]
    OperatorCaRotation {
        /// `ca_cert`.
        cert: PathBuf,
    },
    /// A leaf rotation was asked for while a CA rotation is under way.
    #[error("a CA rotation is under way (phase {phase} in {}); finish it with `cairn certs rotate --ca` first", marker.display())]
    RotationInProgress {
        /// The phase.
        phase: cairn_pki::Phase,
        /// The marker file.
        marker: PathBuf,
    },
    /// The TLS directory could not be brought to what the inventory needs.
    #[error(transparent)]
    Pki(#[from] cairn_pki::Error),
    /// A member could not be reached through the client crate, or answered with an error.
    #[error(transparent)]
    Client(#[from] cairn_client::Error),
    /// Some hosts failed; the others were converged (or left unchanged) as reported.
    #[error("{} of {total} hosts failed ({}; {consequence})", failed.len(), failed.join(", "))]
    HostsFailed {
        /// Their member names, in inventory order.
        failed: Vec<String>,
        /// Of how many.
        total: usize,
        /// What that means for the hosts that did not fail.
        consequence: &'static str,
        /// The first failure, naming its host.
        #[source]
        first: Box<Error>,
    },
    /// A host that is not a member has a data directory with data.
    #[error("{host}: {data_dir} has data but the host is not a member of the running cluster (left from an earlier membership?); move the data away (or cairn destroy --purge it) and run again")]
    StaleData {
        /// Member name.
        host: String,
        /// Its data directory.
        data_dir: String,
    },
    /// Members the inventory no longer lists would be removed without `--allow-remove`.
    #[error("the inventory no longer lists {}, member(s) of the running cluster: pass --allow-remove to remove them (nothing was changed)", members.join(", "))]
    RemovalNotAllowed {
        /// Their names.
        members: Vec<String>,
    },
    /// A removal would remove the cluster's last member.
    #[error("{member} is the cluster's last member and is not removed; use cairn destroy to tear the cluster down")]
    LastMember {
        /// Its name.
        member: String,
    },
    /// A removal would leave fewer healthy members than a majority of the current cluster.
    #[error("{member} is not removed: only {healthy} of the other members are healthy and a majority of the {total}-member cluster is {needed}; bring the other members back first")]
    RemovalBelowQuorum {
        /// The member to remove.
        member: String,
        /// Healthy members that would be left.
        healthy: usize,
        /// A majority of the current cluster.
        needed: usize,
        /// Current cluster size.
        total: usize,
    },
    /// A rolling restart (upgrade or changed files) stopped at a member.
    #[error("the roll stopped at {member}; {}", left_over(remaining))]
    RollStopped {
        /// The member that failed.
        member: String,
        /// Members not restarted yet, that keep their old files and binary.
        remaining: Vec<String>,
        /// What failed.
        #[source]
        source: Box<Error>,
    },
    /// `cairn import` found a member that was added but never started.
    #[error("the member list has a member that never started (peer URL {peer_url}); start it or remove it (etcdctl member remove) before importing")]
    UnstartedMember {
        /// Its peer URL.
        peer_url: String,
    },
    /// `cairn import` found two members on one host that is not this machine's loopback.
    #[error("members {first} and {second} share the address {address}; cairn manages one member per host, so this cluster cannot be imported (members on this machine's loopback can: they become a transport = \"local\" inventory)")]
    SharedAddress {
        /// The address.
        address: String,
        /// The member first at it.
        first: String,
        /// The other member.
        second: String,
    },
    /// The hook run before the first change to a running cluster (a backup) failed.
    #[error("the step before changing the running cluster (backup) failed, nothing was changed")]
    BeforeFirstChange {
        /// Its reason.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What a stopped roll left behind, for [`Error::RollStopped`].
fn left_over(remaining: &[String]) -> String {
    match remaining {
        [] => "no other member was left to restart".into(),
        [one] => format!("{one} still runs the old binary and files"),
        many => format!("{} still run the old binary and files", many.join(", ")),
    }
}
