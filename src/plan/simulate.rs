//! A pure model of what each [`Op`] does to [`Live`]: the property tests apply a plan with it
//! and plan again, and the executor's tests can compare the emulator's state with it.
//!
//! [`simulate_strict`] enforces the RAM / IMM rules an op can break (5 policy versions, no
//! deleting the default version, no deleting an attached policy or a role with attachments,
//! attach twice, unknown resources) and stops at the first broken one; [`simulate`] skips
//! the ops that would fail and carries on. No clock: created versions get a fixed date.

use thiserror::Error;

use super::check::op_name;
use super::diff::MAX_POLICY_VERSIONS;
use super::model::{Op, Plan, TagResourceType};
use crate::live::{Live, LivePolicy, LivePolicyVersion, LiveProject, LiveRole};
use crate::manifest::{Address, PolicyRef, PolicyType, Tags};
use crate::policy::PolicyDocument;

/// IMM's defaults for limits a CreateProject leaves out (reference/alibaba-api.md §4.2).
pub const IMM_DEFAULT_QPS: i64 = 100;
pub const IMM_DEFAULT_ENGINE_CONCURRENCY: i64 = 100;
pub const IMM_DEFAULT_PROJECT_MAX_DATASET_COUNT: i64 = 1_000_000_000;
pub const IMM_DEFAULT_DATASET_MAX_BIND_COUNT: i64 = 10;
pub const IMM_DEFAULT_DATASET_MAX_FILE_COUNT: i64 = 100_000_000;
pub const IMM_DEFAULT_DATASET_MAX_ENTITY_COUNT: i64 = 10_000_000_000;
pub const IMM_DEFAULT_DATASET_MAX_RELATION_COUNT: i64 = 100_000_000_000;
pub const IMM_DEFAULT_DATASET_MAX_TOTAL_FILE_SIZE: i64 = 90_000_000_000_000_000;

/// Date given to everything the simulation creates.
pub const SIMULATED_DATE: &str = "2026-01-01T00:00:00Z";

/// An op the cloud would refuse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{address}: {action} would fail: {reason}")]
pub struct SimulateError {
    pub address: Address,
    pub action: &'static str,
    pub reason: String,
}

/// Apply every op of `plan` to a copy of `live`, skipping ops the cloud would refuse.
pub fn simulate(plan: &Plan, live: &Live) -> Live {
    let mut out = live.clone();
    for c in &plan.changes {
        for op in &c.ops {
            let _refused = apply_op(&mut out, op);
        }
    }
    out
}

/// Apply every op of `plan` to a copy of `live`; the first op the cloud would refuse is an
/// error.
pub fn simulate_strict(plan: &Plan, live: &Live) -> Result<Live, SimulateError> {
    let mut out = live.clone();
    for c in &plan.changes {
        for op in &c.ops {
            apply_op(&mut out, op).map_err(|reason| SimulateError {
                address: c.address.clone(),
                action: op_name(op),
                reason,
            })?;
        }
    }
    Ok(out)
}

fn version_number(id: &str) -> u64 {
    id.trim_start_matches('v').parse().unwrap_or(0)
}

fn parse_doc(text: &str) -> Result<PolicyDocument, String> {
    PolicyDocument::from_json_str(text).map_err(|e| format!("malformed document: {e}"))
}

fn tags_of<'a>(
    live: &'a mut Live,
    resource_type: TagResourceType,
    name: &str,
) -> Result<&'a mut Tags, String> {
    match resource_type {
        TagResourceType::Role => live
            .roles
            .get_mut(name)
            .map(|r| &mut r.tags)
            .ok_or_else(|| format!("role {name} does not exist")),
        TagResourceType::Policy => live
            .policies
            .get_mut(name)
            .map(|p| &mut p.tags)
            .ok_or_else(|| format!("policy {name} does not exist")),
    }
}

fn policy_exists(live: &Live, p: &PolicyRef) -> bool {
    match p.policy_type {
        PolicyType::Custom => live.policies.contains_key(&p.name),
        PolicyType::System => live.policy_names.contains(p),
    }
}

/// One op; `Err` with the reason when the cloud would refuse it (live is then unchanged).
pub fn apply_op(live: &mut Live, op: &Op) -> Result<(), String> {
    match op {
        Op::CreatePolicy {
            name,
            description,
            document,
            tags,
        } => {
            if live.policies.contains_key(name) {
                return Err(format!("policy {name} already exists"));
            }
            let document = parse_doc(document)?;
            live.policies.insert(
                name.clone(),
                LivePolicy {
                    name: name.clone(),
                    description: description.clone().unwrap_or_default(),
                    default_version: "v1".to_string(),
                    document,
                    versions: vec![LivePolicyVersion {
                        version_id: "v1".to_string(),
                        is_default: true,
                        create_date: SIMULATED_DATE.to_string(),
                    }],
                    attachment_count: 0,
                    tags: tags.clone(),
                },
            );
            live.policy_names.insert(PolicyRef {
                policy_type: PolicyType::Custom,
                name: name.clone(),
            });
        }
        Op::DeletePolicyVersion { name, version_id } => {
            let p = live
                .policies
                .get_mut(name)
                .ok_or_else(|| format!("policy {name} does not exist"))?;
            let i = p
                .versions
                .iter()
                .position(|v| v.version_id == *version_id)
                .ok_or_else(|| format!("version {version_id} does not exist"))?;
            if p.versions[i].is_default {
                return Err(format!("version {version_id} is the default"));
            }
            p.versions.remove(i);
        }
        Op::CreatePolicyVersion { name, document } => {
            let document = parse_doc(document)?;
            let p = live
                .policies
                .get_mut(name)
                .ok_or_else(|| format!("policy {name} does not exist"))?;
            if p.versions.len() >= MAX_POLICY_VERSIONS {
                return Err(format!(
                    "{} versions exist (LimitExceeded.Policy.Version)",
                    p.versions.len()
                ));
            }
            let next = p
                .versions
                .iter()
                .map(|v| version_number(&v.version_id))
                .max()
                .unwrap_or(0)
                + 1;
            let id = format!("v{next}");
            for v in &mut p.versions {
                v.is_default = false;
            }
            p.versions.push(LivePolicyVersion {
                version_id: id.clone(),
                is_default: true,
                create_date: SIMULATED_DATE.to_string(),
            });
            p.default_version = id;
            p.document = document;
        }
        Op::UpdatePolicyDescription { name, description } => {
            let p = live
                .policies
                .get_mut(name)
                .ok_or_else(|| format!("policy {name} does not exist"))?;
            p.description = description.clone();
        }
        Op::DeletePolicy { name } => {
            let p = live
                .policies
                .get(name)
                .ok_or_else(|| format!("policy {name} does not exist"))?;
            if p.attachment_count > 0 {
                return Err(format!("still attached {} times", p.attachment_count));
            }
            if p.versions.iter().any(|v| !v.is_default) {
                return Err("non-default versions exist".to_string());
            }
            live.policies.remove(name);
            live.policy_names.remove(&PolicyRef {
                policy_type: PolicyType::Custom,
                name: name.clone(),
            });
        }
        Op::CreateRole {
            name,
            description,
            max_session_duration,
            trust_policy,
            tags,
        } => {
            if live.roles.contains_key(name) || live.role_names.contains(name) {
                return Err(format!("role {name} already exists"));
            }
            let account = live.account_id.clone().unwrap_or_else(|| "0".to_string());
            live.roles.insert(
                name.clone(),
                LiveRole {
                    name: name.clone(),
                    role_id: format!("sim-{name}"),
                    arn: format!("acs:ram::{account}:role/{name}"),
                    description: description.clone().unwrap_or_default(),
                    max_session_duration: *max_session_duration,
                    trust_policy: parse_doc(trust_policy)?,
                    attachments: Default::default(),
                    tags: tags.clone(),
                    service_linked: false,
                },
            );
            live.role_names.insert(name.clone());
        }
        Op::UpdateRole {
            name,
            trust_policy,
            description,
            max_session_duration,
        } => {
            let trust = trust_policy.as_deref().map(parse_doc).transpose()?;
            let r = live
                .roles
                .get_mut(name)
                .ok_or_else(|| format!("role {name} does not exist"))?;
            if let Some(t) = trust {
                r.trust_policy = t;
            }
            if let Some(d) = description {
                r.description = d.clone();
            }
            if let Some(m) = max_session_duration {
                r.max_session_duration = *m;
            }
        }
        Op::DeleteRole { name } => {
            let r = live
                .roles
                .get(name)
                .ok_or_else(|| format!("role {name} does not exist"))?;
            if !r.attachments.is_empty() {
                return Err("policies still attached (DeleteConflict.Role.Policy)".to_string());
            }
            live.roles.remove(name);
            live.role_names.remove(name);
        }
        Op::AttachPolicyToRole { role, policy } => {
            if !policy_exists(live, policy) {
                return Err(format!(
                    "{} policy {} does not exist",
                    policy.policy_type, policy.name
                ));
            }
            let r = live
                .roles
                .get_mut(role)
                .ok_or_else(|| format!("role {role} does not exist"))?;
            if !r.attachments.insert(policy.clone()) {
                return Err("already attached".to_string());
            }
            if policy.policy_type == PolicyType::Custom
                && let Some(p) = live.policies.get_mut(&policy.name)
            {
                p.attachment_count += 1;
            }
        }
        Op::DetachPolicyFromRole { role, policy } => {
            let r = live
                .roles
                .get_mut(role)
                .ok_or_else(|| format!("role {role} does not exist"))?;
            if !r.attachments.remove(policy) {
                return Err("not attached".to_string());
            }
            if policy.policy_type == PolicyType::Custom
                && let Some(p) = live.policies.get_mut(&policy.name)
            {
                p.attachment_count = p.attachment_count.saturating_sub(1);
            }
        }
        Op::TagResources {
            resource_type,
            name,
            tags,
        } => {
            let t = tags_of(live, *resource_type, name)?;
            t.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        Op::UntagResources {
            resource_type,
            name,
            keys,
        } => {
            let t = tags_of(live, *resource_type, name)?;
            for k in keys {
                t.remove(k);
            }
        }
        Op::CreateProject {
            key,
            service_role,
            description,
            template_id,
            limits,
            tags,
        } => {
            if live.projects.contains_key(key) {
                return Err(format!("project {key} already exists"));
            }
            live.projects.insert(
                key.clone(),
                LiveProject {
                    region: key.region.clone(),
                    name: key.name.clone(),
                    service_role: service_role.clone(),
                    description: description.clone().unwrap_or_default(),
                    template_id: template_id.clone().unwrap_or_default(),
                    project_queries_per_second: limits
                        .project_queries_per_second
                        .unwrap_or(IMM_DEFAULT_QPS),
                    engine_concurrency: limits
                        .engine_concurrency
                        .unwrap_or(IMM_DEFAULT_ENGINE_CONCURRENCY),
                    project_max_dataset_count: limits
                        .project_max_dataset_count
                        .unwrap_or(IMM_DEFAULT_PROJECT_MAX_DATASET_COUNT),
                    dataset_max_bind_count: limits
                        .dataset_max_bind_count
                        .unwrap_or(IMM_DEFAULT_DATASET_MAX_BIND_COUNT),
                    dataset_max_file_count: limits
                        .dataset_max_file_count
                        .unwrap_or(IMM_DEFAULT_DATASET_MAX_FILE_COUNT),
                    dataset_max_entity_count: limits
                        .dataset_max_entity_count
                        .unwrap_or(IMM_DEFAULT_DATASET_MAX_ENTITY_COUNT),
                    dataset_max_relation_count: limits
                        .dataset_max_relation_count
                        .unwrap_or(IMM_DEFAULT_DATASET_MAX_RELATION_COUNT),
                    dataset_max_total_file_size: limits
                        .dataset_max_total_file_size
                        .unwrap_or(IMM_DEFAULT_DATASET_MAX_TOTAL_FILE_SIZE),
                    tags: tags.clone(),
                },
            );
        }
        Op::UpdateProject {
            key,
            service_role,
            description,
            template_id,
            limits,
            tags,
        } => {
            let p = live
                .projects
                .get_mut(key)
                .ok_or_else(|| format!("project {key} does not exist"))?;
            if let Some(s) = service_role {
                p.service_role = s.clone();
            }
            if let Some(d) = description {
                p.description = d.clone();
            }
            if let Some(t) = template_id {
                p.template_id = t.clone();
            }
            let l = limits;
            let set = |slot: &mut i64, v: Option<i64>| {
                if let Some(v) = v {
                    *slot = v;
                }
            };
            set(
                &mut p.project_queries_per_second,
                l.project_queries_per_second,
            );
            set(&mut p.engine_concurrency, l.engine_concurrency);
            set(
                &mut p.project_max_dataset_count,
                l.project_max_dataset_count,
            );
            set(&mut p.dataset_max_bind_count, l.dataset_max_bind_count);
            set(&mut p.dataset_max_file_count, l.dataset_max_file_count);
            set(&mut p.dataset_max_entity_count, l.dataset_max_entity_count);
            set(
                &mut p.dataset_max_relation_count,
                l.dataset_max_relation_count,
            );
            set(
                &mut p.dataset_max_total_file_size,
                l.dataset_max_total_file_size,
            );
            if let Some(t) = tags {
                p.tags = t.clone();
            }
        }
        Op::DeleteProject { key } => {
            if live.projects.remove(key).is_none() {
                return Err(format!("project {key} does not exist"));
            }
        }
    }
    Ok(())
}
