//! RAM policy documents: the document type and its canonical form (what "equal" means for
//! the diff), the evaluator (Allow / Deny with wildcards and conditions; shared by the
//! emulator's authorization and by the linter), the policy grammar checked offline, and the
//! IMM service-role minimum.
//!
//! Pure code: no I/O, no clock, no tokio.

pub mod document;
pub mod eval;
pub mod grammar;
pub mod imm;

pub use document::PolicyDocument;
