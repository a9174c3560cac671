//! `apply::execute` through `CloudOpRunner` against the emulator: from empty to converged,
//! every field update, rotation at the version limit, adoption, protected resources, partial
//! failure, eventual consistency, prune, and a chaos run.
//!
//! Each test starts its own emulator, builds `Desired` with `plan::testing`, and asserts the
//! emulator's state and that a second plan is empty.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use immctl::apply::{ChangeStatus, ExecuteOptions};
use immctl::cloud::ram::{CreatePolicyRequest, CreateRoleRequest, RamResourceType, RotateStrategy};
use immctl::emulator::{EmulatorOptions, FailNext, Faults, State};
use immctl::live::OWNER_TAG_KEY;
use immctl::manifest::{Address, Desired, PolicyType, ProjectKey};
use immctl::plan::testing::{
    self, desired, desired_policy, desired_project, desired_role, policy_ref,
};
use immctl::plan::{Action, PlanSettings};

use crate::cloud_support::{REGION, Rig, exec_opts, op_names};
use crate::live::fleet;

fn settings() -> PlanSettings {
    PlanSettings::default()
}

fn owner_tag(tags: &BTreeMap<String, String>) -> Option<&str> {
    tags.get(OWNER_TAG_KEY).map(String::as_str)
}

fn key(region: &str, name: &str) -> ProjectKey {
    ProjectKey {
        region: region.into(),
        name: name.into(),
    }
}

fn attached(state: &State, role: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = state.roles[role]
        .policies
        .iter()
        .map(|a| (a.policy_type.clone(), a.name.clone()))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn from_empty_to_converged_then_a_second_plan_is_empty() {
    let rig = Rig::empty().await;
    let d = fleet();
    let plan = rig.converge(&d, &settings()).await;
    // 2 policies, 2 roles, 4 attachments, 2 projects.
    assert_eq!(plan.summary().create, 10, "{:#?}", op_names(&plan));

    let st = rig.emu.state();
    for name in ["media-read", "media-write"] {
        let p = &st.policies[name];
        assert_eq!(owner_tag(&p.tags), Some("default"));
        assert_eq!(p.versions.len(), 1);
        assert_eq!(p.description, format!("{name} policy"));
    }
    for name in ["media-svc", "ops-svc"] {
        let r = &st.roles[name];
        assert_eq!(owner_tag(&r.tags), Some("default"));
        assert_eq!(r.max_session_duration, 3600);
    }
    assert_eq!(
        attached(&st, "media-svc"),
        [
            ("Custom".to_string(), "media-read".to_string()),
            ("Custom".to_string(), "media-write".to_string()),
            ("System".to_string(), "AliyunOSSReadOnlyAccess".to_string()),
        ]
    );
    let media = &st.projects[REGION]["media"];
    assert_eq!(media.service_role, "media-svc");
    assert_eq!(owner_tag(&media.tags), Some("default"));
    assert_eq!(st.projects["cn-beijing"]["archive"].service_role, "ops-svc");
    // Nothing was attempted twice or refused.
    let stats = rig.emu.stats();
    assert_eq!(stats.calls["CreateRole"], 2);
    assert_eq!(stats.calls["CreatePolicy"], 2);
    assert_eq!(stats.calls["AttachPolicyToRole"], 4);
    assert_eq!(stats.calls["CreateProject"], 2);
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
}

#[tokio::test]
async fn every_field_update_is_applied_and_converges() {
    let rig = Rig::empty().await;
    let mut d = fleet();
    rig.converge(&d, &settings()).await;

    let svc = d.roles.get_mut("media-svc").unwrap();
    svc.description = Some("new role description".into());
    svc.max_session_duration = 7200;
    svc.trust_policy = testing::trust("oss.aliyuncs.com");
    svc.tags.insert("team".into(), "media".into());
    let p = d.policies.get_mut("media-read").unwrap();
    p.document = testing::allow("oss:ListObjects", "acs:oss:*:*:media");
    p.description = Some("new policy description".into());
    p.tags.insert("cost".into(), "42".into());
    let j = d.projects.get_mut(&key(REGION, "media")).unwrap();
    j.service_role = "ops-svc".into();
    j.description = Some("new project description".into());
    j.limits.project_queries_per_second = Some(50);
    j.limits.dataset_max_bind_count = Some(3);
    j.tags.insert("tier".into(), "gold".into());

    let plan = rig.plan(&d, &settings()).await;
    let reasons = |addr: &str| -> Vec<String> {
        plan.changes
            .iter()
            .find(|c| c.address.as_str() == addr)
            .map(|c| c.reasons.iter().map(|r| r.code.clone()).collect())
            .unwrap_or_default()
    };
    assert_eq!(
        reasons("ram_role.media-svc"),
        [
            "tags",
            "trust_policy",
            "description",
            "max_session_duration"
        ]
    );
    assert_eq!(
        reasons("ram_policy.media-read"),
        ["tags", "document", "description"]
    );
    assert_eq!(
        reasons("imm_project.cn-hangzhou/media"),
        [
            "tags",
            "service_role",
            "description",
            "project_queries_per_second",
            "dataset_max_bind_count"
        ]
    );
    let (report, _) = rig.apply(&plan).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    rig.assert_no_changes(&d, &settings()).await;

    let st = rig.emu.state();
    let r = &st.roles["media-svc"];
    assert_eq!(r.description, "new role description");
    assert_eq!(r.max_session_duration, 7200);
    assert!(r.assume_role_policy_document.0.contains("oss.aliyuncs.com"));
    assert_eq!(r.tags.get("team").map(String::as_str), Some("media"));
    let p = &st.policies["media-read"];
    assert_eq!(p.versions.len(), 2, "a document change is a new version");
    assert_eq!(p.default_version, "v2");
    assert_eq!(p.description, "new policy description");
    assert_eq!(p.tags.get("cost").map(String::as_str), Some("42"));
    let j = &st.projects[REGION]["media"];
    assert_eq!(j.service_role, "ops-svc");
    assert_eq!(j.description, "new project description");
    assert_eq!(
        (j.project_queries_per_second, j.dataset_max_bind_count),
        (50, 3)
    );
    assert_eq!(j.tags.get("tier").map(String::as_str), Some("gold"));
    assert_eq!(owner_tag(&j.tags), Some("default"));

    // Removing a tag and an attachment is applied too.
    d.roles.get_mut("media-svc").unwrap().tags.clear();
    d.roles
        .get_mut("media-svc")
        .unwrap()
        .policies
        .remove(&policy_ref(PolicyType::Custom, "media-write"));
    let plan = rig.converge(&d, &settings()).await;
    assert!(op_names(&plan).contains(&"UntagResources ram_role.media-svc".to_string()));
    assert!(op_names(&plan).contains(
        &"DetachPolicyFromRole ram_role_policy.media-svc/Custom/media-write".to_string()
    ));
    let st = rig.emu.state();
    assert!(!st.roles["media-svc"].tags.contains_key("team"));
    assert_eq!(attached(&st, "media-svc").len(), 2);
}

#[tokio::test]
async fn a_document_change_at_the_five_version_limit_deletes_the_oldest_non_default_first() {
    let rig = Rig::empty().await;
    let mut d = desired(vec![desired_policy("media-read")], vec![], vec![]);
    rig.converge(&d, &settings()).await;
    // v2..v5 made by hand; v3 is set back as the default, so v1 is the oldest non-default.
    for i in 2..=5 {
        rig.client
            .create_policy_version(
                "media-read",
                &testing::allow(&format!("oss:Get{i}"), "*").to_wire(),
                false,
                RotateStrategy::None,
            )
            .await
            .unwrap();
    }
    rig.client
        .set_default_policy_version("media-read", "v3")
        .await
        .unwrap();

    d.policies.get_mut("media-read").unwrap().document =
        testing::allow("oss:GetObject", "acs:oss:*:*:new/*");
    let plan = rig.plan(&d, &settings()).await;
    assert_eq!(
        op_names(&plan),
        [
            "DeletePolicyVersion ram_policy.media-read",
            "CreatePolicyVersion ram_policy.media-read"
        ]
    );
    assert!(
        plan.changes[0]
            .reasons
            .iter()
            .any(|r| r.code == "version_rotation" && r.message.contains("v1"))
    );
    let (report, _) = rig.apply(&plan).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    rig.assert_no_changes(&d, &settings()).await;
    let p = &rig.emu.state().policies["media-read"];
    let ids: Vec<&str> = p.versions.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, ["v2", "v3", "v4", "v5", "v6"]);
    assert_eq!(p.default_version, "v6");
}

#[tokio::test]
async fn an_unowned_resource_is_left_alone_until_adopted() {
    let rig = Rig::empty().await;
    rig.client
        .create_role(&CreateRoleRequest {
            role_name: "media-svc".into(),
            assume_role_policy_document: testing::trust("imm.aliyuncs.com").to_wire(),
            description: Some("hand made".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    rig.client
        .attach_policy_to_role("System", "ReadOnlyAccess", "media-svc")
        .await
        .unwrap();
    let d = desired(
        vec![],
        vec![desired_role(
            "media-svc",
            &[policy_ref(PolicyType::System, "AliyunOSSReadOnlyAccess")],
        )],
        vec![],
    );
    let before = rig.emu.state();
    let plan = rig.plan(&d, &settings()).await;
    assert!(plan.is_empty(), "{:#?}", op_names(&plan));
    assert!(
        plan.findings
            .iter()
            .any(|f| f.code == "P001" && f.address.as_str() == "ram_role.media-svc")
    );
    let (report, _) = rig.apply(&plan).await;
    assert!(report.is_success());
    assert_eq!(
        rig.emu.state().roles,
        before.roles,
        "nothing touched without --adopt"
    );

    let adopt = PlanSettings {
        adopt: true,
        ..settings()
    };
    let plan = rig.converge(&d, &adopt).await;
    let role_change = plan
        .changes
        .iter()
        .find(|c| c.address.as_str() == "ram_role.media-svc")
        .unwrap();
    assert_eq!(role_change.action, Action::Adopt);
    assert!(
        matches!(role_change.ops[0], immctl::plan::Op::TagResources { .. }),
        "owner tag first"
    );
    let st = rig.emu.state();
    let r = &st.roles["media-svc"];
    assert_eq!(owner_tag(&r.tags), Some("default"));
    assert_eq!(r.description, "media-svc role");
    assert_eq!(
        attached(&st, "media-svc"),
        [("System".to_string(), "AliyunOSSReadOnlyAccess".to_string())]
    );
    // Owned now: the plain settings plan nothing either.
    rig.assert_no_changes(&d, &settings()).await;
}

#[tokio::test]
async fn protected_aliyun_roles_and_system_policies_are_never_touched() {
    let rig = Rig::start(EmulatorOptions {
        state: Some(State {
            imm_default_role_authorized: true,
            ..State::default()
        }),
        ..EmulatorOptions::default()
    })
    .await;
    // Someone even put our owner tag on the default role: prune must still leave it.
    rig.client
        .tag_resources(
            RamResourceType::Role,
            &["AliyunIMMDefaultRole".to_string()],
            &BTreeMap::from([(OWNER_TAG_KEY.to_string(), "default".to_string())]),
        )
        .await
        .unwrap();
    let before = rig.emu.state();
    let mut declared = desired_role("AliyunIMMDefaultRole", &[]);
    declared.description = Some("changed".into());
    let d = desired(
        vec![desired_policy("media-read")],
        vec![declared],
        vec![desired_project("media", "AliyunIMMDefaultRole")],
    );
    let prune = PlanSettings {
        prune: true,
        ..settings()
    };
    let plan = rig.plan(&d, &prune).await;
    assert!(plan.findings.iter().any(|f| f.code == "P003"));
    assert!(
        plan.changes
            .iter()
            .all(|c| !c.address.as_str().contains("AliyunIMMDefaultRole")),
        "{:#?}",
        op_names(&plan)
    );
    let (report, _) = rig.apply(&plan).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    let st = rig.emu.state();
    assert_eq!(
        st.roles["AliyunIMMDefaultRole"],
        before.roles["AliyunIMMDefaultRole"]
    );
    assert_eq!(
        st.projects[REGION]["media"].service_role,
        "AliyunIMMDefaultRole"
    );
    rig.assert_no_changes(&d, &prune).await;
}

#[tokio::test]
async fn a_failure_skips_its_dependents_reports_the_root_cause_and_the_next_run_converges() {
    let rig = Rig::empty().await;
    let d = desired(
        vec![desired_policy("media-read"), desired_policy("unrelated")],
        vec![desired_role(
            "media-svc",
            &[
                policy_ref(PolicyType::Custom, "media-read"),
                policy_ref(PolicyType::System, "AliyunOSSReadOnlyAccess"),
            ],
        )],
        vec![desired_project("media", "media-svc")],
    );
    rig.emu.set_faults(Faults {
        fail_next: Some(vec![FailNext {
            action: "CreateRole".into(),
            code: "LimitExceeded.Role".into(),
            count: 1,
            status: Some(409),
            message: Some("The count of roles beyond the current limits.".into()),
        }]),
        ..Faults::default()
    });
    let plan = rig.plan(&d, &settings()).await;
    let (report, events) = rig.apply(&plan).await;
    assert!(!report.is_success());
    assert_eq!(
        report.failures.len(),
        1,
        "only the root cause: {:#?}",
        report.failures
    );
    let root = &report.failures[0];
    assert_eq!(root.address, Address::role("media-svc"));
    assert_eq!(root.error.code, "LimitExceeded.Role");
    assert_eq!(root.error.http_status, Some(409));
    assert!(
        root.error
            .request_id
            .as_deref()
            .is_some_and(|r| r.len() == 36),
        "{root}"
    );
    assert!(
        root.to_string().starts_with(
            "CreateRole ram_role.media-svc: 409 LimitExceeded.Role: The count of roles"
        ),
        "{root}"
    );
    let status = |a: &str| {
        report
            .outcomes
            .iter()
            .find(|o| o.address.as_str() == a)
            .map(|o| o.status.clone())
            .unwrap()
    };
    for dependent in [
        "ram_role_policy.media-svc/Custom/media-read",
        "ram_role_policy.media-svc/System/AliyunOSSReadOnlyAccess",
        "imm_project.cn-hangzhou/media",
    ] {
        assert_eq!(
            status(dependent),
            ChangeStatus::Skipped {
                because: Address::role("media-svc")
            },
            "{dependent}"
        );
    }
    assert_eq!(status("ram_policy.media-read"), ChangeStatus::Done);
    assert_eq!(status("ram_policy.unrelated"), ChangeStatus::Done);
    assert!(events.iter().any(|e| {
        e.to_string()
            .contains("skipped because ram_role.media-svc failed")
    }));
    let st = rig.emu.state();
    assert!(st.roles.is_empty() && st.projects.get(REGION).is_none_or(|m| m.is_empty()));
    assert_eq!(
        rig.emu.stats().calls.get("AttachPolicyToRole"),
        None,
        "dependents sent nothing"
    );

    // The next run finishes the job.
    let plan = rig.converge(&d, &settings()).await;
    assert_eq!(plan.changes.len(), 4, "{:#?}", op_names(&plan));
}

/// Replies lost after the cloud acted (a 503 or a dropped connection after commit, as a
/// timeout after commit is on the real cloud): each create is retried by the client, the retry
/// answers "already exists", a read finds the resource ours and as planned, and the apply
/// succeeds with nothing made twice; a second plan is empty.
#[tokio::test]
async fn creates_whose_replies_were_lost_are_recognised_as_ours_and_converge() {
    let rig = Rig::empty().await;
    let lost = |action: &str, code: &str| FailNext {
        action: action.into(),
        code: code.into(),
        count: 1,
        status: None,
        message: None,
    };
    rig.emu.set_faults(Faults {
        lose_reply_next: Some(vec![
            lost("CreateRole", "ServiceUnavailable"),
            lost("CreatePolicy", "Drop"),
            lost("CreateProject", "InternalError"),
        ]),
        ..Faults::default()
    });
    let plan = rig.converge(&fleet(), &settings()).await;
    assert_eq!(plan.summary().create, 10, "{:#?}", op_names(&plan));
    let stats = rig.emu.stats();
    // One of each was sent twice (the lost reply, then "already exists"); nothing more.
    assert_eq!(stats.calls["CreateRole"], 3);
    assert_eq!(stats.calls["CreatePolicy"], 3);
    assert_eq!(stats.calls["CreateProject"], 3);
    assert_eq!(stats.errors["EntityAlreadyExists.Role"], 1);
    assert_eq!(stats.errors["EntityAlreadyExists.Policy"], 1);
    assert_eq!(stats.errors["ResourceAlreadyExists"], 1);
    let st = rig.emu.state();
    assert_eq!(st.roles.len(), 2);
    assert_eq!(st.policies.len(), 2);
    assert!(st.policies.values().all(|p| p.versions.len() == 1));
}

/// A new policy version answers no "already exists" when sent twice, so a lost reply must
/// not be retried blindly: the apply reads the policy back and finds its document already
/// the default. Before, the client re-sent it and left two extra identical versions (found
/// by a trial run with `loseReplyNext` CreatePolicyVersion count 2).
#[tokio::test]
async fn a_policy_version_whose_reply_was_lost_is_not_created_twice() {
    let rig = Rig::empty().await;
    let mut d = fleet();
    rig.converge(&d, &settings()).await;
    d.policies.get_mut("media-write").unwrap().document =
        testing::allow("oss:PutObjectAcl", "acs:oss:*:*:media/*");
    let lost = |code: &str| FailNext {
        action: "CreatePolicyVersion".into(),
        code: code.into(),
        count: 1,
        status: None,
        message: None,
    };
    for code in ["ServiceUnavailable", "Drop"] {
        rig.emu.reset_stats();
        rig.emu.set_faults(Faults {
            lose_reply_next: Some(vec![lost(code)]),
            ..Faults::default()
        });
        let plan = rig.converge(&d, &settings()).await;
        assert_eq!(
            op_names(&plan),
            ["CreatePolicyVersion ram_policy.media-write"],
            "{code}"
        );
        assert_eq!(rig.emu.stats().calls["CreatePolicyVersion"], 1, "{code}");
        let versions = rig.emu.state().policies["media-write"].versions.len();
        let want = if code == "Drop" { 3 } else { 2 };
        assert_eq!(versions, want, "{code}: one new version per plan, no more");
        d.policies.get_mut("media-write").unwrap().document =
            testing::allow("oss:AppendObject", "acs:oss:*:*:media/*");
    }
}

#[tokio::test]
async fn eventual_consistency_is_waited_out_and_converges() {
    let delay = Duration::from_millis(500);
    let rig = Rig::start(EmulatorOptions {
        consistency_delay: delay,
        ..EmulatorOptions::default()
    })
    .await;
    let d = fleet();
    let started = Instant::now();
    let (_, report) = rig.reconcile(&d, &settings()).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    // Attachments and projects really waited for their just-created role / policy.
    let stats = rig.emu.stats();
    assert!(
        stats.errors.contains_key("EntityNotExist.Role")
            || stats.errors.contains_key("EntityNotExist.Policy"),
        "the delay was not exercised: {:?}",
        stats.errors
    );
    assert!(started.elapsed() >= delay);
    // What was created last is visible after the delay (a daemon's interval is far longer).
    tokio::time::sleep(delay).await;
    rig.assert_no_changes(&d, &settings()).await;
    let st = rig.emu.state();
    assert_eq!(st.roles.len(), 2);
    assert_eq!(attached(&st, "media-svc").len(), 3);
    assert_eq!(
        rig.emu.stats().calls["CreateRole"],
        2,
        "no duplicate create"
    );
}

#[tokio::test]
async fn an_update_project_read_back_waits_for_the_new_service_role() {
    // IMM confirms service-role changes by reading back (CreateProject / UpdateProject).
    let rig = Rig::empty().await;
    let mut d = fleet();
    rig.converge(&d, &settings()).await;
    rig.emu.reset_stats();
    d.projects
        .get_mut(&key(REGION, "media"))
        .unwrap()
        .service_role = "ops-svc".into();
    rig.converge(&d, &settings()).await;
    let stats = rig.emu.stats();
    assert_eq!(stats.calls["UpdateProject"], 1);
    assert!(
        stats.calls["GetProject"] >= 1,
        "read back: {:?}",
        stats.calls
    );
}

#[tokio::test]
async fn a_saved_plan_is_refused_when_a_resource_it_touches_changed_live() {
    let rig = Rig::empty().await;
    let mut d = fleet();
    rig.converge(&d, &settings()).await;
    d.roles.get_mut("media-svc").unwrap().description = Some("planned".into());
    let saved = rig.plan(&d, &settings()).await;
    assert!(!saved.is_empty());
    // Someone edits the role by hand between plan and apply.
    rig.client
        .update_role(&immctl::cloud::ram::UpdateRoleRequest {
            role_name: "media-svc".into(),
            new_max_session_duration: Some(7200),
            ..Default::default()
        })
        .await
        .unwrap();
    let fresh = rig.fetch(&d, "default").await;
    let stale = immctl::apply::check_stale(&saved, &immctl::plan::live_fingerprints(&fresh), &d)
        .unwrap_err();
    assert_eq!(stale.len(), 1, "{stale:?}");
    assert!(
        stale[0].to_string().starts_with("ram_role.media-svc"),
        "{}",
        stale[0]
    );
    // Untouched: the same fetch again is not stale for a fresh plan.
    let again = rig.plan(&d, &settings()).await;
    let fresh = rig.fetch(&d, "default").await;
    assert!(
        immctl::apply::check_stale(&again, &immctl::plan::live_fingerprints(&fresh), &d).is_ok()
    );
}

/// An owned, undeclared role with attachments and an owned policy with extra versions.
async fn seed_prunable(rig: &Rig) {
    let c = &rig.client;
    let ours = BTreeMap::from([(OWNER_TAG_KEY.to_string(), "default".to_string())]);
    c.create_policy(&CreatePolicyRequest {
        policy_name: "old-policy".into(),
        policy_document: testing::allow("oss:GetObject", "*").to_wire(),
        tags: ours.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    for i in 0..2 {
        c.create_policy_version(
            "old-policy",
            &testing::allow(&format!("oss:Get{i}"), "*").to_wire(),
            true,
            RotateStrategy::None,
        )
        .await
        .unwrap();
    }
    for (name, tags) in [
        ("old-role", ours.clone()),
        ("someone-elses", BTreeMap::new()),
    ] {
        c.create_role(&CreateRoleRequest {
            role_name: name.into(),
            assume_role_policy_document: testing::trust("imm.aliyuncs.com").to_wire(),
            tags,
            ..Default::default()
        })
        .await
        .unwrap();
        c.attach_policy_to_role("System", "ReadOnlyAccess", name)
            .await
            .unwrap();
    }
    c.attach_policy_to_role("Custom", "old-policy", "old-role")
        .await
        .unwrap();
}

#[tokio::test]
async fn prune_deletes_only_owned_resources_detaching_and_dropping_versions_first() {
    let rig = Rig::empty().await;
    let d = desired(vec![desired_policy("media-read")], vec![], vec![]);
    rig.converge(&d, &settings()).await;
    seed_prunable(&rig).await;
    rig.emu.reset_stats();

    // Without --prune: findings only.
    let plan = rig.plan(&d, &settings()).await;
    assert!(plan.is_empty());
    assert!(plan.findings.iter().any(|f| f.code == "P008"));

    let prune = PlanSettings {
        prune: true,
        ..settings()
    };
    let plan = rig.plan(&d, &prune).await;
    let ops = op_names(&plan);
    let pos = |s: &str| {
        ops.iter()
            .position(|o| o == s)
            .unwrap_or_else(|| panic!("{s} not in {ops:#?}"))
    };
    assert!(
        pos("DetachPolicyFromRole ram_role_policy.old-role/Custom/old-policy")
            < pos("DeleteRole ram_role.old-role")
    );
    assert!(
        pos("DetachPolicyFromRole ram_role_policy.old-role/System/ReadOnlyAccess")
            < pos("DeleteRole ram_role.old-role")
    );
    assert!(
        pos("DeletePolicyVersion ram_policy.old-policy")
            < pos("DeletePolicy ram_policy.old-policy")
    );
    assert!(ops.iter().all(|o| !o.contains("someone-elses")), "{ops:#?}");
    let (report, _) = rig.apply(&plan).await;
    assert!(report.is_success(), "{:#?}", report.failures);
    rig.assert_no_changes(&d, &prune).await;

    let st = rig.emu.state();
    assert!(!st.roles.contains_key("old-role"));
    assert!(!st.policies.contains_key("old-policy"));
    assert!(
        st.roles.contains_key("someone-elses"),
        "unowned: never pruned"
    );
    assert_eq!(attached(&st, "someone-elses").len(), 1);
    assert!(st.policies.contains_key("media-read"));
    let stats = rig.emu.stats();
    assert_eq!(
        stats.calls["DeletePolicyVersion"], 2,
        "both non-default versions"
    );
    assert!(
        stats
            .errors
            .keys()
            .all(|c| !c.starts_with("DeleteConflict")),
        "a delete ran before its dependents were gone: {:?}",
        stats.errors
    );
}

#[tokio::test]
async fn prune_guards_refuse_mass_deletes_and_empty_manifests() {
    let rig = Rig::empty().await;
    let d = desired(
        (0..7).map(|i| desired_policy(&format!("p{i}"))).collect(),
        vec![],
        vec![],
    );
    rig.converge(&d, &settings()).await;
    let before = rig.emu.state();
    let prune = PlanSettings {
        prune: true,
        ..settings()
    };
    // Six of seven undeclared: more than --max-deletions 5.
    let keep = desired(vec![desired_policy("p0")], vec![], vec![]);
    let plan = rig.plan(&keep, &prune).await;
    assert!(plan.is_empty() && plan.findings.iter().any(|f| f.code == "P005"));
    // Nothing declared at all.
    let plan = rig.plan(&desired(vec![], vec![], vec![]), &prune).await;
    assert!(plan.is_empty() && plan.findings.iter().any(|f| f.code == "P004"));
    assert_eq!(rig.emu.state().policies, before.policies);
    // --allow-mass-delete lifts the count guard only.
    let mass = PlanSettings {
        allow_mass_delete: true,
        ..prune
    };
    rig.converge(&keep, &mass).await;
    assert_eq!(rig.emu.state().policies.keys().collect::<Vec<_>>(), ["p0"]);
}

/// Issue 6: 20% injected faults plus a 2 s consistency delay on a 200-resource fleet
/// converges within 3 runs, with no duplicate and no unintended delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_a_200_resource_fleet_converges_within_three_runs() {
    let delay = Duration::from_secs(2);
    let rig = Rig::start(EmulatorOptions {
        consistency_delay: delay,
        rate_limit_scale: 5.0,
        ..EmulatorOptions::default()
    })
    .await;
    // Bystanders that must survive: an unowned role and policy.
    rig.client
        .create_role(&CreateRoleRequest {
            role_name: "bystander".into(),
            assume_role_policy_document: testing::trust("imm.aliyuncs.com").to_wire(),
            ..Default::default()
        })
        .await
        .unwrap();
    rig.client
        .create_policy(&CreatePolicyRequest {
            policy_name: "bystander-policy".into(),
            policy_document: testing::allow("oss:GetObject", "*").to_wire(),
            ..Default::default()
        })
        .await
        .unwrap();
    tokio::time::sleep(delay).await;
    rig.emu.set_faults(Faults {
        fault_rate: Some(0.2),
        ..Faults::default()
    });

    // 40 × (policy, role, attachment to it, System attachment, project) = 200 resources.
    let n = 40;
    let d: Desired = desired(
        (0..n)
            .map(|i| desired_policy(&format!("p{i:02}")))
            .collect(),
        (0..n)
            .map(|i| {
                desired_role(
                    &format!("r{i:02}"),
                    &[
                        policy_ref(PolicyType::Custom, &format!("p{i:02}")),
                        policy_ref(PolicyType::System, "AliyunOSSReadOnlyAccess"),
                    ],
                )
            })
            .collect(),
        (0..n)
            .map(|i| desired_project(&format!("j{i:02}"), &format!("r{i:02}")))
            .collect(),
    );
    let prune = PlanSettings {
        prune: true,
        ..settings()
    };
    let started = Instant::now();
    let mut converged_after = None;
    for run in 1..=3 {
        let plan = rig.plan(&d, &prune).await;
        if plan.is_empty() {
            converged_after = Some(run - 1);
            break;
        }
        assert!(
            plan.changes.iter().all(|c| c.action != Action::Delete)
                && plan
                    .findings
                    .iter()
                    .all(|f| !matches!(f.code.as_str(), "P004" | "P005")),
            "run {run} planned a delete: {:#?}",
            op_names(&plan)
        );
        // Wide: most changes spend the consistency delay waiting on a read-back.
        let opts = ExecuteOptions {
            max_concurrency: 40,
            ..exec_opts()
        };
        let (report, _) = rig.apply_with(&plan, &opts).await;
        eprintln!(
            "chaos run {run}: {} ({:?})",
            report.summary(),
            started.elapsed()
        );
        // A daemon's next tick comes long after the consistency delay.
        tokio::time::sleep(delay).await;
    }
    if converged_after.is_none() && rig.plan(&d, &prune).await.is_empty() {
        converged_after = Some(3);
    }
    let elapsed = started.elapsed();
    rig.emu.set_faults(Faults {
        fault_rate: Some(0.0),
        ..Faults::default()
    });
    assert!(converged_after.is_some(), "not converged within 3 runs");
    rig.assert_no_changes(&d, &prune).await;

    let st = rig.emu.state();
    let stats = rig.emu.stats();
    assert!(stats.injected_faults > 0);
    assert_eq!(st.roles.len(), n + 1);
    assert_eq!(st.policies.len(), n + 1);
    assert_eq!(st.projects[REGION].len(), n);
    assert!(st.roles.contains_key("bystander") && st.policies.contains_key("bystander-policy"));
    for i in 0..n {
        assert_eq!(attached(&st, &format!("r{i:02}")).len(), 2);
        assert_eq!(
            st.policies[&format!("p{i:02}")].versions.len(),
            1,
            "no duplicate version"
        );
    }
    for action in [
        "DeleteRole",
        "DeletePolicy",
        "DeleteProject",
        "DetachPolicyFromRole",
    ] {
        assert_eq!(stats.calls.get(action), None, "unintended {action}");
    }
    eprintln!(
        "chaos: converged after {converged_after:?} runs in {elapsed:?}; {} faults injected, {} throttled",
        stats.injected_faults, stats.throttled
    );
    assert!(elapsed < Duration::from_secs(30), "took {elapsed:?}");
}
