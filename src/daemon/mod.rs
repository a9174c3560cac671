//! `immctl run`: the tick loop, graceful shutdown, and the HTTP endpoints (`/healthz`,
//! `/readyz`, `/metrics`, `/status`). docs/daemon.md is the user-facing description.
//!
//! [`run`] takes its listener and its shutdown future from the caller (the CLI binds the
//! `listen` setting and passes SIGTERM/SIGINT; tests pass `127.0.0.1:0` and a oneshot).
//!
//! - `tick.rs`: one tick, the stages of [`crate::reconcile`] in order; recomputed from
//!   scratch each time.
//! - `schedule.rs`: interval with jitter after a good tick, capped exponential backoff after
//!   a failed one (pure).
//! - `watch.rs`: a poll of the manifest files that wakes the loop early (debounced).
//! - `status.rs`: the shared state the endpoints read (last tick, plan, error, readiness).
//! - `metrics.rs`: the Prometheus metrics; `http.rs`: the router.
//!
//! Must not: decide what to change (that is `plan`), retry an API call itself (the client
//! and the executor do), keep state between ticks beyond what `/status` reports, or exit on
//! a cloud error: only the shutdown future ends [`run`].

mod http;
mod metrics;
mod schedule;
mod status;
mod tick;
mod watch;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::apply::ExecuteOptions;
use crate::cloud::Client;
use crate::manifest::DEFAULT_PATH;
use crate::plan::PlanSettings;
use crate::reconcile::PassOptions;
use crate::settings::Settings;

pub use metrics::CONTENT_TYPE as METRICS_CONTENT_TYPE;
pub use schedule::{BACKOFF_INITIAL, Schedule, jittered};
pub use watch::WatchOptions;

use status::{Shared, StartedWith};

/// Why a tick ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The first tick after start.
    Start,
    /// The interval elapsed after a successful tick.
    Interval,
    /// The backoff elapsed after a failed tick.
    Retry,
    /// The manifest files changed.
    FileChange,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Start => "start",
            Trigger::Interval => "interval",
            Trigger::Retry => "retry",
            Trigger::FileChange => "file_change",
        }
    }
}

/// How a tick ended: the `result` label of `immctl_ticks_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TickResult {
    /// Planned, and applied (or nothing to apply, or detect-only).
    Success,
    /// A manifest has an error: nothing was read, applied or pruned.
    InvalidManifests,
    /// The plan has error findings (lints, preflight): nothing was applied.
    Blocked,
    /// Reading the live state failed (after the client's retries).
    ReadError,
    /// Preflight's reads failed.
    PreflightError,
    /// Some change failed; the others were applied (the next tick re-plans).
    ApplyError,
    /// Shutdown stopped the tick.
    Interrupted,
}

impl TickResult {
    pub const ALL: [TickResult; 7] = [
        TickResult::Success,
        TickResult::InvalidManifests,
        TickResult::Blocked,
        TickResult::ReadError,
        TickResult::PreflightError,
        TickResult::ApplyError,
        TickResult::Interrupted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TickResult::Success => "success",
            TickResult::InvalidManifests => "invalid_manifests",
            TickResult::Blocked => "blocked",
            TickResult::ReadError => "read_error",
            TickResult::PreflightError => "preflight_error",
            TickResult::ApplyError => "apply_error",
            TickResult::Interrupted => "interrupted",
        }
    }

    /// A failed tick: counts toward the backoff and is the "last error".
    pub fn is_failure(self) -> bool {
        !matches!(self, TickResult::Success | TickResult::Interrupted)
    }
}

/// Everything [`run`] needs besides the listener and the shutdown future.
#[derive(Debug, Clone)]
pub struct Options {
    /// The connected client (credentials chain, or the embedded emulator's key).
    pub client: Client,
    /// Manifest paths, default region and plan settings (owner, prune and its guards).
    pub pass: PassOptions,
    /// Interval, jitter and backoff.
    pub schedule: Schedule,
    /// Plan and report, never apply.
    pub detect_only: bool,
    /// How plans are applied (its `cancel` is replaced by the daemon's shutdown).
    pub execute: ExecuteOptions,
    /// Early ticks on file changes; `None` turns them off (the interval still runs).
    pub watch: Option<WatchOptions>,
    /// After the shutdown signal, how long the API calls in flight may take to finish before
    /// the tick is abandoned. Below Kubernetes' default 30 s grace, so the process exits on
    /// its own rather than being killed.
    pub shutdown_grace: Duration,
}

/// Default for [`Options::shutdown_grace`].
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(25);

impl Options {
    /// The daemon as the settings describe it, reading manifests under `paths`.
    pub fn from_settings(client: Client, paths: Vec<PathBuf>, settings: &Settings) -> Options {
        let d = &settings.daemon;
        let execute = ExecuteOptions {
            max_concurrency: client.config().max_concurrency.max(1),
            ..ExecuteOptions::default()
        };
        Options {
            client,
            pass: PassOptions {
                paths,
                default_region: settings.region.clone(),
                plan: PlanSettings {
                    owner: settings.owner.clone(),
                    // Not a setting: `immctl run --adopt` sets it (as `reconcile --adopt`).
                    adopt: false,
                    prune: d.prune,
                    max_deletions: d.max_deletions as usize,
                    allow_mass_delete: d.allow_mass_delete,
                    targets: Vec::new(),
                },
            },
            schedule: Schedule::new(d.interval, d.jitter),
            detect_only: d.detect_only,
            execute,
            watch: Some(WatchOptions::default()),
            shutdown_grace: SHUTDOWN_GRACE,
        }
    }

    fn roots(&self) -> Vec<PathBuf> {
        if self.pass.paths.is_empty() {
            vec![PathBuf::from(DEFAULT_PATH)]
        } else {
            self.pass.paths.clone()
        }
    }

    fn started_with(&self) -> StartedWith {
        let p = &self.pass.plan;
        StartedWith {
            paths: self
                .roots()
                .iter()
                .map(|p| p.display().to_string())
                .collect(),
            owner: p.owner.clone(),
            interval_seconds: self.schedule.interval.as_secs_f64(),
            jitter: self.schedule.jitter,
            detect_only: self.detect_only,
            adopt: p.adopt,
            prune: p.prune,
            max_deletions: p.max_deletions,
            allow_mass_delete: p.allow_mass_delete,
        }
    }
}

/// Serve the endpoints on `listener` and tick until `shutdown` completes; then let the API
/// calls in flight finish (at most [`Options::shutdown_grace`]), apply nothing more, stop
/// serving and return. Cloud errors and invalid manifests never end it; only an error of
/// the listener itself is returned.
pub async fn run<F>(opts: Options, listener: TcpListener, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()>,
{
    let addr = listener.local_addr()?;
    let shared = Shared::new(
        opts.started_with(),
        opts.schedule.interval,
        opts.client.clone(),
    );
    let http_stop = CancellationToken::new();
    let server = {
        let app = http::router(shared.clone());
        let stop = http_stop.clone();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
        })
    };
    tracing::info!(
        %addr,
        interval_s = opts.schedule.interval.as_secs_f64(),
        detect_only = opts.detect_only,
        prune = opts.pass.plan.prune,
        "immctl run: serving /healthz /readyz /metrics /status"
    );

    let stop = CancellationToken::new();
    let watcher = match &opts.watch {
        Some(w) => Some(watch::Watcher::start(opts.roots(), w.clone()).await),
        None => None,
    };
    {
        let ticking = tick_loop(&opts, &shared, watcher.as_ref(), &stop);
        tokio::pin!(ticking);
        tokio::pin!(shutdown);
        tokio::select! {
            () = &mut ticking => {}
            () = &mut shutdown => {
                tracing::info!("shutdown requested: letting the API calls in flight finish, applying nothing more");
                stop.cancel();
                if tokio::time::timeout(opts.shutdown_grace, &mut ticking).await.is_err() {
                    tracing::error!(
                        grace_s = opts.shutdown_grace.as_secs_f64(),
                        "the calls in flight did not finish within the shutdown grace; abandoning them (the next run re-plans from the live state)"
                    );
                }
            }
        }
    }
    drop(watcher);
    http_stop.cancel();
    match tokio::time::timeout(Duration::from_secs(5), server).await {
        Ok(Ok(served)) => served?,
        Ok(Err(join)) => tracing::error!(error = %join, "bug: the HTTP server task failed"),
        Err(_) => tracing::warn!("the HTTP server did not stop within 5s; leaving it"),
    }
    tracing::info!("immctl run: stopped");
    Ok(())
}

/// Tick, wait, tick... until `stop`. Never returns otherwise.
async fn tick_loop(
    opts: &Options,
    shared: &Arc<Shared>,
    watcher: Option<&watch::Watcher>,
    stop: &CancellationToken,
) {
    let ctx = tick::TickContext {
        client: &opts.client,
        pass: &opts.pass,
        detect_only: opts.detect_only,
        execute: &opts.execute,
    };
    let mut trigger = Trigger::Start;
    let mut failures: u32 = 0;
    for n in 1u64.. {
        if stop.is_cancelled() {
            return;
        }
        shared.tick_started(n, trigger);
        let span = tracing::info_span!("tick", tick = n, trigger = trigger.as_str());
        let on_loaded = |loaded: &crate::manifest::Loaded| {
            if let Some(w) = watcher {
                w.set_loaded(&loaded.files);
            }
        };
        let report = tick::run(&ctx, n, trigger, stop, on_loaded)
            .instrument(span)
            .await;
        let result = report.result;
        if result.is_failure() {
            failures = failures.saturating_add(1);
        } else if result == TickResult::Success {
            failures = 0;
        }
        let delay = opts.schedule.delay(failures, rand::random::<f64>());
        shared.record(report, failures, delay);
        if stop.is_cancelled() {
            return;
        }
        trigger = tokio::select! {
            () = tokio::time::sleep(delay) => if failures > 0 { Trigger::Retry } else { Trigger::Interval },
            () = changed(watcher) => Trigger::FileChange,
            () = stop.cancelled() => return,
        };
    }
}

async fn changed(watcher: Option<&watch::Watcher>) {
    match watcher {
        Some(w) => w.changed().await,
        None => std::future::pending().await,
    }
}
