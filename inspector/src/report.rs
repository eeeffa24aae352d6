//! The inspection's result: one [`CheckResult`] per check, each with its figures. This is the
//! `--format json` schema (documented in `docs/inspection.md`); fields are only ever added, and
//! [`SCHEMA_VERSION`] changes when one changes meaning.

use serde::{Deserialize, Serialize};

use crate::{Limit, Status};

/// Version of the JSON schema.
pub const SCHEMA_VERSION: u32 = 1;

/// The checks, in the order they run and are reported. The names are the `check` label of
/// `cairn_inspection_check_status`, which `cairn rules`' alerts select on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckId {
    /// Member list vs inventory, health, one leader, learners, alarms.
    Membership,
    /// HashKV at one revision, revision and raft index spread, key counts per member.
    Consistency,
    /// Size vs quota, fragmentation, growth.
    Database,
    /// Largest values and keys with many versions.
    LargeValues,
    /// Key counts by prefix and their growth since the previous run.
    KeyCountGrowth,
    /// Writes per second by prefix.
    HotPrefixes,
    /// Read latency per member; fsync and commit p99 from `/metrics`.
    Latency,
    /// Days until the served and local certificates expire.
    Certificates,
    /// Age of the newest backup against the schedule (with a `[backup]` table).
    Backups,
}

impl CheckId {
    /// The alert whose runbook section covers this check's findings.
    pub fn runbook_section(self) -> Option<&'static str> {
        Some(match self {
            CheckId::Membership => "etcdMembersDown",
            CheckId::Consistency => "CairnConsistencyMismatch",
            CheckId::Database => "etcdDatabaseQuotaLowSpace",
            CheckId::LargeValues => "CairnLargeValues",
            CheckId::KeyCountGrowth => "CairnKeyCountGrowth",
            CheckId::HotPrefixes => return None,
            CheckId::Latency => "etcdGRPCRequestsSlow",
            CheckId::Certificates => "CairnCertificateExpiry",
            CheckId::Backups => "CairnBackupStale",
        })
    }

    /// Every check, in report order.
    pub const ALL: [CheckId; 9] = [
        CheckId::Membership,
        CheckId::Consistency,
        CheckId::Database,
        CheckId::LargeValues,
        CheckId::KeyCountGrowth,
        CheckId::HotPrefixes,
        CheckId::Latency,
        CheckId::Certificates,
        CheckId::Backups,
    ];

    /// The snake_case name used in JSON and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckId::Membership => "membership",
            CheckId::Consistency => "consistency",
            CheckId::Database => "database",
            CheckId::LargeValues => "large_values",
            CheckId::KeyCountGrowth => "key_count_growth",
            CheckId::HotPrefixes => "hot_prefixes",
            CheckId::Latency => "latency",
            CheckId::Certificates => "certificates",
            CheckId::Backups => "backups",
        }
    }
}

impl std::fmt::Display for CheckId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a figure's value reads; renderers format by it (bytes as KiB/MiB, and so on).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// A plain number (keys, members, versions, indexes).
    Count,
    /// Bytes.
    Bytes,
    /// Percent (0-100).
    Percent,
    /// A ratio (0-1).
    Ratio,
    /// Milliseconds.
    Milliseconds,
    /// Days.
    Days,
    /// Hours.
    Hours,
    /// Events per second.
    PerSecond,
    /// A hash, shown in hex.
    Hash,
}

/// One measured value, about one subject (a member, a key, a prefix, a certificate).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    /// What it is about: a member name, a key, a prefix, a certificate, or `cluster`.
    pub subject: String,
    /// What was measured (`db_size_percent`, `value_bytes`, ...).
    pub name: String,
    /// The value.
    pub value: f64,
    /// Its unit.
    pub unit: Unit,
    /// Its limits, when it is graded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
    /// Its grade (pass when ungraded).
    pub status: Status,
}

impl Figure {
    /// An ungraded figure: context for the graded ones.
    pub fn info(subject: impl Into<String>, name: &str, value: f64, unit: Unit) -> Self {
        Self {
            subject: subject.into(),
            name: name.into(),
            value,
            unit,
            limit: None,
            status: Status::Pass,
        }
    }

    /// A figure graded against `limit`.
    pub fn graded(
        subject: impl Into<String>,
        name: &str,
        value: f64,
        unit: Unit,
        limit: Limit,
    ) -> Self {
        Self {
            status: limit.grade(value),
            limit: Some(limit),
            ..Self::info(subject, name, value, unit)
        }
    }

    /// A figure with a grade decided by the check itself (a hash that differs from the
    /// majority's, a member missing from the list).
    pub fn judged(
        subject: impl Into<String>,
        name: &str,
        value: f64,
        unit: Unit,
        status: Status,
    ) -> Self {
        Self {
            status,
            ..Self::info(subject, name, value, unit)
        }
    }
}

/// One check's outcome.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    /// Which check.
    pub check: CheckId,
    /// Its grade: the worst of its findings.
    pub status: Status,
    /// One line: what was found and, when it is not a pass, what to do.
    pub summary: String,
    /// The measurements behind it.
    pub figures: Vec<Figure>,
    /// The runbook section for what was found (`[alerts] runbook_url`), when it is not a
    /// pass and the check has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<String>,
}

impl CheckResult {
    /// A result whose status is the worst of its figures' and `floor`.
    pub fn new(check: CheckId, floor: Status, summary: String, figures: Vec<Figure>) -> Self {
        let status = figures
            .iter()
            .map(|f| f.status)
            .chain([floor])
            .max()
            .unwrap_or_default();
        Self {
            check,
            status,
            summary,
            figures,
            runbook: None,
        }
    }

    /// A check that could not be made: a failure saying why.
    pub fn not_made(check: CheckId, why: String) -> Self {
        Self::new(check, Status::Fail, why, Vec::new())
    }

    /// The figures that are not a pass.
    pub fn findings(&self) -> impl Iterator<Item = &Figure> {
        self.figures.iter().filter(|f| f.status != Status::Pass)
    }
}

/// A whole inspection.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// The cluster's name (`[cluster] name`, or the endpoints).
    pub cluster: String,
    /// When the inspection started, in seconds since the Unix epoch.
    pub started_at: u64,
    /// How long it took, in seconds.
    pub duration_seconds: f64,
    /// The worst check's status.
    pub status: Status,
    /// Every check made, in [`CheckId::ALL`] order (backups only with a `[backup]` table).
    pub checks: Vec<CheckResult>,
    /// Each member as it answered, for an overview.
    #[serde(default)]
    pub members: Vec<MemberView>,
}

/// One member at a glance: what its status call said, or why it did not answer.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MemberView {
    /// Its name.
    pub name: String,
    /// Its client URL.
    pub endpoint: String,
    /// Whether it answered.
    pub answered: bool,
    /// Whether it is the leader.
    pub leader: bool,
    /// Whether it is a learner.
    pub learner: bool,
    /// Its store's revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
    /// Backend file size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_size: Option<u64>,
    /// Bytes of it in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub db_size_in_use: Option<u64>,
    /// Why it did not answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Report {
    /// A report of `checks`; its status is the worst of theirs.
    pub fn new(
        cluster: String,
        started_at: u64,
        duration_seconds: f64,
        checks: Vec<CheckResult>,
    ) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            cluster,
            started_at,
            duration_seconds,
            status: checks.iter().map(|c| c.status).max().unwrap_or_default(),
            checks,
            members: Vec::new(),
        }
    }

    /// With the members' overview.
    pub fn with_members(mut self, members: Vec<MemberView>) -> Self {
        self.members = members;
        self
    }

    /// The result of `check`, when it ran.
    pub fn check(&self, check: CheckId) -> Option<&CheckResult> {
        self.checks.iter().find(|c| c.check == check)
    }
}
