//! Planning: a pure `diff(&Desired, &Live, &PlanSettings) -> Plan`, the apply order, and the
//! invariant checks every test runs on every plan.
//!
//! No I/O, no clock, no randomness, no environment: the same inputs give the same plan.
//!
//! - [`diff`]: the planner (start here; its module docs state every rule).
//! - `order`: apply order (topological, ties by phase then address).
//! - [`check`]: invariants of a plan (tests run it on every plan they build).
//! - [`fingerprint`]: hashes of live resources for staleness checks.
//! - [`simulate`]: a pure model of what each `Op` does to `Live` (for tests).
//! - [`testing`]: small fixture builders with fixed names.

pub mod check;
pub mod diff;
pub mod fingerprint;
pub mod model;
mod order;
pub mod simulate;
pub mod testing;

pub use check::check;
pub use diff::diff;
pub use fingerprint::{LiveResource, fingerprint, live_fingerprints};
pub use model::*;
pub use simulate::{SimulateError, simulate, simulate_strict};
