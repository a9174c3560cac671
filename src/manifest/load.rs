//! `load`: manifest paths -> [`Desired`] plus every finding of the run.
//!
//! The stages, each reporting all it finds before the next runs on what is left:
//! 1. discovery and reading (`discover.rs`: size cap, UTF-8, symlinks);
//! 2. YAML -> positioned tree (`yaml.rs`: syntax, tabs, duplicate keys, alias bombs, depth);
//! 3. per document: envelope (`apiVersion`, `kind`), then the typed spec (`schema.rs`). A
//!    schema error does not stop the document: the offending field is set aside and the rest
//!    is read again, so one run lists every unknown field and wrong type;
//! 4. per resource: names, lengths, ranges, tags (`validate.rs`) and the policy grammar
//!    (`policy::grammar`), each finding at the exact node;
//! 5. across documents: `ImmServiceRole` expansion (`expand.rs`), duplicate names (naming
//!    both places), attachment limits, references.
//!
//! Findings are sorted by file, line and column. The result always carries a `Desired` (the
//! first declaration of each name wins); callers must not act on it when
//! [`Loaded::has_errors`].
//!
//! Must not: touch the network, read the environment, or print anything. Never panics: a
//! panic while reading a file (a bug) becomes finding `E901`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::codes;
use super::diagnostic::{Diagnostic, sort_diagnostics};
use super::discover::{self, ManifestFile};
use super::expand;
use super::model::*;
use super::schema::*;
use super::validate;
use super::yaml::{self, DeErrorKind, Document, Node, NodeValue, Pos, ProblemKind, Seg};
use crate::policy::PolicyDocument;
use crate::policy::grammar::{self, DocKind, Issue, IssueKind, PathSeg};

/// How to read manifests.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Region of projects that name none (the `region` setting). Empty: such a project is an
    /// error.
    pub default_region: String,
}

/// What a load produced: the desired state and every finding (errors and warnings).
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    /// Always filled with what could be read; do not act on it when [`Loaded::has_errors`].
    pub desired: Desired,
    /// Sorted by file, line, column.
    pub diagnostics: Vec<Diagnostic>,
    /// The manifest files found (read or not), in load order.
    pub files: Vec<PathBuf>,
}

impl Loaded {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| d.is_error())
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics.iter().filter(|d| !d.is_error())
    }

    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }

    pub fn warning_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| !d.is_error()).count()
    }
}

/// Load every manifest under `paths` (empty: `manifests/`). See the module docs.
pub fn load(paths: &[PathBuf], opts: &LoadOptions) -> Loaded {
    let mut l = Loader {
        opts,
        diags: Vec::new(),
        digest: Vec::new(),
        files: Vec::new(),
        policies: Vec::new(),
        roles: Vec::new(),
        projects: Vec::new(),
    };
    let files = discover::discover(paths, &mut l.diags);
    for f in &files {
        let before = l.diags.len();
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| l.load_file(f)));
        if result.is_err() {
            l.diags.truncate(before);
            l.diags.push(Diagnostic::error(
                codes::INTERNAL,
                Some(src(&f.path, Pos::START)),
                None,
                "immctl crashed while reading this file; this is a bug in immctl, please \
                 report it with the file attached",
            ));
        }
    }
    l.finish()
}

/// Load manifest texts held in memory (`(path, text)`: the path is only a name for
/// findings), with every check of [`load`]. A `documentFile` is read relative to the path, as
/// on disk. For tools that produce manifests (import, `--expand`) and their tests.
pub fn load_texts(files: &[(PathBuf, String)], opts: &LoadOptions) -> Loaded {
    let mut l = Loader {
        opts,
        diags: Vec::new(),
        digest: Vec::new(),
        files: Vec::new(),
        policies: Vec::new(),
        roles: Vec::new(),
        projects: Vec::new(),
    };
    for (path, text) in files {
        let f = ManifestFile {
            path: path.clone(),
            rel: path.to_string_lossy().into_owned(),
        };
        l.files.push(f.path.clone());
        l.digest.push((f.rel.clone(), text.as_bytes().to_vec()));
        l.load_text(&f, text);
    }
    l.finish()
}

/// A declared (or generated) policy and where it came from.
struct PolicyDecl {
    policy: DesiredPolicy,
    /// `Some(place of the ImmServiceRole)` for a generated policy.
    generated: bool,
}

struct RoleDecl {
    role: DesiredRole,
    generated: bool,
    /// False when the document had schema errors: its references are not checked.
    check_references: bool,
    /// Each attachment as written, with its place.
    attachments: Vec<(PolicyRef, Source)>,
    /// Where `spec.policies` is written (the role's source when absent).
    policies_src: Source,
}

struct ProjectDecl {
    project: DesiredProject,
    service_role_src: Source,
    /// `serviceRole` is written, valid, and the document had no schema error.
    check_service_role: bool,
}

struct Loader<'o> {
    opts: &'o LoadOptions,
    diags: Vec<Diagnostic>,
    digest: Vec<(String, Vec<u8>)>,
    files: Vec<PathBuf>,
    policies: Vec<PolicyDecl>,
    roles: Vec<RoleDecl>,
    projects: Vec<ProjectDecl>,
}

fn src(file: &Path, pos: Pos) -> Source {
    Source {
        file: file.to_path_buf(),
        line: pos.line,
        column: pos.column,
    }
}

fn path(segs: &[&str]) -> Vec<Seg> {
    segs.iter().map(|s| Seg::Key((*s).to_string())).collect()
}

fn join(base: &[Seg], more: impl IntoIterator<Item = Seg>) -> Vec<Seg> {
    let mut p = base.to_vec();
    p.extend(more);
    p
}

fn grammar_path(p: &[PathSeg]) -> Vec<Seg> {
    p.iter()
        .map(|s| match s {
            PathSeg::Key(k) => Seg::Key(k.clone()),
            PathSeg::Index(i) => Seg::Index(*i),
        })
        .collect()
}

fn grammar_code(kind: IssueKind) -> &'static str {
    match kind {
        IssueKind::Version => codes::POLICY_VERSION,
        IssueKind::Statement => codes::POLICY_STATEMENT,
        IssueKind::Effect => codes::POLICY_EFFECT,
        IssueKind::Action => codes::POLICY_ACTION,
        IssueKind::Resource => codes::POLICY_RESOURCE,
        IssueKind::PrincipalInPermission => codes::POLICY_PRINCIPAL,
        IssueKind::TrustPrincipal => codes::TRUST_PRINCIPAL,
        IssueKind::Condition => codes::POLICY_CONDITION,
        IssueKind::UnknownElement => codes::POLICY_ELEMENT,
        IssueKind::Size => codes::POLICY_SIZE,
    }
}

fn problem_code(kind: ProblemKind) -> &'static str {
    match kind {
        ProblemKind::Syntax => codes::YAML_SYNTAX,
        ProblemKind::TooDeep => codes::YAML_TOO_DEEP,
        ProblemKind::TooManyNodes => codes::YAML_TOO_MANY_NODES,
        ProblemKind::Tab => codes::YAML_TAB,
        ProblemKind::DuplicateKey => codes::DUPLICATE_KEY,
        ProblemKind::RecursiveAlias | ProblemKind::UnsupportedTag | ProblemKind::ComplexKey => {
            codes::YAML_UNSUPPORTED
        }
    }
}

/// A parsed text (manifest or document file) and the file it came from, for positions.
struct Located<'a> {
    file: &'a Path,
    root: &'a Node,
}

impl Located<'_> {
    fn at(&self, p: &[Seg]) -> Source {
        src(self.file, self.root.pos_at(p))
    }
    fn key_at(&self, p: &[Seg]) -> Source {
        src(self.file, self.root.key_pos_at(p))
    }
    fn has(&self, p: &[Seg]) -> bool {
        self.root.at(p).is_some()
    }
}

impl Loader<'_> {
    fn error(&mut self, code: &str, at: Source, addr: Option<&Address>, msg: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(code, Some(at), addr.cloned(), msg));
    }

    fn load_file(&mut self, f: &ManifestFile) {
        self.files.push(f.path.clone());
        let (text, bytes) = match discover::read_text(&f.path) {
            Ok(x) => x,
            Err(e) => {
                self.diags
                    .push(discover::read_error_diagnostic(&f.path, &e));
                return;
            }
        };
        self.digest.push((f.rel.clone(), bytes));
        self.load_text(f, &text);
    }

    fn load_text(&mut self, f: &ManifestFile, text: &str) {
        let parsed = yaml::parse(text);
        let mut fatal = false;
        for p in &parsed.problems {
            fatal |= p.fatal;
            self.error(
                problem_code(p.kind),
                src(&f.path, p.pos),
                None,
                p.message.clone(),
            );
        }
        let docs: Vec<&Document> = parsed.documents.iter().filter(|d| !d.is_empty()).collect();
        if docs.is_empty() && !fatal {
            self.error(
                codes::EMPTY_FILE,
                src(&f.path, Pos::START),
                None,
                "no manifest document in this file (it is empty or holds only comments): \
                 add a document or delete the file",
            );
        }
        for doc in docs {
            self.load_document(f, doc);
        }
    }

    fn load_document(&mut self, f: &ManifestFile, doc: &Document) {
        let root = &doc.root;
        let here = Located {
            file: &f.path,
            root,
        };
        if !matches!(root.value, NodeValue::Map(_)) {
            let what = match root.value {
                NodeValue::Seq(_) => "a list",
                _ => "a single value",
            };
            self.error(
                codes::NOT_A_MAPPING,
                src(&f.path, root.pos),
                None,
                format!(
                    "a manifest document is a mapping with apiVersion, kind, metadata and \
                     spec; this one is {what}"
                ),
            );
            return;
        }
        let kind_text = root.get("kind").and_then(Node::as_str);
        if kind_text.is_some_and(|k| SKIPPED_KINDS.contains(&k)) {
            return;
        }
        let kind = kind_text.and_then(Kind::parse);
        let name = root
            .at(&path(&["metadata", "name"]))
            .and_then(Node::as_str)
            .map(str::to_string);
        let address = name.as_deref().and_then(|n| match kind? {
            Kind::Policy => Some(Address::policy(n)),
            Kind::Role | Kind::ImmServiceRole => Some(Address::role(n)),
            Kind::Project => {
                let region = root
                    .at(&path(&["spec", "region"]))
                    .and_then(Node::as_str)
                    .unwrap_or(&self.opts.default_region);
                Some(Address::project(&ProjectKey {
                    region: region.to_string(),
                    name: n.to_string(),
                }))
            }
        });
        let addr = address.as_ref();

        match root.get("apiVersion") {
            None => self.error(
                codes::API_VERSION,
                src(&f.path, root.pos),
                addr,
                format!("missing apiVersion (write apiVersion: {API_VERSION})"),
            ),
            Some(n) if n.as_str() == Some(API_VERSION) => {}
            Some(n) => self.error(
                codes::API_VERSION,
                src(&f.path, n.pos),
                addr,
                format!(
                    "apiVersion {} is not supported; this immctl reads {API_VERSION}",
                    n.as_str()
                        .map(|s| format!("`{s}`"))
                        .unwrap_or_else(|| "(not a string)".into())
                ),
            ),
        }
        let kinds = "Policy, Role, Project or ImmServiceRole";
        let Some(kind) = kind else {
            match (root.get("kind"), kind_text) {
                (None, _) => self.error(
                    codes::KIND,
                    src(&f.path, root.pos),
                    addr,
                    format!("missing kind ({kinds})"),
                ),
                (Some(n), Some(k)) => {
                    let hint = Kind::ALL
                        .iter()
                        .find(|c| c.as_str().eq_ignore_ascii_case(k))
                        .map(|c| format!(" (did you mean {}?)", c.as_str()))
                        .unwrap_or_default();
                    self.error(
                        codes::KIND,
                        src(&f.path, n.pos),
                        addr,
                        format!("unknown kind `{k}`: expected {kinds}{hint}"),
                    )
                }
                (Some(n), None) => self.error(
                    codes::KIND,
                    src(&f.path, n.pos),
                    addr,
                    format!("kind must be one of {kinds}"),
                ),
            }
            return;
        };

        match kind {
            Kind::Policy => {
                if let Some((m, _)) = self.decode::<PolicySpec>(&here, addr) {
                    self.policy(f, &here, m, addr);
                }
            }
            Kind::Role => {
                if let Some((m, clean)) = self.decode::<RoleSpec>(&here, addr) {
                    self.role(&here, m, addr, clean);
                }
            }
            Kind::Project => {
                if let Some((m, clean)) = self.decode::<ProjectSpec>(&here, addr) {
                    self.project(&here, m, addr, clean);
                }
            }
            Kind::ImmServiceRole => {
                if let Some((m, _)) = self.decode::<ImmServiceRoleSpec>(&here, addr) {
                    self.imm_service_role(&here, m, addr);
                }
            }
        }
    }

    /// Deserialize the document; on a schema error report it, set the offending node aside
    /// and try again, so every unknown field and wrong type of the document is reported.
    /// `None` when a required field is missing (or unusable).
    fn decode<S: DeserializeOwned>(
        &mut self,
        here: &Located<'_>,
        addr: Option<&Address>,
    ) -> Option<(ManifestIn<S>, bool)> {
        // The common case, a document without schema errors, needs no copy of the tree.
        if let Ok(m) = yaml::from_node::<ManifestIn<S>>(here.root, &[]) {
            return Some((m, true));
        }
        let mut tree = here.root.clone();
        let mut removed: Vec<Vec<Seg>> = Vec::new();
        for _ in 0..100 {
            let e = match yaml::from_node::<ManifestIn<S>>(&tree, &[]) {
                Ok(m) => return Some((m, removed.is_empty())),
                Err(e) => e,
            };
            let p = e.path.clone().unwrap_or_default();
            let pos = e.pos.unwrap_or(here.root.pos);
            let at = src(here.file, pos);
            match e.kind {
                DeErrorKind::MissingField => {
                    // Point at the key of the mapping that lacks the field (`spec:`), not at
                    // its first entry.
                    let at = if p.is_empty() {
                        src(here.file, here.root.pos)
                    } else {
                        here.key_at(&p)
                    };
                    // A field we set aside, or one of a mapping where we set aside an
                    // unknown key (most likely the same field misspelt), is reported already.
                    let field = join(&p, e.field.clone().map(Seg::Key));
                    let reported = removed.iter().any(|r| {
                        *r == field
                            || r.split_last()
                                .is_some_and(|(_, parent)| parent == p.as_slice())
                    });
                    if !reported {
                        let msg = if p.is_empty() {
                            e.message.clone()
                        } else {
                            format!("{}: {}", yaml::path_string(&p), e.message)
                        };
                        self.error(codes::MISSING_FIELD, at, addr, msg);
                    }
                    return None;
                }
                DeErrorKind::UnknownField => {
                    let parent = &p[..p.len().saturating_sub(1)];
                    let msg = if parent.is_empty() {
                        e.message.clone()
                    } else {
                        format!("{}: {}", yaml::path_string(parent), e.message)
                    };
                    self.error(codes::UNKNOWN_FIELD, at, addr, msg);
                }
                DeErrorKind::DuplicateField => {
                    self.error(codes::DUPLICATE_KEY, at, addr, e.message.clone());
                }
                DeErrorKind::Invalid | DeErrorKind::Other => {
                    let msg = if p.is_empty() {
                        e.message.clone()
                    } else {
                        format!("{}: {}", yaml::path_string(&p), e.message)
                    };
                    self.error(codes::WRONG_TYPE, at, addr, msg);
                }
            }
            if p.is_empty() || !tree.remove(&p) {
                return None;
            }
            removed.push(p);
        }
        None
    }

    fn description(
        &mut self,
        here: &Located<'_>,
        d: &Option<String>,
        max: usize,
        addr: Option<&Address>,
    ) {
        if let Some(d) = d
            && let Some(msg) = validate::description(d, max)
        {
            self.error(
                codes::DESCRIPTION,
                here.at(&path(&["spec", "description"])),
                addr,
                msg,
            );
        }
    }

    fn tags(&mut self, here: &Located<'_>, tags: &Option<Tags>, addr: Option<&Address>) {
        let Some(tags) = tags else { return };
        for (key, msg) in validate::tags(tags) {
            let at = match &key {
                Some(k) => here.key_at(&path(&["spec", "tags", k])),
                None => here.key_at(&path(&["spec", "tags"])),
            };
            self.error(codes::TAG, at, addr, msg);
        }
    }

    /// Report grammar issues; positions come from `doc` (the manifest, or the JSON file of a
    /// `documentFile`) under `base`.
    fn grammar(
        &mut self,
        doc: &Located<'_>,
        base: &[Seg],
        issues: Vec<Issue>,
        addr: Option<&Address>,
    ) {
        for issue in issues {
            let p = join(base, grammar_path(&issue.path));
            let at = if issue.at_key {
                doc.key_at(&p)
            } else {
                doc.at(&p)
            };
            self.error(grammar_code(issue.kind), at, addr, issue.message);
        }
    }

    fn name_source(here: &Located<'_>) -> Source {
        here.at(&path(&["metadata", "name"]))
    }

    fn policy(
        &mut self,
        f: &ManifestFile,
        here: &Located<'_>,
        m: ManifestIn<PolicySpec>,
        addr: Option<&Address>,
    ) {
        let name = m.metadata.name;
        let spec = m.spec;
        let source = Self::name_source(here);
        if let Some(msg) = validate::policy_name(&name) {
            self.error(codes::POLICY_NAME, source.clone(), addr, msg);
        }
        self.description(here, &spec.description, validate::MAX_RAM_DESCRIPTION, addr);
        self.tags(here, &spec.tags, addr);

        let document = match (spec.document, spec.document_file) {
            (Some(v), Some(_)) => {
                self.error(
                    codes::DOCUMENT_SOURCE,
                    here.key_at(&path(&["spec", "documentFile"])),
                    addr,
                    "set document or documentFile, not both",
                );
                Some(v)
            }
            (None, None) => {
                self.error(
                    codes::DOCUMENT_SOURCE,
                    here.key_at(&path(&["spec"])),
                    addr,
                    "a Policy needs document (the policy as a mapping) or documentFile (a JSON \
                     file next to the manifest)",
                );
                None
            }
            (Some(v), None) => {
                let issues = grammar::check_document(&v, DocKind::Permission);
                self.grammar(here, &path(&["spec", "document"]), issues, addr);
                Some(v)
            }
            (None, Some(file)) => self.document_file(f, here, &file, addr),
        };
        let document = document.map(PolicyDocument);
        if let Some(doc) = &document
            && let Some(issue) = grammar::check_size(doc, DocKind::Permission)
        {
            let at = if here.has(&path(&["spec", "document"])) {
                here.key_at(&path(&["spec", "document"]))
            } else {
                here.at(&path(&["spec", "documentFile"]))
            };
            self.error(codes::POLICY_SIZE, at, addr, issue.message);
        }
        self.policies.push(PolicyDecl {
            policy: DesiredPolicy {
                name,
                description: spec.description,
                document: document.unwrap_or(PolicyDocument(Value::Null)),
                tags: spec.tags.unwrap_or_default(),
                deletion_policy: spec.deletion_policy.unwrap_or_default(),
                adopt: spec.adopt.unwrap_or(false),
                source,
                expanded_from: None,
            },
            generated: false,
        });
    }

    /// Read, parse and check a `documentFile` (relative to the manifest's directory).
    fn document_file(
        &mut self,
        f: &ManifestFile,
        here: &Located<'_>,
        file: &str,
        addr: Option<&Address>,
    ) -> Option<Value> {
        let field = here.at(&path(&["spec", "documentFile"]));
        if file.trim().is_empty() {
            self.error(codes::DOCUMENT_FILE, field, addr, "documentFile is empty");
            return None;
        }
        let dir = f.path.parent().unwrap_or(Path::new(""));
        let full = dir.join(file);
        if let Err(reason) = inside_root(&f.root(), file, &full) {
            self.error(codes::DOCUMENT_FILE, field, addr, reason);
            return None;
        }
        let (text, bytes) = match discover::read_text(&full) {
            Ok(x) => x,
            Err(discover::ReadError::Io(reason)) => {
                self.error(
                    codes::DOCUMENT_FILE,
                    field,
                    addr,
                    format!(
                        "documentFile {}: {reason} (the path is relative to this manifest's \
                         directory)",
                        full.display()
                    ),
                );
                return None;
            }
            Err(e) => {
                let mut d = discover::read_error_diagnostic(&full, &e);
                d.address = addr.cloned();
                self.diags.push(d);
                return None;
            }
        };
        // The digest key: where the file sits relative to the manifest root, so the digest
        // does not depend on how the root was spelled.
        let rel_dir = Path::new(&f.rel)
            .parent()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let key = if Path::new(file).is_absolute() || rel_dir.is_empty() {
            file.to_string()
        } else {
            format!("{rel_dir}/{file}")
        };
        self.digest.push((format!("documentFile:{key}"), bytes));

        let value: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                let msg = e.to_string();
                let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
                self.error(
                    codes::DOCUMENT_FILE,
                    src(
                        &full,
                        Pos {
                            line: e.line().max(1),
                            column: e.column().max(1),
                        },
                    ),
                    addr,
                    format!("not valid JSON: {msg}"),
                );
                return None;
            }
        };
        if !value.is_object() {
            self.error(
                codes::DOCUMENT_FILE,
                src(&full, Pos::START),
                addr,
                "the policy document must be a JSON object with Version and Statement",
            );
            return None;
        }
        // Positions inside the JSON file (JSON is YAML); duplicate keys are caught here too,
        // since serde_json silently keeps the last one.
        let parsed = yaml::parse(&text);
        for p in &parsed.problems {
            if p.kind == ProblemKind::DuplicateKey {
                self.error(
                    codes::DUPLICATE_KEY,
                    src(&full, p.pos),
                    addr,
                    p.message.clone(),
                );
            }
        }
        let issues = grammar::check_document(&value, DocKind::Permission);
        match parsed.documents.first() {
            Some(d)
                if parsed
                    .problems
                    .iter()
                    .all(|p| p.kind == ProblemKind::DuplicateKey) =>
            {
                let there = Located {
                    file: &full,
                    root: &d.root,
                };
                self.grammar(&there, &[], issues, addr);
            }
            _ => {
                // Our YAML reader could not follow this JSON; point at the field instead.
                for issue in issues {
                    self.error(grammar_code(issue.kind), field.clone(), addr, issue.message);
                }
            }
        }
        Some(value)
    }

    /// `clean`: the document had no schema error (else the reference checks, which would
    /// only echo it, are skipped).
    fn role(
        &mut self,
        here: &Located<'_>,
        m: ManifestIn<RoleSpec>,
        addr: Option<&Address>,
        clean: bool,
    ) {
        let name = m.metadata.name;
        let spec = m.spec;
        let source = Self::name_source(here);
        self.role_name(&name, &source, addr);
        self.description(here, &spec.description, validate::MAX_RAM_DESCRIPTION, addr);
        self.tags(here, &spec.tags, addr);
        let max_session_duration = spec.max_session_duration.unwrap_or(3600);
        if let Some(msg) = validate::session_duration(max_session_duration) {
            self.error(
                codes::SESSION_DURATION,
                here.at(&path(&["spec", "maxSessionDuration"])),
                addr,
                msg,
            );
        }
        let issues = grammar::check_document(&spec.trust_policy, DocKind::Trust);
        self.grammar(here, &path(&["spec", "trustPolicy"]), issues, addr);
        let trust_policy = PolicyDocument(spec.trust_policy);
        if let Some(issue) = grammar::check_size(&trust_policy, DocKind::Trust) {
            self.error(
                codes::POLICY_SIZE,
                here.key_at(&path(&["spec", "trustPolicy"])),
                addr,
                issue.message,
            );
        }

        let mut attachments = Vec::new();
        for (i, r) in spec.policies.iter().flatten().enumerate() {
            let at = here.at(&join(
                &path(&["spec", "policies"]),
                [Seg::Index(i), "name".into()],
            ));
            if let Some(msg) = validate::policy_name(&r.name) {
                self.error(codes::POLICY_NAME, at.clone(), addr, msg);
            }
            attachments.push((
                PolicyRef {
                    policy_type: r.policy_type.unwrap_or_default(),
                    name: r.name.clone(),
                },
                at,
            ));
        }
        let policies_src = if here.has(&path(&["spec", "policies"])) {
            here.key_at(&path(&["spec", "policies"]))
        } else {
            source.clone()
        };
        self.roles.push(RoleDecl {
            role: DesiredRole {
                name,
                description: spec.description,
                max_session_duration,
                trust_policy,
                policies: attachments.iter().map(|(r, _)| r.clone()).collect(),
                tags: spec.tags.unwrap_or_default(),
                deletion_policy: spec.deletion_policy.unwrap_or_default(),
                adopt: spec.adopt.unwrap_or(false),
                source,
                expanded_from: None,
            },
            generated: false,
            check_references: clean,
            attachments,
            policies_src,
        });
    }

    fn role_name(&mut self, name: &str, at: &Source, addr: Option<&Address>) {
        if let Some(msg) = validate::role_name(name) {
            self.error(codes::ROLE_NAME, at.clone(), addr, msg);
        }
        if validate::is_protected_role(name) {
            self.error(
                codes::PROTECTED_NAME,
                at.clone(),
                addr,
                format!(
                    "role `{name}`: names starting with Aliyun belong to Alibaba Cloud \
                     (service roles, service-linked roles); immctl never creates or changes \
                     them: pick another name"
                ),
            );
        }
    }

    fn project(
        &mut self,
        here: &Located<'_>,
        m: ManifestIn<ProjectSpec>,
        addr: Option<&Address>,
        clean: bool,
    ) {
        let name = m.metadata.name;
        let spec = m.spec;
        let source = Self::name_source(here);
        if let Some(msg) = validate::project_name(&name) {
            self.error(codes::PROJECT_NAME, source.clone(), addr, msg);
        }
        let region = match &spec.region {
            Some(r) => {
                if let Some(msg) = validate::region(r) {
                    self.error(
                        codes::REGION,
                        here.at(&path(&["spec", "region"])),
                        addr,
                        msg,
                    );
                }
                r.clone()
            }
            None => {
                let r = self.opts.default_region.clone();
                if r.is_empty() {
                    self.error(
                        codes::REGION,
                        source.clone(),
                        addr,
                        "the project names no region and no default region is set: add \
                         spec.region or set the region setting (--region)",
                    );
                }
                r
            }
        };
        let service_role = spec
            .service_role
            .clone()
            .unwrap_or_else(|| IMM_DEFAULT_ROLE.to_string());
        let service_role_src = here.at(&path(&["spec", "serviceRole"]));
        let mut check_service_role = clean && spec.service_role.is_some();
        if spec.service_role.is_some()
            && let Some(msg) = validate::role_name(&service_role)
        {
            check_service_role = false;
            self.error(
                codes::ROLE_NAME,
                service_role_src.clone(),
                addr,
                format!("serviceRole: {msg}"),
            );
        }
        self.description(here, &spec.description, validate::MAX_IMM_DESCRIPTION, addr);
        if let Some(t) = &spec.template_id
            && let Some(msg) = validate::template_id(t)
        {
            self.error(
                codes::TEMPLATE_ID,
                here.at(&path(&["spec", "templateId"])),
                addr,
                msg,
            );
        }
        let limits = ProjectLimits {
            project_queries_per_second: spec.project_queries_per_second,
            engine_concurrency: spec.engine_concurrency,
            project_max_dataset_count: spec.project_max_dataset_count,
            dataset_max_bind_count: spec.dataset_max_bind_count,
            dataset_max_file_count: spec.dataset_max_file_count,
            dataset_max_entity_count: spec.dataset_max_entity_count,
            dataset_max_relation_count: spec.dataset_max_relation_count,
            dataset_max_total_file_size: spec.dataset_max_total_file_size,
        };
        for (field, value) in [
            ("projectQueriesPerSecond", limits.project_queries_per_second),
            ("engineConcurrency", limits.engine_concurrency),
            ("projectMaxDatasetCount", limits.project_max_dataset_count),
            ("datasetMaxBindCount", limits.dataset_max_bind_count),
            ("datasetMaxFileCount", limits.dataset_max_file_count),
            ("datasetMaxEntityCount", limits.dataset_max_entity_count),
            ("datasetMaxRelationCount", limits.dataset_max_relation_count),
            (
                "datasetMaxTotalFileSize",
                limits.dataset_max_total_file_size,
            ),
        ] {
            if let Some(v) = value
                && let Some(msg) = validate::project_limit(field, v)
            {
                self.error(
                    codes::PROJECT_LIMIT,
                    here.at(&path(&["spec", field])),
                    addr,
                    msg,
                );
            }
        }
        self.tags(here, &spec.tags, addr);
        let buckets = spec.buckets.unwrap_or_default();
        self.buckets(here, &buckets, addr);
        self.projects.push(ProjectDecl {
            project: DesiredProject {
                region,
                name,
                service_role,
                description: spec.description,
                template_id: spec.template_id,
                limits,
                tags: spec.tags.unwrap_or_default(),
                buckets,
                deletion_policy: spec.deletion_policy.unwrap_or_default(),
                adopt: spec.adopt.unwrap_or(false),
                source,
            },
            service_role_src,
            check_service_role,
        });
    }

    fn buckets(&mut self, here: &Located<'_>, buckets: &[String], addr: Option<&Address>) {
        for (i, b) in buckets.iter().enumerate() {
            if let Some(msg) = validate::bucket(b) {
                self.error(
                    codes::BUCKET,
                    here.at(&join(&path(&["spec", "buckets"]), [Seg::Index(i)])),
                    addr,
                    msg,
                );
            }
        }
    }

    fn imm_service_role(
        &mut self,
        here: &Located<'_>,
        m: ManifestIn<ImmServiceRoleSpec>,
        addr: Option<&Address>,
    ) {
        let name = m.metadata.name;
        let spec = m.spec;
        let source = Self::name_source(here);
        self.role_name(&name, &source, addr);
        if let Some(secs) = spec.max_session_duration
            && let Some(msg) = validate::session_duration(secs)
        {
            self.error(
                codes::SESSION_DURATION,
                here.at(&path(&["spec", "maxSessionDuration"])),
                addr,
                msg,
            );
        }
        self.description(here, &spec.description, validate::MAX_RAM_DESCRIPTION, addr);
        self.tags(here, &spec.tags, addr);
        if spec.buckets.is_empty() {
            self.error(
                codes::BUCKET,
                here.at(&path(&["spec", "buckets"])),
                addr,
                "an ImmServiceRole needs at least one bucket: the OSS buckets IMM works on \
                 through this role",
            );
        }
        self.buckets(here, &spec.buckets, addr);
        for (i, stmt) in spec.extra_statements.iter().flatten().enumerate() {
            let issues = grammar::check_statement(stmt, DocKind::Permission);
            self.grammar(
                here,
                &join(&path(&["spec", "extraStatements"]), [Seg::Index(i)]),
                issues,
                addr,
            );
        }
        let (role, policy) = expand::expand(&name, &spec, &source);
        if let Some(issue) = grammar::check_size(&policy.document, DocKind::Permission) {
            self.error(
                codes::POLICY_SIZE,
                here.key_at(&path(&["spec", "buckets"])),
                addr,
                format!(
                    "the generated policy {}: {} (split the buckets across several \
                     ImmServiceRoles)",
                    policy.name, issue.message
                ),
            );
        }
        let attachments = role
            .policies
            .iter()
            .map(|r| (r.clone(), source.clone()))
            .collect();
        self.roles.push(RoleDecl {
            role,
            generated: true,
            check_references: true,
            attachments,
            policies_src: source.clone(),
        });
        self.policies.push(PolicyDecl {
            policy,
            generated: true,
        });
    }

    /// Cross-document checks, then the result.
    fn finish(mut self) -> Loaded {
        let mut desired = Desired::default();

        // Policies: first declaration wins; a second one names both places.
        let mut first_policy: BTreeMap<String, usize> = BTreeMap::new();
        for i in 0..self.policies.len() {
            let name = self.policies[i].policy.name.clone();
            match first_policy.get(&name) {
                None => {
                    first_policy.insert(name.clone(), i);
                    desired
                        .policies
                        .insert(name, self.policies[i].policy.clone());
                }
                Some(&j) => {
                    let (a, b) = (&self.policies[j], &self.policies[i]);
                    let addr = Address::policy(&name);
                    let d = clash(
                        &addr,
                        (
                            &a.policy.source,
                            a.policy.expanded_from.as_deref(),
                            a.generated,
                        ),
                        (
                            &b.policy.source,
                            b.policy.expanded_from.as_deref(),
                            b.generated,
                        ),
                    );
                    self.diags.push(d);
                }
            }
        }

        let mut first_role: BTreeMap<String, usize> = BTreeMap::new();
        for i in 0..self.roles.len() {
            let name = self.roles[i].role.name.clone();
            match first_role.get(&name) {
                None => {
                    first_role.insert(name.clone(), i);
                    desired.roles.insert(name, self.roles[i].role.clone());
                }
                Some(&j) => {
                    let (a, b) = (&self.roles[j], &self.roles[i]);
                    let addr = Address::role(&name);
                    let d = clash(
                        &addr,
                        (&a.role.source, a.role.expanded_from.as_deref(), a.generated),
                        (&b.role.source, b.role.expanded_from.as_deref(), b.generated),
                    );
                    self.diags.push(d);
                }
            }
        }

        let mut first_project: BTreeMap<ProjectKey, Source> = BTreeMap::new();
        for p in &self.projects {
            let key = p.project.key();
            match first_project.get(&key) {
                None => {
                    first_project.insert(key.clone(), p.project.source.clone());
                    desired.projects.insert(key, p.project.clone());
                }
                Some(first) => self.diags.push(Diagnostic::error(
                    codes::DUPLICATE_NAME,
                    Some(p.project.source.clone()),
                    Some(Address::project(&key)),
                    format!(
                        "project {} in {} is declared twice: here and at {first}",
                        key.name, key.region
                    ),
                )),
            }
        }

        // Attachments of each role (its first declaration).
        let custom_declared: BTreeSet<&str> = desired.policies.keys().map(String::as_str).collect();
        let mut extra = Vec::new();
        for (name, &i) in &first_role {
            let decl = &self.roles[i];
            if !decl.check_references {
                continue;
            }
            let addr = Address::role(name);
            let mut seen: BTreeSet<&PolicyRef> = BTreeSet::new();
            for (r, at) in &decl.attachments {
                // E202 already reports an invalid (e.g. empty) name: a finding about what it
                // attaches would only repeat it, badly ("Custom policy  that no manifest
                // declares"). Still counted against the per-role limits.
                if validate::policy_name(&r.name).is_some() {
                    seen.insert(r);
                    continue;
                }
                if !seen.insert(r) {
                    extra.push(Diagnostic::warning(
                        codes::REPEATED_ATTACHMENT,
                        Some(at.clone()),
                        Some(addr.clone()),
                        format!("{} policy {} is listed twice", r.policy_type, r.name),
                    ));
                    continue;
                }
                match r.policy_type {
                    PolicyType::Custom if !custom_declared.contains(r.name.as_str()) => {
                        let hint = if r.name.starts_with("Aliyun") {
                            " (if it is a System policy, write `type: System`)"
                        } else {
                            ""
                        };
                        extra.push(Diagnostic::warning(
                            codes::UNDECLARED_POLICY,
                            Some(at.clone()),
                            Some(addr.clone()),
                            format!(
                                "attaches Custom policy {} that no manifest declares: it must \
                                 already exist in the account{hint}",
                                r.name
                            ),
                        ));
                    }
                    PolicyType::System if custom_declared.contains(r.name.as_str()) => {
                        let place = &desired.policies[&r.name].source;
                        extra.push(Diagnostic::error(
                            codes::ATTACHMENT_TYPE,
                            Some(at.clone()),
                            Some(addr.clone()),
                            format!(
                                "attaches {} as a System policy, but it is declared as a \
                                 Custom policy at {place}: drop `type: System`",
                                r.name
                            ),
                        ));
                    }
                    _ => {}
                }
            }
            let count = |t: PolicyType| seen.iter().filter(|r| r.policy_type == t).count();
            for (t, max, code) in [
                (PolicyType::Custom, 10, codes::TOO_MANY_CUSTOM),
                (PolicyType::System, 20, codes::TOO_MANY_SYSTEM),
            ] {
                let n = count(t);
                if n > max {
                    extra.push(Diagnostic::error(
                        code,
                        Some(decl.policies_src.clone()),
                        Some(addr.clone()),
                        format!("attaches {n} {t} policies; RAM allows at most {max} per role"),
                    ));
                }
            }
        }

        // A project's service role: declared, the IMM default, or it must exist live.
        for p in &self.projects {
            let role = &p.project.service_role;
            if p.check_service_role && role != IMM_DEFAULT_ROLE && !desired.roles.contains_key(role)
            {
                extra.push(Diagnostic::warning(
                    codes::UNDECLARED_SERVICE_ROLE,
                    Some(p.service_role_src.clone()),
                    Some(Address::project(&p.project.key())),
                    format!(
                        "service role {role} is not declared in the manifests: it must already \
                         exist in the account"
                    ),
                ));
            }
        }
        self.diags.extend(extra);

        desired.file_digests = discover::file_digests(&self.digest);
        desired.digest = discover::digest_of(&desired.file_digests);
        sort_diagnostics(&mut self.diags);
        cap_per_file(&mut self.diags);
        Loaded {
            desired,
            diagnostics: self.diags,
            files: self.files,
        }
    }
}

/// Findings shown per file; past this a file is more noise than help (a generated file with
/// a thousand repeated keys), and the rest are summed up in one finding.
pub const MAX_FINDINGS_PER_FILE: usize = 100;

/// Keep the first [`MAX_FINDINGS_PER_FILE`] findings of each file (already sorted) and sum up
/// the rest in one finding at the first one left out.
fn cap_per_file(diags: &mut Vec<Diagnostic>) {
    let mut out: Vec<Diagnostic> = Vec::with_capacity(diags.len().min(10_000));
    let mut i = 0;
    while i < diags.len() {
        let file = diags[i].source.as_ref().map(|s| s.file.clone());
        let mut j = i;
        while j < diags.len() && diags[j].source.as_ref().map(|s| &s.file) == file.as_ref() {
            j += 1;
        }
        let group = &diags[i..j];
        if file.is_none() || group.len() <= MAX_FINDINGS_PER_FILE {
            out.extend_from_slice(group);
        } else {
            out.extend_from_slice(&group[..MAX_FINDINGS_PER_FILE]);
            let rest = &group[MAX_FINDINGS_PER_FILE..];
            let errors = rest.iter().filter(|d| d.is_error()).count();
            let msg = format!(
                "{} more findings in this file are not shown ({errors} errors, {} warnings); \
                 fix the ones above and run again",
                rest.len(),
                rest.len() - errors
            );
            out.push(if errors > 0 {
                Diagnostic::error(codes::TOO_MANY_FINDINGS, rest[0].source.clone(), None, msg)
            } else {
                Diagnostic::warning(codes::TOO_MANY_WARNINGS, rest[0].source.clone(), None, msg)
            });
        }
        i = j;
    }
    *diags = out;
}

/// The finding for a second declaration of a name: `E501` between two declarations, `E502`
/// when an `ImmServiceRole` generated one of them. It sits at the later place and names the
/// earlier one.
fn clash(
    addr: &Address,
    first: (&Source, Option<&str>, bool),
    second: (&Source, Option<&str>, bool),
) -> Diagnostic {
    let describe = |(s, from, generated): (&Source, Option<&str>, bool)| {
        if generated {
            format!("generated by ImmServiceRole {} at {s}", from.unwrap_or("?"))
        } else {
            format!("declared at {s}")
        }
    };
    let code = if first.2 || second.2 {
        codes::EXPANSION_CLASH
    } else {
        codes::DUPLICATE_NAME
    };
    let here = if second.2 {
        format!(
            "generated here by ImmServiceRole {}",
            second.1.unwrap_or("?")
        )
    } else {
        "declared here".to_string()
    };
    Diagnostic::error(
        code,
        Some(second.0.clone()),
        Some(addr.clone()),
        format!("{addr} is {here} and also {}", describe(first)),
    )
}

/// Where a `documentFile` may point: a regular file under the directory its manifest was
/// found in (after following symbolic links), named by a relative path. Like kustomize's
/// load restrictor: manifests come from pull requests, and findings quote the lines of the
/// file they point at, so `documentFile: ../../.aliyun/config.json` must not make immctl
/// read, and print, a file of the machine that runs it. `Err` says why not.
fn inside_root(root: &Path, file: &str, full: &Path) -> Result<(), String> {
    if Path::new(file).is_absolute() {
        return Err(format!(
            "documentFile {file}: an absolute path; name a file under {} by a path relative \
             to this manifest",
            root.display()
        ));
    }
    // A missing file is reported by the read, with its own message.
    let Ok(target) = std::fs::canonicalize(full) else {
        return Ok(());
    };
    let canon_root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let Ok(rel) = target.strip_prefix(&canon_root) else {
        return Err(format!(
            "documentFile {file}: resolves to a file outside {}, the directory this manifest \
             was found in; a documentFile must stay inside it (move the JSON file there, or \
             pass a directory that holds both)",
            root.display()
        ));
    };
    // Hidden entries are not manifests' to read (`.git/config` holds CI's token).
    if rel.components().any(|c| discover::is_hidden(c.as_os_str())) {
        return Err(format!(
            "documentFile {file}: resolves into a hidden path of {} (like .git); a \
             documentFile must not name one",
            root.display()
        ));
    }
    match std::fs::metadata(&target) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(format!(
            "documentFile {file}: {} is not a regular file",
            full.display()
        )),
        // Vanished in between: the read reports it.
        Err(_) => Ok(()),
    }
}
