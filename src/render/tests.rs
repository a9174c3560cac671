//! Renderer unit tests on fixture plans (the golden tests cover full renderings).

use super::*;
use crate::manifest::DeletionPolicy;
use crate::plan::testing::*;
use crate::plan::{Plan, PlanSettings, check, diff};
use crate::policy::PolicyDocument;

fn mixed_plan() -> Plan {
    let mut d = desired(
        vec![desired_policy("media-read")],
        vec![desired_role(
            "media-role",
            &[policy_ref(
                crate::manifest::PolicyType::Custom,
                "media-read",
            )],
        )],
        vec![desired_project("media", "media-role")],
    );
    let mut live = live_from_desired(&d, "default", &empty_live());
    live.policies.get_mut("media-read").unwrap().document = PolicyDocument(
        serde_json::json!({"Version":"1","Statement":[{"Effect":"Allow","Action":["oss:GetObject","oss:ListObjects"],"Resource":"acs:oss:*:*:media/*"}]}),
    );
    let old = desired(vec![desired_policy("old")], vec![], vec![]);
    let live = live_from_desired(&old, "default", &live);
    d.roles.get_mut("media-role").unwrap().description = Some("new | desc".into());
    d.policies.get_mut("media-read").unwrap().deletion_policy = DeletionPolicy::Retain;
    d.projects
        .values_mut()
        .next()
        .unwrap()
        .limits
        .engine_concurrency = Some(5);
    d.projects.insert(
        crate::manifest::ProjectKey {
            region: REGION.into(),
            name: "fresh".into(),
        },
        desired_project("fresh", crate::manifest::IMM_DEFAULT_ROLE),
    );
    let s = PlanSettings {
        prune: true,
        ..PlanSettings::default()
    };
    let mut p = diff(&d, &live, &s);
    check(&p).unwrap();
    // The IMM findings (IMM001 for `fresh`) come from the lints, as in a real reconcile.
    p.findings
        .extend(crate::lint::lint_desired(&d, Some(&live)));
    p
}

fn text(p: &Plan, color: bool) -> String {
    let mut out = Vec::new();
    render_text(p, &mut out, color).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn text_has_symbols_diffs_summary_and_findings() {
    let p = mixed_plan();
    let t = text(&p, false);
    println!("{t}");
    assert!(t.contains("  + imm_project.cn-hangzhou/fresh\n"));
    assert!(t.contains("  ~ ram_policy.media-read\n"));
    assert!(t.contains("  - ram_policy.old\n"));
    assert!(
        t.contains("          -        \"oss:ListObjects\"\n"),
        "{t}"
    );
    assert!(t.contains("warning[IMM001] imm_project.cn-hangzhou/fresh"));
    assert!(
        t.ends_with("Plan: 1 to create, 3 to update, 0 to adopt, 1 to delete.\n"),
        "{t}"
    );
    assert!(!t.contains('\x1b'));
}

#[test]
fn text_colours_only_when_asked() {
    let p = mixed_plan();
    let t = text(&p, true);
    assert!(t.contains("\x1b[32m+\x1b[0m imm_project.cn-hangzhou/fresh"));
    let plain: String = strip_ansi(&t);
    assert_eq!(plain, text(&p, false));
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for d in chars.by_ref() {
                if d == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn empty_plan_says_no_changes_everywhere() {
    let d = desired(vec![desired_policy("a")], vec![], vec![]);
    let live = live_from_desired(&d, "default", &empty_live());
    let p = diff(&d, &live, &PlanSettings::default());
    assert_eq!(
        text(&p, false),
        "No changes. The live state matches the manifests.\n"
    );
    let mut md = Vec::new();
    render_markdown(&p, &mut md).unwrap();
    assert!(String::from_utf8(md).unwrap().contains("**No changes.**"));
}

#[test]
fn markdown_calls_out_deletions_first_and_folds_diffs() {
    let mut p = mixed_plan();
    p.findings.push(crate::plan::Finding {
        code: "X999".into(),
        severity: crate::plan::Severity::Info,
        address: crate::manifest::Address::role("media-role"),
        message: "new | desc".into(),
        fix: None,
    });
    let mut out = Vec::new();
    render_markdown(&p, &mut out).unwrap();
    let md = String::from_utf8(out).unwrap();
    println!("{md}");
    let deletions = md.find("### Deletions").expect("deletions section");
    let findings = md.find("### Findings").expect("findings section");
    let changes = md.find("### Changes").expect("changes section");
    assert!(deletions < findings && findings < changes);
    assert!(md.contains("<details><summary><code>~ ram_policy.media-read</code> update</summary>"));
    assert!(md.contains("```diff\n"));
    assert!(md.contains("new \\| desc"), "pipes escaped in tables: {md}");
}

#[test]
fn json_round_trips_with_format_version_first() {
    let p = mixed_plan();
    let mut out = Vec::new();
    render_json(&p, &mut out).unwrap();
    let s = String::from_utf8(out).unwrap();
    assert!(s.starts_with("{\n  \"format_version\": 2,"));
    let back: Plan = serde_json::from_str(&s).unwrap();
    assert_eq!(back, p);
}
