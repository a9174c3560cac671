//! `immctl apply PLAN.json` refuses a plan when the world moved since it was made: the
//! manifests changed (their digest differs), or a resource the plan touches now has a
//! different live fingerprint (including: appeared, or vanished).
//!
//! It also refuses a plan file that is not what immctl would plan ([`check_replanned`]): with
//! the manifests and the live state unchanged, planning again with the flags the file records
//! must give the same changes and findings. Otherwise the file was edited by hand (an op
//! added, a refused prune's finding removed ...) and nobody reviewed what it would do.
//!
//! Pure: the caller fetches the fresh fingerprints and digest, and plans again.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use crate::manifest::{Address, Desired};
use crate::plan::Plan;

/// One reason a saved plan is stale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StaleResource {
    /// The manifests differ from those the plan was made from; `files` says how (empty when
    /// the plan does not list its files).
    Manifests {
        planned: String,
        now: String,
        files: Vec<FileChange>,
    },
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
            StaleResource::Manifests { files, .. } => {
                write!(f, "manifests: changed since the plan was made")?;
                const SHOWN: usize = 10;
                for (i, c) in files.iter().take(SHOWN).enumerate() {
                    let sep = if i == 0 { ": " } else { ", " };
                    write!(f, "{sep}{} ({})", c.file, c.how)?;
                }
                if files.len() > SHOWN {
                    write!(f, " and {} more", files.len() - SHOWN)?;
                }
                Ok(())
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

/// How one manifest file (or policy document) differs from when the plan was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileChange {
    /// Relative to its manifest root (`documentFile:` and the path for a policy document).
    pub file: String,
    /// `added`, `removed` or `changed`.
    pub how: &'static str,
}

/// The files added, removed or changed between two per-file digest maps, by name.
pub fn changed_files(
    planned: &BTreeMap<String, String>,
    now: &BTreeMap<String, String>,
) -> Vec<FileChange> {
    let mut out = Vec::new();
    for (file, digest) in planned {
        match now.get(file) {
            None => out.push(FileChange {
                file: file.clone(),
                how: "removed",
            }),
            Some(d) if d != digest => out.push(FileChange {
                file: file.clone(),
                how: "changed",
            }),
            Some(_) => {}
        }
    }
    for file in now.keys() {
        if !planned.contains_key(file) {
            out.push(FileChange {
                file: file.clone(),
                how: "added",
            });
        }
    }
    out.sort_by(|a, b| a.file.cmp(&b.file));
    out
}

/// `Err` names every reason the saved plan may no longer be applied, manifests first, then
/// resources in plan order.
///
/// A change's planned fingerprint is its `live_fingerprint`, else the plan's
/// `live_fingerprints` entry for its address (absent in both = did not exist).
pub fn check_stale(
    saved: &Plan,
    fresh_fingerprints: &BTreeMap<Address, String>,
    fresh_manifests: &Desired,
) -> Result<(), Vec<StaleResource>> {
    let mut stale = Vec::new();
    let manifests_changed = saved.manifest_digest != fresh_manifests.digest;
    if manifests_changed {
        stale.push(StaleResource::Manifests {
            planned: saved.manifest_digest.clone(),
            now: fresh_manifests.digest.clone(),
            files: changed_files(&saved.manifest_files, &fresh_manifests.file_digests),
        });
    }
    for change in &saved.changes {
        let planned = change
            .live_fingerprint
            .as_ref()
            .or_else(|| saved.live_fingerprints.get(&change.address));
        let now = fresh_fingerprints.get(&change.address);
        // The live state is read for what the manifests declare (and what we own): under other
        // manifests a resource the plan touches may simply not have been read. "No longer
        // exists" would then be false (found by trial6: `apply plan.json other-dir` said so of
        // a role that was there); the manifests line already refuses the plan.
        if manifests_changed && planned.is_some() && now.is_none() {
            continue;
        }
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

/// The resources the plan read but does not change whose live fingerprint moved since it
/// was made (appeared, vanished or changed), by address. Such a resource can still decide the
/// plan (a detach relies on its role being ours; a lint reads a project's role): when planning
/// again gives another plan, these name why, so apply calls the plan stale rather than edited.
/// The changed resources themselves are [`check_stale`]'s job and are left out.
pub fn changed_reads(
    saved: &Plan,
    fresh_fingerprints: &BTreeMap<Address, String>,
) -> Vec<StaleResource> {
    let changed: std::collections::BTreeSet<&Address> =
        saved.changes.iter().map(|c| &c.address).collect();
    let addresses: std::collections::BTreeSet<&Address> = saved
        .live_fingerprints
        .keys()
        .chain(fresh_fingerprints.keys())
        .filter(|a| !changed.contains(a))
        .collect();
    addresses
        .into_iter()
        .filter_map(|address| {
            let planned = saved.live_fingerprints.get(address);
            let now = fresh_fingerprints.get(address);
            (planned != now).then(|| StaleResource::Live {
                address: address.clone(),
                planned: planned.cloned(),
                now: now.cloned(),
            })
        })
        .collect()
}

/// One way a saved plan differs from the plan its manifests and live state produce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Edited {
    /// The file has a change at this address that planning again does not produce.
    Extra { address: Address },
    /// Planning again produces a change at this address that the file lacks.
    Missing { address: Address },
    /// Both have a change here, but not the same one (action, operations, before/after ...).
    Different { address: Address },
    /// Same changes, in another order (dependencies first is what makes an apply safe).
    Order,
    /// The lint findings differ (an `error` finding removed would unblock the apply).
    Findings,
    /// The per-file manifest digests differ from those of the manifests the plan's
    /// `manifest_digest` matches (a file list edited, so a later stale refusal would name the
    /// wrong files). An empty list (a plan saved before the field existed) is not compared.
    ManifestFiles,
}

impl fmt::Display for Edited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Edited::Extra { address } => write!(
                f,
                "{address}: the plan file changes it, but planning again does not"
            ),
            Edited::Missing { address } => write!(
                f,
                "{address}: planning again changes it, but the plan file does not"
            ),
            Edited::Different { address } => write!(
                f,
                "{address}: the plan file's change differs from what planning again gives"
            ),
            Edited::Order => write!(f, "the plan file orders its changes differently"),
            Edited::Findings => write!(f, "the plan file's findings differ from the lints' now"),
            Edited::ManifestFiles => write!(
                f,
                "the plan file's manifest_files differ from the manifests its manifest_digest matches"
            ),
        }
    }
}

/// `Err` names every difference between a saved plan and `fresh`, the plan made again from
/// the same manifests and live state with the saved plan's settings (the caller has checked
/// with [`check_stale`] that neither moved). Display-only fields (`expanded_from`) are not
/// compared.
pub fn check_replanned(saved: &Plan, fresh: &Plan) -> Result<(), Vec<Edited>> {
    let index = |p: &Plan| -> BTreeMap<Address, usize> {
        p.changes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.address.clone(), i))
            .collect()
    };
    let (old, new) = (index(saved), index(fresh));
    let mut edited = Vec::new();
    for c in &saved.changes {
        match new.get(&c.address) {
            None => edited.push(Edited::Extra {
                address: c.address.clone(),
            }),
            Some(&i) if fresh.changes[i] != *c => edited.push(Edited::Different {
                address: c.address.clone(),
            }),
            Some(_) => {}
        }
    }
    for c in &fresh.changes {
        if !old.contains_key(&c.address) {
            edited.push(Edited::Missing {
                address: c.address.clone(),
            });
        }
    }
    // Duplicated addresses collapse in the index; comparing the whole lists catches them too.
    if edited.is_empty() && saved.changes != fresh.changes {
        edited.push(Edited::Order);
    }
    if saved.findings != fresh.findings {
        edited.push(Edited::Findings);
    }
    if !saved.manifest_files.is_empty() && saved.manifest_files != fresh.manifest_files {
        edited.push(Edited::ManifestFiles);
    }
    if edited.is_empty() {
        Ok(())
    } else {
        Err(edited)
    }
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
            settings: crate::plan::PlanSettings::default(),
            changes: vec![
                change(Address::role("a"), Some("fa")),
                change(Address::policy("p"), None),
                change(Address::role("b"), Some("fb")),
            ],
            findings: vec![],
            manifest_digest: "d1".into(),
            manifest_files: BTreeMap::new(),
            live_fingerprints: BTreeMap::new(),
            expanded_from: BTreeMap::new(),
            default_region: None,
            account_id: None,
        }
    }

    fn manifests(digest: &str, files: &[(&str, &str)]) -> Desired {
        Desired {
            digest: digest.into(),
            file_digests: files
                .iter()
                .map(|(f, d)| (f.to_string(), d.to_string()))
                .collect(),
            ..Desired::default()
        }
    }

    #[test]
    fn changed_reads_name_moved_resources_the_plan_does_not_change() {
        let mut saved = plan();
        saved.live_fingerprints = [
            (Address::role("a"), "fa"),
            (Address::role("read"), "r1"),
            (Address::role("same"), "s"),
            (Address::role("gone"), "g"),
        ]
        .iter()
        .map(|(a, f)| (a.clone(), f.to_string()))
        .collect();
        let now = fresh(&[
            (Address::role("a"), "changed-but-check_stale-says-so"),
            (Address::role("read"), "r2"),
            (Address::role("same"), "s"),
            (Address::role("new"), "n"),
        ]);
        let lines: Vec<String> = changed_reads(&saved, &now)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            lines,
            [
                "ram_role.gone: no longer exists",
                "ram_role.new: now exists; it did not when planned",
                "ram_role.read: changed live since the plan was made",
            ]
        );
        assert!(changed_reads(&saved, &saved.live_fingerprints).is_empty());
    }

    #[test]
    fn stale_manifests_name_the_files_added_removed_and_changed() {
        let mut saved = plan();
        saved.manifest_files = [
            ("a.yaml", "1"),
            ("b.yaml", "2"),
            ("documentFile:p.json", "3"),
        ]
        .iter()
        .map(|(f, d)| (f.to_string(), d.to_string()))
        .collect();
        let now = manifests(
            "d2",
            &[
                ("a.yaml", "1"),
                ("documentFile:p.json", "4"),
                ("c.yaml", "5"),
            ],
        );
        let stale = check_stale(&saved, &BTreeMap::new(), &now).unwrap_err();
        assert_eq!(
            stale[0].to_string(),
            "manifests: changed since the plan was made: b.yaml (removed), c.yaml (added), \
             documentFile:p.json (changed)"
        );
        // Many files: the first ten, then a count.
        let many: Vec<(String, String)> = (0..12)
            .map(|i| (format!("f{i:02}.yaml"), "x".to_string()))
            .collect();
        let many: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        let stale = check_stale(&plan(), &BTreeMap::new(), &manifests("d2", &many)).unwrap_err();
        let line = stale[0].to_string();
        assert!(line.ends_with("f09.yaml (added) and 2 more"), "{line}");
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
        assert_eq!(check_stale(&plan(), &now, &manifests("d1", &[])), Ok(()));
    }

    #[test]
    fn each_changed_resource_and_the_manifests_are_named() {
        let now = fresh(&[
            (Address::role("a"), "fa2"),
            (Address::policy("p"), "someone-made-it"),
        ]);
        let stale = check_stale(&plan(), &now, &manifests("d2", &[])).unwrap_err();
        let lines: Vec<String> = stale.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            lines,
            [
                "manifests: changed since the plan was made",
                "ram_role.a: changed live since the plan was made",
                "ram_policy.p: now exists; it did not when planned",
            ]
        );
        // Under the same manifests, a resource missing from the fresh read is gone.
        let stale = check_stale(&plan(), &now, &manifests("d1", &[])).unwrap_err();
        let lines: Vec<String> = stale.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            lines,
            [
                "ram_role.a: changed live since the plan was made",
                "ram_policy.p: now exists; it did not when planned",
                "ram_role.b: no longer exists",
            ]
        );
    }

    #[test]
    fn a_plan_equal_to_its_replan_passes_and_display_fields_do_not_count() {
        let mut saved = plan();
        saved.expanded_from.insert(
            Address::role("a"),
            crate::plan::ExpandedFrom {
                kind: "ImmServiceRole".into(),
                name: "a".into(),
                source: "x.yaml:1:1".into(),
            },
        );
        assert_eq!(check_replanned(&saved, &plan()), Ok(()));
    }

    #[test]
    fn every_edit_to_a_saved_plan_is_named() {
        use crate::plan::{Finding, Op, Severity};
        let fresh = plan();

        // An operation added to a change, and a change added outright.
        let mut saved = plan();
        saved.changes[0]
            .ops
            .push(Op::DeleteRole { name: "a".into() });
        saved.changes.push(change(Address::role("x"), None));
        let lines: Vec<String> = check_replanned(&saved, &fresh)
            .unwrap_err()
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(
            lines,
            [
                "ram_role.a: the plan file's change differs from what planning again gives",
                "ram_role.x: the plan file changes it, but planning again does not",
            ]
        );

        // A change removed, and the order of the rest swapped.
        let mut saved = plan();
        saved.changes.remove(1);
        assert_eq!(
            check_replanned(&saved, &fresh),
            Err(vec![Edited::Missing {
                address: Address::policy("p")
            }])
        );
        let mut saved = plan();
        saved.changes.swap(0, 2);
        assert_eq!(check_replanned(&saved, &fresh), Err(vec![Edited::Order]));

        // An error finding removed from the file (it would no longer block the apply).
        let mut fresh_with_finding = plan();
        fresh_with_finding.findings.push(Finding {
            code: "P004".into(),
            severity: Severity::Error,
            address: Address::role("b"),
            message: "prune refused".into(),
            fix: None,
        });
        assert_eq!(
            check_replanned(&plan(), &fresh_with_finding),
            Err(vec![Edited::Findings])
        );

        // The per-file digests edited (the manifests themselves match the digest); a plan
        // without them (saved before they existed) is not compared.
        let files = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(f, d)| (f.to_string(), d.to_string()))
                .collect()
        };
        let mut fresh = plan();
        fresh.manifest_files = files(&[("a.yaml", "1"), ("b.yaml", "2")]);
        let mut saved = fresh.clone();
        saved.manifest_files = files(&[("a.yaml", "1")]);
        assert_eq!(
            check_replanned(&saved, &fresh),
            Err(vec![Edited::ManifestFiles])
        );
        saved.manifest_files = files(&[("a.yaml", "1"), ("b.yaml", "0")]);
        assert_eq!(
            check_replanned(&saved, &fresh),
            Err(vec![Edited::ManifestFiles])
        );
        saved.manifest_files = BTreeMap::new();
        assert_eq!(check_replanned(&saved, &fresh), Ok(()));
    }
}
