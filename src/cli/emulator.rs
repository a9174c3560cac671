//! `immctl emulator`.

use clap::Args;

use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct EmulatorArgs {}

pub fn run(_global: &GlobalArgs, _args: EmulatorArgs) -> i32 {
    eprintln!("error: `immctl emulator` is not built yet");
    super::EXIT_ERROR
}
