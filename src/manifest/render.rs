//! Desired resources -> manifest YAML: the one writer of manifests, used by
//! `immctl validate --expand` (what an `ImmServiceRole` becomes) and by `immctl import`
//! (live resources as manifests).
//!
//! Each function renders one document (no `---`), such that loading it back gives the same
//! resource (same [`Desired`](super::Desired) value, but for `source`): that round trip is
//! tested here and by `immctl import`'s tests. Output is deterministic: policy documents in
//! canonical form ([`PolicyDocument::canonical`], keys sorted, list fields as sorted lists),
//! maps in key order, attachments in `(type, name)` order.
//!
//! Fields that hold their default are left out where leaving them out loads the same value
//! (`serviceRole: AliyunIMMDefaultRole`, `deletionPolicy: Delete`, `adopt: false`, empty
//! tags); unmanaged fields (`None`) are never written. Pure: no I/O.

use serde::Serialize;

use super::model::*;
use super::schema::API_VERSION;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Manifest<S> {
    api_version: &'static str,
    kind: &'static str,
    metadata: Meta,
    spec: S,
}

#[derive(Serialize)]
struct Meta {
    name: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RoleOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    max_session_duration: u32,
    trust_policy: serde_json::Value,
    policies: Vec<PolicyRefOut>,
    #[serde(skip_serializing_if = "Tags::is_empty")]
    tags: Tags,
    #[serde(skip_serializing_if = "is_delete")]
    deletion_policy: DeletionPolicy,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    adopt: bool,
}

#[derive(Serialize)]
struct PolicyRefOut {
    name: String,
    #[serde(rename = "type")]
    policy_type: PolicyType,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PolicyOut {
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    document: serde_json::Value,
    #[serde(skip_serializing_if = "Tags::is_empty")]
    tags: Tags,
    #[serde(skip_serializing_if = "is_delete")]
    deletion_policy: DeletionPolicy,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    adopt: bool,
}

/// Field order follows DESIGN.md §2 (identity, role, text, limits, tags, immctl's own).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProjectOut {
    region: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    template_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    project_queries_per_second: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    engine_concurrency: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    project_max_dataset_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset_max_bind_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset_max_file_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset_max_entity_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset_max_relation_count: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dataset_max_total_file_size: Option<i64>,
    #[serde(skip_serializing_if = "Tags::is_empty")]
    tags: Tags,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    buckets: Vec<String>,
    #[serde(skip_serializing_if = "is_delete")]
    deletion_policy: DeletionPolicy,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    adopt: bool,
}

fn is_delete(p: &DeletionPolicy) -> bool {
    *p == DeletionPolicy::Delete
}

fn to_yaml<S: Serialize>(kind: &'static str, name: &str, spec: S) -> String {
    let doc = Manifest {
        api_version: API_VERSION,
        kind,
        metadata: Meta {
            name: name.to_string(),
        },
        spec,
    };
    // Plain structs, string-keyed maps and JSON values: serde_yaml cannot fail on them.
    serde_yaml::to_string(&doc).expect("manifests always serialize")
}

/// One `kind: Role` document.
pub fn render_role(role: &DesiredRole) -> String {
    to_yaml(
        "Role",
        &role.name,
        RoleOut {
            description: role.description.clone(),
            max_session_duration: role.max_session_duration,
            trust_policy: role.trust_policy.canonical(),
            policies: role
                .policies
                .iter()
                .map(|p| PolicyRefOut {
                    name: p.name.clone(),
                    policy_type: p.policy_type,
                })
                .collect(),
            tags: role.tags.clone(),
            deletion_policy: role.deletion_policy,
            adopt: role.adopt,
        },
    )
}

/// One `kind: Policy` document.
pub fn render_policy(policy: &DesiredPolicy) -> String {
    to_yaml(
        "Policy",
        &policy.name,
        PolicyOut {
            description: policy.description.clone(),
            document: policy.document.canonical(),
            tags: policy.tags.clone(),
            deletion_policy: policy.deletion_policy,
            adopt: policy.adopt,
        },
    )
}

/// One `kind: Project` document. `region` is always written (it is part of the project's
/// identity, and a manifest without it would follow whatever default region the reader has).
pub fn render_project(project: &DesiredProject) -> String {
    let l = &project.limits;
    to_yaml(
        "Project",
        &project.name,
        ProjectOut {
            region: project.region.clone(),
            service_role: (project.service_role != IMM_DEFAULT_ROLE)
                .then(|| project.service_role.clone()),
            description: project.description.clone(),
            template_id: project.template_id.clone(),
            project_queries_per_second: l.project_queries_per_second,
            engine_concurrency: l.engine_concurrency,
            project_max_dataset_count: l.project_max_dataset_count,
            dataset_max_bind_count: l.dataset_max_bind_count,
            dataset_max_file_count: l.dataset_max_file_count,
            dataset_max_entity_count: l.dataset_max_entity_count,
            dataset_max_relation_count: l.dataset_max_relation_count,
            dataset_max_total_file_size: l.dataset_max_total_file_size,
            tags: project.tags.clone(),
            buckets: project.buckets.clone(),
            deletion_policy: project.deletion_policy,
            adopt: project.adopt,
        },
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::manifest::{LoadOptions, load_texts};
    use crate::policy::PolicyDocument;

    /// Load `text` as one manifest file; panics on any finding that is an error.
    fn load(text: &str) -> Desired {
        let loaded = load_texts(
            &[("x.yaml".into(), text.to_string())],
            &LoadOptions {
                default_region: "cn-hangzhou".into(),
            },
        );
        assert!(!loaded.has_errors(), "{:?}\n{text}", loaded.diagnostics);
        loaded.desired
    }

    fn doc(v: serde_json::Value) -> PolicyDocument {
        PolicyDocument(v)
    }

    #[test]
    fn every_kind_loads_back_as_the_same_resource() {
        let policy = DesiredPolicy {
            name: "9-lives".into(),
            description: Some("Lecture « seule » — 读取 🎬".into()),
            document: doc(serde_json::json!({
                "Version": "1",
                "Statement": [{"Effect": "Allow", "Action": "oss:GetObject",
                    "Resource": ["acs:oss:*:*:b/*"],
                    "Condition": {"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}}}]
            })),
            tags: Tags::from([("yes".into(), "true".into()), ("n".into(), "1e3".into())]),
            deletion_policy: DeletionPolicy::Retain,
            adopt: true,
            source: Source::default(),
            expanded_from: None,
        };
        let role = DesiredRole {
            name: "svc.media".into(),
            description: None,
            max_session_duration: 7200,
            trust_policy: doc(serde_json::json!({
                "Version": "1",
                "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                    "Principal": {"Service": "imm.aliyuncs.com"}}]
            })),
            policies: BTreeSet::from([
                PolicyRef {
                    policy_type: PolicyType::System,
                    name: "AliyunOSSReadOnlyAccess".into(),
                },
                PolicyRef {
                    policy_type: PolicyType::Custom,
                    name: "9-lives".into(),
                },
            ]),
            tags: Tags::new(),
            deletion_policy: DeletionPolicy::Delete,
            adopt: false,
            source: Source::default(),
            expanded_from: None,
        };
        let project = DesiredProject {
            region: "cn-beijing".into(),
            name: "_media_2".into(),
            service_role: "svc.media".into(),
            description: Some("null".into()),
            template_id: Some("Official:ImageManagement".into()),
            limits: ProjectLimits {
                dataset_max_bind_count: Some(5),
                ..ProjectLimits::default()
            },
            tags: Tags::from([("team".into(), "媒体".into())]),
            buckets: vec![],
            deletion_policy: DeletionPolicy::Delete,
            adopt: true,
            source: Source::default(),
        };
        let text = [
            render_policy(&policy),
            render_role(&role),
            render_project(&project),
        ]
        .join("---\n");
        let d = load(&text);
        let strip = |mut p: DesiredPolicy| {
            p.source = Source::default();
            p
        };
        assert_eq!(strip(d.policies["9-lives"].clone()), policy);
        let mut r = d.roles["svc.media"].clone();
        r.source = Source::default();
        assert_eq!(r, role);
        let mut j = d.projects.values().next().unwrap().clone();
        j.source = Source::default();
        assert_eq!(j, project);
    }

    #[test]
    fn defaults_are_left_out_and_the_document_is_a_readable_map() {
        let project = DesiredProject {
            region: "cn-hangzhou".into(),
            name: "p".into(),
            service_role: IMM_DEFAULT_ROLE.into(),
            description: None,
            template_id: None,
            limits: ProjectLimits::default(),
            tags: Tags::new(),
            buckets: vec![],
            deletion_policy: DeletionPolicy::Delete,
            adopt: false,
            source: Source::default(),
        };
        assert_eq!(
            render_project(&project),
            "apiVersion: immctl/v1\nkind: Project\nmetadata:\n  name: p\nspec:\n  region: cn-hangzhou\n"
        );
        let policy = DesiredPolicy {
            name: "p".into(),
            description: None,
            document: doc(
                serde_json::json!({"Version": "1", "Statement": {"Effect": "Allow", "Resource": "*", "Action": "oss:Get*"}}),
            ),
            tags: Tags::new(),
            deletion_policy: DeletionPolicy::Delete,
            adopt: false,
            source: Source::default(),
            expanded_from: None,
        };
        assert_eq!(
            render_policy(&policy),
            "apiVersion: immctl/v1\nkind: Policy\nmetadata:\n  name: p\nspec:\n  document:\n    Statement:\n    - Action:\n      - oss:Get*\n      Effect: Allow\n      Resource:\n      - '*'\n    Version: '1'\n"
        );
    }
}
