//! The executor: walks a [`Plan`] and runs each change's ops, in order, through an
//! [`OpRunner`]. It makes no decisions about *what* to do; it only decides *when* (order,
//! concurrency, retries, confirmation) and reports what happened.
//!
//! - A change starts when every change it `depends_on` (among the plan's changes) is done; at
//!   most `max_concurrency` run at once; the ops of one change run one after another.
//! - Which ready change gets a free slot: the one whose *lane* (the API action of its first op)
//!   has the fewest changes running, then plan order. Each action has its own quota (the
//!   client waits for the action's token bucket), so a backlog of one action, say 1,000
//!   `CreatePolicy` at 20/s, must not hold every slot while `CreateRole` and
//!   `AttachPolicyToRole` could run on their own quotas (BENCHMARKS.md measures the
//!   difference). Within a lane, and with `max_concurrency` 1, changes start in plan order.
//! - A failed change's dependents are skipped, naming the root failure; other changes go on.
//! - "Already done" answers count only after a read confirms the end state.
//! - Cancellation: the call in flight finishes, nothing more starts.
//!
//! Concurrency is a hand-rolled `poll_fn` over a small vector of boxed change futures, all
//! polled by the caller's task: no `'static` bound (the futures borrow the plan and the runner),
//! no spawned tasks to leak on cancellation, and dropping the `execute` future drops every
//! change in flight (the crash test relies on that). The vector is at most `max_concurrency`
//! long, so polling each on every wake costs nothing that matters. Readiness is tracked with
//! per-change counters of unfinished dependencies, so a plan of n changes costs O(n + edges)
//! to schedule, not a scan of the plan per start.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::Poll;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::{OpError, OpErrorKind, OpRunner, guard, op_name};
use crate::manifest::Address;
use crate::plan::{Action, Change, Op, Plan};

/// How the executor runs a plan.
#[derive(Debug, Clone)]
pub struct ExecuteOptions {
    /// Changes running at once (each runs its ops one by one). At least 1.
    pub max_concurrency: usize,
    /// How long a "not yet visible" answer, or a read-back that does not yet show the end
    /// state, is retried before the change fails.
    pub consistency_timeout: Duration,
    /// First retry delay; doubles up to `max_backoff`, with jitter (50%..100%).
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Extra attempts after a transient error (throttling, 5xx) the client gave up on.
    pub transient_retries: u32,
    /// Cancelled: the call in flight finishes, nothing more starts (SIGTERM in the daemon).
    pub cancel: CancellationToken,
}

impl Default for ExecuteOptions {
    fn default() -> Self {
        ExecuteOptions {
            max_concurrency: 8,
            consistency_timeout: Duration::from_secs(30),
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(5),
            transient_retries: 3,
            cancel: CancellationToken::new(),
        }
    }
}

/// What the executor reports as it goes. The CLI prints these (`Display`); the daemon counts
/// them.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Started {
        address: Address,
        action: Action,
    },
    /// One op finished; `already_done` when the cloud said so and a read confirmed it.
    OpDone {
        address: Address,
        op: &'static str,
        already_done: bool,
        request_id: Option<String>,
    },
    /// An op (or its read-back) will be tried again after `delay`.
    Retrying {
        address: Address,
        op: &'static str,
        error: OpError,
        attempt: u32,
        delay: Duration,
    },
    Done {
        address: Address,
    },
    Failed {
        address: Address,
        error: OpError,
    },
    /// Not run because a change it depends on failed; `because` is the root failure.
    Skipped {
        address: Address,
        because: Address,
    },
    /// Stopped by cancellation after `ops_done` of its `ops_total` ops.
    Interrupted {
        address: Address,
        ops_done: usize,
        ops_total: usize,
    },
}

fn verb(action: Action) -> &'static str {
    match action {
        Action::Create => "creating",
        Action::Update => "updating",
        Action::Adopt => "adopting",
        Action::Delete => "deleting",
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Started { address, action } => write!(f, "{address}: {}...", verb(*action)),
            Event::OpDone {
                address,
                op,
                already_done,
                ..
            } => {
                if *already_done {
                    write!(f, "{address}: {op}: already done (confirmed by a read)")
                } else {
                    write!(f, "{address}: {op}: ok")
                }
            }
            Event::Retrying {
                address,
                error,
                attempt,
                delay,
                ..
            } => write!(
                f,
                "{address}: retry {attempt} in {:.1}s after {error}",
                delay.as_secs_f64()
            ),
            Event::Done { address } => write!(f, "{address}: done"),
            Event::Failed { address, error } => write!(f, "{address}: failed: {error}"),
            Event::Skipped { address, because } => {
                write!(f, "{address}: skipped because {because} failed")
            }
            Event::Interrupted {
                address,
                ops_done,
                ops_total,
            } => write!(
                f,
                "{address}: interrupted after {ops_done} of {ops_total} operations"
            ),
        }
    }
}

/// How one change ended.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeStatus {
    Done,
    /// A root failure (also listed in [`ApplyReport::failures`]).
    Failed(OpError),
    Skipped {
        because: Address,
    },
    /// Cancelled after some of its ops ran; the next run re-plans and finishes it.
    Interrupted {
        ops_done: usize,
    },
    /// Cancelled before it started.
    NotStarted,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ChangeOutcome {
    pub address: Address,
    pub action: Action,
    pub status: ChangeStatus,
}

/// A change that failed on its own account (not skipped because of another).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RootFailure {
    pub address: Address,
    pub error: OpError,
}

impl fmt::Display for RootFailure {
    /// `CreateRole ram_role.deployer: 409 EntityAlreadyExists.Role: … (RequestId 6A1F…)`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = &self.error;
        write!(f, "{} {}: ", e.action, self.address)?;
        if let Some(status) = e.http_status {
            write!(f, "{status} ")?;
        }
        write!(f, "{}: {}", e.code, e.message)?;
        if let Some(id) = &e.request_id {
            write!(f, " (RequestId {id})")?;
        }
        if let Some(x) = e.explanation {
            write!(f, " {x}")?;
        }
        Ok(())
    }
}

/// The result of [`execute`].
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyReport {
    /// One per change, in plan order.
    pub outcomes: Vec<ChangeOutcome>,
    /// Root causes only, in the order they happened; dependents appear as `Skipped`.
    pub failures: Vec<RootFailure>,
    /// Cancellation stopped something (some change is `Interrupted` or `NotStarted`).
    pub interrupted: bool,
}

impl ApplyReport {
    /// Every change done, nothing failed, skipped or interrupted. (`false` means exit 1.)
    pub fn is_success(&self) -> bool {
        self.outcomes.iter().all(|o| o.status == ChangeStatus::Done)
    }

    pub fn root_failures(&self) -> &[RootFailure] {
        &self.failures
    }

    pub fn done(&self) -> usize {
        self.count(|s| matches!(s, ChangeStatus::Done))
    }

    pub fn skipped(&self) -> usize {
        self.count(|s| matches!(s, ChangeStatus::Skipped { .. }))
    }

    fn count(&self, f: impl Fn(&ChangeStatus) -> bool) -> usize {
        self.outcomes.iter().filter(|o| f(&o.status)).count()
    }

    /// What an interruption left undone, one line per change in plan order, e.g.
    /// `not finished: ram_role.b (adopt, stopped after 1 of its API calls)` or
    /// `not started: ram_policy.c (create)`. Empty when nothing was interrupted.
    pub fn unfinished(&self) -> Vec<String> {
        self.outcomes
            .iter()
            .filter_map(|o| match &o.status {
                ChangeStatus::Interrupted { ops_done } => Some(format!(
                    "not finished: {} ({}, stopped after {ops_done} of its API calls)",
                    o.address, o.action
                )),
                ChangeStatus::NotStarted => {
                    Some(format!("not started: {} ({})", o.address, o.action))
                }
                _ => None,
            })
            .collect()
    }

    /// One line, e.g. `Apply: 5 done, 1 failed, 2 skipped.` (`interrupted` added when so).
    pub fn summary(&self) -> String {
        let not_run = self.count(|s| {
            matches!(
                s,
                ChangeStatus::Interrupted { .. } | ChangeStatus::NotStarted
            )
        });
        let mut s = format!(
            "Apply: {} done, {} failed, {} skipped",
            self.done(),
            self.failures.len(),
            self.skipped()
        );
        if self.interrupted {
            s.push_str(&format!(", interrupted ({not_run} not finished)"));
        }
        s.push('.');
        s
    }
}

/// Events pushed by change futures while the scheduler polls them; drained into the caller's
/// sink on every poll, so they arrive as they happen.
type EventQueue = Mutex<Vec<Event>>;

fn push(queue: &EventQueue, event: Event) {
    queue.lock().expect("event queue poisoned").push(event);
}

fn drain(queue: &EventQueue, events: &mut impl FnMut(Event)) {
    let batch = std::mem::take(&mut *queue.lock().expect("event queue poisoned"));
    batch.into_iter().for_each(events);
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Pending,
    Running,
    Finished(ChangeStatus),
}

/// How a change future ended.
enum ChangeEnd {
    Done,
    Failed(OpError),
    Interrupted { ops_done: usize },
}

/// Why an op stopped without success.
enum OpStop {
    Failed(OpError),
    Cancelled,
}

type ChangeFuture<'a> = Pin<Box<dyn Future<Output = (usize, ChangeEnd)> + Send + 'a>>;

/// Run `plan` through `runner`. Never panics on cloud errors; everything ends up in the report.
pub async fn execute<R: OpRunner>(
    plan: &Plan,
    runner: &R,
    opts: &ExecuteOptions,
    events: &mut impl FnMut(Event),
) -> ApplyReport {
    let changes = &plan.changes;
    let mut index: HashMap<&Address, usize> = HashMap::new();
    for (i, c) in changes.iter().enumerate() {
        index.entry(&c.address).or_insert(i);
    }
    // Dependencies outside the plan need no change: they are satisfied.
    let deps: Vec<Vec<usize>> = changes
        .iter()
        .map(|c| {
            c.depends_on
                .iter()
                .filter_map(|a| index.get(a).copied())
                .collect()
        })
        .collect();
    let max = opts.max_concurrency.max(1);
    let mut state = vec![State::Pending; changes.len()];
    let mut failures = Vec::new();
    let queue = EventQueue::default();
    let mut running: Vec<ChangeFuture<'_>> = Vec::new();
    let mut lanes = Lanes::new(changes, &deps);
    // A failure or refusal since the last skip propagation.
    let mut failed = false;

    loop {
        if failed {
            propagate_skips(changes, &deps, &mut state, events);
            failed = false;
        }

        let mut refused = false;
        if !opts.cancel.is_cancelled() {
            while running.len() < max {
                let Some(i) = lanes.next_ready() else {
                    break;
                };
                if state[i] != State::Pending {
                    continue;
                }
                let change = &changes[i];
                events(Event::Started {
                    address: change.address.clone(),
                    action: change.action,
                });
                if let Err(why) = guard::check_change(change, plan.owner()) {
                    let action = change
                        .ops
                        .iter()
                        .find(|op| guard::deleted_resource(op).is_some())
                        .map_or("Delete", op_name);
                    let error = OpError::local(
                        OpErrorKind::Refused,
                        action,
                        "Immctl.PruneGuard",
                        format!("refused by the executor's prune guard: {why}"),
                    );
                    tracing::error!(address = %change.address, %error, "refused");
                    finish_failed(change, error, &mut state[i], &mut failures, events);
                    refused = true;
                    continue;
                }
                state[i] = State::Running;
                lanes.started(i);
                let span = tracing::info_span!("change", address = %change.address, action = ?change.action);
                let queue = &queue;
                running.push(Box::pin(async move {
                    (
                        i,
                        run_change(change, runner, opts, queue)
                            .instrument(span)
                            .await,
                    )
                }));
            }
        }
        if refused {
            failed = true;
            continue;
        }
        if running.is_empty() {
            break;
        }

        let (i, end) = poll_fn(|cx| {
            for k in 0..running.len() {
                if let Poll::Ready(out) = running[k].as_mut().poll(cx) {
                    drop(running.swap_remove(k));
                    return Poll::Ready(out);
                }
            }
            drain(&queue, events);
            Poll::Pending
        })
        .await;
        drain(&queue, events);

        let change = &changes[i];
        lanes.finished(i);
        match end {
            ChangeEnd::Done => {
                state[i] = State::Finished(ChangeStatus::Done);
                lanes.done(i);
                events(Event::Done {
                    address: change.address.clone(),
                });
            }
            ChangeEnd::Failed(error) => {
                finish_failed(change, error, &mut state[i], &mut failures, events);
                failed = true;
            }
            ChangeEnd::Interrupted { ops_done } => {
                state[i] = State::Finished(if ops_done == 0 {
                    ChangeStatus::NotStarted
                } else {
                    ChangeStatus::Interrupted { ops_done }
                });
                events(Event::Interrupted {
                    address: change.address.clone(),
                    ops_done,
                    ops_total: change.ops.len(),
                });
            }
        }
    }

    // Whatever is still pending was stopped by cancellation, or waits on a cycle.
    let cancelled = opts.cancel.is_cancelled();
    for (i, change) in changes.iter().enumerate() {
        if state[i] != State::Pending {
            continue;
        }
        if cancelled {
            state[i] = State::Finished(ChangeStatus::NotStarted);
        } else {
            let error = OpError::local(
                OpErrorKind::InvalidPlan,
                "Plan",
                "Immctl.DependencyCycle",
                "bug: this change's dependencies can never be met (a cycle in depends_on); \
                 please report it with the plan",
            );
            finish_failed(change, error, &mut state[i], &mut failures, events);
        }
    }

    let outcomes: Vec<ChangeOutcome> = changes
        .iter()
        .zip(state)
        .map(|(c, s)| ChangeOutcome {
            address: c.address.clone(),
            action: c.action,
            status: match s {
                State::Finished(status) => status,
                // Unreachable: the loop ends only when nothing runs and nothing is pending.
                State::Pending | State::Running => ChangeStatus::NotStarted,
            },
        })
        .collect();
    let interrupted = outcomes.iter().any(|o| {
        matches!(
            o.status,
            ChangeStatus::Interrupted { .. } | ChangeStatus::NotStarted
        )
    });
    ApplyReport {
        outcomes,
        failures,
        interrupted,
    }
}

/// Ready changes by lane (the API action of a change's first op), and the scheduling counters.
struct Lanes {
    /// Lane of each change.
    lane: Vec<&'static str>,
    /// Unfinished (not yet done) dependencies of each change, counted with repeats.
    waiting: Vec<usize>,
    /// Changes that depend on each change (with repeats, matching `waiting`).
    dependents: Vec<Vec<usize>>,
    /// Per lane: ready changes in plan order, and how many run.
    ready: HashMap<&'static str, (BTreeSet<usize>, usize)>,
}

impl Lanes {
    fn new(changes: &[Change], deps: &[Vec<usize>]) -> Self {
        let lane: Vec<&'static str> = changes
            .iter()
            .map(|c| c.ops.first().map_or("", op_name))
            .collect();
        let mut dependents = vec![Vec::new(); changes.len()];
        for (i, ds) in deps.iter().enumerate() {
            for &j in ds {
                dependents[j].push(i);
            }
        }
        let mut lanes = Lanes {
            waiting: deps.iter().map(Vec::len).collect(),
            lane,
            dependents,
            ready: HashMap::new(),
        };
        for i in 0..changes.len() {
            if lanes.waiting[i] == 0 {
                lanes.push(i);
            }
        }
        lanes
    }

    fn push(&mut self, i: usize) {
        self.ready.entry(self.lane[i]).or_default().0.insert(i);
    }

    /// The ready change of the lane with the fewest running, earliest in plan order on ties.
    fn next_ready(&mut self) -> Option<usize> {
        let lane = self
            .ready
            .iter()
            .filter_map(|(lane, (set, running))| set.first().map(|&i| ((*running, i), *lane)))
            .min()
            .map(|(_, lane)| lane)?;
        self.ready.get_mut(lane)?.0.pop_first()
    }

    fn started(&mut self, i: usize) {
        self.ready.entry(self.lane[i]).or_default().1 += 1;
    }

    fn finished(&mut self, i: usize) {
        if let Some((_, running)) = self.ready.get_mut(self.lane[i]) {
            *running = running.saturating_sub(1);
        }
    }

    /// `i` is done: its dependents whose dependencies are now all done become ready.
    fn done(&mut self, i: usize) {
        for k in 0..self.dependents[i].len() {
            let d = self.dependents[i][k];
            self.waiting[d] -= 1;
            if self.waiting[d] == 0 {
                self.push(d);
            }
        }
    }
}

fn finish_failed(
    change: &Change,
    error: OpError,
    state: &mut State,
    failures: &mut Vec<RootFailure>,
    events: &mut impl FnMut(Event),
) {
    *state = State::Finished(ChangeStatus::Failed(error.clone()));
    failures.push(RootFailure {
        address: change.address.clone(),
        error: error.clone(),
    });
    events(Event::Failed {
        address: change.address.clone(),
        error,
    });
}

/// Mark every pending change with a failed or skipped dependency as skipped, naming the root.
fn propagate_skips(
    changes: &[Change],
    deps: &[Vec<usize>],
    state: &mut [State],
    events: &mut impl FnMut(Event),
) {
    loop {
        let mut changed = false;
        for i in 0..changes.len() {
            if state[i] != State::Pending {
                continue;
            }
            let root = deps[i].iter().find_map(|&j| match &state[j] {
                State::Finished(ChangeStatus::Failed(_)) => Some(changes[j].address.clone()),
                State::Finished(ChangeStatus::Skipped { because }) => Some(because.clone()),
                _ => None,
            });
            if let Some(because) = root {
                tracing::warn!(address = %changes[i].address, %because, "skipped");
                events(Event::Skipped {
                    address: changes[i].address.clone(),
                    because: because.clone(),
                });
                state[i] = State::Finished(ChangeStatus::Skipped { because });
                changed = true;
            }
        }
        if !changed {
            return;
        }
    }
}

async fn run_change<R: OpRunner>(
    change: &Change,
    runner: &R,
    opts: &ExecuteOptions,
    queue: &EventQueue,
) -> ChangeEnd {
    for (i, op) in change.ops.iter().enumerate() {
        if opts.cancel.is_cancelled() {
            return ChangeEnd::Interrupted { ops_done: i };
        }
        match run_op(&change.address, op, runner, opts, queue).await {
            Ok((already_done, request_id)) => {
                let name = op_name(op);
                tracing::debug!(op = name, already_done, "op done");
                push(
                    queue,
                    Event::OpDone {
                        address: change.address.clone(),
                        op: name,
                        already_done,
                        request_id,
                    },
                );
            }
            Err(OpStop::Failed(error)) => {
                tracing::error!(%error, "change failed");
                return ChangeEnd::Failed(error);
            }
            Err(OpStop::Cancelled) => return ChangeEnd::Interrupted { ops_done: i },
        }
    }
    ChangeEnd::Done
}

/// Whether a successful op is still read back: IMM must really use the service role we set.
fn needs_read_back(op: &Op) -> bool {
    match op {
        Op::CreateProject { .. } => true,
        Op::UpdateProject { service_role, .. } => service_role.is_some(),
        _ => false,
    }
}

/// Capped exponential backoff with 50%..100% jitter.
struct Backoff {
    next: Duration,
    max: Duration,
    attempt: u32,
}

impl Backoff {
    fn new(opts: &ExecuteOptions) -> Self {
        Backoff {
            next: opts.initial_backoff,
            max: opts.max_backoff.max(opts.initial_backoff),
            attempt: 0,
        }
    }

    fn next_delay(&mut self) -> Duration {
        let base = self.next;
        self.next = (self.next * 2).min(self.max);
        self.attempt += 1;
        base.mul_f64(rand::random_range(0.5..=1.0))
    }
}

async fn sleep_or_cancel(delay: Duration, cancel: &CancellationToken) -> Result<(), OpStop> {
    tokio::select! {
        _ = tokio::time::sleep(delay) => Ok(()),
        _ = cancel.cancelled() => Err(OpStop::Cancelled),
    }
}

async fn retry_pause(
    address: &Address,
    op: &Op,
    error: OpError,
    backoff: &mut Backoff,
    opts: &ExecuteOptions,
    queue: &EventQueue,
) -> Result<(), OpStop> {
    let delay = backoff.next_delay();
    tracing::warn!(op = op_name(op), %error, attempt = backoff.attempt, ?delay, "retrying");
    push(
        queue,
        Event::Retrying {
            address: address.clone(),
            op: op_name(op),
            error,
            attempt: backoff.attempt,
            delay,
        },
    );
    sleep_or_cancel(delay, &opts.cancel).await
}

/// Run one op to success (`Ok((already_done, request_id))`) or to a failure it cannot get
/// past. Between attempts, cancellation stops it.
async fn run_op<R: OpRunner>(
    address: &Address,
    op: &Op,
    runner: &R,
    opts: &ExecuteOptions,
    queue: &EventQueue,
) -> Result<(bool, Option<String>), OpStop> {
    let mut backoff = Backoff::new(opts);
    let mut transient_failures = 0;
    let mut deadline: Option<Instant> = None;
    loop {
        let error = match runner.run(op).await {
            Ok(outcome) => {
                if needs_read_back(op) {
                    confirm_until(address, op, None, runner, opts, queue).await?;
                }
                return Ok((false, outcome.request_id));
            }
            Err(error) => error,
        };
        match error.kind {
            OpErrorKind::AlreadyDone => {
                confirm_until(address, op, Some(&error), runner, opts, queue).await?;
                return Ok((true, error.request_id));
            }
            OpErrorKind::AlreadyExists => {
                if created_as_planned(address, op, runner, opts, queue).await? {
                    return Ok((true, error.request_id));
                }
                return Err(OpStop::Failed(error));
            }
            OpErrorKind::NotYetVisible => {
                let deadline =
                    *deadline.get_or_insert_with(|| Instant::now() + opts.consistency_timeout);
                if Instant::now() >= deadline {
                    return Err(OpStop::Failed(error));
                }
            }
            OpErrorKind::Transient => {
                transient_failures += 1;
                if transient_failures > opts.transient_retries {
                    return Err(OpStop::Failed(error));
                }
            }
            _ => return Err(OpStop::Failed(error)),
        }
        if opts.cancel.is_cancelled() {
            return Err(OpStop::Cancelled);
        }
        retry_pause(address, op, error, &mut backoff, opts, queue).await?;
        // A write that answers no "already exists" when sent twice (a new policy version):
        // the failed attempt may have been carried out (its reply lost), so read before
        // sending again. The client leaves these to us for the same reason.
        if crate::cloud::client::NOT_RETRIED_BLINDLY.contains(&op_name(op))
            && created_as_planned(address, op, runner, opts, queue).await?
        {
            return Ok((true, None));
        }
    }
}

/// `runner.created(op)`, through transient read failures (bounded as for any op): is the
/// resource a create found already there the one it makes? One answer, no polling: a read
/// that shows another owner's resource will not change its mind.
async fn created_as_planned<R: OpRunner>(
    address: &Address,
    op: &Op,
    runner: &R,
    opts: &ExecuteOptions,
    queue: &EventQueue,
) -> Result<bool, OpStop> {
    let mut backoff = Backoff::new(opts);
    let mut transient_failures = 0;
    loop {
        match runner.created(op).await {
            Ok(ours) => return Ok(ours),
            Err(error) if error.kind == OpErrorKind::Transient => {
                transient_failures += 1;
                if transient_failures > opts.transient_retries {
                    return Err(OpStop::Failed(error));
                }
                if opts.cancel.is_cancelled() {
                    return Err(OpStop::Cancelled);
                }
                retry_pause(address, op, error, &mut backoff, opts, queue).await?;
            }
            Err(error) => return Err(OpStop::Failed(error)),
        }
    }
}

/// Poll `runner.confirm(op)` until it shows the end state, up to `consistency_timeout`.
/// `answer` is the "already done" reply being confirmed, quoted in the failure.
async fn confirm_until<R: OpRunner>(
    address: &Address,
    op: &Op,
    answer: Option<&OpError>,
    runner: &R,
    opts: &ExecuteOptions,
    queue: &EventQueue,
) -> Result<(), OpStop> {
    let deadline = Instant::now() + opts.consistency_timeout;
    let mut backoff = Backoff::new(opts);
    let mut transient_failures = 0;
    loop {
        let error = match runner.confirm(op).await {
            Ok(true) => return Ok(()),
            Ok(false) => {
                let name = op_name(op);
                let quoted = answer.map_or(String::new(), |a| {
                    let id = a.request_id.as_deref().unwrap_or("none");
                    format!(" (the cloud answered {} to {name}, RequestId {id})", a.code)
                });
                let error = OpError::local(
                    OpErrorKind::Unconfirmed,
                    name,
                    "Immctl.Unconfirmed",
                    format!(
                        "a read did not show the end state of {name} within {}s{quoted}",
                        opts.consistency_timeout.as_secs_f64()
                    ),
                );
                if Instant::now() >= deadline {
                    return Err(OpStop::Failed(error));
                }
                error
            }
            Err(error) if error.kind == OpErrorKind::Transient => {
                transient_failures += 1;
                if transient_failures > opts.transient_retries {
                    return Err(OpStop::Failed(error));
                }
                error
            }
            Err(error) => return Err(OpStop::Failed(error)),
        };
        if opts.cancel.is_cancelled() {
            return Err(OpStop::Cancelled);
        }
        retry_pause(address, op, error, &mut backoff, opts, queue).await?;
    }
}
