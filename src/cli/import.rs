//! `immctl import`.

use clap::Args;

use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct ImportArgs {}

pub fn run(_global: &GlobalArgs, _args: ImportArgs) -> i32 {
    eprintln!("error: `immctl import` is not built yet");
    super::EXIT_ERROR
}
