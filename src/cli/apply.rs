//! `immctl apply PLAN.json [PATH...]`: apply a plan saved by `reconcile --out`, refusing it
//! when the manifests or the live state of any resource it touches changed since, and when
//! the file is not what planning again with its recorded flags gives (edited by hand).

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use super::reconcile::report_pass_error;
use super::{GlobalArgs, common};
use crate::apply::{StaleResource, changed_reads, check_replanned, check_stale};
use crate::live;
use crate::plan::{FORMAT_VERSION, Plan, live_fingerprints};
use crate::reconcile::{self, PassOptions};

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The plan saved by `immctl reconcile --out PLAN.json`.
    #[arg(value_name = "PLAN.json")]
    pub plan: PathBuf,
    /// The manifests the plan was made from (default: manifests/); their digest must match.
    pub paths: Vec<PathBuf>,
    /// Run against the embedded emulator (state in .immctl/emulator-state.json).
    #[arg(long)]
    pub emulator: bool,
    /// Apply even when the plan has error findings.
    #[arg(long)]
    pub force: bool,
}

pub fn run(global: &GlobalArgs, args: ApplyArgs) -> i32 {
    super::block_on(async {
        apply(global, args).await?;
        Ok(super::EXIT_OK)
    })
}

/// Read and check a saved plan file.
fn read_plan(path: &PathBuf) -> anyhow::Result<Plan> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        let hint = if e.is_eof() {
            " (the file ends too early: cut short while being written or copied?)"
        } else {
            ""
        };
        anyhow::anyhow!(
            "{}: not valid JSON: {e}{hint}; save a plan with `immctl reconcile --out`",
            path.display()
        )
    })?;
    match value.get("format_version") {
        Some(v) if v.as_u64() == Some(u64::from(FORMAT_VERSION)) => {}
        Some(v) => anyhow::bail!(
            "{}: plan format_version {v}, this immctl reads {FORMAT_VERSION}; re-plan with this version",
            path.display()
        ),
        None => anyhow::bail!(
            "{}: not an immctl plan (no format_version); save one with `immctl reconcile --out`",
            path.display()
        ),
    }
    let plan: Plan = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a valid immctl plan", path.display()))?;
    crate::plan::check(&plan).map_err(|e| {
        anyhow::anyhow!(
            "{}: the plan is inconsistent: {}; save a plan with `immctl reconcile --out`",
            path.display(),
            e.join("; ")
        )
    })?;
    Ok(plan)
}

/// Print each reason a saved plan is stale; the error that refuses it.
fn refuse_stale(plan_file: &std::path::Path, stale: &[StaleResource]) -> anyhow::Error {
    for s in stale {
        say!("error: stale plan: {s}");
    }
    anyhow::anyhow!(
        "{}: refused: {} thing(s) changed since the plan was made; nothing was applied. Re-plan with `immctl reconcile --out`",
        plan_file.display(),
        stale.len()
    )
}

async fn apply(global: &GlobalArgs, args: ApplyArgs) -> anyhow::Result<()> {
    let plan = read_plan(&args.plan)?;
    let settings = common::resolve_settings(global, |_| {})?;
    super::logging::init(settings.log_format, settings.verbosity);
    if plan.owner() != settings.owner {
        anyhow::bail!(
            "{}: the plan was made for owner {:?}, these settings say {:?}; nothing was applied",
            args.plan.display(),
            plan.owner(),
            settings.owner
        );
    }
    // `reconcile` records both in every plan it saves; without them the account and region
    // checks could not run (a create-only plan would pass in any account).
    let missing = |field: &str| {
        anyhow::anyhow!(
            "{}: the plan records no {field} (edited, or saved by an older immctl), so it \
             cannot be checked against this account and region; nothing was applied. Re-plan \
             with `immctl reconcile --out`",
            args.plan.display()
        )
    };
    let planned_account = plan
        .account_id
        .as_deref()
        .ok_or_else(|| missing("account_id"))?;
    let planned_region = plan
        .default_region
        .as_deref()
        .ok_or_else(|| missing("default_region"))?;
    if planned_region != settings.region {
        anyhow::bail!(
            "{}: the plan was made with region {planned_region:?} (the region of projects that \
             name none), these settings say {:?}; nothing was applied",
            args.plan.display(),
            settings.region
        );
    }
    if crate::lint::blocks_apply(&plan.findings) && !args.force {
        for f in crate::lint::blocking(&plan.findings) {
            say!("error[{}] {}: {}", f.code, f.address, f.message);
        }
        anyhow::bail!(
            "{}: the saved plan has error findings (above); nothing was applied. Fix them, or \
             pass --force",
            args.plan.display()
        );
    }
    let opts = PassOptions {
        paths: args.paths.clone(),
        default_region: settings.region.clone(),
        plan: plan.settings.clone(),
    };
    let loaded = reconcile::load(&opts).map_err(report_pass_error)?;
    let cloud = common::connect(&settings, args.emulator).await?;
    let result = async {
        let live = live::fetch(&cloud.client, &reconcile::scope(&loaded, &opts))
            .await
            .context("reading the live state to check the plan is still current")?;
        if let Some(now) = &live.account_id
            && now != planned_account
        {
            anyhow::bail!(
                "{}: the plan was made for account {planned_account}, these credentials reach \
                 account {now}; nothing was applied. Check the credentials and endpoints, or \
                 plan again",
                args.plan.display()
            );
        }
        let fresh = live_fingerprints(&live);
        if let Err(stale) = check_stale(&plan, &fresh, &loaded.desired) {
            return Err(refuse_stale(&args.plan, &stale));
        }
        // Manifests and live state are as planned: planning again must give this very plan.
        let replanned = reconcile::plan_for(&loaded, &live, &plan.settings);
        if let Err(edited) = check_replanned(&plan, &replanned) {
            // A resource the plan only read moved: that, not a hand edit, is why planning
            // again differs. Name it as stale.
            let moved = changed_reads(&plan, &fresh);
            if !moved.is_empty() {
                return Err(refuse_stale(&args.plan, &moved));
            }
            for e in &edited {
                say!("error: edited plan: {e}");
            }
            anyhow::bail!(
                "{}: refused: the file is not the plan these manifests and this live state give with its flags (edited by hand?); nothing was applied. Re-plan with `immctl reconcile --out`",
                args.plan.display()
            );
        }
        if plan.is_empty() {
            say!("No changes. Nothing to apply.");
            return Ok(());
        }
        common::preflight_or_refuse(&cloud.client, &plan, &loaded.desired, &live, args.force)
            .await?;
        let report = common::apply_plan(&cloud.client, &plan).await;
        common::finish_apply(&report)
    }
    .await;
    cloud.close().await;
    result
}
