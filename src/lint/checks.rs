//! The lints over the declared state (see the module docs of [`super`] for the table):
//! the service role of each declared project, and the policies of every service role.
//!
//! Pure: no I/O; every verdict comes from `policy::eval`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value};

use super::view::{
    Coverage, Form, Need, RoleLookup, RoleView, Sources, allows, coverage, describe, minimum,
    pass_role_resource,
};
use super::{codes, finding, quoted_list};
use crate::live::Live;
use crate::manifest::{Address, Desired, DesiredProject, IMM_DEFAULT_ROLE, PolicyRef, PolicyType};
use crate::plan::{Finding, Severity};
use crate::policy::eval::{
    Decision, Principal, Request, evaluate, evaluate_trust, statements, string_list, wildcard_match,
};
use crate::policy::imm::{IMM_SERVICE_PRINCIPAL, PASS_ROLE_CONDITION_KEY};

const SUGGEST_IMM_SERVICE_ROLE: &str = "declare an ImmServiceRole scoped to the project's buckets (or a custom least-privilege role) and set spec.serviceRole";

pub(super) fn lint_desired(desired: &Desired, live: Option<&Live>) -> Vec<Finding> {
    let src = Sources {
        desired: Some(desired),
        live,
    };
    let mut out = Vec::new();
    // Service role name -> the declared projects that use it.
    let mut users: BTreeMap<&str, Vec<&DesiredProject>> = BTreeMap::new();
    for p in desired.projects.values() {
        if p.service_role == IMM_DEFAULT_ROLE {
            default_role(p, live, &mut out);
        } else {
            users.entry(&p.service_role).or_default().push(p);
        }
    }
    // Roles whose policies get the over-broad / PassRole checks: every project's resolved
    // service role, plus every declared role that IMM may assume (e.g. not yet used).
    let mut service_roles: BTreeMap<String, RoleView<'_>> = BTreeMap::new();
    for (role, projects) in &users {
        match src.role(role) {
            RoleLookup::Declared(v) | RoleLookup::Live(v) => {
                trust(&v, projects, &mut out);
                for p in projects {
                    permissions(&src, &v, p, &mut out);
                }
                service_roles.insert(v.name.clone(), v);
            }
            RoleLookup::NotRead => {
                for p in projects {
                    out.push(finding(
                        codes::CANNOT_CHECK,
                        Severity::Info,
                        Address::project(&p.key()),
                        format!(
                            "service role \"{role}\" exists but is neither declared nor owned, so immctl did not read it; its trust policy and permissions are not checked"
                        ),
                        "declare the role (kind: Role or ImmServiceRole) to have it checked",
                    ));
                }
            }
            RoleLookup::Absent => {
                for p in projects {
                    out.push(finding(
                        codes::UNKNOWN_ROLE,
                        Severity::Error,
                        Address::project(&p.key()),
                        format!(
                            "service role \"{role}\" is neither declared nor present in the account"
                        ),
                        "declare the role (kind: ImmServiceRole or Role) or fix spec.serviceRole",
                    ));
                }
            }
            RoleLookup::Offline => {
                for p in projects {
                    out.push(finding(
                        codes::CANNOT_CHECK,
                        Severity::Info,
                        Address::project(&p.key()),
                        format!(
                            "service role \"{role}\" is not declared in these manifests, so its trust policy and permissions can't be checked offline"
                        ),
                        "declare the role (kind: ImmServiceRole or Role), or run `immctl reconcile --dry-run` to check it against the account",
                    ));
                }
            }
        }
    }
    for name in desired.roles.keys() {
        if service_roles.contains_key(name) {
            continue;
        }
        if let RoleLookup::Declared(v) = src.role(name)
            && imm_may_assume(&v) == Decision::Allow
        {
            service_roles.insert(name.clone(), v);
        }
    }
    grant_shape(&src, &service_roles, &mut out);
    out
}

fn default_role(p: &DesiredProject, live: Option<&Live>, out: &mut Vec<Finding>) {
    let address = Address::project(&p.key());
    out.push(finding(
        codes::DEFAULT_ROLE,
        Severity::Warning,
        address.clone(),
        format!("uses {IMM_DEFAULT_ROLE}, which can read every OSS bucket in the account"),
        SUGGEST_IMM_SERVICE_ROLE,
    ));
    if let Some(live) = live
        && !live.roles.contains_key(IMM_DEFAULT_ROLE)
        && !live.role_names.contains(IMM_DEFAULT_ROLE)
    {
        out.push(finding(
            codes::DEFAULT_ROLE_MISSING,
            Severity::Error,
            address,
            format!("{IMM_DEFAULT_ROLE} does not exist in this account"),
            "authorize it once in the IMM console (Cloud Resource Access Authorization), or use a custom service role",
        ));
    }
}

/// May `imm.aliyuncs.com` assume the role?
pub(super) fn imm_may_assume(v: &RoleView<'_>) -> Decision {
    evaluate_trust(
        &v.trust.0,
        Principal {
            kind: "Service",
            id: IMM_SERVICE_PRINCIPAL,
        },
        &Request::new("sts:AssumeRole", ""),
    )
}

fn project_list(projects: &[&DesiredProject]) -> String {
    projects
        .iter()
        .map(|p| Address::project(&p.key()).to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

fn trust(v: &RoleView<'_>, projects: &[&DesiredProject], out: &mut Vec<Finding>) {
    let d = imm_may_assume(v);
    if d == Decision::Allow {
        return;
    }
    let how = if d == Decision::ExplicitDeny {
        "denies"
    } else {
        "does not allow"
    };
    out.push(finding(
        codes::UNTRUSTED,
        Severity::Error,
        Address::role(&v.name),
        format!(
            "is the service role of {}, but its trust policy {how} Service {IMM_SERVICE_PRINCIPAL} to sts:AssumeRole, so IMM cannot use it",
            project_list(projects)
        ),
        "allow {\"Effect\": \"Allow\", \"Action\": \"sts:AssumeRole\", \"Principal\": {\"Service\": [\"imm.aliyuncs.com\"]}} in the trust policy (kind: ImmServiceRole does)",
    ));
}

fn policy_address(role: &str, p: &PolicyRef) -> Address {
    match p.policy_type {
        PolicyType::Custom => Address::policy(&p.name),
        PolicyType::System => Address::attachment(role, p),
    }
}

fn permissions(src: &Sources<'_>, v: &RoleView<'_>, p: &DesiredProject, out: &mut Vec<Finding>) {
    let address = Address::project(&p.key());
    if p.buckets.is_empty() {
        out.push(finding(
            codes::NO_BUCKETS,
            Severity::Info,
            address.clone(),
            format!(
                "declares no spec.buckets, so the OSS access of service role \"{}\" is not checked (MNS and PassRole are)",
                v.name
            ),
            "list the OSS buckets the project works on in spec.buckets",
        ));
    }
    let docs = v.known_docs();
    let needs = minimum(&p.buckets);
    let account = src.account();
    let Coverage {
        missing,
        conditional,
    } = coverage(&docs, &needs, &v.name, account);
    let unknown = v.unknown();
    if !missing.is_empty() {
        let unless = if unknown.is_empty() {
            String::new()
        } else {
            let names: Vec<&str> = unknown.iter().map(|p| p.name.as_str()).collect();
            format!(
                " (unless {} grants them: immctl cannot read it)",
                quoted_list(&names)
            )
        };
        out.push(finding(
            codes::BELOW_MINIMUM,
            Severity::Warning,
            address.clone(),
            format!(
                "service role \"{}\" lacks part of the IMM minimum{unless}: {}",
                v.name,
                describe(&missing)
            ),
            "grant exactly these on the resources shown (kind: ImmServiceRole generates the minimum), or IMM calls that need them fail",
        ));
        one_form(src, v, &missing, out);
    }
    if !conditional.is_empty() {
        out.push(finding(
            codes::CANNOT_CHECK,
            Severity::Info,
            address.clone(),
            format!(
                "service role \"{}\" grants part of the IMM minimum only under conditions immctl cannot evaluate offline: {}",
                v.name,
                describe(&conditional)
            ),
            "make sure IMM's requests meet those conditions, or grant the minimum without them",
        ));
    }
    for u in unknown {
        out.push(finding(
            codes::CANNOT_CHECK,
            Severity::Info,
            address.clone(),
            format!(
                "service role \"{}\" is checked against the IMM minimum without one of its policies: {}",
                v.name,
                src.why_unknown(u)
            ),
            "declare the policy, or check it by hand against the IMM minimum",
        ));
    }
}

/// `IMM006`: for minimum OSS actions the role lacks on one form, name the attached policies
/// that grant them on the other form only (the guide's `<bucket>/*`-only example).
fn one_form(src: &Sources<'_>, v: &RoleView<'_>, missing: &[Need], out: &mut Vec<Finding>) {
    let account = src.account();
    // (policy, bucket, form lacking) -> actions granted on the other form instead.
    let mut hits: BTreeMap<(Address, String, Form), Vec<&'static str>> = BTreeMap::new();
    for n in missing {
        let Need::Oss {
            bucket,
            form,
            action,
        } = n
        else {
            continue;
        };
        let swapped = Need::Oss {
            bucket: bucket.clone(),
            form: form.other(),
            action,
        };
        for a in &v.attached {
            let Some(doc) = a.doc else { continue };
            if allows(&[&doc.0], &swapped, &v.name, account) {
                hits.entry((policy_address(&v.name, &a.policy), bucket.clone(), *form))
                    .or_default()
                    .push(action);
            }
        }
    }
    for ((address, bucket, lacking), actions) in hits {
        let granted_on = lacking.other().resource(&bucket);
        let checked_on = match lacking {
            Form::Bucket => lacking.resource(&bucket),
            Form::Object => format!("acs:oss:*:*:{bucket}/<object>"),
        };
        out.push(finding(
            codes::ONE_FORM,
            Severity::Warning,
            address,
            format!(
                "grants {} on {granted_on} only; OSS checks {}-level actions against {checked_on}, so service role \"{}\" cannot use them on bucket {bucket}",
                actions.join(", "),
                lacking.word(),
                v.name
            ),
            &format!(
                "add \"{}\" to the Resource of that statement (kind: ImmServiceRole grants each action on the form it needs)",
                lacking.resource(&bucket)
            ),
        ));
    }
}

/// Actions that stand for "some OSS action": a statement that covers any of them grants OSS.
const OSS_PROBES: &[&str] = &[
    "oss:*",
    "oss:Get*",
    "oss:List*",
    "oss:GetObject",
    "oss:PutObject",
    "oss:ListObjects",
    "oss:GetBucketInfo",
    "oss:PutBucketLifecycle",
    "oss:DeleteObject",
];

/// Resources that stand for "every bucket" / "every object of every bucket".
const EVERY_BUCKET: &[&str] = &["acs:oss:*:*:*", "acs:oss:*:*:*/*"];

fn covers_action(stmt: &Value, text: &str) -> bool {
    if let Some(actions) = string_list(stmt.get("Action")) {
        actions.iter().any(|p| wildcard_match(p, text, true))
    } else if let Some(not) = string_list(stmt.get("NotAction")) {
        !not.iter().any(|p| wildcard_match(p, text, true))
    } else {
        false
    }
}

/// The pattern that covers `text` (for the message), or `NotResource` when that does.
fn covering_resource(stmt: &Value, text: &str) -> Option<String> {
    if let Some(res) = string_list(stmt.get("Resource")) {
        res.into_iter().find(|p| wildcard_match(p, text, false))
    } else if let Some(not) = string_list(stmt.get("NotResource")) {
        (!not.iter().any(|p| wildcard_match(p, text, false))).then(|| "NotResource".to_string())
    } else {
        None
    }
}

fn is_allow(stmt: &Value) -> bool {
    stmt.get("Effect")
        .and_then(Value::as_str)
        .is_some_and(|e| e.eq_ignore_ascii_case("allow"))
}

/// What is over-broad in one document (conditions ignored: a condition narrows who may use
/// a grant, not what it covers).
fn over_broad(doc: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for stmt in statements(doc) {
        if !is_allow(stmt) {
            continue;
        }
        let action_text = if stmt.get("Action").is_some() {
            "Action"
        } else {
            "NotAction"
        };
        if covers_action(stmt, "*") {
            out.push(format!(
                "{action_text} grants every action of every service"
            ));
        } else if covers_action(stmt, "oss:*") {
            out.push(format!("{action_text} grants every OSS action (oss:*)"));
        }
        if OSS_PROBES.iter().any(|a| covers_action(stmt, a))
            && let Some(r) = EVERY_BUCKET
                .iter()
                .find_map(|text| covering_resource(stmt, text))
        {
            let r = if r == "NotResource" {
                "NotResource".to_string()
            } else {
                format!("Resource \"{r}\"")
            };
            out.push(format!("{r} grants OSS actions on every bucket"));
        }
    }
    out.dedup();
    out
}

/// Services other than IMM that a PassRole grant must not reach: no service at all, a real
/// other one, and a made-up one (catches `StringLike *` and negated operators).
const OTHER_SERVICES: &[Option<&str>] =
    &[None, Some("ecs.aliyuncs.com"), Some("immctl-probe.invalid")];

/// Does the document let a role pass roles to a service other than IMM? Each `Allow`
/// statement keeps only its `acs:Service` conditions (other conditions narrow who may call,
/// not where the role goes) and its resource becomes `*`; `Deny` statements stay as written.
fn pass_role_unconditioned(doc: &Value) -> bool {
    let mut stmts = Vec::new();
    for stmt in statements(doc) {
        let mut s = stmt.clone();
        if is_allow(stmt)
            && let Value::Object(m) = &mut s
        {
            m.remove("NotResource");
            m.insert("Resource".into(), Value::String("*".into()));
            if let Some(Value::Object(ops)) = m.remove("Condition") {
                let mut kept = Map::new();
                for (op, keys) in ops {
                    if let Value::Object(keys) = keys {
                        let k: Map<String, Value> = keys
                            .into_iter()
                            .filter(|(k, _)| k.eq_ignore_ascii_case(PASS_ROLE_CONDITION_KEY))
                            .collect();
                        if !k.is_empty() {
                            kept.insert(op, Value::Object(k));
                        }
                    }
                }
                if !kept.is_empty() {
                    m.insert("Condition".into(), Value::Object(kept));
                }
            }
        }
        stmts.push(s);
    }
    let filtered = serde_json::json!({"Version": "1", "Statement": stmts});
    OTHER_SERVICES.iter().any(|svc| {
        let mut req = Request::new("ram:PassRole", pass_role_resource("any", "*"));
        if let Some(s) = svc {
            req = req.with(PASS_ROLE_CONDITION_KEY, *s);
        }
        evaluate(&[&filtered], &req) == Decision::Allow
    })
}

/// `IMM007` and `IMM008` over every policy attached to a service role. A custom policy
/// attached to several service roles gets one finding naming them all.
fn grant_shape(src: &Sources<'_>, roles: &BTreeMap<String, RoleView<'_>>, out: &mut Vec<Finding>) {
    // address -> (problems, roles, pass_role)
    let mut by_policy: BTreeMap<Address, (Vec<String>, BTreeSet<String>, bool)> = BTreeMap::new();
    let mut unknown: BTreeMap<Address, (String, BTreeSet<String>)> = BTreeMap::new();
    for v in roles.values() {
        for a in &v.attached {
            let address = policy_address(&v.name, &a.policy);
            let Some(doc) = a.doc else {
                let e = unknown
                    .entry(address)
                    .or_insert_with(|| (src.why_unknown(&a.policy), BTreeSet::new()));
                e.1.insert(v.name.clone());
                continue;
            };
            let problems = over_broad(&doc.0);
            let pass = pass_role_unconditioned(&doc.0);
            if problems.is_empty() && !pass {
                continue;
            }
            let e = by_policy
                .entry(address)
                .or_insert_with(|| (problems, BTreeSet::new(), pass));
            e.1.insert(v.name.clone());
        }
    }
    for (address, (problems, roles, pass)) in by_policy {
        let roles: Vec<&String> = roles.iter().collect();
        let of = format!("service role {}", quoted_list(&roles));
        if !problems.is_empty() {
            out.push(finding(
                codes::OVER_BROAD,
                Severity::Warning,
                address.clone(),
                format!("over-broad grant in {of}: {}", problems.join("; ")),
                "grant only the IMM minimum on the project's buckets (kind: ImmServiceRole generates it)",
            ));
        }
        if pass {
            out.push(finding(
                codes::PASS_ROLE_UNCONDITIONED,
                Severity::Warning,
                address,
                format!(
                    "lets {of} pass roles to services other than IMM: ram:PassRole is granted without an {PASS_ROLE_CONDITION_KEY} condition"
                ),
                "add \"Condition\": {\"StringEquals\": {\"acs:Service\": \"imm.aliyuncs.com\"}} to the ram:PassRole statement",
            ));
        }
    }
    // Unknown documents of roles already reported per project are said there; here only
    // roles no declared project uses (declared roles IMM may assume).
    for (address, (why, roles)) in unknown {
        let users_report_it = roles.iter().all(|r| {
            src.desired
                .is_some_and(|d| d.projects.values().any(|p| &p.service_role == r))
        });
        if users_report_it {
            continue;
        }
        let roles: Vec<&String> = roles.iter().collect();
        out.push(finding(
            codes::CANNOT_CHECK,
            Severity::Info,
            address,
            format!(
                "attached to service role {}, but not checked for over-broad grants: {why}",
                quoted_list(&roles)
            ),
            "declare the policy, or review its document by hand",
        ));
    }
}
