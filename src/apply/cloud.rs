//! [`CloudOpRunner`]: the real [`OpRunner`], one RAM / IMM call per [`Op`] through
//! [`crate::cloud::Client`] (which signs, rate-limits and retries transient failures).
//!
//! It makes no decisions: it sends exactly the op and classifies a failure with the table in
//! `error.rs` ([`OpError::from_api`]). Choices that keep it that way:
//! - `CreatePolicyVersion` is sent with `SetAsDefault=true` and `RotateStrategy=None`: the
//!   plan deletes the oldest version itself (as an op the reviewer saw), so RAM never
//!   deletes one on its own.
//! - `DeletePolicy` is sent without `CascadingDelete`: the plan deletes the non-default
//!   versions first; a version made since answers `DeleteConflict.Policy.Version`.
//! - Failures the service did not answer (transport, timeout) are `Transient` with the
//!   client's label as code (`Transport`, `Timeout`) and no RequestId; decode, credential
//!   and configuration failures are `Permanent`.
//!
//! `confirm` reads back as documented on [`OpRunner::confirm`]; a "not found" answer is the
//! read's result (gone, or not yet visible), never an error.

use crate::cloud::imm::ProjectRequest;
use crate::cloud::ram::{
    CreatePolicyRequest, CreateRoleRequest, RamResourceType, RotateStrategy, UpdateRoleRequest,
};
use crate::cloud::{self, Client};
use crate::manifest::{PolicyRef, ProjectKey, ProjectLimits};
use crate::plan::{Op, TagResourceType};
use crate::policy::PolicyDocument;

use super::{OpError, OpErrorKind, OpOutcome, OpRunner, is_transient};

/// Runs plan operations against RAM and IMM.
#[derive(Debug, Clone)]
pub struct CloudOpRunner {
    client: Client,
}

impl CloudOpRunner {
    pub fn new(client: Client) -> Self {
        CloudOpRunner { client }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn resource_type(t: TagResourceType) -> RamResourceType {
    match t {
        TagResourceType::Role => RamResourceType::Role,
        TagResourceType::Policy => RamResourceType::Policy,
    }
}

fn project_request(
    key: &ProjectKey,
    service_role: Option<&String>,
    description: Option<&String>,
    template_id: Option<&String>,
    limits: &ProjectLimits,
    tags: Option<&crate::manifest::Tags>,
) -> ProjectRequest {
    ProjectRequest {
        project_name: key.name.clone(),
        description: description.cloned(),
        service_role: service_role.cloned(),
        template_id: template_id.cloned(),
        project_max_dataset_count: limits.project_max_dataset_count,
        dataset_max_bind_count: limits.dataset_max_bind_count,
        dataset_max_file_count: limits.dataset_max_file_count,
        dataset_max_entity_count: limits.dataset_max_entity_count,
        dataset_max_relation_count: limits.dataset_max_relation_count,
        dataset_max_total_file_size: limits.dataset_max_total_file_size,
        engine_concurrency: limits.engine_concurrency,
        project_queries_per_second: limits.project_queries_per_second,
        tags: tags.cloned(),
    }
}

/// A client error as the executor sees it, for `op` (or a read of `action` made for it).
fn op_error(op: &Op, action: &str, e: cloud::Error) -> OpError {
    match &e {
        cloud::Error::Api(a) => {
            let mut err = OpError::from_api(
                op,
                Some(a.status),
                a.code.clone(),
                a.message.clone(),
                (!a.request_id.is_empty()).then(|| a.request_id.clone()),
            );
            err.action = action.to_string();
            err
        }
        other => {
            let kind = if other.is_retryable() {
                OpErrorKind::Transient
            } else {
                OpErrorKind::Permanent
            };
            let code = other.metric_label().to_string();
            let request_id = match other {
                cloud::Error::Decode { request_id, .. } if !request_id.is_empty() => {
                    Some(request_id.clone())
                }
                _ => None,
            };
            OpError {
                kind,
                action: action.to_string(),
                http_status: None,
                code,
                message: other.to_string(),
                request_id,
                explanation: None,
            }
        }
    }
}

/// A read made by `confirm` failed: transient failures are retried by the executor, anything
/// else is permanent (the read's "not found" is handled before this).
fn read_error(action: &str, e: cloud::Error) -> OpError {
    let (status, code, message, request_id) = match &e {
        cloud::Error::Api(a) => (
            Some(a.status),
            a.code.clone(),
            a.message.clone(),
            (!a.request_id.is_empty()).then(|| a.request_id.clone()),
        ),
        other => (
            None,
            other.metric_label().to_string(),
            other.to_string(),
            None,
        ),
    };
    let kind = if e.is_retryable() || is_transient(status, &code) {
        OpErrorKind::Transient
    } else {
        OpErrorKind::Permanent
    };
    OpError {
        kind,
        action: action.to_string(),
        http_status: status,
        code,
        message,
        request_id,
        explanation: None,
    }
}

/// `Ok(found)` of a read whose "not found" answer means "absent".
fn found<T>(action: &str, r: cloud::Result<T>) -> Result<Option<T>, OpError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(read_error(action, e)),
    }
}

fn outcome(request_id: String) -> OpOutcome {
    OpOutcome {
        request_id: (!request_id.is_empty()).then_some(request_id),
    }
}

impl CloudOpRunner {
    async fn send(&self, op: &Op) -> cloud::Result<String> {
        let c = &self.client;
        Ok(match op {
            Op::CreatePolicy {
                name,
                description,
                document,
                tags,
            } => {
                c.create_policy(&CreatePolicyRequest {
                    policy_name: name.clone(),
                    policy_document: document.clone(),
                    description: description.clone(),
                    tags: tags.clone(),
                })
                .await?
                .request_id
            }
            Op::DeletePolicyVersion { name, version_id } => {
                c.delete_policy_version(name, version_id).await?.request_id
            }
            Op::CreatePolicyVersion { name, document } => {
                c.create_policy_version(name, document, true, RotateStrategy::None)
                    .await?
                    .request_id
            }
            Op::UpdatePolicyDescription { name, description } => {
                c.update_policy_description(name, description)
                    .await?
                    .request_id
            }
            Op::DeletePolicy { name } => c.delete_policy(name, false).await?.request_id,
            Op::CreateRole {
                name,
                description,
                max_session_duration,
                trust_policy,
                tags,
            } => {
                c.create_role(&CreateRoleRequest {
                    role_name: name.clone(),
                    assume_role_policy_document: trust_policy.clone(),
                    description: description.clone(),
                    max_session_duration: Some(*max_session_duration),
                    tags: tags.clone(),
                })
                .await?
                .request_id
            }
            Op::UpdateRole {
                name,
                trust_policy,
                description,
                max_session_duration,
            } => {
                c.update_role(&UpdateRoleRequest {
                    role_name: name.clone(),
                    new_assume_role_policy_document: trust_policy.clone(),
                    new_description: description.clone(),
                    new_max_session_duration: *max_session_duration,
                })
                .await?
                .request_id
            }
            Op::DeleteRole { name } => c.delete_role(name).await?.request_id,
            Op::AttachPolicyToRole { role, policy } => {
                c.attach_policy_to_role(policy.policy_type.as_str(), &policy.name, role)
                    .await?
                    .request_id
            }
            Op::DetachPolicyFromRole { role, policy } => {
                c.detach_policy_from_role(policy.policy_type.as_str(), &policy.name, role)
                    .await?
                    .request_id
            }
            Op::TagResources {
                resource_type: t,
                name,
                tags,
            } => {
                c.tag_resources(resource_type(*t), std::slice::from_ref(name), tags)
                    .await?
                    .request_id
            }
            Op::UntagResources {
                resource_type: t,
                name,
                keys,
            } => {
                c.untag_resources(resource_type(*t), std::slice::from_ref(name), keys, false)
                    .await?
                    .request_id
            }
            Op::CreateProject {
                key,
                service_role,
                description,
                template_id,
                limits,
                tags,
            } => {
                let req = project_request(
                    key,
                    Some(service_role),
                    description.as_ref(),
                    template_id.as_ref(),
                    limits,
                    Some(tags),
                );
                c.create_project(&key.region, &req).await?.request_id
            }
            Op::UpdateProject {
                key,
                service_role,
                description,
                template_id,
                limits,
                tags,
            } => {
                let req = project_request(
                    key,
                    service_role.as_ref(),
                    description.as_ref(),
                    template_id.as_ref(),
                    limits,
                    tags.as_ref(),
                );
                c.update_project(&key.region, &req).await?.request_id
            }
            Op::DeleteProject { key } => c.delete_project(&key.region, &key.name).await?.request_id,
        })
    }

    async fn role_exists(&self, name: &str) -> Result<bool, OpError> {
        Ok(found("GetRole", self.client.get_role(name).await)?.is_some())
    }

    async fn policy_exists(&self, name: &str) -> Result<bool, OpError> {
        Ok(found("GetPolicy", self.client.get_policy(name, "Custom").await)?.is_some())
    }

    /// `None`: the role is not visible.
    async fn attached(&self, role: &str, policy: &PolicyRef) -> Result<Option<bool>, OpError> {
        let list = found(
            "ListPoliciesForRole",
            self.client.list_policies_for_role(role).await,
        )?;
        Ok(list.map(|r| {
            r.policies.policy.iter().any(|p| {
                p.policy_name == policy.name && p.policy_type == policy.policy_type.as_str()
            })
        }))
    }

    /// `None`: the project is not visible; else its service role.
    async fn project_role(&self, key: &ProjectKey) -> Result<Option<String>, OpError> {
        let p = found(
            "GetProject",
            self.client.get_project(&key.region, &key.name, false).await,
        )?;
        Ok(p.map(|r| r.project.service_role))
    }
}

/// Our tags are all there with our values (other tags do not matter).
fn has_tags(live: &[(String, String)], want: &crate::manifest::Tags) -> bool {
    want.iter()
        .all(|(k, v)| live.iter().any(|(lk, lv)| lk == k && lv == v))
}

/// Two documents as RAM holds them: equal in canonical form (never by text).
fn same_document(live: Option<&str>, planned: &str) -> bool {
    match (
        live.map(PolicyDocument::from_json_str),
        PolicyDocument::from_json_str(planned),
    ) {
        (Some(Ok(live)), Ok(planned)) => live.semantically_eq(&planned),
        _ => false,
    }
}

impl CloudOpRunner {
    /// A custom policy's description and default document as RAM holds them (`GetPolicy`);
    /// `None` when the policy is not there.
    async fn policy_as_held(
        &self,
        name: &str,
    ) -> Result<Option<(String, Option<String>)>, OpError> {
        let live = found("GetPolicy", self.client.get_policy(name, "Custom").await)?;
        Ok(live.map(|p| {
            let document = p.default_policy_version.and_then(|v| v.policy_document);
            (p.policy.description, document)
        }))
    }

    /// The tags of a role or policy (`ListTagResources`, the API that reports them all).
    async fn ram_tags(
        &self,
        resource_type: RamResourceType,
        name: &str,
    ) -> Result<Vec<(String, String)>, OpError> {
        let rows = self
            .client
            .list_tag_resources_all(resource_type, &[name.to_string()])
            .await
            .map_err(|e| read_error("ListTagResources", e))?;
        Ok(rows
            .into_iter()
            .filter(|r| r.resource_name == name)
            .map(|r| (r.tag_key, r.tag_value))
            .collect())
    }
}

impl OpRunner for CloudOpRunner {
    async fn run(&self, op: &Op) -> Result<OpOutcome, OpError> {
        let action = super::op_name(op);
        match self.send(op).await {
            Ok(request_id) => Ok(outcome(request_id)),
            Err(e) => Err(op_error(op, action, e)),
        }
    }

    async fn confirm(&self, op: &Op) -> Result<bool, OpError> {
        match op {
            Op::AttachPolicyToRole { role, policy } => {
                Ok(self.attached(role, policy).await? == Some(true))
            }
            Op::DetachPolicyFromRole { role, policy } => {
                Ok(self.attached(role, policy).await? != Some(true))
            }
            Op::DeleteRole { name } => Ok(!self.role_exists(name).await?),
            Op::DeletePolicy { name } => Ok(!self.policy_exists(name).await?),
            Op::DeletePolicyVersion { name, version_id } => {
                let list = found(
                    "ListPolicyVersions",
                    self.client.list_policy_versions(name, "Custom").await,
                )?;
                Ok(list.is_none_or(|r| {
                    !r.policy_versions
                        .policy_version
                        .iter()
                        .any(|v| &v.version_id == version_id)
                }))
            }
            Op::DeleteProject { key } => Ok(self.project_role(key).await?.is_none()),
            Op::CreateProject {
                key, service_role, ..
            } => Ok(self.project_role(key).await?.as_ref() == Some(service_role)),
            Op::UpdateProject {
                key, service_role, ..
            } => {
                let live = self.project_role(key).await?;
                Ok(match service_role {
                    Some(want) => live.as_ref() == Some(want),
                    None => live.is_some(),
                })
            }
            Op::CreateRole { name, .. } | Op::UpdateRole { name, .. } => {
                self.role_exists(name).await
            }
            Op::TagResources {
                resource_type,
                name,
                ..
            }
            | Op::UntagResources {
                resource_type,
                name,
                ..
            } => match resource_type {
                TagResourceType::Role => self.role_exists(name).await,
                TagResourceType::Policy => self.policy_exists(name).await,
            },
            Op::CreatePolicy { name, .. }
            | Op::CreatePolicyVersion { name, .. }
            | Op::UpdatePolicyDescription { name, .. } => self.policy_exists(name).await,
        }
    }

    async fn created(&self, op: &Op) -> Result<bool, OpError> {
        match op {
            Op::CreateRole {
                name,
                description,
                max_session_duration,
                trust_policy,
                tags,
            } => {
                let Some(live) = found("GetRole", self.client.get_role(name).await)? else {
                    return Ok(false);
                };
                let role = live.role;
                let as_planned = role.description == description.as_deref().unwrap_or("")
                    && role
                        .max_session_duration
                        .is_none_or(|m| m == i64::from(*max_session_duration))
                    && same_document(role.assume_role_policy_document.as_deref(), trust_policy);
                Ok(
                    as_planned
                        && has_tags(&self.ram_tags(RamResourceType::Role, name).await?, tags),
                )
            }
            Op::CreatePolicy {
                name,
                description,
                document,
                tags,
            } => {
                let Some((live_description, live_document)) = self.policy_as_held(name).await?
                else {
                    return Ok(false);
                };
                let as_planned = live_description == description.as_deref().unwrap_or("")
                    && same_document(live_document.as_deref(), document);
                Ok(as_planned
                    && has_tags(&self.ram_tags(RamResourceType::Policy, name).await?, tags))
            }
            Op::CreateProject {
                key,
                service_role,
                tags,
                ..
            } => {
                let Some(live) = found(
                    "GetProject",
                    self.client.get_project(&key.region, &key.name, false).await,
                )?
                else {
                    return Ok(false);
                };
                let project = live.project;
                let live_tags: Vec<(String, String)> = project
                    .tags
                    .into_iter()
                    .map(|t| (t.tag_key, t.tag_value))
                    .collect();
                Ok(&project.service_role == service_role && has_tags(&live_tags, tags))
            }
            // Retried after a failure that may have carried it out: the planned document
            // is the default version already (it was not when planned).
            Op::CreatePolicyVersion { name, document } => Ok(self
                .policy_as_held(name)
                .await?
                .is_some_and(|(_, live)| same_document(live.as_deref(), document))),
            _ => Ok(false),
        }
    }
}
