//! What the daemon knows about itself, shared by the tick loop (which records) and the HTTP
//! endpoints (which read): the last tick, the last plan, the last error, readiness, metrics.
//!
//! Everything here is bounded: only the last tick's summary is kept (plan summaries, not
//! plans with documents), so memory does not grow with uptime.
//!
//! Must not: hold a lock across an await, or keep anything secret (it is served over HTTP).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use tokio::time::Instant;

use crate::cloud::Client;
use crate::plan::{Action, Severity};

use super::metrics::Metrics;
use super::{TickResult, Trigger};

/// Most manifest errors or failures listed in `/status` (all of them are in the logs).
const MAX_LISTED: usize = 50;

/// A tick's outcome, as the tick loop hands it over for recording.
#[derive(Debug, Clone)]
pub(crate) struct TickReport {
    pub tick: u64,
    pub trigger: Trigger,
    pub result: TickResult,
    pub started_at: DateTime<Utc>,
    pub duration: Duration,
    /// `None` when the tick was stopped before the manifests were read.
    pub manifests: Option<ManifestsStatus>,
    /// `None` when no plan was made (invalid manifests, failed read).
    pub plan: Option<PlanStatus>,
    /// `None` when nothing was applied.
    pub apply: Option<ApplyStatus>,
    /// One line, for failed ticks.
    pub error: Option<String>,
    /// More lines (each manifest error, each failed change).
    pub details: Vec<String>,
    /// Changes done / failed this tick, by action (for the counters).
    pub applied_by_action: Vec<(Action, usize)>,
    pub failed_by_action: Vec<(Action, usize)>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ManifestsStatus {
    /// SHA-256 over the manifest files read (as in saved plans' `manifest_digest`).
    pub digest: String,
    pub valid: bool,
    pub files: usize,
    /// `file:line:column: error[CODE]: message` lines (at most 50).
    pub errors: Vec<String>,
    pub error_count: usize,
    pub warning_count: usize,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct PlanStatus {
    pub tick: u64,
    pub made_at: String,
    pub manifest_digest: String,
    pub summary: crate::plan::Summary,
    pub changes: Vec<ChangeStatus>,
    pub findings: Vec<FindingStatus>,
    /// Why the plan was (not) applied: `applied`, `no_changes`, `detect_only`, `blocked`.
    pub disposition: &'static str,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ChangeStatus {
    pub address: String,
    pub action: Action,
    /// Reason codes (`missing`, `trust_policy`, `prune`, ...).
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct FindingStatus {
    pub code: String,
    pub severity: Severity,
    pub address: String,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ApplyStatus {
    pub tick: u64,
    pub done: usize,
    pub failed: usize,
    pub skipped: usize,
    /// Cancelled by shutdown before they finished (or started).
    pub not_finished: usize,
    pub interrupted: bool,
    /// Root failures: `CreateRole ram_role.x: 409 EntityAlreadyExists.Role: ... (RequestId ...)`.
    pub failures: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
struct TickRecord {
    tick: u64,
    trigger: Trigger,
    result: TickResult,
    started_at: String,
    duration_seconds: f64,
    manifest_digest: Option<String>,
    error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct ErrorRecord {
    at: String,
    tick: u64,
    result: TickResult,
    message: String,
    details: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
struct Running {
    tick: u64,
    trigger: Trigger,
    started_at: String,
}

/// What `/status` shows about how the daemon was started.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StartedWith {
    pub paths: Vec<String>,
    pub owner: String,
    pub interval_seconds: f64,
    pub jitter: f64,
    pub detect_only: bool,
    pub adopt: bool,
    pub prune: bool,
    pub max_deletions: usize,
    pub allow_mass_delete: bool,
}

#[derive(Debug, Default)]
struct Diag {
    ticks: u64,
    running: Option<Running>,
    last_tick: Option<TickRecord>,
    last_success: Option<(DateTime<Utc>, Instant)>,
    last_error: Option<ErrorRecord>,
    manifests: Option<ManifestsStatus>,
    plan: Option<PlanStatus>,
    apply: Option<ApplyStatus>,
    consecutive_failures: u32,
    next_tick_at: Option<DateTime<Utc>>,
    /// The last tick refused to go on because of the manifests (invalid, or error findings):
    /// not ready until a tick gets past them.
    held_back: Option<String>,
}

/// The shared state behind the HTTP endpoints.
pub(crate) struct Shared {
    pub started_with: StartedWith,
    pub interval: Duration,
    pub started_at: DateTime<Utc>,
    pub metrics: Metrics,
    client: Client,
    diag: Mutex<Diag>,
}

pub(crate) fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn unix_seconds(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

impl Shared {
    pub(crate) fn new(
        started_with: StartedWith,
        interval: Duration,
        client: Client,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            started_with,
            interval,
            started_at: Utc::now(),
            metrics: Metrics::new(),
            client,
            diag: Mutex::new(Diag::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Diag> {
        self.diag.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn tick_started(&self, tick: u64, trigger: Trigger) {
        let mut d = self.lock();
        d.running = Some(Running {
            tick,
            trigger,
            started_at: rfc3339(Utc::now()),
        });
        d.next_tick_at = None;
    }

    /// Record a finished tick: status, readiness inputs and metrics.
    pub(crate) fn record(&self, r: TickReport, consecutive_failures: u32, next_in: Duration) {
        let ended = Utc::now();
        let m = &self.metrics;
        m.ticks.with_label_values(&[r.result.as_str()]).inc();
        m.tick_duration.observe(r.duration.as_secs_f64());
        m.last_tick.set(unix_seconds(ended));
        m.consecutive_failures.set(i64::from(consecutive_failures));
        if let Some(man) = &r.manifests {
            m.manifests_valid.set(i64::from(man.valid));
        }
        if let Some(p) = &r.plan {
            let s = p.summary;
            let by_action = [
                (Action::Create, s.create),
                (Action::Update, s.update),
                (Action::Adopt, s.adopt),
                (Action::Delete, s.delete),
            ];
            let by_severity: Vec<(Severity, usize)> =
                [Severity::Error, Severity::Warning, Severity::Info]
                    .into_iter()
                    .map(|sev| (sev, p.findings.iter().filter(|f| f.severity == sev).count()))
                    .collect();
            m.set_plan(&by_action, &by_severity);
        }
        for (a, n) in &r.applied_by_action {
            m.applied.with_label_values(&[a.as_str()]).inc_by(*n as u64);
        }
        for (a, n) in &r.failed_by_action {
            m.change_failures
                .with_label_values(&[a.as_str()])
                .inc_by(*n as u64);
        }
        if r.result == TickResult::Success {
            m.last_success.set(unix_seconds(ended));
        }

        let mut d = self.lock();
        d.ticks = d.ticks.max(r.tick);
        d.running = None;
        d.consecutive_failures = consecutive_failures;
        d.next_tick_at = chrono::Duration::from_std(next_in)
            .ok()
            .and_then(|n| ended.checked_add_signed(n));
        d.last_tick = Some(TickRecord {
            tick: r.tick,
            trigger: r.trigger,
            result: r.result,
            started_at: rfc3339(r.started_at),
            duration_seconds: r.duration.as_secs_f64(),
            manifest_digest: r.manifests.as_ref().map(|m| m.digest.clone()),
            error: r.error.clone(),
        });
        match r.result {
            TickResult::InvalidManifests | TickResult::Blocked => {
                d.held_back = r.error.clone();
            }
            // Stopped by shutdown: says nothing new about the manifests.
            TickResult::Interrupted => {}
            // The tick got past the manifests (and the lints, when it got that far).
            TickResult::Success
            | TickResult::ReadError
            | TickResult::PreflightError
            | TickResult::ApplyError => d.held_back = None,
        }
        if r.result == TickResult::Success {
            d.last_success = Some((ended, Instant::now()));
        }
        if r.result.is_failure() {
            d.last_error = Some(ErrorRecord {
                at: rfc3339(ended),
                tick: r.tick,
                result: r.result,
                message: r.error.clone().unwrap_or_default(),
                details: r.details.iter().take(MAX_LISTED).cloned().collect(),
            });
        }
        if let Some(man) = r.manifests {
            d.manifests = Some(man);
        }
        if let Some(p) = r.plan {
            d.plan = Some(p);
        }
        if let Some(a) = r.apply {
            d.apply = Some(a);
        }
    }

    /// `/readyz`: ready when the manifests are not holding the daemon back and a tick
    /// succeeded within the last three intervals. The string says why, either way.
    pub(crate) fn readiness(&self) -> (bool, String) {
        let d = self.lock();
        if let Some(why) = &d.held_back {
            return (false, format!("not ready: {why}"));
        }
        let window = self.interval.saturating_mul(3);
        match d.last_success {
            None => {
                let mut s = String::from("not ready: no tick has succeeded yet");
                if let Some(e) = &d.last_error {
                    s.push_str(&format!(
                        "; last error (tick {}, {}): {}",
                        e.tick,
                        e.result.as_str(),
                        e.message
                    ));
                }
                (false, s)
            }
            Some((_, at)) => {
                let ago = at.elapsed();
                if ago > window {
                    let mut s = format!(
                        "not ready: the last successful tick ended {:.1}s ago, more than three intervals ({:.1}s)",
                        ago.as_secs_f64(),
                        window.as_secs_f64()
                    );
                    if let Some(e) = &d.last_error {
                        s.push_str(&format!("; last error: {}", e.message));
                    }
                    (false, s)
                } else {
                    (
                        true,
                        format!(
                            "ready: the last successful tick ended {:.1}s ago",
                            ago.as_secs_f64()
                        ),
                    )
                }
            }
        }
    }

    /// `/metrics`.
    pub(crate) fn render_metrics(&self) -> String {
        let (ready, _) = self.readiness();
        self.metrics.render(&self.client.metrics(), ready)
    }

    /// `/status` (and `/`).
    pub(crate) fn status_json(&self) -> serde_json::Value {
        let (ready, ready_reason) = self.readiness();
        let d = self.lock();
        serde_json::json!({
            "version": env!("CARGO_PKG_VERSION"),
            "ready": ready,
            "ready_reason": ready_reason,
            "started_at": rfc3339(self.started_at),
            "settings": self.started_with,
            "ticks": d.ticks,
            "tick_in_progress": d.running,
            "next_tick_at": d.next_tick_at.map(rfc3339),
            "consecutive_failures": d.consecutive_failures,
            "last_success_at": d.last_success.map(|(t, _)| rfc3339(t)),
            "last_tick": d.last_tick,
            "last_error": d.last_error,
            "manifests": d.manifests,
            "plan": d.plan,
            "apply": d.apply,
        })
    }
}

/// Cap a list for `/status`, saying how many were left out.
pub(crate) fn capped(mut lines: Vec<String>) -> Vec<String> {
    if lines.len() > MAX_LISTED {
        let more = lines.len() - MAX_LISTED;
        lines.truncate(MAX_LISTED);
        lines.push(format!("... and {more} more (see the logs)"));
    }
    lines
}
