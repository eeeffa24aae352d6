//! One inspection: gathers from a [`Source`] what each check needs, asking members in
//! parallel where the questions are independent, grades it, and keeps the counts for the
//! next run.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::future::join_all;

use crate::checks::latency::Measured;
use crate::checks::membership::Expected;
use crate::checks::{self, certificates::Found};
use crate::source::{Consistency, MemberStatus, Source};
use crate::state::{Sample, State, StateStore};
use crate::{keyspace_diff, scan, CheckId, CheckResult, Error, Limits, MemberView, Report};
use crate::{unix_seconds, Clock};

/// Reads per member and kind for the latency check; the median is reported.
const LATENCY_READS: usize = 5;

/// What to inspect against.
#[derive(Clone, Debug)]
pub struct Options {
    /// The cluster's name for the report.
    pub cluster: String,
    /// The members the operator expects (empty: the member list is not compared).
    pub expected: Vec<Expected>,
    /// The limits.
    pub limits: Limits,
    /// The local PKI directory whose certificates are checked too.
    pub local_pki: Option<PathBuf>,
    /// What the backup store says, with a `[backup]` table (no backups check without).
    pub backups: Option<checks::backups::BackupCheck>,
}

/// Inspects the cluster behind `source`. Fails only when no member answers at all or the
/// state cannot be kept; everything else is a graded finding in the report.
pub async fn inspect<S: Source>(
    source: &S,
    clock: &dyn Clock,
    store: &dyn StateStore,
    options: &Options,
) -> Result<Report, Error> {
    let started = clock.now();
    let timer = Instant::now();
    let limits = &options.limits;
    let targets = source.targets();
    let n = targets.len();
    let mut statuses: Vec<Result<MemberStatus, Error>> =
        join_all((0..n).map(|t| source.status(t))).await;
    let answering: Vec<usize> = (0..n).filter(|&t| statuses[t].is_ok()).collect();
    let Some(&first) = answering.first() else {
        return Err(match statuses.drain(..).find_map(Result::err) {
            Some(why) => Error::NoMemberAnswers(Box::new(why)),
            None => Error::NoEndpoints,
        });
    };
    let ok = |t: usize| statuses[t].as_ref().ok();
    // The leader answers the scan and the watch; any answering member when none leads.
    let leader = answering
        .iter()
        .copied()
        .find(|&t| ok(t).is_some_and(|s| s.leader_id != 0 && s.leader_id == s.member_id))
        .unwrap_or(first);

    let list = source.member_list(first).await;
    let alarms = source.alarms(first).await;
    let mut results = vec![checks::membership::evaluate(
        targets,
        &options.expected,
        &statuses,
        &list,
        &alarms,
        limits,
    )];

    // Every answering member has applied the lowest revision among them.
    let revision = answering
        .iter()
        .filter_map(|&t| ok(t).map(|s| s.revision))
        .min()
        .unwrap_or(0);
    let hashes = join_all((0..n).map(|t| async move {
        match ok(t) {
            Some(_) => Some(source.hash_kv(t, revision).await),
            None => None,
        }
    }))
    .await;
    let counts = join_all((0..n).map(|t| async move {
        match ok(t) {
            Some(_) => Some(source.count(t, revision).await),
            None => None,
        }
    }))
    .await;
    // Diverged members: which keys differ, against a member of the largest group.
    let divergences = match checks::consistency::diverged(&hashes) {
        Some((reference, others)) => {
            join_all(others.into_iter().map(|t| async move {
                keyspace_diff::compare(source, reference, t, revision)
                    .await
                    .map_err(|e| (targets[t].name.clone(), e))
            }))
            .await
        }
        None => Vec::new(),
    };
    results.push(checks::consistency::evaluate(
        targets,
        &statuses,
        revision,
        &hashes,
        &counts,
        &divergences,
        limits,
    ));

    let previous = store.load()?;
    let metrics = join_all((0..n).map(|t| async move {
        match ok(t) {
            Some(_) => source.metrics(t).await,
            None => None,
        }
    }))
    .await;
    let quotas: Vec<u64> = (0..n)
        .map(|t| {
            let reported = ok(t).map_or(0, |s| s.db_size_quota);
            let exported = metrics[t]
                .as_ref()
                .and_then(|m| m.gauge("etcd_server_quota_backend_bytes"))
                .filter(|q| *q > 0.0)
                .map(|q| q as u64);
            if reported > 0 {
                reported
            } else {
                exported.unwrap_or(limits.default_quota_bytes)
            }
        })
        .collect();
    results.push(checks::database::evaluate(
        targets,
        &statuses,
        &quotas,
        previous.as_ref(),
        limits,
    ));

    // The scan reads the leader's own revision, not the hashes' common one: a write a client
    // saw succeed is in the report even while a follower has yet to apply it.
    let scan_revision = ok(leader).map_or(revision, |s| s.revision);
    let window = limits.hot_prefix_window;
    let (scanned, writes) = tokio::join!(
        scan::scan(source, leader, scan_revision, limits),
        source.writes(leader, window, limits.inspection.prefix_depth)
    );
    let mut next_state = None;
    let mut largest_value = 0;
    match scanned {
        Ok(summary) => {
            largest_value = summary.top.first().map_or(0, |(_, size)| *size);
            results.push(checks::large_values::evaluate(&summary, limits));
            results.push(checks::key_counts::evaluate(
                summary.keys,
                &summary.prefixes,
                previous.as_ref(),
                limits,
            ));
            next_state = Some(State {
                inspected_at: unix_seconds(started),
                total_keys: summary.keys,
                prefixes: summary.prefixes,
                db_size: targets
                    .iter()
                    .zip(&statuses)
                    .filter_map(|(t, s)| Some((t.name.clone(), s.as_ref().ok()?.db_size)))
                    .collect(),
                history: Vec::new(),
            });
        }
        Err(e) => {
            let why = format!(
                "the keyspace scan of {} failed: {}",
                targets[leader].name,
                cairn_client::chain(&e)
            );
            results.push(CheckResult::not_made(CheckId::LargeValues, why.clone()));
            results.push(CheckResult::not_made(CheckId::KeyCountGrowth, why));
        }
    }
    results.push(match writes {
        Ok(w) => checks::hot_prefixes::evaluate(&w, window, limits),
        Err(e) => CheckResult::not_made(
            CheckId::HotPrefixes,
            format!(
                "watching {} failed: {}",
                targets[leader].name,
                cairn_client::chain(&e)
            ),
        ),
    });

    let mut measured = Vec::with_capacity(n);
    for (t, m) in metrics.into_iter().enumerate() {
        let mut me = Measured {
            metrics: m,
            ..Measured::default()
        };
        if let Some(status) = ok(t) {
            me.serializable = Some(median_read(source, t, Consistency::Serializable).await);
            // Learners refuse linearizable reads.
            if !status.is_learner {
                me.linearizable = Some(median_read(source, t, Consistency::Linearizable).await);
            }
        }
        measured.push(me);
    }
    results.push(checks::latency::evaluate(targets, &measured, limits));

    let served = join_all((0..n).map(|t| source.served_certificate(t))).await;
    let mut found = Vec::new();
    let mut tls = false;
    for ((t, s), status) in targets.iter().zip(served).zip(&statuses) {
        let name = format!("{}-server", t.name);
        match s {
            Ok(None) => {}
            Ok(Some(der)) => {
                tls = true;
                found.push(Found {
                    name,
                    not_after: not_after(&der),
                    member_silent: false,
                });
            }
            Err(e) if t.endpoint.starts_with("https://") => {
                tls = true;
                found.push(Found {
                    name,
                    not_after: Err(e),
                    member_silent: status.is_err(),
                });
            }
            Err(_) => {}
        }
    }
    if let Some(dir) = &options.local_pki {
        tls = true;
        found.extend(local_certificates(dir));
    }
    // Measured at the inspection's start, so the exported expiry (start + days left) is exact.
    results.push(checks::certificates::evaluate(&found, tls, started, limits));
    if let Some(backups) = &options.backups {
        results.push(backups.run(started).await);
    }

    for r in &mut results {
        if r.status != crate::Status::Pass {
            r.runbook = r.check.runbook_section().map(|s| limits.alerts.runbook(s));
        }
    }
    let members: Vec<MemberView> = targets
        .iter()
        .zip(&statuses)
        .map(|(t, s)| match s {
            Ok(s) => MemberView {
                name: t.name.clone(),
                endpoint: t.endpoint.clone(),
                answered: true,
                leader: s.leader_id != 0 && s.leader_id == s.member_id,
                learner: s.is_learner,
                revision: Some(s.revision),
                db_size: Some(s.db_size),
                db_size_in_use: Some(s.db_size_in_use),
                error: None,
            },
            Err(e) => MemberView {
                name: t.name.clone(),
                endpoint: t.endpoint.clone(),
                error: Some(cairn_client::chain(e)),
                ..MemberView::default()
            },
        })
        .collect();
    let report = Report::new(
        options.cluster.clone(),
        unix_seconds(started),
        timer.elapsed().as_secs_f64(),
        results,
    )
    .with_members(members);
    if let Some(state) = next_state {
        let sample = Sample {
            inspected_at: state.inspected_at,
            status: report.status,
            total_keys: state.total_keys,
            prefixes: Sample::top_prefixes(&state.prefixes),
            db_size: state.db_size.clone(),
            in_use_ratio: report
                .members
                .iter()
                .filter_map(|m| {
                    let (size, used) = (m.db_size?, m.db_size_in_use?);
                    (size > 0 && used > 0).then(|| (m.name.clone(), used as f64 / size as f64))
                })
                .collect(),
            largest_value,
        };
        let history = previous.map(|p| p.history).unwrap_or_default();
        store.save(&state.with_sample(history, sample, limits.inspection.history))?;
    }
    Ok(report)
}

async fn median_read<S: Source>(source: &S, t: usize, c: Consistency) -> Result<Duration, Error> {
    let mut times = Vec::with_capacity(LATENCY_READS);
    for _ in 0..LATENCY_READS {
        times.push(source.read(t, c).await?);
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// A DER certificate's expiry, in seconds since the Unix epoch.
pub fn not_after(der: &[u8]) -> Result<u64, Error> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).map_err(Error::NotACertificate)?;
    Ok(cert.validity().not_after.timestamp().max(0) as u64)
}

/// Every certificate (`*.pem` but keys) in `dir`, sorted by file name.
fn local_certificates(dir: &Path) -> Vec<Found> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(source) => {
            return vec![Found {
                name: dir.display().to_string(),
                not_after: Err(Error::PkiDir {
                    path: dir.to_path_buf(),
                    source,
                }),
                member_silent: false,
            }]
        }
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "pem")
                && !p
                    .file_stem()
                    .is_some_and(|s| s.to_string_lossy().ends_with("-key"))
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let name = format!(
                "pki/{}",
                p.file_name()
                    .map(|f| f.to_string_lossy())
                    .unwrap_or_default()
            );
            let not_after = std::fs::read(&p)
                .map_err(|source| Error::CertificateRead {
                    path: p.clone(),
                    source,
                })
                .and_then(|pem| {
                    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).map_err(Error::NotPem)?;
                    not_after(&pem.contents)
                });
            Found {
                name,
                not_after,
                member_silent: false,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::fake::FakeCluster;
    use crate::{FakeClock, MemoryStore, Status};

    fn options(c: &FakeCluster) -> Options {
        Options {
            cluster: "fake".into(),
            expected: c
                .targets
                .iter()
                .map(|t| Expected {
                    name: Some(t.name.clone()),
                    client_url: t.endpoint.clone(),
                })
                .collect(),
            limits: Limits::default(),
            local_pki: None,
            backups: None,
        }
    }

    fn clock() -> FakeClock {
        FakeClock::new(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000))
    }

    fn run(c: &FakeCluster, o: &Options, store: &MemoryStore) -> Report {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(inspect(c, &clock(), store, o))
            .expect("inspection")
    }

    #[test]
    fn a_healthy_cluster_passes_every_check_and_keeps_its_counts() {
        let c = FakeCluster::healthy(3, &[("/a/b/1", 10), ("/a/b/2", 20), ("/c", 5)]);
        let store = MemoryStore::default();
        let r = run(&c, &options(&c), &store);
        assert_eq!(r.status, Status::Pass, "{r:#?}");
        assert_eq!(
            r.checks.iter().map(|c| c.check).collect::<Vec<_>>(),
            CheckId::ALL[..8]
        );
        let state = store.load().expect("load").expect("saved");
        assert_eq!(state.total_keys, 3);
        assert_eq!(state.prefixes["/a/b/"], 2);
        assert_eq!(state.inspected_at, 1_700_000_000);
        assert_eq!(state.db_size["m2"], 1 << 20);
    }

    #[test]
    fn a_diverged_member_fails_consistency_by_name() {
        let mut c = FakeCluster::healthy(3, &[("/a/1", 10), ("/a/2", 20)]);
        c.members[2].keys.insert(b"/a/3".to_vec(), (1, 1));
        let r = run(&c, &options(&c), &MemoryStore::default());
        let check = r.check(CheckId::Consistency).expect("consistency");
        assert_eq!(check.status, Status::Fail);
        assert!(
            check
                .summary
                .starts_with("members disagree at revision 100: m1, m2 hash"),
            "{}",
            check.summary
        );
        assert!(check.summary.contains(" vs m3 hash "), "{}", check.summary);
        assert!(
            check.summary.contains("m1, m2 2 keys vs m3 3 keys"),
            "{}",
            check.summary
        );
        assert!(
            check.summary.contains(
                "m3 differs from m1 in 1 key(s) at revision 100: /a/3 (only on m3, revision 1)"
            ),
            "{}",
            check.summary
        );
    }

    #[test]
    fn a_silent_member_fails_membership_while_the_others_are_inspected() {
        let mut c = FakeCluster::healthy(3, &[("/a/1", 2_000_000)]);
        c.members[1].silent = true;
        let r = run(&c, &options(&c), &MemoryStore::default());
        let m = r.check(CheckId::Membership).expect("membership");
        assert_eq!(m.status, Status::Fail);
        assert!(
            m.summary.starts_with("m2 does not answer: "),
            "{}",
            m.summary
        );
        let large = r.check(CheckId::LargeValues).expect("large values");
        assert_eq!(large.status, Status::Fail);
        let hashes = r
            .check(CheckId::Consistency)
            .expect("consistency")
            .figures
            .iter()
            .filter(|f| f.name == "hash")
            .count();
        assert_eq!(hashes, 2);
    }

    #[test]
    fn the_scan_pages_through_the_keyspace_within_its_byte_budget() {
        let keys: Vec<(String, u64)> = (0..25)
            .map(|i| (format!("/k/{i:02}"), 512 * 1024))
            .collect();
        let refs: Vec<(&str, u64)> = keys.iter().map(|(k, s)| (k.as_str(), *s)).collect();
        let c = FakeCluster::healthy(1, &refs);
        let mut o = options(&c);
        o.limits.inspection.scan_page_keys = 10;
        o.limits.inspection.scan_page_bytes = 2 << 20;
        let r = run(&c, &o, &MemoryStore::default());
        let scanned = r
            .check(CheckId::LargeValues)
            .expect("large values")
            .figures
            .iter()
            .find(|f| f.name == "keys_scanned")
            .expect("keys scanned")
            .value;
        assert_eq!(scanned, 25.0);
        let pages = c.pages.lock().expect("pages").clone();
        // The first page is full size; once 512 KiB values are seen, 4 fit the 2 MiB budget.
        assert_eq!(pages[0], 10);
        assert!(pages[1..].iter().all(|&l| l == 4), "{pages:?}");
    }

    #[test]
    fn key_count_growth_is_measured_against_the_previous_run() {
        let keys: Vec<String> = (0..100).map(|i| format!("/jobs/{i}")).collect();
        let refs: Vec<(&str, u64)> = keys.iter().map(|k| (k.as_str(), 1)).collect();
        let mut c = FakeCluster::healthy(1, &refs);
        let store = MemoryStore::default();
        assert_eq!(run(&c, &options(&c), &store).status, Status::Pass);
        for i in 100..160 {
            c.members[0]
                .keys
                .insert(format!("/jobs/{i}").into_bytes(), (1, 1));
        }
        let r = run(&c, &options(&c), &store);
        let growth = r.check(CheckId::KeyCountGrowth).expect("growth");
        assert_eq!(growth.status, Status::Fail, "{growth:?}");
        assert!(
            growth
                .summary
                .contains("/jobs/ grew from 100 to 160 keys (+60%)"),
            "{}",
            growth.summary
        );
    }

    #[test]
    fn hot_prefixes_come_from_the_watch() {
        let mut c = FakeCluster::healthy(1, &[]);
        c.members[0].writes = (0..50).map(|i| format!("/hot/{i}").into_bytes()).collect();
        let mut o = options(&c);
        o.limits.hot_prefix_window = Duration::from_secs(1);
        o.limits.inspection.hot_prefix_warn_per_second = 10.0;
        o.limits.inspection.hot_prefix_fail_per_second = 40.0;
        let r = run(&c, &o, &MemoryStore::default());
        let hot = r.check(CheckId::HotPrefixes).expect("hot");
        assert_eq!(hot.status, Status::Fail);
        assert_eq!(
            (hot.figures[1].subject.as_str(), hot.figures[1].value),
            ("/hot/", 50.0)
        );
    }

    #[test]
    fn no_member_answering_is_an_error() {
        let mut c = FakeCluster::healthy(2, &[]);
        for m in &mut c.members {
            m.silent = true;
        }
        let err = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(inspect(&c, &clock(), &MemoryStore::default(), &options(&c)))
            .expect_err("nobody answers");
        assert!(matches!(err, Error::NoMemberAnswers(_)), "{err}");
    }
}
