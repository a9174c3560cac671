//! The manifest format as Rust types: one struct per document kind, exactly the fields
//! DESIGN.md §2 lists. These are what the YAML is deserialized into (`deny_unknown_fields`
//! everywhere, no `#[serde(flatten)]`, which would lose error positions) and what
//! `validate --expand` serializes back out.
//!
//! Field docs here are the reference; `docs/manifests.md` repeats them for users.
//! Must not: validate (see `validate.rs`) or know where a document came from.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::model::{DeletionPolicy, PolicyType};

/// The only `apiVersion` this release reads.
pub const API_VERSION: &str = "immctl/v1";

/// The kinds a manifest document may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Policy,
    Role,
    Project,
    ImmServiceRole,
}

impl Kind {
    pub const ALL: [Kind; 4] = [
        Kind::Policy,
        Kind::Role,
        Kind::Project,
        Kind::ImmServiceRole,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Policy => "Policy",
            Kind::Role => "Role",
            Kind::Project => "Project",
            Kind::ImmServiceRole => "ImmServiceRole",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// Kinds that may sit among the manifests but are not manifests: skipped without a finding.
/// `EmulatorState` is the seed of the embedded emulator (`manifests/demo-live-state.yaml`).
pub const SKIPPED_KINDS: &[&str] = &["EmulatorState"];

/// One document as it is read. `apiVersion` and `kind` are checked by the loader before
/// (with their own codes), so here they only have to be present as keys.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ManifestIn<S> {
    #[serde(default)]
    pub api_version: serde::de::IgnoredAny,
    #[serde(default)]
    pub kind: serde::de::IgnoredAny,
    pub metadata: Metadata,
    pub spec: S,
}

/// One document as `validate --expand` writes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest<S> {
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: S,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    /// The cloud name of the resource.
    pub name: String,
}

/// `kind: Policy`: a custom RAM policy.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The policy document as a YAML (or JSON) mapping. Exactly one of `document` and
    /// `documentFile`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<Value>,
    /// Path of a JSON file holding the document, relative to this manifest's directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_file: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    /// Take over an existing policy that lacks the owner tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<bool>,
}

/// `kind: Role`: a RAM role.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RoleSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// 3600..=43200 seconds; default 3600.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_session_duration: Option<u32>,
    /// Who may assume the role (a RAM trust policy document).
    pub trust_policy: Value,
    /// The attachments; authoritative (other live attachments are drift).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policies: Option<Vec<PolicyRefSpec>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<bool>,
}

/// One attachment: `{name, type}`; `type` defaults to `Custom`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyRefSpec {
    pub name: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub policy_type: Option<PolicyType>,
}

/// `kind: Project`: an IMM (2020-09-30) project.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProjectSpec {
    /// Default: the `region` setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Role name; default `AliyunIMMDefaultRole`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_role: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_queries_per_second: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine_concurrency: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_max_dataset_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_max_bind_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_max_file_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_max_entity_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_max_relation_count: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dataset_max_total_file_size: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// OSS buckets the project works on: not sent to IMM; used to check the service role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<bool>,
}

/// `kind: ImmServiceRole`: expands into a Role trusted by `imm.aliyuncs.com` and a
/// least-privilege Policy ([`generated_policy_name`]) attached to it.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImmServiceRoleSpec {
    /// The OSS buckets IMM may work on through this role (at least one).
    pub buckets: Vec<String>,
    /// Description of the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Permission statements appended to the generated policy as written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_statements: Option<Vec<Value>>,
    /// The role's maximum session duration, 3600..=43200 seconds (default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_session_duration: Option<u32>,
    /// Tags of both generated resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// Deletion policy of both generated resources.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deletion_policy: Option<DeletionPolicy>,
    /// Adopt existing resources of both generated names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopt: Option<bool>,
}

/// Name of the policy an `ImmServiceRole` named `role` generates: `<role>-policy`, a `.` (allowed
/// in role names, not in policy names) written as `-`.
pub fn generated_policy_name(role: &str) -> String {
    format!("{}-policy", role.replace('.', "-"))
}
