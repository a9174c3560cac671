//! `immctl import`: live roles, policies and projects -> manifests (brownfield adoption).
//!
//! The rule: write exactly what makes the next plan empty but for adoption. For each live
//! resource the import keeps every field the planner manages, and leaves out every field it
//! would not manage anyway (plan/diff.rs "unmanaged fields"):
//!
//! - **Policy**: the default version's document (canonical form, as a YAML map), the
//!   description (left out when empty: RAM cannot clear one, and an empty one is not a valid
//!   manifest), user tags.
//! - **Role**: trust policy, max session duration, description (as above), every attachment
//!   (Custom and System: the list is authoritative), user tags.
//! - **Project**: region, and only what differs from the service's defaults (reference §4.2):
//!   service role, description, template id, each limit. Omitted limits stay unmanaged.
//! - **Tags**: cloud-managed keys (`aliyun*`, `acs:*`, `http(s)://`) are never written (the
//!   planner ignores them); the owner tag becomes `adopt: true` when absent; the Retain marker
//!   becomes `deletionPolicy: Retain`.
//! - **Ownership**: unowned resources get `adopt: true`; ours are written without it;
//!   resources tagged by another owner are reported and never written (two repos managing one
//!   resource is a conflict a human resolves, as Argo CD's shared-resource warning and
//!   Terraform's one-state-per-resource rule have it).
//! - **Protected**: `Aliyun*` roles, service-linked roles and System policies are never
//!   written; attachments and `serviceRole` name them.
//!
//! Pure: [`import`] takes what the fetch read and returns documents with their file paths.
//! Writing them (hand-edit detection, atomic writes, stale files) is [`files`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::live::{Everything, Fetched, LivePolicy, LiveProject, LiveRole, OWNER_TAG_KEY, Scope};
use crate::manifest::{
    Address, DeletionPolicy, DesiredPolicy, DesiredProject, DesiredRole, IMM_DEFAULT_ROLE,
    ProjectKey, ProjectLimits, RETAIN_TAG_KEY, RETAIN_TAG_VALUE, Source, Tags,
    is_protected_role_name, render,
};
use crate::plan::diff::is_ignored_tag;

pub mod files;

/// The kinds `--include` names, in the order the output lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    Policies,
    Roles,
    Projects,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Roles, Kind::Policies, Kind::Projects];

    /// The `--include` word, also the directory the files go to.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Policies => "policies",
            Kind::Roles => "roles",
            Kind::Projects => "projects",
        }
    }

    /// The kind of a resource address.
    pub fn of(address: &Address) -> Option<Kind> {
        let a = address.as_str();
        if a.starts_with("ram_policy.") {
            Some(Kind::Policies)
        } else if a.starts_with("ram_role.") {
            Some(Kind::Roles)
        } else if a.starts_with("imm_project.") {
            Some(Kind::Projects)
        } else {
            None
        }
    }
}

/// A comma-separated `--include` value: `roles,policies,projects` (singular forms too).
pub fn parse_kinds(raw: &str) -> Result<Vec<Kind>, String> {
    let mut out = Vec::new();
    for word in raw.split(',').map(str::trim) {
        let kind = match word {
            "roles" | "role" => Kind::Roles,
            "policies" | "policy" => Kind::Policies,
            "projects" | "project" => Kind::Projects,
            "" => return Err("empty kind; expected roles, policies or projects".to_string()),
            other => {
                return Err(format!(
                    "unknown kind {other:?}; expected roles, policies or projects (comma-separated)"
                ));
            }
        };
        if !out.contains(&kind) {
            out.push(kind);
        }
    }
    out.sort();
    Ok(out)
}

/// What to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selection {
    pub kinds: Vec<Kind>,
    /// Only names starting with this (empty: all).
    pub prefix: String,
    /// The IMM region projects are read from.
    pub region: String,
    /// Our `immctl-owner` value.
    pub owner: String,
}

impl Selection {
    pub fn includes(&self, kind: Kind) -> bool {
        self.kinds.contains(&kind)
    }

    /// The fetch scope: nothing declared, every selected unowned or owned resource read.
    pub fn scope(&self) -> Scope {
        Scope {
            owner: self.owner.clone(),
            regions: if self.includes(Kind::Projects) {
                [self.region.clone()].into()
            } else {
                Default::default()
            },
            everything: Some(Everything {
                roles: self.includes(Kind::Roles),
                policies: self.includes(Kind::Policies),
                prefix: self.prefix.clone(),
            }),
            ..Scope::default()
        }
    }

    /// Is `address` something this import looks at (kind included, name prefix, region)?
    /// Used to tell stale files (their resource is gone) from files outside the selection.
    pub fn covers(&self, address: &Address) -> bool {
        let Some(kind) = Kind::of(address) else {
            return false;
        };
        if !self.includes(kind) {
            return false;
        }
        let a = address.as_str();
        let name = match kind {
            Kind::Policies => &a["ram_policy.".len()..],
            Kind::Roles => &a["ram_role.".len()..],
            Kind::Projects => match a["imm_project.".len()..].split_once('/') {
                Some((region, name)) if region == self.region => name,
                _ => return false,
            },
        };
        name.starts_with(&self.prefix)
    }
}

/// One manifest to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub address: Address,
    pub kind: Kind,
    /// Where it goes, relative to the output directory ([`files::path_for`]).
    pub path: PathBuf,
    /// The YAML document (no header; [`files`] adds it).
    pub body: String,
    /// Written with `adopt: true` (exists without any owner tag).
    pub adopt: bool,
}

/// Why a live resource of the selection is not written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// Tagged `immctl-owner=<other>`: another repo manages it.
    OtherOwner(String),
    /// `Aliyun*` or service-linked: immctl never manages it (it is only referenced).
    Protected,
}

/// Something the user should know about a written document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub address: Address,
    pub message: String,
}

/// The outcome of [`import`]: documents sorted by kind then address, and what was left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Import {
    pub documents: Vec<Document>,
    pub skipped: BTreeMap<Address, Skip>,
    pub notes: Vec<Note>,
}

/// The service's defaults for a new IMM project (reference §4.2). A limit equal to its
/// default is not written. `DatasetMaxFileCount` has two documented defaults (the Project
/// page says 100000000, the CreateProject page 10000000000); both count as default.
pub mod project_defaults {
    pub const PROJECT_QUERIES_PER_SECOND: i64 = 100;
    pub const ENGINE_CONCURRENCY: i64 = 100;
    pub const PROJECT_MAX_DATASET_COUNT: i64 = 1_000_000_000;
    pub const DATASET_MAX_BIND_COUNT: i64 = 10;
    pub const DATASET_MAX_FILE_COUNT: [i64; 2] = [100_000_000, 10_000_000_000];
    pub const DATASET_MAX_ENTITY_COUNT: i64 = 10_000_000_000;
    pub const DATASET_MAX_RELATION_COUNT: i64 = 100_000_000_000;
    pub const DATASET_MAX_TOTAL_FILE_SIZE: i64 = 90_000_000_000_000_000;
}

/// Everything the selection admits, as documents. See the module docs for the rules.
pub fn import(fetched: &Fetched, sel: &Selection) -> Import {
    let live = &fetched.live;
    let mut out = Import::default();
    for (address, owner) in &fetched.other_owners {
        if sel.covers(address) {
            out.skipped
                .insert(address.clone(), Skip::OtherOwner(owner.clone()));
        }
    }
    if sel.includes(Kind::Policies) {
        for lp in live.policies.values() {
            let address = Address::policy(&lp.name);
            if !sel.covers(&address) {
                continue;
            }
            if let Some(skip) = other_owner(&lp.tags, &sel.owner) {
                out.skipped.insert(address, skip);
                continue;
            }
            let dp = desired_policy(lp, &mut out.notes);
            out.documents.push(Document {
                path: files::path_for(&address),
                body: render::render_policy(&dp),
                adopt: dp.adopt,
                kind: Kind::Policies,
                address,
            });
        }
    }
    if sel.includes(Kind::Roles) {
        for name in &live.role_names {
            let address = Address::role(name);
            if !sel.covers(&address) {
                continue;
            }
            let lr = live.roles.get(name);
            if is_protected_role_name(name) || lr.is_some_and(|r| r.service_linked) {
                out.skipped.insert(address, Skip::Protected);
                continue;
            }
            // Listed but not read: another owner's (already in `skipped`), or marked
            // service-linked by the list.
            let Some(lr) = lr else {
                out.skipped.entry(address).or_insert(Skip::Protected);
                continue;
            };
            if let Some(skip) = other_owner(&lr.tags, &sel.owner) {
                out.skipped.insert(address, skip);
                continue;
            }
            let dr = desired_role(lr, &mut out.notes);
            out.documents.push(Document {
                path: files::path_for(&address),
                body: render::render_role(&dr),
                adopt: dr.adopt,
                kind: Kind::Roles,
                address,
            });
        }
    }
    if sel.includes(Kind::Projects) {
        for (key, lp) in &live.projects {
            let address = Address::project(key);
            if !sel.covers(&address) {
                continue;
            }
            if let Some(skip) = other_owner(&lp.tags, &sel.owner) {
                out.skipped.insert(address, skip);
                continue;
            }
            let dj = desired_project(lp, &mut out.notes);
            out.documents.push(Document {
                path: files::path_for(&address),
                body: render::render_project(&dj),
                adopt: dj.adopt,
                kind: Kind::Projects,
                address,
            });
        }
    }
    out.documents
        .sort_by(|a, b| (a.kind, &a.address).cmp(&(b.kind, &b.address)));
    out.notes
        .sort_by(|a, b| (&a.address, &a.message).cmp(&(&b.address, &b.message)));
    out
}

fn other_owner(tags: &Tags, owner: &str) -> Option<Skip> {
    match tags.get(OWNER_TAG_KEY) {
        Some(o) if o != owner => Some(Skip::OtherOwner(o.clone())),
        _ => None,
    }
}

/// What the live tags become: `(user tags, deletion policy, adopt)`.
fn split_tags(
    address: &Address,
    tags: &Tags,
    notes: &mut Vec<Note>,
) -> (Tags, DeletionPolicy, bool) {
    let mut user = Tags::new();
    let mut deletion = DeletionPolicy::Delete;
    for (k, v) in tags {
        if k == OWNER_TAG_KEY || is_ignored_tag(k) {
            continue;
        }
        if k == RETAIN_TAG_KEY {
            if v == RETAIN_TAG_VALUE {
                deletion = DeletionPolicy::Retain;
            } else {
                notes.push(Note {
                    address: address.clone(),
                    message: format!(
                        "tag {RETAIN_TAG_KEY}={v:?} is not immctl's Retain marker; the first reconcile removes it (write deletionPolicy: Retain to keep the resource from prune)"
                    ),
                });
            }
            continue;
        }
        user.insert(k.clone(), v.clone());
    }
    (user, deletion, !tags.contains_key(OWNER_TAG_KEY))
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

/// The manifest that declares `lp` as it is.
pub fn desired_policy(lp: &LivePolicy, notes: &mut Vec<Note>) -> DesiredPolicy {
    let (tags, deletion_policy, adopt) = split_tags(&Address::policy(&lp.name), &lp.tags, notes);
    DesiredPolicy {
        name: lp.name.clone(),
        description: non_empty(&lp.description),
        document: lp.document.clone(),
        tags,
        deletion_policy,
        adopt,
        source: Source::default(),
        expanded_from: None,
    }
}

/// The manifest that declares `lr` as it is.
pub fn desired_role(lr: &LiveRole, notes: &mut Vec<Note>) -> DesiredRole {
    let (tags, deletion_policy, adopt) = split_tags(&Address::role(&lr.name), &lr.tags, notes);
    DesiredRole {
        name: lr.name.clone(),
        description: non_empty(&lr.description),
        max_session_duration: lr.max_session_duration,
        trust_policy: lr.trust_policy.clone(),
        policies: lr.attachments.clone(),
        tags,
        deletion_policy,
        adopt,
        source: Source::default(),
        expanded_from: None,
    }
}

/// The manifest that declares `lp` as it is, naming only what differs from the defaults.
pub fn desired_project(lp: &LiveProject, notes: &mut Vec<Note>) -> DesiredProject {
    use project_defaults as d;
    let key = ProjectKey {
        region: lp.region.clone(),
        name: lp.name.clone(),
    };
    let (tags, deletion_policy, adopt) = split_tags(&Address::project(&key), &lp.tags, notes);
    let unless = |v: i64, default: i64| (v != default).then_some(v);
    DesiredProject {
        region: lp.region.clone(),
        name: lp.name.clone(),
        // IMM fills in the default role when none was given; an empty answer means the same.
        service_role: non_empty(&lp.service_role).unwrap_or_else(|| IMM_DEFAULT_ROLE.to_string()),
        description: non_empty(&lp.description),
        template_id: non_empty(&lp.template_id),
        limits: ProjectLimits {
            project_queries_per_second: unless(
                lp.project_queries_per_second,
                d::PROJECT_QUERIES_PER_SECOND,
            ),
            engine_concurrency: unless(lp.engine_concurrency, d::ENGINE_CONCURRENCY),
            project_max_dataset_count: unless(
                lp.project_max_dataset_count,
                d::PROJECT_MAX_DATASET_COUNT,
            ),
            dataset_max_bind_count: unless(lp.dataset_max_bind_count, d::DATASET_MAX_BIND_COUNT),
            dataset_max_file_count: (!d::DATASET_MAX_FILE_COUNT
                .contains(&lp.dataset_max_file_count))
            .then_some(lp.dataset_max_file_count),
            dataset_max_entity_count: unless(
                lp.dataset_max_entity_count,
                d::DATASET_MAX_ENTITY_COUNT,
            ),
            dataset_max_relation_count: unless(
                lp.dataset_max_relation_count,
                d::DATASET_MAX_RELATION_COUNT,
            ),
            dataset_max_total_file_size: unless(
                lp.dataset_max_total_file_size,
                d::DATASET_MAX_TOTAL_FILE_SIZE,
            ),
        },
        tags,
        buckets: Vec::new(),
        deletion_policy,
        adopt,
        source: Source::default(),
    }
}

#[cfg(test)]
mod tests;
