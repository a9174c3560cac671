//! The plan: pure data. Rendered by `render`, executed by `apply`, saved as JSON by
//! `reconcile --out`. The executor makes no decisions: each [`Change`] lists the exact API
//! operations ([`Op`]) that carry it out, in order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::manifest::{Address, PolicyRef, ProjectKey, ProjectLimits, Tags};

/// Bumped whenever a consumer of the JSON form would break.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    pub format_version: u32,
    /// The `immctl-owner` tag value this plan was made for.
    pub owner: String,
    /// In apply order: parents created first, children deleted first.
    pub changes: Vec<Change>,
    /// Lints and notes (unowned resource not adopted, protected resource, prune refused ...).
    pub findings: Vec<Finding>,
    /// Digest of the manifests this plan was made from (see `Desired::digest`).
    pub manifest_digest: String,
    /// Fingerprint of every live resource read for this plan, by address (absent = did not exist).
    pub live_fingerprints: BTreeMap<Address, String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    /// Only the owner tag is added to an existing resource (with `--adopt` / `spec.adopt`);
    /// other updates of an adopted resource are separate `Update`s.
    Adopt,
    Delete,
}

/// One resource's change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub address: Address,
    pub action: Action,
    /// Why: one entry per differing field (or `missing`, `prune`, ...).
    pub reasons: Vec<Reason>,
    /// The resource as live now (display form; `None` when it does not exist).
    pub before: Option<serde_json::Value>,
    /// The resource as it will be (`None` for a delete).
    pub after: Option<serde_json::Value>,
    /// Fingerprint of the live resource this change was planned against.
    pub live_fingerprint: Option<String>,
    /// Addresses whose changes must succeed before this one runs.
    pub depends_on: Vec<Address>,
    /// The exact API operations, in order.
    pub ops: Vec<Op>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// Stable machine code, e.g. `missing`, `trust_policy`, `description`, `prune`.
    pub code: String,
    /// One line for humans.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

/// A lint or planner finding. `Error` findings block apply unless forced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable code, e.g. `IMM001`.
    pub code: String,
    pub severity: Severity,
    pub address: Address,
    pub message: String,
    /// One line: how to fix it.
    pub fix: Option<String>,
}

/// RAM tag resource type (`role` / `policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TagResourceType {
    Role,
    Policy,
}

/// One API operation. Documents are carried as compact canonical JSON text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op")]
pub enum Op {
    CreatePolicy {
        name: String,
        description: Option<String>,
        document: String,
        tags: Tags,
    },
    /// Deletes a non-default version (rotation at the 5-version limit, or before DeletePolicy).
    DeletePolicyVersion {
        name: String,
        version_id: String,
    },
    /// Always `SetAsDefault=true`.
    CreatePolicyVersion {
        name: String,
        document: String,
    },
    UpdatePolicyDescription {
        name: String,
        description: String,
    },
    DeletePolicy {
        name: String,
    },
    CreateRole {
        name: String,
        description: Option<String>,
        max_session_duration: u32,
        trust_policy: String,
        tags: Tags,
    },
    /// Only the `Some` fields change.
    UpdateRole {
        name: String,
        trust_policy: Option<String>,
        description: Option<String>,
        max_session_duration: Option<u32>,
    },
    DeleteRole {
        name: String,
    },
    AttachPolicyToRole {
        role: String,
        policy: PolicyRef,
    },
    DetachPolicyFromRole {
        role: String,
        policy: PolicyRef,
    },
    /// Upsert tags on a role or policy.
    TagResources {
        resource_type: TagResourceType,
        name: String,
        tags: Tags,
    },
    UntagResources {
        resource_type: TagResourceType,
        name: String,
        keys: Vec<String>,
    },
    CreateProject {
        key: ProjectKey,
        service_role: String,
        description: Option<String>,
        template_id: Option<String>,
        limits: ProjectLimits,
        tags: Tags,
    },
    /// Partial update: only `Some` fields and non-`None` limits are sent. `tags`, when set,
    /// is the full tag set (IMM's `Tag` replaces).
    UpdateProject {
        key: ProjectKey,
        service_role: Option<String>,
        description: Option<String>,
        template_id: Option<String>,
        limits: ProjectLimits,
        tags: Option<Tags>,
    },
    DeleteProject {
        key: ProjectKey,
    },
}
