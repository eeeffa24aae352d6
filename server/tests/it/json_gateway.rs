//! etcd's JSON gateway (`POST /v3/...`, protobuf JSON under the proto field names) as curl
//! lines in runbooks use it: the same requests to cairn-server and to etcd 3.4 must get the
//! same HTTP status and the same body, once the fields that differ between two clusters
//! (IDs, terms, versions, sizes, hashes, lease IDs) and the parser's wording of a malformed
//! body are masked. etcd is the oracle: no expected output is written by hand.

use std::process::Command;
use std::time::Duration;

use cairn_testkit::{run_command, Member};
use regex::Regex;

/// `curl -X POST URL/PATH -d BODY` (a GET for a body of `GET`): the HTTP status, then the
/// body.
fn post(m: &Member, path: &str, body: &str) -> String {
    post_as(m, None, path, body)
}

/// [`post`] with `Authorization: TOKEN`, as etcd's gateway documentation does it.
fn post_as(m: &Member, token: Option<&str>, path: &str, body: &str) -> String {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-S", "-w", "\n%{http_code}"])
        .arg(format!("{}{path}", m.client_url()));
    if let Some(token) = token {
        cmd.args(["-H", &format!("Authorization: {token}")]);
    }
    if body != "GET" {
        cmd.args(["-X", "POST", "-d", body]);
    }
    let out = run_command(cmd, Duration::from_secs(20)).expect("curl");
    assert!(out.success(), "curl {path}: {out:?}");
    let (body, code) = out.stdout.rsplit_once('\n').expect("status line");
    format!("{code} {body}")
}

fn masked(text: &str) -> String {
    let text = masked_ids(text);
    Regex::new(r#""(error|message)":"[^"]*""#)
        .expect("mask")
        .replace_all(&text, r#""$1":"<text>""#)
        .into_owned()
}

/// [`masked`], keeping error texts (etcd's own, not a JSON parser's).
fn masked_ids(text: &str) -> String {
    let masks = [
        (r#""token":"[^"]*""#, r#""token":"<token>""#),
        (
            r#""(cluster_id|member_id|leader|raft_term|raftTerm|ID)":"\d+""#,
            r#""$1":"<id>""#,
        ),
        (
            r#""(version|dbSize|dbSizeInUse|raftIndex|raftAppliedIndex)":"[^"]*""#,
            r#""$1":"<n>""#,
        ),
        (r#""hash":\d+"#, r#""hash":<hash>"#),
        (
            r#""(peerURLs|clientURLs)":\["[^"]*"\]"#,
            r#""$1":["<url>"]"#,
        ),
    ];
    let mut text = text.to_string();
    for (re, with) in masks {
        text = Regex::new(re)
            .expect("mask")
            .replace_all(&text, with)
            .into_owned();
    }
    text
}

#[test]
fn json_requests_get_the_answers_etcd_3_4_gives() {
    let cairn = crate::cairn();
    let etcd = crate::etcd();
    // Base64 of "foo", "bar", "fop" and "none".
    let steps: &[(&str, &str)] = &[
        ("/v3/kv/put", r#"{"key":"Zm9v","value":"YmFy"}"#),
        (
            "/v3/kv/put",
            r#"{"key":"Zm9v","value":"YmFy","prev_kv":true}"#,
        ),
        ("/v3/kv/range", r#"{"key":"Zm9v"}"#),
        ("/v3/kv/range", r#"{"key":"Zm9v","keys_only":true}"#),
        (
            "/v3/kv/range",
            r#"{"key":"Zm9v","range_end":"Zm9w","sortOrder":"DESCEND"}"#,
        ),
        ("/v3/kv/range", r#"{"key":"bm9uZQ=="}"#),
        ("/v3beta/kv/range", r#"{"key":"Zm9v","count_only":true}"#),
        ("/v3/kv/range", r#"{"key":"Zm9v","value":"ignored"}"#),
        ("/v3/kv/range", r#"{"key":"#),
        ("/v3/kv/range", r#"{"key":"Zm9v","revision":"99"}"#),
        (
            "/v3/kv/txn",
            r#"{"compare":[{"target":"VALUE","key":"Zm9v","value":"YmFy"}],"success":[{"request_range":{"key":"Zm9v"}}],"failure":[{"request_put":{"key":"Zm9v","value":"YmF6"}}]}"#,
        ),
        (
            "/v3/kv/txn",
            r#"{"compare":[{"target":"VERSION","key":"Zm9v","result":"GREATER","version":"5"}],"failure":[{"request_delete_range":{"key":"Zm9v","prev_kv":true}}]}"#,
        ),
        ("/v3/kv/deleterange", r#"{"key":"Zm9v"}"#),
        ("/v3/kv/compaction", r#"{"revision":"2"}"#),
        ("/v3/kv/compaction", r#"{"revision":"1"}"#),
        ("/v3/lease/grant", r#"{"TTL":60}"#),
        ("/v3/lease/leases", ""),
        ("/v3/lease/timetolive", r#"{"ID":"12345"}"#),
        ("/v3/kv/lease/revoke", r#"{"ID":"12345"}"#),
        ("/v3/maintenance/status", "{}"),
        ("/v3/maintenance/alarm", r#"{"action":"GET"}"#),
        ("/v3/maintenance/hash", "{}"),
        ("/v3/cluster/member/list", "{}"),
        ("/v3/kv/nothing", "{}"),
        ("/v3/kv/range", "GET"),
    ];
    let mut mismatches = Vec::new();
    for (i, (path, body)) in steps.iter().enumerate() {
        let (c, e) = (
            masked(&post(&cairn, path, body)),
            masked(&post(&etcd, path, body)),
        );
        if c != e {
            mismatches.push(format!(
                "step {i}: POST {path} {body}\n  cairn: {c}\n  etcd:  {e}"
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

/// `curl -N -X POST /v3/watch -d REQUEST`, left running.
fn watch(m: &Member, request: &str) -> cairn_testkit::Background {
    let mut cmd = Command::new("curl");
    cmd.args(["-s", "-S", "-N", "-X", "POST"])
        .arg(format!("{}/v3/watch", m.client_url()))
        .args(["-d", request]);
    cairn_testkit::Background::spawn("curl /v3/watch", cmd).expect("curl")
}

/// The watch stream as lua-resty-etcd and curl read it: a line per response, events after
/// the request body has ended, a history replayed from a start revision.
#[test]
fn a_watch_streams_the_lines_etcd_3_4_streams() {
    let cairn = crate::cairn();
    let etcd = crate::etcd();
    let mut transcripts = Vec::new();
    for m in [&cairn, &etcd] {
        let mut live = watch(m, r#"{"create_request":{"key":"Zm9v","prev_kv":true}}"#);
        live.wait_for(Duration::from_secs(20), |l| l.len() == 1)
            .expect("created");
        post(m, "/v3/kv/put", r#"{"key":"Zm9v","value":"YmFy"}"#);
        post(m, "/v3/kv/put", r#"{"key":"Zm9v","value":"YmF6"}"#);
        post(m, "/v3/kv/deleterange", r#"{"key":"Zm9v"}"#);
        let mut lines = live
            .wait_for(Duration::from_secs(20), |l| l.len() == 4)
            .expect("three events")
            .to_vec();
        let mut replay = watch(
            m,
            r#"{"create_request":{"key":"Zm9v","start_revision":"1"}}"#,
        );
        lines.extend(
            replay
                .wait_for(Duration::from_secs(20), |l| l.len() == 2)
                .expect("created and the history")
                .iter()
                .cloned(),
        );
        let bad = post(m, "/v3/watch", "{bad");
        lines.push(
            bad.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string(),
        );
        transcripts.push(lines.iter().map(|l| masked(l)).collect::<Vec<_>>());
    }
    crate::assert_same("the watch stream", &transcripts[0], &transcripts[1]);
}

/// `/v3/lease/keepalive`: each request of the body renewed in turn, a line each; a lease that
/// does not exist gets TTL 0, as from etcd.
#[test]
fn lease_keep_alives_stream_as_etcd_3_4_streams_them() {
    let cairn = crate::cairn();
    let etcd = crate::etcd();
    let id = Regex::new(r#""ID":"(\d+)""#).expect("regex");
    let mut transcripts = Vec::new();
    for m in [&cairn, &etcd] {
        let granted = post(m, "/v3/lease/grant", r#"{"TTL":60}"#);
        let lease = id.captures(&granted).expect("a lease ID")[1].to_string();
        let renewed = post(
            m,
            "/v3/lease/keepalive",
            &format!(r#"{{"ID":"{lease}"}} {{"ID":"{lease}"}}"#),
        );
        let missing = post(m, "/v3/lease/keepalive", r#"{"ID":"1"}"#);
        let bad = post(m, "/v3/lease/keepalive", "{bad");
        transcripts.push(vec![
            masked(&granted),
            masked(&renewed),
            masked(&missing),
            masked(&bad),
        ]);
    }
    crate::assert_same("lease keep-alives", &transcripts[0], &transcripts[1]);
}

/// Auth through the gateway as a runbook's curl lines do it: users and roles, enable,
/// `/v3/auth/authenticate`, then the token in `Authorization`; granted, denied, missing and
/// forged tokens. One transcript per server; tokens differ, so each uses its own.
fn auth_transcript(m: &Member) -> Vec<String> {
    let mut lines = Vec::new();
    let mut step = |token: Option<&str>, path: &str, body: &str| -> String {
        let answer = post_as(m, token, path, body);
        lines.push(format!("{path} {body} -> {}", masked_ids(&answer)));
        answer
    };
    // Base64 of "foo" and "bar".
    for (path, body) in [
        (
            "/v3/auth/user/add",
            r#"{"name":"root","password":"rootpw"}"#,
        ),
        ("/v3/auth/enable", "{}"),
        ("/v3/auth/role/add", r#"{"name":"root"}"#),
        ("/v3/auth/user/grant", r#"{"user":"root","role":"root"}"#),
        ("/v3/auth/role/add", r#"{"name":"reader"}"#),
        (
            "/v3/auth/role/grant",
            r#"{"name":"reader","perm":{"permType":"READ","key":"Zm9v"}}"#,
        ),
        ("/v3/auth/user/add", r#"{"name":"u1","password":"u1pw"}"#),
        ("/v3/auth/user/grant", r#"{"user":"u1","role":"reader"}"#),
        ("/v3/kv/put", r#"{"key":"Zm9v","value":"YmFy"}"#),
        ("/v3/auth/enable", "{}"),
        ("/v3/kv/range", r#"{"key":"Zm9v"}"#),
        (
            "/v3/auth/authenticate",
            r#"{"name":"root","password":"wrong"}"#,
        ),
    ] {
        step(None, path, body);
    }
    let token = |answer: &str| -> String {
        let body = answer.split_once(' ').expect("status and body").1;
        let v: serde_json::Value = serde_json::from_str(body).expect("JSON");
        v["token"].as_str().expect("a token").to_string()
    };
    let root = token(&step(
        None,
        "/v3/auth/authenticate",
        r#"{"name":"root","password":"rootpw"}"#,
    ));
    let u1 = token(&step(
        None,
        "/v3/auth/authenticate",
        r#"{"name":"u1","password":"u1pw"}"#,
    ));
    for (token, path, body) in [
        (Some(u1.as_str()), "/v3/kv/range", r#"{"key":"Zm9v"}"#),
        (Some(&u1), "/v3/kv/put", r#"{"key":"Zm9v","value":"YmF6"}"#),
        (Some(&u1), "/v3/kv/range", r#"{"key":"YmFy"}"#),
        (Some(&u1), "/v3/auth/user/list", "{}"),
        (Some(&u1), "/v3/auth/user/get", r#"{"name":"u1"}"#),
        (Some(&u1), "/v3/auth/role/get", r#"{"role":"reader"}"#),
        (Some("forged.token"), "/v3/kv/range", r#"{"key":"Zm9v"}"#),
        (
            Some(&root),
            "/v3/kv/put",
            r#"{"key":"Zm9v","value":"YmF6"}"#,
        ),
        (Some(&root), "/v3/auth/user/list", "{}"),
        (Some(&root), "/v3/auth/role/list", "{}"),
        (
            Some(&root),
            "/v3/auth/user/revoke",
            r#"{"name":"u1","role":"reader"}"#,
        ),
        (Some(&u1), "/v3/kv/range", r#"{"key":"Zm9v"}"#),
        (Some(&root), "/v3/auth/user/delete", r#"{"name":"u1"}"#),
        (Some(&root), "/v3/auth/role/delete", r#"{"role":"reader"}"#),
        (Some(&root), "/v3/auth/disable", "{}"),
        (None, "/v3/kv/range", r#"{"key":"Zm9v"}"#),
    ] {
        step(token, path, body);
    }
    lines
}

#[test]
fn auth_over_json_answers_like_etcd_3_4() {
    let (cairn, etcd) = (crate::cairn(), crate::etcd());
    crate::assert_same(
        "auth over the JSON gateway",
        &auth_transcript(&cairn),
        &auth_transcript(&etcd),
    );
}

/// `POST /v3/maintenance/snapshot`: the status, the shape of every line (its fields), and the
/// file the base64 pieces make.
fn snapshot_over_json(m: &Member, token: Option<&str>) -> (String, Vec<String>, Vec<u8>) {
    use base64::Engine as _;
    let answer = post_as(m, token, "/v3/maintenance/snapshot", "{}");
    let (code, body) = answer.split_once(' ').expect("status and body");
    let mut shapes = Vec::new();
    let mut file = Vec::new();
    for line in body.lines().filter(|l| !l.is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        if let Some(result) = v.get("result") {
            let mut keys: Vec<&str> = result
                .as_object()
                .expect("result object")
                .keys()
                .map(String::as_str)
                .collect();
            keys.sort_unstable();
            shapes.push(format!("result {}", keys.join(",")));
            if let Some(blob) = result["blob"].as_str() {
                file.extend(
                    base64::engine::general_purpose::STANDARD
                        .decode(blob)
                        .expect("base64 blob"),
                );
            }
        } else {
            shapes.push(masked_ids(line));
        }
    }
    (code.to_string(), shapes, file)
}

#[test]
fn a_snapshot_streams_as_base64_pieces_and_is_refused_without_a_token_like_etcd_3_4() {
    let (cairn, etcd) = (crate::cairn(), crate::etcd());
    let dir = tempfile::tempdir().expect("tempdir");
    for m in [&cairn, &etcd] {
        for i in 0..50 {
            let out = m
                .etcdctl(&["put", &format!("k{i}"), &"v".repeat(10_000)])
                .expect("put");
            assert!(out.success(), "{out:?}");
        }
    }
    let (c_code, c_shapes, c_file) = snapshot_over_json(&cairn, None);
    let (e_code, e_shapes, e_file) = snapshot_over_json(&etcd, None);
    assert_eq!((c_code.as_str(), e_code.as_str()), ("200", "200"));
    // The same fields on every line (the number of pieces depends on each server's size).
    let distinct = |s: &[String]| s.iter().collect::<std::collections::BTreeSet<_>>().len();
    assert_eq!(
        distinct(&c_shapes),
        distinct(&e_shapes),
        "{c_shapes:?} vs {e_shapes:?}"
    );
    assert_eq!(c_shapes.first(), e_shapes.first());
    // Each server's own tool reads the file the pieces make.
    let (c_path, e_path) = (dir.path().join("cairn.db"), dir.path().join("etcd.db"));
    std::fs::write(&c_path, &c_file).expect("write");
    std::fs::write(&e_path, &e_file).expect("write");
    let status = Command::new(env!("CARGO_BIN_EXE_cairn-server"))
        .args(["snapshot", "status"])
        .arg(&c_path)
        .output()
        .expect("cairn-server snapshot status");
    assert!(status.status.success(), "{status:?}");
    let status = Command::new("etcdctl")
        .env("ETCDCTL_API", "3")
        .args(["snapshot", "status"])
        .arg(&e_path)
        .output()
        .expect("etcdctl snapshot status");
    assert!(status.status.success(), "{status:?}");

    // With auth on, a snapshot needs an administrator's token.
    for m in [&cairn, &etcd] {
        for args in [&["user", "add", "root:pw"][..], &["auth", "enable"]] {
            assert!(m.etcdctl(args).expect("etcdctl").success());
        }
    }
    let (c_code, c_shapes, _) = snapshot_over_json(&cairn, None);
    let (e_code, e_shapes, _) = snapshot_over_json(&etcd, None);
    crate::assert_same(
        "a snapshot without a token",
        &[c_code, c_shapes.join("\n")],
        &[e_code, e_shapes.join("\n")],
    );
}
