//! `immctl reconcile`: plan, and (without `--dry-run`) apply.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, ValueEnum};

use super::{GlobalArgs, common};
use crate::manifest::{self, Address};
use crate::plan::PlanSettings;
use crate::reconcile::{self, PassError, PassOptions};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Format {
    #[default]
    Text,
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub struct ReconcileArgs {
    /// Manifest files or directories (default: manifests/).
    pub paths: Vec<PathBuf>,
    /// Plan only; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Save the plan as JSON (for `immctl apply PLAN.json`).
    #[arg(long, value_name = "PLAN.json")]
    pub out: Option<PathBuf>,
    /// Plan rendering.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit 2 when the plan has changes (0 when none, 1 on error).
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Delete owned resources that are no longer in the manifests.
    #[arg(long)]
    pub prune: bool,
    /// Take over declared resources that exist without our owner tag.
    #[arg(long)]
    pub adopt: bool,
    /// Limit the plan to these addresses (and what they depend on).
    #[arg(long, value_name = "ADDR")]
    pub target: Vec<String>,
    /// Prune refuses to delete more than this many resources.
    #[arg(long)]
    pub max_deletions: Option<usize>,
    /// Allow prune past --max-deletions.
    #[arg(long)]
    pub allow_mass_delete: bool,
    /// Run against an embedded emulator (state in .immctl/emulator-state.json).
    #[arg(long)]
    pub emulator: bool,
    /// Apply even when lint errors would block it.
    #[arg(long)]
    pub force: bool,
}

pub fn run(global: &GlobalArgs, args: ReconcileArgs) -> i32 {
    super::block_on(reconcile(global, args))
}

async fn reconcile(global: &GlobalArgs, args: ReconcileArgs) -> anyhow::Result<i32> {
    let settings = common::resolve_settings(global, |input| {
        if args.prune {
            input.prune = Some(true);
        }
        if let Some(n) = args.max_deletions {
            input.max_deletions = Some(n.to_string());
        }
        if args.allow_mass_delete {
            input.allow_mass_delete = Some(true);
        }
    })?;
    super::logging::init(settings.log_format, settings.verbosity);
    let targets = parse_targets(&args.target)?;
    if let Some(out) = &args.out {
        common::check_plan_out(out)?;
    }
    let opts = PassOptions {
        paths: args.paths.clone(),
        default_region: settings.region.clone(),
        plan: PlanSettings {
            owner: settings.owner.clone(),
            adopt: args.adopt,
            prune: settings.daemon.prune,
            max_deletions: settings.daemon.max_deletions as usize,
            allow_mass_delete: settings.daemon.allow_mass_delete,
            targets,
        },
    };
    // Manifests first: nothing is sent to the cloud when any of them is invalid.
    let loaded = reconcile::load(&opts).map_err(report_pass_error)?;
    let cloud = common::connect(&settings, args.emulator).await?;
    let result = plan_and_apply(&cloud, loaded, &opts, &args).await;
    common::log_api_calls(&cloud.client);
    cloud.close().await;
    result
}

async fn plan_and_apply(
    cloud: &common::Cloud,
    loaded: crate::manifest::Loaded,
    opts: &PassOptions,
    args: &ReconcileArgs,
) -> anyhow::Result<i32> {
    let mut planned = reconcile::plan_loaded(&cloud.client, loaded, opts)
        .await
        .map_err(report_pass_error)?;
    // Recorded for `immctl apply` (another region or account there is refused as such); the JSON on
    // stdout is the same plan as the file `--out` saves.
    planned.plan.default_region = Some(opts.default_region.clone());
    planned.plan.account_id = planned.live.account_id.clone();
    let plan = &planned.plan;
    check_targets_exist(&opts.plan.targets, &planned.loaded.desired, plan)?;
    if let Err(e) = common::print_plan(plan, args.format) {
        // `immctl reconcile --dry-run | head`: the reader has what it wanted; a dry run goes
        // on (saves --out, exits with its code) without a "Broken pipe" error, as git and
        // ripgrep do. An apply still stops: nothing is applied that could not be shown.
        let broken_pipe = e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        });
        if !(args.dry_run && broken_pipe) {
            return Err(e);
        }
    }
    if let Some(out) = &args.out {
        common::save_plan(plan, out)?;
        say!("immctl: plan saved to {}", out.display());
    }
    let changes = !plan.is_empty();
    if args.dry_run {
        return Ok(exit_for(changes, args.detailed_exitcode));
    }
    // Checked before "no changes": a refused prune (P004 empty manifest set, P005 more than
    // --max-deletions) drops the deletions from the plan, so the plan can be empty and still
    // have been refused. That is a failure to do what was asked, as in `immctl apply` and the
    // daemon (a `blocked` tick), not a success.
    if crate::lint::blocks_apply(&plan.findings) && !args.force {
        anyhow::bail!(
            "the plan has error findings (above); nothing was applied. Fix them, or pass --force to apply anyway"
        );
    }
    if !changes {
        return Ok(exit_for(changes, args.detailed_exitcode));
    }
    let started = Instant::now();
    common::preflight_or_refuse(
        &cloud.client,
        plan,
        &planned.loaded.desired,
        &planned.live,
        args.force,
    )
    .await?;
    tracing::debug!(seconds = started.elapsed().as_secs_f64(), "preflight done");
    let started = Instant::now();
    let report = common::apply_plan(&cloud.client, plan).await;
    tracing::debug!(
        seconds = started.elapsed().as_secs_f64(),
        done = report.done(),
        "applied"
    );
    common::finish_apply(&report)?;
    Ok(exit_for(changes, args.detailed_exitcode))
}

fn exit_for(changes: bool, detailed: bool) -> i32 {
    if changes && detailed {
        super::EXIT_CHANGES
    } else {
        super::EXIT_OK
    }
}

/// `--target` values must be resource addresses.
fn parse_targets(raw: &[String]) -> anyhow::Result<Vec<Address>> {
    raw.iter()
        .map(|t| {
            let ok = [
                "ram_policy.",
                "ram_role.",
                "ram_role_policy.",
                "imm_project.",
            ]
            .iter()
            .any(|p| t.starts_with(p) && t.len() > p.len());
            if ok {
                Ok(Address(t.clone()))
            } else {
                Err(anyhow::anyhow!(
                    "--target {t:?}: not a resource address (ram_policy.<name>, ram_role.<name>, \
                     ram_role_policy.<role>/<Type>/<policy>, imm_project.<region>/<name>)"
                ))
            }
        })
        .collect()
}

/// A `--target` that names neither a declared nor a live resource selects nothing, and the
/// plan then read "No changes. The live state matches the manifests." although it may not:
/// a typo must be an error, not a reassuring empty plan.
fn check_targets_exist(
    targets: &[Address],
    desired: &manifest::Desired,
    plan: &crate::plan::Plan,
) -> anyhow::Result<()> {
    let mut known: std::collections::BTreeSet<String> = plan
        .live_fingerprints
        .keys()
        .map(|a| a.as_str().to_string())
        .collect();
    for role in desired.roles.values() {
        known.insert(Address::role(&role.name).as_str().to_string());
        for p in &role.policies {
            known.insert(Address::attachment(&role.name, p).as_str().to_string());
        }
    }
    for policy in desired.policies.values() {
        known.insert(Address::policy(&policy.name).as_str().to_string());
    }
    for key in desired.projects.keys() {
        known.insert(Address::project(key).as_str().to_string());
    }
    let unknown: Vec<&str> = targets
        .iter()
        .map(Address::as_str)
        .filter(|t| !known.contains(*t))
        .collect();
    if unknown.is_empty() {
        return Ok(());
    }
    let kind = |t: &str| t.split('.').next().unwrap_or_default().to_string() + ".";
    let hints: Vec<String> = unknown
        .iter()
        .map(|t| {
            let same_kind: Vec<&str> = known
                .iter()
                .map(String::as_str)
                .filter(|k| k.starts_with(&kind(t)))
                .take(5)
                .collect();
            if same_kind.is_empty() {
                format!("--target {t:?}: no declared or live resource has this address")
            } else {
                format!(
                    "--target {t:?}: no declared or live resource has this address (some that do: {})",
                    same_kind.join(", ")
                )
            }
        })
        .collect();
    anyhow::bail!("{}; nothing was planned", hints.join("\n"))
}

/// Invalid manifests are printed with their positions; other errors keep their chain.
pub(super) fn report_pass_error(e: PassError) -> anyhow::Error {
    if let PassError::InvalidManifests(diags) = &e {
        let _ = manifest::render_diagnostics(diags, &mut std::io::stderr());
    }
    anyhow::Error::new(e)
}
