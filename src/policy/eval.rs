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
//!
//! Beyond one request:
//! - [`judge`] is for checkers that know the policies but not the whole context (lints,
//!   preflight): a refusal that an `Allow` statement's conditions alone cause is
//!   [`Verdict::Conditional`], not a definite refusal.
//! - [`evaluate_trust`] evaluates a trust policy (statements with `Principal`, no `Resource`).
//! - [`grants`] / [`uncovered`]: what a role grants, and which of it a would-be passer lacks
//!   (the rule for giving a project a service role; the emulator and preflight share it).

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
    evaluate_with(policies, request, false)
}

/// Like [`evaluate`], but every `Allow` statement's `Condition` block is taken to hold
/// (`Deny` statements keep theirs). What an offline checker uses to tell "refused whatever the
/// request context" from "refused because of a context it cannot see" (see [`judge`]).
pub fn evaluate_ignoring_allow_conditions(policies: &[&Value], request: &Request) -> Decision {
    evaluate_with(policies, request, true)
}

fn evaluate_with(policies: &[&Value], request: &Request, lenient: bool) -> Decision {
    let mut allowed = false;
    for policy in policies {
        for stmt in statements(policy) {
            let eff = effect(stmt);
            let skip_conditions = lenient && eff == Some(Effect::Allow);
            let matches = action_and_resource_match(stmt, request)
                && (skip_conditions || conditions_match(stmt.get("Condition"), request));
            if !matches {
                continue;
            }
            match eff {
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

/// An offline checker's answer: it knows the policies but only part of the request context
/// (a lint cannot know the source IP or the time of a future call).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Allowed with the context given.
    Allowed,
    /// Refused with the context given, but some `Allow` statement would grant it if its
    /// conditions held: the answer depends on context the checker does not have.
    Conditional,
    /// Refused whatever the context of the `Allow` statements (explicit or implicit deny).
    Refused(Decision),
}

impl Verdict {
    pub fn is_allowed(self) -> bool {
        self == Verdict::Allowed
    }
}

/// [`evaluate`], then, when refused, [`evaluate_ignoring_allow_conditions`] to tell a
/// definite refusal from one that depends on conditions.
pub fn judge(policies: &[&Value], request: &Request) -> Verdict {
    match evaluate(policies, request) {
        Decision::Allow => Verdict::Allowed,
        d => {
            if evaluate_ignoring_allow_conditions(policies, request) == Decision::Allow {
                Verdict::Conditional
            } else {
                Verdict::Refused(d)
            }
        }
    }
}

/// Who asks to assume a role, in the terms of a trust policy's `Principal`:
/// `kind` is `Service`, `RAM` or `Federated`; `id` e.g. `imm.aliyuncs.com`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Principal<'a> {
    pub kind: &'a str,
    pub id: &'a str,
}

/// Evaluate a trust policy (a role's `AssumeRolePolicyDocument`): may `principal` make
/// `request` (normally `sts:AssumeRole`)? Trust statements have no `Resource`; a statement
/// matches when its action part covers the request's action, its `Principal` names the
/// principal (`"*"`, or a `{kind: id | [ids]}` map whose kind is compared case-insensitively
/// and whose ids are wildcard patterns compared case-insensitively) and its conditions hold.
/// Explicit deny wins, as in [`evaluate`].
pub fn evaluate_trust(trust: &Value, principal: Principal<'_>, request: &Request) -> Decision {
    let mut allowed = false;
    for stmt in statements(trust) {
        let action_ok = if let Some(actions) = string_list(stmt.get("Action")) {
            actions
                .iter()
                .any(|p| wildcard_match(p, &request.action, true))
        } else if let Some(not) = string_list(stmt.get("NotAction")) {
            !not.iter().any(|p| wildcard_match(p, &request.action, true))
        } else {
            false
        };
        let principal_ok = match stmt.get("Principal") {
            Some(Value::String(p)) => p == "*",
            Some(Value::Object(m)) => m.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case(principal.kind)
                    && string_list(Some(v))
                        .unwrap_or_default()
                        .iter()
                        .any(|p| wildcard_match(p, principal.id, true))
            }),
            _ => false,
        };
        if !(action_ok && principal_ok && conditions_match(stmt.get("Condition"), request)) {
            continue;
        }
        match effect(stmt) {
            Some(Effect::Deny) => return Decision::ExplicitDeny,
            Some(Effect::Allow) => allowed = true,
            None => {}
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

/// One permission a policy grants: an action pattern on a resource pattern (as written, with
/// their wildcards).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Grant {
    pub action: String,
    pub resource: String,
}

/// Every permission the `Allow` statements of `policies` grant: each action pattern of
/// `Action` times each resource pattern of `Resource`, with `NotAction` counting as `*` and
/// `NotResource` as `*` (they grant everything but a few). Conditions are not looked at.
/// In document order, duplicates removed.
pub fn grants(policies: &[&Value]) -> Vec<Grant> {
    let mut out: Vec<Grant> = Vec::new();
    for policy in policies {
        for stmt in statements(policy) {
            if effect(stmt) != Some(Effect::Allow) {
                continue;
            }
            let actions = string_list(stmt.get("Action")).unwrap_or_else(|| vec!["*".into()]);
            let resources = string_list(stmt.get("Resource")).unwrap_or_else(|| vec!["*".into()]);
            for a in &actions {
                for r in &resources {
                    let g = Grant {
                        action: a.clone(),
                        resource: r.clone(),
                    };
                    if !out.contains(&g) {
                        out.push(g);
                    }
                }
            }
        }
    }
    out
}

/// A permission of a role that its would-be passer does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uncovered {
    pub grant: Grant,
    /// Why the holder's policies refuse it.
    pub decision: Decision,
}

/// "Does the holder hold every permission `role_policies` grant?" — the rule for whoever
/// gives a project a service role (DESIGN.md §1). Each [`Grant`] is checked by asking
/// `decide(action pattern, resource pattern)` with the patterns taken as literal request
/// strings, so a holder with `oss:*` covers a role's `oss:Get*`, but one with only
/// `oss:GetObject` does not (a literal `*` in the text is matched only by a `*` in the
/// holder's pattern). Role statement conditions are not compared. `decide` builds the
/// holder's request (context keys, session policy) and evaluates it.
///
/// Shared by the emulator's CreateProject / UpdateProject authorization and by `immctl`'s
/// preflight, so the two cannot drift. Returns every uncovered grant, in [`grants`] order.
pub fn uncovered(
    role_policies: &[&Value],
    mut decide: impl FnMut(&str, &str) -> Decision,
) -> Vec<Uncovered> {
    grants(role_policies)
        .into_iter()
        .filter_map(|grant| {
            let decision = decide(&grant.action, &grant.resource);
            (decision != Decision::Allow).then_some(Uncovered { grant, decision })
        })
        .collect()
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

fn action_and_resource_match(stmt: &Value, req: &Request) -> bool {
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
    if let Some(res) = string_list(stmt.get("Resource")) {
        res.iter().any(|p| wildcard_match(p, &req.resource, false))
    } else if let Some(not) = string_list(stmt.get("NotResource")) {
        !not.iter().any(|p| wildcard_match(p, &req.resource, false))
    } else {
        false
    }
}

/// Glob match with `*` (any run, possibly empty) and `?` (exactly one character).
pub fn wildcard_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    // ASCII (every action and nearly every ARN): bytes, no allocation. The lints and
    // preflight call this for every statement of every role a plan touches (BENCHMARKS.md).
    if pattern.is_ascii() && text.is_ascii() {
        let (p, t) = (pattern.as_bytes(), text.as_bytes());
        return if ignore_case {
            glob(p, t, b'*', b'?', |a, b| a.eq_ignore_ascii_case(b))
        } else {
            glob(p, t, b'*', b'?', |a, b| a == b)
        };
    }
    let (p, t): (Vec<char>, Vec<char>) = if ignore_case {
        (
            pattern.to_lowercase().chars().collect(),
            text.to_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    glob(&p, &t, '*', '?', |a, b| a == b)
}

/// Iterative matcher with single-star backtracking: O(len(p) * len(t)) worst case.
fn glob<T: Copy + PartialEq>(
    p: &[T],
    t: &[T],
    star_sym: T,
    one: T,
    eq: impl Fn(&T, &T) -> bool,
) -> bool {
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        // The star test comes first: a `*` in the pattern is always a wildcard, even when
        // the text holds a literal `*` (a role's `*:Describe*` checked against `*`).
        if pi < p.len() && p[pi] == star_sym {
            star = Some((pi, ti));
            pi += 1;
        } else if pi < p.len() && (p[pi] == one || eq(&p[pi], &t[ti])) {
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
    while pi < p.len() && p[pi] == star_sym {
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

/// Whether `op` is a condition operator this evaluator (and RAM) knows, with or without the
/// `IfExists` suffix. The manifest grammar refuses the others, since an unknown operator
/// would silently never match here.
pub fn is_known_operator(op: &str) -> bool {
    OpKind::parse(op.strip_suffix("IfExists").unwrap_or(op)).is_some()
}

/// The operator names [`is_known_operator`] accepts (without the `IfExists` forms), for
/// error messages.
pub const KNOWN_OPERATORS: &[&str] = &[
    "StringEquals",
    "StringNotEquals",
    "StringEqualsIgnoreCase",
    "StringNotEqualsIgnoreCase",
    "StringLike",
    "StringNotLike",
    "NumericEquals",
    "NumericNotEquals",
    "NumericLessThan",
    "NumericLessThanEquals",
    "NumericGreaterThan",
    "NumericGreaterThanEquals",
    "DateEquals",
    "DateNotEquals",
    "DateLessThan",
    "DateLessThanEquals",
    "DateGreaterThan",
    "DateGreaterThanEquals",
    "Bool",
    "IpAddress",
    "NotIpAddress",
];

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
    #[test]
    fn the_known_operator_list_is_exactly_what_the_evaluator_parses() {
        for op in KNOWN_OPERATORS {
            assert!(is_known_operator(op), "{op}");
            assert!(is_known_operator(&format!("{op}IfExists")), "{op}IfExists");
        }
        for op in [
            "StringEqual",
            "stringequals",
            "IfExists",
            "ForAnyValue:StringEquals",
            "",
        ] {
            assert!(!is_known_operator(op), "{op}");
        }
    }

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
        // Case: ignored for actions only, on the ASCII path and the Unicode one alike.
        assert!(wildcard_match("OSS:get*", "oss:GetObject", true));
        assert!(!wildcard_match("OSS:get*", "oss:GetObject", false));
        assert!(wildcard_match("智:GET*", "智:getX", true));
        assert!(!wildcard_match("智:GET*", "智:getX", false));
        assert!(wildcard_match("a?c", "abc", false) && !wildcard_match("a?c", "ac", false));
    }

    proptest::proptest! {
        /// The allocation-free ASCII path agrees with the general (char, lowercase) one.
        #[test]
        fn the_ascii_matcher_agrees_with_the_general_one(
            p in "[aAbB*?:]{0,8}",
            t in "[aAbB*?:]{0,8}",
            ignore_case in proptest::bool::ANY,
        ) {
            let general = |p: &str, t: &str| {
                let (p, t): (Vec<char>, Vec<char>) = if ignore_case {
                    (p.to_lowercase().chars().collect(), t.to_lowercase().chars().collect())
                } else {
                    (p.chars().collect(), t.chars().collect())
                };
                glob(&p, &t, '*', '?', |a, b| a == b)
            };
            proptest::prop_assert_eq!(wildcard_match(&p, &t, ignore_case), general(&p, &t));
        }
    }

    #[test]
    fn typed_documents_evaluate_the_same() {
        let d = PolicyDocument(allow(json!("imm:*"), json!("*")));
        assert!(evaluate_documents(&[&d], &Request::new("imm:CreateProject", "x")).is_allowed());
    }

    #[test]
    fn judge_tells_a_definite_refusal_from_a_conditional_one() {
        let p = [json!({"Version":"1","Statement":[
            {"Effect":"Allow","Action":"oss:*","Resource":"*",
             "Condition":{"IpAddress":{"acs:SourceIp":"10.0.0.0/8"}}},
            {"Effect":"Deny","Action":"oss:DeleteBucket","Resource":"*"}]})];
        let refs: Vec<&Value> = p.iter().collect();
        assert_eq!(
            judge(
                &refs,
                &Request::new("oss:GetObject", "x").with("acs:SourceIp", "10.1.1.1")
            ),
            Verdict::Allowed
        );
        assert_eq!(
            judge(&refs, &Request::new("oss:GetObject", "x")),
            Verdict::Conditional
        );
        assert_eq!(
            judge(&refs, &Request::new("oss:DeleteBucket", "x")),
            Verdict::Refused(Decision::ExplicitDeny)
        );
        assert_eq!(
            judge(&refs, &Request::new("mns:SendMessage", "x")),
            Verdict::Refused(Decision::ImplicitDeny)
        );
    }

    #[test]
    fn trust_policy_evaluation_matches_principal_action_and_conditions() {
        let imm = Principal {
            kind: "Service",
            id: "imm.aliyuncs.com",
        };
        let assume = Request::new("sts:AssumeRole", "");
        let t = json!({"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole",
            "Principal":{"Service":["imm.aliyuncs.com"]}}]});
        assert_eq!(evaluate_trust(&t, imm, &assume), Decision::Allow);
        let ecs = Principal {
            kind: "Service",
            id: "ecs.aliyuncs.com",
        };
        assert_eq!(evaluate_trust(&t, ecs, &assume), Decision::ImplicitDeny);
        // A RAM principal with the same id is another kind.
        let ram = Principal {
            kind: "RAM",
            id: "imm.aliyuncs.com",
        };
        assert_eq!(evaluate_trust(&t, ram, &assume), Decision::ImplicitDeny);
        // Case rules and wildcards on the service name; the action must be AssumeRole.
        let w = json!({"Version":"1","Statement":{"Effect":"Allow","Action":"sts:*",
            "Principal":{"service":"*.ALIYUNCS.com"}}});
        assert_eq!(evaluate_trust(&w, imm, &assume), Decision::Allow);
        let other = json!({"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:GetCallerIdentity",
            "Principal":{"Service":"imm.aliyuncs.com"}}]});
        assert_eq!(evaluate_trust(&other, imm, &assume), Decision::ImplicitDeny);
        // Deny wins; a condition the request does not meet makes the Allow void.
        let d = json!({"Version":"1","Statement":[
            {"Effect":"Allow","Action":"sts:AssumeRole","Principal":"*"},
            {"Effect":"Deny","Action":"sts:AssumeRole","Principal":{"Service":"imm.aliyuncs.com"}}]});
        assert_eq!(evaluate_trust(&d, imm, &assume), Decision::ExplicitDeny);
        let c = json!({"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole",
            "Principal":{"Service":"imm.aliyuncs.com"},
            "Condition":{"StringEquals":{"sts:ExternalId":"abc"}}}]});
        assert_eq!(evaluate_trust(&c, imm, &assume), Decision::ImplicitDeny);
        assert_eq!(
            evaluate_trust(&c, imm, &assume.clone().with("sts:ExternalId", "abc")),
            Decision::Allow
        );
    }

    #[test]
    fn grants_and_uncovered_take_patterns_as_literal_requests() {
        let role = json!({"Version":"1","Statement":[
            {"Effect":"Allow","Action":["oss:Get*","oss:PutObject"],"Resource":"acs:oss:*:*:media/*"},
            {"Effect":"Allow","NotAction":"ram:*","Resource":"x"},
            {"Effect":"Deny","Action":"oss:DeleteObject","Resource":"*"}]});
        let g = grants(&[&role]);
        let pairs: Vec<(&str, &str)> = g
            .iter()
            .map(|g| (g.action.as_str(), g.resource.as_str()))
            .collect();
        assert_eq!(
            pairs,
            [
                ("oss:Get*", "acs:oss:*:*:media/*"),
                ("oss:PutObject", "acs:oss:*:*:media/*"),
                ("*", "x"),
            ]
        );
        let holder = [json!({"Version":"1","Statement":[
            {"Effect":"Allow","Action":"oss:*","Resource":"*"}]})];
        let refs: Vec<&Value> = holder.iter().collect();
        let missing = uncovered(&[&role], |a, r| evaluate(&refs, &Request::new(a, r)));
        assert_eq!(
            missing,
            [Uncovered {
                grant: Grant {
                    action: "*".into(),
                    resource: "x".into()
                },
                decision: Decision::ImplicitDeny
            }]
        );
        let narrow = [json!({"Version":"1","Statement":[
            {"Effect":"Allow","Action":["oss:GetObject","oss:PutObject","*"],"Resource":"*"}]})];
        let refs: Vec<&Value> = narrow.iter().collect();
        // `*` covers everything, including the literal `oss:Get*`.
        assert!(uncovered(&[&role], |a, r| evaluate(&refs, &Request::new(a, r))).is_empty());
        let no_star = [json!({"Version":"1","Statement":[
            {"Effect":"Allow","Action":["oss:GetObject","oss:PutObject"],"Resource":"*"}]})];
        let refs: Vec<&Value> = no_star.iter().collect();
        let missing: Vec<String> = uncovered(&[&role], |a, r| evaluate(&refs, &Request::new(a, r)))
            .into_iter()
            .map(|u| u.grant.action)
            .collect();
        assert_eq!(missing, ["oss:Get*", "*"]);
    }
}
