//! Test-only: an in-memory model of RAM and IMM behind [`OpRunner`], answering with the real
//! error codes, with injectable faults:
//!
//! - `fail_next(action, code, status, n)`: the next `n` calls of `action` fail before doing
//!   anything (throttling, permanent errors);
//! - `lose_reply_next(action, code, status, n)`: the next `n` calls are *applied*, then answer
//!   with an error (a timeout after the server acted: the retry then sees "already done");
//! - `invisible_after_create(n)`: a role or policy just created is invisible to the next `n`
//!   attach / IMM calls naming it (`EntityNotExist.*`);
//! - `stale_project_reads(n)`: the next `n` GetProject reads after a project write still show
//!   the old service role;
//! - `latency`: every call sleeps (tokio time, so tests can pause it);
//! - `with_quotas(limits)`: every call first waits for its action's token bucket, as the real
//!   client does ([`crate::cloud::ratelimit`]), so scheduling across quotas can be tested;
//! - `cancel_after(n, token)`: cancel `token` when the n-th call starts (the call completes).
//!
//! It records every call, and the most calls that were ever in flight at once.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{OpError, OpOutcome, OpRunner, op_name};
use crate::cloud::Product;
use crate::cloud::ratelimit::{RateLimiter, RateLimits};
use crate::manifest::{IMM_DEFAULT_ROLE, PolicyRef, PolicyType, ProjectKey, Tags};
use crate::plan::{Op, TagResourceType};

#[derive(Debug, Clone, Default)]
pub struct FakeRole {
    pub attachments: BTreeSet<PolicyRef>,
    pub tags: Tags,
    pub description: Option<String>,
    pub trust_policy: String,
    pub max_session_duration: u32,
}

#[derive(Debug, Clone, Default)]
pub struct FakePolicy {
    /// (version number, is default), oldest first.
    pub versions: Vec<(u32, bool)>,
    pub next_version: u32,
    pub tags: Tags,
    pub description: Option<String>,
    pub document: String,
}

#[derive(Debug, Clone, Default)]
pub struct FakeProject {
    pub service_role: String,
    pub tags: Tags,
    pub description: Option<String>,
}

#[derive(Debug, Default)]
pub struct FakeState {
    pub roles: BTreeMap<String, FakeRole>,
    pub policies: BTreeMap<String, FakePolicy>,
    pub projects: BTreeMap<ProjectKey, FakeProject>,
    pub system_policies: BTreeSet<String>,
    /// Every call, as `Action target`, in the order they started.
    pub calls: Vec<String>,
    pub in_flight: usize,
    pub max_in_flight: usize,
    fail_next: HashMap<&'static str, VecDeque<(String, u16)>>,
    lose_reply_next: HashMap<&'static str, VecDeque<(String, u16)>>,
    invisible_after_create: u32,
    /// `role:<name>` / `policy:<name>` -> calls left during which it is invisible.
    invisible: HashMap<String, u32>,
    stale_project_reads: u32,
    /// Service role a stale GetProject still shows, per project.
    stale_service_role: HashMap<ProjectKey, (String, u32)>,
    cancel_after: Option<(usize, CancellationToken)>,
}

#[derive(Debug, Default)]
pub struct FakeCloud {
    pub state: Mutex<FakeState>,
    pub latency: Duration,
    pub quotas: Option<RateLimiter>,
}

type Answer = Result<(), (String, u16)>;

fn err(code: &str, status: u16) -> Answer {
    Err((code.to_string(), status))
}

impl FakeCloud {
    pub fn new() -> Self {
        let cloud = FakeCloud::default();
        cloud
            .state()
            .system_policies
            .insert("ReadOnlyAccess".into());
        cloud
    }

    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    pub fn with_quotas(mut self, limits: RateLimits) -> Self {
        self.quotas = Some(RateLimiter::new(limits));
        self
    }

    pub fn state(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap()
    }

    pub fn fail_next(&self, action: &'static str, code: &str, status: u16, n: usize) {
        let mut s = self.state();
        let q = s.fail_next.entry(action).or_default();
        q.extend(std::iter::repeat_n((code.to_string(), status), n));
    }

    pub fn lose_reply_next(&self, action: &'static str, code: &str, status: u16, n: usize) {
        let mut s = self.state();
        let q = s.lose_reply_next.entry(action).or_default();
        q.extend(std::iter::repeat_n((code.to_string(), status), n));
    }

    pub fn invisible_after_create(&self, n: u32) {
        self.state().invisible_after_create = n;
    }

    pub fn stale_project_reads(&self, n: u32) {
        self.state().stale_project_reads = n;
    }

    pub fn cancel_after(&self, calls: usize, token: CancellationToken) {
        self.state().cancel_after = Some((calls, token));
    }

    pub fn calls(&self) -> Vec<String> {
        self.state().calls.clone()
    }

    /// Calls of one action, in order.
    pub fn calls_of(&self, action: &str) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.split(' ').next() == Some(action))
            .collect()
    }

    pub fn add_role(&self, name: &str, attachments: &[PolicyRef]) {
        self.state().roles.insert(
            name.into(),
            FakeRole {
                attachments: attachments.iter().cloned().collect(),
                ..Default::default()
            },
        );
    }

    pub fn add_policy(&self, name: &str, versions: u32) {
        let versions: Vec<(u32, bool)> = (1..=versions).map(|v| (v, v == versions)).collect();
        let next_version = versions.len() as u32 + 1;
        self.state().policies.insert(
            name.into(),
            FakePolicy {
                versions,
                next_version,
                ..Default::default()
            },
        );
    }

    fn target(op: &Op) -> String {
        match op {
            Op::CreatePolicy { name, .. }
            | Op::DeletePolicyVersion { name, .. }
            | Op::CreatePolicyVersion { name, .. }
            | Op::UpdatePolicyDescription { name, .. }
            | Op::DeletePolicy { name }
            | Op::CreateRole { name, .. }
            | Op::UpdateRole { name, .. }
            | Op::DeleteRole { name }
            | Op::TagResources { name, .. }
            | Op::UntagResources { name, .. } => name.clone(),
            Op::AttachPolicyToRole { role, policy } | Op::DetachPolicyFromRole { role, policy } => {
                format!("{role}/{}/{}", policy.policy_type, policy.name)
            }
            Op::CreateProject { key, .. }
            | Op::UpdateProject { key, .. }
            | Op::DeleteProject { key } => key.to_string(),
        }
    }

    /// Consume one "invisible" call for `key`, answering `code` if it is still invisible.
    fn invisible(s: &mut FakeState, key: String) -> bool {
        match s.invisible.get_mut(&key) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }

    fn apply(s: &mut FakeState, op: &Op) -> Answer {
        match op {
            Op::CreatePolicy {
                name,
                description,
                document,
                tags,
            } => {
                if s.policies.contains_key(name) {
                    return err("EntityAlreadyExists.Policy", 409);
                }
                s.policies.insert(
                    name.clone(),
                    FakePolicy {
                        versions: vec![(1, true)],
                        next_version: 2,
                        tags: tags.clone(),
                        description: description.clone(),
                        document: document.clone(),
                    },
                );
                let n = s.invisible_after_create;
                s.invisible.insert(format!("policy:{name}"), n);
                Ok(())
            }
            Op::CreatePolicyVersion { name, document } => {
                let Some(p) = s.policies.get_mut(name) else {
                    return err("EntityNotExist.Policy", 404);
                };
                if p.versions.len() >= 5 {
                    return err("LimitExceeded.Policy.Version", 409);
                }
                for v in &mut p.versions {
                    v.1 = false;
                }
                p.versions.push((p.next_version, true));
                p.next_version += 1;
                p.document = document.clone();
                Ok(())
            }
            Op::DeletePolicyVersion { name, version_id } => {
                let Some(p) = s.policies.get_mut(name) else {
                    return err("EntityNotExist.Policy", 404);
                };
                let Some(pos) = p
                    .versions
                    .iter()
                    .position(|(v, _)| format!("v{v}") == *version_id)
                else {
                    return err("EntityNotExist.Policy.Version", 404);
                };
                if p.versions[pos].1 {
                    return err("DeleteConflict.Policy.Version.Default", 409);
                }
                p.versions.remove(pos);
                Ok(())
            }
            Op::UpdatePolicyDescription { name, description } => {
                let Some(p) = s.policies.get_mut(name) else {
                    return err("EntityNotExist.Policy", 404);
                };
                p.description = Some(description.clone());
                Ok(())
            }
            Op::DeletePolicy { name } => {
                if !s.policies.contains_key(name) {
                    return err("EntityNotExist.Policy", 404);
                }
                let attached = s.roles.values().any(|r| {
                    r.attachments
                        .iter()
                        .any(|a| a.policy_type == PolicyType::Custom && a.name == *name)
                });
                if attached {
                    return err("DeleteConflict.Role.Policy", 409);
                }
                if s.policies[name].versions.len() > 1 {
                    return err("DeleteConflict.Policy.Version", 409);
                }
                s.policies.remove(name);
                Ok(())
            }
            Op::CreateRole {
                name,
                description,
                max_session_duration,
                trust_policy,
                tags,
            } => {
                if s.roles.contains_key(name) {
                    return err("EntityAlreadyExists.Role", 409);
                }
                s.roles.insert(
                    name.clone(),
                    FakeRole {
                        attachments: BTreeSet::new(),
                        tags: tags.clone(),
                        description: description.clone(),
                        trust_policy: trust_policy.clone(),
                        max_session_duration: *max_session_duration,
                    },
                );
                let n = s.invisible_after_create;
                s.invisible.insert(format!("role:{name}"), n);
                Ok(())
            }
            Op::UpdateRole {
                name,
                trust_policy,
                description,
                max_session_duration,
            } => {
                let Some(r) = s.roles.get_mut(name) else {
                    return err("EntityNotExist.Role", 404);
                };
                if let Some(t) = trust_policy {
                    r.trust_policy = t.clone();
                }
                if let Some(d) = description {
                    r.description = Some(d.clone());
                }
                if let Some(m) = max_session_duration {
                    r.max_session_duration = *m;
                }
                Ok(())
            }
            Op::DeleteRole { name } => {
                let Some(r) = s.roles.get(name) else {
                    return err("EntityNotExist.Role", 404);
                };
                if !r.attachments.is_empty() {
                    return err("DeleteConflict.Role.Policy", 409);
                }
                s.roles.remove(name);
                Ok(())
            }
            Op::AttachPolicyToRole { role, policy } => {
                if Self::invisible(s, format!("role:{role}")) || !s.roles.contains_key(role) {
                    return err("EntityNotExist.Role", 404);
                }
                let policy_exists = match policy.policy_type {
                    PolicyType::System => s.system_policies.contains(&policy.name),
                    PolicyType::Custom => {
                        !Self::invisible(s, format!("policy:{}", policy.name))
                            && s.policies.contains_key(&policy.name)
                    }
                };
                if !policy_exists {
                    return err("EntityNotExist.Policy", 404);
                }
                let r = s.roles.get_mut(role).unwrap();
                if !r.attachments.insert(policy.clone()) {
                    return err("EntityAlreadyExists.Role.Policy", 409);
                }
                Ok(())
            }
            Op::DetachPolicyFromRole { role, policy } => {
                let Some(r) = s.roles.get_mut(role) else {
                    return err("EntityNotExist.Role", 404);
                };
                if !r.attachments.remove(policy) {
                    return err("EntityNotExist.Role.Policy", 404);
                }
                Ok(())
            }
            Op::TagResources {
                resource_type,
                name,
                tags,
            } => {
                let target = match resource_type {
                    TagResourceType::Role => s.roles.get_mut(name).map(|r| &mut r.tags),
                    TagResourceType::Policy => s.policies.get_mut(name).map(|p| &mut p.tags),
                };
                let Some(t) = target else {
                    return err(not_exist(*resource_type), 404);
                };
                t.extend(tags.clone());
                Ok(())
            }
            Op::UntagResources {
                resource_type,
                name,
                keys,
            } => {
                let target = match resource_type {
                    TagResourceType::Role => s.roles.get_mut(name).map(|r| &mut r.tags),
                    TagResourceType::Policy => s.policies.get_mut(name).map(|p| &mut p.tags),
                };
                let Some(t) = target else {
                    return err(not_exist(*resource_type), 404);
                };
                for k in keys {
                    t.remove(k);
                }
                Ok(())
            }
            Op::CreateProject {
                key,
                service_role,
                description,
                tags,
                ..
            } => {
                if s.projects.contains_key(key) {
                    return err("ResourceAlreadyExists", 409);
                }
                Self::check_service_role(s, service_role)?;
                s.projects.insert(
                    key.clone(),
                    FakeProject {
                        service_role: service_role.clone(),
                        tags: tags.clone(),
                        description: description.clone(),
                    },
                );
                Self::mark_stale(s, key, String::new());
                Ok(())
            }
            Op::UpdateProject {
                key,
                service_role,
                description,
                tags,
                ..
            } => {
                if !s.projects.contains_key(key) {
                    return err("ResourceNotFound", 404);
                }
                if let Some(role) = service_role {
                    Self::check_service_role(s, role)?;
                }
                let p = s.projects.get_mut(key).unwrap();
                let old = p.service_role.clone();
                if let Some(role) = service_role {
                    p.service_role = role.clone();
                }
                if let Some(d) = description {
                    p.description = Some(d.clone());
                }
                if let Some(t) = tags {
                    p.tags = t.clone();
                }
                Self::mark_stale(s, key, old);
                Ok(())
            }
            Op::DeleteProject { key } => {
                if s.projects.remove(key).is_none() {
                    return err("ResourceNotFound", 404);
                }
                Ok(())
            }
        }
    }

    fn check_service_role(s: &mut FakeState, role: &str) -> Answer {
        if role == IMM_DEFAULT_ROLE {
            return Ok(());
        }
        if Self::invisible(s, format!("role:{role}")) || !s.roles.contains_key(role) {
            return err("EntityNotExist.Role", 404);
        }
        Ok(())
    }

    fn mark_stale(s: &mut FakeState, key: &ProjectKey, old_role: String) {
        if s.stale_project_reads > 0 {
            let n = s.stale_project_reads;
            s.stale_service_role.insert(key.clone(), (old_role, n));
        }
    }

    fn read(s: &mut FakeState, op: &Op) -> bool {
        match op {
            Op::AttachPolicyToRole { role, policy } => s
                .roles
                .get(role)
                .is_some_and(|r| r.attachments.contains(policy)),
            Op::DetachPolicyFromRole { role, policy } => s
                .roles
                .get(role)
                .is_none_or(|r| !r.attachments.contains(policy)),
            Op::DeleteRole { name } => !s.roles.contains_key(name),
            Op::DeletePolicy { name } => !s.policies.contains_key(name),
            Op::DeletePolicyVersion { name, version_id } => s.policies.get(name).is_none_or(|p| {
                !p.versions
                    .iter()
                    .any(|(v, _)| format!("v{v}") == *version_id)
            }),
            Op::DeleteProject { key } => !s.projects.contains_key(key),
            Op::CreateProject {
                key, service_role, ..
            }
            | Op::UpdateProject {
                key,
                service_role: Some(service_role),
                ..
            } => {
                let seen = match s.stale_service_role.get_mut(key) {
                    Some((old, n)) if *n > 0 => {
                        *n -= 1;
                        Some(old.clone())
                    }
                    _ => s.projects.get(key).map(|p| p.service_role.clone()),
                };
                seen.as_deref() == Some(service_role.as_str())
            }
            Op::UpdateProject { key, .. } => s.projects.contains_key(key),
            Op::CreateRole { name, .. } | Op::UpdateRole { name, .. } => s.roles.contains_key(name),
            Op::CreatePolicy { name, .. }
            | Op::CreatePolicyVersion { name, .. }
            | Op::UpdatePolicyDescription { name, .. } => s.policies.contains_key(name),
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
                TagResourceType::Role => s.roles.contains_key(name),
                TagResourceType::Policy => s.policies.contains_key(name),
            },
        }
    }
}

fn not_exist(t: TagResourceType) -> &'static str {
    match t {
        TagResourceType::Role => "EntityNotExist.Role",
        TagResourceType::Policy => "EntityNotExist.Policy",
    }
}

impl OpRunner for FakeCloud {
    async fn run(&self, op: &Op) -> Result<OpOutcome, OpError> {
        let action = op_name(op);
        if let Some(q) = &self.quotas {
            let product = if action.contains("Project") {
                Product::Imm
            } else {
                Product::Ram
            };
            q.acquire(product, action).await;
        }
        let n = {
            let mut s = self.state();
            s.calls.push(format!("{action} {}", Self::target(op)));
            s.in_flight += 1;
            s.max_in_flight = s.max_in_flight.max(s.in_flight);
            if let Some((after, token)) = &s.cancel_after
                && s.calls.len() >= *after
            {
                token.cancel();
            }
            s.calls.len()
        };
        tokio::time::sleep(self.latency).await;
        let mut s = self.state();
        s.in_flight -= 1;
        let request_id = Some(format!("REQ-{n}"));
        if let Some((code, status)) = s.fail_next.get_mut(action).and_then(|q| q.pop_front()) {
            return Err(OpError::from_api(
                op,
                Some(status),
                code,
                "injected",
                request_id,
            ));
        }
        let lost = s
            .lose_reply_next
            .get_mut(action)
            .and_then(|q| q.pop_front());
        match Self::apply(&mut s, op) {
            Ok(()) => match lost {
                Some((code, status)) => Err(OpError::from_api(
                    op,
                    Some(status),
                    code,
                    "reply lost",
                    request_id,
                )),
                None => Ok(OpOutcome { request_id }),
            },
            Err((code, status)) => Err(OpError::from_api(
                op,
                Some(status),
                code,
                "from the fake",
                request_id,
            )),
        }
    }

    async fn confirm(&self, op: &Op) -> Result<bool, OpError> {
        tokio::time::sleep(self.latency).await;
        let mut s = self.state();
        s.calls
            .push(format!("Confirm{} {}", op_name(op), Self::target(op)));
        Ok(Self::read(&mut s, op))
    }

    async fn created(&self, op: &Op) -> Result<bool, OpError> {
        tokio::time::sleep(self.latency).await;
        let mut s = self.state();
        s.calls
            .push(format!("Created{} {}", op_name(op), Self::target(op)));
        let ours = |live: &Tags, want: &Tags| want.iter().all(|(k, v)| live.get(k) == Some(v));
        Ok(match op {
            Op::CreateRole {
                name,
                description,
                max_session_duration,
                trust_policy,
                tags,
            } => s.roles.get(name).is_some_and(|r| {
                ours(&r.tags, tags)
                    && &r.description == description
                    && r.max_session_duration == *max_session_duration
                    && &r.trust_policy == trust_policy
            }),
            Op::CreatePolicy {
                name,
                description,
                document,
                tags,
            } => s.policies.get(name).is_some_and(|p| {
                ours(&p.tags, tags) && &p.description == description && &p.document == document
            }),
            Op::CreateProject {
                key,
                service_role,
                tags,
                ..
            } => s
                .projects
                .get(key)
                .is_some_and(|p| ours(&p.tags, tags) && &p.service_role == service_role),
            _ => false,
        })
    }
}
