//! `immctl apply`.

use clap::Args;

use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct ApplyArgs {}

pub fn run(_global: &GlobalArgs, _args: ApplyArgs) -> i32 {
    eprintln!("error: `immctl apply` is not built yet");
    super::EXIT_ERROR
}
