//! One reconcile pass, the same for `immctl reconcile` (once) and the daemon (every tick):
//!
//! ```text
//! manifests ──manifest::load──▶ Desired ─┐
//!                                        ├─ plan::diff + lints ─▶ Plan ─▶ apply::execute (unless dry run)
//! cloud ──live::fetch (scope)──▶ Live ───┘
//! ```
//!
//! This module only sequences the stages and carries their errors; each stage's rules live in
//! its own module. It prints nothing: callers render the plan and the events.

use std::path::PathBuf;
use std::time::Instant;

use crate::apply::{self, ApplyReport, CloudOpRunner, Event, ExecuteOptions};
use crate::cloud::Client;
use crate::live::{self, Live, Scope};
use crate::manifest::{self, Diagnostic, LoadOptions, Loaded};
use crate::plan::{self, Finding, Plan, PlanSettings};

/// What a pass needs to know beyond the client.
#[derive(Debug, Clone)]
pub struct PassOptions {
    /// Manifest files or directories (empty: `manifests/`).
    pub paths: Vec<PathBuf>,
    /// Region of projects that name none, and where undeclared owned projects are looked for.
    pub default_region: String,
    pub plan: PlanSettings,
}

/// Why a pass stopped before it had a plan.
#[derive(Debug, thiserror::Error)]
pub enum PassError {
    /// Nothing was sent to the cloud: the manifests did not load cleanly.
    #[error("the manifests have {} error(s); nothing was read or changed", count_errors(.0))]
    InvalidManifests(Vec<Diagnostic>),
    #[error("reading the live state")]
    Fetch(#[from] live::FetchError),
}

fn count_errors(d: &[Diagnostic]) -> usize {
    d.iter()
        .filter(|d| d.severity == manifest::Severity::Error)
        .count()
}

impl PassError {
    /// Short label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            PassError::InvalidManifests(_) => "invalid_manifests",
            PassError::Fetch(_) => "fetch",
        }
    }
}

/// A plan and everything it was made from.
#[derive(Debug, Clone)]
pub struct Planned {
    pub loaded: Loaded,
    pub live: Live,
    pub plan: Plan,
}

/// Load the manifests; `Err` when any of them has an error (warnings stay in `Loaded`).
pub fn load(opts: &PassOptions) -> Result<Loaded, PassError> {
    let loaded = load_all(opts);
    if loaded.has_errors() {
        return Err(PassError::InvalidManifests(loaded.diagnostics));
    }
    Ok(loaded)
}

/// Load the manifests and keep everything the loader saw, errors included: the daemon still
/// needs the files of an invalid set (to watch them) and its digest (to report it).
/// Callers must check [`Loaded::has_errors`] before sending anything to the cloud.
pub fn load_all(opts: &PassOptions) -> Loaded {
    let started = Instant::now();
    let loaded = manifest::load(
        &opts.paths,
        &LoadOptions {
            default_region: opts.default_region.clone(),
        },
    );
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        documents = loaded.desired.policies.len()
            + loaded.desired.roles.len()
            + loaded.desired.projects.len(),
        "manifests loaded"
    );
    loaded
}

/// The scope of live reads for these manifests.
pub fn scope(loaded: &Loaded, opts: &PassOptions) -> Scope {
    Scope::from_desired(&loaded.desired, &opts.plan.owner, &opts.default_region)
}

/// Load, read live, plan, lint. Sends only reads.
pub async fn plan(client: &Client, opts: &PassOptions) -> Result<Planned, PassError> {
    let loaded = load(opts)?;
    plan_loaded(client, loaded, opts).await
}

/// [`plan`] for manifests already loaded (and checked) by the caller.
pub async fn plan_loaded(
    client: &Client,
    loaded: Loaded,
    opts: &PassOptions,
) -> Result<Planned, PassError> {
    let started = Instant::now();
    let live = live::fetch(client, &scope(&loaded, opts)).await?;
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        roles = live.roles.len(),
        policies = live.policies.len(),
        projects = live.projects.len(),
        "live state read"
    );
    let started = Instant::now();
    let plan = plan_for(&loaded, &live, &opts.plan);
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        changes = plan.changes.len(),
        "planned"
    );
    Ok(Planned { loaded, live, plan })
}

/// The pure part: diff plus the lints, with every finding in one list.
pub fn plan_for(loaded: &Loaded, live: &Live, settings: &PlanSettings) -> Plan {
    let mut plan = plan::diff(&loaded.desired, live, settings);
    let mut extra: Vec<Finding> = manifest_warnings(&loaded.diagnostics);
    extra.extend(crate::lint::lint_desired(&loaded.desired, Some(live)));
    extra.extend(crate::lint::lint_plan(&plan, &loaded.desired, live));
    merge_findings(&mut plan.findings, extra);
    plan
}

/// Manifest warnings (errors never reach a plan) as plan findings, so every format shows them.
fn manifest_warnings(diags: &[Diagnostic]) -> Vec<Finding> {
    diags
        .iter()
        .filter(|d| d.severity == manifest::Severity::Warning)
        .map(|d| Finding {
            code: d.code.clone(),
            severity: plan::Severity::Warning,
            address: d
                .address
                .clone()
                .unwrap_or_else(|| manifest::Address(String::from("manifests"))),
            message: match &d.source {
                Some(s) => format!("{s}: {}", d.message),
                None => d.message.clone(),
            },
            fix: None,
        })
        .collect()
}

/// Add `extra` to `findings`, dropping exact duplicates, in a stable order (severity, address,
/// code) so renderings are deterministic.
fn merge_findings(findings: &mut Vec<Finding>, extra: Vec<Finding>) {
    for f in extra {
        if !findings.contains(&f) {
            findings.push(f);
        }
    }
    findings.sort_by(|a, b| {
        (a.severity, &a.address, &a.code, &a.message)
            .cmp(&(b.severity, &b.address, &b.code, &b.message))
    });
}

/// Apply `plan` through the cloud. The caller has already refused plans with blocking findings.
pub async fn execute(
    client: &Client,
    plan: &Plan,
    opts: &ExecuteOptions,
    events: &mut impl FnMut(Event),
) -> ApplyReport {
    let runner = CloudOpRunner::new(client.clone());
    apply::execute(plan, &runner, opts, events).await
}
