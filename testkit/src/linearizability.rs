//! A linearizability checker for histories of key-value operations.
//!
//! Concurrent test clients record every call they make with a [`Recorder`]: [`Recorder::invoke`]
//! right before sending a request, then [`Recorder::complete`] with what came back, or
//! [`Recorder::fail_unknown`] when the outcome is unknown (timeout, connection lost: the
//! operation may or may not have taken effect). [`Recorder::check`] then decides whether some
//! sequential order of the operations, consistent with real time (an operation that returned
//! before another was invoked comes first), explains every observed output.
//!
//! The model is a map from keys to values in which **every key starts absent**; use fresh keys
//! (or record the initial writes). Operations touch one key each, so the history is split by
//! key and every key is checked on its own (as Porcupine does). Each key is checked with the
//! Wing & Gong / Lowe search: linearize a pending operation if the model allows it, backtrack
//! when an operation's return is reached without it being linearized, and memoize the visited
//! (set of linearized operations, model state) pairs so that no configuration is explored
//! twice.
//!
//! A test that injects faults says when: [`Recorder::fault_begins`] and
//! [`Recorder::fault_ends`] (once the cluster is healthy again) bound the windows in which a
//! read may fail. A read whose outcome is unknown although it overlaps no such window failed
//! while the cluster was healthy: that is a failure ([`LinearizabilityError::ReadFailed`]),
//! not an unknown outcome. A history without fault windows was healthy throughout.
//!
//! An operation with an unknown outcome is treated as returning at infinity with an
//! unconstrained output: it may take effect at any time after its invocation, or never
//! (linearizing it after everything else is the same as it never happening). Unknown-outcome
//! reads constrain nothing and are dropped. Many unknown-outcome writes on one key make the
//! search exponential in the worst case; the search is bounded by [`CheckOptions`] and then
//! ends with [`LinearizabilityError::Inconclusive`] instead of hanging.
//!
//! ```
//! use cairn_testkit::linearizability::{KvInput, KvOutput, Recorder};
//!
//! let rec = Recorder::new();
//! let a = rec.invoke(0, KvInput::put("k", "v1"));
//! let b = rec.invoke(1, KvInput::get("k"));
//! rec.complete(a, KvOutput::Put);
//! rec.complete(b, KvOutput::Get(None)); // overlapped the put: may see the old value
//! let c = rec.invoke(1, KvInput::get("k"));
//! rec.complete(c, KvOutput::found("v1"));
//! rec.check()?;
//! # Ok::<(), cairn_testkit::linearizability::LinearizabilityError>(())
//! ```

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// Identifies the client (task, thread, connection) that issued an operation. Only used for
/// printing; the checker does not require a client's operations to be sequential.
pub type ClientId = usize;

/// Identifies an operation in a [`History`]: its index, in invocation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OpId(pub usize);

impl fmt::Display for OpId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}", self.0)
    }
}

/// A call on the key-value model. Every call reads or writes exactly one key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvInput {
    /// Sets `key` to `value`. Answered by [`KvOutput::Put`].
    Put {
        /// The key written.
        key: Vec<u8>,
        /// The value written.
        value: Vec<u8>,
    },
    /// Reads `key`. Answered by [`KvOutput::Get`].
    Get {
        /// The key read.
        key: Vec<u8>,
    },
    /// A transaction that sets `key` to `new` if its current value is `expect` (`None`: if the
    /// key is absent). Answered by [`KvOutput::Cas`] (whether the comparison succeeded).
    Cas {
        /// The key compared and written.
        key: Vec<u8>,
        /// The value the key must have (`None`: the key must be absent).
        expect: Option<Vec<u8>>,
        /// The value written if the comparison succeeds.
        new: Vec<u8>,
    },
    /// Deletes `key`. Answered by [`KvOutput::Delete`] (whether the key existed).
    Delete {
        /// The key deleted.
        key: Vec<u8>,
    },
}

impl KvInput {
    /// A [`KvInput::Put`].
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Self {
        Self::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    /// A [`KvInput::Get`].
    pub fn get(key: impl Into<Vec<u8>>) -> Self {
        Self::Get { key: key.into() }
    }

    /// A [`KvInput::Cas`] that expects `key` to hold `expect`.
    pub fn cas(
        key: impl Into<Vec<u8>>,
        expect: impl Into<Vec<u8>>,
        new: impl Into<Vec<u8>>,
    ) -> Self {
        Self::Cas {
            key: key.into(),
            expect: Some(expect.into()),
            new: new.into(),
        }
    }

    /// A [`KvInput::Cas`] that expects `key` to be absent (create-if-absent).
    pub fn cas_absent(key: impl Into<Vec<u8>>, new: impl Into<Vec<u8>>) -> Self {
        Self::Cas {
            key: key.into(),
            expect: None,
            new: new.into(),
        }
    }

    /// A [`KvInput::Delete`].
    pub fn delete(key: impl Into<Vec<u8>>) -> Self {
        Self::Delete { key: key.into() }
    }

    /// The key the call reads or writes.
    pub fn key(&self) -> &[u8] {
        match self {
            Self::Put { key, .. }
            | Self::Get { key }
            | Self::Cas { key, .. }
            | Self::Delete { key } => key,
        }
    }

    /// Whether `output` is the kind of answer this call gets.
    pub fn matches(&self, output: &KvOutput) -> bool {
        matches!(
            (self, output),
            (Self::Put { .. }, KvOutput::Put)
                | (Self::Get { .. }, KvOutput::Get(_))
                | (Self::Cas { .. }, KvOutput::Cas(_))
                | (Self::Delete { .. }, KvOutput::Delete(_))
        )
    }
}

impl fmt::Display for KvInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Put { key, value } => write!(f, "put({}, {})", Bytes(key), Bytes(value)),
            Self::Get { key } => write!(f, "get({})", Bytes(key)),
            Self::Cas { key, expect, new } => write!(
                f,
                "cas({}, {} -> {})",
                Bytes(key),
                MaybeBytes(expect.as_deref()),
                Bytes(new)
            ),
            Self::Delete { key } => write!(f, "delete({})", Bytes(key)),
        }
    }
}

/// The answer to a [`KvInput`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvOutput {
    /// A put succeeded.
    Put,
    /// A get saw this value (`None`: the key was absent).
    Get(Option<Vec<u8>>),
    /// Whether a compare-and-set's comparison succeeded (and it wrote).
    Cas(bool),
    /// Whether a delete found (and removed) the key.
    Delete(bool),
}

impl KvOutput {
    /// A [`KvOutput::Get`] that saw `value`.
    pub fn found(value: impl Into<Vec<u8>>) -> Self {
        Self::Get(Some(value.into()))
    }
}

impl fmt::Display for KvOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Put => f.write_str("ok"),
            Self::Get(v) => write!(f, "{}", MaybeBytes(v.as_deref())),
            Self::Cas(ok) | Self::Delete(ok) => write!(f, "{ok}"),
        }
    }
}

/// How an operation ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// No answer was recorded (yet). Checked like [`Outcome::Unknown`].
    Pending,
    /// The call returned `output` at `at` (time since the history's origin).
    Returned {
        /// When the answer arrived.
        at: Duration,
        /// The answer.
        output: KvOutput,
    },
    /// The call failed in a way that leaves open whether it took effect (timeout, lost
    /// connection); it may take effect at any time after its invocation, or never.
    Unknown {
        /// When the client gave up (only printed; it does not bound the operation).
        noticed: Duration,
    },
    /// The call definitely did not take effect (e.g. it was rejected before being sent);
    /// ignored by the checker.
    Discarded,
}

/// One recorded call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    /// Who made the call.
    pub client: ClientId,
    /// What was called.
    pub input: KvInput,
    /// When the call was made (time since the history's origin).
    pub invoked: Duration,
    /// How it ended.
    pub outcome: Outcome,
}

/// A history of calls on the key-value model, as recorded by a [`Recorder`] or built by hand.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    ops: Vec<Operation>,
    /// When faults were in force: from, and until (`None`: to the end).
    faults: Vec<(Duration, Option<Duration>)>,
}

impl History {
    /// An empty history.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends an operation; returns its id.
    pub fn push(&mut self, op: Operation) -> OpId {
        self.ops.push(op);
        OpId(self.ops.len() - 1)
    }

    /// Appends a call made by `client` at `invoked` that returned `output` at `returned`.
    pub fn push_returned(
        &mut self,
        client: ClientId,
        input: KvInput,
        output: KvOutput,
        invoked: Duration,
        returned: Duration,
    ) -> OpId {
        self.push(Operation {
            client,
            input,
            invoked,
            outcome: Outcome::Returned {
                at: returned,
                output,
            },
        })
    }

    /// Appends a call made by `client` at `invoked` whose outcome is unknown; the client gave
    /// up on it at `noticed`.
    pub fn push_unknown(
        &mut self,
        client: ClientId,
        input: KvInput,
        invoked: Duration,
        noticed: Duration,
    ) -> OpId {
        self.push(Operation {
            client,
            input,
            invoked,
            outcome: Outcome::Unknown { noticed },
        })
    }

    /// Records that a fault was in force from `from` until `until` (`None`: to the end of the
    /// history): reads overlapping it may fail.
    pub fn push_fault(&mut self, from: Duration, until: Option<Duration>) {
        self.faults.push((from, until));
    }

    /// Whether the interval `[from, to]` overlaps a fault window.
    fn during_fault(&self, from: Duration, to: Duration) -> bool {
        self.faults
            .iter()
            .any(|&(start, end)| start <= to && end.is_none_or(|end| from <= end))
    }

    /// All operations; index `i` is [`OpId`]`(i)`.
    pub fn ops(&self) -> &[Operation] {
        &self.ops
    }

    /// How many operations there are.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether there are no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Checks the history with the default [`CheckOptions`].
    pub fn check(&self) -> Result<(), LinearizabilityError> {
        self.check_with(&CheckOptions::default())
    }

    /// Checks that the history is linearizable: every key on its own (keys start absent), in
    /// key order; the first key that fails ends the check.
    pub fn check_with(&self, options: &CheckOptions) -> Result<(), LinearizabilityError> {
        let deadline = options.timeout.map(|t| Instant::now() + t);
        let mut by_key: BTreeMap<&[u8], Vec<usize>> = BTreeMap::new();
        for (i, op) in self.ops.iter().enumerate() {
            if let Outcome::Returned { at, output } = &op.outcome {
                if !op.input.matches(output) {
                    return Err(LinearizabilityError::OutputMismatch {
                        op: OpId(i),
                        input: op.input.clone(),
                        output: output.clone(),
                    });
                }
                if *at < op.invoked {
                    return Err(LinearizabilityError::ReturnBeforeInvoke {
                        op: OpId(i),
                        invoked: op.invoked,
                        returned: *at,
                    });
                }
            }
            if let (KvInput::Get { .. }, Outcome::Unknown { noticed }) = (&op.input, &op.outcome) {
                if !self.during_fault(op.invoked, *noticed) {
                    return Err(LinearizabilityError::ReadFailed {
                        op: OpId(i),
                        input: op.input.clone(),
                        invoked: op.invoked,
                        noticed: *noticed,
                    });
                }
            }
            if op.outcome != Outcome::Discarded {
                by_key.entry(op.input.key()).or_default().push(i);
            }
        }
        for (key, ids) in by_key {
            let search = Search::new(&self.ops, &ids);
            match search.run(options.max_steps, deadline) {
                SearchResult::Linearizable => {}
                SearchResult::Violation {
                    prefix,
                    value,
                    stuck,
                } => {
                    return Err(LinearizabilityError::NotLinearizable(Box::new(Violation {
                        key: key.to_vec(),
                        ops: self.key_ops(&ids),
                        longest_prefix: prefix.into_iter().map(|i| OpId(ids[i])).collect(),
                        value_after_prefix: value,
                        stuck: stuck.into_iter().map(|i| OpId(ids[i])).collect(),
                    })));
                }
                SearchResult::Limit { steps, elapsed } => {
                    return Err(LinearizabilityError::Inconclusive(Box::new(Inconclusive {
                        key: key.to_vec(),
                        ops: self.key_ops(&ids),
                        steps,
                        elapsed,
                    })));
                }
            }
        }
        Ok(())
    }

    fn key_ops(&self, ids: &[usize]) -> Vec<(OpId, Operation)> {
        let mut ops: Vec<_> = ids
            .iter()
            .map(|&i| (OpId(i), self.ops[i].clone()))
            .collect();
        ops.sort_by_key(|(id, op)| (op.invoked, *id));
        ops
    }
}

/// Records a [`History`] from concurrent clients. Cheap to clone (all clones share one
/// history), `Send + Sync`, and never blocks for long, so it can be used from async tasks.
///
/// Times are taken from [`Instant::now`] under the recorder's lock, relative to when the
/// recorder was created.
#[derive(Clone, Debug)]
pub struct Recorder {
    inner: Arc<Mutex<RecorderInner>>,
}

#[derive(Debug)]
struct RecorderInner {
    start: Instant,
    history: History,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    /// A recorder with an empty history; times are measured from now.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(RecorderInner {
                start: Instant::now(),
                history: History::new(),
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, RecorderInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records that `client` is about to call `input`. Call it right before sending the
    /// request, then report the answer with [`Recorder::complete`], [`Recorder::fail_unknown`]
    /// or [`Recorder::discard`]. An operation never reported counts as unknown.
    pub fn invoke(&self, client: ClientId, input: KvInput) -> OpId {
        let mut inner = self.lock();
        let invoked = inner.start.elapsed();
        inner.history.push(Operation {
            client,
            input,
            invoked,
            outcome: Outcome::Pending,
        })
    }

    fn finish(&self, id: OpId, outcome: impl FnOnce(Duration) -> Outcome) {
        let mut inner = self.lock();
        let now = inner.start.elapsed();
        let op = inner
            .history
            .ops
            .get_mut(id.0)
            .unwrap_or_else(|| panic!("operation {id} was not invoked on this recorder"));
        assert!(
            op.outcome == Outcome::Pending,
            "operation {id} ({}) was already finished: {:?}",
            op.input,
            op.outcome
        );
        op.outcome = outcome(now);
    }

    /// Records that operation `id` returned `output` (now).
    ///
    /// # Panics
    ///
    /// If `id` is not from this recorder or the operation was already finished.
    pub fn complete(&self, id: OpId, output: KvOutput) {
        self.finish(id, |at| Outcome::Returned { at, output });
    }

    /// Records that operation `id` failed in a way that leaves open whether it took effect
    /// (timeout, connection lost, member killed).
    ///
    /// # Panics
    ///
    /// If `id` is not from this recorder or the operation was already finished.
    pub fn fail_unknown(&self, id: OpId) {
        self.finish(id, |noticed| Outcome::Unknown { noticed });
    }

    /// Records that operation `id` definitely did not take effect (e.g. rejected before it
    /// was sent); the checker ignores it. When in doubt, use [`Recorder::fail_unknown`].
    ///
    /// # Panics
    ///
    /// If `id` is not from this recorder or the operation was already finished.
    pub fn discard(&self, id: OpId) {
        self.finish(id, |_| Outcome::Discarded);
    }

    /// Records that a fault starts now (a member killed, cut off, paused): reads may fail
    /// until [`Recorder::fault_ends`].
    pub fn fault_begins(&self) {
        let mut inner = self.lock();
        let now = inner.start.elapsed();
        inner.history.faults.push((now, None));
    }

    /// Records that the cluster is healthy again (call it once it is: every member answers);
    /// a read that fails from now on, overlapping no other fault, is a failure.
    pub fn fault_ends(&self) {
        let mut inner = self.lock();
        let now = inner.start.elapsed();
        if let Some(open) = inner.history.faults.iter_mut().find(|f| f.1.is_none()) {
            open.1 = Some(now);
        }
    }

    /// A copy of the history recorded so far.
    pub fn history(&self) -> History {
        self.lock().history.clone()
    }

    /// Checks the history recorded so far with the default [`CheckOptions`].
    pub fn check(&self) -> Result<(), LinearizabilityError> {
        self.history().check()
    }

    /// Checks the history recorded so far with `options`.
    pub fn check_with(&self, options: &CheckOptions) -> Result<(), LinearizabilityError> {
        self.history().check_with(options)
    }
}

/// Bounds on the search, so that a pathological history ends with
/// [`LinearizabilityError::Inconclusive`] instead of hanging.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckOptions {
    /// The most search steps (attempts to linearize an operation, plus backtracks) per key.
    pub max_steps: u64,
    /// The most time for the whole check (`None`: unbounded).
    pub timeout: Option<Duration>,
}

impl Default for CheckOptions {
    /// 50 million steps per key (tens of seconds at worst), 60 seconds in all.
    fn default() -> Self {
        Self {
            max_steps: 50_000_000,
            timeout: Some(Duration::from_secs(60)),
        }
    }
}

/// Why a history failed the check.
#[derive(Debug, thiserror::Error)]
pub enum LinearizabilityError {
    /// The history of one key is not linearizable.
    #[error("{0}")]
    NotLinearizable(Box<Violation>),
    /// The search hit a [`CheckOptions`] limit before deciding; the history may or may not be
    /// linearizable.
    #[error("{0}")]
    Inconclusive(Box<Inconclusive>),
    /// An operation's output is not the kind of answer its input gets.
    #[error("operation {op}: output {output:?} does not answer {input}")]
    OutputMismatch {
        /// The operation.
        op: OpId,
        /// What was called.
        input: KvInput,
        /// What was recorded as the answer.
        output: KvOutput,
    },
    /// A read failed (timed out, or any error) while no fault was in force: the cluster was
    /// healthy and had to answer it.
    #[error(
        "operation {op} ({input}) failed while the cluster was healthy: invoked at {invoked:?}, \
         given up at {noticed:?}, overlapping no fault"
    )]
    ReadFailed {
        /// The operation.
        op: OpId,
        /// What was called.
        input: KvInput,
        /// When it was invoked.
        invoked: Duration,
        /// When the client gave up.
        noticed: Duration,
    },
    /// An operation's recorded return time is before its invocation time.
    #[error("operation {op} returned at {returned:?}, before it was invoked at {invoked:?}")]
    ReturnBeforeInvoke {
        /// The operation.
        op: OpId,
        /// When it was invoked.
        invoked: Duration,
        /// When it returned.
        returned: Duration,
    },
}

/// A key whose history is not linearizable. `Display` prints the key's whole history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The key.
    pub key: Vec<u8>,
    /// Every operation on the key, by invocation time.
    pub ops: Vec<(OpId, Operation)>,
    /// The longest sequence of operations the search could linearize, in order.
    pub longest_prefix: Vec<OpId>,
    /// The key's value after `longest_prefix` (`None`: absent).
    pub value_after_prefix: Option<Vec<u8>>,
    /// The operations that were candidates to come next after `longest_prefix` (invoked
    /// before any other remaining operation returned); none of them can be linearized there
    /// without an output contradicting the model, then or later.
    pub stuck: Vec<OpId>,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "history of key {} is not linearizable ({} operations, times since the start of \
             recording; keys start absent):",
            Bytes(&self.key),
            self.ops.len()
        )?;
        write_ops(f, &self.ops, &self.longest_prefix)?;
        let ops: HashMap<OpId, &Operation> = self.ops.iter().map(|(id, op)| (*id, op)).collect();
        writeln!(
            f,
            "longest linearizable prefix ({} of {} operations; \"lin\" column above): {}",
            self.longest_prefix.len(),
            self.ops.len(),
            if self.longest_prefix.is_empty() {
                "(empty)".to_string()
            } else {
                self.longest_prefix
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        )?;
        writeln!(
            f,
            "value after that prefix: {}",
            MaybeBytes(self.value_after_prefix.as_deref())
        )?;
        write!(f, "pending operations none of which can come next:")?;
        for id in &self.stuck {
            write!(f, "\n  {id} {}", ops[id].input)?;
            if let Outcome::Returned { output, .. } = &ops[id].outcome {
                write!(f, " -> {output}")?;
            }
        }
        Ok(())
    }
}

/// A key whose check hit a [`CheckOptions`] limit. `Display` prints the key's whole history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inconclusive {
    /// The key.
    pub key: Vec<u8>,
    /// Every operation on the key, by invocation time.
    pub ops: Vec<(OpId, Operation)>,
    /// How many search steps were taken on this key.
    pub steps: u64,
    /// How long the search of this key ran.
    pub elapsed: Duration,
}

impl fmt::Display for Inconclusive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "linearizability of key {} is unknown: search limit hit after {} steps in {:?} \
             ({} operations, times since the start of recording):",
            Bytes(&self.key),
            self.steps,
            self.elapsed,
            self.ops.len()
        )?;
        write_ops(f, &self.ops, &[])
    }
}

fn write_ops(
    f: &mut fmt::Formatter<'_>,
    ops: &[(OpId, Operation)],
    prefix: &[OpId],
) -> fmt::Result {
    let position: HashMap<OpId, usize> = prefix
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i + 1))
        .collect();
    writeln!(
        f,
        "  {:>7} {:>6} {:>5} {:>13} {:>13}  call -> answer",
        "op", "client", "lin", "invoked", "returned"
    )?;
    for (id, op) in ops {
        let lin = position
            .get(id)
            .map_or_else(String::new, ToString::to_string);
        let (returned, output) = match &op.outcome {
            Outcome::Returned { at, output } => (Millis(*at).to_string(), output.to_string()),
            Outcome::Unknown { noticed } => (
                "?".to_string(),
                format!("? (outcome unknown; gave up at {})", Millis(*noticed)),
            ),
            Outcome::Pending => ("?".to_string(), "? (never answered)".to_string()),
            Outcome::Discarded => ("-".to_string(), "(discarded)".to_string()),
        };
        writeln!(
            f,
            "  {:>7} {:>6} {:>5} {:>13} {:>13}  {} -> {}",
            id.to_string(),
            op.client,
            lin,
            Millis(op.invoked).to_string(),
            returned,
            op.input,
            output
        )?;
    }
    Ok(())
}

/// Prints a duration as milliseconds with microsecond precision.
struct Millis(Duration);

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let us = self.0.as_micros();
        write!(f, "{}.{:03}ms", us / 1000, us % 1000)
    }
}

/// Prints bytes as a quoted string if they are UTF-8, as hex otherwise; long values are cut.
struct Bytes<'a>(&'a [u8]);

impl fmt::Display for Bytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX: usize = 48;
        let (shown, cut) = if self.0.len() > MAX {
            (&self.0[..MAX], true)
        } else {
            (self.0, false)
        };
        let text: Cow<'_, str> = match std::str::from_utf8(shown) {
            Ok(s) => Cow::Owned(format!("{s:?}")),
            // A cut may split a UTF-8 sequence; that is fine for display.
            Err(e) if cut && e.error_len().is_none() => {
                Cow::Owned(format!("{:?}", String::from_utf8_lossy(shown)))
            }
            Err(_) => Cow::Owned(format!(
                "0x{}",
                shown.iter().map(|b| format!("{b:02x}")).collect::<String>()
            )),
        };
        f.write_str(&text)?;
        if cut {
            write!(f, "...({} bytes)", self.0.len())?;
        }
        Ok(())
    }
}

/// Prints a value or `<absent>`.
struct MaybeBytes<'a>(Option<&'a [u8]>);

impl fmt::Display for MaybeBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(v) => write!(f, "{}", Bytes(v)),
            None => f.write_str("<absent>"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The search.

/// A model state: 0 is "absent", anything else an interned value.
type State = u32;
const ABSENT: State = 0;

/// An operation with its values interned; outputs were checked to match inputs.
#[derive(Clone, Copy, Debug)]
enum Step {
    Put(State),
    Get(Option<State>),
    Cas {
        expect: State,
        new: State,
        ok: Option<bool>,
    },
    Delete(Option<bool>),
}

impl Step {
    /// The state after the operation if it may take effect in `state`; `None` if its output
    /// contradicts `state`. An unknown output (`None` fields) is unconstrained.
    fn apply(self, state: State) -> Option<State> {
        match self {
            Self::Put(v) => Some(v),
            Self::Get(seen) => (seen.is_none_or(|v| v == state)).then_some(state),
            Self::Cas { expect, new, ok } => {
                let matched = state == expect;
                ok.is_none_or(|ok| ok == matched)
                    .then_some(if matched { new } else { state })
            }
            Self::Delete(found) => found
                .is_none_or(|found| found == (state != ABSENT))
                .then_some(ABSENT),
        }
    }

    /// Whether the operation leaves the state unchanged wherever it may take effect: a read,
    /// a failed CAS or a delete that found nothing, all with a known output.
    fn preserves_state(self) -> bool {
        matches!(
            self,
            Self::Get(Some(_))
                | Self::Cas {
                    ok: Some(false),
                    ..
                }
                | Self::Delete(Some(false))
        )
    }
}

const NIL: usize = usize::MAX;

enum SearchResult {
    Linearizable,
    /// Indices are local (into the key's operations).
    Violation {
        prefix: Vec<usize>,
        value: Option<Vec<u8>>,
        stuck: Vec<usize>,
    },
    Limit {
        steps: u64,
        elapsed: Duration,
    },
}

/// The search over one key's operations, on a doubly linked list of call and return events
/// sorted by time (Lowe's "just-in-time" linearization, as in Porcupine).
struct Search {
    steps: Vec<Step>,
    /// Whether the operation has a known return (must be linearized before the search ends).
    known: Vec<bool>,
    values: Vec<Vec<u8>>,
    // The event list: node `2 * n` is the head sentinel.
    next: Vec<usize>,
    prev: Vec<usize>,
    /// The operation of each event node.
    node_op: Vec<usize>,
    /// For call nodes: the matching return node; for return nodes: `NIL`.
    ret_of: Vec<usize>,
    head: usize,
}

impl Search {
    fn new<'a>(all: &'a [Operation], ids: &[usize]) -> Self {
        let mut values = vec![Vec::new()]; // index 0: ABSENT
        let mut interned: HashMap<&[u8], State> = HashMap::new();
        let mut intern = |v: &'a [u8]| -> State {
            *interned.entry(v).or_insert_with(|| {
                values.push(v.to_vec());
                State::try_from(values.len() - 1).expect("fewer than 2^32 distinct values")
            })
        };
        let mut steps = Vec::new();
        let mut known = Vec::new();
        // (time, is_return, op); `None` time is infinity. Calls sort before returns at equal
        // times, so touching intervals count as concurrent.
        let mut events: Vec<(Option<Duration>, bool, usize)> = Vec::new();
        for &i in ids {
            let op = &all[i];
            let (ret, output) = match &op.outcome {
                Outcome::Returned { at, output } => (Some(*at), Some(output)),
                Outcome::Pending | Outcome::Unknown { .. } => (None, None),
                Outcome::Discarded => unreachable!("discarded operations are filtered out"),
            };
            let step = match (&op.input, output) {
                // An unknown-outcome read constrains nothing and changes nothing.
                (KvInput::Get { .. }, None) => continue,
                (KvInput::Get { .. }, Some(KvOutput::Get(v))) => {
                    Step::Get(Some(v.as_deref().map_or(ABSENT, &mut intern)))
                }
                (KvInput::Put { value, .. }, _) => Step::Put(intern(value)),
                (KvInput::Cas { expect, new, .. }, out) => Step::Cas {
                    expect: expect.as_deref().map_or(ABSENT, &mut intern),
                    new: intern(new),
                    ok: match out {
                        Some(KvOutput::Cas(ok)) => Some(*ok),
                        _ => None,
                    },
                },
                (KvInput::Delete { .. }, out) => Step::Delete(match out {
                    Some(KvOutput::Delete(found)) => Some(*found),
                    _ => None,
                }),
                (KvInput::Get { .. }, Some(_)) => unreachable!("outputs were checked"),
            };
            let local = steps.len();
            steps.push(step);
            known.push(ret.is_some());
            events.push((Some(op.invoked), false, local));
            events.push((ret, true, local));
        }
        // `None` (infinity) must sort last: map it to Duration::MAX.
        events.sort_by_key(|&(t, is_ret, op)| (t.unwrap_or(Duration::MAX), is_ret, op));

        let n = steps.len();
        let head = 2 * n;
        let mut next = vec![NIL; 2 * n + 1];
        let mut prev = vec![NIL; 2 * n + 1];
        let mut node_op = vec![NIL; 2 * n];
        let mut ret_of = vec![NIL; 2 * n];
        let mut call_node = vec![NIL; n];
        let mut last = head;
        for (node, &(_, is_ret, op)) in events.iter().enumerate() {
            node_op[node] = op;
            if is_ret {
                ret_of[call_node[op]] = node;
            } else {
                call_node[op] = node;
            }
            next[last] = node;
            prev[node] = last;
            last = node;
        }
        Self {
            steps,
            known,
            values,
            next,
            prev,
            node_op,
            ret_of,
            head,
        }
    }

    /// Removes call node `c` and its return node from the list.
    fn lift(&mut self, c: usize) {
        for node in [c, self.ret_of[c]] {
            let (p, n) = (self.prev[node], self.next[node]);
            self.next[p] = n;
            if n != NIL {
                self.prev[n] = p;
            }
        }
    }

    /// Undoes [`Search::lift`] (which must be the most recent lift not yet undone).
    fn unlift(&mut self, c: usize) {
        for node in [self.ret_of[c], c] {
            let (p, n) = (self.prev[node], self.next[node]);
            self.next[p] = node;
            if n != NIL {
                self.prev[n] = node;
            }
        }
    }

    fn run(mut self, max_steps: u64, deadline: Option<Instant>) -> SearchResult {
        let started = Instant::now();
        let n = self.steps.len();
        let words = n.div_ceil(64);
        // The linearized set, plus one word holding the model state: the memo key.
        let mut bits = vec![0u64; words + 1];
        let mut seen: HashSet<Box<[u64]>> = HashSet::new();
        let mut state: State = ABSENT;
        let mut known_left = self.known.iter().filter(|k| **k).count();
        // (call node, state before it, whether it was forced: see below)
        let mut stack: Vec<(usize, State, bool)> = Vec::new();
        // The longest linearization seen; `stack[..agree]` equals `best[..agree]`.
        let mut best: Vec<usize> = Vec::new();
        let mut agree = 0usize;
        let mut best_state = ABSENT;
        let mut best_stuck: Vec<usize> = self.pending_calls();
        let mut steps_taken = 0u64;

        let mut entry = self.next[self.head];
        // Whether `entry` is the first candidate of a configuration not looked at yet.
        let mut fresh = true;
        loop {
            if known_left == 0 {
                // Everything left has an unknown outcome: linearize it at the end.
                return SearchResult::Linearizable;
            }
            steps_taken += 1;
            if steps_taken > max_steps
                || (steps_taken.is_multiple_of(1024)
                    && deadline.is_some_and(|d| Instant::now() >= d))
            {
                return SearchResult::Limit {
                    steps: steps_taken - 1,
                    elapsed: started.elapsed(),
                };
            }
            // In a new configuration, first look for a pending operation that leaves the state
            // unchanged (a read, a failed CAS, a delete of an absent key) and is allowed now.
            // It can always be linearized first: it changes nothing and no pending operation
            // must precede it, so any linearization of the rest also works with it moved to
            // the front. So take it without branching; if the configuration with it fails,
            // this one fails too.
            let mut candidate = None;
            let mut forced = false;
            if fresh {
                fresh = false;
                let mut node = self.next[self.head];
                while node != NIL && self.ret_of[node] != NIL {
                    let step = self.steps[self.node_op[node]];
                    if step.preserves_state() && step.apply(state).is_some() {
                        candidate = Some((node, state));
                        forced = true;
                        break;
                    }
                    node = self.next[node];
                }
            }
            if !forced {
                debug_assert_ne!(entry, NIL, "the list always ends with a return event");
                if self.ret_of[entry] != NIL {
                    candidate = self.steps[self.node_op[entry]]
                        .apply(state)
                        .map(|new_state| (entry, new_state));
                    if candidate.is_none() {
                        entry = self.next[entry];
                        continue;
                    }
                }
            }
            if let Some((call, new_state)) = candidate {
                // Try to linearize `call` now.
                let op = self.node_op[call];
                bits[op / 64] |= 1 << (op % 64);
                bits[words] = u64::from(new_state);
                if !seen.contains(&bits[..]) {
                    seen.insert(bits.clone().into_boxed_slice());
                    stack.push((call, state, forced));
                    state = new_state;
                    if self.known[op] {
                        known_left -= 1;
                    }
                    self.lift(call);
                    if stack.len() > best.len() {
                        best.truncate(agree);
                        best.extend(stack[agree..].iter().map(|&(c, _, _)| self.node_op[c]));
                        agree = stack.len();
                        best_state = state;
                        best_stuck = self.pending_calls();
                    }
                    entry = self.next[self.head];
                    fresh = true;
                    continue;
                }
                // Seen before, so it failed.
                bits[op / 64] &= !(1 << (op % 64));
                bits[words] = u64::from(state);
                if !forced {
                    entry = self.next[entry];
                    continue;
                }
            }
            // A return of an operation not linearized yet was reached, or a forced
            // configuration failed: undo linearizations up to the last unforced one, and try
            // the candidate after it.
            loop {
                let Some((call, before, was_forced)) = stack.pop() else {
                    return SearchResult::Violation {
                        prefix: best,
                        value: (best_state != ABSENT)
                            .then(|| self.values[best_state as usize].clone()),
                        stuck: best_stuck,
                    };
                };
                agree = agree.min(stack.len());
                let op = self.node_op[call];
                bits[op / 64] &= !(1 << (op % 64));
                state = before;
                bits[words] = u64::from(state);
                if self.known[op] {
                    known_left += 1;
                }
                self.unlift(call);
                if !was_forced {
                    entry = self.next[call];
                    break;
                }
            }
        }
    }

    /// The operations whose calls come before the first return in the list: the candidates
    /// for being linearized next.
    fn pending_calls(&self) -> Vec<usize> {
        let mut out = Vec::new();
        let mut node = self.next[self.head];
        while node != NIL && self.ret_of[node] != NIL {
            out.push(self.node_op[node]);
            node = self.next[node];
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Builds a history from `(client, invoked ms, returned ms or None for unknown, input,
    /// output)`.
    type TestOp = (ClientId, u64, Option<u64>, KvInput, Option<KvOutput>);

    /// Faults throughout, so unknown outcomes of reads are allowed.
    fn history(ops: &[TestOp]) -> History {
        let mut h = History::new();
        h.push_fault(ms(0), None);
        for (client, inv, ret, input, output) in ops.iter().cloned() {
            match (ret, output) {
                (Some(ret), Some(output)) => {
                    h.push_returned(client, input, output, ms(inv), ms(ret));
                }
                (None, None) => {
                    h.push_unknown(client, input, ms(inv), ms(inv + 100));
                }
                _ => panic!("bad test op"),
            }
        }
        h
    }

    fn put(k: &str, v: &str) -> KvInput {
        KvInput::put(k, v)
    }
    fn get(k: &str) -> KvInput {
        KvInput::get(k)
    }
    fn seen(v: &str) -> Option<KvOutput> {
        Some(KvOutput::found(v))
    }
    fn absent() -> Option<KvOutput> {
        Some(KvOutput::Get(None))
    }
    fn ok() -> Option<KvOutput> {
        Some(KvOutput::Put)
    }
    fn cas_out(b: bool) -> Option<KvOutput> {
        Some(KvOutput::Cas(b))
    }

    fn assert_ok(h: &History) {
        if let Err(e) = h.check() {
            panic!("expected linearizable, got:\n{e}");
        }
    }

    fn assert_violation(h: &History) -> Violation {
        match h.check() {
            Err(LinearizabilityError::NotLinearizable(v)) => {
                // Display must not panic and must show every op.
                let text = v.to_string();
                for (id, _) in &v.ops {
                    assert!(text.contains(&id.to_string()), "{text}");
                }
                *v
            }
            other => panic!("expected a violation, got {other:?}"),
        }
    }

    #[test]
    fn empty_and_sequential_histories_are_linearizable() {
        assert_ok(&History::new());
        assert_ok(&history(&[
            (0, 0, Some(1), get("k"), absent()),
            (0, 2, Some(3), put("k", "a"), ok()),
            (1, 4, Some(5), get("k"), seen("a")),
            (1, 6, Some(7), put("k", "b"), ok()),
            (0, 8, Some(9), get("k"), seen("b")),
            (
                0,
                10,
                Some(11),
                KvInput::delete("k"),
                Some(KvOutput::Delete(true)),
            ),
            (
                0,
                12,
                Some(13),
                KvInput::delete("k"),
                Some(KvOutput::Delete(false)),
            ),
            (1, 14, Some(15), get("k"), absent()),
        ]));
    }

    #[test]
    fn overlapping_puts_may_take_effect_in_either_order() {
        for last in ["a", "b"] {
            assert_ok(&history(&[
                (0, 0, Some(10), put("k", "a"), ok()),
                (1, 1, Some(11), put("k", "b"), ok()),
                (2, 12, Some(13), get("k"), seen(last)),
                (2, 14, Some(15), get("k"), seen(last)),
            ]));
        }
    }

    #[test]
    fn a_get_overlapping_a_put_may_see_old_or_new_value() {
        for (first, second) in [(Some("a"), "b"), (Some("b"), "b"), (None, "a")] {
            let mut ops = vec![(0, 0, Some(1), put("k", "a"), ok())];
            if first.is_none() {
                ops.clear();
            }
            let new = if first.is_none() { "a" } else { "b" };
            ops.push((0, 2, Some(10), put("k", new), ok()));
            ops.push((1, 3, Some(5), get("k"), first.map_or_else(absent, seen)));
            ops.push((1, 11, Some(12), get("k"), seen(second)));
            assert_ok(&history(&ops));
        }
    }

    #[test]
    fn touching_intervals_count_as_concurrent() {
        // The get is invoked at the very instant the put returns.
        assert_ok(&history(&[
            (0, 0, Some(5), put("k", "a"), ok()),
            (1, 5, Some(6), get("k"), absent()),
        ]));
    }

    #[test]
    fn cas_success_and_failure() {
        assert_ok(&history(&[
            (0, 0, Some(1), KvInput::cas_absent("k", "a"), cas_out(true)),
            (0, 2, Some(3), KvInput::cas_absent("k", "x"), cas_out(false)),
            (1, 4, Some(5), KvInput::cas("k", "a", "b"), cas_out(true)),
            (1, 6, Some(7), KvInput::cas("k", "a", "c"), cas_out(false)),
            (2, 8, Some(9), get("k"), seen("b")),
        ]));
        // Two concurrent CASes on the same expected value: exactly one wins.
        assert_ok(&history(&[
            (0, 0, Some(1), put("k", "a"), ok()),
            (1, 2, Some(6), KvInput::cas("k", "a", "b"), cas_out(false)),
            (2, 3, Some(5), KvInput::cas("k", "a", "c"), cas_out(true)),
            (0, 7, Some(8), get("k"), seen("c")),
        ]));
        // A failing CAS overlapping the write that makes it fail.
        assert_ok(&history(&[
            (0, 0, Some(10), put("k", "z"), ok()),
            (1, 1, Some(2), KvInput::cas_absent("k", "a"), cas_out(false)),
        ]));
    }

    #[test]
    fn stale_read_after_completed_write_is_not_linearizable() {
        let v = assert_violation(&history(&[
            (0, 0, Some(1), put("k", "a"), ok()),
            (0, 2, Some(3), put("k", "b"), ok()),
            (1, 4, Some(5), get("k"), seen("a")),
        ]));
        assert_eq!(v.key, b"k");
        assert_eq!(v.longest_prefix, vec![OpId(0), OpId(1)]);
        assert_eq!(v.value_after_prefix.as_deref(), Some(&b"b"[..]));
        assert_eq!(v.stuck, vec![OpId(2)]);
        // Reading nothing after a completed write is just as wrong.
        assert_violation(&history(&[
            (0, 0, Some(1), put("k", "a"), ok()),
            (1, 4, Some(5), get("k"), absent()),
        ]));
    }

    #[test]
    fn gets_seeing_writes_in_an_impossible_order_are_not_linearizable() {
        // Both puts overlap, so either order is fine, but two later sequential gets see them
        // in opposite orders.
        assert_violation(&history(&[
            (0, 0, Some(10), put("k", "a"), ok()),
            (1, 0, Some(10), put("k", "b"), ok()),
            (2, 11, Some(12), get("k"), seen("b")),
            (2, 13, Some(14), get("k"), seen("a")),
        ]));
        // Reads overlapping the puts: one reader sees a then b, the other b then a.
        assert_violation(&history(&[
            (0, 0, Some(100), put("k", "a"), ok()),
            (1, 0, Some(100), put("k", "b"), ok()),
            (2, 10, Some(20), get("k"), seen("a")),
            (2, 30, Some(40), get("k"), seen("b")),
            (3, 10, Some(20), get("k"), seen("b")),
            (3, 30, Some(40), get("k"), seen("a")),
        ]));
    }

    #[test]
    fn cas_succeeding_twice_on_the_same_expected_value_is_not_linearizable() {
        assert_violation(&history(&[
            (0, 0, Some(1), put("k", "a"), ok()),
            (1, 2, Some(5), KvInput::cas("k", "a", "b"), cas_out(true)),
            (2, 3, Some(6), KvInput::cas("k", "a", "c"), cas_out(true)),
        ]));
        assert_violation(&history(&[
            (1, 2, Some(5), KvInput::cas_absent("k", "b"), cas_out(true)),
            (2, 3, Some(6), KvInput::cas_absent("k", "c"), cas_out(true)),
        ]));
        // A CAS that failed although nothing could have changed the value.
        assert_violation(&history(&[
            (0, 0, Some(1), put("k", "a"), ok()),
            (1, 2, Some(5), KvInput::cas("k", "a", "b"), cas_out(false)),
        ]));
    }

    #[test]
    fn delete_results_are_checked() {
        assert_violation(&history(&[(
            0,
            0,
            Some(1),
            KvInput::delete("k"),
            Some(KvOutput::Delete(true)),
        )]));
        assert_violation(&history(&[
            (0, 0, Some(1), put("k", "a"), ok()),
            (
                0,
                2,
                Some(3),
                KvInput::delete("k"),
                Some(KvOutput::Delete(true)),
            ),
            (1, 4, Some(5), get("k"), seen("a")),
        ]));
    }

    #[test]
    fn unknown_outcome_ops_may_or_may_not_take_effect() {
        let base = |then: Option<KvOutput>| {
            history(&[
                (0, 0, Some(1), put("k", "a"), ok()),
                (1, 2, None, put("k", "b"), None),
                (2, 1000, Some(1001), get("k"), then.clone()),
                (2, 1002, Some(1003), get("k"), then),
            ])
        };
        // Took effect (long after the client gave up), or never did.
        assert_ok(&base(seen("b")));
        assert_ok(&base(seen("a")));
        // But not before it was invoked.
        assert_violation(&history(&[
            (0, 0, Some(1), put("k", "a"), ok()),
            (2, 1, Some(2), get("k"), seen("b")),
            (1, 3, None, put("k", "b"), None),
        ]));
        // And not undone afterwards.
        assert_violation(&history(&[
            (0, 0, Some(1), put("k", "a"), ok()),
            (1, 2, None, put("k", "b"), None),
            (2, 5, Some(6), get("k"), seen("b")),
            (2, 7, Some(8), get("k"), seen("a")),
        ]));
        // An unknown CAS applies only if its comparison holds.
        assert_ok(&history(&[
            (0, 0, Some(1), put("k", "a"), ok()),
            (1, 2, None, KvInput::cas("k", "a", "b"), None),
            (2, 5, Some(6), get("k"), seen("b")),
        ]));
        assert_violation(&history(&[
            (0, 0, Some(1), put("k", "a"), ok()),
            (1, 2, None, KvInput::cas("k", "x", "b"), None),
            (2, 5, Some(6), get("k"), seen("b")),
        ]));
        // Unknown gets and deletes.
        assert_ok(&history(&[
            (0, 0, Some(1), put("k", "a"), ok()),
            (1, 2, None, get("k"), None),
            (1, 3, None, KvInput::delete("k"), None),
            (2, 5, Some(6), get("k"), absent()),
        ]));
    }

    /// A read that fails outside every fault window failed while the cluster was healthy;
    /// one overlapping a window (even one that began or ended during it) is an unknown outcome.
    #[test]
    fn a_read_failing_while_healthy_is_a_failure_not_an_unknown_outcome() {
        let read_failing = |from: u64, to: u64, faults: &[(u64, Option<u64>)]| {
            let mut h = History::new();
            for &(start, end) in faults {
                h.push_fault(ms(start), end.map(ms));
            }
            h.push_returned(0, put("k", "a"), KvOutput::Put, ms(0), ms(1));
            h.push_unknown(1, get("k"), ms(from), ms(to));
            h.check()
        };
        assert!(matches!(
            read_failing(10, 20, &[]),
            Err(LinearizabilityError::ReadFailed { op: OpId(1), .. })
        ));
        assert!(matches!(
            read_failing(10, 20, &[(30, Some(40))]),
            Err(LinearizabilityError::ReadFailed { .. })
        ));
        assert!(matches!(
            read_failing(50, 60, &[(30, Some(40))]),
            Err(LinearizabilityError::ReadFailed { .. })
        ));
        assert_ok_result(read_failing(10, 35, &[(30, Some(40))]));
        assert_ok_result(read_failing(35, 50, &[(30, Some(40))]));
        assert_ok_result(read_failing(31, 32, &[(30, Some(40))]));
        assert_ok_result(read_failing(50, 60, &[(30, None)]));
        // Writes with unknown outcomes stay unknown outcomes (they may have taken effect).
        let mut h = History::new();
        h.push_unknown(0, put("k", "a"), ms(0), ms(10));
        h.check().expect("an unknown write");

        // The recorder's windows.
        let rec = Recorder::new();
        rec.fault_begins();
        let a = rec.invoke(0, get("k"));
        rec.fail_unknown(a);
        rec.fault_ends();
        rec.check().expect("failed during the fault");
        let b = rec.invoke(0, get("k"));
        rec.fail_unknown(b);
        let err = rec.check().expect_err("failed while healthy");
        assert!(
            err.to_string()
                .contains("failed while the cluster was healthy"),
            "{err}"
        );
    }

    fn assert_ok_result(r: Result<(), LinearizabilityError>) {
        if let Err(e) = r {
            panic!("expected linearizable: {e}");
        }
    }

    #[test]
    fn recorder_pending_and_discarded_ops() {
        let rec = Recorder::new();
        let a = rec.invoke(0, put("k", "a"));
        rec.complete(a, KvOutput::Put);
        let b = rec.invoke(1, put("k", "b")); // never answered: like unknown
        let c = rec.invoke(2, put("k", "c"));
        rec.discard(c);
        let d = rec.invoke(3, get("k"));
        rec.complete(d, KvOutput::found("b"));
        rec.check().unwrap();
        let h = rec.history();
        assert_eq!(h.len(), 4);
        assert_eq!(h.ops()[b.0].outcome, Outcome::Pending);
        assert_eq!(h.ops()[c.0].outcome, Outcome::Discarded);

        let e = rec.invoke(3, get("k"));
        rec.complete(e, KvOutput::found("c")); // a discarded write cannot be seen
        assert!(matches!(
            rec.check(),
            Err(LinearizabilityError::NotLinearizable(_))
        ));
    }

    #[test]
    #[should_panic(expected = "already finished")]
    fn recorder_rejects_double_completion() {
        let rec = Recorder::new();
        let a = rec.invoke(0, get("k"));
        rec.complete(a, KvOutput::Get(None));
        rec.fail_unknown(a);
    }

    #[test]
    fn malformed_histories_are_reported() {
        let h = history(&[(0, 0, Some(1), put("k", "a"), absent())]);
        assert!(matches!(
            h.check(),
            Err(LinearizabilityError::OutputMismatch { op: OpId(0), .. })
        ));
        let h = history(&[(0, 5, Some(1), get("k"), absent())]);
        assert!(matches!(
            h.check(),
            Err(LinearizabilityError::ReturnBeforeInvoke { op: OpId(0), .. })
        ));
    }

    #[test]
    fn keys_are_checked_independently() {
        let h = history(&[
            (0, 0, Some(1), put("a", "1"), ok()),
            (0, 2, Some(3), put("b", "1"), ok()),
            (1, 4, Some(5), get("a"), seen("1")),
            (1, 6, Some(7), get("b"), seen("1")),
            (1, 8, Some(9), get("c"), absent()),
        ]);
        assert_ok(&h);
        let mut bad = h.clone();
        bad.push_returned(2, get("b"), KvOutput::Get(None), ms(10), ms(11));
        let v = assert_violation(&bad);
        assert_eq!(v.key, b"b");
        assert_eq!(v.ops.len(), 3);
    }

    #[test]
    fn display_shows_the_offending_history() {
        let h = history(&[
            (7, 0, Some(1), put("k", "a"), ok()),
            (8, 2, Some(3), put("k", "b"), ok()),
            (9, 4, Some(5), get("k"), seen("a")),
            (9, 6, None, KvInput::cas("k", "b", "c"), None),
        ]);
        let text = h.check().unwrap_err().to_string();
        println!("{text}");
        assert!(text.starts_with("history of key \"k\" is not linearizable (4 operations"));
        assert!(text.contains("client"), "{text}");
        assert!(text.contains("2.000ms"), "{text}");
        assert!(text.contains("get(\"k\") -> \"a\""), "{text}");
        assert!(
            text.contains("cas(\"k\", \"b\" -> \"c\") -> ? (outcome unknown"),
            "{text}"
        );
        assert!(
            text.contains("longest linearizable prefix (2 of 4 operations"),
            "{text}"
        );
        assert!(text.contains("value after that prefix: \"b\""), "{text}");
        assert!(text.contains("\n  #2 get(\"k\") -> \"a\""), "{text}");
        // One line per operation.
        assert_eq!(text.lines().filter(|l| l.contains("(\"k\"")).count(), 4 + 1);
        // Binary and long values stay readable.
        assert_eq!(Bytes(&[0xff, 0x00]).to_string(), "0xff00");
        assert!(Bytes(&[b'x'; 100]).to_string().ends_with("...(100 bytes)"));
    }

    #[test]
    fn search_limit_gives_an_inconclusive_result() {
        // 40 concurrent puts and a read of a value nobody wrote: the search must try many
        // subsets before giving up.
        let mut h = History::new();
        for i in 0..40 {
            h.push_returned(i, put("k", &i.to_string()), KvOutput::Put, ms(0), ms(100));
        }
        h.push_returned(99, get("k"), KvOutput::found("nobody"), ms(50), ms(60));
        let options = CheckOptions {
            max_steps: 10_000,
            timeout: None,
        };
        match h.check_with(&options) {
            Err(LinearizabilityError::Inconclusive(i)) => {
                assert_eq!(i.steps, 10_000);
                assert_eq!(i.ops.len(), 41);
                assert!(i.to_string().contains("search limit"));
            }
            other => panic!("expected inconclusive, got {other:?}"),
        }
        let options = CheckOptions {
            max_steps: u64::MAX,
            timeout: Some(Duration::from_millis(50)),
        };
        assert!(matches!(
            h.check_with(&options),
            Err(LinearizabilityError::Inconclusive(_))
        ));
    }

    #[test]
    fn recorder_with_real_threads_over_a_locked_map() {
        use std::sync::Mutex as StdMutex;
        let rec = Recorder::new();
        // Some reads fail below: as under a fault.
        rec.fault_begins();
        let store: Arc<StdMutex<HashMap<Vec<u8>, Vec<u8>>>> = Arc::default();
        std::thread::scope(|s| {
            for client in 0..4 {
                let rec = rec.clone();
                let store = Arc::clone(&store);
                s.spawn(move || {
                    let mut rng = Rng(client as u64 + 1);
                    for i in 0..200 {
                        let key = format!("k{}", rng.below(3));
                        let input = match rng.below(4) {
                            0 => KvInput::put(key.clone(), format!("{client}-{i}")),
                            1 => KvInput::get(key.clone()),
                            2 => KvInput::cas(
                                key.clone(),
                                format!("{}-{}", rng.below(4), rng.below(200)),
                                format!("{client}-{i}"),
                            ),
                            _ => KvInput::cas_absent(key.clone(), format!("{client}-{i}")),
                        };
                        let id = rec.invoke(client, input.clone());
                        let output = {
                            let mut map = store.lock().unwrap();
                            apply(&mut map, &input)
                        };
                        if rng.below(20) == 0 {
                            rec.fail_unknown(id);
                        } else {
                            rec.complete(id, output);
                        }
                    }
                });
            }
        });
        assert_eq!(rec.history().len(), 800);
        if let Err(e) = rec.check() {
            panic!("{e}");
        }
    }

    fn is_send_sync_clone<T: Send + Sync + Clone + 'static>() {}
    #[test]
    fn recorder_is_send_sync_clone() {
        is_send_sync_clone::<Recorder>();
        is_send_sync_clone::<History>();
        fn is_error<E: std::error::Error + Send + Sync + 'static>() {}
        is_error::<LinearizabilityError>();
    }

    // --- Generated histories ------------------------------------------------------------

    /// xorshift64*: a tiny deterministic generator for tests that need many cases.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// The sequential specification: applies `input` to `map`.
    fn apply(map: &mut HashMap<Vec<u8>, Vec<u8>>, input: &KvInput) -> KvOutput {
        match input {
            KvInput::Put { key, value } => {
                map.insert(key.clone(), value.clone());
                KvOutput::Put
            }
            KvInput::Get { key } => KvOutput::Get(map.get(key).cloned()),
            KvInput::Cas { key, expect, new } => {
                let ok = map.get(key) == expect.as_ref();
                if ok {
                    map.insert(key.clone(), new.clone());
                }
                KvOutput::Cas(ok)
            }
            KvInput::Delete { key } => KvOutput::Delete(map.remove(key).is_some()),
        }
    }

    /// One generated operation: (client, key, kind, value choice, slack before, slack after,
    /// unknown outcome).
    type GenOp = (usize, u8, u8, u8, u64, u64, bool);

    /// Executes the operations sequentially, operation `i` taking effect at time `10 * i`,
    /// and records each with an interval around that point stretched by its slacks (unknown
    /// outcomes take effect at that point or never): always linearizable.
    fn build(ops: &[GenOp], keys: u8) -> History {
        let mut map = HashMap::new();
        let mut h = History::new();
        h.push_fault(ms(0), None);
        for (i, &(client, key, kind, val, before, after, unknown)) in ops.iter().enumerate() {
            let key = format!("k{}", key % keys);
            let value = format!("v{}", val % 4);
            let input = match kind % 5 {
                0 => KvInput::put(key, format!("v{i}")),
                1 | 2 => KvInput::get(key),
                3 if val % 3 == 0 => KvInput::cas_absent(key, format!("v{i}")),
                3 => KvInput::cas(key, value, format!("v{i}")),
                _ => KvInput::delete(key),
            };
            let at = 10 * i as u64;
            let invoked = ms(at.saturating_sub(before));
            if unknown {
                // Half of the unknown-outcome operations never take effect.
                if val & 0x80 == 0 {
                    apply(&mut map, &input);
                }
                h.push_unknown(client, input, invoked, ms(at + after));
            } else {
                let output = apply(&mut map, &input);
                h.push_returned(client, input, output, invoked, ms(at + after));
            }
        }
        h
    }

    fn gen_ops(max_len: usize) -> impl Strategy<Value = Vec<GenOp>> {
        prop::collection::vec(
            (
                0..5usize,
                any::<u8>(),
                any::<u8>(),
                any::<u8>(),
                0..60u64,
                0..60u64,
                prop::bool::weighted(0.1),
            ),
            1..max_len,
        )
    }

    /// Replaces the output of the `which`-th returned get with `value`.
    fn corrupt_read(h: &mut History, which: usize, value: Option<Vec<u8>>) -> bool {
        let reads: Vec<usize> = (0..h.len())
            .filter(|&i| {
                matches!(
                    h.ops[i].outcome,
                    Outcome::Returned {
                        output: KvOutput::Get(_),
                        ..
                    }
                )
            })
            .collect();
        if reads.is_empty() {
            return false;
        }
        let i = reads[which % reads.len()];
        if let Outcome::Returned { output, .. } = &mut h.ops[i].outcome {
            if *output == KvOutput::Get(value.clone()) {
                return false;
            }
            *output = KvOutput::Get(value);
        }
        true
    }

    /// A small random history (one key, arbitrary outputs) for comparing with brute force.
    type SmallOp = (u8, u8, u8, u64, u64, bool);

    fn small_history(ops: &[SmallOp]) -> History {
        let val = |v: u8| ["a", "b", "c"][usize::from(v % 3)];
        let mut h = History::new();
        h.push_fault(ms(0), None);
        for (i, &(kind, v, out, inv, len, unknown)) in ops.iter().enumerate() {
            let (input, output) = match kind % 5 {
                0 => (KvInput::put("k", val(v)), KvOutput::Put),
                1 | 2 => (
                    KvInput::get("k"),
                    KvOutput::Get((out % 4 != 3).then(|| val(out).into())),
                ),
                3 if v % 4 == 3 => (
                    KvInput::cas_absent("k", val(out)),
                    KvOutput::Cas(v % 2 == 0),
                ),
                3 => (
                    KvInput::cas("k", val(v), val(out)),
                    KvOutput::Cas(out % 2 == 0),
                ),
                _ => (KvInput::delete("k"), KvOutput::Delete(out % 2 == 0)),
            };
            if unknown {
                h.push_unknown(i, input, ms(inv), ms(inv + len));
            } else {
                h.push_returned(i, input, output, ms(inv), ms(inv + len));
            }
        }
        h
    }

    /// Tries every order consistent with real time (unknown outcomes may also be left out).
    fn brute_force(h: &History) -> bool {
        fn go(ops: &[Operation], placed: u32, map: &HashMap<Vec<u8>, Vec<u8>>) -> bool {
            let must_place = ops.iter().enumerate().all(|(i, op)| {
                placed & (1 << i) != 0 || !matches!(op.outcome, Outcome::Returned { .. })
            });
            if must_place {
                return true;
            }
            for (i, op) in ops.iter().enumerate() {
                if placed & (1 << i) != 0 {
                    continue;
                }
                let blocked = ops.iter().enumerate().any(|(j, other)| {
                    placed & (1 << j) == 0
                        && matches!(other.outcome, Outcome::Returned { at, .. } if at < op.invoked)
                });
                if blocked {
                    continue;
                }
                let mut next = map.clone();
                let actual = apply(&mut next, &op.input);
                if let Outcome::Returned { output, .. } = &op.outcome {
                    if *output != actual {
                        continue;
                    }
                }
                if go(ops, placed | (1 << i), &next) {
                    return true;
                }
            }
            false
        }
        go(h.ops(), 0, &HashMap::new())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1000))]

        #[test]
        fn agrees_with_brute_force_on_small_histories(
            ops in prop::collection::vec(
                (any::<u8>(), any::<u8>(), any::<u8>(), 0..20u64, 0..10u64, prop::bool::weighted(0.15)),
                0..8,
            )
        ) {
            let h = small_history(&ops);
            let expected = brute_force(&h);
            match h.check() {
                Ok(()) => prop_assert!(expected, "checker accepted a non-linearizable history"),
                Err(LinearizabilityError::NotLinearizable(v)) => {
                    prop_assert!(!expected, "checker rejected a linearizable history:\n{}", v);
                }
                Err(e) => prop_assert!(false, "{}", e),
            }
        }

        #[test]
        fn generated_sequential_executions_are_linearizable(ops in gen_ops(80), keys in 1..3u8) {
            let h = build(&ops, keys);
            if let Err(e) = h.check() {
                prop_assert!(false, "{}", e);
            }
        }

        #[test]
        fn reading_a_never_written_value_always_fails(ops in gen_ops(60), which in any::<usize>()) {
            let mut h = build(&ops, 1);
            prop_assume!(corrupt_read(&mut h, which, Some(b"never written".to_vec())));
            let is_violation = matches!(h.check(), Err(LinearizabilityError::NotLinearizable(_)));
            prop_assert!(is_violation);
        }
    }

    #[test]
    fn corrupting_one_read_makes_most_histories_fail() {
        let mut rng = Rng(0x5eed);
        let (mut corrupted, mut failed) = (0, 0);
        for _ in 0..300 {
            let ops: Vec<GenOp> = (0..40)
                .map(|_| {
                    (
                        rng.below(4) as usize,
                        0,
                        rng.below(5) as u8,
                        rng.below(256) as u8,
                        rng.below(30),
                        rng.below(30),
                        false,
                    )
                })
                .collect();
            let mut h = build(&ops, 1);
            // Swap a read's answer for some other value written in the history (or absent).
            let written: Vec<Option<Vec<u8>>> = h
                .ops()
                .iter()
                .filter_map(|op| match &op.input {
                    KvInput::Put { value, .. } | KvInput::Cas { new: value, .. } => {
                        Some(Some(value.clone()))
                    }
                    _ => None,
                })
                .chain([None])
                .collect();
            let value = written[rng.below(written.len() as u64) as usize].clone();
            if !corrupt_read(&mut h, rng.next() as usize, value) {
                continue;
            }
            corrupted += 1;
            match h.check() {
                Ok(()) => {}
                Err(LinearizabilityError::NotLinearizable(_)) => failed += 1,
                Err(e) => panic!("{e}"),
            }
        }
        println!("{failed} of {corrupted} corrupted histories failed");
        assert!(
            corrupted > 200,
            "only {corrupted} histories could be corrupted"
        );
        assert!(
            failed * 10 >= corrupted * 7,
            "only {failed} of {corrupted} corrupted histories failed"
        );
    }

    #[test]
    fn thousands_of_concurrent_ops_on_one_key_check_quickly() {
        let mut rng = Rng(42);
        let ops: Vec<GenOp> = (0..5000)
            .map(|_| {
                (
                    rng.below(8) as usize,
                    0,
                    rng.below(5) as u8,
                    rng.below(256) as u8,
                    rng.below(40), // up to ~4 ops of overlap on each side
                    rng.below(40),
                    rng.below(100) == 0, // some unknown outcomes
                )
            })
            .collect();
        let h = build(&ops, 1);
        let started = Instant::now();
        h.check().unwrap();
        println!("5000 ops on one key checked in {:?}", started.elapsed());

        let h = build(&ops, 3);
        h.check().unwrap();

        // Heavier overlap: each operation spans ~30 others.
        let ops: Vec<GenOp> = (0..3000)
            .map(|_| {
                (
                    rng.below(32) as usize,
                    0,
                    rng.below(5) as u8,
                    rng.below(256) as u8,
                    rng.below(150),
                    rng.below(150),
                    rng.below(100) == 0,
                )
            })
            .collect();
        let h = build(&ops, 1);
        let started = Instant::now();
        h.check().unwrap();
        println!(
            "3000 heavily overlapping ops checked in {:?}",
            started.elapsed()
        );
    }
}
