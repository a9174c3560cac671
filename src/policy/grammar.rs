//! The RAM policy language, checked offline: what a permission policy or a trust policy may
//! contain, so that a bad document is refused with its path before anything reaches RAM
//! (which would answer `MalformedPolicyDocument` with no hint of where).
//!
//! The grammar (reference/alibaba-api.md §3 and the RAM policy-element docs):
//! - the document: `Version` (the string `"1"`) and `Statement` (a non-empty list, or a
//!   single statement object), nothing else;
//! - a statement: `Effect` (`Allow` | `Deny`, exactly), one of `Action` / `NotAction`, and
//!   in a permission policy one of `Resource` / `NotResource`; optional `Condition`;
//!   `Principal` only in a trust policy, where it is required;
//! - actions: `*` or `service:Name` (wildcards `*` `?` allowed); resources: `*` or `acs:...`;
//!   in a trust policy the actions are `sts:AssumeRole*`;
//! - `Principal`: a map of `RAM` / `Service` / `Federated` to a name or a list of names;
//! - `Condition`: `{Operator: {Key: value | [values]}}` with an operator the evaluator knows
//!   ([`super::eval::condition_value_ok`]) and values of the operator's type.
//!
//! Size limits are RAM's, measured on the text immctl sends (the compact canonical JSON).
//!
//! Pure: no I/O. Findings carry a path into the document; the caller turns it into a place.

use serde_json::Value;

use super::PolicyDocument;
use super::eval::condition_value_ok;

/// RAM's limit on a permission policy document, in characters.
pub const MAX_POLICY_DOCUMENT_CHARS: usize = 6144;
/// The trust policy limit: RAM's value is not documented (alibaba-api.md §3.1); 4096 is what
/// the emulator enforces, and real trust policies are a few hundred characters.
pub const MAX_TRUST_DOCUMENT_CHARS: usize = 4096;

/// Which kind of document is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    /// A custom policy (what a role is allowed to do).
    Permission,
    /// A role's trust policy (who may assume it).
    Trust,
}

/// What is wrong (the caller maps each to a stable finding code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum IssueKind {
    Version,
    Statement,
    Effect,
    Action,
    Resource,
    /// `Principal` in a permission policy.
    PrincipalInPermission,
    /// A trust statement without a usable `Principal`.
    TrustPrincipal,
    Condition,
    /// An element RAM does not know (`Sid`, `Id`, a typo).
    UnknownElement,
    /// The document exceeds RAM's size limit.
    Size,
}

/// One step of a path into the document.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

/// One finding: where (a path into the document) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub kind: IssueKind,
    pub path: Vec<PathSeg>,
    /// Point at the key of the last path element rather than its value (unknown elements).
    pub at_key: bool,
    pub message: String,
}

struct Checker {
    kind: DocKind,
    issues: Vec<Issue>,
}

impl Checker {
    fn push(&mut self, kind: IssueKind, path: &[PathSeg], message: impl Into<String>) {
        self.issues.push(Issue {
            kind,
            path: path.to_vec(),
            at_key: false,
            message: message.into(),
        });
    }

    fn push_key(&mut self, kind: IssueKind, path: &[PathSeg], message: impl Into<String>) {
        self.issues.push(Issue {
            kind,
            path: path.to_vec(),
            at_key: true,
            message: message.into(),
        });
    }
}

fn key(path: &[PathSeg], k: &str) -> Vec<PathSeg> {
    let mut p = path.to_vec();
    p.push(PathSeg::Key(k.to_string()));
    p
}

fn index(path: &[PathSeg], i: usize) -> Vec<PathSeg> {
    let mut p = path.to_vec();
    p.push(PathSeg::Index(i));
    p
}

/// Check a whole document. An empty result means RAM's grammar is satisfied.
pub fn check_document(doc: &Value, kind: DocKind) -> Vec<Issue> {
    let mut c = Checker {
        kind,
        issues: Vec::new(),
    };
    let Value::Object(map) = doc else {
        c.push(
            IssueKind::Statement,
            &[],
            format!(
                "a policy document is a mapping with Version and Statement, not {}",
                describe(doc)
            ),
        );
        return c.issues;
    };
    match map.get("Version") {
        Some(Value::String(v)) if v == "1" => {}
        Some(Value::Number(n)) => c.push(
            IssueKind::Version,
            &key(&[], "Version"),
            format!(
                "Version must be the string \"1\", not the number {n} (quote it: Version: \"1\")"
            ),
        ),
        Some(other) => c.push(
            IssueKind::Version,
            &key(&[], "Version"),
            format!("Version must be \"1\", not {}", describe(other)),
        ),
        None => c.push(
            IssueKind::Version,
            &[],
            "missing Version (write Version: \"1\")",
        ),
    }
    match map.get("Statement") {
        None => c.push(IssueKind::Statement, &[], "missing Statement"),
        Some(Value::Array(items)) if items.is_empty() => c.push(
            IssueKind::Statement,
            &key(&[], "Statement"),
            "Statement is empty: a policy needs at least one statement",
        ),
        Some(Value::Array(items)) => {
            for (i, s) in items.iter().enumerate() {
                check_statement_at(&mut c, s, &index(&key(&[], "Statement"), i));
            }
        }
        Some(obj @ Value::Object(_)) => check_statement_at(&mut c, obj, &key(&[], "Statement")),
        Some(other) => c.push(
            IssueKind::Statement,
            &key(&[], "Statement"),
            format!(
                "Statement must be a list of statements, not {}",
                describe(other)
            ),
        ),
    }
    for k in map.keys() {
        if k != "Version" && k != "Statement" {
            c.push_key(
                IssueKind::UnknownElement,
                &key(&[], k),
                format!("unknown policy element `{k}` (a document has only Version and Statement)"),
            );
        }
    }
    c.issues
}

/// Check one permission statement (an `ImmServiceRole`'s `extraStatements` entry); `path` is
/// where it sits.
pub fn check_statement(stmt: &Value, kind: DocKind) -> Vec<Issue> {
    let mut c = Checker {
        kind,
        issues: Vec::new(),
    };
    check_statement_at(&mut c, stmt, &[]);
    c.issues
}

/// Size of the document as sent (compact canonical JSON), and the issue when over the limit.
pub fn check_size(doc: &PolicyDocument, kind: DocKind) -> Option<Issue> {
    let len = doc.to_wire().chars().count();
    let (max, what) = match kind {
        DocKind::Permission => (MAX_POLICY_DOCUMENT_CHARS, "policy document"),
        DocKind::Trust => (MAX_TRUST_DOCUMENT_CHARS, "trust policy"),
    };
    (len > max).then(|| Issue {
        kind: IssueKind::Size,
        path: Vec::new(),
        at_key: false,
        message: format!(
            "the {what} is {len} characters as sent to RAM (compact JSON); the limit is {max}"
        ),
    })
}

const STATEMENT_KEYS: &[&str] = &[
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
    "Principal",
];

fn check_statement_at(c: &mut Checker, stmt: &Value, path: &[PathSeg]) {
    let Value::Object(s) = stmt else {
        c.push(
            IssueKind::Statement,
            path,
            format!("a statement is a mapping, not {}", describe(stmt)),
        );
        return;
    };
    match s.get("Effect") {
        Some(Value::String(e)) if e == "Allow" || e == "Deny" => {}
        Some(Value::String(e))
            if e.eq_ignore_ascii_case("allow") || e.eq_ignore_ascii_case("deny") =>
        {
            c.push(
                IssueKind::Effect,
                &key(path, "Effect"),
                format!("Effect `{e}` must be written `Allow` or `Deny` exactly"),
            )
        }
        Some(other) => c.push(
            IssueKind::Effect,
            &key(path, "Effect"),
            format!("Effect must be Allow or Deny, not {}", describe(other)),
        ),
        None => c.push(
            IssueKind::Effect,
            path,
            "statement without Effect (Allow or Deny)",
        ),
    }

    match (s.get("Action"), s.get("NotAction")) {
        (Some(_), Some(_)) => c.push(
            IssueKind::Action,
            &key(path, "NotAction"),
            "a statement has Action or NotAction, not both",
        ),
        (None, None) => c.push(IssueKind::Action, path, "statement without Action"),
        (Some(v), None) => check_actions(c, v, &key(path, "Action")),
        (None, Some(v)) => {
            if c.kind == DocKind::Trust {
                c.push(
                    IssueKind::Action,
                    &key(path, "NotAction"),
                    "a trust policy grants sts:AssumeRole with Action, not NotAction",
                )
            } else {
                check_actions(c, v, &key(path, "NotAction"))
            }
        }
    }

    let (res, not_res) = (s.get("Resource"), s.get("NotResource"));
    match c.kind {
        DocKind::Permission => match (res, not_res) {
            (Some(_), Some(_)) => c.push(
                IssueKind::Resource,
                &key(path, "NotResource"),
                "a statement has Resource or NotResource, not both",
            ),
            (None, None) => c.push(
                IssueKind::Resource,
                path,
                "statement without Resource (use \"*\" for every resource)",
            ),
            (Some(v), None) => check_resources(c, v, &key(path, "Resource")),
            (None, Some(v)) => check_resources(c, v, &key(path, "NotResource")),
        },
        DocKind::Trust => {
            for (name, v) in [("Resource", res), ("NotResource", not_res)] {
                if v.is_some() {
                    c.push_key(
                        IssueKind::Resource,
                        &key(path, name),
                        format!("{name} has no place in a trust policy (the role is the resource)"),
                    );
                }
            }
        }
    }

    match (c.kind, s.get("Principal")) {
        (DocKind::Permission, Some(_)) => c.push_key(
            IssueKind::PrincipalInPermission,
            &key(path, "Principal"),
            "Principal belongs in a role's trust policy, not in a permission policy",
        ),
        (DocKind::Permission, None) => {}
        (DocKind::Trust, None) => c.push(
            IssueKind::TrustPrincipal,
            path,
            "trust statement without Principal: name who may assume the role \
             (Service, RAM or Federated)",
        ),
        (DocKind::Trust, Some(p)) => check_principal(c, p, &key(path, "Principal")),
    }

    if let Some(cond) = s.get("Condition") {
        check_condition(c, cond, &key(path, "Condition"));
    }

    for k in s.keys() {
        if !STATEMENT_KEYS.contains(&k.as_str()) {
            c.push_key(
                IssueKind::UnknownElement,
                &key(path, k),
                format!(
                    "unknown statement element `{k}` (RAM knows Effect, Action, NotAction, \
                     Resource, NotResource, Condition, Principal)"
                ),
            );
        }
    }
}

/// A string or a non-empty list of strings; each item is handed to `each`.
fn string_items(
    c: &mut Checker,
    v: &Value,
    path: &[PathSeg],
    kind: IssueKind,
    what: &str,
    mut each: impl FnMut(&mut Checker, &str, &[PathSeg]),
) {
    match v {
        Value::String(s) => each(c, s, path),
        Value::Array(items) if items.is_empty() => {
            c.push(kind, path, format!("{what} is an empty list"))
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let p = index(path, i);
                match item {
                    Value::String(s) => each(c, s, &p),
                    other => c.push(
                        kind,
                        &p,
                        format!("{what} entries are strings, not {}", describe(other)),
                    ),
                }
            }
        }
        other => c.push(
            kind,
            path,
            format!(
                "{what} must be a string or a list of strings, not {}",
                describe(other)
            ),
        ),
    }
}

fn check_actions(c: &mut Checker, v: &Value, path: &[PathSeg]) {
    let trust = c.kind == DocKind::Trust;
    string_items(c, v, path, IssueKind::Action, "Action", |c, a, p| {
        if trust {
            let ok = [
                "sts:AssumeRole",
                "sts:AssumeRoleWithSAML",
                "sts:AssumeRoleWithOIDC",
            ]
            .iter()
            .any(|t| t.eq_ignore_ascii_case(a));
            if !ok {
                c.push(
                    IssueKind::Action,
                    p,
                    format!(
                        "a trust policy grants sts:AssumeRole (or sts:AssumeRoleWithSAML / \
                         sts:AssumeRoleWithOIDC), not `{a}`"
                    ),
                );
            }
            return;
        }
        if a == "*" {
            return;
        }
        let valid = a.split_once(':').is_some_and(|(svc, name)| {
            !svc.is_empty()
                && svc
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '*')
                && !name.is_empty()
                && name.chars().all(|ch| {
                    ch.is_ascii_alphanumeric() || matches!(ch, '*' | '?' | '-' | '_' | '.')
                })
        });
        if !valid {
            c.push(
                IssueKind::Action,
                p,
                format!("action `{a}` is not `service:Action` (for example oss:GetObject) or *"),
            );
        }
    });
}

fn check_resources(c: &mut Checker, v: &Value, path: &[PathSeg]) {
    string_items(c, v, path, IssueKind::Resource, "Resource", |c, r, p| {
        let ok = r == "*" || (r.starts_with("acs:") && !r.chars().any(char::is_whitespace));
        if !ok {
            c.push(
                IssueKind::Resource,
                p,
                format!(
                    "resource `{r}` is not an ARN (acs:<service>:<region>:<account>:<path>) or *"
                ),
            );
        }
    });
}

fn check_principal(c: &mut Checker, v: &Value, path: &[PathSeg]) {
    let Value::Object(map) = v else {
        c.push(
            IssueKind::TrustPrincipal,
            path,
            format!(
                "Principal must be a mapping of Service, RAM or Federated to names, not {}",
                describe(v)
            ),
        );
        return;
    };
    if map.is_empty() {
        c.push(
            IssueKind::TrustPrincipal,
            path,
            "Principal is empty: name who may assume the role (Service, RAM or Federated)",
        );
    }
    for (k, names) in map {
        let p = key(path, k);
        if !matches!(k.as_str(), "RAM" | "Service" | "Federated") {
            c.push_key(
                IssueKind::TrustPrincipal,
                &p,
                format!("unknown principal type `{k}` (RAM knows Service, RAM and Federated)"),
            );
            continue;
        }
        string_items(
            c,
            names,
            &p,
            IssueKind::TrustPrincipal,
            "a principal",
            |c, n, p| {
                if n.trim().is_empty() {
                    c.push(IssueKind::TrustPrincipal, p, "empty principal name");
                }
            },
        );
    }
}

fn check_condition(c: &mut Checker, v: &Value, path: &[PathSeg]) {
    let Value::Object(ops) = v else {
        c.push(
            IssueKind::Condition,
            path,
            format!(
                "Condition must be a mapping {{Operator: {{Key: value}}}}, not {}",
                describe(v)
            ),
        );
        return;
    };
    for (op, keys) in ops {
        let op_path = key(path, op);
        if condition_value_ok(op, "").is_none() {
            c.push_key(
                IssueKind::Condition,
                &op_path,
                format!(
                    "unknown condition operator `{op}` (for example StringEquals, StringLike, \
                     NumericLessThan, DateGreaterThan, Bool, IpAddress; IfExists may follow)"
                ),
            );
            continue;
        }
        let Value::Object(keys) = keys else {
            c.push(
                IssueKind::Condition,
                &op_path,
                format!(
                    "operator {op} takes a mapping of condition keys to values, not {}",
                    describe(keys)
                ),
            );
            continue;
        };
        if keys.is_empty() {
            c.push(
                IssueKind::Condition,
                &op_path,
                format!("operator {op} has no key"),
            );
        }
        for (k, values) in keys {
            let kp = key(&op_path, k);
            let items: Vec<(Vec<PathSeg>, &Value)> = match values {
                Value::Array(items) if items.is_empty() => {
                    c.push(IssueKind::Condition, &kp, "empty list of condition values");
                    continue;
                }
                Value::Array(items) => items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (index(&kp, i), v))
                    .collect(),
                other => vec![(kp.clone(), other)],
            };
            for (p, item) in items {
                let text = match item {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    other => {
                        c.push(
                            IssueKind::Condition,
                            &p,
                            format!(
                                "condition values are strings, numbers or booleans, not {}",
                                describe(other)
                            ),
                        );
                        continue;
                    }
                };
                if condition_value_ok(op, &text) == Some(false) {
                    c.push(
                        IssueKind::Condition,
                        &p,
                        format!("`{text}` is not a valid value for {op}"),
                    );
                }
            }
        }
    }
}

/// "the number 1", "a list", ... for messages.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null (nothing)".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string \"{s}\""),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn kinds(doc: Value, kind: DocKind) -> Vec<IssueKind> {
        check_document(&doc, kind)
            .into_iter()
            .map(|i| i.kind)
            .collect()
    }

    #[test]
    fn a_good_permission_policy_and_trust_policy_pass() {
        let p = json!({"Version":"1","Statement":[
            {"Effect":"Allow","Action":["oss:Get*","mns:*"],"Resource":"acs:oss:*:*:b/*"},
            {"Effect":"Allow","Action":"ram:PassRole","Resource":"*",
             "Condition":{"StringEquals":{"acs:Service":"imm.aliyuncs.com"},
                          "IpAddressIfExists":{"acs:SourceIp":["10.0.0.0/8"]},
                          "Bool":{"acs:SecureTransport":true}}}]});
        assert_eq!(kinds(p, DocKind::Permission), vec![]);
        let t = json!({"Version":"1","Statement":{"Effect":"Allow","Action":"sts:AssumeRole",
            "Principal":{"Service":["imm.aliyuncs.com"]}}});
        assert_eq!(kinds(t, DocKind::Trust), vec![]);
    }

    #[test]
    fn each_rule_is_found_with_its_path() {
        let doc = json!({"Version":1,"Sid":"x","Statement":[
            {"Effect":"allow","Action":"oss GetObject","Resource":"bucket/*","Principal":{"RAM":"x"}},
            {"Effect":"Deny","Action":[],"NotResource":"*","Condition":{"StringEqualz":{"a":"b"}}},
            {"Effect":"Allow","Action":"a:b","Resource":"*","Condition":{"NumericLessThan":{"n":"ten"}}}]});
        let issues = check_document(&doc, DocKind::Permission);
        let got: Vec<(IssueKind, Vec<PathSeg>)> =
            issues.iter().map(|i| (i.kind, i.path.clone())).collect();
        let k = |s: &str| PathSeg::Key(s.into());
        let st = |i: usize| vec![k("Statement"), PathSeg::Index(i)];
        let with = |mut p: Vec<PathSeg>, more: &[PathSeg]| {
            p.extend_from_slice(more);
            p
        };
        for want in [
            (IssueKind::Version, vec![k("Version")]),
            (IssueKind::UnknownElement, vec![k("Sid")]),
            (IssueKind::Effect, with(st(0), &[k("Effect")])),
            (IssueKind::Action, with(st(0), &[k("Action")])),
            (IssueKind::Resource, with(st(0), &[k("Resource")])),
            (
                IssueKind::PrincipalInPermission,
                with(st(0), &[k("Principal")]),
            ),
            (IssueKind::Action, with(st(1), &[k("Action")])),
            (
                IssueKind::Condition,
                with(st(1), &[k("Condition"), k("StringEqualz")]),
            ),
            (
                IssueKind::Condition,
                with(st(2), &[k("Condition"), k("NumericLessThan"), k("n")]),
            ),
        ] {
            assert!(got.contains(&want), "missing {want:?} in {got:?}");
        }
        assert_eq!(got.len(), 9, "{got:?}");
    }

    #[test]
    fn trust_policies_need_a_principal_and_assume_role() {
        assert_eq!(
            kinds(
                json!({"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole"}]}),
                DocKind::Trust
            ),
            vec![IssueKind::TrustPrincipal]
        );
        assert_eq!(
            kinds(
                json!({"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:GetObject",
                    "Resource":"*","Principal":{"Service":[], "Robot":"x"}}]}),
                DocKind::Trust
            ),
            vec![
                IssueKind::Action,
                IssueKind::Resource,
                IssueKind::TrustPrincipal,
                IssueKind::TrustPrincipal
            ]
        );
        assert_eq!(
            kinds(
                json!({"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Principal":"*"}]}),
                DocKind::Trust
            ),
            vec![IssueKind::TrustPrincipal]
        );
    }

    #[test]
    fn size_is_measured_on_the_wire_form() {
        let actions: Vec<String> = (0..400).map(|i| format!("oss:Action{i:04}")).collect();
        let doc = PolicyDocument(json!({"Version":"1","Statement":[
            {"Effect":"Allow","Action":actions,"Resource":"*"}]}));
        let issue = check_size(&doc, DocKind::Permission).expect("too large");
        assert!(issue.message.contains("limit is 6144"), "{}", issue.message);
        let small = PolicyDocument(json!({"Version":"1","Statement":[
            {"Effect":"Allow","Action":"oss:GetObject","Resource":"*"}]}));
        assert_eq!(check_size(&small, DocKind::Permission), None);
    }
}
