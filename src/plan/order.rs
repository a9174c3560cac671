//! Apply order: a topological order of the changes' `depends_on`, ties broken by phase and
//! then by address, so the order is deterministic and reads naturally:
//!
//! 1. delete projects, 2. detach policies, 3. create / update / adopt policies and roles,
//! 4. attach policies, 5. create / update / adopt projects, 6. delete roles, 7. delete policies.
//!
//! Children are deleted first and parents created first; a detach on a role being adopted
//! waits for the adoption (it depends on it), which the topological order takes care of.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use super::diff::Draft;
use super::model::Change;
use crate::manifest::Address;

/// Tie-breaking rank of a change in the apply order (lower first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Phase {
    DeleteProjects,
    Detach,
    CreateParents,
    Attach,
    Projects,
    DeleteRoles,
    DeletePolicies,
}

/// Kahn's algorithm over `depends_on` (edges to addresses outside the plan are ignored).
/// A cycle is a planner bug; its members are appended in phase order and `check` reports it.
pub(crate) fn order(drafts: BTreeMap<Address, Draft>) -> Vec<Change> {
    let mut indegree: BTreeMap<Address, usize> = BTreeMap::new();
    let mut dependents: BTreeMap<Address, Vec<Address>> = BTreeMap::new();
    for (a, d) in &drafts {
        let n = d
            .change
            .depends_on
            .iter()
            .filter(|dep| drafts.contains_key(*dep) && *dep != a)
            .count();
        indegree.insert(a.clone(), n);
        for dep in &d.change.depends_on {
            if drafts.contains_key(dep) && dep != a {
                dependents.entry(dep.clone()).or_default().push(a.clone());
            }
        }
    }
    let mut ready: BinaryHeap<Reverse<(super::order::Phase, Address)>> = drafts
        .iter()
        .filter(|(a, _)| indegree[*a] == 0)
        .map(|(a, d)| Reverse((d.phase, a.clone())))
        .collect();
    let mut out_addrs = Vec::with_capacity(drafts.len());
    while let Some(Reverse((_, a))) = ready.pop() {
        for dep in dependents.get(&a).into_iter().flatten() {
            let n = indegree.get_mut(dep).expect("every dependent is a draft");
            *n -= 1;
            if *n == 0 {
                ready.push(Reverse((drafts[dep].phase, dep.clone())));
            }
        }
        out_addrs.push(a);
    }
    let mut drafts = drafts;
    let mut out: Vec<Change> = out_addrs
        .into_iter()
        .map(|a| drafts.remove(&a).expect("ordered once").change)
        .collect();
    // Cycle leftovers (a bug): keep them visible so `check` can complain.
    let mut rest: Vec<_> = drafts.into_values().collect();
    rest.sort_by(|x, y| (x.phase, &x.change.address).cmp(&(y.phase, &y.change.address)));
    out.extend(rest.into_iter().map(|d| d.change));
    out
}
