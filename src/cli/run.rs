//! `immctl run`.

use clap::Args;

use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct RunArgs {}

pub fn run(_global: &GlobalArgs, _args: RunArgs) -> i32 {
    eprintln!("error: `immctl run` is not built yet");
    super::EXIT_ERROR
}
