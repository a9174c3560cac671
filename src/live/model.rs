//! The live state as read from RAM and IMM. Pure data; built by `live::fetch` in production
//! and by builders in tests.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::manifest::{PolicyRef, ProjectKey, Tags};
use crate::policy::PolicyDocument;

pub use crate::manifest::OWNER_TAG_KEY;

/// What the planner needs to know about the account.
///
/// Only resources that are declared, or carry an `immctl-owner` tag, are read in full
/// (`roles`, `policies`, `projects`); the name indexes cover the whole account.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Live {
    pub account_id: Option<String>,
    pub roles: BTreeMap<String, LiveRole>,
    /// Custom policies only.
    pub policies: BTreeMap<String, LivePolicy>,
    /// Serialized as a list (JSON map keys must be strings); the key is `(region, name)`.
    #[serde(with = "projects_as_list")]
    pub projects: BTreeMap<ProjectKey, LiveProject>,
    /// Every role name in the account (from ListRoles).
    pub role_names: BTreeSet<String>,
    /// Every policy, custom and system (from ListPolicies).
    pub policy_names: BTreeSet<PolicyRef>,
    /// Default-version documents of the System policies attached (or to be attached) to
    /// declared roles, by name: the lints evaluate a service role through them.
    #[serde(default)]
    pub system_policy_documents: BTreeMap<String, PolicyDocument>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveRole {
    pub name: String,
    pub role_id: String,
    pub arn: String,
    pub description: String,
    pub max_session_duration: u32,
    pub trust_policy: PolicyDocument,
    pub attachments: BTreeSet<PolicyRef>,
    pub tags: Tags,
    /// Set for service-linked roles (never touched).
    #[serde(default)]
    pub service_linked: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LivePolicyVersion {
    /// `v<N>`
    pub version_id: String,
    pub is_default: bool,
    pub create_date: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LivePolicy {
    pub name: String,
    pub description: String,
    pub default_version: String,
    /// The default version's document.
    pub document: PolicyDocument,
    /// All versions, oldest first (by version number).
    pub versions: Vec<LivePolicyVersion>,
    pub attachment_count: u32,
    pub tags: Tags,
}

/// An IMM project as GetProject / ListProjects returns it (every limit filled in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LiveProject {
    pub region: String,
    pub name: String,
    pub service_role: String,
    pub description: String,
    pub template_id: String,
    pub project_queries_per_second: i64,
    pub engine_concurrency: i64,
    pub project_max_dataset_count: i64,
    pub dataset_max_bind_count: i64,
    pub dataset_max_file_count: i64,
    pub dataset_max_entity_count: i64,
    pub dataset_max_relation_count: i64,
    pub dataset_max_total_file_size: i64,
    pub tags: Tags,
}

/// `Live::projects` as a JSON list of projects (a struct cannot be a JSON map key).
mod projects_as_list {
    use std::collections::BTreeMap;

    use serde::{Deserialize, Deserializer, Serializer};

    use super::LiveProject;
    use crate::manifest::ProjectKey;

    pub fn serialize<S: Serializer>(
        projects: &BTreeMap<ProjectKey, LiveProject>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.collect_seq(projects.values())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<BTreeMap<ProjectKey, LiveProject>, D::Error> {
        let list = Vec::<LiveProject>::deserialize(d)?;
        Ok(list
            .into_iter()
            .map(|p| {
                let key = ProjectKey {
                    region: p.region.clone(),
                    name: p.name.clone(),
                };
                (key, p)
            })
            .collect())
    }
}
