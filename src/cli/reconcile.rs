//! `immctl reconcile`.

use clap::Args;

use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct ReconcileArgs {}

pub fn run(_global: &GlobalArgs, _args: ReconcileArgs) -> i32 {
    eprintln!("error: `immctl reconcile` is not built yet");
    super::EXIT_ERROR
}
