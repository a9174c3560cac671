//! `lint_plan`: what a plan would do to the service role of a project that exists live.
//!
//! The plan is simulated on a copy of the live state ([`crate::plan::simulate`]); for every
//! live project the plan keeps, its service role before (live) and after (simulated) are
//! compared: deleted (`IMM011`), no longer assumable by IMM (`IMM013`), or missing a minimum
//! permission it had before (`IMM012`). All three are errors: apply refuses the plan unless
//! forced. Only losses count, so a plan that leaves an already-incomplete role as it is, or
//! detaches a policy whose permissions another one still grants, is not an error here.
//!
//! Pure: the simulation is `plan::simulate` on a copy; no I/O.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::checks::imm_may_assume;
use super::view::{Need, RoleLookup, RoleView, Sources, describe, minimum};
use super::{codes, finding, sort_dedup};
use crate::live::Live;
use crate::manifest::{Address, Desired, IMM_DEFAULT_ROLE, PolicyType, ProjectKey};
use crate::plan::{Finding, Op, Plan, Severity, simulate};
use crate::policy::eval::{Decision, Verdict, judge, statements, string_list};

/// Lints about what `plan` would do (see the module docs). Deterministic order.
pub fn lint_plan(plan: &Plan, desired: &Desired, live: &Live) -> Vec<Finding> {
    let after = simulate(plan, live);
    let before_src = Sources {
        desired: None,
        live: Some(live),
    };
    let after_src = Sources {
        desired: None,
        live: Some(&after),
    };
    let mut out = Vec::new();
    let mut deleted_in_use: BTreeMap<&str, Vec<&ProjectKey>> = BTreeMap::new();
    for (key, lp) in &live.projects {
        let Some(ap) = after.projects.get(key) else {
            continue; // the plan deletes the project
        };
        let role = ap.service_role.as_str();
        if role == IMM_DEFAULT_ROLE {
            continue;
        }
        if deletes_role(plan, role) {
            deleted_in_use.entry(role).or_default().push(key);
            continue;
        }
        let (RoleLookup::Live(b) | RoleLookup::Declared(b)) = before_src.role(&lp.service_role)
        else {
            continue; // nothing known before: nothing to compare
        };
        let (RoleLookup::Live(a) | RoleLookup::Declared(a)) = after_src.role(role) else {
            continue;
        };
        let address = Address::project(key);
        let by = culprits(plan, live, key, &lp.service_role, role);
        if imm_may_assume(&b) == Decision::Allow && imm_may_assume(&a) != Decision::Allow {
            out.push(finding(
                codes::PLAN_BREAKS_TRUST,
                Severity::Error,
                address.clone(),
                format!(
                    "this plan leaves service role \"{role}\" with a trust policy that does not let imm.aliyuncs.com assume it (changed by {by}); IMM calls of this project would fail"
                ),
                "keep imm.aliyuncs.com as a trusted Service principal, or pass --force if this is intended",
            ));
        }
        let mut buckets: BTreeSet<String> = buckets_named(&b.known_docs());
        if let Some(dp) = desired.projects.get(key) {
            buckets.extend(dp.buckets.iter().cloned());
        }
        let needs = minimum(&buckets);
        let account = before_src.account();
        let lost: Vec<Need> = needs
            .into_iter()
            .filter(|n| {
                holds(&b, n, &lp.service_role, account)
                    && matches!(
                        judge(&a.known_docs(), &n.request(role, account)),
                        Verdict::Refused(_)
                    )
            })
            .collect();
        if !lost.is_empty() {
            out.push(finding(
                codes::PLAN_DROPS_MINIMUM,
                Severity::Error,
                address,
                format!(
                    "this plan takes part of the IMM minimum away from service role \"{role}\" (by {by}): {}; IMM calls of this project that need them would fail",
                    describe(&lost)
                ),
                "keep those permissions (re-attach the policy or restore its document), move the project to another role first, or pass --force if this is intended",
            ));
        }
    }
    out.extend(unready_roles(plan, desired, live, &after));
    for (role, keys) in deleted_in_use {
        let projects: Vec<String> = keys
            .iter()
            .map(|k| Address::project(k).to_string())
            .collect();
        out.push(finding(
            codes::PLAN_DELETES_ROLE_IN_USE,
            Severity::Error,
            Address::role(role),
            format!(
                "this plan deletes the role, which is the service role of {}; IMM calls of those projects would fail",
                projects.join(", ")
            ),
            "move those projects to another role first (or declare the role again), or pass --force if this is intended",
        ));
    }
    sort_dedup(&mut out);
    out
}

/// `IMM014`: the plan points a project at a declared service role (creates the project, or
/// changes its `ServiceRole`), but does not bring that role in line with its manifest, so
/// after apply the role lacks part of the minimum the manifest gives it, no longer lets IMM
/// assume it, or does not exist. This happens when the role exists unowned and is not
/// adopted, belongs to another owner, or is left out by `--target`: the project change is
/// planned, the role change is not.
fn unready_roles(plan: &Plan, desired: &Desired, live: &Live, after: &Live) -> Vec<Finding> {
    let declared_src = Sources {
        desired: Some(desired),
        live: Some(live),
    };
    let after_src = Sources {
        desired: None,
        live: Some(after),
    };
    let mut out = Vec::new();
    for c in &plan.changes {
        for op in &c.ops {
            let (key, role) = match op {
                Op::CreateProject {
                    key, service_role, ..
                } => (key, service_role.as_str()),
                Op::UpdateProject {
                    key,
                    service_role: Some(r),
                    ..
                } => (key, r.as_str()),
                _ => continue,
            };
            if role == IMM_DEFAULT_ROLE {
                continue;
            }
            let RoleLookup::Declared(d) = declared_src.role(role) else {
                continue; // not declared: lint_desired's IMM002 / IMM005 speak about it
            };
            let address = Address::project(key);
            let a = match after_src.role(role) {
                RoleLookup::Live(a) => a,
                RoleLookup::Absent | RoleLookup::NotRead | RoleLookup::Offline => {
                    out.push(finding(
                        codes::PLAN_SETS_UNREADY_ROLE,
                        Severity::Error,
                        address,
                        format!(
                            "this plan sets service role \"{role}\" on the project, but does not create the role (left out by --target?), so IMM calls of this project would fail"
                        ),
                        "include the role in --target, or pass --force if this is intended",
                    ));
                    continue;
                }
                RoleLookup::Declared(_) => continue, // `desired: None` never answers Declared
            };
            let mut buckets: BTreeSet<String> = buckets_named(&d.known_docs());
            if let Some(dp) = desired.projects.get(key) {
                buckets.extend(dp.buckets.iter().cloned());
            }
            let account = declared_src.account();
            let short: Vec<Need> = minimum(&buckets)
                .into_iter()
                .filter(|n| {
                    holds(&d, n, role, account)
                        && matches!(
                            judge(&a.known_docs(), &n.request(role, account)),
                            Verdict::Refused(_)
                        )
                })
                .collect();
            let trust_lost =
                imm_may_assume(&d) == Decision::Allow && imm_may_assume(&a) != Decision::Allow;
            if short.is_empty() && !trust_lost {
                continue;
            }
            let mut what = Vec::new();
            if trust_lost {
                what.push("a trust policy that lets imm.aliyuncs.com assume it".to_string());
            }
            if !short.is_empty() {
                what.push(describe(&short));
            }
            out.push(finding(
                codes::PLAN_SETS_UNREADY_ROLE,
                Severity::Error,
                address,
                format!(
                    "this plan sets service role \"{role}\" on the project, but leaves the role as it is live (not adopted, another owner's, or outside --target), so after apply it lacks what its manifest gives it: {}; IMM calls of this project would fail",
                    what.join("; ")
                ),
                "adopt the role (--adopt or spec.adopt: true) so the same plan brings it in line, or pass --force if this is intended",
            ));
        }
    }
    out
}

fn holds(v: &RoleView<'_>, n: &Need, role: &str, account: &str) -> bool {
    judge(&v.known_docs(), &n.request(role, account)) == Verdict::Allowed
}

fn deletes_role(plan: &Plan, role: &str) -> bool {
    plan.changes.iter().any(|c| {
        c.ops
            .iter()
            .any(|o| matches!(o, Op::DeleteRole { name } if name == role))
    })
}

/// The changes of the plan that can change what the project's role grants or trusts: the
/// project's own change (a new service role), the role's change (trust policy), its
/// attachments, and the policies attached to it (new document, deletion).
fn culprits(plan: &Plan, live: &Live, key: &ProjectKey, before: &str, after: &str) -> String {
    let project = Address::project(key);
    let role_addr = Address::role(after);
    let attached: BTreeSet<String> = [before, after]
        .iter()
        .filter_map(|r| live.roles.get(*r))
        .flat_map(|r| r.attachments.iter())
        .filter(|p| p.policy_type == PolicyType::Custom)
        .map(|p| p.name.clone())
        .collect();
    let attachment_prefix = format!("ram_role_policy.{after}/");
    let mut who: Vec<String> = plan
        .changes
        .iter()
        .filter(|c| {
            let a = c.address.as_str();
            (c.address == project && before != after)
                || c.address == role_addr
                || a.starts_with(&attachment_prefix)
                || a.strip_prefix("ram_policy.")
                    .is_some_and(|p| attached.contains(p))
        })
        .map(|c| format!("{} {}", c.action, c.address))
        .collect();
    who.dedup();
    if who.is_empty() {
        "this plan".to_string()
    } else {
        who.join(", ")
    }
}

/// Bucket names written literally in the OSS resources of the documents' `Allow` statements
/// (`acs:oss:*:*:<bucket>` or `.../<bucket>/...`); patterns with wildcards in the bucket part
/// are skipped.
fn buckets_named(docs: &[&Value]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for doc in docs {
        for stmt in statements(doc) {
            for r in string_list(stmt.get("Resource")).unwrap_or_default() {
                let Some(rest) = r.strip_prefix("acs:oss:") else {
                    continue;
                };
                // <region>:<account>:<bucket>[/<object>]
                let Some(path) = rest.splitn(3, ':').nth(2) else {
                    continue;
                };
                let bucket = path.split('/').next().unwrap_or("");
                if !bucket.is_empty() && !bucket.contains(['*', '?']) {
                    out.insert(bucket.to_string());
                }
            }
        }
    }
    out
}
