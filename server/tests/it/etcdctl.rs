//! etcdctl 3.4 compatibility: one cairn-server and one etcd 3.4 get the same etcdctl commands,
//! step by step, and must answer identically (stdout, error lines and exit code). The only
//! masked fields are the ones that legitimately differ between two clusters: cluster_id,
//! member_id and raft_term. There are no hand-written expected outputs: etcd is the oracle.

use std::fmt::Write as _;

use cairn_testkit::{CmdOutput, Member};
use regex::Regex;

/// What one server answered to one step, after masking.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Answer {
    pub(crate) stdout: String,
    pub(crate) errors: Vec<String>,
    pub(crate) code: i32,
}

/// A rewrite applied to every answer after the masks (e.g. normalising a table's layout).
pub(crate) type Filter = fn(&str) -> String;

/// Runs every step on cairn-server, then on etcd, and records any difference.
pub(crate) struct Compat {
    pub(crate) cairn: Member,
    pub(crate) etcd: Member,
    masks: Vec<(Regex, String)>,
    filters: Vec<Filter>,
    step: usize,
    mismatches: Vec<String>,
}

impl Compat {
    fn new() -> Self {
        Self::between(crate::cairn(), crate::etcd())
    }

    /// Compares `cairn` with `etcd` (started by the caller, e.g. with extra flags).
    pub(crate) fn between(cairn: Member, etcd: Member) -> Self {
        let masks = [
            (r#""cluster_id":\d+"#, r#""cluster_id":"masked""#),
            (r#""member_id":\d+"#, r#""member_id":"masked""#),
            (r#""raft_term":\d+"#, r#""raft_term":"masked""#),
            (r#""ClusterID" : \d+"#, r#""ClusterID" : <masked>"#),
            (r#""MemberID" : \d+"#, r#""MemberID" : <masked>"#),
            (r#""RaftTerm" : \d+"#, r#""RaftTerm" : <masked>"#),
        ]
        .into_iter()
        .map(|(re, with)| (Regex::new(re).expect("mask regex"), with.to_string()))
        .collect();
        Self {
            cairn,
            etcd,
            masks,
            filters: Vec::new(),
            step: 0,
            mismatches: Vec::new(),
        }
    }

    /// Also masks what `re` matches with `with` (e.g. sizes and versions).
    pub(crate) fn mask(&mut self, re: &str, with: &str) {
        self.masks
            .push((Regex::new(re).expect("mask regex"), with.to_string()));
    }

    /// Also rewrites every answer with `f`, after the masks.
    pub(crate) fn filter(&mut self, f: Filter) {
        self.filters.push(f);
    }

    /// `out` with this comparison's masks and filters applied.
    pub(crate) fn answer(&self, out: CmdOutput) -> Answer {
        let mask = |s: &str| {
            let s = self.masks.iter().fold(s.to_string(), |s, (re, with)| {
                re.replace_all(&s, with.as_str()).into_owned()
            });
            self.filters.iter().fold(s, |s, f| f(&s))
        };
        Answer {
            stdout: mask(&out.stdout),
            errors: out.error_lines().into_iter().map(mask).collect(),
            code: out.code,
        }
    }

    /// A `txn` step that must succeed on etcd: `compares`, `success` and `failure` are lists
    /// of lines (stdin is the three blocks, each ended by a blank line).
    fn txn(
        &mut self,
        flags: &[&str],
        compares: &[&str],
        success: &[&str],
        failure: &[&str],
    ) -> Answer {
        let mut stdin = String::new();
        for block in [compares, success, failure] {
            for line in block {
                stdin.push_str(line);
                stdin.push('\n');
            }
            stdin.push('\n');
        }
        let mut args = vec!["txn"];
        args.extend_from_slice(flags);
        self.ok_with(&args, Some(&stdin))
    }

    /// A step that must succeed on etcd (guards against a sequence that tests nothing).
    pub(crate) fn ok(&mut self, args: &[&str]) -> Answer {
        self.ok_with(args, None)
    }

    /// Like [`Self::ok`], with `stdin`.
    pub(crate) fn ok_stdin(&mut self, args: &[&str], stdin: &str) -> Answer {
        self.ok_with(args, Some(stdin))
    }

    fn ok_with(&mut self, args: &[&str], stdin: Option<&str>) -> Answer {
        let a = self.step_with(args, stdin.map(str::as_bytes));
        assert_eq!(
            a.code,
            0,
            "step {} `etcdctl {}` failed on etcd: {a:?}",
            self.step,
            args.join(" ")
        );
        a
    }

    /// A step that must fail on etcd with an error line containing `error`.
    pub(crate) fn fails(&mut self, args: &[&str], stdin: Option<&str>, error: &str) -> Answer {
        let a = self.step_with(args, stdin.map(str::as_bytes));
        assert!(
            a.code != 0 && a.errors.iter().any(|l| l.contains(error)),
            "step {} `etcdctl {}` was expected to fail with {error:?} on etcd: {a:?}",
            self.step,
            args.join(" ")
        );
        a
    }

    /// The current revision (from a `get -w json`, itself compared).
    pub(crate) fn revision(&mut self) -> i64 {
        let a = self.ok(&["get", "revision-probe", "-w", "json"]);
        let v: serde_json::Value = serde_json::from_str(&a.stdout).expect("get -w json is JSON");
        v["header"]["revision"].as_i64().expect("header.revision")
    }

    fn step_with(&mut self, args: &[&str], stdin: Option<&[u8]>) -> Answer {
        self.step_each(args, args, stdin)
    }

    /// A step whose arguments differ per server (e.g. a member ID or an output path); the
    /// report shows cairn's arguments.
    pub(crate) fn step_each(
        &mut self,
        cairn_args: &[&str],
        etcd_args: &[&str],
        stdin: Option<&[u8]>,
    ) -> Answer {
        self.step += 1;
        let args = cairn_args;
        let exec = |m: &Member, args: &[&str]| match stdin {
            Some(input) => m.etcdctl_stdin(args, input),
            None => m.etcdctl(args),
        };
        let cairn = exec(&self.cairn, cairn_args)
            .unwrap_or_else(|e| panic!("running etcdctl against cairn: {e}"));
        let etcd = exec(&self.etcd, etcd_args)
            .unwrap_or_else(|e| panic!("running etcdctl against etcd: {e}"));
        let (cairn, etcd) = (self.answer(cairn), self.answer(etcd));
        if cairn != etcd {
            let report = mismatch_report(self.step, args, stdin, &cairn, &etcd);
            eprintln!("{report}");
            self.mismatches.push(report);
        }
        etcd
    }

    /// Panics with every mismatch found (the first one is the one that matters most: later
    /// ones may be its consequences, e.g. revisions out of step).
    pub(crate) fn finish(self) {
        if self.mismatches.is_empty() {
            return;
        }
        panic!(
            "cairn-server and etcd 3.4 answered {} of {} etcdctl steps differently:\n\n{}",
            self.mismatches.len(),
            self.step,
            self.mismatches.join("\n")
        );
    }
}

fn show_stdin(stdin: Option<&[u8]>) -> String {
    match stdin {
        None => String::new(),
        Some(s) if s.len() > 200 => format!(" <<< ({} bytes)", s.len()),
        Some(s) => format!(" <<< {:?}", String::from_utf8_lossy(s)),
    }
}

/// Both answers side by side, line by line; differing lines are marked `!!`.
fn mismatch_report(
    step: usize,
    args: &[&str],
    stdin: Option<&[u8]>,
    cairn: &Answer,
    etcd: &Answer,
) -> String {
    let mut r = format!(
        "step {step}: etcdctl {}{}\n",
        args.join(" "),
        show_stdin(stdin)
    );
    const COLUMN: usize = 60;
    let _ = writeln!(
        r,
        "  {:<2} {:<12} {:<COLUMN$} | etcd",
        "", "", "cairn-server"
    );
    let code_mark = if cairn.code == etcd.code { "" } else { "!!" };
    let _ = writeln!(
        r,
        "  {code_mark:<2} {:<12} {:<COLUMN$} | {}",
        "exit code", cairn.code, etcd.code
    );
    let mut section = |name: &str, c: Vec<&str>, e: Vec<&str>| {
        for i in 0..c.len().max(e.len()) {
            let (cl, el) = (c.get(i).copied(), e.get(i).copied());
            let mark = if cl == el { "" } else { "!!" };
            let label = format!("{name} {}", i + 1);
            let (cl, el) = (cl.unwrap_or("<no line>"), el.unwrap_or("<no line>"));
            if cl.chars().count() <= COLUMN {
                let _ = writeln!(r, "  {mark:<2} {label:<12} {cl:<COLUMN$} | {el}");
            } else {
                // Too long for columns (JSON): one above the other.
                let _ = writeln!(r, "  {mark:<2} {label:<12} cairn-server: {cl}");
                let _ = writeln!(r, "  {mark:<2} {label:<12} etcd:         {el}");
            }
        }
    };
    section(
        "stdout",
        cairn.stdout.split('\n').collect(),
        etcd.stdout.split('\n').collect(),
    );
    section(
        "error",
        cairn.errors.iter().map(String::as_str).collect(),
        etcd.errors.iter().map(String::as_str).collect(),
    );
    r
}

#[test]
fn etcdctl_answers_like_etcd() {
    let mut s = Compat::new();

    // --- put ----------------------------------------------------------------------------
    s.ok(&["put", "foo", "bar"]);
    let rev_foo_bar = s.revision();
    s.ok(&["put", "foo", "bar2", "--prev-kv"]);
    s.ok(&["put", "foo", "bar3", "--prev-kv", "-w", "json"]);
    s.ok(&["put", "foo", "--ignore-value", "-w", "json"]);
    s.ok(&["put", "foo", "--ignore-value", "--prev-kv"]);
    s.fails(
        &["put", "nokey", "v", "--ignore-lease"],
        None,
        "key not found",
    );
    s.fails(&["put", "nokey", "--ignore-value"], None, "key not found");
    s.ok(&["put", "empty", ""]);
    s.ok(&["put", "--", "-dash", "v"]);
    s.ok_stdin(&["put", "stdin-key"], "line one\nline two");
    s.ok_stdin(&["put", "stdin-key", "--prev-kv"], "replaced");
    s.ok(&["get", "stdin-key", "-w", "json"]);
    s.ok(&["get", "empty", "-w", "json"]);
    s.ok(&["get", "--", "-dash"]);
    let missing = s.ok(&["get", "nokey"]);
    assert_eq!(missing.stdout, "", "a missing key prints nothing");
    s.ok(&["get", "nokey", "-w", "json"]);
    s.ok(&["get", "foo", "-w", "fields"]);
    s.ok(&["get", "foo", "--hex"]);

    // --- a small key set with distinct create/mod revisions, versions and values -------------
    for (k, v) in [
        ("s/b", "v3"),
        ("s/a", "v5"),
        ("s/d", "v1"),
        ("s/c", "v4"),
        ("s/e", "v2"),
    ] {
        s.ok(&["put", k, v]);
    }
    let rev_sort_initial = s.revision();
    for (k, v) in [("s/a", "v6"), ("s/d", "v7"), ("s/d", "v0"), ("s/b", "v3")] {
        s.ok(&["put", k, v]);
    }
    let rev_sort = s.revision();

    // --- get ----------------------------------------------------------------------------
    let all = s.ok(&["get", "--prefix", "s/"]);
    assert!(!all.stdout.is_empty());
    for target in ["KEY", "VERSION", "CREATE", "MODIFY", "VALUE"] {
        for order in ["ASCEND", "DESCEND"] {
            s.ok(&[
                "get",
                "--prefix",
                "s/",
                "--sort-by",
                target,
                "--order",
                order,
            ]);
        }
    }
    s.ok(&[
        "get",
        "--prefix",
        "s/",
        "--sort-by",
        "VERSION",
        "--order",
        "DESCEND",
        "-w",
        "json",
    ]);
    s.ok(&["get", "--prefix", "s/", "--sort-by", "VALUE"]);
    s.ok(&["get", "--prefix", "s/", "--order", "DESCEND"]);
    s.ok(&["get", "--prefix", "s/", "--order", "ASCEND", "--keys-only"]);
    let limited = s.ok(&["get", "--prefix", "s/", "--limit", "2", "-w", "json"]);
    assert!(limited.stdout.contains(r#""more":true"#), "{limited:?}");
    assert!(limited.stdout.contains(r#""count":5"#), "{limited:?}");
    s.ok(&[
        "get",
        "--prefix",
        "s/",
        "--limit",
        "2",
        "--sort-by",
        "VALUE",
        "--order",
        "DESCEND",
        "-w",
        "json",
    ]);
    s.ok(&[
        "get",
        "--prefix",
        "s/",
        "--limit",
        "3",
        "--sort-by",
        "MODIFY",
        "--order",
        "ASCEND",
        "-w",
        "json",
    ]);
    s.ok(&["get", "--prefix", "s/", "--limit", "5", "-w", "json"]);
    s.ok(&["get", "--prefix", "s/", "--limit", "10"]);
    s.ok(&["get", "--prefix", "s/", "--keys-only"]);
    s.ok(&["get", "--prefix", "s/", "--keys-only", "-w", "json"]);
    s.ok(&["get", "--prefix", "s/", "--print-value-only"]);
    s.ok(&["get", "s/b", "s/d"]);
    s.ok(&["get", "s/b", "s/d", "-w", "json"]);
    s.ok(&["get", "s/c", "--from-key"]);
    s.ok(&[
        "get",
        "s/c",
        "--from-key",
        "--keys-only",
        "--limit",
        "2",
        "-w",
        "json",
    ]);
    s.ok(&["get", "--from-key", ""]);
    s.ok(&["get", "--prefix", "s/", "--consistency", "s"]);
    s.ok(&["get", "--prefix", "s/", "--consistency", "l", "-w", "json"]);
    s.ok(&["get", "foo", "--consistency", "s", "-w", "json"]);
    // Historical reads.
    let old = rev_foo_bar.to_string();
    let old_foo = s.ok(&["get", "foo", "--rev", &old]);
    assert!(old_foo.stdout.contains("bar"), "{old_foo:?}");
    s.ok(&["get", "foo", "--rev", &old, "-w", "json"]);
    let initial = rev_sort_initial.to_string();
    s.ok(&["get", "--prefix", "s/", "--rev", &initial]);
    s.ok(&["get", "--prefix", "s/", "--rev", &initial, "-w", "json"]);
    s.ok(&[
        "get",
        "--prefix",
        "s/",
        "--rev",
        &initial,
        "--sort-by",
        "VALUE",
        "--order",
        "DESCEND",
    ]);
    s.ok(&["get", "--prefix", "s/", "--rev", "1", "-w", "json"]);
    let current = rev_sort.to_string();
    s.ok(&[
        "get",
        "--prefix",
        "s/",
        "--rev",
        &current,
        "--sort-by",
        "MODIFY",
        "--order",
        "DESCEND",
    ]);

    // --- del ----------------------------------------------------------------------------
    s.ok(&["del", "s/e", "--prev-kv"]);
    let none = s.ok(&["del", "nokey"]);
    assert_eq!(none.stdout, "0\n", "{none:?}");
    s.ok(&["del", "nokey", "-w", "json"]);
    s.ok(&["del", "s/a", "s/c", "-w", "json"]);
    s.ok(&["get", "--prefix", "s/"]);
    for (k, v) in [
        ("a/1", "x"),
        ("a/2", "y"),
        ("a/3", "z"),
        ("y1", "1"),
        ("y2", "2"),
        ("z1", "3"),
    ] {
        s.ok(&["put", k, v]);
    }
    s.ok(&["del", "--prefix", "a/", "--prev-kv"]);
    s.ok(&["del", "--prefix", "a/"]);
    s.ok(&["del", "y", "--from-key", "-w", "json"]);
    s.ok(&["del", "s/c"]);
    s.ok(&["del", "s/c", "--prev-kv", "-w", "json"]);
    s.ok(&["put", "s/c", "recreated"]);
    s.ok(&["get", "s/c", "-w", "json"]);
    s.ok(&["get", "--from-key", "", "--keys-only"]);

    // --- txn ----------------------------------------------------------------------------
    let foo_mod = s.ok(&["get", "foo", "-w", "json"]);
    let foo: serde_json::Value = serde_json::from_str(&foo_mod.stdout).expect("json");
    let field = |name: &str| foo["kvs"][0][name].as_i64().expect(name).to_string();
    let (foo_version, foo_create, foo_modrev) = (
        field("version"),
        field("create_revision"),
        field("mod_revision"),
    );
    let txn = s.txn(
        &[],
        &[
            r#"value("foo") = "bar3""#,
            &format!(r#"version("foo") = "{foo_version}""#),
            &format!(r#"create("foo") = "{foo_create}""#),
            &format!(r#"mod("foo") = "{foo_modrev}""#),
        ],
        &[
            "put foo bar4",
            "get foo",
            "del s/d --prev-kv",
            "put t/1 one --prev-kv",
            "get --prefix s/",
        ],
        &["put never taken"],
    );
    assert!(txn.stdout.starts_with("SUCCESS"), "{txn:?}");
    let txn = s.txn(
        &[],
        &[r#"value("foo") = "nope""#, r#"version("s/b") != "0""#],
        &["put never taken"],
        &[
            "put t/2 two",
            "get --prefix t/",
            "del foo --prev-kv",
            "get foo",
        ],
    );
    assert!(txn.stdout.starts_with("FAILURE"), "{txn:?}");
    s.txn(
        &["-w", "json"],
        &[
            r#"mod("s/b") > "0""#,
            r#"version("s/b") < "5""#,
            r#"value("s/b") != "v9""#,
        ],
        &["get s/b", "put s/b v10 --prev-kv", "del t/1 --prev-kv"],
        &["get s/b"],
    );
    s.txn(
        &["-w", "json"],
        &[r#"create("s/b") < "2""#],
        &["get s/b"],
        &["get --prefix t/ --keys-only", "put t/3 three"],
    );
    // Compares against a missing key: etcd treats value compares on it as false, and the
    // other targets as comparing with zero.
    s.txn(
        &[],
        &[r#"value("nokey") != "x""#],
        &["put t/4 four"],
        &["get t/4"],
    );
    s.txn(
        &[],
        &[
            r#"version("nokey") = "0""#,
            r#"create("nokey") = "0""#,
            r#"mod("nokey") < "1""#,
        ],
        &["put t/5 five"],
        &["get t/5"],
    );
    // No compares: the success branch runs.
    s.txn(&[], &[], &["put t/6 six", "get --prefix t/"], &[]);
    // A get and a put of the same key are fine; two writes are not.
    s.txn(&[], &[], &["get t/6", "put t/6 six-bis"], &[]);
    s.fails(
        &["txn"],
        Some("\nput dup 1\nput dup 2\n\n\n"),
        "duplicate key given in txn request",
    );
    s.fails(
        &["txn"],
        Some("\nput dup/1 1\ndel dup/ --prefix\n\n\n"),
        "duplicate key given in txn request",
    );
    s.ok(&["get", "--from-key", "", "-w", "json"]);

    // --- compaction -----------------------------------------------------------------------
    s.ok(&["put", "foo", "c1"]);
    let rev_c1 = s.revision();
    s.ok(&["put", "foo", "c2"]);
    s.ok(&["put", "foo", "c3"]);
    let rev_c3 = s.revision();
    let c1 = rev_c1.to_string();
    let compacted = s.ok(&["compaction", &c1]);
    assert!(!compacted.stdout.is_empty());
    let below_c1 = (rev_c1 - 1).to_string();
    s.fails(
        &["get", "foo", "--rev", &below_c1],
        None,
        "required revision has been compacted",
    );
    s.ok(&["get", "foo", "--rev", &c1]);
    s.fails(
        &["compaction", &c1],
        None,
        "required revision has been compacted",
    );
    s.fails(
        &["compaction", &below_c1],
        None,
        "required revision has been compacted",
    );
    let c3 = rev_c3.to_string();
    s.ok(&["compaction", "--physical", &c3]);
    let below_c3 = (rev_c3 - 1).to_string();
    s.fails(
        &["get", "foo", "--rev", &below_c3],
        None,
        "required revision has been compacted",
    );
    s.fails(
        &["get", "--prefix", "s/", "--rev", &below_c3, "-w", "json"],
        None,
        "required revision has been compacted",
    );
    s.ok(&["get", "foo", "--rev", &c3, "-w", "json"]);
    let future = (rev_c3 + 10).to_string();
    s.fails(
        &["get", "foo", "--rev", &future],
        None,
        "required revision is a future revision",
    );
    s.fails(
        &["compaction", &future],
        None,
        "required revision is a future revision",
    );
    s.ok(&["get", "--prefix", "s/", "-w", "json"]);

    // A transaction reading below the compaction point fails as a whole.
    s.fails(
        &["txn"],
        Some(&format!("\nget foo --rev {below_c3}\nput foo after\n\n\n")),
        "required revision has been compacted",
    );
    s.fails(
        &["txn"],
        Some(&format!("\nget foo --rev {future}\n\n\n")),
        "required revision is a future revision",
    );
    s.fails(
        &["compaction", "0"],
        None,
        "required revision has been compacted",
    );

    // --- validation and limits ---------------------------------------------------------------
    s.fails(&["put", "", "v"], None, "key is not provided");
    s.fails(&["get", ""], None, "key is not provided");
    s.fails(&["del", ""], None, "key is not provided");
    s.fails(
        &["put", "foo", "v", "--ignore-lease", "--lease=1"],
        None,
        "lease is provided",
    );
    s.ok(&["get", "foo", "--rev=-1", "-w", "json"]);
    s.ok(&["get", "foo", "--rev=0"]);
    let too_many: String = (0..129).map(|i| format!("put many/{i} v\n")).collect();
    s.fails(
        &["txn"],
        Some(&format!("\n{too_many}\n\n")),
        "too many operations in txn request",
    );
    let at_limit: String = (0..128).map(|i| format!("put many/{i} v\n")).collect();
    s.ok_stdin(&["txn"], &format!("\n{at_limit}\n\n"));
    let many = s.ok(&["get", "--prefix", "many/", "--limit", "1", "-w", "json"]);
    assert!(many.stdout.contains(r#""count":128"#), "{many:?}");
    s.ok(&["del", "--prefix", "many/"]);
    let big = "x".repeat(1_677_722); // 1.6 MiB, over etcd's 1.5 MiB default request limit.
    s.fails(&["put", "big"], Some(&big), "request is too large");
    s.ok(&["get", "big", "-w", "json"]);
    s.ok(&["put", "big", "small"]);
    s.ok(&["get", "--from-key", "", "-w", "json"]);

    s.finish();
}
