//! The desired state: what the manifests say should exist. Pure data.
//!
//! Keys are cloud names, so `BTreeMap` order is the order of every rendering.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::policy::PolicyDocument;

/// Where a manifest element was written: `file:line:column` (1-based).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Source {
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// RAM policy type. Case-sensitive on the wire: `System` / `Custom`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
pub enum PolicyType {
    #[default]
    Custom,
    System,
}

impl PolicyType {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyType::Custom => "Custom",
            PolicyType::System => "System",
        }
    }
}

impl fmt::Display for PolicyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy as a role attachment names it: (type, name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct PolicyRef {
    pub policy_type: PolicyType,
    pub name: String,
}

/// `Delete` (default) or `Retain`: a `Retain` resource is never pruned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum DeletionPolicy {
    #[default]
    Delete,
    Retain,
}

/// Identifies an IMM project: projects are per region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProjectKey {
    pub region: String,
    pub name: String,
}

impl fmt::Display for ProjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.region, self.name)
    }
}

/// User tags (the owner tag is added by the planner, never written here).
pub type Tags = BTreeMap<String, String>;

/// Everything the manifests declare, after expansion of `ImmServiceRole`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Desired {
    pub policies: BTreeMap<String, DesiredPolicy>,
    pub roles: BTreeMap<String, DesiredRole>,
    pub projects: BTreeMap<ProjectKey, DesiredProject>,
    /// Hex SHA-256 over the manifest files read (path and bytes, in path order). Saved plans
    /// record it so that `immctl apply PLAN.json` can refuse when the manifests changed.
    pub digest: String,
    /// Hex SHA-256 of each file behind `digest`, by its digest key (the path relative to its
    /// root; `documentFile:` and the path for policy documents). A stale plan names the
    /// files that changed with it.
    pub file_digests: BTreeMap<String, String>,
}

impl Desired {
    /// Where the resource at `addr` was declared (an attachment: its role; an expanded
    /// resource: its `ImmServiceRole`). `None` for addresses the manifests do not declare.
    pub fn source_of(&self, addr: &Address) -> Option<&Source> {
        let a = addr.as_str();
        if let Some(name) = a.strip_prefix("ram_policy.") {
            return self.policies.get(name).map(|p| &p.source);
        }
        if let Some(name) = a.strip_prefix("ram_role.") {
            return self.roles.get(name).map(|r| &r.source);
        }
        if let Some(rest) = a.strip_prefix("ram_role_policy.") {
            let role = rest.split('/').next().unwrap_or(rest);
            return self.roles.get(role).map(|r| &r.source);
        }
        if let Some(rest) = a.strip_prefix("imm_project.") {
            let (region, name) = rest.split_once('/')?;
            return self
                .projects
                .get(&ProjectKey {
                    region: region.to_string(),
                    name: name.to_string(),
                })
                .map(|p| &p.source);
        }
        None
    }
}

/// A custom RAM policy.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredPolicy {
    pub name: String,
    /// `None`: the description is not managed (RAM cannot clear one).
    pub description: Option<String>,
    pub document: PolicyDocument,
    pub tags: Tags,
    pub deletion_policy: DeletionPolicy,
    /// Take over an existing resource that lacks our owner tag.
    pub adopt: bool,
    pub source: Source,
    /// Set when this resource came from an `ImmServiceRole` (its name).
    pub expanded_from: Option<String>,
}

/// A RAM role with its trust policy and its (authoritative) attachments.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredRole {
    pub name: String,
    pub description: Option<String>,
    /// 3600..=43200, default 3600.
    pub max_session_duration: u32,
    pub trust_policy: PolicyDocument,
    /// Authoritative: any other live attachment is drift.
    pub policies: BTreeSet<PolicyRef>,
    pub tags: Tags,
    pub deletion_policy: DeletionPolicy,
    pub adopt: bool,
    pub source: Source,
    pub expanded_from: Option<String>,
}

/// IMM project limits; `None` means "not managed" (the service default stays).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectLimits {
    pub project_queries_per_second: Option<i64>,
    pub engine_concurrency: Option<i64>,
    pub project_max_dataset_count: Option<i64>,
    pub dataset_max_bind_count: Option<i64>,
    pub dataset_max_file_count: Option<i64>,
    pub dataset_max_entity_count: Option<i64>,
    pub dataset_max_relation_count: Option<i64>,
    pub dataset_max_total_file_size: Option<i64>,
}

/// An IMM (2020-09-30) project.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredProject {
    pub region: String,
    pub name: String,
    /// Role name; default `AliyunIMMDefaultRole`.
    pub service_role: String,
    pub description: Option<String>,
    pub template_id: Option<String>,
    pub limits: ProjectLimits,
    pub tags: Tags,
    /// OSS buckets the project works on: not sent to IMM, used to lint the service role.
    pub buckets: Vec<String>,
    pub deletion_policy: DeletionPolicy,
    pub adopt: bool,
    pub source: Source,
}

impl DesiredProject {
    pub fn key(&self) -> ProjectKey {
        ProjectKey {
            region: self.region.clone(),
            name: self.name.clone(),
        }
    }
}

/// The tag immctl puts on everything it owns: `immctl-owner=<owner>`. Users may not set it
/// in `tags` (the owner comes from settings).
pub const OWNER_TAG_KEY: &str = "immctl-owner";

/// Tag put on resources declared with `deletionPolicy: Retain`; prune skips live resources
/// that carry it with value [`RETAIN_TAG_VALUE`]. The tag (not the manifest) is the record,
/// because a resource removed from the manifests has no manifest left to say `Retain`.
pub const RETAIN_TAG_KEY: &str = "immctl-deletion-policy";
pub const RETAIN_TAG_VALUE: &str = "Retain";

/// `Aliyun*` roles are cloud-service roles: immctl never creates, changes or deletes them.
pub fn is_protected_role_name(name: &str) -> bool {
    name.starts_with("Aliyun")
}

/// The role IMM uses when a project names none. Never created or changed by immctl.
pub const IMM_DEFAULT_ROLE: &str = "AliyunIMMDefaultRole";

/// A resource address, one form everywhere (plans, logs, metrics, errors):
/// `ram_policy.<name>`, `ram_role.<name>`, `ram_role_policy.<role>/<Type>/<policy>`,
/// `imm_project.<region>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Address(pub String);

impl Address {
    pub fn policy(name: &str) -> Self {
        Address(format!("ram_policy.{name}"))
    }
    pub fn role(name: &str) -> Self {
        Address(format!("ram_role.{name}"))
    }
    pub fn attachment(role: &str, policy: &PolicyRef) -> Self {
        Address(format!(
            "ram_role_policy.{role}/{}/{}",
            policy.policy_type, policy.name
        ))
    }
    pub fn project(key: &ProjectKey) -> Self {
        Address(format!("imm_project.{}/{}", key.region, key.name))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
