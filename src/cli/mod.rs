//! The command line: clap argument structs, one file per subcommand, and the one place that
//! turns errors into exit codes (0 ok / no changes, 1 error, 2 changes with
//! `--detailed-exitcode`). Core code never sees clap types.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// `eprintln!` that never panics. `eprintln!` panics when stderr is gone (a closed pipe:
/// `immctl reconcile 2>&1 | head`, a log collector that went away), which in the middle of
/// an apply would abandon the changes in flight and exit 101. The messages are for a human;
/// when nobody can read them any more the command still finishes its work and its exit code
/// still tells the outcome.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod apply;
pub mod common;
pub mod emulator;
pub mod import;
pub mod logging;
pub mod reconcile;
pub mod run;
pub mod validate;

/// Exit code: success, or no changes.
pub const EXIT_OK: i32 = 0;
/// Exit code: error (bad input, API failure, partial apply, stale plan).
pub const EXIT_ERROR: i32 = 1;
/// Exit code with `--detailed-exitcode`: the plan has changes.
pub const EXIT_CHANGES: i32 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "immctl",
    version,
    about = "Alibaba Cloud RAM roles, policies and IMM projects, kept in git"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Settings common to all commands (see `settings.rs` for precedence).
#[derive(Debug, Args, Default, Clone)]
pub struct GlobalArgs {
    /// Settings file (YAML or TOML).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Default region for IMM projects.
    #[arg(long, global = true)]
    pub region: Option<String>,
    /// RAM API endpoint (`https://host[:port]`, `http://host[:port]` or `host[:port]`).
    #[arg(long, global = true)]
    pub endpoint_ram: Option<String>,
    /// IMM API endpoint (default `imm.<region>.aliyuncs.com`).
    #[arg(long, global = true)]
    pub endpoint_imm: Option<String>,
    /// STS API endpoint.
    #[arg(long, global = true)]
    pub endpoint_sts: Option<String>,
    /// Value of the `immctl-owner` tag on everything this repo manages.
    #[arg(long, global = true)]
    pub owner: Option<String>,
    /// `text` or `json`.
    #[arg(long, global = true)]
    pub log_format: Option<String>,
    /// More logging (-v, -vv).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Offline: schema, semantics, lints.
    Validate(validate::ValidateArgs),
    /// Plan (and, without --dry-run, apply) the manifests against the live state.
    Reconcile(reconcile::ReconcileArgs),
    /// Apply a saved plan; refuses if the manifests or the live state changed since.
    Apply(apply::ApplyArgs),
    /// The long-running reconcile loop with health and metrics endpoints.
    Run(run::RunArgs),
    /// Write manifests for live resources (brownfield adoption).
    Import(import::ImportArgs),
    /// Serve the RAM / IMM / STS emulator.
    Emulator(emulator::EmulatorArgs),
}

/// Parse the process arguments, run, and return the exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(&e),
    };
    match cli.command {
        Command::Validate(a) => validate::run(&cli.global, a),
        Command::Reconcile(a) => reconcile::run(&cli.global, a),
        Command::Apply(a) => apply::run(&cli.global, a),
        Command::Run(a) => run::run(&cli.global, a),
        Command::Import(a) => import::run(&cli.global, a),
        Command::Emulator(a) => emulator::run(&cli.global, a),
    }
}

/// Print clap's message and return the exit code: 0 for `--help` / `--version`, otherwise
/// [`EXIT_ERROR`]. clap's own default for a usage error is 2, which is what
/// `--detailed-exitcode` means by "the plan has changes": a mistyped flag in a CI job would
/// have read as a pending change instead of as a failure.
fn usage_error(e: &clap::Error) -> i32 {
    let _ = e.print();
    if e.use_stderr() { EXIT_ERROR } else { EXIT_OK }
}

/// Run an async command on a fresh runtime and turn its outcome into the exit code: its own
/// code, or [`EXIT_ERROR`] with the error chain printed.
pub fn block_on(command: impl std::future::Future<Output = anyhow::Result<i32>>) -> i32 {
    let rt = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            report_error(&anyhow::Error::new(e).context("starting the async runtime"));
            return EXIT_ERROR;
        }
    };
    match rt.block_on(command) {
        Ok(code) => code,
        Err(e) => {
            report_error(&e);
            EXIT_ERROR
        }
    }
}

/// Print an error chain the way cargo does: `error: …` then `Caused by:` lines.
pub fn report_error(err: &anyhow::Error) {
    let (head, causes) = error_lines(err);
    say!("error: {head}");
    if !causes.is_empty() {
        say!("\nCaused by:");
        for cause in causes {
            say!("  {cause}");
        }
    }
}

/// The error's message and the causes worth printing under it. Many errors already say
/// their source in their own message (`ListRoles ram_role.*: ListRoles: no credentials
/// found; …`, `cannot read settings file x: No such file or directory`), so a cause whose
/// text is already part of a line printed above is left out instead of repeating it; so is
/// one that only adds a prefix already there (`ListRoles: x` under `ListRoles ram_role.*: x`).
fn error_lines(err: &anyhow::Error) -> (String, Vec<String>) {
    let head = err.to_string();
    let mut shown = vec![head.clone()];
    let mut causes = Vec::new();
    for cause in err.chain().skip(1) {
        let text = cause.to_string();
        let said = |s: &String| {
            s.contains(text.as_str())
                || text
                    .split_once(": ")
                    .is_some_and(|(prefix, rest)| s.contains(prefix) && s.contains(rest))
        };
        if shown.iter().any(said) {
            continue;
        }
        shown.push(text.clone());
        causes.push(text);
    }
    (head, causes)
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap checks the whole command tree: no two options of a subcommand (its own and the
    /// global ones) share a name, every default parses, and so on.
    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }

    #[derive(Debug, thiserror::Error)]
    #[error("ListRoles: no credentials found; every source failed: env: not set")]
    struct Inner;

    #[derive(Debug, thiserror::Error)]
    #[error("ListRoles ram_role.*: {source}")]
    struct Outer {
        #[source]
        source: Inner,
    }

    /// A cause already quoted by the line above it is not printed again: the
    /// no-credentials error used to fill three lines with the same text.
    #[test]
    fn a_cause_already_in_the_message_above_is_not_repeated() {
        let err = anyhow::Error::new(Outer { source: Inner }).context("reading the live state");
        let (head, causes) = super::error_lines(&err);
        assert_eq!(head, "reading the live state");
        assert_eq!(
            causes,
            [
                "ListRoles ram_role.*: ListRoles: no credentials found; every source failed: env: not set"
            ]
        );
        // A cause that adds something is kept.
        let err =
            anyhow::Error::new(std::io::Error::other("disk full")).context("writing plan.json");
        let (_, causes) = super::error_lines(&err);
        assert_eq!(causes, ["disk full"]);
        // A cause that only adds a prefix the line above already has is not repeated.
        let err = anyhow::Error::new(std::io::Error::other("ListProjects: refused"))
            .context("ListProjects imm_project.x/*: refused");
        assert!(super::error_lines(&err).1.is_empty());
        // Nothing under a message that already says it all.
        let err = anyhow::Error::new(Outer { source: Inner });
        assert!(super::error_lines(&err).1.is_empty());
    }
}
