//! One test per lint that fires and one that does not, on `plan::testing` fixtures.

use serde_json::json;

use super::*;
use crate::live::Live;
use crate::manifest::{
    DesiredPolicy, DesiredProject, DesiredRole, IMM_DEFAULT_ROLE, PolicyType, ProjectKey,
};
use crate::plan::testing::*;
use crate::plan::{Action, Change, Op, Plan, PlanSettings, diff};
use crate::policy::{PolicyDocument, imm};

fn doc(v: serde_json::Value) -> PolicyDocument {
    PolicyDocument(v)
}

fn policy(name: &str, d: serde_json::Value) -> DesiredPolicy {
    let mut p = desired_policy(name);
    p.document = doc(d);
    p
}

fn custom(name: &str) -> crate::manifest::PolicyRef {
    policy_ref(PolicyType::Custom, name)
}

fn system(name: &str) -> crate::manifest::PolicyRef {
    policy_ref(PolicyType::System, name)
}

fn project(name: &str, role: &str, buckets: &[&str]) -> DesiredProject {
    let mut p = desired_project(name, role);
    p.buckets = buckets.iter().map(|b| b.to_string()).collect();
    p
}

/// A role with the complete minimum for `media`, used by project `media`.
fn good() -> (Vec<DesiredPolicy>, Vec<DesiredRole>, Vec<DesiredProject>) {
    (
        vec![policy(
            "svc-min",
            imm::service_role_policy(&["media".into()], &[]).0,
        )],
        vec![desired_role("svc", &[custom("svc-min")])],
        vec![project("media", "svc", &["media"])],
    )
}

fn lint_offline(d: &crate::manifest::Desired) -> Vec<Finding> {
    lint_desired(d, None)
}

fn codes(f: &[Finding]) -> Vec<&str> {
    f.iter().map(|f| f.code.as_str()).collect()
}

fn with_code<'a>(f: &'a [Finding], code: &str) -> Vec<&'a Finding> {
    f.iter().filter(|f| f.code == code).collect()
}

fn only<'a>(f: &'a [Finding], code: &str) -> &'a Finding {
    let hits = with_code(f, code);
    assert_eq!(hits.len(), 1, "exactly one {code} expected: {f:#?}");
    hits[0]
}

#[test]
fn a_complete_least_privilege_role_draws_no_finding() {
    let (p, r, j) = good();
    let d = desired(p, r, j);
    assert!(lint_offline(&d).is_empty(), "{:#?}", lint_offline(&d));
    let live = live_from_desired(&d, "default", &empty_live());
    assert!(lint_desired(&d, Some(&live)).is_empty());
}

// ------------------------------------------------------------------ IMM001 / IMM003

#[test]
fn default_role_is_a_warning_and_a_missing_default_role_an_error_when_planning() {
    let d = desired(vec![], vec![], vec![project("a", IMM_DEFAULT_ROLE, &["b"])]);
    let off = lint_offline(&d);
    assert_eq!(codes(&off), [codes::DEFAULT_ROLE]);
    assert_eq!(off[0].severity, Severity::Warning);
    assert_eq!(off[0].address.as_str(), "imm_project.cn-hangzhou/a");
    assert!(off[0].fix.as_deref().unwrap().contains("ImmServiceRole"));
    // Planning, the role exists: still only the warning.
    assert_eq!(
        codes(&lint_desired(&d, Some(&empty_live()))),
        [codes::DEFAULT_ROLE]
    );
    // Planning, never authorized.
    let mut bare = empty_live();
    bare.role_names.clear();
    let f = lint_desired(&d, Some(&bare));
    assert_eq!(
        codes(&f),
        [codes::DEFAULT_ROLE, codes::DEFAULT_ROLE_MISSING]
    );
    assert_eq!(f[1].severity, Severity::Error);
    // A custom role draws neither.
    let (p, r, j) = good();
    let f = lint_desired(&desired(p, r, j), Some(&bare));
    assert!(with_code(&f, codes::DEFAULT_ROLE).is_empty());
    assert!(with_code(&f, codes::DEFAULT_ROLE_MISSING).is_empty());
}

// ------------------------------------------------------------------ IMM002 / IMM009 (roles)

#[test]
fn an_undeclared_role_is_unknown_when_absent_and_cant_check_otherwise() {
    let d = desired(vec![], vec![], vec![project("a", "ghost", &["b"])]);
    // Planning, absent from the account: error.
    let f = lint_desired(&d, Some(&empty_live()));
    assert_eq!(codes(&f), [codes::UNKNOWN_ROLE]);
    assert_eq!(f[0].severity, Severity::Error);
    // Offline: nothing is known, said so.
    let f = lint_offline(&d);
    assert_eq!(codes(&f), [codes::CANNOT_CHECK]);
    assert_eq!(f[0].severity, Severity::Info);
    assert!(f[0].message.contains("can't be checked offline"), "{f:#?}");
    // Planning, exists but not read in full (neither declared nor owned).
    let mut live = empty_live();
    live.role_names.insert("ghost".into());
    let f = lint_desired(&d, Some(&live));
    assert_eq!(codes(&f), [codes::CANNOT_CHECK]);
    assert!(f[0].message.contains("did not read it"));
}

#[test]
fn an_undeclared_role_read_live_is_checked_through_its_live_attachments() {
    // An owned role no longer declared but still used: its live trust and attachments count.
    let (p, r, j) = good();
    let full = desired(p, r, j.clone());
    let live = live_from_desired(&full, "default", &empty_live());
    let only_project = desired(vec![], vec![], j);
    assert!(lint_desired(&only_project, Some(&live)).is_empty());
    let mut weak = live.clone();
    weak.roles.get_mut("svc").unwrap().attachments.clear();
    let f = lint_desired(&only_project, Some(&weak));
    assert_eq!(codes(&f), [codes::BELOW_MINIMUM]);
}

// ------------------------------------------------------------------ IMM004

#[test]
fn a_role_imm_cannot_assume_is_an_error_and_the_trust_is_evaluated_not_matched() {
    let (p, mut r, j) = good();
    r[0].trust_policy = trust("ecs.aliyuncs.com");
    let f = lint_offline(&desired(p.clone(), r.clone(), j.clone()));
    let u = only(&f, codes::UNTRUSTED);
    assert_eq!(u.severity, Severity::Error);
    assert_eq!(u.address.as_str(), "ram_role.svc");
    assert!(u.message.contains("imm_project.cn-hangzhou/media"));
    assert!(u.message.contains("does not allow"));
    // The service name under another principal kind is not the service.
    r[0].trust_policy = doc(json!({"Version":"1","Statement":[{"Effect":"Allow",
        "Action":"sts:AssumeRole","Principal":{"RAM":["imm.aliyuncs.com"]}}]}));
    assert_eq!(
        with_code(
            &lint_offline(&desired(p.clone(), r.clone(), j.clone())),
            codes::UNTRUSTED
        )
        .len(),
        1
    );
    // An explicit deny beats an allow.
    r[0].trust_policy = doc(json!({"Version":"1","Statement":[
        {"Effect":"Allow","Action":"sts:AssumeRole","Principal":{"Service":"*.aliyuncs.com"}},
        {"Effect":"Deny","Action":"sts:AssumeRole","Principal":{"Service":"imm.aliyuncs.com"}}]}));
    let f = lint_offline(&desired(p.clone(), r.clone(), j.clone()));
    assert!(only(&f, codes::UNTRUSTED).message.contains("denies"));
    // Written differently but allowing IMM: no finding.
    r[0].trust_policy = doc(json!({"Version":"1","Statement":{"Effect":"allow",
        "Action":["sts:*"],"Principal":{"Service":"imm.aliyuncs.com"}}}));
    assert!(with_code(&lint_offline(&desired(p, r, j)), codes::UNTRUSTED).is_empty());
}

// ------------------------------------------------------------------ IMM005

#[test]
fn a_role_lacking_part_of_the_minimum_names_exactly_what_is_missing() {
    // Read-only OSS plus MNS, through two System policies known offline from the catalogue.
    let d = desired(
        vec![],
        vec![desired_role(
            "thin",
            &[
                system("AliyunOSSReadOnlyAccess"),
                system("AliyunMNSFullAccess"),
            ],
        )],
        vec![project("thumbs", "thin", &["thumbs-bucket"])],
    );
    let f = lint_offline(&d);
    let m = only(&f, codes::BELOW_MINIMUM);
    assert_eq!(m.severity, Severity::Warning);
    assert_eq!(m.address.as_str(), "imm_project.cn-hangzhou/thumbs");
    assert_eq!(
        m.message,
        "service role \"thin\" lacks part of the IMM minimum: oss:PutBucketLifecycle, \
         oss:PutBucketNotification, oss:DeleteBucketNotification, oss:PutBucketAcl, \
         oss:StartEventRecord, oss:StopEventRecord on acs:oss:*:*:thumbs-bucket (bucket level); \
         oss:PutObjectAcl, oss:CopyObject, oss:AppendObject, oss:PutSymlink, oss:PutObject on \
         acs:oss:*:*:thumbs-bucket/* (object level); ram:PassRole with acs:Service=imm.aliyuncs.com"
    );
    // oss:GetEventRecordStatus is covered by oss:Get*; mns:* by AliyunMNSFullAccess.
    assert!(!m.message.contains("GetEventRecordStatus") && !m.message.contains("mns:"));
}

#[test]
fn missing_one_action_wrong_bucket_and_deny_are_each_reported() {
    let full = |b: &str| imm::service_role_policy(&[b.to_string()], &[]).0;
    // One action missing: drop oss:PutSymlink from the object statement.
    let mut one = full("media");
    one["Statement"][1]["Action"] = json!(
        imm::OSS_OBJECT_ACTIONS
            .iter()
            .filter(|a| **a != "oss:PutSymlink")
            .collect::<Vec<_>>()
    );
    // The right actions on the wrong bucket.
    let wrong = full("other");
    // Everything, but a Deny in a second policy.
    let deny = json!({"Version":"1","Statement":[{"Effect":"Deny","Action":"oss:PutObject","Resource":"*"}]});
    for (policies, expect) in [
        (
            vec![one],
            "oss:PutSymlink on acs:oss:*:*:media/* (object level)",
        ),
        (vec![wrong], "oss:Get*, oss:List*, oss:PutBucketLifecycle"),
        (
            vec![full("media"), deny],
            "oss:PutObject on acs:oss:*:*:media/*",
        ),
    ] {
        let names: Vec<String> = (0..policies.len()).map(|i| format!("p{i}")).collect();
        let d = desired(
            policies
                .into_iter()
                .zip(&names)
                .map(|(p, n)| policy(n, p))
                .collect(),
            vec![desired_role(
                "svc",
                &names.iter().map(|n| custom(n)).collect::<Vec<_>>(),
            )],
            vec![project("media", "svc", &["media"])],
        );
        let f = lint_offline(&d);
        let m = only(&f, codes::BELOW_MINIMUM);
        assert!(m.message.contains(expect), "{expect}: {}", m.message);
    }
}

// ------------------------------------------------------------------ IMM006

#[test]
fn a_policy_granting_only_the_object_form_is_named() {
    // The guide's example: everything on <bucket>/* only.
    let mut actions: Vec<&str> = imm::OSS_BUCKET_ACTIONS.to_vec();
    actions.extend(imm::OSS_OBJECT_ACTIONS);
    actions.push("mns:*");
    let guide = json!({"Version":"1","Statement":[
        {"Effect":"Allow","Action":actions,"Resource":"acs:oss:*:*:media/*"},
        {"Effect":"Allow","Action":"mns:*","Resource":"*"},
        {"Effect":"Allow","Action":"ram:PassRole","Resource":"*",
         "Condition":{"StringEquals":{"acs:Service":"imm.aliyuncs.com"}}}]});
    let d = desired(
        vec![policy("guide", guide)],
        vec![desired_role("svc", &[custom("guide")])],
        vec![project("media", "svc", &["media"])],
    );
    let f = lint_offline(&d);
    let w = only(&f, codes::ONE_FORM);
    assert_eq!(w.severity, Severity::Warning);
    assert_eq!(w.address.as_str(), "ram_policy.guide");
    assert_eq!(
        w.message,
        "grants oss:Get*, oss:List*, oss:PutBucketLifecycle, oss:PutBucketNotification, \
         oss:DeleteBucketNotification, oss:PutBucketAcl, oss:StartEventRecord, \
         oss:StopEventRecord, oss:GetEventRecordStatus on acs:oss:*:*:media/* only; OSS checks \
         bucket-level actions against acs:oss:*:*:media, so service role \"svc\" cannot use them \
         on bucket media"
    );
    assert!(w.fix.as_deref().unwrap().contains("\"acs:oss:*:*:media\""));
    // And the missing minimum is reported too, at the project.
    assert_eq!(with_code(&f, codes::BELOW_MINIMUM).len(), 1);

    // The other way round: object-level actions on the bucket form only.
    let bucket_only = json!({"Version":"1","Statement":[
        {"Effect":"Allow","Action":imm::OSS_OBJECT_ACTIONS,"Resource":"acs:oss:*:*:media"}]});
    let d = desired(
        vec![
            policy("svc-min", imm::service_role_policy(&[], &[]).0),
            policy("b", bucket_only),
        ],
        vec![desired_role("svc", &[custom("svc-min"), custom("b")])],
        vec![project("media", "svc", &["media"])],
    );
    let f = lint_offline(&d);
    let w = only(&f, codes::ONE_FORM);
    assert!(
        w.message
            .contains("object-level actions against acs:oss:*:*:media/<object>")
    );
    assert!(w.message.contains("oss:PutObject"));
    // The minimum itself grants each action on its form: no IMM006.
    let (p, r, j) = good();
    assert!(with_code(&lint_offline(&desired(p, r, j)), codes::ONE_FORM).is_empty());
}

// ------------------------------------------------------------------ IMM007

#[test]
fn over_broad_grants_in_a_service_role_are_warned() {
    let cases = [
        (
            json!({"Effect":"Allow","Action":"oss:*","Resource":"*"}),
            "Action grants every OSS action (oss:*); Resource \"*\" grants OSS actions on every bucket",
        ),
        (
            json!({"Effect":"Allow","Action":"*","Resource":"acs:oss:*:*:media"}),
            "Action grants every action of every service",
        ),
        (
            json!({"Effect":"Allow","Action":"oss:GetObject","Resource":"acs:oss:*:*:*/*"}),
            "Resource \"acs:oss:*:*:*/*\" grants OSS actions on every bucket",
        ),
        (
            json!({"Effect":"Allow","NotAction":"ram:*","Resource":"acs:oss:*:*:media"}),
            "NotAction grants every action of every service",
        ),
    ];
    for (stmt, expect) in cases {
        let (mut p, mut r, j) = good();
        p.push(policy("wide", json!({"Version":"1","Statement":[stmt]})));
        r[0].policies.insert(custom("wide"));
        let f = lint_offline(&desired(p, r, j));
        let w = only(&f, codes::OVER_BROAD);
        assert_eq!(w.address.as_str(), "ram_policy.wide");
        assert_eq!(
            w.message,
            format!("over-broad grant in service role \"svc\": {expect}")
        );
    }
    // A System policy is judged by its real document, at the attachment's address.
    let (p, mut r, j) = good();
    r[0].policies.insert(system("AliyunOSSFullAccess"));
    let f = lint_offline(&desired(p, r, j));
    assert_eq!(
        only(&f, codes::OVER_BROAD).address.as_str(),
        "ram_role_policy.svc/System/AliyunOSSFullAccess"
    );
    // ReadOnlyAccess reads every bucket.
    let (p, mut r, j) = good();
    r[0].policies.insert(system("ReadOnlyAccess"));
    let f = lint_offline(&desired(p, r, j));
    assert!(
        only(&f, codes::OVER_BROAD)
            .message
            .contains("Resource \"*\" grants OSS actions on every bucket")
    );
    // mns:* on * and the conditioned PassRole of the minimum are not over-broad.
    let (p, r, j) = good();
    assert!(with_code(&lint_offline(&desired(p, r, j)), codes::OVER_BROAD).is_empty());
}

#[test]
fn over_broad_checks_cover_declared_roles_imm_may_assume_and_only_those() {
    let wide = policy(
        "wide",
        json!({"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:*","Resource":"*"}]}),
    );
    // No project uses it yet, but IMM may assume it: checked.
    let d = desired(
        vec![wide.clone()],
        vec![desired_role("spare", &[custom("wide")])],
        vec![],
    );
    assert_eq!(codes(&lint_offline(&d)), [codes::OVER_BROAD]);
    // A deployer role nobody lets IMM assume: not a service role, not checked.
    let mut deployer = desired_role("deployer", &[custom("wide")]);
    deployer.trust_policy = trust("ecs.aliyuncs.com");
    let d = desired(vec![wide], vec![deployer], vec![]);
    assert!(lint_offline(&d).is_empty());
}

// ------------------------------------------------------------------ IMM008

#[test]
fn pass_role_without_the_service_condition_is_warned() {
    let passes = |stmt: serde_json::Value| {
        let (mut p, mut r, j) = good();
        p.push(policy("pass", json!({"Version":"1","Statement":stmt})));
        r[0].policies.insert(custom("pass"));
        let f = lint_offline(&desired(p, r, j));
        with_code(&f, codes::PASS_ROLE_UNCONDITIONED)
            .into_iter()
            .cloned()
            .collect::<Vec<_>>()
    };
    let no_condition = passes(json!([{"Effect":"Allow","Action":"ram:PassRole","Resource":"*"}]));
    assert_eq!(no_condition.len(), 1);
    assert_eq!(no_condition[0].address.as_str(), "ram_policy.pass");
    assert_eq!(no_condition[0].severity, Severity::Warning);
    // A condition on something else does not restrict where the role goes.
    assert_eq!(
        passes(
            json!([{"Effect":"Allow","Action":"ram:*","Resource":"acs:ram:*:*:role/svc",
            "Condition":{"IpAddress":{"acs:SourceIp":"10.0.0.0/8"}}}])
        )
        .len(),
        1
    );
    // A wildcard service is no restriction.
    assert_eq!(
        passes(
            json!([{"Effect":"Allow","Action":"ram:PassRole","Resource":"*",
            "Condition":{"StringLike":{"acs:Service":"*"}}}])
        )
        .len(),
        1
    );
    // Restricted to IMM (any key case), or denied for every other service: fine.
    assert!(
        passes(
            json!([{"Effect":"Allow","Action":"ram:PassRole","Resource":"*",
            "Condition":{"StringEquals":{"ACS:service":"imm.aliyuncs.com"}}}])
        )
        .is_empty()
    );
    assert!(
        passes(json!([
            {"Effect":"Allow","Action":"ram:PassRole","Resource":"*"},
            {"Effect":"Deny","Action":"ram:PassRole","Resource":"*",
             "Condition":{"StringNotEquals":{"acs:Service":"imm.aliyuncs.com"}}}]))
        .is_empty()
    );
    // No PassRole at all: fine.
    assert!(passes(json!([{"Effect":"Allow","Action":"mns:*","Resource":"*"}])).is_empty());
}

// ------------------------------------------------------------------ IMM009 / IMM010

#[test]
fn an_unknown_system_policy_offline_is_said_and_known_live_when_planning() {
    let (p, mut r, j) = good();
    r[0].policies.insert(system("AliyunNewServiceAccess"));
    let d = desired(p, r, j);
    let f = lint_offline(&d);
    let c = only(&f, codes::CANNOT_CHECK);
    assert_eq!(c.severity, Severity::Info);
    assert!(
        c.message
            .contains("System policy \"AliyunNewServiceAccess\" is not in immctl's catalogue"),
        "{}",
        c.message
    );
    // Planning with its document read live: checked (and over-broad here).
    let mut live = live_from_desired(&d, "default", &empty_live());
    live.system_policy_documents.insert(
        "AliyunNewServiceAccess".into(),
        doc(json!({"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]})),
    );
    let f = lint_desired(&d, Some(&live));
    assert!(with_code(&f, codes::CANNOT_CHECK).is_empty(), "{f:#?}");
    assert_eq!(with_code(&f, codes::OVER_BROAD).len(), 1);
}

#[test]
fn an_unknown_policy_does_not_make_a_missing_minimum_silent() {
    let d = desired(
        vec![],
        vec![desired_role("svc", &[custom("elsewhere")])],
        vec![project("media", "svc", &["media"])],
    );
    let f = lint_offline(&d);
    assert_eq!(codes(&f), [codes::BELOW_MINIMUM, codes::CANNOT_CHECK]);
    assert!(f[0].message.contains("(unless \"elsewhere\" grants them"));
    assert!(
        f[1].message
            .contains("custom policy \"elsewhere\" is not declared")
    );
}

#[test]
fn a_grant_under_conditions_is_cant_check_not_missing() {
    let mut min = imm::service_role_policy(&["media".into()], &[]).0;
    min["Statement"][2]["Condition"] = json!({"IpAddress":{"acs:SourceIp":"100.64.0.0/10"}});
    let d = desired(
        vec![policy("svc-min", min)],
        vec![desired_role("svc", &[custom("svc-min")])],
        vec![project("media", "svc", &["media"])],
    );
    let f = lint_offline(&d);
    assert_eq!(codes(&f), [codes::CANNOT_CHECK]);
    assert!(f[0].message.contains("only under conditions"));
    assert!(f[0].message.contains("mns:* on acs:mns:*:*:*"));
}

#[test]
fn a_project_without_buckets_is_noted_and_still_checked_for_mns_and_pass_role() {
    let d = desired(
        vec![],
        vec![desired_role("svc", &[system("AliyunOSSReadOnlyAccess")])],
        vec![project("media", "svc", &[])],
    );
    let f = lint_offline(&d);
    // (AliyunOSSReadOnlyAccess reads every bucket: IMM007 at the attachment.)
    assert_eq!(
        codes(&f),
        [codes::BELOW_MINIMUM, codes::NO_BUCKETS, codes::OVER_BROAD]
    );
    assert_eq!(f[1].severity, Severity::Info);
    assert!(
        f[0].message
            .ends_with("mns:* on acs:mns:*:*:*; ram:PassRole with acs:Service=imm.aliyuncs.com")
    );
    let (p, r, j) = good();
    assert!(with_code(&lint_offline(&desired(p, r, j)), codes::NO_BUCKETS).is_empty());
}

// ------------------------------------------------------------------ lint_plan

fn planned(d: &crate::manifest::Desired, live: &Live) -> (Plan, Vec<Finding>) {
    let p = diff(d, live, &PlanSettings::default());
    crate::plan::check(&p).unwrap();
    let f = lint_plan(&p, d, live);
    (p, f)
}

/// The `good()` fleet live and in use, plus an extra redundant System attachment.
fn in_use() -> (crate::manifest::Desired, Live) {
    let (mut p, mut r, j) = good();
    p.push(policy(
        "extra",
        json!({"Version":"1","Statement":[
        {"Effect":"Allow","Action":"mns:*","Resource":"*"}]}),
    ));
    r[0].policies.insert(custom("extra"));
    let d = desired(p, r, j);
    let live = live_from_desired(&d, "default", &empty_live());
    (d, live)
}

#[test]
fn a_plan_that_detaches_minimum_permissions_from_a_role_in_use_is_an_error() {
    let (mut d, live) = in_use();
    d.roles
        .get_mut("svc")
        .unwrap()
        .policies
        .remove(&custom("svc-min"));
    let (plan, f) = planned(&d, &live);
    assert!(plan.changes.iter().any(|c| c.address.as_str()
        == "ram_role_policy.svc/Custom/svc-min"
        && c.action == Action::Delete));
    let e = only(&f, codes::PLAN_DROPS_MINIMUM);
    assert_eq!(e.severity, Severity::Error);
    assert_eq!(e.address.as_str(), "imm_project.cn-hangzhou/media");
    assert!(
        e.message
            .contains("(by delete ram_role_policy.svc/Custom/svc-min)"),
        "{}",
        e.message
    );
    assert!(e.message.contains("oss:PutObject"));
    assert!(e.message.contains("ram:PassRole"));
    // mns:* is still granted by "extra": not lost.
    assert!(!e.message.contains("mns:*"));
    assert!(blocks_apply(&f));
}

#[test]
fn a_plan_that_detaches_only_a_redundant_policy_is_fine() {
    let (mut d, live) = in_use();
    d.roles
        .get_mut("svc")
        .unwrap()
        .policies
        .remove(&custom("extra"));
    let (plan, f) = planned(&d, &live);
    assert!(!plan.is_empty());
    assert!(f.is_empty(), "{f:#?}");
    assert!(!blocks_apply(&f));
}

#[test]
fn a_plan_that_narrows_a_policy_document_of_a_role_in_use_is_an_error() {
    let (mut d, live) = in_use();
    d.policies.get_mut("svc-min").unwrap().document =
        imm::service_role_policy(&["other".into()], &[]);
    let (_, f) = planned(&d, &live);
    let e = only(&f, codes::PLAN_DROPS_MINIMUM);
    assert!(
        e.message.contains("(by update ram_policy.svc-min)"),
        "{}",
        e.message
    );
    assert!(e.message.contains("on acs:oss:*:*:media (bucket level)"));
}

#[test]
fn a_plan_that_breaks_the_trust_of_a_role_in_use_is_an_error() {
    let (mut d, live) = in_use();
    d.roles.get_mut("svc").unwrap().trust_policy = trust("ecs.aliyuncs.com");
    let (_, f) = planned(&d, &live);
    let e = only(&f, codes::PLAN_BREAKS_TRUST);
    assert_eq!(e.severity, Severity::Error);
    assert!(e.message.contains("changed by update ram_role.svc"));
    // Not a loss of permissions.
    assert!(with_code(&f, codes::PLAN_DROPS_MINIMUM).is_empty());
}

#[test]
fn moving_a_live_project_to_a_weaker_role_is_an_error_but_a_new_project_is_not() {
    let (mut d, live) = in_use();
    d.roles.insert(
        "thin".into(),
        desired_role("thin", &[system("AliyunOSSReadOnlyAccess")]),
    );
    let key = ProjectKey {
        region: REGION.into(),
        name: "media".into(),
    };
    d.projects.get_mut(&key).unwrap().service_role = "thin".into();
    let (_, f) = planned(&d, &live);
    let e = only(&f, codes::PLAN_DROPS_MINIMUM);
    assert!(
        e.message.contains("imm_project.cn-hangzhou/media"),
        "{}",
        e.message
    );
    // A project the plan creates on the same weak role loses nothing: no plan error (the
    // declared-state lint IMM005 warns about the role instead).
    let (_, live) = in_use();
    let mut d2 = d.clone();
    d2.projects.get_mut(&key).unwrap().service_role = "svc".into();
    d2.projects.insert(
        ProjectKey {
            region: REGION.into(),
            name: "fresh".into(),
        },
        project("fresh", "thin", &["media"]),
    );
    let (_, f) = planned(&d2, &live);
    assert!(f.is_empty(), "{f:#?}");
    assert_eq!(
        with_code(&lint_desired(&d2, Some(&live)), codes::BELOW_MINIMUM).len(),
        1
    );
}

#[test]
fn a_plan_that_deletes_a_role_in_use_is_an_error() {
    // The planner itself never prunes a role a kept project uses (P007); a plan from
    // elsewhere (or a planner bug) that does is caught here.
    let (d, live) = in_use();
    let plan = Plan {
        changes: vec![Change {
            address: Address::role("svc"),
            action: Action::Delete,
            reasons: vec![],
            before: None,
            after: None,
            live_fingerprint: None,
            depends_on: vec![],
            ops: vec![Op::DeleteRole { name: "svc".into() }],
        }],
        ..diff(&d, &live, &PlanSettings::default())
    };
    let f = lint_plan(&plan, &d, &live);
    let e = only(&f, codes::PLAN_DELETES_ROLE_IN_USE);
    assert_eq!(e.address.as_str(), "ram_role.svc");
    assert!(e.message.contains("imm_project.cn-hangzhou/media"));
    assert!(blocks_apply(&f));
    // Deleting the project along with the role is not "in use".
    let mut plan2 = plan.clone();
    plan2.changes.insert(
        0,
        Change {
            address: Address::project(&ProjectKey {
                region: REGION.into(),
                name: "media".into(),
            }),
            action: Action::Delete,
            reasons: vec![],
            before: None,
            after: None,
            live_fingerprint: None,
            depends_on: vec![],
            ops: vec![Op::DeleteProject {
                key: ProjectKey {
                    region: REGION.into(),
                    name: "media".into(),
                },
            }],
        },
    );
    assert!(
        with_code(
            &lint_plan(&plan2, &d, &live),
            codes::PLAN_DELETES_ROLE_IN_USE
        )
        .is_empty()
    );
}

#[test]
fn blocks_apply_only_on_errors() {
    let mk = |severity| Finding {
        code: "X".into(),
        severity,
        address: Address::role("r"),
        message: String::new(),
        fix: None,
    };
    assert!(!blocks_apply(&[]));
    assert!(!blocks_apply(&[mk(Severity::Warning), mk(Severity::Info)]));
    assert!(blocks_apply(&[mk(Severity::Info), mk(Severity::Error)]));
}

#[test]
fn lints_never_repeat_a_planner_finding_code() {
    // One owner per code: a fixture where planner and lints both have things to say.
    let (p, r, mut j) = good();
    j.push(project("legacy", IMM_DEFAULT_ROLE, &[]));
    j.push(project("ghost", "nobody", &["b"]));
    let d = desired(p, r, j);
    let mut live = empty_live();
    live.role_names.clear();
    let plan = diff(&d, &live, &PlanSettings::default());
    let lints = lint_desired(&d, Some(&live));
    assert!(!lints.is_empty());
    for f in &lints {
        assert!(f.code.starts_with("IMM"), "{f:?}");
        assert!(!plan.findings.iter().any(|g| g.code == f.code), "{f:?}");
    }
}

// ------------------------------------------------------------------ IMM014

/// The demo account's situation: the project's declared service role exists live without
/// an owner tag (made in the console) and without the least-privilege policy; the project
/// runs on the default role. Without adoption the plan moves the project onto the role but
/// leaves the role alone, so IMM would run on a role without OSS access.
fn unowned_service_role() -> (crate::manifest::Desired, Live) {
    let (p, r, j) = good();
    let d = desired(p, r, j);
    let mut live = empty_live();
    let mut role = live_role("svc", crate::manifest::Tags::new());
    role.trust_policy = imm::trust_policy();
    live.role_names.insert("svc".into());
    live.roles.insert("svc".into(), role);
    let key = ProjectKey {
        region: REGION.into(),
        name: "media".into(),
    };
    live.projects.insert(
        key.clone(),
        live_project(&key, IMM_DEFAULT_ROLE, owned("default")),
    );
    (d, live)
}

#[test]
fn setting_a_service_role_the_plan_leaves_short_of_its_manifest_is_an_error() {
    let (d, live) = unowned_service_role();
    let (plan, f) = planned(&d, &live);
    assert!(
        plan.changes
            .iter()
            .any(|c| c.address.as_str() == "imm_project.cn-hangzhou/media"),
        "the project is moved onto the role: {plan:#?}"
    );
    let e = only(&f, codes::PLAN_SETS_UNREADY_ROLE);
    assert_eq!(e.severity, Severity::Error);
    assert_eq!(e.address.as_str(), "imm_project.cn-hangzhou/media");
    assert!(e.message.contains("oss:PutObject"), "{}", e.message);
    assert!(e.message.contains("ram:PassRole"), "{}", e.message);
    assert!(blocks_apply(&f));

    // Adopting the role brings it in line in the same plan: no error.
    let adopt = PlanSettings {
        adopt: true,
        ..PlanSettings::default()
    };
    let plan = diff(&d, &live, &adopt);
    let f = lint_plan(&plan, &d, &live);
    assert!(
        with_code(&f, codes::PLAN_SETS_UNREADY_ROLE).is_empty(),
        "{f:#?}"
    );
}

#[test]
fn a_target_on_a_project_brings_its_role_whole() {
    let (p, r, j) = good();
    let d = desired(p, r, j);
    let live = empty_live();
    // --target pulls in what the project depends on: its role, and the role's attachments
    // (with the policies they attach), so the project never runs on a role without its
    // permissions. (IMM014 used to fire here; it stays the net for plans from elsewhere.)
    let targeted = PlanSettings {
        targets: vec![crate::manifest::Address(
            "imm_project.cn-hangzhou/media".into(),
        )],
        ..PlanSettings::default()
    };
    let plan = diff(&d, &live, &targeted);
    let addresses: Vec<&str> = plan.changes.iter().map(|c| c.address.as_str()).collect();
    assert_eq!(
        addresses,
        [
            "ram_policy.svc-min",
            "ram_role.svc",
            "ram_role_policy.svc/Custom/svc-min",
            "imm_project.cn-hangzhou/media",
        ]
    );
    let f = lint_plan(&plan, &d, &live);
    assert!(
        with_code(&f, codes::PLAN_SETS_UNREADY_ROLE).is_empty(),
        "{f:#?}"
    );
}

#[test]
fn a_plan_that_sets_a_service_role_it_never_creates_is_an_error() {
    let (p, r, j) = good();
    let d = desired(p, r, j);
    let live = empty_live();
    // A plan from elsewhere (or a planner bug) without the role is caught.
    let mut plan = diff(&d, &live, &PlanSettings::default());
    plan.changes
        .retain(|c| c.address.as_str().starts_with("imm_project."));
    plan.changes.iter_mut().for_each(|c| c.depends_on.clear());
    let f = lint_plan(&plan, &d, &live);
    let e = only(&f, codes::PLAN_SETS_UNREADY_ROLE);
    assert!(
        e.message.contains("does not create the role"),
        "{}",
        e.message
    );
}
