//! Golden plan renderings: every `tests/golden/<case>/` holds `desired.yaml` (manifests),
//! `live.json` (a compact live-state fixture, see [`LiveFixture`]), optionally
//! `settings.json` (`PlanSettings`), and the expected `plan.txt`, `plan.json`, `plan.md`.
//!
//! One test walks every case. `IMMCTL_BLESS=1 cargo test --test integration golden` rewrites
//! the expected files; review the diff like code.
//!
//! Each case also checks the invariants: `plan::check` holds, and applying the plan to the
//! live model then planning again gives no change (unless the plan is blocked by findings).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use immctl::live::{Live, LivePolicy, LivePolicyVersion, LiveProject, LiveRole};
use immctl::manifest::{self, LoadOptions, PolicyRef, PolicyType, ProjectKey};
use immctl::plan::{self, PlanSettings};
use immctl::policy::PolicyDocument;
use immctl::render;
use serde::Deserialize;

const ACCOUNT: &str = "1234567890123456";

/// A short way to write a live state: ids, ARNs, dates and name indexes are derived.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct LiveFixture {
    roles: BTreeMap<String, RoleFixture>,
    policies: BTreeMap<String, PolicyFixture>,
    projects: Vec<ProjectFixture>,
    /// System policies that exist, with their default documents.
    system_policies: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleFixture {
    #[serde(default)]
    description: String,
    #[serde(default = "hour")]
    max_session_duration: u32,
    trust_policy: serde_json::Value,
    /// `Custom/<name>` or `System/<name>`.
    #[serde(default)]
    attachments: Vec<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
    #[serde(default)]
    service_linked: bool,
}

fn hour() -> u32 {
    3600
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFixture {
    #[serde(default)]
    description: String,
    /// The default version's document.
    document: serde_json::Value,
    /// How many versions exist (`v1..vN`); the default is the newest unless `default_version`.
    #[serde(default = "one")]
    versions: u32,
    #[serde(default)]
    default_version: Option<String>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProjectFixture {
    #[serde(default = "region")]
    region: String,
    name: String,
    service_role: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    template_id: String,
    #[serde(default)]
    engine_concurrency: Option<i64>,
    #[serde(default)]
    project_queries_per_second: Option<i64>,
    #[serde(default)]
    tags: BTreeMap<String, String>,
}

fn region() -> String {
    "cn-hangzhou".into()
}

fn attachment(s: &str) -> PolicyRef {
    let (t, name) = s.split_once('/').expect("attachment as Type/name");
    PolicyRef {
        policy_type: match t {
            "Custom" => PolicyType::Custom,
            "System" => PolicyType::System,
            other => panic!("bad attachment type {other}"),
        },
        name: name.to_string(),
    }
}

impl LiveFixture {
    fn into_live(self) -> Live {
        let mut live = Live {
            account_id: Some(ACCOUNT.into()),
            ..Live::default()
        };
        for (name, doc) in &self.system_policies {
            live.policy_names.insert(PolicyRef {
                policy_type: PolicyType::System,
                name: name.clone(),
            });
            live.system_policy_documents
                .insert(name.clone(), PolicyDocument(doc.clone()));
        }
        let mut attach_counts: BTreeMap<String, u32> = BTreeMap::new();
        for (i, (name, r)) in self.roles.into_iter().enumerate() {
            let attachments: BTreeSet<PolicyRef> =
                r.attachments.iter().map(|a| attachment(a)).collect();
            for a in &attachments {
                if a.policy_type == PolicyType::Custom {
                    *attach_counts.entry(a.name.clone()).or_default() += 1;
                }
            }
            live.role_names.insert(name.clone());
            live.roles.insert(
                name.clone(),
                LiveRole {
                    role_id: format!("3{:0>15}", i + 1),
                    arn: format!("acs:ram::{ACCOUNT}:role/{}", name.to_lowercase()),
                    name,
                    description: r.description,
                    max_session_duration: r.max_session_duration,
                    trust_policy: PolicyDocument(r.trust_policy),
                    attachments,
                    tags: r.tags,
                    service_linked: r.service_linked,
                },
            );
        }
        for (name, p) in self.policies {
            let default = p
                .default_version
                .clone()
                .unwrap_or_else(|| format!("v{}", p.versions));
            let versions = (1..=p.versions)
                .map(|n| LivePolicyVersion {
                    version_id: format!("v{n}"),
                    is_default: format!("v{n}") == default,
                    create_date: format!("2026-01-{n:02}T00:00:00Z"),
                })
                .collect();
            live.policy_names.insert(PolicyRef {
                policy_type: PolicyType::Custom,
                name: name.clone(),
            });
            live.policies.insert(
                name.clone(),
                LivePolicy {
                    attachment_count: attach_counts.get(&name).copied().unwrap_or(0),
                    name,
                    description: p.description,
                    default_version: default,
                    document: PolicyDocument(p.document),
                    versions,
                    tags: p.tags,
                },
            );
        }
        for p in self.projects {
            let key = ProjectKey {
                region: p.region.clone(),
                name: p.name.clone(),
            };
            live.projects.insert(
                key,
                LiveProject {
                    region: p.region,
                    name: p.name,
                    service_role: p.service_role,
                    description: p.description,
                    template_id: p.template_id,
                    project_queries_per_second: p.project_queries_per_second.unwrap_or(100),
                    engine_concurrency: p.engine_concurrency.unwrap_or(100),
                    project_max_dataset_count: 1_000_000_000,
                    dataset_max_bind_count: 10,
                    dataset_max_file_count: 100_000_000,
                    dataset_max_entity_count: 10_000_000_000,
                    dataset_max_relation_count: 100_000_000_000,
                    dataset_max_total_file_size: 90_000_000_000_000_000,
                    tags: p.tags,
                },
            );
        }
        live
    }
}

fn bless() -> bool {
    std::env::var_os("IMMCTL_BLESS").is_some_and(|v| v == "1")
}

/// Compare `actual` with the file, or rewrite it when blessing. Returns a mismatch message.
fn check_golden(path: &Path, actual: &str) -> Option<String> {
    if bless() {
        std::fs::write(path, actual).unwrap();
        return None;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected == actual {
        return None;
    }
    let diff = similar::TextDiff::from_lines(&expected, actual)
        .unified_diff()
        .header("expected", "actual")
        .to_string();
    Some(format!(
        "{} differs (IMMCTL_BLESS=1 to accept):\n{diff}",
        path.display()
    ))
}

fn cases() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("tests/golden")
        .expect("tests/golden")
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("desired.yaml").exists())
        .collect();
    dirs.sort();
    dirs
}

#[test]
fn every_golden_case_renders_as_recorded() {
    let cases = cases();
    assert!(cases.len() >= 12, "expected at least 12 golden cases");
    let mut failures = Vec::new();
    for dir in &cases {
        let loaded = manifest::load(
            &[dir.join("desired.yaml")],
            &LoadOptions {
                default_region: "cn-hangzhou".into(),
            },
        );
        assert!(
            !loaded.has_errors(),
            "{}: desired.yaml has errors: {:?}",
            dir.display(),
            loaded.diagnostics
        );
        let fixture: LiveFixture = serde_json::from_str(
            &std::fs::read_to_string(dir.join("live.json")).expect("live.json"),
        )
        .unwrap_or_else(|e| panic!("{}/live.json: {e}", dir.display()));
        let live = fixture.into_live();
        let settings: PlanSettings = match std::fs::read_to_string(dir.join("settings.json")) {
            Ok(t) => serde_json::from_str(&t).expect("settings.json"),
            Err(_) => PlanSettings::default(),
        };
        let plan = immctl::reconcile::plan_for(&loaded, &live, &settings);
        plan::check(&plan).unwrap_or_else(|e| panic!("{}: {e:?}", dir.display()));

        let mut txt = Vec::new();
        render::render_text(&plan, &mut txt, false).unwrap();
        let mut json = Vec::new();
        render::render_json(&plan, &mut json).unwrap();
        let mut md = Vec::new();
        render::render_markdown(&plan, &mut md).unwrap();
        for (file, out) in [("plan.txt", txt), ("plan.json", json), ("plan.md", md)] {
            let out = String::from_utf8(out).unwrap();
            if let Some(m) = check_golden(&dir.join(file), &out) {
                failures.push(m);
            }
        }

        // Applying the plan to the live model converges: the next plan has no change.
        let after = plan::simulate_strict(&plan, &live)
            .unwrap_or_else(|e| panic!("{}: the cloud would refuse {e:?}", dir.display()));
        let again = immctl::reconcile::plan_for(&loaded, &after, &settings);
        assert!(
            again.changes.is_empty(),
            "{}: plan after apply is not empty: {:?}",
            dir.display(),
            again.changes.iter().map(|c| &c.address).collect::<Vec<_>>()
        );
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
