//! `immctl reconcile`: plan, and (without `--dry-run`) apply.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use super::GlobalArgs;

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

pub fn run(_global: &GlobalArgs, _args: ReconcileArgs) -> i32 {
    eprintln!("error: `immctl reconcile` is not built yet");
    super::EXIT_ERROR
}
