//! `check(&Plan)`: invariants every plan must hold. Tests run it on every plan they build;
//! a violation is a planner bug, never a user error.
//!
//! - no address appears twice, and every change has at least one op;
//! - every `depends_on` is earlier in the order (or not in the plan);
//! - children are deleted before parents (detaches before `DeleteRole` / `DeletePolicy`,
//!   projects leaving a role before `DeleteRole`), parents created before children (role and
//!   policy creates before attaches, a service role before the project that uses it);
//! - no op touches a protected role (`Aliyun*` or service-linked);
//! - no delete without evidence that we own what is deleted: a deleted role, policy or
//!   project showed our owner tag, and a detach hangs on a role that showed it or is adopted
//!   earlier in the plan;
//! - an `Adopt` change starts by putting our owner tag on the resource.

use std::collections::{BTreeMap, BTreeSet};

use super::diff::is_protected_role_name;
use super::model::*;
use crate::live::OWNER_TAG_KEY;
use crate::manifest::{Address, PolicyType};

/// `Ok` when every invariant holds, else one line per violation.
pub fn check(plan: &Plan) -> Result<(), Vec<String>> {
    let mut errs = Vec::new();
    let mut position: BTreeMap<&Address, usize> = BTreeMap::new();
    for (i, c) in plan.changes.iter().enumerate() {
        if position.insert(&c.address, i).is_some() {
            errs.push(format!("{}: address appears more than once", c.address));
        }
        if c.ops.is_empty() {
            errs.push(format!("{}: change has no ops", c.address));
        }
    }
    let before_me = |addr: &Address, i: usize| position.get(addr).is_some_and(|&j| j < i);
    let in_plan = |addr: &Address| position.contains_key(addr);
    let action_at = |addr: &Address| position.get(addr).map(|&j| plan.changes[j].action);

    for (i, c) in plan.changes.iter().enumerate() {
        for dep in &c.depends_on {
            if in_plan(dep) && !before_me(dep, i) {
                errs.push(format!(
                    "{}: depends on {dep}, which comes later",
                    c.address
                ));
            }
        }
        if c.before
            .as_ref()
            .is_some_and(|b| b["service_linked"] == true)
        {
            errs.push(format!("{}: change on a service-linked role", c.address));
        }
        for op in &c.ops {
            if let Some(role) = role_named_by(op)
                && is_protected_role_name(role)
            {
                errs.push(format!(
                    "{}: op {} touches protected role {role}",
                    c.address,
                    op_name(op)
                ));
            }
            match op {
                Op::AttachPolicyToRole { role, policy } => {
                    let ra = Address::role(role);
                    match action_at(&ra) {
                        Some(Action::Create) if !before_me(&ra, i) => errs.push(format!(
                            "{}: attaches to {ra} before it is created",
                            c.address
                        )),
                        Some(Action::Delete) => errs.push(format!(
                            "{}: attaches to {ra}, which this plan deletes",
                            c.address
                        )),
                        _ => {}
                    }
                    if policy.policy_type == PolicyType::Custom {
                        let pa = Address::policy(&policy.name);
                        match action_at(&pa) {
                            Some(Action::Create) if !before_me(&pa, i) => errs
                                .push(format!("{}: attaches {pa} before it is created", c.address)),
                            Some(Action::Delete) => errs.push(format!(
                                "{}: attaches {pa}, which this plan deletes",
                                c.address
                            )),
                            _ => {}
                        }
                    }
                }
                Op::CreateProject { service_role, .. }
                | Op::UpdateProject {
                    service_role: Some(service_role),
                    ..
                } => {
                    let ra = Address::role(service_role);
                    match action_at(&ra) {
                        Some(Action::Create) if !before_me(&ra, i) => {
                            errs.push(format!("{}: uses {ra} before it is created", c.address))
                        }
                        Some(Action::Delete) => {
                            errs.push(format!("{}: uses {ra}, which this plan deletes", c.address))
                        }
                        _ => {}
                    }
                }
                Op::DeleteRole { name } => {
                    for (j, o) in plan.changes.iter().enumerate() {
                        let detaches = o.ops.iter().any(
                            |x| matches!(x, Op::DetachPolicyFromRole { role, .. } if role == name),
                        );
                        let leaves = o.address.as_str().starts_with("imm_project.")
                            && o.before.as_ref().and_then(|b| b["service_role"].as_str())
                                == Some(name.as_str())
                            && o.after.as_ref().and_then(|a| a["service_role"].as_str())
                                != Some(name.as_str());
                        if (detaches || leaves) && j > i {
                            errs.push(format!(
                                "{}: deleted before its child {}",
                                c.address, o.address
                            ));
                        }
                    }
                }
                Op::DeletePolicy { name } => {
                    for (j, o) in plan.changes.iter().enumerate() {
                        let detaches = o.ops.iter().any(|x| {
                            matches!(x, Op::DetachPolicyFromRole { policy, .. }
                                if policy.policy_type == PolicyType::Custom && policy.name == *name)
                        });
                        if detaches && j > i {
                            errs.push(format!(
                                "{}: deleted before its child {}",
                                c.address, o.address
                            ));
                        }
                    }
                }
                _ => {}
            }
        }
        if c.action == Action::Delete {
            check_delete_evidence(plan, c, i, &before_me, &mut errs);
        }
        if c.action == Action::Adopt && !first_op_tags_owner(c, plan.owner()) {
            errs.push(format!(
                "{}: adopt does not start by tagging {OWNER_TAG_KEY}={}",
                c.address,
                plan.owner()
            ));
        }
    }
    // The ops of deletes must not be mixed into non-delete changes (a policy version
    // rotation is the one exception: it deletes a version, not a resource).
    let mut seen_deleted: BTreeSet<String> = BTreeSet::new();
    for c in &plan.changes {
        for op in &c.ops {
            let deleted = match op {
                Op::DeleteRole { name } => Some(format!("role {name}")),
                Op::DeletePolicy { name } => Some(format!("policy {name}")),
                Op::DeleteProject { key } => Some(format!("project {key}")),
                _ => None,
            };
            if let Some(d) = deleted {
                if c.action != Action::Delete {
                    errs.push(format!(
                        "{}: {} op in a {} change",
                        c.address,
                        op_name(op),
                        c.action
                    ));
                }
                if !seen_deleted.insert(d.clone()) {
                    errs.push(format!("{}: {d} deleted twice", c.address));
                }
            }
        }
    }
    if errs.is_empty() { Ok(()) } else { Err(errs) }
}

fn check_delete_evidence(
    plan: &Plan,
    c: &Change,
    i: usize,
    before_me: &dyn Fn(&Address, usize) -> bool,
    errs: &mut Vec<String>,
) {
    let Some(before) = &c.before else {
        errs.push(format!("{}: delete without a before value", c.address));
        return;
    };
    let owner = plan.owner();
    if c.address.as_str().starts_with("ram_role_policy.") {
        let role = before["role"].as_str().unwrap_or_default();
        let owned = before["role_owner"].as_str() == Some(owner);
        let ra = Address::role(role);
        let adopted_earlier = plan
            .changes
            .iter()
            .any(|o| o.address == ra && o.action == Action::Adopt)
            && before_me(&ra, i);
        if !owned && !adopted_earlier {
            errs.push(format!(
                "{}: detach from role {role} without evidence that the role is ours",
                c.address
            ));
        }
    } else if before["tags"][OWNER_TAG_KEY].as_str() != Some(owner) {
        errs.push(format!(
            "{}: delete without our owner tag {OWNER_TAG_KEY}={owner} in its before value",
            c.address
        ));
    }
}

fn first_op_tags_owner(c: &Change, owner: &str) -> bool {
    match c.ops.first() {
        Some(Op::TagResources { tags, .. }) => {
            tags.get(OWNER_TAG_KEY).map(String::as_str) == Some(owner)
        }
        Some(Op::UpdateProject {
            tags: Some(tags), ..
        }) => tags.get(OWNER_TAG_KEY).map(String::as_str) == Some(owner),
        _ => false,
    }
}

fn role_named_by(op: &Op) -> Option<&str> {
    match op {
        Op::CreateRole { name, .. } | Op::UpdateRole { name, .. } | Op::DeleteRole { name } => {
            Some(name)
        }
        Op::AttachPolicyToRole { role, .. } | Op::DetachPolicyFromRole { role, .. } => Some(role),
        Op::TagResources {
            resource_type: TagResourceType::Role,
            name,
            ..
        }
        | Op::UntagResources {
            resource_type: TagResourceType::Role,
            name,
            ..
        } => Some(name),
        _ => None,
    }
}

/// The API action name of an op (`CreatePolicy`, ...).
pub fn op_name(op: &Op) -> &'static str {
    match op {
        Op::CreatePolicy { .. } => "CreatePolicy",
        Op::DeletePolicyVersion { .. } => "DeletePolicyVersion",
        Op::CreatePolicyVersion { .. } => "CreatePolicyVersion",
        Op::UpdatePolicyDescription { .. } => "UpdatePolicyDescription",
        Op::DeletePolicy { .. } => "DeletePolicy",
        Op::CreateRole { .. } => "CreateRole",
        Op::UpdateRole { .. } => "UpdateRole",
        Op::DeleteRole { .. } => "DeleteRole",
        Op::AttachPolicyToRole { .. } => "AttachPolicyToRole",
        Op::DetachPolicyFromRole { .. } => "DetachPolicyFromRole",
        Op::TagResources { .. } => "TagResources",
        Op::UntagResources { .. } => "UntagResources",
        Op::CreateProject { .. } => "CreateProject",
        Op::UpdateProject { .. } => "UpdateProject",
        Op::DeleteProject { .. } => "DeleteProject",
    }
}
