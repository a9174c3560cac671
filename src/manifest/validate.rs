//! Typed documents -> [`Desired`], checking every RAM / IMM rule that can be checked offline
//! (reference/alibaba-api.md §3.1 and §4; DESIGN.md §2 and §3): names, lengths, ranges, policy
//! grammar and size, attachment limits, protected names, tags, duplicate names across files,
//! and references between manifests. `ImmServiceRole` documents are expanded here too (see
//! [`super::expand`]).
//!
//! Every finding carries a stable code, the `file:line:column` of the offending value and
//! the resource address. The codes are listed in `docs/manifests.md`; never reuse one for a
//! different rule.
//!
//! No I/O except reading a policy's `documentFile` (through the caller's reader, which
//! enforces the same size limit as manifest files).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use super::diagnostic::Diagnostic;
use super::expand;
use super::model::*;
use super::parse::{
    API_VERSION, ImmServiceRoleSpec, KINDS, ParsedDocument, PolicySpec, ProjectSpec, RawTags,
    RoleSpec, SKIPPED_KIND, Spec,
};
use super::positions::{self, DocIndex, Pos};
use crate::policy::PolicyDocument;
use crate::policy::grammar::{self, DocKind};

/// Finding codes. Stable: documented in `docs/manifests.md`.
pub mod codes {
    /// A path or file could not be read.
    pub const IO: &str = "E100";
    /// A file is larger than the manifest size limit.
    pub const TOO_LARGE: &str = "E101";
    /// A file is not UTF-8 text (binary).
    pub const NOT_TEXT: &str = "E102";
    /// YAML syntax (including tabs, alias bombs, deep nesting).
    pub const SYNTAX: &str = "E103";
    /// Schema: unknown field, wrong type, missing field, duplicate key.
    pub const SCHEMA: &str = "E104";
    /// `apiVersion` is not `immctl/v1`.
    pub const API_VERSION: &str = "E105";
    /// Unknown `kind`.
    pub const KIND: &str = "E106";
    /// Nothing to manage: no manifest files, or no resource in them.
    pub const NOTHING: &str = "E110";
    /// `document` / `documentFile`: neither or both, or the file is unusable.
    pub const DOCUMENT_SOURCE: &str = "E111";
    /// A name breaks the RAM / IMM naming rules.
    pub const NAME: &str = "E120";
    /// A description is empty or too long.
    pub const DESCRIPTION: &str = "E121";
    /// A number is out of the service's range (`maxSessionDuration`, IMM limits).
    pub const RANGE: &str = "E122";
    /// Two manifests declare the same resource.
    pub const DUPLICATE: &str = "E123";
    /// A protected name (`Aliyun*` roles are the cloud's own).
    pub const PROTECTED: &str = "E124";
    /// More attachments than RAM allows on one role.
    pub const ATTACHMENT_LIMIT: &str = "E125";
    /// The same entry listed twice (attachment, bucket).
    pub const REPEATED: &str = "E126";
    /// A region that is not a region id.
    pub const REGION: &str = "E127";
    /// A tag breaks the rules (reserved key, length, count).
    pub const TAG: &str = "E128";
    /// An OSS bucket name breaks OSS's naming rules.
    pub const BUCKET: &str = "E129";
    /// Policy grammar ([`crate::policy::grammar::codes::GRAMMAR`]).
    pub const GRAMMAR: &str = crate::policy::grammar::codes::GRAMMAR;
    /// Policy document too large.
    pub const DOCUMENT_SIZE: &str = crate::policy::grammar::codes::SIZE;
    /// `Principal` missing in a trust policy or present in a permission policy.
    pub const PRINCIPAL: &str = crate::policy::grammar::codes::PRINCIPAL;
    /// `ImmServiceRole` problems (no buckets, generated name clash).
    pub const IMM_SERVICE_ROLE: &str = "E140";
    /// A file declares nothing.
    pub const EMPTY_FILE: &str = "W100";
    /// A role attaches a Custom policy that these manifests do not declare.
    pub const UNDECLARED_POLICY: &str = "W200";
}

/// Custom / System policies one role may carry (reference §3.1, current limits page).
pub const MAX_CUSTOM_ATTACHMENTS: usize = 10;
pub const MAX_SYSTEM_ATTACHMENTS: usize = 20;
/// Tags per role or policy (RAM's number for users; UNCONFIRMED for roles and policies).
pub const MAX_TAGS: usize = 20;

/// Reads a `documentFile`: the loader's reader (size-capped, UTF-8 checked). `Err` is a
/// finding message.
pub type ReadFile<'r> = dyn FnMut(&Path) -> Result<String, (&'static str, String)> + 'r;

/// Accumulates the desired state and the findings over every document of a run.
pub struct Builder {
    default_region: String,
    pub desired: Desired,
    pub diagnostics: Vec<Diagnostic>,
    /// Where each resource was first declared, for duplicate findings.
    policy_at: BTreeMap<String, Source>,
    role_at: BTreeMap<String, Source>,
    project_at: BTreeMap<ProjectKey, Source>,
    /// Custom policies named by roles: checked against the declared set at the end.
    references: Vec<(Address, String, Source)>,
    /// Resource documents seen (valid or not).
    pub resources: usize,
    /// Policy document files read (for the manifest digest).
    pub document_files: BTreeSet<PathBuf>,
}

/// One document's context: its file and position index.
struct Doc<'a> {
    file: &'a Path,
    index: &'a DocIndex,
}

impl Doc<'_> {
    fn at(&self, path: &str) -> Source {
        self.source(self.index.value(path))
    }
    fn key_at(&self, path: &str) -> Source {
        self.source(self.index.key(path))
    }
    fn source(&self, pos: Pos) -> Source {
        Source {
            file: self.file.to_path_buf(),
            line: pos.line,
            column: pos.column,
        }
    }
}

impl Builder {
    pub fn new(default_region: &str) -> Builder {
        Builder {
            default_region: default_region.to_string(),
            desired: Desired::default(),
            diagnostics: Vec::new(),
            policy_at: BTreeMap::new(),
            role_at: BTreeMap::new(),
            project_at: BTreeMap::new(),
            references: Vec::new(),
            resources: 0,
            document_files: BTreeSet::new(),
        }
    }

    fn error(&mut self, code: &str, src: Source, addr: Option<&Address>, msg: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::error(code, Some(src), addr.cloned(), msg));
    }

    fn warning(&mut self, code: &str, src: Source, addr: Option<&Address>, msg: impl Into<String>) {
        self.diagnostics
            .push(Diagnostic::warning(code, Some(src), addr.cloned(), msg));
    }

    /// Add one parsed document of `file`.
    pub fn document(&mut self, file: &Path, parsed: &ParsedDocument, read: &mut ReadFile<'_>) {
        let Some(raw) = &parsed.doc else { return };
        let d = Doc {
            file,
            index: &parsed.index,
        };
        let start = d.source(parsed.index.start);
        let Some(kind) = raw.kind.as_deref() else {
            self.error(
                codes::SCHEMA,
                start,
                None,
                format!("missing `kind` (one of {})", KINDS.join(", ")),
            );
            return;
        };
        if kind == SKIPPED_KIND {
            return;
        }
        if !KINDS.contains(&kind) {
            self.error(
                codes::KIND,
                d.at("kind"),
                None,
                format!(
                    "unknown kind {kind:?}; expected one of {}",
                    KINDS.join(", ")
                ),
            );
            return;
        }
        self.resources += 1;
        match raw.api_version.as_deref() {
            Some(API_VERSION) => {}
            Some(v) => self.error(
                codes::API_VERSION,
                d.at("apiVersion"),
                None,
                format!("apiVersion {v:?} is not supported; use {API_VERSION}"),
            ),
            None => self.error(
                codes::SCHEMA,
                start.clone(),
                None,
                format!("missing `apiVersion` ({API_VERSION})"),
            ),
        }
        let Some(meta) = &raw.metadata else {
            self.error(
                codes::SCHEMA,
                start,
                None,
                "missing `metadata` (with `name`)",
            );
            return;
        };
        let name = meta.name.as_str();
        let Some(spec) = &raw.spec else {
            let addr = match kind {
                "Policy" => Address::policy(name),
                "Project" => Address(format!("imm_project.{name}")),
                _ => Address::role(name),
            };
            self.error(codes::SCHEMA, start, Some(&addr), "missing `spec`");
            return;
        };
        match spec {
            Spec::Policy(s) => self.policy(&d, name, s, read),
            Spec::Role(s) => self.role(&d, name, s),
            Spec::Project(s) => self.project(&d, name, s),
            Spec::ImmServiceRole(s) => self.imm_service_role(&d, name, s),
            Spec::Ignored => {}
        }
    }

    // -----------------------------------------------------------------------------------
    // Policy

    fn policy(&mut self, d: &Doc<'_>, name: &str, s: &PolicySpec, read: &mut ReadFile<'_>) {
        let addr = Address::policy(name);
        self.check_policy_name(d, &addr, name, "metadata.name");
        let description = self.description(d, &addr, s.description.as_deref(), 1024);
        self.tags(d, &addr, &s.tags);
        let document = match (&s.document, &s.document_file) {
            (Some(_), Some(_)) => {
                self.error(
                    codes::DOCUMENT_SOURCE,
                    d.key_at("spec.documentFile"),
                    Some(&addr),
                    "give either `document` or `documentFile`, not both",
                );
                None
            }
            (None, None) => {
                self.error(
                    codes::DOCUMENT_SOURCE,
                    d.key_at("spec"),
                    Some(&addr),
                    "missing `document` (the policy as a map) or `documentFile` (a JSON file)",
                );
                None
            }
            (Some(doc), None) => {
                let ok = self.grammar(d, &addr, doc, DocKind::Permission, "spec.document");
                ok.then(|| PolicyDocument(doc.clone()))
            }
            (None, Some(rel)) => self.document_file(d, &addr, rel, read),
        };
        let source = d.at("metadata.name");
        if !self.claim_policy(name, &source, &addr) {
            return;
        }
        if let Some(document) = document {
            self.desired.policies.insert(
                name.to_string(),
                DesiredPolicy {
                    name: name.to_string(),
                    description,
                    document,
                    tags: s.tags.clone(),
                    deletion_policy: s.deletion_policy,
                    adopt: s.adopt,
                    source,
                    expanded_from: None,
                },
            );
        }
    }

    /// Read and check a `documentFile` (relative to the manifest). Findings inside the JSON
    /// file point into that file.
    fn document_file(
        &mut self,
        d: &Doc<'_>,
        addr: &Address,
        rel: &str,
        read: &mut ReadFile<'_>,
    ) -> Option<PolicyDocument> {
        let at = d.at("spec.documentFile");
        if rel.trim().is_empty() {
            self.error(
                codes::DOCUMENT_SOURCE,
                at,
                Some(addr),
                "`documentFile` is empty",
            );
            return None;
        }
        let path = d
            .file
            .parent()
            .map(|p| p.join(rel))
            .unwrap_or_else(|| PathBuf::from(rel));
        let text = match read(&path) {
            Ok(t) => t,
            Err((code, msg)) => {
                let code = if code == codes::IO {
                    codes::DOCUMENT_SOURCE
                } else {
                    code
                };
                self.error(
                    code,
                    at,
                    Some(addr),
                    format!("documentFile {}: {msg}", path.display()),
                );
                return None;
            }
        };
        self.document_files.insert(path.clone());
        let value: serde_json::Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                self.error(
                    codes::DOCUMENT_SOURCE,
                    Source {
                        file: path.clone(),
                        line: e.line().max(1),
                        column: e.column().max(1),
                    },
                    Some(addr),
                    format!("not valid JSON: {}", strip_json_position(&e.to_string())),
                );
                return None;
            }
        };
        let index = positions::index(&text)
            .into_iter()
            .next()
            .unwrap_or_default();
        let json_doc = Doc {
            file: &path,
            index: &index,
        };
        let ok = self.grammar(&json_doc, addr, &value, DocKind::Permission, "");
        ok.then_some(PolicyDocument(value))
    }

    /// Check a document's grammar; findings at `prefix` + the problem's path. True when valid.
    fn grammar(
        &mut self,
        d: &Doc<'_>,
        addr: &Address,
        doc: &serde_json::Value,
        kind: DocKind,
        prefix: &str,
    ) -> bool {
        let problems = grammar::check(doc, kind);
        for p in &problems {
            let path = match (prefix.is_empty(), p.path.is_empty()) {
                (true, _) => p.path.clone(),
                (false, true) => prefix.to_string(),
                (false, false) => format!("{prefix}.{}", p.path),
            };
            self.error(p.code, d.at(&path), Some(addr), p.message.clone());
        }
        problems.is_empty()
    }

    // -----------------------------------------------------------------------------------
    // Role

    fn role(&mut self, d: &Doc<'_>, name: &str, s: &RoleSpec) {
        let addr = Address::role(name);
        let name_ok = self.check_role_name(d, &addr, name);
        let description = self.description(d, &addr, s.description.as_deref(), 1024);
        let max_session_duration = self.session_duration(d, &addr, s.max_session_duration);
        self.tags(d, &addr, &s.tags);
        let trust_ok = self.grammar(
            d,
            &addr,
            &s.trust_policy,
            DocKind::Trust,
            "spec.trustPolicy",
        );
        let policies = self.attachments(d, &addr, s);
        let source = d.at("metadata.name");
        if !self.claim_role(name, &source, &addr) || !name_ok || !trust_ok {
            return;
        }
        self.desired.roles.insert(
            name.to_string(),
            DesiredRole {
                name: name.to_string(),
                description,
                max_session_duration,
                trust_policy: PolicyDocument(s.trust_policy.clone()),
                policies,
                tags: s.tags.clone(),
                deletion_policy: s.deletion_policy,
                adopt: s.adopt,
                source,
                expanded_from: None,
            },
        );
    }

    /// The role's `policies`: no repeats, within RAM's per-role limits; Custom names checked
    /// against the declared set at the end of the run.
    fn attachments(&mut self, d: &Doc<'_>, addr: &Address, s: &RoleSpec) -> BTreeSet<PolicyRef> {
        let mut out = BTreeSet::new();
        for (i, p) in s.policies.iter().enumerate() {
            let path = format!("spec.policies[{i}].name");
            let r = PolicyRef {
                policy_type: p.policy_type,
                name: p.name.clone(),
            };
            if p.policy_type == PolicyType::Custom {
                if !self.check_policy_name(d, addr, &p.name, &path) {
                    continue;
                }
                self.references
                    .push((addr.clone(), p.name.clone(), d.at(&path)));
            } else if p.name.is_empty() {
                self.error(codes::NAME, d.at(&path), Some(addr), "policy name is empty");
                continue;
            }
            if !out.insert(r) {
                self.error(
                    codes::REPEATED,
                    d.at(&path),
                    Some(addr),
                    format!("{} policy {:?} is listed twice", p.policy_type, p.name),
                );
            }
        }
        for (ty, max) in [
            (PolicyType::Custom, MAX_CUSTOM_ATTACHMENTS),
            (PolicyType::System, MAX_SYSTEM_ATTACHMENTS),
        ] {
            let n = out.iter().filter(|r| r.policy_type == ty).count();
            if n > max {
                self.error(
                    codes::ATTACHMENT_LIMIT,
                    d.key_at("spec.policies"),
                    Some(addr),
                    format!("{n} {ty} policies attached; RAM allows at most {max} per role"),
                );
            }
        }
        out
    }

    fn session_duration(&mut self, d: &Doc<'_>, addr: &Address, v: Option<u32>) -> u32 {
        match v {
            None => 3600,
            Some(v @ 3600..=43200) => v,
            Some(v) => {
                self.error(
                    codes::RANGE,
                    d.at("spec.maxSessionDuration"),
                    Some(addr),
                    format!("maxSessionDuration {v} is out of range: 3600 to 43200 seconds"),
                );
                3600
            }
        }
    }

    // -----------------------------------------------------------------------------------
    // Project

    fn project(&mut self, d: &Doc<'_>, name: &str, s: &ProjectSpec) {
        let region = s
            .region
            .clone()
            .unwrap_or_else(|| self.default_region.clone());
        let key = ProjectKey {
            region: region.clone(),
            name: name.to_string(),
        };
        let addr = Address::project(&key);
        let mut ok = true;
        if !valid_project_name(name) {
            ok = false;
            self.error(
                codes::NAME,
                d.at("metadata.name"),
                Some(&addr),
                format!(
                    "project name {name:?} is invalid: 1-128 letters, digits, '_' or '-', starting with a letter or '_'"
                ),
            );
        }
        if !valid_region(&region) {
            ok = false;
            let at = if s.region.is_some() {
                d.at("spec.region")
            } else {
                d.at("metadata.name")
            };
            self.error(
                codes::REGION,
                at,
                Some(&addr),
                format!("{region:?} is not a region id (e.g. cn-hangzhou, ap-southeast-1)"),
            );
        }
        let description = self.description(d, &addr, s.description.as_deref(), 256);
        let service_role = s
            .service_role
            .clone()
            .unwrap_or_else(|| IMM_DEFAULT_ROLE.to_string());
        if s.service_role.is_some() && !valid_role_name(&service_role) {
            ok = false;
            self.error(
                codes::NAME,
                d.at("spec.serviceRole"),
                Some(&addr),
                format!("serviceRole {service_role:?} is not a RAM role name: 1-64 letters, digits, '.' or '-'"),
            );
        }
        if let Some(t) = &s.template_id
            && t.trim().is_empty()
        {
            self.error(
                codes::SCHEMA,
                d.at("spec.templateId"),
                Some(&addr),
                "templateId is empty; leave it out to keep the project's template",
            );
        }
        let limits = ProjectLimits {
            project_queries_per_second: s.project_queries_per_second,
            engine_concurrency: s.engine_concurrency,
            project_max_dataset_count: s.project_max_dataset_count,
            dataset_max_bind_count: s.dataset_max_bind_count,
            dataset_max_file_count: s.dataset_max_file_count,
            dataset_max_entity_count: s.dataset_max_entity_count,
            dataset_max_relation_count: s.dataset_max_relation_count,
            dataset_max_total_file_size: s.dataset_max_total_file_size,
        };
        for (field, value, max) in limit_ranges(&limits) {
            if let Some(v) = value
                && !(1..=max).contains(&v)
            {
                self.error(
                    codes::RANGE,
                    d.at(&format!("spec.{field}")),
                    Some(&addr),
                    format!("{field} {v} is out of range: 1 to {max}"),
                );
            }
        }
        self.project_tags(d, &addr, &s.tags);
        let buckets = self.buckets(d, &addr, &s.buckets);
        let source = d.at("metadata.name");
        if !self.claim_project(&key, &source, &addr) || !ok {
            return;
        }
        self.desired.projects.insert(
            key,
            DesiredProject {
                region,
                name: name.to_string(),
                service_role,
                description,
                template_id: s.template_id.clone().filter(|t| !t.trim().is_empty()),
                limits,
                tags: s.tags.clone(),
                buckets,
                deletion_policy: s.deletion_policy,
                adopt: s.adopt,
                source,
            },
        );
    }

    fn buckets(&mut self, d: &Doc<'_>, addr: &Address, buckets: &[String]) -> Vec<String> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for (i, b) in buckets.iter().enumerate() {
            let at = d.at(&format!("spec.buckets[{i}]"));
            if !valid_bucket(b) {
                self.error(
                    codes::BUCKET,
                    at,
                    Some(addr),
                    format!(
                        "{b:?} is not an OSS bucket name: 3-63 lowercase letters, digits and '-', starting and ending with a letter or digit"
                    ),
                );
            } else if !seen.insert(b.clone()) {
                self.error(
                    codes::REPEATED,
                    at,
                    Some(addr),
                    format!("bucket {b:?} is listed twice"),
                );
            } else {
                out.push(b.clone());
            }
        }
        out
    }

    // -----------------------------------------------------------------------------------
    // ImmServiceRole

    fn imm_service_role(&mut self, d: &Doc<'_>, name: &str, s: &ImmServiceRoleSpec) {
        let addr = Address::role(name);
        let name_ok = self.check_role_name(d, &addr, name);
        let description = self.description(d, &addr, s.description.as_deref(), 1024);
        let max_session_duration = self.session_duration(d, &addr, s.max_session_duration);
        self.tags(d, &addr, &s.tags);
        if s.buckets.is_empty() {
            self.error(
                codes::IMM_SERVICE_ROLE,
                d.key_at("spec.buckets"),
                Some(&addr),
                "an ImmServiceRole needs at least one bucket: the OSS buckets its projects work on",
            );
        }
        let buckets = self.buckets(d, &addr, &s.buckets);
        // Extra statements are checked on their own, so findings point at them.
        let extra_doc = serde_json::json!({"Version": "1", "Statement": s.extra_statements});
        let mut extra_ok = true;
        if !s.extra_statements.is_empty() {
            for p in grammar::check(&extra_doc, DocKind::Permission) {
                extra_ok = false;
                let path = p.path.replacen("Statement", "spec.extraStatements", 1);
                self.error(p.code, d.at(&path), Some(&addr), p.message);
            }
        }
        let source = d.at("metadata.name");
        let expansion = expand::expand(
            name,
            &expand::ImmServiceRoleInput {
                description,
                buckets,
                extra_statements: s.extra_statements.clone(),
                max_session_duration,
                tags: s.tags.clone(),
                deletion_policy: s.deletion_policy,
                adopt: s.adopt,
            },
            &source,
        );
        let policy_addr = Address::policy(&expansion.policy.name);
        if extra_ok {
            for p in grammar::check(&expansion.policy.document.0, DocKind::Permission) {
                self.error(
                    p.code,
                    d.key_at("spec.buckets"),
                    Some(&policy_addr),
                    format!(
                        "the generated policy {}: {}",
                        expansion.policy.name, p.message
                    ),
                );
                extra_ok = false;
            }
        }
        let role_claimed = self.claim_role(name, &source, &addr);
        let policy_claimed = self.claim_policy(&expansion.policy.name, &source, &policy_addr);
        if !role_claimed || !policy_claimed || !name_ok || !extra_ok || s.buckets.is_empty() {
            return;
        }
        self.desired
            .policies
            .insert(expansion.policy.name.clone(), expansion.policy);
        self.desired.roles.insert(name.to_string(), expansion.role);
    }

    // -----------------------------------------------------------------------------------
    // Shared checks

    fn check_role_name(&mut self, d: &Doc<'_>, addr: &Address, name: &str) -> bool {
        if !valid_role_name(name) {
            self.error(
                codes::NAME,
                d.at("metadata.name"),
                Some(addr),
                format!("role name {name:?} is invalid: 1-64 letters, digits, '.' or '-'"),
            );
            return false;
        }
        if is_protected_role_name(name) {
            self.error(
                codes::PROTECTED,
                d.at("metadata.name"),
                Some(addr),
                format!(
                    "role {name:?} is protected: `Aliyun*` roles belong to Alibaba Cloud services and immctl never creates or changes them; choose another name"
                ),
            );
            return false;
        }
        true
    }

    fn check_policy_name(&mut self, d: &Doc<'_>, addr: &Address, name: &str, path: &str) -> bool {
        if valid_policy_name(name) {
            return true;
        }
        self.error(
            codes::NAME,
            d.at(path),
            Some(addr),
            format!("policy name {name:?} is invalid: 1-128 letters, digits or '-'"),
        );
        false
    }

    /// `None` (not managed) stays `None`; an empty or too long text is an error.
    fn description(
        &mut self,
        d: &Doc<'_>,
        addr: &Address,
        text: Option<&str>,
        max: usize,
    ) -> Option<String> {
        let text = text?;
        let n = text.chars().count();
        if n == 0 {
            self.error(
                codes::DESCRIPTION,
                d.at("spec.description"),
                Some(addr),
                "description is empty; leave it out to leave the live description alone",
            );
            return None;
        }
        if n > max {
            self.error(
                codes::DESCRIPTION,
                d.at("spec.description"),
                Some(addr),
                format!("description is {n} characters; at most {max} are allowed"),
            );
            return None;
        }
        Some(text.to_string())
    }

    /// RAM tags (roles, policies).
    fn tags(&mut self, d: &Doc<'_>, addr: &Address, tags: &RawTags) {
        self.tag_rules(d, addr, tags, MAX_TAGS, &["aliyun", "acs:"]);
    }

    /// IMM project tags.
    fn project_tags(&mut self, d: &Doc<'_>, addr: &Address, tags: &RawTags) {
        self.tag_rules(d, addr, tags, MAX_TAGS, &["aliyun", "acs:"]);
    }

    fn tag_rules(
        &mut self,
        d: &Doc<'_>,
        addr: &Address,
        tags: &RawTags,
        max: usize,
        reserved_prefixes: &[&str],
    ) {
        if tags.len() > max {
            self.error(
                codes::TAG,
                d.key_at("spec.tags"),
                Some(addr),
                format!(
                    "{} tags; at most {max} are allowed (immctl adds its owner tag too)",
                    tags.len()
                ),
            );
        }
        for (k, v) in tags {
            let at = d.key_at(&format!("spec.tags.{k}"));
            if k.is_empty() || k.chars().count() > 128 {
                self.error(
                    codes::TAG,
                    at,
                    Some(addr),
                    format!("tag key {k:?} must be 1-128 characters"),
                );
            } else if k == OWNER_TAG_KEY || k == RETAIN_TAG_KEY {
                self.error(
                    codes::TAG,
                    at,
                    Some(addr),
                    format!("tag {k:?} is set by immctl itself (owner setting, deletionPolicy); remove it"),
                );
            } else if let Some(p) = reserved_prefixes.iter().find(|p| k.starts_with(**p)) {
                self.error(
                    codes::TAG,
                    at,
                    Some(addr),
                    format!("tag keys starting with {p:?} are reserved for Alibaba Cloud"),
                );
            } else if v.chars().count() > 256 {
                self.error(
                    codes::TAG,
                    d.at(&format!("spec.tags.{k}")),
                    Some(addr),
                    format!("the value of tag {k:?} is longer than 256 characters"),
                );
            }
        }
    }

    /// Record a declaration; a second one is an error naming both places.
    fn claim_policy(&mut self, name: &str, at: &Source, addr: &Address) -> bool {
        if let Some(first) = self.policy_at.get(name).cloned() {
            self.error(
                codes::DUPLICATE,
                at.clone(),
                Some(addr),
                format!("policy {name:?} is also declared at {first}"),
            );
            return false;
        }
        self.policy_at.insert(name.to_string(), at.clone());
        true
    }

    fn claim_role(&mut self, name: &str, at: &Source, addr: &Address) -> bool {
        if let Some(first) = self.role_at.get(name).cloned() {
            self.error(
                codes::DUPLICATE,
                at.clone(),
                Some(addr),
                format!("role {name:?} is also declared at {first}"),
            );
            return false;
        }
        self.role_at.insert(name.to_string(), at.clone());
        true
    }

    fn claim_project(&mut self, key: &ProjectKey, at: &Source, addr: &Address) -> bool {
        if let Some(first) = self.project_at.get(key).cloned() {
            self.error(
                codes::DUPLICATE,
                at.clone(),
                Some(addr),
                format!("project {key} is also declared at {first}"),
            );
            return false;
        }
        self.project_at.insert(key.clone(), at.clone());
        true
    }

    /// End of the run: references between manifests.
    pub fn finish(mut self) -> (Desired, Vec<Diagnostic>) {
        let references = std::mem::take(&mut self.references);
        for (addr, policy, at) in references {
            if !self.policy_at.contains_key(&policy) {
                self.warning(
                    codes::UNDECLARED_POLICY,
                    at,
                    Some(&addr),
                    format!(
                        "Custom policy {policy:?} is not declared in these manifests; it must already exist in the account (or add `type: System` if it is a System policy)"
                    ),
                );
            }
        }
        (self.desired, self.diagnostics)
    }
}

/// RAM role names: 1-64 letters, digits, `.` and `-`.
pub fn valid_role_name(n: &str) -> bool {
    (1..=64).contains(&n.chars().count())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '-')
}

/// RAM policy names: 1-128 letters, digits and `-`.
pub fn valid_policy_name(n: &str) -> bool {
    (1..=128).contains(&n.chars().count())
        && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// IMM project names: `^[A-Za-z_][A-Za-z0-9_-]{0,127}$`.
pub fn valid_project_name(n: &str) -> bool {
    let mut chars = n.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        && n.len() <= 128
}

/// Region ids: lowercase words joined by `-`, at least two parts (`cn-hangzhou`,
/// `ap-southeast-1`).
pub fn valid_region(r: &str) -> bool {
    let parts: Vec<&str> = r.split('-').collect();
    r.len() <= 64
        && parts.len() >= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts[0].chars().all(|c| c.is_ascii_lowercase())
}

/// OSS bucket names: 3-63 lowercase letters, digits and `-`, starting and ending with a
/// letter or digit.
pub fn valid_bucket(b: &str) -> bool {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    (3..=63).contains(&b.len())
        && b.chars().all(|c| ok_char(c) || c == '-')
        && b.chars().next().is_some_and(ok_char)
        && b.chars().last().is_some_and(ok_char)
}

/// Each IMM limit with its manifest field name and the service's maximum (the emulator
/// enforces the same figures; reference §4.2).
fn limit_ranges(l: &ProjectLimits) -> [(&'static str, Option<i64>, i64); 8] {
    [
        (
            "projectQueriesPerSecond",
            l.project_queries_per_second,
            10_000,
        ),
        ("engineConcurrency", l.engine_concurrency, 10_000),
        (
            "projectMaxDatasetCount",
            l.project_max_dataset_count,
            1_000_000_000,
        ),
        ("datasetMaxBindCount", l.dataset_max_bind_count, 10),
        (
            "datasetMaxFileCount",
            l.dataset_max_file_count,
            10_000_000_000,
        ),
        (
            "datasetMaxEntityCount",
            l.dataset_max_entity_count,
            10_000_000_000,
        ),
        (
            "datasetMaxRelationCount",
            l.dataset_max_relation_count,
            100_000_000_000,
        ),
        (
            "datasetMaxTotalFileSize",
            l.dataset_max_total_file_size,
            90_000_000_000_000_000,
        ),
    ]
}

/// serde_json appends " at line L column C"; the finding shows the position already.
fn strip_json_position(m: &str) -> String {
    match m.rfind(" at line ") {
        Some(i) => m[..i].to_string(),
        None => m.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_services_rules() {
        assert!(valid_role_name("imm-media.role-1"));
        assert!(!valid_role_name(""));
        assert!(!valid_role_name(&"r".repeat(65)));
        assert!(!valid_role_name("a_b"));
        assert!(!valid_role_name("a@b"));
        assert!(valid_policy_name(&"p".repeat(128)));
        assert!(!valid_policy_name("a.b"));
        assert!(!valid_policy_name(&"p".repeat(129)));
        assert!(valid_project_name("_media-library_2"));
        assert!(!valid_project_name("2media"));
        assert!(!valid_project_name("media.library"));
        assert!(valid_region("cn-hangzhou"));
        assert!(valid_region("ap-southeast-1"));
        assert!(!valid_region("hangzhou"));
        assert!(!valid_region("cn-Hangzhou"));
        assert!(!valid_region("1-a"));
        assert!(valid_bucket("media-bucket-01"));
        assert!(!valid_bucket("Media"));
        assert!(!valid_bucket("ab"));
        assert!(!valid_bucket("-media"));
        assert!(!valid_bucket("media-"));
        assert!(!valid_bucket("media_bucket"));
    }
}
