//! `immctl apply PLAN.json` refuses a plan when the world moved since it was made: the
//! manifests changed (their digest differs), or a resource the plan touches now has a
//! different live fingerprint (including: appeared, or vanished).
//!
//! Pure: the caller fetches the fresh fingerprints and digest.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::manifest::Address;
use crate::plan::Plan;

/// One reason a saved plan is stale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StaleResource {
    /// The manifests differ from those the plan was made from.
    Manifests { planned: String, now: String },
    /// A resource the plan changes is not as it was when planned (`None`: did not exist).
    Live {
        address: Address,
        planned: Option<String>,
        now: Option<String>,
    },
}

impl fmt::Display for StaleResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StaleResource::Manifests { .. } => {
                write!(f, "manifests: changed since the plan was made")
            }
            StaleResource::Live {
                address,
                planned,
                now,
            } => match (planned, now) {
                (None, Some(_)) => write!(f, "{address}: now exists; it did not when planned"),
                (Some(_), None) => write!(f, "{address}: no longer exists"),
                _ => write!(f, "{address}: changed live since the plan was made"),
            },
        }
    }
}

/// `Err` names every reason the saved plan may no longer be applied, manifests first, then
/// resources in plan order.
///
/// A change's planned fingerprint is its `live_fingerprint`, else the plan's
/// `live_fingerprints` entry for its address (absent in both = did not exist).
pub fn check_stale(
    saved: &Plan,
    fresh_fingerprints: &BTreeMap<Address, String>,
    fresh_manifest_digest: &str,
) -> Result<(), Vec<StaleResource>> {
    let mut stale = Vec::new();
    if saved.manifest_digest != fresh_manifest_digest {
        stale.push(StaleResource::Manifests {
            planned: saved.manifest_digest.clone(),
            now: fresh_manifest_digest.to_string(),
        });
    }
    for change in &saved.changes {
        let planned = change
            .live_fingerprint
            .as_ref()
            .or_else(|| saved.live_fingerprints.get(&change.address));
        let now = fresh_fingerprints.get(&change.address);
        if planned != now {
            stale.push(StaleResource::Live {
                address: change.address.clone(),
                planned: planned.cloned(),
                now: now.cloned(),
            });
        }
    }
    if stale.is_empty() { Ok(()) } else { Err(stale) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Action, Change, FORMAT_VERSION};

    fn change(address: Address, fp: Option<&str>) -> Change {
        Change {
            address,
            action: if fp.is_some() {
                Action::Update
            } else {
                Action::Create
            },
            reasons: vec![],
            before: None,
            after: None,
            live_fingerprint: fp.map(str::to_string),
            depends_on: vec![],
            ops: vec![],
        }
    }

    fn plan() -> Plan {
        Plan {
            format_version: FORMAT_VERSION,
            owner: "default".into(),
            changes: vec![
                change(Address::role("a"), Some("fa")),
                change(Address::policy("p"), None),
                change(Address::role("b"), Some("fb")),
            ],
            findings: vec![],
            manifest_digest: "d1".into(),
            live_fingerprints: BTreeMap::new(),
            expanded_from: BTreeMap::new(),
        }
    }

    fn fresh(pairs: &[(Address, &str)]) -> BTreeMap<Address, String> {
        pairs
            .iter()
            .map(|(a, f)| (a.clone(), f.to_string()))
            .collect()
    }

    #[test]
    fn an_unchanged_world_is_not_stale_and_untouched_resources_do_not_count() {
        let now = fresh(&[
            (Address::role("a"), "fa"),
            (Address::role("b"), "fb"),
            (Address::role("unrelated"), "changed"),
        ]);
        assert_eq!(check_stale(&plan(), &now, "d1"), Ok(()));
    }

    #[test]
    fn each_changed_resource_and_the_manifests_are_named() {
        let now = fresh(&[
            (Address::role("a"), "fa2"),
            (Address::policy("p"), "someone-made-it"),
        ]);
        let stale = check_stale(&plan(), &now, "d2").unwrap_err();
        let lines: Vec<String> = stale.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            lines,
            [
                "manifests: changed since the plan was made",
                "ram_role.a: changed live since the plan was made",
                "ram_policy.p: now exists; it did not when planned",
                "ram_role.b: no longer exists",
            ]
        );
    }
}
