//! Cloud -> [`Live`]: the only async part of `live`. Reads exactly what the planner needs, with
//! the fewest calls the API allows, concurrently (the client rate-limits each action and
//! bounds the HTTP requests in flight).
//!
//! # What is read
//!
//! Phase 1, account-wide lists (all concurrent):
//! - `ListRoles` (`MaxItems=1000`): every role name, plus description, max session duration,
//!   ARN and tags of each (list items embed `Tags.Tag[]`; reference §3.2, §7.18).
//! - `ListPolicies` without `PolicyType` (`MaxItems=1000`): every custom and System policy
//!   name, plus description, default version, attachment count and tags of each custom one.
//! - `ListProjects` per region of [`Scope::regions`] (`MaxResults=200`): full project objects,
//!   tags and limits included (reference §4.3), so no `GetProject` is needed.
//!
//! Phase 2, per resource, only for resources that are declared or carry
//! `immctl-owner=<owner>` (all concurrent):
//! - role: `GetRole` (the trust policy is not in list items) and `ListPoliciesForRole`
//!   (attachments). Roles named `Aliyun*` are never read in full: the planner never touches
//!   them (it needs only their names).
//! - custom policy: `ListPolicyVersions`, which returns every version *with its document*
//!   (reference §3.4), so it gives the default document and the version list (rotation,
//!   prune) in one call; `GetPolicy` is sent only if the default version's document is
//!   missing from that answer (never against the emulator).
//! - System policy named by a declared role: `GetPolicy` (`PolicyType=System`) for its
//!   default document (for the lints), when it exists.
//!
//! The account id is taken from a role ARN (`acs:ram::<account>:role/<name>`) of the
//! `ListRoles` answer; only an account with no role at all costs an STS `GetCallerIdentity`.
//!
//! Tags come from the list answers: `ListTagResources` is never called.
//!
//! # The minimum-call formula for a no-op reconcile
//!
//! With `R` roles and `C` custom + `S` System policies in the account, `P_g` projects in
//! scanned region `g`, `Rs` roles read in full (declared or owned, existing, not `Aliyun*`),
//! `Cs` custom policies read in full (declared or owned, existing) and `Ss` System policies
//! named by declared roles that exist:
//!
//! ```text
//! ListRoles           = max(1, ceil(R / 1000))
//! ListPolicies        = max(1, ceil((C + S) / 1000))
//! ListProjects        = Σ_g max(1, ceil(P_g / 200))
//! GetRole             = Rs
//! ListPoliciesForRole = Rs
//! ListPolicyVersions  = Cs
//! GetPolicy           = Ss
//! GetCallerIdentity   = 1 if R = 0, else 0
//! total               = ListRoles + ListPolicies + ListProjects + 2·Rs + Cs + Ss (+1)
//! ```
//!
//! This is the minimum the API allows: a trust policy is only in `GetRole`, attachments only
//! in `ListPoliciesForRole` (`ListEntitiesForPolicy` per policy would cost the same or more),
//! and a policy's document and version count only in a per-policy call. Retries of faulted
//! calls come on top. `tests/integration/live.rs` checks the formula against the emulator's
//! per-action counts.
//!
//! # Everything mode (`immctl import`)
//!
//! With [`Scope::everything`], phase 2 reads every role and custom policy the selection
//! admits (kind included, name starts with the prefix) that carries no owner tag or ours, and
//! no owned resource outside the selection (import has no use for it). Never read: `Aliyun*` roles, roles the list marks as
//! service-linked, and resources tagged by another owner; the last are returned by
//! [`fetch_all`] in [`Fetched::other_owners`] (from the list answers, at no extra call), so
//! the caller can report them. The formula above holds with `Rs` / `Cs` counting those reads;
//! `ListProjects` is sent only for [`Scope::regions`] (empty when projects are not wanted).
//!
//! # Consistency
//!
//! A resource listed but gone by the time it is read (`EntityNotExist.*`) is treated as
//! absent. Projects are listed only in [`Scope::regions`]: an owned project in another region
//! is invisible to this fetch (and so never pruned, and its service role not known as used).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::model::{Live, LivePolicy, LivePolicyVersion, LiveProject, LiveRole, OWNER_TAG_KEY};
use crate::cloud::wire::{Policy, PolicyVersion, Project, Role};
use crate::cloud::{self, Client};
use crate::manifest::{Address, Desired, PolicyRef, PolicyType, ProjectKey, Tags};
use crate::policy::PolicyDocument;

/// `MaxItems` of `ListRoles` / `ListPolicies` pages (the API's maximum).
pub const RAM_PAGE: u32 = 1000;
/// `MaxResults` of `ListProjects` pages (the API's maximum).
pub const IMM_PAGE: u32 = 200;
/// Per-resource reads in flight at once, per kind (roles, custom policies, System policies),
/// so the reads of one kind, waiting on their actions' quotas, never hold every slot while
/// another kind's actions (with quotas of their own) could run. The client bounds HTTP
/// requests further.
const MAX_READS_IN_FLIGHT: usize = 32;

/// What to read: the names the manifests declare, the owner, and where to look for projects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    /// The `immctl-owner` value whose resources are read in full even when not declared.
    pub owner: String,
    /// Declared role names.
    pub roles: BTreeSet<String>,
    /// Declared custom policy names.
    pub policies: BTreeSet<String>,
    /// Regions to list IMM projects in (declared ones plus the default).
    pub regions: BTreeSet<String>,
    /// Declared projects.
    pub projects: BTreeSet<ProjectKey>,
    /// System policies named by declared roles (documents fetched for the lints).
    pub system_policies: BTreeSet<String>,
    /// `immctl import`: also read every unowned role / custom policy this selects.
    pub everything: Option<Everything>,
}

/// Which undeclared, unowned resources [`Scope::everything`] reads in full.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Everything {
    /// Read roles (never `Aliyun*` or service-linked ones).
    pub roles: bool,
    /// Read custom policies.
    pub policies: bool,
    /// Only names starting with this (empty: every name).
    pub prefix: String,
}

impl Everything {
    fn selects(&self, kind_wanted: bool, name: &str) -> bool {
        kind_wanted && name.starts_with(&self.prefix)
    }
}

/// What [`fetch_all`] read: the live state, plus the resources the selection of
/// [`Scope::everything`] admits but that carry another owner's tag (not read in full).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Fetched {
    pub live: Live,
    /// `ram_role.*` / `ram_policy.*` address -> the other owner's tag value.
    pub other_owners: BTreeMap<Address, String>,
}

impl Scope {
    pub fn from_desired(desired: &Desired, owner: &str, default_region: &str) -> Scope {
        let mut regions: BTreeSet<String> =
            desired.projects.keys().map(|k| k.region.clone()).collect();
        regions.insert(default_region.to_string());
        Scope {
            owner: owner.to_string(),
            roles: desired.roles.keys().cloned().collect(),
            policies: desired.policies.keys().cloned().collect(),
            regions,
            projects: desired.projects.keys().cloned().collect(),
            system_policies: desired
                .roles
                .values()
                .flat_map(|r| r.policies.iter())
                .filter(|p| p.policy_type == PolicyType::System)
                .map(|p| p.name.clone())
                .collect(),
            everything: None,
        }
    }

    fn owns(&self, tags: &Tags) -> bool {
        tags.get(OWNER_TAG_KEY) == Some(&self.owner)
    }
}

/// A read failed. Names the action and the address (`ram_role.*` for an account-wide list).
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The API call failed (after the client's retries).
    #[error("{action} {address}: {}", source.detail())]
    Read {
        action: &'static str,
        address: String,
        #[source]
        source: Box<cloud::Error>,
    },
    /// A document the cloud returned is not JSON.
    #[error("{action} {address}: the {what} returned is not valid JSON: {source}")]
    Document {
        action: &'static str,
        address: String,
        what: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

impl FetchError {
    /// The underlying cloud error, when the API answered or the transport failed.
    pub fn cloud(&self) -> Option<&cloud::Error> {
        match self {
            FetchError::Read { source, .. } => Some(source.as_ref()),
            FetchError::Document { .. } => None,
        }
    }
}

pub type Result<T, E = FetchError> = std::result::Result<T, E>;

fn read_err(
    action: &'static str,
    address: impl Into<String>,
) -> impl FnOnce(cloud::Error) -> FetchError {
    let address = address.into();
    move |source| FetchError::Read {
        action,
        address,
        source: Box::new(source),
    }
}

fn document(
    text: &str,
    action: &'static str,
    address: &Address,
    what: &'static str,
) -> Result<PolicyDocument> {
    PolicyDocument::from_json_str(text).map_err(|source| FetchError::Document {
        action,
        address: address.to_string(),
        what,
        source,
    })
}

/// `acs:ram::<account>:role/<name>` -> `<account>`.
fn account_from_arn(arn: &str) -> Option<String> {
    let rest = arn.strip_prefix("acs:ram::")?;
    let (account, _) = rest.split_once(':')?;
    (!account.is_empty()).then(|| account.to_string())
}

fn version_number(id: &str) -> u64 {
    id.trim_start_matches('v').parse().unwrap_or(u64::MAX)
}

/// The result of one per-resource read.
enum Read {
    /// `(name, role)`; `None` when it vanished between list and read.
    Role(String, Option<LiveRole>),
    /// `(name, policy)`; `None` when it vanished between list and read.
    Policy(String, Option<LivePolicy>),
    SystemDocument(String, Option<PolicyDocument>),
}

/// Read the live state `scope` needs. See the module docs for what is read and the call count.
pub async fn fetch(client: &Client, scope: &Scope) -> Result<Live> {
    fetch_all(client, scope).await.map(|f| f.live)
}

/// [`fetch`], also returning what the lists showed of resources owned by others (see
/// [`Fetched`]); for `immctl import`, which reports them.
pub async fn fetch_all(client: &Client, scope: &Scope) -> Result<Fetched> {
    let mut other_owners = BTreeMap::new();
    // Phase 1: the account-wide lists, concurrently.
    let roles_f = async {
        client
            .list_roles_all(RAM_PAGE)
            .await
            .map_err(read_err("ListRoles", "ram_role.*"))
    };
    let policies_f = async {
        client
            .list_policies_all(None, RAM_PAGE)
            .await
            .map_err(read_err("ListPolicies", "ram_policy.*"))
    };
    let projects_f = async {
        let mut set = JoinSet::new();
        for region in &scope.regions {
            let c = client.clone();
            let region = region.clone();
            set.spawn(async move {
                let r = list_projects(&c, &region).await;
                (region, r)
            });
        }
        let mut out: Vec<(String, Vec<Project>)> = Vec::new();
        while let Some(joined) = set.join_next().await {
            let (region, r) = joined.expect("a list task never panics");
            out.push((
                region.clone(),
                r.map_err(read_err("ListProjects", format!("imm_project.{region}/*")))?,
            ));
        }
        Ok::<_, FetchError>(out)
    };
    let (roles, policies, projects) = tokio::try_join!(roles_f, policies_f, projects_f)?;

    let mut live = Live {
        account_id: roles.iter().find_map(|r| account_from_arn(&r.arn)),
        ..Live::default()
    };
    if live.account_id.is_none() {
        let id = client
            .get_caller_identity()
            .await
            .map_err(read_err("GetCallerIdentity", "account"))?;
        live.account_id = Some(id.account_id);
    }
    for (region, list) in projects {
        for p in list {
            let lp = live_project(&region, p);
            live.projects.insert(
                ProjectKey {
                    region: lp.region.clone(),
                    name: lp.name.clone(),
                },
                lp,
            );
        }
    }
    live.role_names = roles.iter().map(|r| r.role_name.clone()).collect();
    let mut custom: BTreeMap<String, Policy> = BTreeMap::new();
    for p in policies {
        let policy_type = match p.policy_type.as_str() {
            "System" => PolicyType::System,
            _ => PolicyType::Custom,
        };
        live.policy_names.insert(PolicyRef {
            policy_type,
            name: p.policy_name.clone(),
        });
        if policy_type == PolicyType::Custom {
            custom.insert(p.policy_name.clone(), p);
        }
    }

    // Phase 2: per-resource reads of what is declared or ours, concurrently.
    let [role_permits, policy_permits, system_permits] =
        [(); 3].map(|()| Arc::new(Semaphore::new(MAX_READS_IN_FLIGHT)));
    let mut set: JoinSet<Result<Read>> = JoinSet::new();
    for r in roles {
        let tags = r.tag_map();
        let protected = r.role_name.starts_with("Aliyun");
        let mut wanted = scope.roles.contains(&r.role_name)
            || (scope.owns(&tags)
                && (scope.everything.as_ref()).is_none_or(|e| e.selects(e.roles, &r.role_name)));
        if let Some(e) = &scope.everything
            && e.selects(e.roles, &r.role_name)
            && !protected
            && r.is_service_linked_role != Some(true)
        {
            match tags.get(OWNER_TAG_KEY) {
                None => wanted = true,
                Some(o) if *o != scope.owner => {
                    other_owners.insert(Address::role(&r.role_name), o.clone());
                }
                Some(_) => {}
            }
        }
        if !wanted || protected {
            continue;
        }
        let (c, permits) = (client.clone(), role_permits.clone());
        set.spawn(async move {
            let _p = permits.acquire_owned().await.expect("never closed");
            let name = r.role_name.clone();
            read_role(&c, r, tags).await.map(|r| Read::Role(name, r))
        });
    }
    for (name, p) in custom {
        let tags = p.tag_map();
        let mut wanted = scope.policies.contains(&name)
            || (scope.owns(&tags)
                && (scope.everything.as_ref()).is_none_or(|e| e.selects(e.policies, &name)));
        if let Some(e) = &scope.everything
            && e.selects(e.policies, &name)
        {
            match tags.get(OWNER_TAG_KEY) {
                None => wanted = true,
                Some(o) if *o != scope.owner => {
                    other_owners.insert(Address::policy(&name), o.clone());
                }
                Some(_) => {}
            }
        }
        if !wanted {
            continue;
        }
        let (c, permits) = (client.clone(), policy_permits.clone());
        set.spawn(async move {
            let _p = permits.acquire_owned().await.expect("never closed");
            let lp = read_policy(&c, p, tags).await?;
            Ok(Read::Policy(name, lp))
        });
    }
    for name in &scope.system_policies {
        let pref = PolicyRef {
            policy_type: PolicyType::System,
            name: name.clone(),
        };
        if !live.policy_names.contains(&pref) {
            continue;
        }
        let (c, permits, name) = (client.clone(), system_permits.clone(), name.clone());
        set.spawn(async move {
            let _p = permits.acquire_owned().await.expect("never closed");
            let doc = read_system_document(&c, &name).await?;
            Ok(Read::SystemDocument(name, doc))
        });
    }
    let mut first_error = None;
    while let Some(joined) = set.join_next().await {
        let read = match joined {
            Ok(read) => read,
            // Aborted after an earlier failure.
            Err(e) if e.is_cancelled() => continue,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        };
        match read {
            Ok(Read::Role(_, Some(r))) => {
                live.roles.insert(r.name.clone(), r);
            }
            Ok(Read::Role(name, None)) => {
                live.role_names.remove(&name);
            }
            Ok(Read::Policy(_, Some(p))) => {
                live.policies.insert(p.name.clone(), p);
            }
            Ok(Read::Policy(name, None)) => {
                live.policy_names.remove(&PolicyRef {
                    policy_type: PolicyType::Custom,
                    name,
                });
            }
            Ok(Read::SystemDocument(name, Some(doc))) => {
                live.system_policy_documents.insert(name, doc);
            }
            Ok(Read::SystemDocument(_, None)) => {}
            Err(e) => {
                // Stop starting reads; report the first failure once the rest are done.
                set.abort_all();
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    Ok(Fetched { live, other_owners })
}

async fn list_projects(c: &Client, region: &str) -> cloud::Result<Vec<Project>> {
    c.list_projects_all(region, IMM_PAGE).await
}

async fn read_role(c: &Client, listed: Role, tags: Tags) -> Result<Option<LiveRole>> {
    let name = listed.role_name.clone();
    let address = Address::role(&name);
    let role = match c.get_role(&name).await {
        Ok(r) => r.role,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(read_err("GetRole", address.to_string())(e)),
    };
    let attachments = match c.list_policies_for_role(&name).await {
        Ok(r) => r.policies.policy,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(read_err("ListPoliciesForRole", address.to_string())(e)),
    };
    let trust_text = role.assume_role_policy_document.as_deref().unwrap_or("{}");
    let trust_policy = document(trust_text, "GetRole", &address, "trust policy")?;
    let max_session = role
        .max_session_duration
        .or(listed.max_session_duration)
        .unwrap_or(3600);
    Ok(Some(LiveRole {
        name,
        role_id: role.role_id,
        arn: role.arn,
        description: role.description,
        max_session_duration: u32::try_from(max_session).unwrap_or(3600),
        trust_policy,
        attachments: attachments.into_iter().map(policy_ref).collect(),
        tags,
        service_linked: role
            .is_service_linked_role
            .or(listed.is_service_linked_role)
            .unwrap_or(false),
    }))
}

async fn read_policy(c: &Client, listed: Policy, tags: Tags) -> Result<Option<LivePolicy>> {
    let name = listed.policy_name.clone();
    let address = Address::policy(&name);
    let mut versions: Vec<PolicyVersion> = match c.list_policy_versions(&name, "Custom").await {
        Ok(r) => r.policy_versions.policy_version,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(read_err("ListPolicyVersions", address.to_string())(e)),
    };
    versions.sort_by_key(|v| version_number(&v.version_id));
    let default = versions.iter().find(|v| v.is_default_version);
    let default_version = default
        .map(|v| v.version_id.clone())
        .unwrap_or_else(|| listed.default_version.clone());
    let (text, action) = match default.and_then(|v| v.policy_document.clone()) {
        Some(t) => (t, "ListPolicyVersions"),
        None => {
            // The answer lacked the document: ask for it (never happens on the emulator).
            let r = match c.get_policy(&name, "Custom").await {
                Ok(r) => r,
                Err(e) if e.is_not_found() => return Ok(None),
                Err(e) => return Err(read_err("GetPolicy", address.to_string())(e)),
            };
            let text = r
                .default_policy_version
                .and_then(|v| v.policy_document)
                .unwrap_or_else(|| "{}".to_string());
            (text, "GetPolicy")
        }
    };
    let document = document(&text, action, &address, "policy document")?;
    Ok(Some(LivePolicy {
        name,
        description: listed.description,
        default_version,
        document,
        versions: versions
            .into_iter()
            .map(|v| LivePolicyVersion {
                is_default: v.is_default_version,
                version_id: v.version_id,
                create_date: v.create_date,
            })
            .collect(),
        attachment_count: listed
            .attachment_count
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0),
        tags,
    }))
}

async fn read_system_document(c: &Client, name: &str) -> Result<Option<PolicyDocument>> {
    let address = Address::policy(name);
    let r = match c.get_policy(name, "System").await {
        Ok(r) => r,
        Err(e) if e.is_not_found() => return Ok(None),
        Err(e) => return Err(read_err("GetPolicy", address.to_string())(e)),
    };
    match r.default_policy_version.and_then(|v| v.policy_document) {
        Some(text) => document(&text, "GetPolicy", &address, "policy document").map(Some),
        None => Ok(None),
    }
}

fn live_project(region: &str, p: Project) -> LiveProject {
    let tags = p.tag_map();
    LiveProject {
        region: region.to_string(),
        name: p.project_name,
        service_role: p.service_role,
        description: p.description,
        template_id: p.template_id,
        project_queries_per_second: p.project_queries_per_second,
        engine_concurrency: p.engine_concurrency,
        project_max_dataset_count: p.project_max_dataset_count,
        dataset_max_bind_count: p.dataset_max_bind_count,
        dataset_max_file_count: p.dataset_max_file_count,
        dataset_max_entity_count: p.dataset_max_entity_count,
        dataset_max_relation_count: p.dataset_max_relation_count,
        dataset_max_total_file_size: p.dataset_max_total_file_size,
        tags,
    }
}

/// A policy as RAM lists it (`ListPoliciesFor*`) -> the reference attachments use.
pub(crate) fn policy_ref(p: cloud::wire::Policy) -> PolicyRef {
    PolicyRef {
        policy_type: if p.policy_type == "System" {
            PolicyType::System
        } else {
            PolicyType::Custom
        },
        name: p.policy_name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::testing::{desired, desired_project, desired_role, policy_ref};

    #[test]
    fn scope_names_what_is_declared_and_the_default_region() {
        let mut j = desired_project("media", "svc");
        j.region = "cn-beijing".into();
        let d = desired(
            vec![],
            vec![desired_role(
                "svc",
                &[
                    policy_ref(PolicyType::System, "AliyunOSSReadOnlyAccess"),
                    policy_ref(PolicyType::Custom, "mine"),
                ],
            )],
            vec![j],
        );
        let s = Scope::from_desired(&d, "team", "cn-hangzhou");
        assert_eq!(s.owner, "team");
        assert_eq!(
            s.regions.iter().map(String::as_str).collect::<Vec<_>>(),
            ["cn-beijing", "cn-hangzhou"]
        );
        assert_eq!(
            s.system_policies
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            ["AliyunOSSReadOnlyAccess"]
        );
        assert!(s.roles.contains("svc") && s.policies.is_empty());
    }

    #[test]
    fn account_comes_from_a_role_arn() {
        assert_eq!(
            account_from_arn("acs:ram::1234567890123456:role/x").as_deref(),
            Some("1234567890123456")
        );
        assert_eq!(account_from_arn("nonsense"), None);
    }

    #[test]
    fn fetch_error_names_action_address_code_and_request_id() {
        let e = FetchError::Read {
            action: "GetRole",
            address: "ram_role.deployer".into(),
            source: Box::new(cloud::Error::from(cloud::ApiError {
                action: "GetRole".into(),
                status: 503,
                code: "ServiceUnavailable".into(),
                message: "down".into(),
                request_id: "6A1F".into(),
                host_id: None,
                recommend: None,
                access_denied_detail: None,
                retry_after: None,
            })),
        };
        assert_eq!(
            e.to_string(),
            "GetRole ram_role.deployer: 503 ServiceUnavailable: down (RequestId 6A1F)"
        );
    }
}
