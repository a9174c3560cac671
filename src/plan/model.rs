//! The plan: pure data. Rendered by `render`, executed by `apply`, saved as JSON by
//! `reconcile --out`. The executor makes no decisions: each [`Change`] lists the exact API
//! operations ([`Op`]) that carry it out, in order.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::manifest::{Address, PolicyRef, ProjectKey, ProjectLimits, Tags};

/// Bumped whenever a consumer of the JSON form would break.
pub const FORMAT_VERSION: u32 = 2;

/// Every struct of the saved form refuses unknown fields: `immctl apply` reads only plans of
/// its own `format_version`, so a field it does not know is an edit (or a plan from another
/// build), never something to skip silently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub format_version: u32,
    /// The flags it was planned with (`--adopt`, `--prune`, `--target` ..., and the
    /// `immctl-owner` tag value it was made for: [`Plan::owner`]). `immctl apply`
    /// plans again with them and refuses a file whose changes or findings differ from what
    /// the manifests and the live state produce (a plan edited by hand). Added in format 2.
    pub settings: PlanSettings,
    /// In apply order: parents created first, children deleted first.
    pub changes: Vec<Change>,
    /// Lints and notes (unowned resource not adopted, protected resource, prune refused ...).
    pub findings: Vec<Finding>,
    /// Digest of the manifests this plan was made from (see `Desired::digest`).
    pub manifest_digest: String,
    /// The per-file digests behind `manifest_digest` (see `Desired::file_digests`): a stale
    /// plan names the files added, removed or changed since.
    #[serde(default)]
    pub manifest_files: BTreeMap<String, String>,
    /// Fingerprint of every live resource read for this plan, by address (absent = did not exist).
    pub live_fingerprints: BTreeMap<Address, String>,
    /// For changes whose resource an `ImmServiceRole` expanded into: which manifest to edit.
    /// Display only; the executor never reads it. (Added without a `format_version` bump:
    /// older plans without it still load, and readers that ignore it lose nothing.)
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub expanded_from: BTreeMap<Address, ExpandedFrom>,
    /// The `region` setting (the region of projects that name none) of the run that saved
    /// this plan file, so `immctl apply` under another region is refused as such rather than
    /// as projects that "no longer exist". Set by `immctl reconcile` (so in saved plans and
    /// its JSON output); plans saved before it existed lack it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_region: Option<String>,
    /// The account (`AccountId`) whose live state the plan was made from. Set by `immctl
    /// reconcile`; `immctl apply` refuses the plan against another account, which fingerprints
    /// alone would not catch for a plan that only creates (what is absent here is absent
    /// there too). Plans saved before it existed lack it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
}

/// The manifest a generated resource comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpandedFrom {
    /// `ImmServiceRole`.
    pub kind: String,
    pub name: String,
    /// `file:line:column` of its `metadata.name`.
    pub source: String,
}

impl std::fmt::Display for ExpandedFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} at {}", self.kind, self.name, self.source)
    }
}

impl Plan {
    /// The `immctl-owner` tag value this plan was made for.
    pub fn owner(&self) -> &str {
        &self.settings.owner
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// Counts by action, for summary lines.
    pub fn summary(&self) -> Summary {
        let mut s = Summary::default();
        for c in &self.changes {
            match c.action {
                Action::Create => s.create += 1,
                Action::Update => s.update += 1,
                Action::Adopt => s.adopt += 1,
                Action::Delete => s.delete += 1,
            }
        }
        s
    }

    /// True when any finding has `Severity::Error` (apply refuses such a plan).
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

/// Number of changes per action.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub adopt: usize,
    pub delete: usize,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Plan: {} to create, {} to update, {} to adopt, {} to delete.",
            self.create, self.update, self.adopt, self.delete
        )
    }
}

/// How to plan: the knobs that come from settings and flags (never from manifests).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PlanSettings {
    /// Value of the `immctl-owner` tag this run owns.
    pub owner: String,
    /// `--adopt`: take over declared resources that exist without any owner tag.
    pub adopt: bool,
    /// `--prune`: delete owned resources that are no longer declared.
    pub prune: bool,
    /// `--max-deletions`: prune refuses to delete more resources than this...
    pub max_deletions: usize,
    /// ...unless `--allow-mass-delete`.
    pub allow_mass_delete: bool,
    /// `--target`: when not empty, only changes at these addresses (a role address also
    /// selects its attachments) and the changes they depend on are planned.
    pub targets: Vec<Address>,
}

impl Default for PlanSettings {
    fn default() -> Self {
        PlanSettings {
            owner: "default".to_string(),
            adopt: false,
            prune: false,
            max_deletions: 5,
            allow_mass_delete: false,
            targets: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Create,
    Update,
    /// An existing resource without our owner tag is taken over (with `--adopt` /
    /// `spec.adopt`). Its first op adds the owner tag; the ops that bring the other fields in
    /// line follow in the same change (one change per address, so the executor never sees
    /// two changes for one resource).
    Adopt,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Adopt => "adopt",
            Action::Delete => "delete",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One resource's change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
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

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }
}

impl std::fmt::Display for Severity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A lint or planner finding. `Error` findings block apply unless forced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[serde(tag = "op", deny_unknown_fields)]
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
