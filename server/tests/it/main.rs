//! Integration tests of cairn-server against real processes: the real `cairn-server` binary,
//! and Debian's etcd 3.4 as the reference whose answers cairn's must equal.

mod auth;
mod cluster;
mod crash;
mod etcdctl;
mod faults;
mod flags;
mod gateway;
mod http;
mod json_gateway;
mod kv;
mod lease;
mod linearizable;
mod maintenance;
mod membership;
mod spread_reads;
mod tls;
mod watch;

use cairn_testkit::{Kind, Member, MemberBuilder};

/// A builder for a cairn-server member running this build's binary.
pub fn cairn_builder() -> MemberBuilder {
    Member::builder(Kind::Cairn).cairn_binary(env!("CARGO_BIN_EXE_cairn-server"))
}

/// A running single-member cairn-server.
pub fn cairn() -> Member {
    cairn_builder().start().expect("start cairn-server")
}

/// A running single-member etcd 3.4 (Debian's `etcd-server`).
pub fn etcd() -> Member {
    Member::builder(Kind::Etcd).start().expect("start etcd")
}

/// A client of `m` through the `etcd-client` crate.
pub async fn client(m: &Member) -> etcd_client::Client {
    etcd_client::Client::connect([m.client_url()], None)
        .await
        .expect("connect etcd-client")
}

/// Panics with both transcripts side by side when cairn's differs from etcd's.
pub fn assert_same(what: &str, cairn: &[String], etcd: &[String]) {
    if cairn == etcd {
        return;
    }
    let mut report = format!("{what}: cairn-server and etcd 3.4 differ\n");
    for i in 0..cairn.len().max(etcd.len()) {
        let c = cairn.get(i).map_or("<missing>", String::as_str);
        let e = etcd.get(i).map_or("<missing>", String::as_str);
        let mark = if c == e { "  " } else { "!!" };
        report.push_str(&format!(
            "{mark} step {i}\n     cairn: {c}\n     etcd:  {e}\n"
        ));
    }
    panic!("{report}");
}
