//! `diff(&Desired, &Live, &PlanSettings) -> Plan`: the planner.
//!
//! Pure and deterministic: no I/O, clock, randomness or environment. Every map is a
//! `BTreeMap`, so the same inputs give the same plan, byte for byte.
//!
//! The rules (DESIGN.md §3), in the order the planner applies them:
//!
//! - **Ownership.** A resource is ours when it carries `immctl-owner=<owner>`. A declared
//!   resource that exists without any owner tag is left alone (finding `P001`) unless
//!   adoption is asked for (`--adopt` or `spec.adopt: true`); a resource tagged by *another*
//!   owner is left alone (finding `P002`) unless that resource's own manifest says
//!   `spec.adopt: true`. The global `--adopt` never takes a resource from another repo,
//!   because two repos declaring one name is a conflict a human must resolve.
//!   An adopted resource gets one `Adopt` change: the owner tag first, then the ops that
//!   bring its other fields in line.
//! - **Protected.** `Aliyun*` roles and service-linked roles are never created, changed or
//!   deleted (a declared one is finding `P003`, an error). System policies are never in
//!   `Desired::policies` or `Live::policies`; attaching one to a managed role is fine.
//! - **Tags** are authoritative for managed resources, except keys starting with `aliyun`,
//!   `acs:`, `http://`, `https://` (cloud-managed; terraform ignores them too). The desired
//!   tags always include `immctl-owner=<owner>`, and `immctl-deletion-policy=Retain` for
//!   resources declared with `deletionPolicy: Retain`.
//! - **Unmanaged fields.** A description, template id or IMM limit that the manifest leaves
//!   out (`None`) is not managed: whatever is live stays.
//! - **Policy documents** are compared semantically ([`PolicyDocument`] equality). A change
//!   is a `CreatePolicyVersion` (set as default). When the policy already holds
//!   [`MAX_POLICY_VERSIONS`] versions, the oldest non-default version is deleted first, as an
//!   op of the same change with reason `version_rotation`, so the reviewer sees it.
//! - **Attachments** of a managed role are authoritative: missing ones are attached, extra
//!   ones detached. Each is its own change at `ram_role_policy.<role>/<Type>/<policy>`.
//! - **Prune** (only with `settings.prune`) deletes live resources that carry our owner tag,
//!   are not declared, and do not carry `immctl-deletion-policy=Retain`. It refuses (error
//!   finding, no deletes at all) when nothing is declared, or when it would delete more than
//!   `max_deletions` roles/policies/projects without `allow_mass_delete`. A policy still
//!   named by a declared role, or attached to something immctl does not manage, and a role
//!   still used by a project immctl keeps, are not pruned (finding `P007`).
//! - **Order.** Parents are created first and children deleted first; see [`super::order`].

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};

use super::fingerprint::{LiveResource, fingerprint, live_fingerprints};
use super::model::*;
use super::order::{Phase, order};
use crate::live::{Live, LivePolicy, LiveProject, LiveRole, OWNER_TAG_KEY};
use crate::manifest::{
    Address, DeletionPolicy, Desired, DesiredPolicy, DesiredProject, DesiredRole, PolicyRef,
    PolicyType, ProjectKey, ProjectLimits, Tags,
};
use crate::policy::PolicyDocument;

/// RAM keeps at most this many versions of a custom policy, the default included.
pub const MAX_POLICY_VERSIONS: usize = 5;

pub use crate::manifest::{RETAIN_TAG_KEY, RETAIN_TAG_VALUE, is_protected_role_name};

/// Tag keys managed by the cloud itself; never diffed, never removed.
pub const IGNORED_TAG_PREFIXES: &[&str] = &["aliyun", "acs:", "http://", "https://"];

/// Finding codes produced by the planner (`crate::lint` owns the `IMM*` codes).
pub mod codes {
    /// Declared resource exists without any owner tag; not adopted.
    pub const UNOWNED: &str = "P001";
    /// Declared resource carries another owner's tag.
    pub const OTHER_OWNER: &str = "P002";
    /// Declared resource is protected (`Aliyun*` or service-linked role).
    pub const PROTECTED: &str = "P003";
    /// Prune refused: the manifests declare nothing.
    pub const PRUNE_EMPTY: &str = "P004";
    /// Prune refused: too many deletions.
    pub const PRUNE_MASS_DELETE: &str = "P005";
    /// A role attaches a policy that is neither declared nor live.
    pub const UNKNOWN_POLICY: &str = "P006";
    /// A prune candidate is kept because something immctl keeps still uses it.
    pub const PRUNE_BLOCKED: &str = "P007";
    /// Owned resource no longer declared (prune is off).
    pub const ORPHAN: &str = "P008";
    /// Owned, undeclared resource kept because it carries the Retain tag.
    pub const RETAINED: &str = "P009";
    // The IMM service-role findings (`IMM*`, including the default-role and unknown-role
    // ones that used to be here) belong to `crate::lint`: one owner per code.
}

/// True for tag keys the cloud manages (see [`IGNORED_TAG_PREFIXES`]).
pub fn is_ignored_tag(key: &str) -> bool {
    IGNORED_TAG_PREFIXES.iter().any(|p| key.starts_with(p))
}

/// The tags immctl wants on a managed resource: the user's, the owner tag, and the Retain
/// marker when asked for.
pub fn desired_tags(user: &Tags, deletion_policy: DeletionPolicy, owner: &str) -> Tags {
    let mut tags = user.clone();
    tags.insert(OWNER_TAG_KEY.to_string(), owner.to_string());
    match deletion_policy {
        DeletionPolicy::Retain => {
            tags.insert(RETAIN_TAG_KEY.to_string(), RETAIN_TAG_VALUE.to_string());
        }
        DeletionPolicy::Delete => {
            tags.remove(RETAIN_TAG_KEY);
        }
    }
    tags
}

/// Plan the changes that take `live` to `desired`. See the module docs for the rules.
pub fn diff(desired: &Desired, live: &Live, settings: &PlanSettings) -> Plan {
    let mut p = Planner {
        desired,
        live,
        settings,
        drafts: BTreeMap::new(),
        findings: Vec::new(),
        managed_roles: BTreeSet::new(),
        managed_projects: BTreeSet::new(),
    };
    for dp in desired.policies.values() {
        p.plan_policy(dp);
    }
    for dr in desired.roles.values() {
        p.plan_role(dr);
    }
    for dj in desired.projects.values() {
        p.plan_project(dj);
    }
    p.plan_prune();
    p.link();
    let Planner {
        drafts, findings, ..
    } = p;
    let drafts = select_targets(drafts, &settings.targets);
    let changes = order(drafts);
    let expanded_from = expansion_origins(desired, &changes);
    Plan {
        format_version: FORMAT_VERSION,
        settings: settings.clone(),
        changes,
        findings,
        manifest_digest: desired.digest.clone(),
        manifest_files: desired.file_digests.clone(),
        live_fingerprints: live_fingerprints(live),
        expanded_from,
        default_region: None,
        account_id: None,
    }
}

/// For each change at a resource an `ImmServiceRole` expanded into (its role, its policy,
/// the attachment between them), the manifest it comes from.
fn expansion_origins(desired: &Desired, changes: &[Change]) -> BTreeMap<Address, ExpandedFrom> {
    let origin = |from: &Option<String>, source: &crate::manifest::Source| {
        from.as_ref().map(|name| ExpandedFrom {
            kind: "ImmServiceRole".to_string(),
            name: name.clone(),
            source: source.to_string(),
        })
    };
    changes
        .iter()
        .filter_map(|c| {
            let a = c.address.as_str();
            let found = if let Some(name) = a.strip_prefix("ram_policy.") {
                desired
                    .policies
                    .get(name)
                    .and_then(|p| origin(&p.expanded_from, &p.source))
            } else if let Some(name) = a.strip_prefix("ram_role.") {
                desired
                    .roles
                    .get(name)
                    .and_then(|r| origin(&r.expanded_from, &r.source))
            } else if let Some(rest) = a.strip_prefix("ram_role_policy.") {
                let role = rest.split('/').next().unwrap_or(rest);
                desired
                    .roles
                    .get(role)
                    .and_then(|r| origin(&r.expanded_from, &r.source))
            } else {
                None
            };
            found.map(|o| (c.address.clone(), o))
        })
        .collect()
}

/// A change before ordering, with the phase that breaks ties in the order.
#[derive(Debug, Clone)]
pub(crate) struct Draft {
    pub phase: Phase,
    pub change: Change,
}

/// How the planner treats a declared resource.
enum Stance {
    /// Does not exist: create it.
    Create,
    /// Ours (or being adopted, with the reason): bring it in line.
    Manage { adopting: Option<Reason> },
    /// Not ours and not adopted: hands off.
    Skip,
}

struct Planner<'a> {
    desired: &'a Desired,
    live: &'a Live,
    settings: &'a PlanSettings,
    drafts: BTreeMap<Address, Draft>,
    findings: Vec<Finding>,
    /// Roles whose attachments this plan manages (declared and ours, created or adopted).
    managed_roles: BTreeSet<String>,
    /// Declared projects this plan manages (created, ours, or adopted).
    managed_projects: BTreeSet<ProjectKey>,
}

fn reason(code: &str, message: impl Into<String>) -> Reason {
    Reason {
        code: code.to_string(),
        message: message.into(),
    }
}

fn owner_of(tags: &Tags) -> Option<&str> {
    tags.get(OWNER_TAG_KEY).map(String::as_str)
}

fn is_retained(tags: &Tags) -> bool {
    tags.get(RETAIN_TAG_KEY).map(String::as_str) == Some(RETAIN_TAG_VALUE)
}

/// The differences between desired tags and the live ones that immctl manages.
#[derive(Debug, Default)]
struct TagDiff {
    set: Tags,
    remove: Vec<String>,
}

impl TagDiff {
    fn new(desired: &Tags, live: &Tags) -> Self {
        let set: Tags = desired
            .iter()
            .filter(|(k, v)| live.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let remove = live
            .keys()
            .filter(|k| !is_ignored_tag(k) && !desired.contains_key(*k))
            .cloned()
            .collect();
        TagDiff { set, remove }
    }
    fn is_empty(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }
    fn message(&self) -> String {
        let mut parts = Vec::new();
        if !self.set.is_empty() {
            parts.push(format!(
                "set {}",
                self.set.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
        if !self.remove.is_empty() {
            parts.push(format!("remove {}", self.remove.join(", ")));
        }
        format!("tags differ: {}", parts.join("; "))
    }
}

/// Desired tags plus the live cloud-managed ones (which stay): what the resource will carry.
fn tags_after(desired: &Tags, live: &Tags) -> Tags {
    let mut t: Tags = live
        .iter()
        .filter(|(k, _)| is_ignored_tag(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    t.extend(desired.iter().map(|(k, v)| (k.clone(), v.clone())));
    t
}

fn tag_ops(resource_type: TagResourceType, name: &str, d: &TagDiff) -> Vec<Op> {
    let mut ops = Vec::new();
    if !d.set.is_empty() {
        ops.push(Op::TagResources {
            resource_type,
            name: name.to_string(),
            tags: d.set.clone(),
        });
    }
    if !d.remove.is_empty() {
        ops.push(Op::UntagResources {
            resource_type,
            name: name.to_string(),
            keys: d.remove.clone(),
        });
    }
    ops
}

/// Display form of a policy (what `before` / `after` hold).
pub(crate) fn policy_view(
    name: &str,
    description: Option<&str>,
    document: &PolicyDocument,
    tags: &Tags,
) -> Value {
    json!({
        "name": name,
        "description": description,
        "document": document.canonical(),
        "tags": tags,
    })
}

fn live_policy_view(lp: &LivePolicy) -> Value {
    let mut v = policy_view(&lp.name, Some(&lp.description), &lp.document, &lp.tags);
    v["versions"] = json!(
        lp.versions
            .iter()
            .map(|x| if x.is_default {
                format!("{} (default)", x.version_id)
            } else {
                x.version_id.clone()
            })
            .collect::<Vec<_>>()
    );
    v
}

pub(crate) fn role_view(
    name: &str,
    description: Option<&str>,
    max_session_duration: u32,
    trust_policy: &PolicyDocument,
    tags: &Tags,
) -> Value {
    json!({
        "name": name,
        "description": description,
        "max_session_duration": max_session_duration,
        "trust_policy": trust_policy.canonical(),
        "tags": tags,
    })
}

fn live_role_view(lr: &LiveRole) -> Value {
    let mut v = role_view(
        &lr.name,
        Some(&lr.description),
        lr.max_session_duration,
        &lr.trust_policy,
        &lr.tags,
    );
    if lr.service_linked {
        v["service_linked"] = json!(true);
    }
    v
}

/// Field names of the IMM limits, in `ProjectLimits` order, with accessors.
pub(crate) type LimitField = (
    &'static str,
    fn(&ProjectLimits) -> Option<i64>,
    fn(&LiveProject) -> i64,
);

pub(crate) const LIMIT_FIELDS: [LimitField; 8] = [
    (
        "project_queries_per_second",
        |l| l.project_queries_per_second,
        |p| p.project_queries_per_second,
    ),
    (
        "engine_concurrency",
        |l| l.engine_concurrency,
        |p| p.engine_concurrency,
    ),
    (
        "project_max_dataset_count",
        |l| l.project_max_dataset_count,
        |p| p.project_max_dataset_count,
    ),
    (
        "dataset_max_bind_count",
        |l| l.dataset_max_bind_count,
        |p| p.dataset_max_bind_count,
    ),
    (
        "dataset_max_file_count",
        |l| l.dataset_max_file_count,
        |p| p.dataset_max_file_count,
    ),
    (
        "dataset_max_entity_count",
        |l| l.dataset_max_entity_count,
        |p| p.dataset_max_entity_count,
    ),
    (
        "dataset_max_relation_count",
        |l| l.dataset_max_relation_count,
        |p| p.dataset_max_relation_count,
    ),
    (
        "dataset_max_total_file_size",
        |l| l.dataset_max_total_file_size,
        |p| p.dataset_max_total_file_size,
    ),
];

/// Sets one limit by field name (used to build partial `UpdateProject` limits).
fn set_limit(l: &mut ProjectLimits, field: &str, v: i64) {
    let slot = match field {
        "project_queries_per_second" => &mut l.project_queries_per_second,
        "engine_concurrency" => &mut l.engine_concurrency,
        "project_max_dataset_count" => &mut l.project_max_dataset_count,
        "dataset_max_bind_count" => &mut l.dataset_max_bind_count,
        "dataset_max_file_count" => &mut l.dataset_max_file_count,
        "dataset_max_entity_count" => &mut l.dataset_max_entity_count,
        "dataset_max_relation_count" => &mut l.dataset_max_relation_count,
        "dataset_max_total_file_size" => &mut l.dataset_max_total_file_size,
        _ => return,
    };
    *slot = Some(v);
}

fn live_project_view(lp: &LiveProject) -> Value {
    let mut v = json!({
        "region": lp.region,
        "name": lp.name,
        "service_role": lp.service_role,
        "description": lp.description,
        "template_id": lp.template_id,
        "tags": lp.tags,
    });
    for (field, _, get) in LIMIT_FIELDS {
        v[field] = json!(get(lp));
    }
    v
}

fn desired_project_view(dj: &DesiredProject, tags: &Tags) -> Value {
    let mut v = json!({
        "region": dj.region,
        "name": dj.name,
        "service_role": dj.service_role,
        "description": dj.description,
        "template_id": dj.template_id,
        "tags": tags,
    });
    for (field, get, _) in LIMIT_FIELDS {
        v[field] = json!(get(&dj.limits));
    }
    v
}

fn attachment_view(role: &str, policy: &PolicyRef, role_owner: Option<&str>) -> Value {
    let mut v = json!({
        "role": role,
        "policy_type": policy.policy_type,
        "policy_name": policy.name,
    });
    if let Some(o) = role_owner {
        // Evidence for `check`: the role this attachment hangs on is ours.
        v["role_owner"] = json!(o);
    }
    v
}

fn version_number(id: &str) -> u64 {
    id.trim_start_matches('v').parse().unwrap_or(u64::MAX)
}

/// The version RAM would drop first: the oldest non-default one.
pub fn oldest_non_default_version(lp: &LivePolicy) -> Option<&str> {
    lp.versions
        .iter()
        .filter(|v| !v.is_default)
        .min_by_key(|v| version_number(&v.version_id))
        .map(|v| v.version_id.as_str())
}

impl Planner<'_> {
    fn owner(&self) -> &str {
        &self.settings.owner
    }

    fn finding(
        &mut self,
        code: &str,
        severity: Severity,
        address: &Address,
        message: String,
        fix: Option<&str>,
    ) {
        self.findings.push(Finding {
            code: code.to_string(),
            severity,
            address: address.clone(),
            message,
            fix: fix.map(str::to_string),
        });
    }

    fn add(&mut self, phase: Phase, change: Change) {
        self.drafts
            .entry(change.address.clone())
            .or_insert(Draft { phase, change });
    }

    /// Ownership decision for a declared resource (see module docs).
    fn stance(&mut self, address: &Address, live_tags: Option<&Tags>, spec_adopt: bool) -> Stance {
        let Some(tags) = live_tags else {
            return Stance::Create;
        };
        let owner = self.owner().to_string();
        match owner_of(tags) {
            Some(o) if o == owner => Stance::Manage { adopting: None },
            None if self.settings.adopt || spec_adopt => Stance::Manage {
                adopting: Some(reason(
                    "adopt",
                    format!("exists without an owner tag; adopting (tag {OWNER_TAG_KEY}={owner})"),
                )),
            },
            None => {
                self.finding(
                    codes::UNOWNED,
                    Severity::Warning,
                    address,
                    format!("exists without the {OWNER_TAG_KEY} tag; immctl leaves it unchanged"),
                    Some("adopt it with --adopt or `spec.adopt: true`, or rename the resource"),
                );
                Stance::Skip
            }
            Some(other) => {
                let other = other.to_string();
                if spec_adopt {
                    self.finding(
                        codes::OTHER_OWNER,
                        Severity::Warning,
                        address,
                        format!(
                            "owned by \"{other}\"; `spec.adopt: true` takes it over for \"{owner}\""
                        ),
                        Some("make sure the other repo no longer declares it"),
                    );
                    Stance::Manage {
                        adopting: Some(reason(
                            "adopt",
                            format!("taking over from owner \"{other}\" (spec.adopt)"),
                        )),
                    }
                } else {
                    self.finding(
                        codes::OTHER_OWNER,
                        Severity::Warning,
                        address,
                        format!("owned by \"{other}\" (not \"{owner}\"); immctl leaves it unchanged"),
                        Some(
                            "remove it from one of the repos, or set `spec.adopt: true` on it to take it over",
                        ),
                    );
                    Stance::Skip
                }
            }
        }
    }

    fn plan_policy(&mut self, dp: &DesiredPolicy) {
        let address = Address::policy(&dp.name);
        let live = self.live.policies.get(&dp.name);
        let want_tags = desired_tags(&dp.tags, dp.deletion_policy, self.owner());
        match self.stance(&address, live.map(|l| &l.tags), dp.adopt) {
            Stance::Skip => {}
            Stance::Create => self.add(
                Phase::CreateParents,
                Change {
                    address,
                    action: Action::Create,
                    reasons: vec![reason("missing", "does not exist")],
                    before: None,
                    after: Some(policy_view(
                        &dp.name,
                        dp.description.as_deref(),
                        &dp.document,
                        &want_tags,
                    )),
                    live_fingerprint: None,
                    depends_on: vec![],
                    ops: vec![Op::CreatePolicy {
                        name: dp.name.clone(),
                        description: dp.description.clone(),
                        document: dp.document.to_wire(),
                        tags: want_tags,
                    }],
                },
            ),
            Stance::Manage { adopting } => {
                let lp = live.expect("Manage implies live");
                let mut reasons = Vec::new();
                let action = if adopting.is_some() {
                    Action::Adopt
                } else {
                    Action::Update
                };
                reasons.extend(adopting);
                let td = TagDiff::new(&want_tags, &lp.tags);
                let mut ops = tag_ops(TagResourceType::Policy, &dp.name, &td);
                if !td.is_empty() {
                    reasons.push(reason("tags", td.message()));
                }
                if dp.document != lp.document {
                    if lp.versions.len() >= MAX_POLICY_VERSIONS
                        && let Some(oldest) = oldest_non_default_version(lp)
                    {
                        reasons.push(reason(
                            "version_rotation",
                            format!(
                                "{} versions exist (the limit); delete the oldest non-default version {oldest} first",
                                lp.versions.len()
                            ),
                        ));
                        ops.push(Op::DeletePolicyVersion {
                            name: dp.name.clone(),
                            version_id: oldest.to_string(),
                        });
                    }
                    reasons.push(reason(
                        "document",
                        format!(
                            "document differs from the default version {}",
                            lp.default_version
                        ),
                    ));
                    ops.push(Op::CreatePolicyVersion {
                        name: dp.name.clone(),
                        document: dp.document.to_wire(),
                    });
                }
                if let Some(d) = &dp.description
                    && *d != lp.description
                {
                    reasons.push(reason("description", "description differs"));
                    ops.push(Op::UpdatePolicyDescription {
                        name: dp.name.clone(),
                        description: d.clone(),
                    });
                }
                if ops.is_empty() {
                    return;
                }
                let after = policy_view(
                    &dp.name,
                    Some(dp.description.as_deref().unwrap_or(&lp.description)),
                    &dp.document,
                    &tags_after(&want_tags, &lp.tags),
                );
                self.add(
                    Phase::CreateParents,
                    Change {
                        address,
                        action,
                        reasons,
                        before: Some(live_policy_view(lp)),
                        after: Some(after),
                        live_fingerprint: Some(fingerprint(LiveResource::Policy(lp))),
                        depends_on: vec![],
                        ops,
                    },
                );
            }
        }
    }

    fn plan_role(&mut self, dr: &DesiredRole) {
        let address = Address::role(&dr.name);
        let live = self.live.roles.get(&dr.name);
        if is_protected_role_name(&dr.name) || live.is_some_and(|l| l.service_linked) {
            self.finding(
                codes::PROTECTED,
                Severity::Error,
                &address,
                "is a cloud-service or service-linked role; immctl never creates, changes or deletes it".to_string(),
                Some("remove it from the manifests (projects and attachments may still name it)"),
            );
            return;
        }
        let want_tags = desired_tags(&dr.tags, dr.deletion_policy, self.owner());
        match self.stance(&address, live.map(|l| &l.tags), dr.adopt) {
            Stance::Skip => return,
            Stance::Create => self.add(
                Phase::CreateParents,
                Change {
                    address,
                    action: Action::Create,
                    reasons: vec![reason("missing", "does not exist")],
                    before: None,
                    after: Some(role_view(
                        &dr.name,
                        dr.description.as_deref(),
                        dr.max_session_duration,
                        &dr.trust_policy,
                        &want_tags,
                    )),
                    live_fingerprint: None,
                    depends_on: vec![],
                    ops: vec![Op::CreateRole {
                        name: dr.name.clone(),
                        description: dr.description.clone(),
                        max_session_duration: dr.max_session_duration,
                        trust_policy: dr.trust_policy.to_wire(),
                        tags: want_tags,
                    }],
                },
            ),
            Stance::Manage { adopting } => {
                let lr = live.expect("Manage implies live");
                let mut reasons = Vec::new();
                let action = if adopting.is_some() {
                    Action::Adopt
                } else {
                    Action::Update
                };
                reasons.extend(adopting);
                let td = TagDiff::new(&want_tags, &lr.tags);
                let mut ops = tag_ops(TagResourceType::Role, &dr.name, &td);
                if !td.is_empty() {
                    reasons.push(reason("tags", td.message()));
                }
                let mut trust = None;
                let mut description = None;
                let mut max_session = None;
                if dr.trust_policy != lr.trust_policy {
                    reasons.push(reason("trust_policy", "trust policy differs"));
                    trust = Some(dr.trust_policy.to_wire());
                }
                if let Some(d) = &dr.description
                    && *d != lr.description
                {
                    reasons.push(reason("description", "description differs"));
                    description = Some(d.clone());
                }
                if dr.max_session_duration != lr.max_session_duration {
                    reasons.push(reason(
                        "max_session_duration",
                        format!(
                            "max session duration {} -> {}",
                            lr.max_session_duration, dr.max_session_duration
                        ),
                    ));
                    max_session = Some(dr.max_session_duration);
                }
                if trust.is_some() || description.is_some() || max_session.is_some() {
                    ops.push(Op::UpdateRole {
                        name: dr.name.clone(),
                        trust_policy: trust,
                        description,
                        max_session_duration: max_session,
                    });
                }
                if !ops.is_empty() {
                    let after = role_view(
                        &dr.name,
                        Some(dr.description.as_deref().unwrap_or(&lr.description)),
                        dr.max_session_duration,
                        &dr.trust_policy,
                        &tags_after(&want_tags, &lr.tags),
                    );
                    self.add(
                        Phase::CreateParents,
                        Change {
                            address,
                            action,
                            reasons,
                            before: Some(live_role_view(lr)),
                            after: Some(after),
                            live_fingerprint: Some(fingerprint(LiveResource::Role(lr))),
                            depends_on: vec![],
                            ops,
                        },
                    );
                }
            }
        }
        self.managed_roles.insert(dr.name.clone());
        self.plan_attachments(dr, live);
    }

    fn policy_exists(&self, p: &PolicyRef) -> bool {
        match p.policy_type {
            PolicyType::Custom => {
                self.desired.policies.contains_key(&p.name)
                    || self.live.policies.contains_key(&p.name)
                    || self.live.policy_names.contains(p)
            }
            PolicyType::System => self.live.policy_names.contains(p),
        }
    }

    fn plan_attachments(&mut self, dr: &DesiredRole, live: Option<&LiveRole>) {
        let empty = BTreeSet::new();
        let live_att = live.map(|l| &l.attachments).unwrap_or(&empty);
        let role_owner = live.and_then(|l| owner_of(&l.tags)).map(str::to_string);
        for p in dr.policies.difference(live_att) {
            let address = Address::attachment(&dr.name, p);
            if !self.policy_exists(p) {
                self.finding(
                    codes::UNKNOWN_POLICY,
                    Severity::Error,
                    &address,
                    format!(
                        "{} policy \"{}\" is neither declared nor present in the account",
                        p.policy_type, p.name
                    ),
                    Some("declare the policy, fix its name, or fix its type (Custom | System)"),
                );
            }
            self.add(
                Phase::Attach,
                Change {
                    address,
                    action: Action::Create,
                    reasons: vec![reason("missing", "declared attachment is missing")],
                    before: None,
                    after: Some(attachment_view(&dr.name, p, None)),
                    live_fingerprint: None,
                    depends_on: vec![],
                    ops: vec![Op::AttachPolicyToRole {
                        role: dr.name.clone(),
                        policy: p.clone(),
                    }],
                },
            );
        }
        for p in live_att.difference(&dr.policies) {
            self.add_detach(
                &dr.name,
                p,
                role_owner.as_deref(),
                reason("not_declared", "attached live but not declared on the role"),
            );
        }
    }

    fn add_detach(&mut self, role: &str, p: &PolicyRef, role_owner: Option<&str>, why: Reason) {
        let address = Address::attachment(role, p);
        let fp = fingerprint(LiveResource::Attachment { role, policy: p });
        self.add(
            Phase::Detach,
            Change {
                address,
                action: Action::Delete,
                reasons: vec![why],
                before: Some(attachment_view(role, p, role_owner)),
                after: None,
                live_fingerprint: Some(fp),
                depends_on: vec![],
                ops: vec![Op::DetachPolicyFromRole {
                    role: role.to_string(),
                    policy: p.clone(),
                }],
            },
        );
    }

    fn plan_project(&mut self, dj: &DesiredProject) {
        let key = dj.key();
        let address = Address::project(&key);
        let live = self.live.projects.get(&key);
        let want_tags = desired_tags(&dj.tags, dj.deletion_policy, self.owner());
        let stance = self.stance(&address, live.map(|l| &l.tags), dj.adopt);
        if !matches!(stance, Stance::Skip) {
            self.managed_projects.insert(key.clone());
        }
        match stance {
            Stance::Skip => {}
            Stance::Create => self.add(
                Phase::Projects,
                Change {
                    address,
                    action: Action::Create,
                    reasons: vec![reason("missing", "does not exist")],
                    before: None,
                    after: Some(desired_project_view(dj, &want_tags)),
                    live_fingerprint: None,
                    depends_on: vec![],
                    ops: vec![Op::CreateProject {
                        key,
                        service_role: dj.service_role.clone(),
                        description: dj.description.clone(),
                        template_id: dj.template_id.clone(),
                        limits: dj.limits.clone(),
                        tags: want_tags,
                    }],
                },
            ),
            Stance::Manage { adopting } => {
                let lp = live.expect("Manage implies live");
                let mut reasons = Vec::new();
                let action = if adopting.is_some() {
                    Action::Adopt
                } else {
                    Action::Update
                };
                reasons.extend(adopting);
                let mut after = live_project_view(lp);
                let mut service_role = None;
                let mut description = None;
                let mut template_id = None;
                let mut limits = ProjectLimits::default();
                let mut tags = None;
                let td = TagDiff::new(&want_tags, &lp.tags);
                if !td.is_empty() {
                    reasons.push(reason("tags", td.message()));
                    let full = tags_after(&want_tags, &lp.tags);
                    after["tags"] = json!(full);
                    tags = Some(full);
                }
                if dj.service_role != lp.service_role {
                    reasons.push(reason(
                        "service_role",
                        format!("service role {} -> {}", lp.service_role, dj.service_role),
                    ));
                    after["service_role"] = json!(dj.service_role);
                    service_role = Some(dj.service_role.clone());
                }
                if let Some(d) = &dj.description
                    && *d != lp.description
                {
                    reasons.push(reason("description", "description differs"));
                    after["description"] = json!(d);
                    description = Some(d.clone());
                }
                if let Some(t) = &dj.template_id
                    && *t != lp.template_id
                {
                    reasons.push(reason(
                        "template_id",
                        format!("template id \"{}\" -> \"{t}\"", lp.template_id),
                    ));
                    after["template_id"] = json!(t);
                    template_id = Some(t.clone());
                }
                let mut any_limit = false;
                for (field, want, have) in LIMIT_FIELDS {
                    if let Some(v) = want(&dj.limits)
                        && v != have(lp)
                    {
                        reasons.push(reason(field, format!("{field} {} -> {v}", have(lp))));
                        after[field] = json!(v);
                        set_limit(&mut limits, field, v);
                        any_limit = true;
                    }
                }
                if tags.is_none()
                    && service_role.is_none()
                    && description.is_none()
                    && template_id.is_none()
                    && !any_limit
                {
                    return;
                }
                self.add(
                    Phase::Projects,
                    Change {
                        address,
                        action,
                        reasons,
                        before: Some(live_project_view(lp)),
                        after: Some(after),
                        live_fingerprint: Some(fingerprint(LiveResource::Project(lp))),
                        depends_on: vec![],
                        ops: vec![Op::UpdateProject {
                            key,
                            service_role,
                            description,
                            template_id,
                            limits,
                            tags,
                        }],
                    },
                );
            }
        }
    }

    /// The service role each project will use after this plan: the declared one for projects
    /// this plan manages, the live one for every other live project (projects this plan
    /// deletes use none).
    fn project_roles_after(
        &self,
        pruned_projects: &BTreeSet<ProjectKey>,
    ) -> Vec<(Address, String)> {
        let mut out = Vec::new();
        for (key, lp) in &self.live.projects {
            if pruned_projects.contains(key) {
                continue;
            }
            let role = match self.desired.projects.get(key) {
                Some(dj) if self.managed_projects.contains(key) => dj.service_role.clone(),
                _ => lp.service_role.clone(),
            };
            out.push((Address::project(key), role));
        }
        for (key, dj) in &self.desired.projects {
            if !self.live.projects.contains_key(key) {
                out.push((Address::project(key), dj.service_role.clone()));
            }
        }
        out
    }

    fn plan_prune(&mut self) {
        let owner = self.owner().to_string();
        let ours = |tags: &Tags| owner_of(tags) == Some(owner.as_str());
        // Owned, undeclared, unprotected resources.
        let roles: Vec<&LiveRole> = self
            .live
            .roles
            .values()
            .filter(|r| ours(&r.tags) && !self.desired.roles.contains_key(&r.name))
            .filter(|r| !is_protected_role_name(&r.name) && !r.service_linked)
            .collect();
        let policies: Vec<&LivePolicy> = self
            .live
            .policies
            .values()
            .filter(|p| ours(&p.tags) && !self.desired.policies.contains_key(&p.name))
            .collect();
        let projects: Vec<&LiveProject> = self
            .live
            .projects
            .iter()
            .filter(|(k, p)| ours(&p.tags) && !self.desired.projects.contains_key(*k))
            .map(|(_, p)| p)
            .collect();

        let mut orphans: Vec<(Address, &Tags)> = Vec::new();
        orphans.extend(roles.iter().map(|r| (Address::role(&r.name), &r.tags)));
        orphans.extend(policies.iter().map(|p| (Address::policy(&p.name), &p.tags)));
        orphans.extend(projects.iter().map(|p| {
            (
                Address::project(&ProjectKey {
                    region: p.region.clone(),
                    name: p.name.clone(),
                }),
                &p.tags,
            )
        }));
        if !self.settings.prune {
            for (address, _) in orphans {
                self.finding(
                    codes::ORPHAN,
                    Severity::Info,
                    &address,
                    "owned by immctl but no longer declared".to_string(),
                    Some("run with --prune to delete it, or declare it again"),
                );
            }
            return;
        }
        for (address, tags) in &orphans {
            if is_retained(tags) {
                self.finding(
                    codes::RETAINED,
                    Severity::Info,
                    address,
                    format!("no longer declared; kept because it carries {RETAIN_TAG_KEY}={RETAIN_TAG_VALUE}"),
                    Some(&format!("remove the {RETAIN_TAG_KEY} tag by hand to let prune delete it")),
                );
            }
        }
        let roles: Vec<&LiveRole> = roles
            .into_iter()
            .filter(|r| !is_retained(&r.tags))
            .collect();
        let policies: Vec<&LivePolicy> = policies
            .into_iter()
            .filter(|p| !is_retained(&p.tags))
            .collect();
        let projects: Vec<&LiveProject> = projects
            .into_iter()
            .filter(|p| !is_retained(&p.tags))
            .collect();

        let pruned_projects: BTreeSet<ProjectKey> = projects
            .iter()
            .map(|p| ProjectKey {
                region: p.region.clone(),
                name: p.name.clone(),
            })
            .collect();
        let users = self.project_roles_after(&pruned_projects);

        // A role still used by a project that stays is kept.
        let mut pruned_roles = Vec::new();
        for r in roles {
            let users_of: Vec<String> = users
                .iter()
                .filter(|(_, role)| *role == r.name)
                .map(|(a, _)| a.to_string())
                .collect();
            if users_of.is_empty() {
                pruned_roles.push(r);
            } else {
                self.finding(
                    codes::PRUNE_BLOCKED,
                    Severity::Warning,
                    &Address::role(&r.name),
                    format!(
                        "no longer declared, but still the service role of {}; not deleted",
                        users_of.join(", ")
                    ),
                    Some("move those projects to another role first"),
                );
            }
        }
        let pruned_role_names: BTreeSet<&str> =
            pruned_roles.iter().map(|r| r.name.as_str()).collect();

        // A policy is deleted only when every attachment it has is one this plan removes.
        let mut pruned_policies = Vec::new();
        for p in policies {
            let pref = PolicyRef {
                policy_type: PolicyType::Custom,
                name: p.name.clone(),
            };
            let address = Address::policy(&p.name);
            if let Some(dr) = self
                .desired
                .roles
                .values()
                .find(|r| r.policies.contains(&pref))
            {
                self.finding(
                    codes::PRUNE_BLOCKED,
                    Severity::Warning,
                    &address,
                    format!(
                        "no longer declared, but role \"{}\" still attaches it; not deleted",
                        dr.name
                    ),
                    Some("declare the policy again, or remove it from the role"),
                );
                continue;
            }
            let mut known = 0u32;
            let mut unmanaged = Vec::new();
            for r in self.live.roles.values() {
                if r.attachments.contains(&pref) {
                    known += 1;
                    if !self.managed_roles.contains(&r.name)
                        && !pruned_role_names.contains(r.name.as_str())
                    {
                        unmanaged.push(r.name.clone());
                    }
                }
            }
            if !unmanaged.is_empty() || p.attachment_count > known {
                let mut who = unmanaged
                    .iter()
                    .map(|r| format!("role \"{r}\""))
                    .collect::<Vec<_>>();
                if p.attachment_count > known {
                    who.push(format!(
                        "{} entities immctl does not read",
                        p.attachment_count - known
                    ));
                }
                self.finding(
                    codes::PRUNE_BLOCKED,
                    Severity::Warning,
                    &address,
                    format!(
                        "no longer declared, but still attached to {}; not deleted",
                        who.join(", ")
                    ),
                    Some("detach it from those entities first"),
                );
                continue;
            }
            pruned_policies.push(p);
        }

        let count = pruned_roles.len() + pruned_policies.len() + projects.len();
        if count == 0 {
            return;
        }
        let manifests_empty = self.desired.policies.is_empty()
            && self.desired.roles.is_empty()
            && self.desired.projects.is_empty();
        if manifests_empty {
            self.finding(
                codes::PRUNE_EMPTY,
                Severity::Error,
                &Address("prune".to_string()),
                format!("the manifests declare nothing; refusing to prune {count} owned resources"),
                Some("check the manifest paths; an empty manifest set never prunes"),
            );
            return;
        }
        if count > self.settings.max_deletions && !self.settings.allow_mass_delete {
            self.finding(
                codes::PRUNE_MASS_DELETE,
                Severity::Error,
                &Address("prune".to_string()),
                format!(
                    "prune would delete {count} resources, more than --max-deletions {}; nothing is deleted",
                    self.settings.max_deletions
                ),
                Some("raise --max-deletions or pass --allow-mass-delete after reviewing the plan"),
            );
            return;
        }

        for p in projects {
            let key = ProjectKey {
                region: p.region.clone(),
                name: p.name.clone(),
            };
            self.add(
                Phase::DeleteProjects,
                Change {
                    address: Address::project(&key),
                    action: Action::Delete,
                    reasons: vec![reason("prune", "owned by immctl and no longer declared")],
                    before: Some(live_project_view(p)),
                    after: None,
                    live_fingerprint: Some(fingerprint(LiveResource::Project(p))),
                    depends_on: vec![],
                    ops: vec![Op::DeleteProject { key }],
                },
            );
        }
        for r in pruned_roles {
            for a in &r.attachments {
                self.add_detach(
                    &r.name,
                    a,
                    owner_of(&r.tags),
                    reason("role_deleted", "the role is pruned"),
                );
            }
            self.add(
                Phase::DeleteRoles,
                Change {
                    address: Address::role(&r.name),
                    action: Action::Delete,
                    reasons: vec![reason("prune", "owned by immctl and no longer declared")],
                    before: Some(live_role_view(r)),
                    after: None,
                    live_fingerprint: Some(fingerprint(LiveResource::Role(r))),
                    depends_on: vec![],
                    ops: vec![Op::DeleteRole {
                        name: r.name.clone(),
                    }],
                },
            );
        }
        for p in pruned_policies {
            let mut ops: Vec<Op> = p
                .versions
                .iter()
                .filter(|v| !v.is_default)
                .map(|v| Op::DeletePolicyVersion {
                    name: p.name.clone(),
                    version_id: v.version_id.clone(),
                })
                .collect();
            ops.push(Op::DeletePolicy {
                name: p.name.clone(),
            });
            self.add(
                Phase::DeletePolicies,
                Change {
                    address: Address::policy(&p.name),
                    action: Action::Delete,
                    reasons: vec![reason("prune", "owned by immctl and no longer declared")],
                    before: Some(live_policy_view(p)),
                    after: None,
                    live_fingerprint: Some(fingerprint(LiveResource::Policy(p))),
                    depends_on: vec![],
                    ops,
                },
            );
        }
    }

    /// Fill `depends_on` once every change is known. Only addresses with a change in this
    /// plan are listed, so the executor can skip dependents of a failed change.
    fn link(&mut self) {
        let action_of =
            |drafts: &BTreeMap<Address, Draft>, a: &Address| drafts.get(a).map(|d| d.change.action);
        let mut deps: BTreeMap<Address, Vec<Address>> = BTreeMap::new();
        // The changes that attach a policy to each role, by role name (one pass, not one per
        // project).
        let mut attaching: BTreeMap<&str, Vec<&Address>> = BTreeMap::new();
        // The project changes that move a project off each role (its service role before,
        // another after), by role name.
        let mut leaving: BTreeMap<&str, Vec<&Address>> = BTreeMap::new();
        fn role_of(v: &Option<serde_json::Value>) -> Option<&str> {
            v.as_ref().and_then(|v| v["service_role"].as_str())
        }
        for (address, d) in &self.drafts {
            for op in &d.change.ops {
                if let Op::AttachPolicyToRole { role, .. } = op {
                    attaching.entry(role.as_str()).or_default().push(address);
                }
            }
            if address.as_str().starts_with("imm_project.")
                && let Some(before) = role_of(&d.change.before)
                && role_of(&d.change.after) != Some(before)
            {
                leaving.entry(before).or_default().push(address);
            }
        }
        for (address, d) in &self.drafts {
            let mut ds = Vec::new();
            for op in &d.change.ops {
                match (op, d.change.action) {
                    (Op::AttachPolicyToRole { role, policy }, _) => {
                        let ra = Address::role(role);
                        if action_of(&self.drafts, &ra).is_some_and(|a| a != Action::Delete) {
                            ds.push(ra);
                        }
                        if policy.policy_type == PolicyType::Custom {
                            let pa = Address::policy(&policy.name);
                            if action_of(&self.drafts, &pa).is_some_and(|a| a != Action::Delete) {
                                ds.push(pa);
                            }
                        }
                    }
                    (Op::DetachPolicyFromRole { role, .. }, _) => {
                        let ra = Address::role(role);
                        if action_of(&self.drafts, &ra) == Some(Action::Adopt) {
                            ds.push(ra);
                        }
                        // A project moving off the role keeps its permissions until it has
                        // moved: a detach first would leave IMM, for a while, on a role short
                        // of the minimum (a service-role rename).
                        ds.extend(
                            leaving
                                .get(role.as_str())
                                .into_iter()
                                .flatten()
                                .copied()
                                .cloned(),
                        );
                    }
                    (Op::CreateProject { service_role, .. }, _)
                    | (
                        Op::UpdateProject {
                            service_role: Some(service_role),
                            ..
                        },
                        _,
                    ) => {
                        let ra = Address::role(service_role);
                        if matches!(
                            action_of(&self.drafts, &ra),
                            Some(Action::Create | Action::Adopt)
                        ) {
                            ds.push(ra);
                        }
                        // The project starts using the role at once: attach its policies
                        // first, so it never runs with part of its permissions.
                        for &other in attaching.get(service_role.as_str()).into_iter().flatten() {
                            if !ds.contains(other) {
                                ds.push(other.clone());
                            }
                        }
                    }
                    (Op::DeleteRole { name }, _) => {
                        for (other, od) in &self.drafts {
                            let detach_of_role = od.change.ops.iter().any(|o| {
                                matches!(o, Op::DetachPolicyFromRole { role, .. } if role == name)
                            });
                            if detach_of_role {
                                ds.push(other.clone());
                            }
                        }
                        ds.extend(
                            leaving
                                .get(name.as_str())
                                .into_iter()
                                .flatten()
                                .copied()
                                .cloned(),
                        );
                    }
                    (Op::DeletePolicy { name }, _) => {
                        for (other, od) in &self.drafts {
                            if od.change.ops.iter().any(|o| {
                                matches!(o, Op::DetachPolicyFromRole { policy, .. }
                                    if policy.policy_type == PolicyType::Custom && policy.name == *name)
                            }) {
                                ds.push(other.clone());
                            }
                        }
                    }
                    _ => {}
                }
            }
            ds.sort();
            ds.dedup();
            ds.retain(|a| a != address);
            deps.insert(address.clone(), ds);
        }
        for (address, ds) in deps {
            if let Some(d) = self.drafts.get_mut(&address) {
                d.change.depends_on = ds;
            }
        }
    }
}

/// Keep only the targeted changes and everything they depend on. A role address also
/// selects that role's attachments. No targets: everything.
fn select_targets(
    drafts: BTreeMap<Address, Draft>,
    targets: &[Address],
) -> BTreeMap<Address, Draft> {
    if targets.is_empty() {
        return drafts;
    }
    let mut keep: BTreeSet<Address> = BTreeSet::new();
    for a in drafts.keys() {
        let selected = targets.iter().any(|t| {
            t == a
                || t.as_str().strip_prefix("ram_role.").is_some_and(|role| {
                    a.as_str()
                        .strip_prefix("ram_role_policy.")
                        .and_then(|rest| rest.split('/').next())
                        == Some(role)
                })
        });
        if selected {
            keep.insert(a.clone());
        }
    }
    let mut stack: Vec<Address> = keep.iter().cloned().collect();
    while let Some(a) = stack.pop() {
        if let Some(d) = drafts.get(&a) {
            for dep in &d.change.depends_on {
                if keep.insert(dep.clone()) {
                    stack.push(dep.clone());
                }
            }
        }
    }
    drafts
        .into_iter()
        .filter(|(a, _)| keep.contains(a))
        .collect()
}

#[cfg(test)]
#[path = "diff_tests.rs"]
mod tests;
