//! `live::fetch` against the emulator: it fills every field the planner needs, costs exactly
//! the minimum-call formula of `src/live/fetch.rs` (checked against the emulator's per-action
//! counts), pages through large accounts, and names the action and address when a read fails.

use std::collections::BTreeMap;

use immctl::cloud::ram::{CreatePolicyRequest, CreateRoleRequest};
use immctl::emulator::{EmulatorOptions, FailNext, Faults, State};
use immctl::live::{self, OWNER_TAG_KEY, Scope};
use immctl::manifest::{Desired, PolicyType, ProjectKey};
use immctl::plan::testing::{
    self, desired, desired_policy, desired_project, desired_role, policy_ref,
};
use immctl::plan::{self, PlanSettings};
use serde_json::json;

use crate::cloud_support::{REGION, Rig};

const BEIJING: &str = "cn-beijing";

/// Two policies, two roles (custom + System attachments), projects in two regions.
pub fn fleet() -> Desired {
    let mut write = desired_policy("media-write");
    write.document = testing::allow("oss:PutObject", "acs:oss:*:*:media/*");
    let svc = desired_role(
        "media-svc",
        &[
            policy_ref(PolicyType::Custom, "media-read"),
            policy_ref(PolicyType::Custom, "media-write"),
            policy_ref(PolicyType::System, "AliyunOSSReadOnlyAccess"),
        ],
    );
    let ops = desired_role(
        "ops-svc",
        &[policy_ref(PolicyType::System, "ReadOnlyAccess")],
    );
    let media = desired_project("media", "media-svc");
    let mut archive = desired_project("archive", "ops-svc");
    archive.region = BEIJING.to_string();
    desired(
        vec![desired_policy("media-read"), write],
        vec![svc, ops],
        vec![media, archive],
    )
}

fn trust_text() -> String {
    testing::trust("imm.aliyuncs.com").to_wire()
}

/// Resources immctl must not read in full (unowned, undeclared) plus one it must (owned,
/// undeclared), made through the API like a human would.
async fn add_noise(rig: &Rig) {
    let c = &rig.client;
    c.create_role(&CreateRoleRequest {
        role_name: "legacy".into(),
        assume_role_policy_document: trust_text(),
        ..Default::default()
    })
    .await
    .unwrap();
    c.create_role(&CreateRoleRequest {
        role_name: "orphan".into(),
        assume_role_policy_document: trust_text(),
        tags: BTreeMap::from([(OWNER_TAG_KEY.into(), "default".into())]),
        ..Default::default()
    })
    .await
    .unwrap();
    c.create_policy(&CreatePolicyRequest {
        policy_name: "legacy-policy".into(),
        policy_document: testing::allow("oss:GetObject", "*").to_wire(),
        ..Default::default()
    })
    .await
    .unwrap();
    c.create_project(
        REGION,
        &immctl::cloud::imm::ProjectRequest {
            project_name: "other".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
}

/// The formula of `src/live/fetch.rs`, computed from the emulator's state.
fn expected_calls(state: &State, scope: &Scope) -> BTreeMap<String, u64> {
    let pages = |n: usize, size: usize| n.div_ceil(size).max(1) as u64;
    let owned = |tags: &BTreeMap<String, String>| tags.get(OWNER_TAG_KEY) == Some(&scope.owner);
    let system_count = {
        // Built-in System policies plus the state's extra ones.
        let mut names: Vec<String> = SYSTEM_POLICIES.iter().map(|s| s.to_string()).collect();
        names.extend(state.system_policies.keys().cloned());
        names.sort();
        names.dedup();
        names.len()
    };
    let rs = state
        .roles
        .iter()
        .filter(|(n, r)| !n.starts_with("Aliyun") && (scope.roles.contains(*n) || owned(&r.tags)))
        .count() as u64;
    let cs = state
        .policies
        .iter()
        .filter(|(n, p)| scope.policies.contains(*n) || owned(&p.tags))
        .count() as u64;
    let ss = scope
        .system_policies
        .iter()
        .filter(|n| SYSTEM_POLICIES.contains(&n.as_str()) || state.system_policies.contains_key(*n))
        .count() as u64;
    let mut m = BTreeMap::new();
    m.insert("ListRoles".to_string(), pages(state.roles.len(), 1000));
    m.insert(
        "ListPolicies".to_string(),
        pages(state.policies.len() + system_count, 1000),
    );
    m.insert(
        "ListProjects".to_string(),
        scope
            .regions
            .iter()
            .map(|g| pages(state.projects.get(g).map_or(0, |m| m.len()), 200))
            .sum(),
    );
    for (k, v) in [
        ("GetRole", rs),
        ("ListPoliciesForRole", rs),
        ("ListPolicyVersions", cs),
        ("GetPolicy", ss),
        ("GetCallerIdentity", u64::from(state.roles.is_empty())),
    ] {
        m.insert(k.to_string(), v);
    }
    m.retain(|_, v| *v > 0);
    m
}

/// The emulator's built-in System policies (src/emulator/system.rs).
const SYSTEM_POLICIES: &[&str] = &[
    "AdministratorAccess",
    "ReadOnlyAccess",
    "AliyunIMMFullAccess",
    "AliyunIMMReadOnlyAccess",
    "AliyunIMMDefaultRolePolicy",
    "AliyunOSSFullAccess",
    "AliyunOSSReadOnlyAccess",
    "AliyunMNSFullAccess",
    "AliyunSTSAssumeRoleAccess",
    "AliyunRAMFullAccess",
    "AliyunRAMReadOnlyAccess",
];

#[tokio::test]
async fn a_no_op_reconcile_costs_exactly_the_minimum_call_formula() {
    let rig = Rig::empty().await;
    let d = fleet();
    let settings = PlanSettings::default();
    rig.converge(&d, &settings).await;
    add_noise(&rig).await;

    rig.emu.reset_stats();
    let scope = Scope::from_desired(&d, "default", REGION);
    let live = live::fetch(&rig.client, &scope).await.unwrap();
    let stats = rig.emu.stats();
    assert_eq!(
        SYSTEM_POLICIES.len(),
        live.policy_names
            .iter()
            .filter(|p| p.policy_type == PolicyType::System)
            .count(),
        "the built-in System policy list above is out of date"
    );
    let want = expected_calls(&rig.emu.state(), &scope);
    assert_eq!(stats.calls, want, "per-action calls of one fetch");
    // Spelled out for this account: 4 roles (2 declared, 1 owned, 1 unowned), 3 custom
    // policies (2 declared), 2 regions, 2 System policies named by declared roles.
    assert_eq!(
        want,
        BTreeMap::from([
            ("GetPolicy".to_string(), 2),
            ("GetRole".to_string(), 3),
            ("ListPolicies".to_string(), 1),
            ("ListPoliciesForRole".to_string(), 3),
            ("ListPolicyVersions".to_string(), 2),
            ("ListProjects".to_string(), 2),
            ("ListRoles".to_string(), 1),
        ])
    );
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
    // And the plan made from it is empty (the noise only draws findings).
    let plan = plan::diff(&d, &live, &settings);
    assert!(plan.is_empty(), "{:#?}", plan.changes);
    assert!(
        plan.findings
            .iter()
            .any(|f| f.code == "P008" && f.address.as_str() == "ram_role.orphan")
    );
}

#[tokio::test]
async fn fetch_fills_every_field_the_planner_and_lints_need() {
    let rig = Rig::start(EmulatorOptions {
        state: Some(State {
            imm_default_role_authorized: true,
            ..State::default()
        }),
        ..EmulatorOptions::default()
    })
    .await;
    let d = fleet();
    rig.converge(&d, &PlanSettings::default()).await;
    add_noise(&rig).await;
    let live = rig.fetch(&d, "default").await;

    assert_eq!(live.account_id.as_deref(), Some(testing::ACCOUNT));
    for n in [
        "media-svc",
        "ops-svc",
        "legacy",
        "orphan",
        "AliyunIMMDefaultRole",
    ] {
        assert!(live.role_names.contains(n), "role_names lacks {n}");
    }
    // Read in full: declared and owned; not the unowned one nor the Aliyun one.
    assert_eq!(
        live.roles.keys().map(String::as_str).collect::<Vec<_>>(),
        ["media-svc", "ops-svc", "orphan"]
    );
    let svc = &live.roles["media-svc"];
    assert_eq!(svc.trust_policy, testing::trust("imm.aliyuncs.com"));
    assert_eq!(svc.description, "media-svc role");
    assert_eq!(svc.max_session_duration, 3600);
    assert_eq!(
        svc.arn,
        format!("acs:ram::{}:role/media-svc", testing::ACCOUNT)
    );
    assert_eq!(svc.attachments, d.roles["media-svc"].policies);
    assert_eq!(
        svc.tags.get(OWNER_TAG_KEY).map(String::as_str),
        Some("default")
    );
    assert!(!svc.service_linked);

    assert_eq!(
        live.policies.keys().map(String::as_str).collect::<Vec<_>>(),
        ["media-read", "media-write"]
    );
    let p = &live.policies["media-write"];
    assert_eq!(p.document, d.policies["media-write"].document);
    assert_eq!(p.default_version, "v1");
    assert_eq!(p.versions.len(), 1);
    assert!(p.versions[0].is_default);
    assert_eq!(p.attachment_count, 1);
    assert_eq!(p.description, "media-write policy");
    for name in ["legacy-policy", "media-read"] {
        assert!(
            live.policy_names
                .contains(&policy_ref(PolicyType::Custom, name))
        );
    }
    assert!(
        live.policy_names
            .contains(&policy_ref(PolicyType::System, "AliyunIMMFullAccess"))
    );

    // Projects: every one listed in the scanned regions (a pruned role must not be one an
    // unmanaged project still uses), with limits and tags.
    let key = |r: &str, n: &str| ProjectKey {
        region: r.into(),
        name: n.into(),
    };
    assert_eq!(
        live.projects.keys().cloned().collect::<Vec<_>>(),
        [
            key(BEIJING, "archive"),
            key(REGION, "media"),
            key(REGION, "other")
        ]
    );
    let media = &live.projects[&key(REGION, "media")];
    assert_eq!(media.service_role, "media-svc");
    assert_eq!(media.description, "media project");
    assert_eq!(media.project_queries_per_second, 100);
    assert_eq!(media.dataset_max_bind_count, 10);
    assert_eq!(
        media.tags.get(OWNER_TAG_KEY).map(String::as_str),
        Some("default")
    );
    assert_eq!(
        live.projects[&key(REGION, "other")].service_role,
        "AliyunIMMDefaultRole"
    );

    // System policy documents for the lints, only those declared roles name.
    assert_eq!(
        live.system_policy_documents
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["AliyunOSSReadOnlyAccess", "ReadOnlyAccess"]
    );
    assert_eq!(
        live.system_policy_documents["AliyunOSSReadOnlyAccess"].canonical()["Version"],
        json!("1")
    );
}

#[tokio::test]
async fn fetch_pages_through_large_accounts() {
    let mut state = State::default();
    let role = |i: usize| {
        serde_json::from_value::<immctl::emulator::state::Role>(json!({
            "assumeRolePolicyDocument": trust_text(),
            "description": format!("bulk {i}"),
        }))
        .unwrap()
    };
    for i in 0..1001 {
        state.roles.insert(format!("bulk-{i:04}"), role(i));
    }
    for i in 0..995 {
        state.policies.insert(
            format!("bulk-{i:04}"),
            serde_json::from_value(
                json!({"document": testing::allow("oss:GetObject", "*").to_wire()}),
            )
            .unwrap(),
        );
    }
    let mut projects = BTreeMap::new();
    for i in 0..201 {
        projects.insert(
            format!("bulk_{i:04}"),
            serde_json::from_value::<immctl::emulator::state::Project>(json!({})).unwrap(),
        );
    }
    state.projects.insert(REGION.to_string(), projects);
    let rig = Rig::start(EmulatorOptions {
        state: Some(state),
        ..EmulatorOptions::default()
    })
    .await;
    let d = desired(vec![], vec![], vec![]);
    let scope = Scope::from_desired(&d, "default", REGION);
    let live = live::fetch(&rig.client, &scope).await.unwrap();
    assert_eq!(live.role_names.len(), 1001);
    assert_eq!(
        live.policy_names
            .iter()
            .filter(|p| p.policy_type == PolicyType::Custom)
            .count(),
        995
    );
    assert_eq!(live.projects.len(), 201);
    assert!(live.roles.is_empty() && live.policies.is_empty());
    let stats = rig.emu.stats();
    assert_eq!(stats.calls, expected_calls(&rig.emu.state(), &scope));
    assert_eq!(stats.calls["ListRoles"], 2);
    assert_eq!(
        stats.calls["ListPolicies"], 2,
        "995 custom + 11 System > 1000"
    );
    assert_eq!(stats.calls["ListProjects"], 2);
}

#[tokio::test]
async fn an_account_without_roles_asks_sts_for_its_id() {
    let rig = Rig::empty().await;
    let d = desired(vec![], vec![], vec![]);
    let live = rig.fetch(&d, "default").await;
    assert_eq!(live.account_id.as_deref(), Some(testing::ACCOUNT));
    assert_eq!(rig.emu.stats().calls.get("GetCallerIdentity"), Some(&1));
}

#[tokio::test]
async fn a_failed_read_names_the_action_the_address_the_code_and_the_request_id() {
    let rig = Rig::empty().await;
    let d = fleet();
    rig.converge(&d, &PlanSettings::default()).await;
    rig.emu.set_faults(Faults {
        fail_next: Some(vec![FailNext {
            action: "ListPoliciesForRole".into(),
            code: "NoPermission".into(),
            count: 5,
            status: Some(403),
            message: Some("You are not authorized to do this action.".into()),
        }]),
        ..Faults::default()
    });
    let scope = Scope::from_desired(&d, "default", REGION);
    let err = live::fetch(&rig.client, &scope).await.unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("ListPoliciesForRole ram_role.")
            && text.contains(": 403 NoPermission: You are not authorized")
            && text.contains("(RequestId "),
        "{text}"
    );
    assert_eq!(err.cloud().and_then(|e| e.code()), Some("NoPermission"));

    // A failure while other reads are in flight stops them and reports that one failure.
    rig.emu.set_faults(Faults {
        latency_ms: Some(30),
        fail_next: Some(vec![FailNext {
            action: "GetRole".into(),
            code: "NoPermission".into(),
            count: 1,
            status: Some(403),
            message: None,
        }]),
        ..Faults::default()
    });
    let err = live::fetch(&rig.client, &scope).await.unwrap_err();
    assert!(err.to_string().starts_with("GetRole ram_role."), "{err}");
}

#[tokio::test]
async fn transient_faults_during_fetch_are_retried_by_the_client() {
    let rig = Rig::empty().await;
    let d = fleet();
    rig.converge(&d, &PlanSettings::default()).await;
    let before = rig.fetch(&d, "default").await;
    rig.emu.set_faults(Faults {
        fail_next: Some(vec![
            FailNext {
                action: "GetRole".into(),
                code: "ServiceUnavailable".into(),
                count: 2,
                status: None,
                message: None,
            },
            FailNext {
                action: "ListRoles".into(),
                code: "Drop".into(),
                count: 1,
                status: None,
                message: None,
            },
            FailNext {
                action: "ListPolicyVersions".into(),
                code: "Throttling.User".into(),
                count: 1,
                status: None,
                message: None,
            },
        ]),
        ..Faults::default()
    });
    let after = rig.fetch(&d, "default").await;
    assert_eq!(before, after);
}

/// Issue 11: the per-resource reads of roles (`GetRole`, `ListPoliciesForRole`) and of
/// policies (`ListPolicyVersions`) draw on different quotas, so they run side by side: the
/// policies' reads do not wait until the roles' have (nearly) all started. 48 owned roles and
/// 48 owned policies, more than the fetch's 32 reads in flight, with the client's buckets at a
/// fifth of the quotas (19/s per action): by the time 10 `GetRole` have reached the emulator,
/// so have several `ListPolicyVersions` (with one pool of slots for both, the first 32 roles
/// would take every slot and none would have). An order check, not a timing one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_and_policy_reads_run_side_by_side_on_their_own_quotas() {
    let mut state = State::default();
    let owned = json!({ OWNER_TAG_KEY: "default" });
    for i in 0..48 {
        state.roles.insert(
            format!("owned-{i:02}"),
            serde_json::from_value(json!({
                "assumeRolePolicyDocument": trust_text(),
                "tags": owned,
            }))
            .unwrap(),
        );
        state.policies.insert(
            format!("owned-{i:02}"),
            serde_json::from_value(json!({
                "document": testing::allow("oss:GetObject", "*").to_wire(),
                "tags": owned,
            }))
            .unwrap(),
        );
    }
    let emu = immctl::emulator::spawn(EmulatorOptions {
        state: Some(state),
        ..EmulatorOptions::default()
    })
    .await
    .unwrap();
    let client = crate::cloud_support::client(&emu.endpoint(), 0.2);
    let d = desired(vec![], vec![], vec![]);
    let scope = Scope::from_desired(&d, "default", REGION);
    let fetch = tokio::spawn(async move { live::fetch(&client, &scope).await });
    let count = |s: &immctl::emulator::Stats, a: &str| s.calls.get(a).copied().unwrap_or(0);
    let at_ten = loop {
        let s = emu.stats();
        if count(&s, "GetRole") >= 10 || fetch.is_finished() {
            break s;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    let live = fetch.await.unwrap().unwrap();
    eprintln!(
        "at {} GetRole: {} ListPolicyVersions",
        count(&at_ten, "GetRole"),
        count(&at_ten, "ListPolicyVersions")
    );
    assert_eq!((live.roles.len(), live.policies.len()), (48, 48));
    assert!(
        count(&at_ten, "ListPolicyVersions") >= 4,
        "when {} GetRole had arrived, only {} ListPolicyVersions had",
        count(&at_ten, "GetRole"),
        count(&at_ten, "ListPolicyVersions")
    );
}
