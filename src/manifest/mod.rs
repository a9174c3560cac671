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
//! - `render`: desired resources back to manifest YAML (for `import`);
//! - `diagnostic`: findings and their rendering; `codes`: every finding code.
//!
//! No network, no tokio, no environment: the offline half of the product.

pub mod codes;
pub mod diagnostic;
pub mod discover;
pub mod expand;
mod load;
pub mod model;
pub mod render;
pub mod schema;
pub mod validate;
pub mod yaml;

pub use diagnostic::{Diagnostic, Severity, render_diagnostics, sort_diagnostics};
pub use discover::{DEFAULT_DIR as DEFAULT_PATH, MAX_FILE_BYTES, MAX_FILES};
pub use load::{LoadOptions, Loaded, load, load_texts};
pub use model::*;
