//! The IMM least-privilege lints: what a project's service role must and must not grant
//! (DESIGN.md §1), judged with the policy evaluator, never by matching strings.
//!
//! - [`lint_desired`]`(&Desired, Option<&Live>)`: the lints over the declared state. `None`
//!   is `immctl validate` (offline: System policies are known from
//!   [`crate::policy::system`]; a role or policy the manifests do not declare is "can't
//!   check", said as an `IMM009` finding, never a silent pass). `Some` is planning: live
//!   trust policies, live System documents and live attachments of undeclared (owned) roles
//!   are then known too.
//! - [`lint_plan`]`(&Plan, &Desired, &Live)`: what the plan would do to a role that a live
//!   project uses (simulated with [`crate::plan::simulate()`]).
//! - [`blocks_apply`]: any `Error` finding refuses apply unless forced.
//!
//! Pure: no tokio, no I/O, no clock. The preflight that reads the caller's own policies is
//! async and lives in [`crate::preflight`].
//!
//! # Codes
//!
//! | code | severity | address | what |
//! |---|---|---|---|
//! | `IMM001` | warning | project | uses `AliyunIMMDefaultRole` (broad OSS access) |
//! | `IMM002` | error | project | service role neither declared nor in the account (planning only) |
//! | `IMM003` | error | project | `AliyunIMMDefaultRole` was never authorized in this account (planning only) |
//! | `IMM004` | error | role | trust policy does not let `imm.aliyuncs.com` assume the role |
//! | `IMM005` | warning | project | service role lacks part of the minimum on the project's buckets (names what) |
//! | `IMM006` | warning | policy | grants minimum actions on one resource form only (bucket vs `bucket/*`) |
//! | `IMM007` | warning | policy | over-broad grant in a service role: `*` actions, `oss:*`, OSS on every bucket |
//! | `IMM008` | warning | policy | `ram:PassRole` without an `acs:Service` condition in a service role |
//! | `IMM009` | info | project / policy | can't check: a role or document immctl does not know |
//! | `IMM010` | info | project | no `spec.buckets`: the role's OSS access is not checked |
//! | `IMM011` | error | role | the plan deletes a role a live project uses |
//! | `IMM012` | error | project | the plan takes minimum permissions away from the service role of a live project (detach, narrower document, or a move to a weaker role) |
//! | `IMM013` | error | project | the plan changes the trust policy of a live project's service role so IMM can no longer assume it |
//! | `IMM014` | error | project | the plan sets a project's service role, but leaves that role short of what its manifest declares (not adopted, another owner's, or outside `--target`), so after apply the project runs on a role that lacks the IMM minimum or does not exist |
//!
//! Severities: a state in which IMM cannot work at all (cannot assume the role, the role does
//! not exist) and a plan that *breaks* a working project are errors; a declared role that lacks
//! part of the minimum is a warning (IMM fails only the features that need it, and a
//! deliberately read-only role is a choice); too much access is a warning (the default role
//! is the documented setup). `immctl validate --strict` turns warnings into failures.
//!
//! # Which findings live here and which stay in `plan::diff`
//!
//! One owner per code, so no finding is reported twice:
//! - `plan::diff` keeps the `P*` codes: they explain what the *planner* decided (left an
//!   unowned resource alone, refused to prune, refused a protected role, cannot attach an
//!   unknown policy). They exist only because a plan was made, and their wording describes
//!   the plan.
//! - This module owns every `IMM*` code, including `IMM001`–`IMM003`, which used to be
//!   emitted by `diff`: they judge the declared service-role setup, so `validate` must show
//!   them offline (`IMM001`) and they need the same role resolution as the other IMM lints.
//!   `IMM002` / `IMM003` need the account's role list, so they appear only when planning.
//!
//! # What the checks assume
//!
//! - The minimum is [`crate::policy::imm`], asked per bucket and per resource form: each
//!   bucket-level action on `acs:oss:*:*:<bucket>`, each object-level action on
//!   `acs:oss:*:*:<bucket>/*`, `mns:*` on `acs:mns:*:*:*`, `ram:PassRole` with
//!   `acs:Service=imm.aliyuncs.com`. Action and resource patterns are asked as literal text
//!   ([`crate::policy::eval::uncovered`]'s rule), so a grant must cover the whole pattern:
//!   `oss:GetObject` alone does not cover the minimum's `oss:Get*`, `<bucket>/photos/*` does not
//!   cover `<bucket>/*`, and a region- or account-specific OSS ARN does not cover `*:*`.
//! - IMM's request context is unknown offline: a grant that holds only under an `Allow`
//!   statement's conditions is reported as "can't check" (`IMM009`), not as missing.
//! - `IMM012` compares each minimum permission before and after the simulated plan, on the
//!   buckets the declared project lists plus those named in the role's OSS resources before
//!   the plan (a live project not in the manifests has no declared buckets). Detaching or
//!   rewriting a policy that takes nothing away from the minimum is fine.

mod checks;
mod plan_lint;
mod view;

#[cfg(test)]
mod tests;

use crate::live::Live;
use crate::manifest::{Address, Desired};
use crate::plan::{Finding, Severity};

pub use plan_lint::lint_plan;
pub(crate) use view::{RoleLookup, Sources};

/// The lint codes (see the module docs' table).
pub mod codes {
    pub const DEFAULT_ROLE: &str = "IMM001";
    pub const UNKNOWN_ROLE: &str = "IMM002";
    pub const DEFAULT_ROLE_MISSING: &str = "IMM003";
    pub const UNTRUSTED: &str = "IMM004";
    pub const BELOW_MINIMUM: &str = "IMM005";
    pub const ONE_FORM: &str = "IMM006";
    pub const OVER_BROAD: &str = "IMM007";
    pub const PASS_ROLE_UNCONDITIONED: &str = "IMM008";
    pub const CANNOT_CHECK: &str = "IMM009";
    pub const NO_BUCKETS: &str = "IMM010";
    pub const PLAN_DELETES_ROLE_IN_USE: &str = "IMM011";
    pub const PLAN_DROPS_MINIMUM: &str = "IMM012";
    pub const PLAN_BREAKS_TRUST: &str = "IMM013";
    pub const PLAN_SETS_UNREADY_ROLE: &str = "IMM014";
}

/// The lints over the declared state; `live: None` is offline (`immctl validate`).
/// Deterministic: sorted by address, then code, then message.
pub fn lint_desired(desired: &Desired, live: Option<&Live>) -> Vec<Finding> {
    let mut out = checks::lint_desired(desired, live);
    sort_dedup(&mut out);
    out
}

/// True when any finding is an error: apply refuses such a plan unless forced.
pub fn blocks_apply(findings: &[Finding]) -> bool {
    blocking(findings).next().is_some()
}

/// The findings that block the apply (severity `error`).
pub fn blocking(findings: &[Finding]) -> impl Iterator<Item = &Finding> {
    findings.iter().filter(|f| f.severity == Severity::Error)
}

/// How many findings block the apply; what renderers announce.
pub fn blocking_count(findings: &[Finding]) -> usize {
    blocking(findings).count()
}

pub(crate) fn finding(
    code: &str,
    severity: Severity,
    address: Address,
    message: String,
    fix: &str,
) -> Finding {
    Finding {
        code: code.to_string(),
        severity,
        address,
        message,
        fix: Some(fix.to_string()),
    }
}

pub(crate) fn sort_dedup(findings: &mut Vec<Finding>) {
    findings
        .sort_by(|a, b| (&a.address, &a.code, &a.message).cmp(&(&b.address, &b.code, &b.message)));
    findings.dedup();
}

/// `"a", "b" and "c"` style list of quoted names.
pub(crate) fn quoted_list<S: AsRef<str>>(items: &[S]) -> String {
    let q: Vec<String> = items
        .iter()
        .map(|s| format!("\"{}\"", s.as_ref()))
        .collect();
    match q.len() {
        0 => String::new(),
        1 => q[0].clone(),
        n => format!("{} and {}", q[..n - 1].join(", "), q[n - 1]),
    }
}
