//! The RAM policy language's grammar, checked offline: what RAM would refuse with
//! `MalformedPolicyDocument` (or a length error), found before anything is sent, and named
//! by the JSON path of the offending element so the manifest layer can point at the line.
//!
//! Two kinds of document: a *permission* policy (statements grant actions on resources, no
//! `Principal`) and a role's *trust* policy (statements let a `Principal` assume the role;
//! no `Resource`). The rules follow RAM's documented policy structure and what the emulator
//! enforces, plus a little more where a mistake would otherwise pass silently (an unknown
//! condition operator never matches, so it is refused rather than ignored).
//!
//! Pure code: no I/O.

use serde_json::Value;

use super::PolicyDocument;
use super::eval::{KNOWN_OPERATORS, is_known_operator};

/// Largest permission policy document RAM accepts (characters of the JSON text sent;
/// reference §3.1: CreatePolicy 1–6144 characters).
pub const MAX_POLICY_CHARS: usize = 6144;
/// Largest trust policy accepted. RAM's number is UNCONFIRMED (reference §3.1); this is the
/// emulator's figure, so both sides refuse the same documents.
pub const MAX_TRUST_CHARS: usize = 4096;

/// Which kind of document is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocKind {
    Permission,
    Trust,
}

/// Actions a trust policy statement may allow.
pub const TRUST_ACTIONS: &[&str] = &[
    "sts:AssumeRole",
    "sts:AssumeRoleWithSAML",
    "sts:AssumeRoleWithOIDC",
];

/// Principal types RAM trust policies use.
const PRINCIPAL_KEYS: &[&str] = &["Service", "RAM", "Federated"];

/// One problem: where in the document (`Statement[1].Effect`, empty for the root), a stable
/// code and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: String,
    pub code: &'static str,
    pub message: String,
}

/// Problem codes (shared with the manifest findings).
pub mod codes {
    /// Grammar: structure, Version, Effect, Action/Resource, Condition.
    pub const GRAMMAR: &str = "E130";
    /// The document is too large.
    pub const SIZE: &str = "E131";
    /// `Principal` missing from a trust statement, or present in a permission policy.
    pub const PRINCIPAL: &str = "E132";
}

/// Check `doc` as a document of `kind`. Returns every problem found (empty when valid).
pub fn check(doc: &Value, kind: DocKind) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut p = |path: String, code: &'static str, message: String| {
        out.push(Problem {
            path,
            code,
            message,
        })
    };
    let Some(root) = doc.as_object() else {
        p(
            String::new(),
            codes::GRAMMAR,
            format!("a policy document must be a map, found {}", type_name(doc)),
        );
        return out;
    };
    for key in root.keys() {
        if key != "Version" && key != "Statement" {
            p(
                key.clone(),
                codes::GRAMMAR,
                format!(
                    "unknown key {key:?} in a policy document (expected Version and Statement)"
                ),
            );
        }
    }
    match root.get("Version") {
        Some(Value::String(v)) if v == "1" => {}
        Some(Value::Number(n)) if n.as_u64() == Some(1) => p(
            "Version".into(),
            codes::GRAMMAR,
            "Version must be the string \"1\"; quote it (`Version: \"1\"`)".into(),
        ),
        Some(other) => p(
            "Version".into(),
            codes::GRAMMAR,
            format!("Version must be \"1\", found {}", short(other)),
        ),
        None => p(
            String::new(),
            codes::GRAMMAR,
            "missing Version (it must be \"1\")".into(),
        ),
    }
    match root.get("Statement") {
        Some(Value::Array(stmts)) if !stmts.is_empty() => {
            for (i, s) in stmts.iter().enumerate() {
                check_statement(s, kind, &format!("Statement[{i}]"), &mut p);
            }
        }
        Some(Value::Array(_)) => p(
            "Statement".into(),
            codes::GRAMMAR,
            "Statement is empty; a policy needs at least one statement".into(),
        ),
        Some(other) => p(
            "Statement".into(),
            codes::GRAMMAR,
            format!(
                "Statement must be a list of statements, found {}",
                type_name(other)
            ),
        ),
        None => p(String::new(), codes::GRAMMAR, "missing Statement".into()),
    }
    if out.is_empty() {
        // Size is measured on the text immctl sends (the canonical compact JSON).
        let chars = PolicyDocument(doc.clone()).to_wire().chars().count();
        let max = match kind {
            DocKind::Permission => MAX_POLICY_CHARS,
            DocKind::Trust => MAX_TRUST_CHARS,
        };
        if chars > max {
            out.push(Problem {
                path: String::new(),
                code: codes::SIZE,
                message: format!(
                    "the document is {chars} characters as sent (compact JSON); RAM accepts at most {max}"
                ),
            });
        }
    }
    out
}

fn check_statement(
    s: &Value,
    kind: DocKind,
    at: &str,
    p: &mut impl FnMut(String, &'static str, String),
) {
    let Some(stmt) = s.as_object() else {
        p(
            at.to_string(),
            codes::GRAMMAR,
            format!("a statement must be a map, found {}", type_name(s)),
        );
        return;
    };
    let field = |k: &str| format!("{at}.{k}");
    const KEYS: &[&str] = &[
        "Effect",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Principal",
        "Condition",
    ];
    for key in stmt.keys() {
        if !KEYS.contains(&key.as_str()) {
            p(
                field(key),
                codes::GRAMMAR,
                format!(
                    "unknown statement key {key:?} (expected one of {})",
                    KEYS.join(", ")
                ),
            );
        }
    }
    match stmt.get("Effect") {
        Some(Value::String(e)) if e == "Allow" || e == "Deny" => {}
        Some(other) => p(
            field("Effect"),
            codes::GRAMMAR,
            format!(
                "Effect must be Allow or Deny (case matters), found {}",
                short(other)
            ),
        ),
        None => p(at.to_string(), codes::GRAMMAR, "missing Effect".into()),
    }

    // Action / NotAction: exactly one.
    match (stmt.get("Action"), stmt.get("NotAction")) {
        (Some(_), Some(_)) => p(
            at.to_string(),
            codes::GRAMMAR,
            "a statement has either Action or NotAction, not both".into(),
        ),
        (None, None) => p(
            at.to_string(),
            codes::GRAMMAR,
            "missing Action (or NotAction)".into(),
        ),
        (Some(v), None) => check_actions(v, &field("Action"), kind, false, p),
        (None, Some(v)) => check_actions(v, &field("NotAction"), kind, true, p),
    }

    match kind {
        DocKind::Permission => {
            if stmt.contains_key("Principal") {
                p(
                    field("Principal"),
                    codes::PRINCIPAL,
                    "Principal is only allowed in a role's trust policy, not in a permission policy"
                        .into(),
                );
            }
            match (stmt.get("Resource"), stmt.get("NotResource")) {
                (Some(_), Some(_)) => p(
                    at.to_string(),
                    codes::GRAMMAR,
                    "a statement has either Resource or NotResource, not both".into(),
                ),
                (None, None) => p(
                    at.to_string(),
                    codes::GRAMMAR,
                    "missing Resource (or NotResource)".into(),
                ),
                (Some(v), None) => check_strings(v, &field("Resource"), "Resource", p),
                (None, Some(v)) => check_strings(v, &field("NotResource"), "NotResource", p),
            }
        }
        DocKind::Trust => {
            for k in ["Resource", "NotResource"] {
                if stmt.contains_key(k) {
                    p(
                        field(k),
                        codes::GRAMMAR,
                        format!(
                            "{k} is not used in a trust policy; the role itself is the resource"
                        ),
                    );
                }
            }
            match stmt.get("Principal") {
                None => p(
                    at.to_string(),
                    codes::PRINCIPAL,
                    "a trust policy statement needs a Principal (e.g. `Principal: {Service: [imm.aliyuncs.com]}`)"
                        .into(),
                ),
                Some(v) => check_principal(v, &field("Principal"), p),
            }
        }
    }

    if let Some(c) = stmt.get("Condition") {
        check_condition(c, &field("Condition"), p);
    }
}

fn check_actions(
    v: &Value,
    at: &str,
    kind: DocKind,
    negated: bool,
    p: &mut impl FnMut(String, &'static str, String),
) {
    let name = if negated { "NotAction" } else { "Action" };
    let Some(items) = string_items(v, at, name, p) else {
        return;
    };
    for (path, a) in items {
        if a == "*" {
            continue;
        }
        let valid = a.split_once(':').is_some_and(|(svc, act)| {
            !svc.is_empty()
                && !act.is_empty()
                && svc
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '*')
                && act
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '*' || c == '?')
        });
        if !valid {
            p(
                path,
                codes::GRAMMAR,
                format!(
                    "{a:?} is not an action: write `<service>:<Action>` (e.g. oss:GetObject, oss:Get*) or \"*\""
                ),
            );
        } else if kind == DocKind::Trust
            && !negated
            && !TRUST_ACTIONS.iter().any(|t| t.eq_ignore_ascii_case(&a))
        {
            p(
                path,
                codes::GRAMMAR,
                format!(
                    "a trust policy can only allow {}; {a:?} belongs in a permission policy",
                    TRUST_ACTIONS.join(", ")
                ),
            );
        }
    }
}

fn check_strings(
    v: &Value,
    at: &str,
    name: &str,
    p: &mut impl FnMut(String, &'static str, String),
) {
    let _ = string_items(v, at, name, p);
}

/// A string or a non-empty list of non-empty strings; returns `(path, value)` per item.
fn string_items(
    v: &Value,
    at: &str,
    name: &str,
    p: &mut impl FnMut(String, &'static str, String),
) -> Option<Vec<(String, String)>> {
    match v {
        Value::String(s) if !s.is_empty() => Some(vec![(at.to_string(), s.clone())]),
        Value::Array(items) if !items.is_empty() => {
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let path = format!("{at}[{i}]");
                match item {
                    Value::String(s) if !s.is_empty() => out.push((path, s.clone())),
                    other => p(
                        path,
                        codes::GRAMMAR,
                        format!(
                            "each {name} entry must be a non-empty string, found {}",
                            short(other)
                        ),
                    ),
                }
            }
            Some(out)
        }
        other => {
            p(
                at.to_string(),
                codes::GRAMMAR,
                format!(
                    "{name} must be a string or a non-empty list of strings, found {}",
                    short(other)
                ),
            );
            None
        }
    }
}

fn check_principal(v: &Value, at: &str, p: &mut impl FnMut(String, &'static str, String)) {
    match v {
        Value::String(s) if s == "*" => {}
        Value::Object(map) if !map.is_empty() => {
            for (k, val) in map {
                let path = format!("{at}.{k}");
                if !PRINCIPAL_KEYS.contains(&k.as_str()) {
                    p(
                        path,
                        codes::PRINCIPAL,
                        format!(
                            "unknown principal type {k:?} (expected one of {})",
                            PRINCIPAL_KEYS.join(", ")
                        ),
                    );
                } else {
                    let _ = string_items(val, &path, &format!("Principal.{k}"), p);
                }
            }
        }
        other => p(
            at.to_string(),
            codes::PRINCIPAL,
            format!(
                "Principal must be a map such as {{Service: [imm.aliyuncs.com]}}, found {}",
                short(other)
            ),
        ),
    }
}

fn check_condition(v: &Value, at: &str, p: &mut impl FnMut(String, &'static str, String)) {
    let Some(ops) = v.as_object() else {
        p(
            at.to_string(),
            codes::GRAMMAR,
            format!(
                "Condition must be a map of operators, found {}",
                type_name(v)
            ),
        );
        return;
    };
    if ops.is_empty() {
        p(at.to_string(), codes::GRAMMAR, "Condition is empty".into());
    }
    for (op, keys) in ops {
        let op_at = format!("{at}.{op}");
        if !is_known_operator(op) {
            p(
                op_at.clone(),
                codes::GRAMMAR,
                format!(
                    "unknown condition operator {op:?} (known: {}, each also with IfExists)",
                    KNOWN_OPERATORS.join(", ")
                ),
            );
            continue;
        }
        let Some(keys) = keys.as_object().filter(|k| !k.is_empty()) else {
            p(
                op_at,
                codes::GRAMMAR,
                format!(
                    "{op} must map condition keys to values, e.g. `{op}: {{acs:Service: imm.aliyuncs.com}}`"
                ),
            );
            continue;
        };
        for (key, val) in keys {
            let key_at = format!("{op_at}.{key}");
            let scalar =
                |x: &Value| matches!(x, Value::String(_) | Value::Number(_) | Value::Bool(_));
            let ok = match val {
                Value::Array(items) => !items.is_empty() && items.iter().all(scalar),
                other => scalar(other),
            };
            if !ok {
                p(
                    key_at,
                    codes::GRAMMAR,
                    format!(
                        "the value of condition key {key:?} must be a string, number or boolean, or a non-empty list of them"
                    ),
                );
            }
        }
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing (null)",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// A value for a message: short scalars as written, collections by type.
fn short(v: &Value) -> String {
    match v {
        Value::String(s) if s.chars().count() <= 40 => format!("{s:?}"),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => type_name(other).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn codes_at(doc: Value, kind: DocKind) -> Vec<(String, &'static str)> {
        check(&doc, kind)
            .into_iter()
            .map(|p| (p.path, p.code))
            .collect()
    }

    #[test]
    fn the_guides_policies_are_valid() {
        assert!(check(&crate::policy::imm::trust_policy().0, DocKind::Trust).is_empty());
        let doc = crate::policy::imm::service_role_policy(&["media".into()], &[]);
        assert!(check(&doc.0, DocKind::Permission).is_empty());
    }

    #[test]
    fn each_grammar_mistake_is_named_at_its_path() {
        let doc = json!({
            "Version": 1,
            "Statement": [
                {"Effect": "allow", "Action": "oss:GetObject", "Resource": "*"},
                {"Effect": "Allow", "Action": ["oss:GetObject", ""], "Resource": []},
                {"Effect": "Allow", "Action": "GetObject", "NotAction": "x:y", "Resource": "*"},
                {"Effect": "Deny", "Action": "*", "Resource": "*", "Principal": {"RAM": "x"}},
                {"Effect": "Allow", "Action": "*", "Resource": "*", "Sid": "x",
                 "Condition": {"StringEqual": {"a": "b"}, "Bool": {"k": {"nested": 1}}}}
            ],
            "Id": "x"
        });
        let got = codes_at(doc, DocKind::Permission);
        let want: Vec<(String, &str)> = vec![
            ("Id".into(), "E130"),
            ("Version".into(), "E130"),
            ("Statement[0].Effect".into(), "E130"),
            ("Statement[1].Action[1]".into(), "E130"),
            ("Statement[1].Resource".into(), "E130"),
            ("Statement[2]".into(), "E130"),
            ("Statement[3].Principal".into(), "E132"),
            ("Statement[4].Sid".into(), "E130"),
            ("Statement[4].Condition.Bool.k".into(), "E130"),
            ("Statement[4].Condition.StringEqual".into(), "E130"),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn trust_policies_need_a_principal_and_no_resource() {
        let got = codes_at(
            json!({"Version": "1", "Statement": [
                {"Effect": "Allow", "Action": "sts:AssumeRole"},
                {"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*",
                 "Principal": {"Service": ["imm.aliyuncs.com"], "User": "x"}}
            ]}),
            DocKind::Trust,
        );
        assert_eq!(
            got,
            vec![
                ("Statement[0]".to_string(), "E132"),
                ("Statement[1].Action".to_string(), "E130"),
                ("Statement[1].Resource".to_string(), "E130"),
                ("Statement[1].Principal.User".to_string(), "E132"),
            ]
        );
    }

    #[test]
    fn structure_errors_at_the_root() {
        assert_eq!(
            codes_at(json!([1]), DocKind::Permission),
            vec![(String::new(), "E130")]
        );
        assert_eq!(
            codes_at(
                json!({"Version": "1", "Statement": {"Effect": "Allow"}}),
                DocKind::Permission
            ),
            vec![("Statement".to_string(), "E130")]
        );
        assert_eq!(
            codes_at(
                json!({"Version": "1", "Statement": []}),
                DocKind::Permission
            ),
            vec![("Statement".to_string(), "E130")]
        );
        assert_eq!(
            codes_at(json!({"Statement": []}), DocKind::Trust).len(),
            2,
            "missing Version and empty Statement"
        );
    }

    #[test]
    fn size_is_measured_on_the_wire_text_with_the_limit_of_each_kind() {
        let resources: Vec<String> = (0..400)
            .map(|i| format!("acs:oss:*:*:bucket-{i:04}/*"))
            .collect();
        let doc = json!({"Version": "1", "Statement": [
            {"Effect": "Allow", "Action": "oss:GetObject", "Resource": resources}
        ]});
        let problems = check(&doc, DocKind::Permission);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].code, codes::SIZE);
        assert!(
            problems[0].message.contains("at most 6144"),
            "{}",
            problems[0].message
        );
        // Just under the limit passes.
        let small: Vec<String> = resources[..100].to_vec();
        let doc = json!({"Version": "1", "Statement": [
            {"Effect": "Allow", "Action": "oss:GetObject", "Resource": small}
        ]});
        assert!(check(&doc, DocKind::Permission).is_empty());
    }

    #[test]
    fn known_operators_with_if_exists_and_scalar_values_pass() {
        let doc = json!({"Version": "1", "Statement": [{
            "Effect": "Allow", "Action": "ram:PassRole", "Resource": "*",
            "Condition": {
                "StringEquals": {"acs:Service": "imm.aliyuncs.com"},
                "IpAddressIfExists": {"acs:SourceIp": ["10.0.0.0/8"]},
                "Bool": {"acs:SecureTransport": true},
                "NumericLessThan": {"k": 3}
            }
        }]});
        assert!(check(&doc, DocKind::Permission).is_empty());
    }
}
