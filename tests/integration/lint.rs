//! Golden lint output: one fixture in which every lint code fires, rendered the way users see
//! it (offline as `immctl validate` would list the findings; when planning, inside the text
//! and Markdown plans). `IMMCTL_BLESS=1 cargo test --test integration lint` rewrites the
//! files under `tests/data/lint/`; review the diff like code.

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::json;

use immctl::lint::{self, codes};
use immctl::live::Live;
use immctl::manifest::{
    Address, Desired, DesiredPolicy, DesiredProject, IMM_DEFAULT_ROLE, PolicyRef, PolicyType,
};
use immctl::plan::testing::{
    self, desired_policy, desired_project, desired_role, empty_live, live_from_desired, policy_ref,
};
use immctl::plan::{Action, Change, Finding, Op, Plan, PlanSettings, check, diff};
use immctl::policy::{PolicyDocument, imm};
use immctl::render::{render_findings, render_markdown, render_text};

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/lint")
        .join(name);
    if std::env::var_os("IMMCTL_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (IMMCTL_BLESS=1 to create it)", path.display()));
    if expected != actual {
        let diff = similar::TextDiff::from_lines(&expected, actual)
            .unified_diff()
            .header("expected", "actual")
            .to_string();
        panic!(
            "{} differs (IMMCTL_BLESS=1 to accept):\n{diff}",
            path.display()
        );
    }
}

fn policy(name: &str, doc: serde_json::Value) -> DesiredPolicy {
    let mut p = desired_policy(name);
    p.document = PolicyDocument(doc);
    p
}

fn custom(name: &str) -> PolicyRef {
    policy_ref(PolicyType::Custom, name)
}

fn system(name: &str) -> PolicyRef {
    policy_ref(PolicyType::System, name)
}

fn project(name: &str, role: &str, buckets: &[&str]) -> DesiredProject {
    let mut p = desired_project(name, role);
    p.buckets = buckets.iter().map(|b| b.to_string()).collect();
    p
}

fn minimum(bucket: &str) -> serde_json::Value {
    imm::service_role_policy(&[bucket.to_string()], &[]).0
}

/// The manifests of the fixture, as they are live before this change (the live projects
/// `media` and `archive` work on complete roles).
fn before() -> Desired {
    let mut archive_svc = desired_role("archive-svc", &[custom("archive-min")]);
    archive_svc.description = Some("archive service role".into());
    testing::desired(
        vec![
            policy("media-min", minimum("media")),
            policy(
                "media-extra",
                json!({"Version":"1","Statement":[{"Effect":"Allow","Action":"mns:*","Resource":"*"}]}),
            ),
            policy("archive-min", minimum("archive")),
        ],
        vec![
            desired_role("media-svc", &[custom("media-min"), custom("media-extra")]),
            archive_svc,
        ],
        vec![
            project("media", "media-svc", &["media"]),
            project("archive", "archive-svc", &["archive"]),
        ],
    )
}

/// What the manifests say now: every lint has something to say.
fn after() -> Desired {
    let mut d = before();
    // IMM012: the policy carrying the OSS minimum is detached from a role in use.
    d.roles
        .get_mut("media-svc")
        .unwrap()
        .policies
        .remove(&custom("media-min"));
    // IMM013 (and IMM004): the trust of a role in use now names ECS instead of IMM.
    d.roles.get_mut("archive-svc").unwrap().trust_policy = testing::trust("ecs.aliyuncs.com");

    // IMM004, IMM007, IMM008: trusted by the account instead of IMM; oss:* on *; PassRole
    // without a condition.
    let mut weak = desired_role("weak-svc", &[custom("too-broad")]);
    weak.trust_policy = PolicyDocument(json!({"Version":"1","Statement":[{"Effect":"Allow",
        "Action":"sts:AssumeRole","Principal":{"RAM":["acs:ram::1234567890123456:root"]}}]}));
    d.policies.insert(
        "too-broad".into(),
        policy(
            "too-broad",
            json!({"Version":"1","Statement":[
                {"Effect":"Allow","Action":"oss:*","Resource":"*"},
                {"Effect":"Allow","Action":"ram:PassRole","Resource":"*"}]}),
        ),
    );
    d.roles.insert("weak-svc".into(), weak);
    // IMM005 and IMM007: read-only OSS through System policies (their real documents).
    d.roles.insert(
        "thin-svc".into(),
        desired_role(
            "thin-svc",
            &[
                system("AliyunOSSReadOnlyAccess"),
                system("AliyunMNSFullAccess"),
            ],
        ),
    );
    // IMM006 (and IMM005): the guide's example, everything on <bucket>/* only.
    let mut actions: Vec<&str> = imm::OSS_BUCKET_ACTIONS.to_vec();
    actions.extend(imm::OSS_OBJECT_ACTIONS);
    d.policies.insert(
        "guide-example".into(),
        policy(
            "guide-example",
            json!({"Version":"1","Statement":[
                {"Effect":"Allow","Action":actions,"Resource":"acs:oss:*:*:scans/*"},
                {"Effect":"Allow","Action":"mns:*","Resource":"*"},
                {"Effect":"Allow","Action":"ram:PassRole","Resource":"*",
                 "Condition":{"StringEquals":{"acs:Service":"imm.aliyuncs.com"}}}]}),
        ),
    );
    d.roles.insert(
        "guide-svc".into(),
        desired_role("guide-svc", &[custom("guide-example")]),
    );
    // IMM009: a System policy immctl does not know.
    d.policies
        .insert("vendor-min".into(), policy("vendor-min", minimum("vendor")));
    d.roles.insert(
        "vendor-svc".into(),
        desired_role(
            "vendor-svc",
            &[custom("vendor-min"), system("AliyunVendorMagicAccess")],
        ),
    );
    for p in [
        project("photos", "weak-svc", &["photos-bucket"]),
        project("thumbnails", "thin-svc", &["thumbs-bucket"]),
        project("scans", "guide-svc", &["scans"]),
        project("vendor", "vendor-svc", &["vendor"]),
        // IMM001 (and IMM003 when planning: never authorized in this account).
        project("legacy", IMM_DEFAULT_ROLE, &[]),
        // IMM002 when planning; can't check offline.
        project("orphan", "nobody", &["orphan-bucket"]),
        // IMM010: no buckets.
        project("inbox", "archive-svc", &[]),
    ] {
        d.projects.insert(p.key(), p);
    }
    d
}

fn live() -> Live {
    let mut base = empty_live();
    // AliyunIMMDefaultRole was never authorized here.
    base.role_names.clear();
    let mut live = live_from_desired(&before(), "default", &base);
    for s in ["AliyunOSSReadOnlyAccess", "AliyunMNSFullAccess"] {
        live.policy_names.insert(system(s));
        live.system_policy_documents.insert(
            s.into(),
            immctl::policy::system::document(s).unwrap().clone(),
        );
    }
    live
}

fn findings_text(findings: &[Finding]) -> String {
    let mut out = Vec::new();
    render_findings(findings, &mut out, false).unwrap();
    String::from_utf8(out).unwrap()
}

fn text(plan: &Plan) -> String {
    let mut out = Vec::new();
    render_text(plan, &mut out, false).unwrap();
    String::from_utf8(out).unwrap()
}

fn markdown(plan: &Plan) -> String {
    let mut out = Vec::new();
    render_markdown(plan, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// What the lead's reconcile pass does: diff, then both lints appended.
fn planned() -> Plan {
    let d = after();
    let live = live();
    let mut plan = diff(&d, &live, &PlanSettings::default());
    check(&plan).unwrap();
    plan.findings.extend(lint::lint_desired(&d, Some(&live)));
    plan.findings.extend(lint::lint_plan(&plan, &d, &live));
    plan
}

/// A saved plan edited by hand to delete a role a live project uses (the planner itself
/// refuses to prune such a role: P007).
fn hand_edited() -> Vec<Finding> {
    let d = before();
    let live = live();
    let mut plan = diff(&d, &live, &PlanSettings::default());
    plan.changes.push(Change {
        address: Address::role("media-svc"),
        action: Action::Delete,
        reasons: vec![],
        before: None,
        after: None,
        live_fingerprint: None,
        depends_on: vec![],
        ops: vec![Op::DeleteRole {
            name: "media-svc".into(),
        }],
    });
    lint::lint_plan(&plan, &d, &live)
}

#[test]
fn golden_lint_output_with_every_lint_firing() {
    let offline = lint::lint_desired(&after(), None);
    let planned = planned();
    let edited = hand_edited();

    let every: BTreeSet<&str> = offline
        .iter()
        .chain(&planned.findings)
        .chain(&edited)
        .map(|f| f.code.as_str())
        .filter(|c| c.starts_with("IMM"))
        .collect();
    let all = [
        codes::DEFAULT_ROLE,
        codes::UNKNOWN_ROLE,
        codes::DEFAULT_ROLE_MISSING,
        codes::UNTRUSTED,
        codes::BELOW_MINIMUM,
        codes::ONE_FORM,
        codes::OVER_BROAD,
        codes::PASS_ROLE_UNCONDITIONED,
        codes::CANNOT_CHECK,
        codes::NO_BUCKETS,
        codes::PLAN_DELETES_ROLE_IN_USE,
        codes::PLAN_DROPS_MINIMUM,
        codes::PLAN_BREAKS_TRUST,
    ];
    assert_eq!(every, all.into_iter().collect::<BTreeSet<_>>());
    // No finding is reported twice in the plan (planner + lints).
    for (i, f) in planned.findings.iter().enumerate() {
        assert!(!planned.findings[i + 1..].contains(f), "duplicate {f:?}");
    }
    assert!(lint::blocks_apply(&planned.findings));

    let mut out = String::new();
    out.push_str("# immctl validate (offline): lint_desired(&desired, None)\n\n");
    out.push_str(&findings_text(&offline));
    out.push_str("\n# a hand-edited plan deleting a role in use: lint_plan\n\n");
    out.push_str(&findings_text(&edited));
    golden("findings.txt", &out);
    golden("plan.txt", &text(&planned));
    golden("plan.md", &markdown(&planned));
}
