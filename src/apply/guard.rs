//! Belt and braces for prune: the planner decides what may be deleted (owner tag, manifest
//! set loaded and non-empty, `--max-deletions`, `Retain`); the executor only checks that a
//! resource-deleting op is backed by the planner's own evidence in the same [`Change`]:
//!
//! 1. the change's action is `Delete`;
//! 2. it carries a reason with code `prune` (the only way the planner makes a delete);
//! 3. the op deletes the change's own resource (`DeleteRole{name}` only in `ram_role.<name>`),
//!    so a planner bug cannot smuggle a delete of another resource into a change;
//! 4. the change records the resource as it was (`before` is present);
//! 5. when `before` shows tags, they carry `immctl-owner=<plan.owner>`.
//!
//! `DetachPolicyFromRole` and `DeletePolicyVersion` are not resource deletions (drift and
//! version rotation use them in updates) and are not guarded here.
//!
//! Pure: no I/O. A refused change makes no API call at all.

use crate::live::OWNER_TAG_KEY;
use crate::manifest::Address;
use crate::plan::{Action, Change, Op};

/// The reason code the planner puts on every prune delete.
pub const PRUNE_REASON: &str = "prune";

/// The resource an op deletes outright, if it does.
pub fn deleted_resource(op: &Op) -> Option<Address> {
    match op {
        Op::DeleteRole { name } => Some(Address::role(name)),
        Op::DeletePolicy { name } => Some(Address::policy(name)),
        Op::DeleteProject { key } => Some(Address::project(key)),
        _ => None,
    }
}

/// `Err(why)` when `change` holds a delete op without the planner's evidence.
pub fn check_change(change: &Change, owner: &str) -> Result<(), String> {
    for op in &change.ops {
        let Some(target) = deleted_resource(op) else {
            continue;
        };
        let name = super::op_name(op);
        if change.action != Action::Delete {
            return Err(format!(
                "{name} in a change whose action is {:?}, not Delete",
                change.action
            ));
        }
        if !change.reasons.iter().any(|r| r.code == PRUNE_REASON) {
            return Err(format!("{name} without a `{PRUNE_REASON}` reason"));
        }
        if target != change.address {
            return Err(format!(
                "{name} deletes {target}, which is not this change's resource"
            ));
        }
        let Some(before) = &change.before else {
            return Err(format!(
                "{name} of a resource the plan did not see live (no `before`)"
            ));
        };
        if let Some(tags) = before.get("tags").and_then(|t| t.as_object()) {
            let tagged = tags.get(OWNER_TAG_KEY).and_then(|v| v.as_str());
            if tagged != Some(owner) {
                return Err(format!(
                    "{name} of a resource whose `{OWNER_TAG_KEY}` tag is {tagged:?}, not {owner:?}"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Reason;
    use serde_json::json;

    fn delete_role(name: &str) -> Change {
        Change {
            address: Address::role(name),
            action: Action::Delete,
            reasons: vec![Reason {
                code: "prune".into(),
                message: "owned and absent from the manifests".into(),
            }],
            before: Some(json!({"name": name, "tags": {"immctl-owner": "default"}})),
            after: None,
            live_fingerprint: Some("f".into()),
            depends_on: vec![],
            ops: vec![Op::DeleteRole { name: name.into() }],
        }
    }

    #[test]
    fn a_prune_delete_with_evidence_passes() {
        assert_eq!(check_change(&delete_role("r"), "default"), Ok(()));
    }

    #[test]
    fn a_delete_without_prune_reason_or_in_an_update_is_refused() {
        let mut c = delete_role("r");
        c.reasons[0].code = "missing".into();
        assert!(check_change(&c, "default").unwrap_err().contains("prune"));

        let mut c = delete_role("r");
        c.action = Action::Update;
        assert!(check_change(&c, "default").unwrap_err().contains("Update"));
    }

    #[test]
    fn a_delete_of_another_resource_or_of_an_unowned_one_is_refused() {
        let mut c = delete_role("r");
        c.ops = vec![Op::DeleteRole {
            name: "other".into(),
        }];
        assert!(
            check_change(&c, "default")
                .unwrap_err()
                .contains("ram_role.other")
        );

        assert!(
            check_change(&delete_role("r"), "team-b")
                .unwrap_err()
                .contains("immctl-owner")
        );

        let mut c = delete_role("r");
        c.before = None;
        assert!(check_change(&c, "default").is_err());
    }
}
