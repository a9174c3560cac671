//! Manifests: YAML text -> [`Desired`] (every finding keeps `file:line:column` and the
//! resource address), validation against the RAM / IMM rules, and `ImmServiceRole`
//! expansion.
//!
//! Where to start: [`load`] (the whole pipeline, described in `load.rs`). Then:
//! - `discover`: which files, read safely (size cap, UTF-8), the digest;
//! - `yaml`: text -> positioned node tree (the only YAML parser on the way in) and a serde
//!   deserializer over it;
//! - `schema`: the manifest format as Rust types;
//! - `validate`: names, lengths, ranges, tags; `policy::grammar` checks documents;
//! - `expand`: `ImmServiceRole` -> Role + Policy, and the `--expand` rendering;
//! - `diagnostic`: findings and their rendering; `codes`: every finding code.
//!
//! No network, no tokio, no environment: the offline half of the product.

pub mod codes;
pub mod diagnostic;
pub mod discover;
pub mod expand;
mod load;
pub mod model;
pub mod schema;
pub mod validate;
pub mod yaml;

pub use diagnostic::{Diagnostic, Severity, render_diagnostics, sort_diagnostics};
pub use load::{LoadOptions, Loaded, load};
pub use model::*;
