//! Manifests: YAML text -> [`Desired`] (parse keeps `file:line:column` for every finding),
//! validation against the RAM / IMM rules, and `ImmServiceRole` expansion.
//!
//! No network, no tokio: the offline half of the product.

pub mod model;

pub use model::*;
