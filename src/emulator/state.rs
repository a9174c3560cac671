//! The emulator's persistent state: one account's RAM users, access keys, roles, custom
//! policies (with versions), attachments, tags, and IMM projects per region.
//!
//! This is also the state-file format (`--state FILE`, YAML or JSON; see docs/emulator.md).
//! Field names are camelCase. Documents may be written as JSON text or as a YAML/JSON map;
//! they are kept as the exact text (RAM returns documents as submitted).
//! Loading and saving only: no request handling here.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Deserializer, Serialize};

use super::ram::{MAX_VERSIONS, SESSION_SECONDS};

/// The account id used when a state does not name one.
pub const DEFAULT_ACCOUNT_ID: &str = "1234567890123456";
/// The test-only administrator key of a fresh emulator.
pub const DEFAULT_ACCESS_KEY_ID: &str = "emulator-admin";
/// Its secret (test-only; documented in the README).
pub const DEFAULT_ACCESS_KEY_SECRET: &str = "emulator-secret";

/// A policy or trust document, kept as text. Deserializes from a JSON string or a map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Default)]
#[serde(transparent)]
pub struct DocText(pub String);

impl<'de> Deserialize<'de> for DocText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Ok(match v {
            serde_json::Value::String(s) => DocText(s),
            other => DocText(other.to_string()),
        })
    }
}

/// The whole emulated account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct State {
    #[serde(default = "default_account")]
    pub account_id: String,
    /// RAM users (by name): the identities access keys belong to.
    #[serde(default)]
    pub users: BTreeMap<String, User>,
    /// Access keys. A key without `user` is the account's root key (never checked by RAM).
    #[serde(default)]
    pub access_keys: Vec<AccessKey>,
    /// Roles by name.
    #[serde(default)]
    pub roles: BTreeMap<String, Role>,
    /// Custom policies by name.
    #[serde(default)]
    pub policies: BTreeMap<String, Policy>,
    /// Extra System policies beyond the built-in set (read-only to API callers).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub system_policies: BTreeMap<String, SystemPolicy>,
    /// When true, the role `AliyunIMMDefaultRole` exists (as after the console's one-time
    /// "Cloud Resource Access Authorization"), trusted by `imm.aliyuncs.com` with the System
    /// policy `AliyunIMMDefaultRolePolicy` attached. Seeded on load if missing.
    #[serde(default)]
    pub imm_default_role_authorized: bool,
    /// IMM projects: region -> project name -> project.
    #[serde(default)]
    pub projects: BTreeMap<String, BTreeMap<String, Project>>,
}

fn default_account() -> String {
    DEFAULT_ACCOUNT_ID.to_string()
}

fn default_session() -> u32 {
    *SESSION_SECONDS.start()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct User {
    #[serde(default)]
    pub user_id: String,
    /// Attached policies (their permissions are the user's).
    #[serde(default)]
    pub policies: Vec<Attachment>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
    /// The RAM user this key belongs to; absent = the account's root identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// A policy attached to a role or user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Attachment {
    /// `Custom` or `System`.
    #[serde(rename = "type", default = "custom")]
    pub policy_type: String,
    pub name: String,
    #[serde(default)]
    pub attach_date: String,
}

fn custom() -> String {
    "Custom".to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Role {
    #[serde(default)]
    pub role_id: String,
    #[serde(default)]
    pub description: String,
    pub assume_role_policy_document: DocText,
    #[serde(default = "default_session")]
    pub max_session_duration: u32,
    #[serde(default)]
    pub create_date: String,
    #[serde(default)]
    pub update_date: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub policies: Vec<Attachment>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub create_date: String,
    #[serde(default)]
    pub update_date: String,
    /// `vN` of the default version.
    #[serde(default)]
    pub default_version: String,
    /// Highest version number ever used: numbers are never reused after deletion.
    #[serde(default)]
    pub last_version_number: u32,
    #[serde(default)]
    pub versions: Vec<PolicyVersion>,
    /// Shorthand for hand-written states: the document of a single `v1`.
    #[serde(default, skip_serializing)]
    pub document: Option<DocText>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyVersion {
    pub id: String,
    pub document: DocText,
    #[serde(default)]
    pub create_date: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SystemPolicy {
    #[serde(default)]
    pub description: String,
    pub document: DocText,
    #[serde(default = "v1")]
    pub default_version: String,
    #[serde(default = "system_date")]
    pub create_date: String,
}

fn v1() -> String {
    "v1".to_string()
}
fn system_date() -> String {
    "2015-04-28T03:21:23Z".to_string()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Project {
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_service_role")]
    pub service_role: String,
    #[serde(default)]
    pub template_id: String,
    #[serde(default = "d_project_max_dataset_count")]
    pub project_max_dataset_count: i64,
    #[serde(default = "d_dataset_max_bind_count")]
    pub dataset_max_bind_count: i64,
    #[serde(default = "d_dataset_max_file_count")]
    pub dataset_max_file_count: i64,
    #[serde(default = "d_dataset_max_entity_count")]
    pub dataset_max_entity_count: i64,
    #[serde(default = "d_dataset_max_relation_count")]
    pub dataset_max_relation_count: i64,
    #[serde(default = "d_dataset_max_total_file_size")]
    pub dataset_max_total_file_size: i64,
    #[serde(default = "d_hundred")]
    pub engine_concurrency: i64,
    #[serde(default = "d_hundred")]
    pub project_queries_per_second: i64,
    #[serde(default)]
    pub create_time: String,
    #[serde(default)]
    pub update_time: String,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub datasets: BTreeMap<String, Dataset>,
}

pub fn default_service_role() -> String {
    "AliyunIMMDefaultRole".to_string()
}
pub fn d_project_max_dataset_count() -> i64 {
    1_000_000_000
}
pub fn d_dataset_max_bind_count() -> i64 {
    10
}
pub fn d_dataset_max_file_count() -> i64 {
    100_000_000
}
pub fn d_dataset_max_entity_count() -> i64 {
    10_000_000_000
}
pub fn d_dataset_max_relation_count() -> i64 {
    100_000_000_000
}
pub fn d_dataset_max_total_file_size() -> i64 {
    90_000_000_000_000_000
}
pub fn d_hundred() -> i64 {
    100
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Dataset {
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub template_id: String,
    pub dataset_max_bind_count: i64,
    pub dataset_max_file_count: i64,
    pub dataset_max_entity_count: i64,
    pub dataset_max_relation_count: i64,
    pub dataset_max_total_file_size: i64,
    #[serde(default)]
    pub workflow_parameters: Vec<WorkflowParameter>,
    #[serde(default)]
    pub create_time: String,
    #[serde(default)]
    pub update_time: String,
    /// Bindings by URI.
    #[serde(default)]
    pub bindings: BTreeMap<String, Binding>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct WorkflowParameter {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Binding {
    pub state: String,
    pub phase: String,
    #[serde(default)]
    pub reason: String,
    #[serde(default)]
    pub create_time: String,
    #[serde(default)]
    pub update_time: String,
}

impl Default for State {
    /// A fresh account: `1234567890123456`, one RAM user `admin` with `AdministratorAccess`
    /// and its key `emulator-admin` / `emulator-secret`.
    fn default() -> Self {
        let mut users = BTreeMap::new();
        users.insert(
            "admin".to_string(),
            User {
                user_id: "200000000000000001".to_string(),
                policies: vec![Attachment {
                    policy_type: "System".to_string(),
                    name: "AdministratorAccess".to_string(),
                    attach_date: system_date(),
                }],
            },
        );
        State {
            account_id: default_account(),
            users,
            access_keys: vec![AccessKey {
                id: DEFAULT_ACCESS_KEY_ID.to_string(),
                secret: DEFAULT_ACCESS_KEY_SECRET.to_string(),
                user: Some("admin".to_string()),
            }],
            roles: BTreeMap::new(),
            policies: BTreeMap::new(),
            system_policies: BTreeMap::new(),
            imm_default_role_authorized: false,
            projects: BTreeMap::new(),
        }
    }
}

/// Errors loading or saving a state file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("reading state file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("parsing state file {path}: {message}")]
    Parse { path: String, message: String },
    #[error(
        "state file {path} is not a usable emulator state ({} problem(s)):\n  - {}",
        problems.len(),
        problems.join("\n  - ")
    )]
    Invalid { path: String, problems: Vec<String> },
    #[error("writing state file {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
    /// At start-up: the state file (loaded or fresh) is written once before anything is
    /// served, so a file that cannot be written is found then, not at the first change.
    #[error("the state file {path} cannot be written: {source}")]
    Unwritable {
        path: String,
        source: std::io::Error,
    },
}

impl StateError {
    /// Whether an error of `Server::new` / `spawn` is [`StateError::Unwritable`] (the CLI
    /// then says what to do instead of "loading the state file").
    pub fn is_unwritable(e: &std::io::Error) -> bool {
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<StateError>())
            .is_some_and(|s| matches!(s, StateError::Unwritable { .. }))
    }
}

fn is_yaml(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml") | Some("yml")
    )
}

impl State {
    /// Parse a state from YAML or JSON text (YAML is a superset, so one parser serves).
    ///
    /// An empty text is the fresh default account (as when no state file exists), not an
    /// account without keys.
    ///
    /// Also accepts the state wrapped as a manifest-style document
    /// (`apiVersion: immctl/v1`, `kind: EmulatorState`, `spec: <state>`), the form of
    /// `manifests/demo-live-state.yaml`: the manifest loader skips that kind, so the seed can
    /// sit beside the manifests it is meant to differ from.
    pub fn from_text(text: &str) -> Result<State, String> {
        if text.trim().is_empty() {
            return Ok(State::default());
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        struct Wrapped {
            api_version: String,
            kind: String,
            #[serde(default)]
            metadata: Option<serde_yaml::Value>,
            spec: State,
        }
        let value: serde_yaml::Value = serde_yaml::from_str(text).map_err(|e| e.to_string())?;
        if value.get("kind").is_some() && value.get("spec").is_some() {
            let w: Wrapped = serde_yaml::from_value(value).map_err(|e| e.to_string())?;
            if w.api_version != "immctl/v1" || w.kind != "EmulatorState" {
                return Err(format!(
                    "expected apiVersion immctl/v1 and kind EmulatorState, found {} {}",
                    w.api_version, w.kind
                ));
            }
            let _ = w.metadata;
            return Ok(w.spec);
        }
        serde_yaml::from_str(text).map_err(|e| e.to_string())
    }

    /// Load a state file (YAML or JSON) and fill in generated fields.
    pub fn load(path: &Path, now: &str) -> Result<State, StateError> {
        let text = std::fs::read_to_string(path).map_err(|source| StateError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let mut state = State::from_text(&text).map_err(|message| StateError::Parse {
            path: path.display().to_string(),
            message,
        })?;
        let problems = state.problems();
        if !problems.is_empty() {
            return Err(StateError::Invalid {
                path: path.display().to_string(),
                problems,
            });
        }
        state.normalize(now);
        Ok(state)
    }

    /// What in a hand-written state the emulator's own API would never have produced, each
    /// as `where: what`, all of them (not just the first). Only what the API refuses is
    /// refused here (never more): duplicate or orphaned access keys, empty names and
    /// regions, documents that are not a JSON object, a `maxSessionDuration` outside RAM's
    /// 3600..43200, a policy without a version (or with `document` and `versions`, of which
    /// the shorthand was dropped silently), more than 5 versions, bad or repeated version
    /// ids, a `defaultVersion` not among them, attachments of policies that do not exist.
    /// Without this such a state loaded silently and failed only at call time (an orphaned
    /// key answered `InvalidAccessKeyId.NotFound`).
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let doc_problem = |doc: &DocText| -> Option<&'static str> {
            match serde_json::from_str::<serde_json::Value>(&doc.0) {
                Ok(v) if v.is_object() => None,
                Ok(_) => Some("is not a JSON object"),
                Err(_) => Some("is not valid JSON"),
            }
        };
        let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, k) in self.access_keys.iter().enumerate() {
            if k.id.is_empty() {
                out.push(format!("accessKeys[{i}].id: empty access key id"));
            } else if let Some(first) = seen.get(k.id.as_str()) {
                out.push(format!(
                    "accessKeys[{i}].id: duplicate access key id {:?} (also accessKeys[{first}])",
                    k.id
                ));
            } else {
                seen.insert(&k.id, i);
            }
            if let Some(user) = &k.user
                && !self.users.contains_key(user)
            {
                out.push(format!(
                    "accessKeys[{i}].user: no user {user:?} in users (a key of a missing user \
                     cannot sign in; omit `user` for the account's root key)"
                ));
            }
        }
        if self.users.contains_key("") {
            out.push("users: a user with an empty name".to_string());
        }
        for (name, role) in &self.roles {
            if name.is_empty() {
                out.push("roles: a role with an empty name".to_string());
            }
            if let Some(why) = doc_problem(&role.assume_role_policy_document) {
                out.push(format!("roles.{name}.assumeRolePolicyDocument: {why}"));
            }
            if !SESSION_SECONDS.contains(&role.max_session_duration) {
                out.push(format!(
                    "roles.{name}.maxSessionDuration: {} is outside RAM's {}..{} seconds",
                    role.max_session_duration,
                    SESSION_SECONDS.start(),
                    SESSION_SECONDS.end()
                ));
            }
        }
        for (name, policy) in &self.policies {
            if name.is_empty() {
                out.push("policies: a policy with an empty name".to_string());
            }
            if let Some(doc) = &policy.document
                && let Some(why) = doc_problem(doc)
            {
                out.push(format!("policies.{name}.document: {why}"));
            }
            for (i, v) in policy.versions.iter().enumerate() {
                if let Some(why) = doc_problem(&v.document) {
                    out.push(format!("policies.{name}.versions[{i}].document: {why}"));
                }
                if version_number(&v.id).is_none_or(|n| n == 0) {
                    out.push(format!(
                        "policies.{name}.versions[{i}].id: {:?} is not a version id (v1, v2, ...)",
                        v.id
                    ));
                } else if let Some(first) = policy.versions[..i].iter().position(|w| w.id == v.id) {
                    out.push(format!(
                        "policies.{name}.versions[{i}].id: duplicate version id {:?} (also \
                         versions[{first}])",
                        v.id
                    ));
                }
            }
            match (&policy.document, policy.versions.len()) {
                (None, 0) => out.push(format!(
                    "policies.{name}: neither `document` nor `versions` (a policy always has a \
                     default version)"
                )),
                (Some(_), n) if n > 0 => out.push(format!(
                    "policies.{name}: both `document` and `versions` (`document` is the \
                     shorthand for a single v1; give one of them)"
                )),
                (_, n) if n > MAX_VERSIONS => out.push(format!(
                    "policies.{name}.versions: {n} versions, RAM keeps at most {MAX_VERSIONS}"
                )),
                _ => {}
            }
            if !policy.default_version.is_empty()
                && !policy.versions.is_empty()
                && !policy
                    .versions
                    .iter()
                    .any(|v| v.id == policy.default_version)
            {
                out.push(format!(
                    "policies.{name}.defaultVersion: {:?} is not one of its versions",
                    policy.default_version
                ));
            }
        }
        // An attachment is made by AttachPolicyToRole / AttachPolicyToUser, which refuse a
        // policy that does not exist.
        let attachments = self
            .users
            .iter()
            .map(|(n, u)| ("users", n, &u.policies))
            .chain(self.roles.iter().map(|(n, r)| ("roles", n, &r.policies)));
        for (kind, owner, list) in attachments {
            for (i, a) in list.iter().enumerate() {
                let exists = match a.policy_type.as_str() {
                    "Custom" => self.policies.contains_key(&a.name),
                    "System" => {
                        super::system::builtin().contains_key(&a.name)
                            || self.system_policies.contains_key(&a.name)
                    }
                    other => {
                        out.push(format!(
                            "{kind}.{owner}.policies[{i}].type: {other:?} is neither Custom nor System"
                        ));
                        continue;
                    }
                };
                if !exists {
                    out.push(format!(
                        "{kind}.{owner}.policies[{i}]: no {} policy {:?}{}",
                        a.policy_type,
                        a.name,
                        if a.policy_type == "Custom" {
                            " in policies"
                        } else {
                            " (neither built in nor in systemPolicies)"
                        }
                    ));
                }
            }
        }
        for (region, projects) in &self.projects {
            if region.is_empty() {
                out.push("projects: a region with an empty name".to_string());
            }
            if projects.contains_key("") {
                out.push(format!("projects.{region}: a project with an empty name"));
            }
        }
        out
    }

    /// Write atomically: a temporary file in the same directory, fsync, rename over the
    /// target, then fsync the directory (so the rename itself survives a power loss). A
    /// crash at any point leaves either the old or the new file, never a torn one; a failed
    /// write removes its temporary file and leaves the old file as it was.
    pub fn save(&self, path: &Path) -> Result<(), StateError> {
        use std::io::Write;
        let err = |source| StateError::Write {
            path: path.display().to_string(),
            source,
        };
        let text = if is_yaml(path) {
            serde_yaml::to_string(self).map_err(|e| err(std::io::Error::other(e)))?
        } else {
            serde_json::to_string_pretty(self).map_err(|e| err(std::io::Error::other(e)))?
        };
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => std::path::PathBuf::from("."),
        };
        if dir.exists() && !dir.is_dir() {
            return Err(err(std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                format!("{} is not a directory", dir.display()),
            )));
        }
        std::fs::create_dir_all(&dir).map_err(err)?;
        let mut tmp = tempfile::NamedTempFile::new_in(&dir).map_err(err)?;
        tmp.write_all(text.as_bytes()).map_err(err)?;
        tmp.as_file().sync_all().map_err(err)?;
        tmp.persist(path).map_err(|e| err(e.error))?;
        #[cfg(unix)]
        std::fs::File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(err)?;
        Ok(())
    }

    /// Fill generated fields a hand-written state may omit (ids, dates, `v1` from the
    /// `document` shorthand, the authorized IMM default role).
    pub fn normalize(&mut self, now: &str) {
        let mut counter = 0u64;
        let account = self.account_id.clone();
        for (name, user) in self.users.iter_mut() {
            if user.user_id.is_empty() {
                user.user_id = numeric_id(&format!("{account}/user/{name}"), &mut counter);
            }
            for a in user.policies.iter_mut() {
                if a.attach_date.is_empty() {
                    a.attach_date = now.to_string();
                }
            }
        }
        if self.imm_default_role_authorized && !self.roles.contains_key("AliyunIMMDefaultRole") {
            self.roles.insert(
                "AliyunIMMDefaultRole".to_string(),
                Role {
                    role_id: String::new(),
                    description: "IMM will use this role to access your resources in other services.".to_string(),
                    assume_role_policy_document: DocText(
                        r#"{"Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":["imm.aliyuncs.com"]}}],"Version":"1"}"#
                            .to_string(),
                    ),
                    max_session_duration: 3600,
                    create_date: String::new(),
                    update_date: String::new(),
                    tags: BTreeMap::new(),
                    policies: vec![Attachment {
                        policy_type: "System".to_string(),
                        name: "AliyunIMMDefaultRolePolicy".to_string(),
                        attach_date: String::new(),
                    }],
                },
            );
        }
        for (name, role) in self.roles.iter_mut() {
            if role.role_id.is_empty() {
                role.role_id = numeric_id(&format!("{account}/role/{name}"), &mut counter);
            }
            if role.create_date.is_empty() {
                role.create_date = now.to_string();
            }
            if role.update_date.is_empty() {
                role.update_date = role.create_date.clone();
            }
            for a in role.policies.iter_mut() {
                if a.attach_date.is_empty() {
                    a.attach_date = now.to_string();
                }
            }
        }
        for policy in self.policies.values_mut() {
            if policy.create_date.is_empty() {
                policy.create_date = now.to_string();
            }
            if policy.update_date.is_empty() {
                policy.update_date = policy.create_date.clone();
            }
            if let Some(doc) = policy.document.take()
                && policy.versions.is_empty()
            {
                policy.versions.push(PolicyVersion {
                    id: "v1".to_string(),
                    document: doc,
                    create_date: policy.create_date.clone(),
                });
            }
            for v in policy.versions.iter_mut() {
                if v.create_date.is_empty() {
                    v.create_date = policy.create_date.clone();
                }
            }
            let max = policy
                .versions
                .iter()
                .filter_map(|v| version_number(&v.id))
                .max()
                .unwrap_or(0);
            policy.last_version_number = policy.last_version_number.max(max);
            if policy.default_version.is_empty()
                || !policy
                    .versions
                    .iter()
                    .any(|v| v.id == policy.default_version)
            {
                policy.default_version = policy
                    .versions
                    .first()
                    .map(|v| v.id.clone())
                    .unwrap_or_default();
            }
        }
        for projects in self.projects.values_mut() {
            for p in projects.values_mut() {
                if p.create_time.is_empty() {
                    p.create_time = now.to_string();
                }
                if p.update_time.is_empty() {
                    p.update_time = p.create_time.clone();
                }
            }
        }
    }
}

/// `v7` -> 7.
pub fn version_number(id: &str) -> Option<u32> {
    id.strip_prefix('v')?.parse().ok()
}

/// A stable 16-digit numeric id derived from a seed (so a hand-written state gets the same
/// ids on every load).
fn numeric_id(seed: &str, counter: &mut u64) -> String {
    use sha2::Digest;
    *counter += 1;
    let h = sha2::Sha256::digest(seed.as_bytes());
    let n = u64::from_be_bytes(h[..8].try_into().expect("8 bytes")) % 9_000_000_000_000_000;
    format!("{}", 1_000_000_000_000_000 + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_state_is_the_default_account_and_a_partial_one_is_refused() {
        assert_eq!(State::from_text(" \n").unwrap(), State::default());
        assert!(State::from_text("{\n  \"accountId\": \"1\",\n").is_err());
        assert!(State::from_text("roles: [").is_err());
        assert!(State::from_text("unknownField: 1").is_err());
    }

    /// Found by a tester: such a state loaded silently, and its key failed only at call time
    /// (`InvalidAccessKeyId.NotFound`). Every problem is named, with where it is.
    #[test]
    fn a_nonsense_state_is_refused_naming_the_file_and_every_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.yaml");
        std::fs::write(
            &path,
            r#"
users:
  admin: {policies: [{type: System, name: NoSuchSystem}]}
  "": {}
accessKeys:
  - {id: k1, secret: s, user: admin}
  - {id: k2, secret: s, user: ghost}
  - {id: k1, secret: s2}
roles:
  media-app:
    assumeRolePolicyDocument: "not json"
    maxSessionDuration: 60
    policies: [{type: Custom, name: nope}]
  "":
    assumeRolePolicyDocument: {Version: "1", Statement: []}
policies:
  p:
    document: "not json"
  q:
    versions: [{id: v1, document: "[1]"}]
  "":
    document: {}
  r: {}
  s: {document: {}, versions: [{id: v1, document: {}}]}
  t:
    defaultVersion: v9
    versions: [{id: v1, document: {}}, {id: v1, document: {}}, {id: banana, document: {}}]
  u:
    versions: [{id: v1, document: {}}, {id: v2, document: {}}, {id: v3, document: {}}, {id: v4, document: {}}, {id: v5, document: {}}, {id: v6, document: {}}]
projects:
  "":
    media: {}
  cn-hangzhou:
    "": {}
"#,
        )
        .unwrap();
        let err = State::load(&path, "2026-01-01T00:00:00Z")
            .unwrap_err()
            .to_string();
        for want in [
            "bad.yaml",
            "accessKeys[1].user: no user \"ghost\"",
            "accessKeys[2].id: duplicate access key id \"k1\" (also accessKeys[0])",
            "users: a user with an empty name",
            "roles.media-app.assumeRolePolicyDocument: is not valid JSON",
            "roles.media-app.maxSessionDuration: 60 is outside RAM's 3600..43200",
            "roles: a role with an empty name",
            "policies.p.document: is not valid JSON",
            "policies.q.versions[0].document: is not a JSON object",
            "policies: a policy with an empty name",
            "projects: a region with an empty name",
            "projects.cn-hangzhou: a project with an empty name",
            "policies.r: neither `document` nor `versions`",
            "policies.s: both `document` and `versions`",
            "policies.t.versions[1].id: duplicate version id \"v1\" (also versions[0])",
            "policies.t.versions[2].id: \"banana\" is not a version id",
            "policies.t.defaultVersion: \"v9\" is not one of its versions",
            "policies.u.versions: 6 versions, RAM keeps at most 5",
            "roles.media-app.policies[0]: no Custom policy \"nope\" in policies",
            "users.admin.policies[0]: no System policy \"NoSuchSystem\"",
        ] {
            assert!(err.contains(want), "{want:?} missing from:\n{err}");
        }
        // The 3600 and 43200 bounds themselves are what CreateRole accepts.
        for ok in [3600, 43200] {
            let st = State::from_text(&format!(
                "roles:\n  r:\n    assumeRolePolicyDocument: {{}}\n    maxSessionDuration: {ok}\n"
            ))
            .unwrap();
            assert!(st.problems().is_empty(), "{:?}", st.problems());
        }
    }

    #[test]
    fn the_demo_seed_and_the_default_account_have_no_problems() {
        let seed = State::from_text(include_str!("../../manifests/demo-live-state.yaml")).unwrap();
        assert!(seed.problems().is_empty(), "{:?}", seed.problems());
        assert!(State::default().problems().is_empty());
    }

    #[test]
    fn the_documented_example_state_loads() {
        let doc = include_str!("../../docs/emulator.md");
        let yaml = doc
            .split("```yaml\n")
            .nth(1)
            .and_then(|rest| rest.split("```").next())
            .expect("docs/emulator.md has a yaml example");
        let mut st = State::from_text(yaml).unwrap();
        assert!(st.problems().is_empty(), "{:?}", st.problems());
        st.normalize("2026-01-01T00:00:00Z");
        assert_eq!(st.access_keys.len(), 3);
        assert_eq!(st.roles["media-imm"].policies[0].name, "media-oss");
        assert!(st.roles.contains_key("AliyunIMMDefaultRole"));
        assert_eq!(st.policies["media-oss"].versions[0].id, "v1");
        assert_eq!(
            st.projects["cn-hangzhou"]["media"].service_role,
            "media-imm"
        );
    }

    #[test]
    fn a_failed_save_leaves_the_old_file_and_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        State::default().save(&path).unwrap();
        let before = std::fs::read(&path).unwrap();
        // The target is now a directory's name: the rename fails after the temporary file
        // was written.
        let blocked = dir.path().join("blocked");
        std::fs::create_dir(&blocked).unwrap();
        std::fs::write(blocked.join("x"), "keep the directory non-empty").unwrap();
        assert!(State::default().save(&blocked).is_err());
        assert_eq!(std::fs::read(&path).unwrap(), before);
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }
}
