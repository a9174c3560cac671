//! immctl: Alibaba Cloud RAM roles, RAM policies and IMM projects kept in git.
//!
//! Map of the crate (read in this order):
//!
//! - [`manifest`]: YAML manifests -> [`manifest::Desired`], with `file:line:column` on every
//!   finding; validation against the RAM / IMM rules; `ImmServiceRole` expansion.
//! - [`policy`]: RAM policy documents: canonical form (what "equal" means), the evaluator
//!   (shared by the emulator, the lints and preflight), the IMM minimum, the System catalogue.
//! - [`cloud`]: the way into RAM / IMM / STS: signer (pure), wire types, error envelope,
//!   client with retries and per-action rate limits, credential chain.
//! - [`live`]: cloud -> [`live::Live`] (data only; the fetch is the only async part).
//! - [`plan`]: pure `diff(&Desired, &Live, &PlanSettings) -> Plan`, ordering and invariant checks.
//! - [`lint`]: the IMM least-privilege lints over `Desired` (offline or with `Live`) and over a
//!   `Plan`; pure. [`preflight`]: before apply, does the caller hold what it will pass?
//! - [`render`]: `Plan` -> text / JSON / Markdown. Never fetches anything.
//! - [`apply`]: executor walking a `Plan` in order; emits events. Makes no decisions.
//! - [`daemon`]: `immctl run`: tick loop, shutdown, health / readiness / metrics / status.
//! - [`emulator`]: the fake cloud used by every test and by `--emulator`. Of our modules it
//!   uses only `cloud::signer`, `cloud` wire types and `policy`.
//! - [`import`]: `immctl import`: live resources -> manifest files (pure conversion, then
//!   `import::files` for names, hand-edit detection and atomic writes).
//! - [`settings`]: defaults < config file < `IMMCTL_*` environment < flags.
//! - [`cli`]: one file per subcommand; the only place that turns errors into exit codes.
//!
//! Dependency direction is the architecture: `manifest`, `policy`, `plan`, `lint` and `render` use no
//! tokio or reqwest, so planning stays pure and testable.

pub mod apply;
pub mod cli;
pub mod cloud;
pub mod daemon;
pub mod emulator;
pub mod import;
pub mod lint;
pub mod live;
pub mod manifest;
pub mod plan;
pub mod policy;
pub mod preflight;
pub mod reconcile;
pub mod render;
pub mod settings;
