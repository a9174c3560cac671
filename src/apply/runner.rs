//! The seam between the executor and the cloud: one call per [`Op`], one read per confirm.
//!
//! The trait uses return-position `impl Future + Send` (stable since Rust 1.75) rather than
//! `async-trait` or boxed futures: implementors write plain `async fn`, nothing is boxed, and
//! the executor's future stays `Send` so the daemon can spawn it. The trait is therefore not
//! object-safe; the executor is generic over it.

use std::future::Future;

use super::OpError;
use crate::plan::Op;

/// What a successful operation returned that is worth reporting.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpOutcome {
    pub request_id: Option<String>,
}

/// Runs plan operations against a cloud (the real one via `CloudOpRunner`, a fake in tests).
///
/// A runner makes no decisions: it sends exactly the op, classifies a failure with
/// [`super::classify`] (through [`OpError::from_api`]), and does not retry beyond what its
/// client does. All retry and confirm policy is the executor's.
pub trait OpRunner: Send + Sync {
    /// Send `op` once.
    fn run(&self, op: &Op) -> impl Future<Output = Result<OpOutcome, OpError>> + Send;

    /// Read the live state and say whether `op`'s intended end state holds now:
    ///
    /// - attach: the attachment is listed (`ListPoliciesForRole`);
    /// - detach: it is not listed, or the role is gone;
    /// - delete role / policy / project: `GetRole` / `GetPolicy` / `GetProject` answers not found;
    /// - delete policy version: the version is not in `ListPolicyVersions` (or the policy is gone);
    /// - create / update project: `GetProject` shows the op's service role (and exists);
    /// - create role / policy, other updates: the resource exists.
    ///
    /// `Ok(false)` may be a stale read; the executor polls until `consistency_timeout`.
    fn confirm(&self, op: &Op) -> impl Future<Output = Result<bool, OpError>> + Send;

    /// For a create that answered "already exists": read the resource and say whether it is
    /// the one `op` makes: every tag of the op (our owner tag among them) with its value, and
    /// the planned content (a role's trust policy, description and session length; a
    /// policy's default document, semantically, and description; a project's service role).
    /// Also for a `CreatePolicyVersion` about to be retried after a transient failure: is the
    /// planned document the default version already (the failed attempt carried it out)?
    /// `Ok(false)` for any other op.
    fn created(&self, op: &Op) -> impl Future<Output = Result<bool, OpError>> + Send;
}
