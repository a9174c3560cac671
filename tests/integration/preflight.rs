//! Preflight and the explained permission error against the emulator (issue 8 points 3-4):
//! a RAM user lacking `ram:PassRole` is refused by preflight with the rule; with preflight
//! bypassed the emulator refuses CreateProject and the reported error carries the rule plus
//! Code and RequestId; once the user holds what the role grants, preflight is silent and the
//! plan converges. Also: unreadable caller policies are a warning, the root reads nothing,
//! and the emulator's user / group reads.

use std::collections::BTreeMap;

use serde_json::json;

use immctl::apply::{ChangeStatus, CloudOpRunner, SERVICE_ROLE_RULE, execute};
use immctl::cloud::Client;
use immctl::emulator::State;
use immctl::emulator::state::{AccessKey, Attachment, DocText, Policy, User};
use immctl::lint;
use immctl::live::{self, Scope};
use immctl::manifest::{Desired, PolicyType};
use immctl::plan::testing::{desired, desired_policy, desired_project, desired_role, policy_ref};
use immctl::plan::{PlanSettings, Severity, diff};
use immctl::policy::imm;
use immctl::preflight::{self, codes};

use crate::cloud_support::{REGION, Rig, client_as, exec_opts};

/// A service role with the IMM minimum on bucket `media`, and (optionally) the project.
fn fleet(with_project: bool) -> Desired {
    let mut p = desired_policy("media-min");
    p.document = imm::service_role_policy(&["media".into()], &[]);
    let mut project = desired_project("media", "media-svc");
    project.buckets = vec!["media".into()];
    desired(
        vec![p],
        vec![desired_role(
            "media-svc",
            &[policy_ref(PolicyType::Custom, "media-min")],
        )],
        if with_project { vec![project] } else { vec![] },
    )
}

fn custom_policy(document: serde_json::Value) -> Policy {
    Policy {
        description: String::new(),
        create_date: String::new(),
        update_date: String::new(),
        default_version: String::new(),
        last_version_number: 0,
        versions: Vec::new(),
        document: Some(DocText(document.to_string())),
        tags: BTreeMap::new(),
    }
}

fn attachment(policy_type: &str, name: &str) -> Attachment {
    Attachment {
        policy_type: policy_type.into(),
        name: name.into(),
        attach_date: String::new(),
    }
}

/// Add RAM user `name` (key `<name>-id` / `<name>-secret`) holding `custom` (one custom
/// policy `<name>-work` with that document) plus the given System policies.
fn add_user(state: &mut State, name: &str, custom: serde_json::Value, systems: &[&str]) {
    let work = format!("{name}-work");
    state.policies.insert(work.clone(), custom_policy(custom));
    let mut policies = vec![attachment("Custom", &work)];
    policies.extend(systems.iter().map(|s| attachment("System", s)));
    state.users.insert(
        name.into(),
        User {
            user_id: format!("2000{}", name.len()),
            policies,
        },
    );
    state.access_keys.push(AccessKey {
        id: format!("{name}-id"),
        secret: format!("{name}-secret"),
        user: Some(name.into()),
    });
}

fn as_user(rig: &Rig, name: &str) -> Client {
    client_as(
        &rig.emu.endpoint(),
        0.0,
        &format!("{name}-id"),
        &format!("{name}-secret"),
    )
}

/// The fleet's role and policy exist (made by the admin, who is the account root).
async fn rig_with_role() -> Rig {
    let rig = Rig::empty().await;
    rig.converge(&fleet(false), &PlanSettings::default()).await;
    rig
}

#[tokio::test]
async fn a_caller_lacking_pass_role_is_refused_by_preflight_and_then_by_the_emulator_with_the_rule()
{
    let rig = rig_with_role().await;
    let mut st = rig.emu.state();
    // dev may read everything and holds every permission the role grants, but no PassRole.
    add_user(
        &mut st,
        "dev",
        json!({"Version":"1","Statement":[{"Effect":"Allow","Action":["imm:*","oss:*","mns:*"],"Resource":"*"}]}),
        &["ReadOnlyAccess"],
    );
    rig.emu.put_state(st);
    let dev = as_user(&rig, "dev");
    rig.emu.reset_stats();

    // dev plans (reads only) and runs preflight.
    let d = fleet(true);
    let live = live::fetch(&dev, &Scope::from_desired(&d, "default", REGION))
        .await
        .unwrap();
    let plan = diff(&d, &live, &PlanSettings::default());
    assert_eq!(plan.summary().create, 1, "only the project is created");
    let findings = preflight::preflight(&dev, &plan, &d, &live).await.unwrap();
    let pf001: Vec<_> = findings
        .iter()
        .filter(|f| f.code == codes::PASS_ROLE)
        .collect();
    assert_eq!(pf001.len(), 1, "{findings:#?}");
    let f = pf001[0];
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.address.as_str(), "imm_project.cn-hangzhou/media");
    assert_eq!(
        f.message,
        "the caller (RAM user \"dev\") may not pass service role \"media-svc\" to imm.aliyuncs.com: \
         ram:PassRole on acs:ram:*:1234567890123456:role/media-svc is not granted; IMM would refuse \
         this change, because whoever sets a project's service role must hold ram:PassRole on it and \
         every permission it grants"
    );
    assert!(lint::blocks_apply(&findings));
    let stats = rig.emu.stats();
    assert_eq!(stats.calls["GetCallerIdentity"], 1);
    assert_eq!(stats.calls["ListPoliciesForUser"], 1);
    assert_eq!(stats.calls["ListGroupsForUser"], 1);
    assert!(
        !stats.calls.contains_key("CreateProject"),
        "preflight changes nothing"
    );

    // Preflight bypassed (--force): the emulator refuses CreateProject; the error the user
    // sees carries the rule, the Code and the RequestId.
    let runner = CloudOpRunner::new(dev.clone());
    let report = execute(&plan, &runner, &exec_opts(), &mut |_| {}).await;
    assert!(!report.is_success());
    assert_eq!(report.failures.len(), 1);
    let failure = &report.failures[0];
    let e = &failure.error;
    assert_eq!(e.action, "CreateProject");
    assert_eq!(e.http_status, Some(403));
    assert_eq!(e.code, "NoPermission");
    let request_id = e.request_id.clone().expect("a RequestId");
    assert!(!request_id.is_empty());
    assert_eq!(e.explanation, Some(SERVICE_ROLE_RULE));
    let shown = failure.to_string();
    assert!(
        shown.starts_with("CreateProject imm_project.cn-hangzhou/media: 403 NoPermission: "),
        "{shown}"
    );
    assert!(
        shown.ends_with(&format!(
            "(RequestId {request_id}) Note: whoever sets a project's service role must hold \
             ram:PassRole on that role and every permission the role grants."
        )),
        "{shown}"
    );
    assert!(
        rig.emu
            .state()
            .projects
            .get(REGION)
            .is_none_or(|p| p.is_empty()),
        "nothing was created"
    );

    // Grant PassRole for IMM (AliyunIMMFullAccess): preflight is silent, apply converges.
    let mut st = rig.emu.state();
    st.users
        .get_mut("dev")
        .unwrap()
        .policies
        .push(attachment("System", "AliyunIMMFullAccess"));
    rig.emu.put_state(st);
    let findings = preflight::preflight(&dev, &plan, &d, &live).await.unwrap();
    assert!(findings.is_empty(), "{findings:#?}");
    let report = execute(&plan, &runner, &exec_opts(), &mut |_| {}).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    assert_eq!(
        rig.emu.state().projects[REGION]["media"].service_role,
        "media-svc"
    );
    rig.assert_no_changes(&d, &PlanSettings::default()).await;
}

#[tokio::test]
async fn a_caller_lacking_what_the_role_grants_is_refused_by_preflight_and_the_emulator() {
    let rig = rig_with_role().await;
    let mut st = rig.emu.state();
    // PassRole for IMM, but only oss:GetObject of what the role grants.
    add_user(
        &mut st,
        "narrow",
        json!({"Version":"1","Statement":[{"Effect":"Allow","Action":["oss:GetObject","mns:*"],"Resource":"*"}]}),
        &["ReadOnlyAccess", "AliyunIMMFullAccess"],
    );
    rig.emu.put_state(st);
    let narrow = as_user(&rig, "narrow");
    let d = fleet(true);
    let live = live::fetch(&narrow, &Scope::from_desired(&d, "default", REGION))
        .await
        .unwrap();
    let plan = diff(&d, &live, &PlanSettings::default());
    let findings = preflight::preflight(&narrow, &plan, &d, &live)
        .await
        .unwrap();
    let codes_found: Vec<&str> = findings.iter().map(|f| f.code.as_str()).collect();
    assert_eq!(codes_found, [codes::ROLE_PERMISSION], "{findings:#?}");
    let m = &findings[0].message;
    assert!(m.contains("oss:PutObject on acs:oss:*:*:media/*"), "{m}");
    assert!(!m.contains("mns:*"), "{m}");
    // The emulator agrees (the shared rule): it refuses on the first uncovered grant.
    let runner = CloudOpRunner::new(narrow.clone());
    let report = execute(&plan, &runner, &exec_opts(), &mut |_| {}).await;
    let e = &report.failures[0].error;
    assert_eq!(
        (e.code.as_str(), e.http_status),
        ("NoPermission", Some(403))
    );
    assert!(
        e.message.contains("that the service role media-svc grants"),
        "{}",
        e.message
    );
    assert_eq!(e.explanation, Some(SERVICE_ROLE_RULE));
    assert!(matches!(report.outcomes[0].status, ChangeStatus::Failed(_)));
}

#[tokio::test]
async fn unreadable_caller_policies_are_a_warning_and_the_root_reads_nothing() {
    let rig = rig_with_role().await;
    let mut st = rig.emu.state();
    // ci may do the IMM work but may not read its own RAM policies.
    add_user(
        &mut st,
        "ci",
        json!({"Version":"1","Statement":[{"Effect":"Allow","Action":["imm:*","oss:*","mns:*"],"Resource":"*"}]}),
        &["AliyunIMMFullAccess"],
    );
    rig.emu.put_state(st);
    let d = fleet(true);
    let live = rig.fetch(&d, "default").await;
    let plan = diff(&d, &live, &PlanSettings::default());
    let ci = as_user(&rig, "ci");
    let findings = preflight::preflight(&ci, &plan, &d, &live).await.unwrap();
    assert_eq!(findings.len(), 1, "{findings:#?}");
    assert_eq!(findings[0].code, codes::SKIPPED);
    assert_eq!(findings[0].severity, Severity::Warning);
    assert!(
        findings[0]
            .message
            .contains("(ListPoliciesForUser: 403 NoPermission (RequestId "),
        "{}",
        findings[0].message
    );
    assert!(!lint::blocks_apply(&findings));

    // The emulator's admin is a RAM user with AdministratorAccess: it passes, and the System
    // document comes from the catalogue (no GetPolicy).
    rig.emu.reset_stats();
    let findings = preflight::preflight(&rig.client, &plan, &d, &live)
        .await
        .unwrap();
    assert!(findings.is_empty(), "{findings:#?}");
    let calls = rig.emu.stats().calls;
    assert_eq!(
        calls.keys().collect::<Vec<_>>(),
        [
            "GetCallerIdentity",
            "ListGroupsForUser",
            "ListPoliciesForUser"
        ]
    );

    // The account root holds everything: identity only.
    let mut st = rig.emu.state();
    st.access_keys.push(AccessKey {
        id: "root-id".into(),
        secret: "root-secret".into(),
        user: None,
    });
    rig.emu.put_state(st);
    rig.emu.reset_stats();
    let root = client_as(&rig.emu.endpoint(), 0.0, "root-id", "root-secret");
    assert!(
        preflight::preflight(&root, &plan, &d, &live)
            .await
            .unwrap()
            .is_empty()
    );
    let calls = rig.emu.stats().calls;
    assert_eq!(calls.keys().collect::<Vec<_>>(), ["GetCallerIdentity"]);

    // A plan that sets no service role makes no call at all.
    rig.emu.reset_stats();
    let quiet = diff(&fleet(false), &live, &PlanSettings::default());
    assert!(
        preflight::preflight(&ci, &quiet, &fleet(false), &live)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(rig.emu.stats().calls.is_empty());
}

#[tokio::test]
async fn the_emulator_answers_user_and_group_reads() {
    let rig = Rig::empty().await;
    let mut st = rig.emu.state();
    add_user(
        &mut st,
        "dev",
        json!({"Version":"1","Statement":[{"Effect":"Allow","Action":"ram:List*","Resource":"*"}]}),
        &["AliyunIMMFullAccess"],
    );
    rig.emu.put_state(st);
    let dev = as_user(&rig, "dev");
    let r = dev.list_policies_for_user("dev").await.unwrap();
    let names: Vec<(&str, &str)> = r
        .policies
        .policy
        .iter()
        .map(|p| (p.policy_type.as_str(), p.policy_name.as_str()))
        .collect();
    assert_eq!(
        names,
        [("Custom", "dev-work"), ("System", "AliyunIMMFullAccess")]
    );
    assert!(!r.request_id.is_empty());
    assert!(
        dev.list_groups_for_user("dev")
            .await
            .unwrap()
            .groups
            .group
            .is_empty()
    );
    let e = dev.list_policies_for_user("nobody").await.unwrap_err();
    assert_eq!(e.code(), Some("EntityNotExist.User"));
    let e = dev.list_policies_for_group("ops").await.unwrap_err();
    assert_eq!(e.code(), Some("EntityNotExist.Group"));
    // Authorized like every RAM read: a user without ram:List* is refused.
    let mut st = rig.emu.state();
    add_user(
        &mut st,
        "mute",
        json!({"Version":"1","Statement":[{"Effect":"Allow","Action":"imm:*","Resource":"*"}]}),
        &[],
    );
    rig.emu.put_state(st);
    let e = as_user(&rig, "mute")
        .list_policies_for_user("mute")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("NoPermission"));
}
