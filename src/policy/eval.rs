//! The RAM policy evaluator: does a set of permission policies allow one request?
//!
//! Shared by the emulator (authorizing every call) and the linter (asking "would this role
//! be allowed to do X on Y?"). Pure code: no I/O, no clock (the caller puts the time into
//! the request context as `acs:CurrentTime`).
//!
//! Semantics (RAM's documented policy language, with AWS IAM's rules where RAM is silent):
//! - The result is [`Decision::ExplicitDeny`] when any matching `Deny` statement applies,
//!   else [`Decision::Allow`] when any matching `Allow` statement applies, else
//!   [`Decision::ImplicitDeny`]. Explicit deny always wins, across all policies.
//! - A statement matches when its action part, its resource part and its condition block
//!   all match. A statement with neither `Action` nor `NotAction` (or neither `Resource`
//!   nor `NotResource`) matches nothing.
//! - `Action` / `NotAction` patterns: `service:Name` with `*` (any run of characters) and
//!   `?` (one character), compared **case-insensitively**. `"*"` alone matches every action.
//! - `Resource` / `NotResource` patterns: the same wildcards, compared **case-sensitively**
//!   (RAM ARNs keep the name's case; `acs:ram:*:123:role/*` matches every role).
//! - `Condition`: `{Operator: {Key: value | [values]}}`. Condition keys are compared
//!   case-insensitively. Within one key the values are ORed; keys within an operator and
//!   operators within the block are ANDed. A key missing from the request context makes
//!   a positive operator false and a negated operator (`StringNotEquals`, `StringNotLike`,
//!   `NumericNotEquals`, `NotIpAddress`) true, as in IAM; the `IfExists` suffix makes any
//!   operator true when the key is missing. An unknown operator never matches (so an
//!   `Allow` with it grants nothing and a `Deny` with it denies nothing).
//! - Operators: `StringEquals`, `StringNotEquals`, `StringEqualsIgnoreCase`,
//!   `StringNotEqualsIgnoreCase`, `StringLike`, `StringNotLike`, `NumericEquals`,
//!   `NumericNotEquals`, `NumericLessThan`, `NumericLessThanEquals`, `NumericGreaterThan`,
//!   `NumericGreaterThanEquals`, `DateEquals`, `DateNotEquals`, `DateLessThan`,
//!   `DateLessThanEquals`, `DateGreaterThan`, `DateGreaterThanEquals` (RFC 3339 or epoch
//!   seconds), `Bool`, `IpAddress`, `NotIpAddress` (IPv4/IPv6 address or CIDR).
//! - A context key may hold several values (e.g. tags); the operator holds when any
//!   request value matches any policy value (negated operators: when no pair matches).

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

use super::PolicyDocument;

/// What the caller asks to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// `service:Action`, e.g. `ram:CreateRole`.
    pub action: String,
    /// The resource ARN, e.g. `acs:ram:*:1234567890123456:role/deployer`.
    pub resource: String,
    /// Condition keys (`acs:CurrentTime`, `acs:SourceIp`, `acs:Service`, ...) and their values.
    pub context: BTreeMap<String, Vec<String>>,
}

impl Request {
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        Request {
            action: action.into(),
            resource: resource.into(),
            context: BTreeMap::new(),
        }
    }

    /// Builder: add one context value.
    pub fn with(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.context
            .entry(key.into())
            .or_default()
            .push(value.into());
        self
    }

    fn context_values(&self, key: &str) -> Option<&Vec<String>> {
        self.context
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    }
}

/// The outcome of an evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// At least one Allow statement matched and no Deny statement did.
    Allow,
    /// A Deny statement matched.
    ExplicitDeny,
    /// Nothing matched.
    ImplicitDeny,
}

impl Decision {
    pub fn is_allowed(self) -> bool {
        self == Decision::Allow
    }
}

/// Evaluate `request` against every policy (JSON documents as RAM stores them).
pub fn evaluate(policies: &[&Value], request: &Request) -> Decision {
    let mut allowed = false;
    for policy in policies {
        for stmt in statements(policy) {
            if !statement_matches(stmt, request) {
                continue;
            }
            match effect(stmt) {
                Some(Effect::Deny) => return Decision::ExplicitDeny,
                Some(Effect::Allow) => allowed = true,
                None => {}
            }
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

/// [`evaluate`] over typed documents.
pub fn evaluate_documents(policies: &[&PolicyDocument], request: &Request) -> Decision {
    let values: Vec<&Value> = policies.iter().map(|p| &p.0).collect();
    evaluate(&values, request)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

fn effect(stmt: &Value) -> Option<Effect> {
    match stmt.get("Effect").and_then(Value::as_str) {
        Some(e) if e.eq_ignore_ascii_case("allow") => Some(Effect::Allow),
        Some(e) if e.eq_ignore_ascii_case("deny") => Some(Effect::Deny),
        _ => None,
    }
}

/// The statements of a policy: `Statement` may be a list or a single object.
pub fn statements(policy: &Value) -> Vec<&Value> {
    match policy.get("Statement") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(obj @ Value::Object(_)) => vec![obj],
        _ => Vec::new(),
    }
}

/// The string values of a field that may be a string or a list of strings.
pub fn string_list(v: Option<&Value>) -> Option<Vec<String>> {
    match v? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(items) => Some(items.iter().map(scalar_text).collect()),
        other => Some(vec![scalar_text(other)]),
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn statement_matches(stmt: &Value, req: &Request) -> bool {
    let action_ok = if let Some(actions) = string_list(stmt.get("Action")) {
        actions.iter().any(|p| wildcard_match(p, &req.action, true))
    } else if let Some(not) = string_list(stmt.get("NotAction")) {
        !not.iter().any(|p| wildcard_match(p, &req.action, true))
    } else {
        false
    };
    if !action_ok {
        return false;
    }
    let resource_ok = if let Some(res) = string_list(stmt.get("Resource")) {
        res.iter().any(|p| wildcard_match(p, &req.resource, false))
    } else if let Some(not) = string_list(stmt.get("NotResource")) {
        !not.iter().any(|p| wildcard_match(p, &req.resource, false))
    } else {
        false
    };
    resource_ok && conditions_match(stmt.get("Condition"), req)
}

/// Glob match with `*` (any run, possibly empty) and `?` (exactly one character).
pub fn wildcard_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = if ignore_case {
        (
            pattern.to_lowercase().chars().collect(),
            text.to_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    // Iterative matcher with single-star backtracking: O(len(p) * len(t)) worst case.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        // The star test comes first: a `*` in the pattern is always a wildcard, even when
        // the text holds a literal `*` (a role's `*:Describe*` checked against `*`).
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

fn conditions_match(cond: Option<&Value>, req: &Request) -> bool {
    let Some(cond) = cond else {
        return true;
    };
    let Value::Object(ops) = cond else {
        return false;
    };
    ops.iter().all(|(op, keys)| {
        let Value::Object(keys) = keys else {
            return false;
        };
        keys.iter().all(|(key, values)| {
            let wanted = string_list(Some(values)).unwrap_or_default();
            operator_holds(op, req.context_values(key), &wanted)
        })
    })
}

/// One operator over one key: `actual` are the request's values (None = key absent).
fn operator_holds(op: &str, actual: Option<&Vec<String>>, wanted: &[String]) -> bool {
    let (base, if_exists) = match op.strip_suffix("IfExists") {
        Some(b) => (b, true),
        None => (op, false),
    };
    let Some(kind) = OpKind::parse(base) else {
        return false;
    };
    let actual = match actual {
        Some(v) if !v.is_empty() => v,
        _ => return if_exists || kind.negated,
    };
    let any_pair = actual
        .iter()
        .any(|a| wanted.iter().any(|w| kind.test(a, w)));
    if kind.negated { !any_pair } else { any_pair }
}

/// Whether `value` is a well-formed value for the condition operator `op` (an `IfExists`
/// suffix is allowed): a number for `Numeric*`, a date for `Date*`, `true`/`false` for `Bool`,
/// an address or CIDR for `IpAddress` / `NotIpAddress`, anything for `String*`. `None` when
/// the operator is unknown. The validator uses this so that a manifest is refused for exactly
/// the operators this evaluator would not understand.
pub fn condition_value_ok(op: &str, value: &str) -> Option<bool> {
    let base = op.strip_suffix("IfExists").unwrap_or(op);
    let kind = OpKind::parse(base)?;
    Some(match kind.cmp {
        Cmp::StrEq | Cmp::StrEqIc | Cmp::StrLike => true,
        Cmp::Num(..) | Cmp::NumEq => num(value).is_some(),
        Cmp::Date(..) | Cmp::DateEq => date(value).is_some(),
        Cmp::Bool => value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false"),
        Cmp::Ip => valid_cidr(value),
    })
}

/// `10.0.0.0/8`, `::1/128` or a bare address.
fn valid_cidr(s: &str) -> bool {
    match s.trim().split_once('/') {
        Some((n, l)) => match (n.parse::<IpAddr>(), l.parse::<u32>()) {
            (Ok(IpAddr::V4(_)), Ok(l)) => l <= 32,
            (Ok(IpAddr::V6(_)), Ok(l)) => l <= 128,
            _ => false,
        },
        None => s.trim().parse::<IpAddr>().is_ok(),
    }
}

#[derive(Debug, Clone, Copy)]
enum Cmp {
    StrEq,
    StrEqIc,
    StrLike,
    Num(std::cmp::Ordering, bool),
    NumEq,
    Date(std::cmp::Ordering, bool),
    DateEq,
    Bool,
    Ip,
}

#[derive(Debug, Clone, Copy)]
struct OpKind {
    cmp: Cmp,
    negated: bool,
}

impl OpKind {
    fn parse(op: &str) -> Option<OpKind> {
        use std::cmp::Ordering::{Greater, Less};
        let (cmp, negated) = match op {
            "StringEquals" => (Cmp::StrEq, false),
            "StringNotEquals" => (Cmp::StrEq, true),
            "StringEqualsIgnoreCase" => (Cmp::StrEqIc, false),
            "StringNotEqualsIgnoreCase" => (Cmp::StrEqIc, true),
            "StringLike" => (Cmp::StrLike, false),
            "StringNotLike" => (Cmp::StrLike, true),
            "NumericEquals" => (Cmp::NumEq, false),
            "NumericNotEquals" => (Cmp::NumEq, true),
            "NumericLessThan" => (Cmp::Num(Less, false), false),
            "NumericLessThanEquals" => (Cmp::Num(Less, true), false),
            "NumericGreaterThan" => (Cmp::Num(Greater, false), false),
            "NumericGreaterThanEquals" => (Cmp::Num(Greater, true), false),
            "DateEquals" => (Cmp::DateEq, false),
            "DateNotEquals" => (Cmp::DateEq, true),
            "DateLessThan" => (Cmp::Date(Less, false), false),
            "DateLessThanEquals" => (Cmp::Date(Less, true), false),
            "DateGreaterThan" => (Cmp::Date(Greater, false), false),
            "DateGreaterThanEquals" => (Cmp::Date(Greater, true), false),
            "Bool" => (Cmp::Bool, false),
            "IpAddress" => (Cmp::Ip, false),
            "NotIpAddress" => (Cmp::Ip, true),
            _ => return None,
        };
        Some(OpKind { cmp, negated })
    }

    /// Does the request value `a` satisfy the policy value `w` (before negation)?
    fn test(&self, a: &str, w: &str) -> bool {
        match self.cmp {
            Cmp::StrEq => a == w,
            Cmp::StrEqIc => a.to_lowercase() == w.to_lowercase(),
            Cmp::StrLike => wildcard_match(w, a, false),
            Cmp::NumEq => matches!((num(a), num(w)), (Some(x), Some(y)) if x == y),
            Cmp::Num(ord, or_equal) => match (num(a), num(w)) {
                (Some(x), Some(y)) => x
                    .partial_cmp(&y)
                    .is_some_and(|o| o == ord || (or_equal && o == std::cmp::Ordering::Equal)),
                _ => false,
            },
            Cmp::DateEq => matches!((date(a), date(w)), (Some(x), Some(y)) if x == y),
            Cmp::Date(ord, or_equal) => match (date(a), date(w)) {
                (Some(x), Some(y)) => {
                    let o = x.cmp(&y);
                    o == ord || (or_equal && o == std::cmp::Ordering::Equal)
                }
                _ => false,
            },
            Cmp::Bool => a.eq_ignore_ascii_case(w),
            Cmp::Ip => ip_in(a, w),
        }
    }
}

fn num(s: &str) -> Option<f64> {
    s.trim().parse::<f64>().ok()
}

fn date(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(t.timestamp_millis());
    }
    if let Ok(secs) = s.parse::<i64>() {
        return Some(secs * 1000);
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp_millis())
}

/// Is address `a` inside `cidr` (`10.0.0.0/8`, `::1/128`, or a bare address)?
fn ip_in(a: &str, cidr: &str) -> bool {
    let Ok(addr) = a.trim().parse::<IpAddr>() else {
        return false;
    };
    let (net, len) = match cidr.trim().split_once('/') {
        Some((n, l)) => match (n.parse::<IpAddr>(), l.parse::<u32>()) {
            (Ok(n), Ok(l)) => (n, l),
            _ => return false,
        },
        None => match cidr.trim().parse::<IpAddr>() {
            Ok(n) => (n, if n.is_ipv4() { 32 } else { 128 }),
            Err(_) => return false,
        },
    };
    match (addr, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if len <= 32 => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if len <= 128 => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(policies: &[Value], req: &Request) -> Decision {
        let refs: Vec<&Value> = policies.iter().collect();
        evaluate(&refs, req)
    }

    fn allow(action: Value, resource: Value) -> Value {
        json!({"Version":"1","Statement":[{"Effect":"Allow","Action":action,"Resource":resource}]})
    }

    #[test]
    fn no_policy_is_implicit_deny() {
        assert_eq!(
            eval(&[], &Request::new("ram:GetRole", "*")),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn action_wildcards_are_case_insensitive() {
        let p = [allow(json!("RAM:get*"), json!("*"))];
        assert_eq!(eval(&p, &Request::new("ram:GetRole", "x")), Decision::Allow);
        assert_eq!(
            eval(&p, &Request::new("ram:ListRoles", "x")),
            Decision::ImplicitDeny
        );
        let q = [allow(json!(["imm:?etProject"]), json!("*"))];
        assert_eq!(
            eval(&q, &Request::new("imm:GetProject", "x")),
            Decision::Allow
        );
        assert_eq!(
            eval(&q, &Request::new("imm:GetProjects", "x")),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn resource_wildcards_are_case_sensitive() {
        let p = [allow(json!("ram:*"), json!("acs:ram:*:123:role/app-*"))];
        assert!(
            eval(
                &p,
                &Request::new("ram:GetRole", "acs:ram:*:123:role/app-web")
            )
            .is_allowed()
        );
        assert!(
            !eval(
                &p,
                &Request::new("ram:GetRole", "acs:ram:*:123:role/App-web")
            )
            .is_allowed()
        );
        assert!(
            !eval(
                &p,
                &Request::new("ram:GetRole", "acs:ram:*:123:policy/app-web")
            )
            .is_allowed()
        );
    }

    #[test]
    fn explicit_deny_wins_across_policies() {
        let p = [
            allow(json!("*"), json!("*")),
            json!({"Version":"1","Statement":{"Effect":"Deny","Action":"ram:Delete*","Resource":"*"}}),
        ];
        assert_eq!(
            eval(&p, &Request::new("ram:DeleteRole", "r")),
            Decision::ExplicitDeny
        );
        assert_eq!(eval(&p, &Request::new("ram:GetRole", "r")), Decision::Allow);
    }

    #[test]
    fn not_action_and_not_resource() {
        let p = [json!({"Version":"1","Statement":[
            {"Effect":"Allow","NotAction":["ram:*"],"Resource":"*"},
            {"Effect":"Allow","Action":"ram:GetRole","NotResource":"acs:ram:*:1:role/secret"}]})];
        assert!(eval(&p, &Request::new("oss:GetObject", "x")).is_allowed());
        assert!(!eval(&p, &Request::new("ram:ListRoles", "x")).is_allowed());
        assert!(eval(&p, &Request::new("ram:GetRole", "acs:ram:*:1:role/open")).is_allowed());
        assert!(!eval(&p, &Request::new("ram:GetRole", "acs:ram:*:1:role/secret")).is_allowed());
    }

    #[test]
    fn statement_without_action_or_resource_matches_nothing() {
        let p = [json!({"Version":"1","Statement":[{"Effect":"Allow","Action":"*"}]})];
        assert_eq!(eval(&p, &Request::new("a:b", "x")), Decision::ImplicitDeny);
    }

    fn cond(c: Value) -> [Value; 1] {
        [
            json!({"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":c}]}),
        ]
    }

    #[test]
    fn string_conditions_or_within_key_and_across_keys() {
        let p = cond(
            json!({"StringEquals":{"acs:Service":["imm.aliyuncs.com","oss.aliyuncs.com"]},
                            "StringLike":{"ram:Tag":"team-*"}}),
        );
        let base = Request::new("ram:PassRole", "r");
        assert!(!eval(&p, &base).is_allowed(), "missing keys");
        let r = base
            .clone()
            .with("acs:service", "oss.aliyuncs.com")
            .with("ram:Tag", "team-a");
        assert!(eval(&p, &r).is_allowed());
        let r2 = base
            .with("acs:Service", "oss.aliyuncs.com")
            .with("ram:Tag", "x");
        assert!(!eval(&p, &r2).is_allowed(), "second operator must hold too");
    }

    #[test]
    fn negated_and_ignore_case_operators() {
        let p = cond(json!({"StringNotEquals":{"acs:Service":"ecs.aliyuncs.com"}}));
        assert!(
            eval(&p, &Request::new("a:b", "r")).is_allowed(),
            "absent key"
        );
        assert!(
            eval(
                &p,
                &Request::new("a:b", "r").with("acs:Service", "imm.aliyuncs.com")
            )
            .is_allowed()
        );
        assert!(
            !eval(
                &p,
                &Request::new("a:b", "r").with("acs:Service", "ecs.aliyuncs.com")
            )
            .is_allowed()
        );
        let q = cond(json!({"StringEqualsIgnoreCase":{"k":"ABC"}}));
        assert!(eval(&q, &Request::new("a:b", "r").with("k", "abc")).is_allowed());
        let n = cond(json!({"StringNotLike":{"k":"a*"}}));
        assert!(!eval(&n, &Request::new("a:b", "r").with("k", "abc")).is_allowed());
        assert!(eval(&n, &Request::new("a:b", "r").with("k", "xbc")).is_allowed());
    }

    #[test]
    fn numeric_bool_date_ip_operators() {
        let r = Request::new("a:b", "r")
            .with("n", "5")
            .with("acs:SecureTransport", "true")
            .with("acs:CurrentTime", "2026-06-01T00:00:00Z")
            .with("acs:SourceIp", "10.1.2.3");
        let ok = |c: Value| eval(&cond(c), &r).is_allowed();
        assert!(ok(json!({"NumericLessThan":{"n":"6"}})));
        assert!(!ok(json!({"NumericLessThan":{"n":"5"}})));
        assert!(ok(json!({"NumericLessThanEquals":{"n":5}})));
        assert!(ok(json!({"NumericGreaterThanEquals":{"n":"5"}})));
        assert!(ok(json!({"NumericEquals":{"n":"5.0"}})));
        assert!(ok(json!({"NumericNotEquals":{"n":"4"}})));
        assert!(ok(json!({"Bool":{"acs:SecureTransport":"True"}})));
        assert!(!ok(json!({"Bool":{"acs:SecureTransport":"false"}})));
        assert!(ok(
            json!({"DateLessThan":{"acs:CurrentTime":"2027-01-01T00:00:00Z"}})
        ));
        assert!(ok(
            json!({"DateGreaterThan":{"acs:CurrentTime":"2026-01-01T00:00:00+08:00"}})
        ));
        assert!(!ok(
            json!({"DateGreaterThan":{"acs:CurrentTime":"2027-01-01T00:00:00Z"}})
        ));
        assert!(ok(
            json!({"IpAddress":{"acs:SourceIp":["192.168.0.0/16","10.0.0.0/8"]}})
        ));
        assert!(!ok(json!({"IpAddress":{"acs:SourceIp":"10.2.0.0/16"}})));
        assert!(ok(json!({"NotIpAddress":{"acs:SourceIp":"10.2.0.0/16"}})));
        assert!(ok(json!({"StringEqualsIfExists":{"missing":"x"}})));
        assert!(!ok(json!({"NoSuchOperator":{"n":"5"}})));
    }

    #[test]
    fn wildcard_matcher_edge_cases() {
        assert!(wildcard_match("*", "", false));
        assert!(wildcard_match("a*b*c", "aXXbYYc", false));
        assert!(!wildcard_match("a*b*c", "aXXbYY", false));
        assert!(wildcard_match("**", "abc", false));
        assert!(!wildcard_match("?", "", false));
        assert!(wildcard_match("智*", "智能", false));
        // A literal `*` in the text must not consume the pattern's wildcard.
        assert!(wildcard_match("*", "*:Describe*", true));
        assert!(wildcard_match("oss:*", "oss:Get*", true));
        assert!(!wildcard_match("oss:Get", "oss:Get*", true));
    }

    #[test]
    fn typed_documents_evaluate_the_same() {
        let d = PolicyDocument(allow(json!("imm:*"), json!("*")));
        assert!(evaluate_documents(&[&d], &Request::new("imm:CreateProject", "x")).is_allowed());
    }
}
