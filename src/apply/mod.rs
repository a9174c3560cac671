//! Apply: turn a [`crate::plan::Plan`] into the cloud state it promises.
//!
//! - [`execute`] walks the plan in its order through an [`OpRunner`], runs independent
//!   changes concurrently, retries only what can succeed later, confirms "already done"
//!   answers by a read, skips the dependents of a failure and reports the root cause, and stops
//!   cleanly on cancellation. It emits [`Event`]s as it goes.
//! - [`CloudOpRunner`] is the real [`OpRunner`]: one RAM / IMM call per op, the read-backs
//!   of `confirm`, failures classified with the table in `error.rs`.
//! - [`check_stale`] refuses a saved plan when the manifests or a touched resource changed.
//!
//! The executor makes no decisions of its own: *what* to do is in each `Change`'s ops; only
//! *when* (order, concurrency, retries) is decided here. It must not plan, fetch, or skip a
//! change the plan asks for (except the prune guard in `guard.rs`, a planner-bug backstop).
//! Start reading at `executor.rs`; `error.rs` holds the answer classification table.

mod cloud;
mod error;
mod executor;
mod guard;
mod runner;
mod stale;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

pub use cloud::CloudOpRunner;
pub use error::{
    OpError, OpErrorKind, SERVICE_ROLE_RULE, classify, explain, is_permission_code, is_transient,
    op_name,
};
pub use executor::{
    ApplyReport, ChangeOutcome, ChangeStatus, Event, ExecuteOptions, RootFailure, execute,
};
pub use guard::{PRUNE_REASON, check_change as check_prune_guard, deleted_resource};
pub use runner::{OpOutcome, OpRunner};
pub use stale::{
    Edited, FileChange, StaleResource, changed_files, changed_reads, check_replanned, check_stale,
};
