//! RAM policy documents: the document type and its canonical form (what "equal" means for
//! the diff), the evaluator (Allow / Deny with wildcards and conditions; shared by the
//! emulator's authorization and by the linter), and the IMM least-privilege lints.
//!
//! Pure code: no I/O, no clock, no tokio.

pub mod document;
pub mod eval;
pub mod imm;

pub use document::PolicyDocument;
