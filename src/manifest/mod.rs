//! Manifests: YAML text -> [`Desired`] (parse keeps `file:line:column` for every finding),
//! validation against the RAM / IMM rules, and `ImmServiceRole` expansion.
//!
//! Start at [`load`]: discovery and reading (`load.rs`), then `parse.rs` (text -> typed
//! documents, serde errors with positions), `validate.rs` (the rules, every finding code),
//! `expand.rs` (`ImmServiceRole`), `render.rs` (desired resources back to manifest YAML, for
//! `validate --expand` and `import`). `positions.rs` maps a field path to where it was
//! written; `diagnostic.rs` is the finding type and its rustc-style rendering.
//!
//! No network, no tokio: the offline half of the product. It must never panic on any input.

pub mod diagnostic;
pub mod expand;
mod load;
pub mod model;
pub mod parse;
pub mod positions;
pub mod render;
pub mod validate;

pub use diagnostic::{Diagnostic, Severity, render_diagnostics, sort_diagnostics};
pub use load::{DEFAULT_PATH, LoadOptions, Loaded, MAX_FILE_BYTES, MAX_FILES, load};
pub use model::*;
