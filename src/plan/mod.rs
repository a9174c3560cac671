//! Planning: a pure `diff(&Desired, &Live, &PlanSettings) -> Plan`, the apply order, and the
//! invariant checks every test runs on every plan.
//!
//! No I/O, no clock, no randomness, no environment: the same inputs give the same plan.

pub mod model;

pub use model::*;
