//! RAM policy documents: the document type and its canonical form (what "equal" means for
//! the diff), the evaluator (Allow / Deny with wildcards and conditions; shared by the
//! emulator's authorization and by the linter), the IMM service-role minimum, and the
//! catalogue of System policy documents (shared by the emulator and the offline lints).
//!
//! Pure code: no I/O, no clock, no tokio.

pub mod document;
pub mod eval;
pub mod grammar;
pub mod imm;
pub mod system;

#[cfg(test)]
mod eval_cases;

pub use document::PolicyDocument;
