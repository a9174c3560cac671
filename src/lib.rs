//! immctl: Alibaba Cloud RAM roles, RAM policies and IMM projects kept in git.
//!
//! Map of the crate (read in this order):
//!
//! - [`manifest`]: YAML manifests -> [`manifest::Desired`], with `file:line:column` on every
//!   finding; validation against the RAM / IMM rules; `ImmServiceRole` expansion.
//! - [`policy`]: RAM policy documents: canonical form (what "equal" means), the evaluator
//!   (shared by the emulator and the linter) and the IMM least-privilege lints.
//! - [`cloud`]: the way into RAM / IMM / STS: signer (pure), wire types, error envelope,
//!   client with retries and per-action rate limits, credential chain.
//! - [`live`]: cloud -> [`live::Live`] (data only; the fetch is the only async part).
//! - [`plan`]: pure `diff(&Desired, &Live, &PlanSettings) -> Plan`, ordering and invariant checks.
//! - [`render`]: `Plan` -> text / JSON / Markdown. Never fetches anything.
//! - [`apply`]: executor walking a `Plan` in order; emits events. Makes no decisions.
//! - [`daemon`]: `immctl run`: tick loop, shutdown, health / readiness / metrics / status.
//! - [`emulator`]: the fake cloud used by every test and by `--emulator`. Of our modules it
//!   uses only `cloud::signer`, `cloud` wire types and `policy`.
//! - [`settings`]: defaults < config file < `IMMCTL_*` environment < flags.
//! - [`cli`]: one file per subcommand; the only place that turns errors into exit codes.
//!
//! Dependency direction is the architecture: `manifest`, `policy`, `plan` and `render` use no
//! tokio or reqwest, so planning stays pure and testable.

pub mod apply;
pub mod cli;
pub mod cloud;
pub mod daemon;
pub mod emulator;
pub mod live;
pub mod manifest;
pub mod plan;
pub mod reconcile;
pub mod policy;
pub mod render;
pub mod settings;
