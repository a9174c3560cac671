//! Small fixture builders with fixed names, for the planner's unit, golden and property
//! tests (and the executor's). Pure data; nothing here reads files or the network.

use std::collections::BTreeSet;

use serde_json::json;

use super::diff::desired_tags;
use super::model::PlanSettings;
use crate::live::{Live, LivePolicy, LivePolicyVersion, LiveProject, LiveRole};
use crate::manifest::{
    DeletionPolicy, Desired, DesiredPolicy, DesiredProject, DesiredRole, IMM_DEFAULT_ROLE,
    PolicyRef, PolicyType, ProjectKey, ProjectLimits, Source, Tags,
};
use crate::policy::PolicyDocument;

use super::simulate::{
    IMM_DEFAULT_DATASET_MAX_BIND_COUNT, IMM_DEFAULT_DATASET_MAX_ENTITY_COUNT,
    IMM_DEFAULT_DATASET_MAX_FILE_COUNT, IMM_DEFAULT_DATASET_MAX_RELATION_COUNT,
    IMM_DEFAULT_DATASET_MAX_TOTAL_FILE_SIZE, IMM_DEFAULT_ENGINE_CONCURRENCY,
    IMM_DEFAULT_PROJECT_MAX_DATASET_COUNT, IMM_DEFAULT_QPS,
};

pub const REGION: &str = "cn-hangzhou";
pub const ACCOUNT: &str = "1234567890123456";

/// Settings with owner `default` and everything else at its default.
pub fn settings() -> PlanSettings {
    PlanSettings::default()
}

/// `{"Version":"1","Statement":[{"Effect":"Allow","Action":<action>,"Resource":<resource>}]}`
pub fn allow(action: &str, resource: &str) -> PolicyDocument {
    PolicyDocument(json!({
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]
    }))
}

/// A trust policy letting a cloud service (e.g. `imm.aliyuncs.com`) assume the role.
pub fn trust(service: &str) -> PolicyDocument {
    PolicyDocument(json!({
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                       "Principal": {"Service": [service]}}]
    }))
}

pub fn policy_ref(policy_type: PolicyType, name: &str) -> PolicyRef {
    PolicyRef {
        policy_type,
        name: name.to_string(),
    }
}

pub fn desired_policy(name: &str) -> DesiredPolicy {
    DesiredPolicy {
        name: name.to_string(),
        description: Some(format!("{name} policy")),
        document: allow("oss:GetObject", "acs:oss:*:*:media/*"),
        tags: Tags::new(),
        deletion_policy: DeletionPolicy::Delete,
        adopt: false,
        source: Source::default(),
        expanded_from: None,
    }
}

pub fn desired_role(name: &str, policies: &[PolicyRef]) -> DesiredRole {
    DesiredRole {
        name: name.to_string(),
        description: Some(format!("{name} role")),
        max_session_duration: 3600,
        trust_policy: trust("imm.aliyuncs.com"),
        policies: policies.iter().cloned().collect(),
        tags: Tags::new(),
        deletion_policy: DeletionPolicy::Delete,
        adopt: false,
        source: Source::default(),
        expanded_from: None,
    }
}

pub fn desired_project(name: &str, service_role: &str) -> DesiredProject {
    DesiredProject {
        region: REGION.to_string(),
        name: name.to_string(),
        service_role: service_role.to_string(),
        description: Some(format!("{name} project")),
        template_id: None,
        limits: ProjectLimits::default(),
        tags: Tags::new(),
        buckets: vec![],
        deletion_policy: DeletionPolicy::Delete,
        adopt: false,
        source: Source::default(),
    }
}

/// A `Desired` holding the given resources (digest fixed).
pub fn desired(
    policies: Vec<DesiredPolicy>,
    roles: Vec<DesiredRole>,
    projects: Vec<DesiredProject>,
) -> Desired {
    Desired {
        policies: policies.into_iter().map(|p| (p.name.clone(), p)).collect(),
        roles: roles.into_iter().map(|r| (r.name.clone(), r)).collect(),
        projects: projects.into_iter().map(|p| (p.key(), p)).collect(),
        digest: "0".repeat(64),
        file_digests: Default::default(),
    }
}

/// An account with nothing but `AliyunIMMDefaultRole` and two System policies.
pub fn empty_live() -> Live {
    let mut live = Live {
        account_id: Some(ACCOUNT.to_string()),
        ..Live::default()
    };
    live.role_names.insert(IMM_DEFAULT_ROLE.to_string());
    for s in ["AliyunOSSReadOnlyAccess", "AliyunMNSFullAccess"] {
        live.policy_names.insert(policy_ref(PolicyType::System, s));
    }
    live
}

pub fn live_role(name: &str, tags: Tags) -> LiveRole {
    LiveRole {
        name: name.to_string(),
        role_id: format!("3{:0>15}", name.len()),
        arn: format!("acs:ram::{ACCOUNT}:role/{name}"),
        description: String::new(),
        max_session_duration: 3600,
        trust_policy: trust("imm.aliyuncs.com"),
        attachments: BTreeSet::new(),
        tags,
        service_linked: false,
    }
}

pub fn live_policy(name: &str, document: PolicyDocument, tags: Tags) -> LivePolicy {
    LivePolicy {
        name: name.to_string(),
        description: String::new(),
        default_version: "v1".to_string(),
        document,
        versions: vec![LivePolicyVersion {
            version_id: "v1".to_string(),
            is_default: true,
            create_date: "2026-01-01T00:00:00Z".to_string(),
        }],
        attachment_count: 0,
        tags,
    }
}

pub fn live_project(key: &ProjectKey, service_role: &str, tags: Tags) -> LiveProject {
    LiveProject {
        region: key.region.clone(),
        name: key.name.clone(),
        service_role: service_role.to_string(),
        description: String::new(),
        template_id: String::new(),
        project_queries_per_second: IMM_DEFAULT_QPS,
        engine_concurrency: IMM_DEFAULT_ENGINE_CONCURRENCY,
        project_max_dataset_count: IMM_DEFAULT_PROJECT_MAX_DATASET_COUNT,
        dataset_max_bind_count: IMM_DEFAULT_DATASET_MAX_BIND_COUNT,
        dataset_max_file_count: IMM_DEFAULT_DATASET_MAX_FILE_COUNT,
        dataset_max_entity_count: IMM_DEFAULT_DATASET_MAX_ENTITY_COUNT,
        dataset_max_relation_count: IMM_DEFAULT_DATASET_MAX_RELATION_COUNT,
        dataset_max_total_file_size: IMM_DEFAULT_DATASET_MAX_TOTAL_FILE_SIZE,
        tags,
    }
}

/// Tags `{immctl-owner: owner}`.
pub fn owned(owner: &str) -> Tags {
    Tags::from([(crate::live::OWNER_TAG_KEY.to_string(), owner.to_string())])
}

/// The live state in which `desired` is exactly met, owned by `owner`, on top of `base`
/// (whose other resources stay). Unmanaged fields get empty / IMM default values.
pub fn live_from_desired(desired: &Desired, owner: &str, base: &Live) -> Live {
    let mut live = base.clone();
    for p in desired.policies.values() {
        let mut lp = live_policy(
            &p.name,
            p.document.clone(),
            desired_tags(&p.tags, p.deletion_policy, owner),
        );
        lp.description = p.description.clone().unwrap_or_default();
        live.policy_names
            .insert(policy_ref(PolicyType::Custom, &p.name));
        live.policies.insert(p.name.clone(), lp);
    }
    for r in desired.roles.values() {
        let mut lr = live_role(&r.name, desired_tags(&r.tags, r.deletion_policy, owner));
        lr.description = r.description.clone().unwrap_or_default();
        lr.max_session_duration = r.max_session_duration;
        lr.trust_policy = r.trust_policy.clone();
        lr.attachments = r.policies.clone();
        for a in &r.policies {
            live.policy_names.insert(a.clone());
            if a.policy_type == PolicyType::Custom
                && let Some(lp) = live.policies.get_mut(&a.name)
            {
                lp.attachment_count += 1;
            }
        }
        live.role_names.insert(r.name.clone());
        live.roles.insert(r.name.clone(), lr);
    }
    for (key, j) in &desired.projects {
        let mut lp = live_project(
            key,
            &j.service_role,
            desired_tags(&j.tags, j.deletion_policy, owner),
        );
        lp.description = j.description.clone().unwrap_or_default();
        lp.template_id = j.template_id.clone().unwrap_or_default();
        let l = &j.limits;
        let set = |slot: &mut i64, v: Option<i64>| {
            if let Some(v) = v {
                *slot = v;
            }
        };
        set(
            &mut lp.project_queries_per_second,
            l.project_queries_per_second,
        );
        set(&mut lp.engine_concurrency, l.engine_concurrency);
        set(
            &mut lp.project_max_dataset_count,
            l.project_max_dataset_count,
        );
        set(&mut lp.dataset_max_bind_count, l.dataset_max_bind_count);
        set(&mut lp.dataset_max_file_count, l.dataset_max_file_count);
        set(&mut lp.dataset_max_entity_count, l.dataset_max_entity_count);
        set(
            &mut lp.dataset_max_relation_count,
            l.dataset_max_relation_count,
        );
        set(
            &mut lp.dataset_max_total_file_size,
            l.dataset_max_total_file_size,
        );
        live.projects.insert(key.clone(), lp);
    }
    live
}
