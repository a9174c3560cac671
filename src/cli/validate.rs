//! `immctl validate`.

use clap::Args;

use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct ValidateArgs {}

pub fn run(_global: &GlobalArgs, _args: ValidateArgs) -> i32 {
    eprintln!("error: `immctl validate` is not built yet");
    super::EXIT_ERROR
}
