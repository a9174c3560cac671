//! The benchmark fleet: `roles` roles with `attachments` custom policies each, `policies`
//! custom policies of about `policy_bytes` bytes, `projects` IMM projects (each on its own
//! service role). Written as manifest files, and as the emulator state an apply of those
//! manifests leaves behind (for fleets too large to create through the API: RAM allows 1,000
//! roles and 1,500 policies per account).
//!
//! Names sort in index order (`bench-role-00042`), so the plan order follows the index.
//! The "changed" variant changes 10% of every kind of resource, in disjoint sets so no change
//! waits on another:
//! - policy `i % 10 == 5`: a new document (one more resource): `CreatePolicyVersion`;
//! - role `i % 10 == 6`: a new description: `UpdateRole`;
//! - role `i % 10 == 7`: its last attachment moves to another policy: one
//!   `DetachPolicyFromRole` and one `AttachPolicyToRole` (10% of the attachments change;
//!   never a service role's IMM minimum, which the lints would refuse to take away);
//! - project `j % 10 == 8`: a new description: `UpdateProject`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use immctl::emulator::State;
use immctl::live::OWNER_TAG_KEY;
use serde_json::{Value, json};

/// The account limits of RAM (and of the emulator): a full apply of a larger fleet is refused
/// with `LimitExceeded.*`.
pub const MAX_ROLES: usize = 1000;
pub const MAX_POLICIES: usize = 1500;

/// Manifest documents per file (files are limited to 1 MiB).
const PER_FILE: usize = 100;

pub const REGION: &str = "cn-hangzhou";
pub const OWNER: &str = "default";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    Base,
    /// 10% of each kind changed (module docs).
    Changed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Fleet {
    pub roles: usize,
    pub policies: usize,
    pub projects: usize,
    pub attachments: usize,
    pub policy_bytes: usize,
}

impl Fleet {
    /// The default shape scaled to `roles`: as many policies, a tenth as many
    /// projects (at least one), two attachments each, 1.5 KB documents.
    pub fn sized(roles: usize) -> Fleet {
        Fleet {
            roles,
            policies: roles,
            projects: (roles / 10).max(1),
            attachments: 2,
            policy_bytes: 1500,
        }
    }

    /// Resource addresses a plan from empty would create.
    pub fn resources(&self) -> usize {
        self.roles + self.policies + self.roles * self.attachments + self.projects
    }

    /// Whether RAM's account limits allow creating the whole fleet through the API.
    pub fn fits_account_limits(&self) -> bool {
        self.roles <= MAX_ROLES && self.policies <= MAX_POLICIES
    }

    pub fn describe(&self) -> String {
        format!(
            "{} roles × {} attachments, {} custom policies of ~{} B, {} projects ({} resources)",
            self.roles,
            self.attachments,
            self.policies,
            self.policy_bytes,
            self.projects,
            self.resources()
        )
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.roles == 0 || self.policies == 0 {
            return Err("--roles and --policies must be at least 1".into());
        }
        if self.projects > self.roles {
            return Err("--projects cannot exceed --roles (each project has its own role)".into());
        }
        if self.attachments == 0 || self.attachments > 10 || self.attachments > self.policies {
            return Err(
                "--attachments must be 1..=10 (RAM's custom policies per role) and at most --policies"
                    .into(),
            );
        }
        if !(300..=6000).contains(&self.policy_bytes) {
            return Err("--policy-bytes must be 300..=6000 (RAM allows 6,144)".into());
        }
        Ok(())
    }
}

pub fn policy_name(i: usize) -> String {
    format!("bench-policy-{i:05}")
}
pub fn role_name(i: usize) -> String {
    format!("bench-role-{i:05}")
}
pub fn project_name(j: usize) -> String {
    format!("bench-project-{j:05}")
}
fn bucket(i: usize) -> String {
    format!("bench-bucket-{i:05}")
}

fn changes_policy(v: Variant, i: usize) -> bool {
    v == Variant::Changed && i % 10 == 5
}
fn changes_role_description(v: Variant, i: usize) -> bool {
    v == Variant::Changed && i % 10 == 6
}
fn moves_attachment(v: Variant, i: usize) -> bool {
    v == Variant::Changed && i % 10 == 7
}
fn changes_project(v: Variant, j: usize) -> bool {
    v == Variant::Changed && j % 10 == 8
}

impl Fleet {
    /// Policy `i`'s document: for the first `projects` policies, the IMM minimum for the
    /// project's bucket (they are attached to the service roles), otherwise OSS access to a
    /// bucket; both padded with object prefixes to `policy_bytes` of compact JSON.
    pub fn policy_document(&self, i: usize, v: Variant) -> Value {
        let b = bucket(i);
        let mut statements: Vec<Value> = if i < self.projects {
            let doc = immctl::policy::imm::service_role_policy(std::slice::from_ref(&b), &[]);
            doc.0["Statement"].as_array().cloned().unwrap_or_default()
        } else {
            vec![json!({
                "Effect": "Allow",
                "Action": ["oss:GetObject", "oss:PutObject", "oss:DeleteObject", "oss:GetObjectMeta"],
                "Resource": [format!("acs:oss:*:*:{b}/shared/*")],
            })]
        };
        let pad = |prefixes: &[String]| {
            json!({
                "Effect": "Allow",
                "Action": ["oss:GetObject", "oss:GetObjectMeta"],
                "Resource": prefixes,
            })
        };
        let mut prefixes: Vec<String> = vec![format!("acs:oss:*:*:{b}/reports/*")];
        loop {
            let mut all = statements.clone();
            all.push(pad(&prefixes));
            let size = serde_json::to_string(&json!({"Version": "1", "Statement": all}))
                .expect("json")
                .len();
            if size >= self.policy_bytes {
                break;
            }
            prefixes.push(format!("acs:oss:*:*:{b}/p{:03}/*", prefixes.len()));
        }
        // The change adds a prefix on top of the base document.
        if changes_policy(v, i) {
            prefixes.push(format!("acs:oss:*:*:{b}/changed/*"));
        }
        statements.push(pad(&prefixes));
        json!({"Version": "1", "Statement": statements})
    }

    /// Indices of the policies role `i` attaches: policy `i` first (for a service role, its
    /// IMM minimum), then policies from the pool past the IMM ones, so moving the last
    /// attachment never takes a service role's minimum away (the lints would refuse that).
    pub fn role_attachments(&self, i: usize, v: Variant) -> Vec<usize> {
        let (start, len) = if self.policies >= self.projects + self.attachments + 4 {
            (self.projects, self.policies - self.projects)
        } else {
            (0, self.policies)
        };
        let pick = |k: usize| start + (i + k) % len;
        let mut out = vec![i % self.policies];
        let mut k = 1;
        while out.len() < self.attachments {
            let p = pick(k);
            if !out.contains(&p) {
                out.push(p);
            }
            k += 1;
        }
        if moves_attachment(v, i) && (self.attachments > 1 || i >= self.projects) {
            let mut k = self.attachments + 3;
            while out.contains(&pick(k)) {
                k += 1;
            }
            *out.last_mut().expect("at least one attachment") = pick(k);
        }
        out
    }

    fn role_description(i: usize, v: Variant) -> String {
        if changes_role_description(v, i) {
            format!("bench role {i} (changed)")
        } else {
            format!("bench role {i}")
        }
    }

    fn project_description(j: usize, v: Variant) -> String {
        if changes_project(v, j) {
            format!("bench project {j} (changed)")
        } else {
            format!("bench project {j}")
        }
    }

    /// Service roles (the first `projects` roles) trust IMM; the others ECS.
    fn trust(&self, i: usize) -> Value {
        let service = if i < self.projects {
            "imm.aliyuncs.com"
        } else {
            "ecs.aliyuncs.com"
        };
        json!({
            "Version": "1",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": [service]}}],
        })
    }

    /// Write the manifests of variant `v` into `dir` (replacing what is there).
    pub fn write_manifests(&self, dir: &Path, v: Variant) -> std::io::Result<()> {
        if dir.exists() {
            std::fs::remove_dir_all(dir)?;
        }
        std::fs::create_dir_all(dir)?;
        let mut docs: Vec<(String, String)> = Vec::new();
        for i in 0..self.policies {
            docs.push((
                "policies".into(),
                format!(
                    "apiVersion: immctl/v1\nkind: Policy\nmetadata:\n  name: {}\nspec:\n  description: bench policy {i}\n  document: {}\n",
                    policy_name(i),
                    self.policy_document(i, v)
                ),
            ));
        }
        for i in 0..self.roles {
            let mut attached = String::new();
            for p in self.role_attachments(i, v) {
                let _ = write!(attached, "\n    - {{name: {}}}", policy_name(p));
            }
            docs.push((
                "roles".into(),
                format!(
                    "apiVersion: immctl/v1\nkind: Role\nmetadata:\n  name: {}\nspec:\n  description: {}\n  trustPolicy: {}\n  policies:{attached}\n",
                    role_name(i),
                    Self::role_description(i, v),
                    self.trust(i)
                ),
            ));
        }
        for j in 0..self.projects {
            docs.push((
                "projects".into(),
                format!(
                    "apiVersion: immctl/v1\nkind: Project\nmetadata:\n  name: {}\nspec:\n  region: {REGION}\n  description: {}\n  serviceRole: {}\n  buckets: [{}]\n",
                    project_name(j),
                    Self::project_description(j, v),
                    role_name(j),
                    bucket(j)
                ),
            ));
        }
        let mut files: BTreeMap<String, String> = BTreeMap::new();
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for (kind, text) in docs {
            let n = counts.entry(kind.clone()).or_default();
            let file = format!("{kind}-{:04}.yaml", *n / PER_FILE);
            *n += 1;
            let f = files.entry(file).or_default();
            f.push_str("---\n");
            f.push_str(&text);
        }
        for (name, text) in files {
            std::fs::write(dir.join(name), text)?;
        }
        Ok(())
    }

    /// The account as an apply of the base manifests leaves it: the default test account
    /// (admin user and key) plus the whole fleet, owned by [`OWNER`].
    pub fn seed_state(&self) -> State {
        let owner = json!({ OWNER_TAG_KEY: OWNER });
        let mut policies = serde_json::Map::new();
        for i in 0..self.policies {
            policies.insert(
                policy_name(i),
                json!({
                    "description": format!("bench policy {i}"),
                    "defaultVersion": "v1",
                    "lastVersionNumber": 1,
                    "versions": [{"id": "v1", "document": self.policy_document(i, Variant::Base).to_string()}],
                    "tags": owner,
                }),
            );
        }
        let mut roles = serde_json::Map::new();
        for i in 0..self.roles {
            let attached: Vec<Value> = self
                .role_attachments(i, Variant::Base)
                .into_iter()
                .map(|p| json!({"type": "Custom", "name": policy_name(p)}))
                .collect();
            roles.insert(
                role_name(i),
                json!({
                    "description": Self::role_description(i, Variant::Base),
                    "assumeRolePolicyDocument": self.trust(i).to_string(),
                    "maxSessionDuration": 3600,
                    "tags": owner,
                    "policies": attached,
                }),
            );
        }
        let mut projects = serde_json::Map::new();
        for j in 0..self.projects {
            projects.insert(
                project_name(j),
                json!({
                    "description": Self::project_description(j, Variant::Base),
                    "serviceRole": role_name(j),
                    "tags": owner,
                }),
            );
        }
        let mut state = serde_json::to_value(State::default()).expect("state serializes");
        state["policies"] = Value::Object(policies);
        state["roles"] = Value::Object(roles);
        state["projects"] = json!({ REGION: projects });
        serde_json::from_value(state).expect("the seed state is a valid emulator state")
    }
}
