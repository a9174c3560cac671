//! One tick: load the manifests, read live, plan (diff + lints), preflight, apply unless
//! detect-only, and report. The stages are `crate::reconcile`'s, the same as
//! `immctl reconcile`'s; this file only sequences them for the daemon and turns each way a
//! tick can end into a [`TickReport`].
//!
//! Recomputed from scratch every time: nothing from an earlier tick (manifests, live state,
//! plan) is reused, in particular never the last *good* manifests when the current ones fail
//! to load: an invalid set means nothing is read, nothing applied and nothing pruned.
//!
//! Shutdown (`stop`): while reading, the tick is abandoned at once (reads change nothing);
//! while applying, the executor lets the API calls in flight finish and starts nothing more.

use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::apply::{ApplyReport, ChangeStatus as Outcome, Event, ExecuteOptions};
use crate::live;
use crate::manifest::Loaded;
use crate::plan::{Action, Plan};
use crate::reconcile::{self, PassOptions};

use super::status::{
    ApplyStatus, ChangeStatus, FindingStatus, ManifestsStatus, PlanStatus, TickReport, capped,
    rfc3339,
};
use super::{TickResult, Trigger};

/// What a tick needs.
pub(crate) struct TickContext<'a> {
    pub client: &'a crate::cloud::Client,
    pub pass: &'a PassOptions,
    pub detect_only: bool,
    pub execute: &'a ExecuteOptions,
}

/// Run one tick. Never panics on bad input or cloud errors: every ending is a report.
pub(crate) async fn run(
    ctx: &TickContext<'_>,
    tick: u64,
    trigger: Trigger,
    stop: &CancellationToken,
    on_loaded: impl FnOnce(&Loaded),
) -> TickReport {
    let started = Instant::now();
    let mut report = TickReport {
        tick,
        trigger,
        result: TickResult::Success,
        started_at: Utc::now(),
        duration: Duration::ZERO,
        manifests: None,
        plan: None,
        apply: None,
        error: None,
        details: Vec::new(),
        applied_by_action: Vec::new(),
        failed_by_action: Vec::new(),
    };
    stages(ctx, &mut report, stop, on_loaded).await;
    report.duration = started.elapsed();
    let s = report.plan.as_ref().map(|p| p.summary).unwrap_or_default();
    let ms = report.duration.as_millis() as u64;
    match &report.error {
        None => tracing::info!(
            result = report.result.as_str(),
            duration_ms = ms,
            create = s.create,
            update = s.update,
            adopt = s.adopt,
            delete = s.delete,
            "tick finished"
        ),
        Some(e) => tracing::warn!(
            result = report.result.as_str(),
            duration_ms = ms,
            error = %e,
            "tick failed"
        ),
    }
    report
}

async fn stages(
    ctx: &TickContext<'_>,
    r: &mut TickReport,
    stop: &CancellationToken,
    on_loaded: impl FnOnce(&Loaded),
) {
    // 1. Manifests (blocking file I/O, off the async threads).
    let pass = ctx.pass.clone();
    let loaded = match tokio::task::spawn_blocking(move || reconcile::load_all(&pass)).await {
        Ok(l) => l,
        Err(e) => {
            r.result = TickResult::InvalidManifests;
            r.error = Some(format!(
                "bug: loading the manifests panicked ({e}); please report it"
            ));
            return;
        }
    };
    on_loaded(&loaded);
    let errors: Vec<String> = loaded.errors().map(ToString::to_string).collect();
    r.manifests = Some(ManifestsStatus {
        digest: loaded.desired.digest.clone(),
        valid: errors.is_empty(),
        files: loaded.files.len(),
        errors: capped(errors.clone()),
        error_count: errors.len(),
        warning_count: loaded.warnings().count(),
    });
    if !errors.is_empty() {
        for d in loaded.errors() {
            tracing::error!(
                code = %d.code,
                source = d.source.as_ref().map(|s| s.to_string()),
                address = d.address.as_ref().map(|a| a.to_string()),
                "{}",
                d.message
            );
        }
        r.result = TickResult::InvalidManifests;
        r.error = Some(format!(
            "the manifests have {} error(s); nothing was read, applied or pruned until they are fixed (first: {})",
            errors.len(),
            errors[0]
        ));
        r.details = errors;
        return;
    }
    for d in loaded.warnings() {
        tracing::warn!(
            code = %d.code,
            source = d.source.as_ref().map(|s| s.to_string()),
            address = d.address.as_ref().map(|a| a.to_string()),
            "{}",
            d.message
        );
    }

    // 2. Live state. Abandoned at once on shutdown: reads change nothing.
    let scope = reconcile::scope(&loaded, ctx.pass);
    let live = tokio::select! {
        read = live::fetch(ctx.client, &scope) => read,
        () = stop.cancelled() => {
            r.result = TickResult::Interrupted;
            r.error = Some("shutdown while reading the live state; nothing was applied".into());
            return;
        }
    };
    let live = match live {
        Ok(l) => l,
        Err(e) => {
            r.result = TickResult::ReadError;
            r.error = Some(format!("reading the live state: {e}"));
            return;
        }
    };

    // 3. Plan (pure) and lints.
    let mut plan = reconcile::plan_for(&loaded, &live, &ctx.pass.plan);
    log_plan(&plan);
    if ctx.detect_only {
        let disposition = if plan.is_empty() {
            "no_changes"
        } else {
            "detect_only"
        };
        r.plan = Some(plan_status(r.tick, &plan, disposition));
        return;
    }
    // Error findings hold the plan back, as `immctl reconcile` without `--force` (the daemon
    // has no force). An empty plan with one is held back too: the planner encodes some
    // refusals (prune past max_deletions, prune of an empty set) as findings, not changes.
    if crate::lint::blocks_apply(&plan.findings) {
        blocked(r, &plan);
        return;
    }
    if plan.is_empty() {
        r.plan = Some(plan_status(r.tick, &plan, "no_changes"));
        return;
    }

    // 4. Preflight: may the caller pass the service roles this plan sets? (No call when the
    // plan sets none.)
    let checked = tokio::select! {
        c = crate::preflight::preflight(ctx.client, &plan, &loaded.desired, &live) => c,
        () = stop.cancelled() => {
            r.result = TickResult::Interrupted;
            r.plan = Some(plan_status(r.tick, &plan, "interrupted"));
            r.error = Some("shutdown before applying; nothing was applied".into());
            return;
        }
    };
    match checked {
        Ok(findings) => {
            for f in &findings {
                tracing::warn!(code = %f.code, severity = %f.severity, address = %f.address, "{}", f.message);
            }
            plan.findings.extend(findings);
        }
        Err(e) => {
            r.result = TickResult::PreflightError;
            r.plan = Some(plan_status(r.tick, &plan, "not_applied"));
            r.error = Some(format!("preflight: {e}"));
            return;
        }
    }
    if crate::lint::blocks_apply(&plan.findings) {
        blocked(r, &plan);
        return;
    }

    // 5. Apply. Cancellation: the calls in flight finish, nothing more starts.
    let opts = ExecuteOptions {
        cancel: stop.clone(),
        ..ctx.execute.clone()
    };
    let report = reconcile::execute(ctx.client, &plan, &opts, &mut log_event).await;
    r.plan = Some(plan_status(r.tick, &plan, "applied"));
    record_apply(r, &report);
}

/// Record a plan held back by its error findings.
fn blocked(r: &mut TickReport, plan: &Plan) {
    let blocking: Vec<String> = plan
        .findings
        .iter()
        .filter(|f| f.severity == crate::plan::Severity::Error)
        .map(|f| format!("{} {}: {}", f.code, f.address, f.message))
        .collect();
    r.result = TickResult::Blocked;
    r.plan = Some(plan_status(r.tick, plan, "blocked"));
    r.error = Some(format!(
        "the plan has {} error finding(s); nothing was applied until they are fixed (first: {})",
        blocking.len(),
        blocking.first().map_or("", String::as_str)
    ));
    r.details = capped(blocking);
}

fn log_plan(plan: &Plan) {
    for c in &plan.changes {
        let reasons: Vec<&str> = c.reasons.iter().map(|x| x.code.as_str()).collect();
        tracing::info!(
            address = %c.address,
            action = c.action.as_str(),
            reasons = %reasons.join(","),
            "drift"
        );
    }
    for f in &plan.findings {
        match f.severity {
            crate::plan::Severity::Error => {
                tracing::error!(code = %f.code, address = %f.address, "{}", f.message)
            }
            crate::plan::Severity::Warning => {
                tracing::warn!(code = %f.code, address = %f.address, "{}", f.message)
            }
            crate::plan::Severity::Info => {
                tracing::debug!(code = %f.code, address = %f.address, "{}", f.message)
            }
        }
    }
}

/// Executor events as log lines (the executor's own spans carry the address too).
fn log_event(e: Event) {
    match &e {
        Event::Started { address, action } => {
            tracing::info!(address = %address, action = action.as_str(), "applying")
        }
        Event::OpDone {
            address,
            op,
            already_done,
            request_id,
        } => tracing::info!(
            address = %address,
            op,
            already_done,
            request_id = request_id.as_deref().unwrap_or(""),
            "operation done"
        ),
        Event::Retrying {
            address,
            op,
            attempt,
            delay,
            error,
        } => tracing::warn!(
            address = %address,
            op,
            attempt,
            delay_ms = delay.as_millis() as u64,
            error = %error,
            "retrying"
        ),
        Event::Done { address } => tracing::info!(address = %address, "applied"),
        Event::Failed { address, error } => {
            tracing::error!(address = %address, error = %error, "change failed")
        }
        Event::Skipped { address, because } => {
            tracing::warn!(address = %address, because = %because, "skipped: a change it depends on failed")
        }
        Event::Interrupted {
            address,
            ops_done,
            ops_total,
        } => tracing::warn!(
            address = %address,
            ops_done,
            ops_total,
            "interrupted by shutdown"
        ),
    }
}

fn plan_status(tick: u64, plan: &Plan, disposition: &'static str) -> PlanStatus {
    PlanStatus {
        tick,
        made_at: rfc3339(Utc::now()),
        manifest_digest: plan.manifest_digest.clone(),
        summary: plan.summary(),
        changes: plan
            .changes
            .iter()
            .map(|c| ChangeStatus {
                address: c.address.to_string(),
                action: c.action,
                reasons: c.reasons.iter().map(|x| x.code.clone()).collect(),
            })
            .collect(),
        findings: plan
            .findings
            .iter()
            .map(|f| FindingStatus {
                code: f.code.clone(),
                severity: f.severity,
                address: f.address.to_string(),
                message: f.message.clone(),
            })
            .collect(),
        disposition,
    }
}

fn count_by_action(report: &ApplyReport, pick: impl Fn(&Outcome) -> bool) -> Vec<(Action, usize)> {
    [
        Action::Create,
        Action::Update,
        Action::Adopt,
        Action::Delete,
    ]
    .into_iter()
    .map(|a| {
        let n = report
            .outcomes
            .iter()
            .filter(|o| o.action == a && pick(&o.status))
            .count();
        (a, n)
    })
    .filter(|(_, n)| *n > 0)
    .collect()
}

fn record_apply(r: &mut TickReport, report: &ApplyReport) {
    let not_finished = report
        .outcomes
        .iter()
        .filter(|o| matches!(o.status, Outcome::Interrupted { .. } | Outcome::NotStarted))
        .count();
    let failures: Vec<String> = report.failures.iter().map(ToString::to_string).collect();
    r.applied_by_action = count_by_action(report, |s| matches!(s, Outcome::Done));
    r.failed_by_action = count_by_action(report, |s| matches!(s, Outcome::Failed(_)));
    r.apply = Some(ApplyStatus {
        tick: r.tick,
        done: report.done(),
        failed: report.failures.len(),
        skipped: report.skipped(),
        not_finished,
        interrupted: report.interrupted,
        failures: capped(failures.clone()),
    });
    if report.is_success() {
        return;
    }
    if !report.failures.is_empty() {
        r.result = TickResult::ApplyError;
        r.error = Some(format!(
            "{} The next tick picks up where this one stopped. First failure: {}",
            report.summary(),
            failures[0]
        ));
        r.details = capped(failures);
    } else if report.interrupted {
        r.result = TickResult::Interrupted;
        r.error = Some(format!(
            "{} Stopped by shutdown; the next run re-plans from the live state.",
            report.summary()
        ));
    } else {
        // Skipped without a root failure cannot happen; report it rather than hide it.
        r.result = TickResult::ApplyError;
        r.error = Some(format!(
            "{} (bug: no root failure recorded)",
            report.summary()
        ));
    }
}
