//! Executor tests against the in-memory fake (`fake.rs`), with tokio's clock paused so retries
//! and consistency timeouts cost no real time.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::fake::FakeCloud;
use super::*;
use crate::manifest::{Address, PolicyRef, PolicyType, ProjectKey, ProjectLimits, Tags};
use crate::plan::{Action, Change, FORMAT_VERSION, Op, Plan, Reason, TagResourceType};

fn owner_tags() -> Tags {
    Tags::from([("immctl-owner".to_string(), "default".to_string())])
}

fn custom(name: &str) -> PolicyRef {
    PolicyRef {
        policy_type: PolicyType::Custom,
        name: name.into(),
    }
}

fn key(name: &str) -> ProjectKey {
    ProjectKey {
        region: "cn-hangzhou".into(),
        name: name.into(),
    }
}

fn change(address: Address, action: Action, depends_on: &[Address], ops: Vec<Op>) -> Change {
    Change {
        address,
        action,
        reasons: vec![Reason {
            code: if action == Action::Delete {
                "prune".into()
            } else {
                "missing".into()
            },
            message: "test".into(),
        }],
        before: (action != Action::Create).then(|| json!({"tags": {"immctl-owner": "default"}})),
        after: None,
        live_fingerprint: None,
        depends_on: depends_on.to_vec(),
        ops,
    }
}

fn create_policy(name: &str) -> Change {
    change(
        Address::policy(name),
        Action::Create,
        &[],
        vec![Op::CreatePolicy {
            name: name.into(),
            description: None,
            document: r#"{"Version":"1","Statement":[]}"#.into(),
            tags: owner_tags(),
        }],
    )
}

fn create_role(name: &str) -> Change {
    change(
        Address::role(name),
        Action::Create,
        &[],
        vec![Op::CreateRole {
            name: name.into(),
            description: None,
            max_session_duration: 3600,
            trust_policy: r#"{"Version":"1","Statement":[]}"#.into(),
            tags: owner_tags(),
        }],
    )
}

fn attach(role: &str, policy: &str) -> Change {
    let p = custom(policy);
    change(
        Address::attachment(role, &p),
        Action::Create,
        &[Address::role(role), Address::policy(policy)],
        vec![Op::AttachPolicyToRole {
            role: role.into(),
            policy: p,
        }],
    )
}

fn create_project(name: &str, role: &str) -> Change {
    change(
        Address::project(&key(name)),
        Action::Create,
        &[Address::role(role)],
        vec![Op::CreateProject {
            key: key(name),
            service_role: role.into(),
            description: None,
            template_id: None,
            limits: ProjectLimits::default(),
            tags: owner_tags(),
        }],
    )
}

fn delete_role(name: &str) -> Change {
    change(
        Address::role(name),
        Action::Delete,
        &[],
        vec![Op::DeleteRole { name: name.into() }],
    )
}

fn plan(changes: Vec<Change>) -> Plan {
    Plan {
        format_version: FORMAT_VERSION,
        settings: crate::plan::PlanSettings::default(),
        changes,
        findings: vec![],
        manifest_digest: "d".into(),
        manifest_files: BTreeMap::new(),
        live_fingerprints: BTreeMap::new(),
        expanded_from: BTreeMap::new(),
        default_region: None,
        account_id: None,
    }
}

async fn run(plan: &Plan, cloud: &FakeCloud, opts: &ExecuteOptions) -> (ApplyReport, Vec<Event>) {
    let mut events = Vec::new();
    let report = execute(plan, cloud, opts, &mut |e| events.push(e)).await;
    (report, events)
}

fn position(calls: &[String], call: &str) -> usize {
    calls
        .iter()
        .position(|c| c == call)
        .unwrap_or_else(|| panic!("{call} not in {calls:?}"))
}

#[tokio::test(start_paused = true)]
async fn dependents_start_only_after_what_they_depend_on_succeeded() {
    let cloud = FakeCloud::new().with_latency(Duration::from_millis(50));
    let p = plan(vec![
        create_policy("p"),
        create_role("r"),
        attach("r", "p"),
        create_project("media", "r"),
    ]);
    let (report, events) = run(&p, &cloud, &ExecuteOptions::default()).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.done(), 4);

    let calls = cloud.calls();
    let attach_at = position(&calls, "AttachPolicyToRole r/Custom/p");
    assert!(position(&calls, "CreatePolicy p") < attach_at);
    assert!(position(&calls, "CreateRole r") < attach_at);
    assert!(position(&calls, "CreateRole r") < position(&calls, "CreateProject cn-hangzhou/media"));
    // The two roots ran side by side.
    assert_eq!(cloud.state().max_in_flight, 2);

    // Each change: Started, then OpDone, then Done.
    let attach_addr = Address::attachment("r", &custom("p"));
    let mine: Vec<String> = events
        .iter()
        .filter(|e| match e {
            Event::Started { address, .. }
            | Event::OpDone { address, .. }
            | Event::Done { address } => *address == attach_addr,
            _ => false,
        })
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        mine,
        [
            "ram_role_policy.r/Custom/p: creating...",
            "ram_role_policy.r/Custom/p: AttachPolicyToRole: ok",
            "ram_role_policy.r/Custom/p: done",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn ops_of_one_change_run_in_order_and_dependencies_outside_the_plan_are_met() {
    let cloud = FakeCloud::new();
    cloud.add_policy("p", 5);
    let rotate = change(
        Address::policy("p"),
        Action::Update,
        &[Address::role("not-in-plan")],
        vec![
            Op::DeletePolicyVersion {
                name: "p".into(),
                version_id: "v1".into(),
            },
            Op::CreatePolicyVersion {
                name: "p".into(),
                document: "{}".into(),
            },
            Op::UpdatePolicyDescription {
                name: "p".into(),
                description: "d".into(),
            },
        ],
    );
    let (report, _) = run(&plan(vec![rotate]), &cloud, &ExecuteOptions::default()).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(
        cloud.calls(),
        [
            "DeletePolicyVersion p",
            "CreatePolicyVersion p",
            "UpdatePolicyDescription p"
        ]
    );
    let versions: Vec<(u32, bool)> = cloud.state().policies["p"].versions.clone();
    assert_eq!(
        versions,
        [(2, false), (3, false), (4, false), (5, false), (6, true)]
    );
}

#[tokio::test(start_paused = true)]
async fn concurrency_is_bounded_by_max_concurrency() {
    let cloud = FakeCloud::new().with_latency(Duration::from_millis(100));
    let changes = (0..10).map(|i| create_role(&format!("r{i}"))).collect();
    let opts = ExecuteOptions {
        max_concurrency: 3,
        ..Default::default()
    };
    let (report, _) = run(&plan(changes), &cloud, &opts).await;
    assert_eq!(report.done(), 10);
    assert_eq!(cloud.state().max_in_flight, 3);
    // Ready changes start in plan order.
    let created: Vec<String> = cloud.calls_of("CreateRole");
    let expected: Vec<String> = (0..10).map(|i| format!("CreateRole r{i}")).collect();
    assert_eq!(created, expected);
}

/// Issue 11: a backlog waiting on one action's quota must not hold every slot while other
/// actions could run on theirs. 20 policies, 20 roles and 20 attachments (each after its role
/// and policy) under the documented quotas (the client's buckets: 19/s, 19/s and 9/s), 4
/// slots: the attachments, the slowest lane, start as soon as their first role and policy
/// exist and run back to back: ~0.1 s + 19 / 9 s. Started in plan order instead (every
/// policy, then every role, then the attachments), it takes over 3 s.
#[tokio::test(start_paused = true)]
async fn slots_are_shared_across_actions_so_every_quota_is_used_at_once() {
    let cloud = FakeCloud::new()
        .with_latency(Duration::from_millis(20))
        .with_quotas(crate::cloud::RateLimits::default());
    let mut changes = Vec::new();
    for i in 0..20 {
        changes.push(create_policy(&format!("p{i:02}")));
    }
    for i in 0..20 {
        changes.push(create_role(&format!("r{i:02}")));
    }
    for i in 0..20 {
        changes.push(attach(&format!("r{i:02}"), &format!("p{i:02}")));
    }
    let opts = ExecuteOptions {
        max_concurrency: 4,
        ..Default::default()
    };
    let start = tokio::time::Instant::now();
    let (report, _) = run(&plan(changes), &cloud, &opts).await;
    let took = start.elapsed();
    eprintln!("60 changes over three quotas in {took:?}");
    assert!(report.is_success(), "{report:?}");
    assert_eq!(report.done(), 60);
    assert!(
        took < Duration::from_millis(2400),
        "the attach lane waited for the other lanes: {took:?}"
    );
    assert!(cloud.state().max_in_flight <= 4);
    // The first role went out with the first policies, not after all of them.
    let calls = cloud.calls();
    assert!(position(&calls, "CreateRole r00") < 4, "{calls:?}");
    // Within a lane, plan order.
    let roles: Vec<String> = cloud.calls_of("CreateRole");
    let expected: Vec<String> = (0..20).map(|i| format!("CreateRole r{i:02}")).collect();
    assert_eq!(roles, expected);
}

#[tokio::test(start_paused = true)]
async fn a_failure_skips_its_dependents_and_reports_the_root_cause_once() {
    let cloud = FakeCloud::new();
    cloud.fail_next("CreatePolicy", "MalformedPolicyDocument", 400, 1);
    let mut second = attach("r", "p");
    second.address = Address("ram_role_policy.r/Custom/p2".into());
    second.depends_on = vec![Address::attachment("r", &custom("p"))];
    second.ops = vec![Op::TagResources {
        resource_type: TagResourceType::Role,
        name: "r".into(),
        tags: owner_tags(),
    }];
    let p = plan(vec![
        create_policy("p"),
        create_role("r"),
        attach("r", "p"),
        second,
        create_role("independent"),
    ]);
    let (report, events) = run(&p, &cloud, &ExecuteOptions::default()).await;

    assert!(!report.is_success());
    assert_eq!(report.failures.len(), 1);
    let root = &report.failures[0];
    assert_eq!(root.address, Address::policy("p"));
    assert_eq!(root.error.code, "MalformedPolicyDocument");
    assert_eq!(root.error.request_id.as_deref(), Some("REQ-1"));
    assert_eq!(
        root.to_string(),
        "CreatePolicy ram_policy.p: 400 MalformedPolicyDocument: injected (RequestId REQ-1)"
    );
    // Both dependents name the root, not the link in between.
    let skipped: Vec<String> = events
        .iter()
        .filter(|e| matches!(e, Event::Skipped { .. }))
        .map(|e| e.to_string())
        .collect();
    assert_eq!(
        skipped,
        [
            "ram_role_policy.r/Custom/p: skipped because ram_policy.p failed",
            "ram_role_policy.r/Custom/p2: skipped because ram_policy.p failed",
        ]
    );
    // Independent changes went on.
    assert_eq!(report.done(), 2);
    assert!(cloud.state().roles.contains_key("independent"));
    assert_eq!(cloud.calls_of("AttachPolicyToRole"), Vec::<String>::new());
    assert_eq!(report.summary(), "Apply: 2 done, 1 failed, 2 skipped.");
}

#[tokio::test(start_paused = true)]
async fn the_next_run_finishes_what_a_failed_run_left() {
    let cloud = FakeCloud::new();
    // Exactly as many as the first run tries (1 + transient_retries).
    cloud.fail_next("CreatePolicy", "InternalError", 500, 4);
    let p = plan(vec![create_policy("p"), create_role("r"), attach("r", "p")]);
    let (first, _) = run(&p, &cloud, &ExecuteOptions::default()).await;
    assert!(!first.is_success());
    assert_eq!(first.failures[0].error.kind, OpErrorKind::Transient);
    // The re-plan would only contain what is missing.
    let (second, _) = run(
        &plan(vec![create_policy("p"), attach("r", "p")]),
        &cloud,
        &ExecuteOptions::default(),
    )
    .await;
    assert!(second.is_success(), "{second:?}");
    assert!(cloud.state().roles["r"].attachments.contains(&custom("p")));
}

#[tokio::test(start_paused = true)]
async fn an_attach_that_exists_is_success_only_after_a_read_confirms_it() {
    let cloud = FakeCloud::new();
    cloud.add_role("r", &[custom("p")]);
    cloud.add_policy("p", 1);
    let (report, events) = run(
        &plan(vec![attach("r", "p")]),
        &cloud,
        &ExecuteOptions::default(),
    )
    .await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(
        cloud.calls(),
        [
            "AttachPolicyToRole r/Custom/p",
            "ConfirmAttachPolicyToRole r/Custom/p"
        ]
    );
    assert!(events.iter().any(|e| matches!(
        e,
        Event::OpDone {
            already_done: true,
            ..
        }
    )));
}

#[tokio::test(start_paused = true)]
async fn a_delete_answered_not_found_while_the_resource_still_exists_is_a_failure() {
    let cloud = FakeCloud::new();
    cloud.add_role("r", &[]);
    // A lying (or stale) answer: the role is still there.
    cloud.fail_next("DeleteRole", "EntityNotExist.Role", 404, 1);
    let started = tokio::time::Instant::now();
    let (report, _) = run(
        &plan(vec![delete_role("r")]),
        &cloud,
        &ExecuteOptions::default(),
    )
    .await;
    assert!(!report.is_success());
    let e = &report.failures[0].error;
    assert_eq!(e.kind, OpErrorKind::Unconfirmed);
    assert!(e.message.contains("EntityNotExist.Role"), "{e}");
    assert!(e.message.contains("REQ-1"), "{e}");
    assert!(cloud.state().roles.contains_key("r"));
    // It polled the read for the consistency window, no longer.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(30) && waited < Duration::from_secs(40),
        "{waited:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_delete_whose_reply_was_lost_is_confirmed_gone_on_retry() {
    let cloud = FakeCloud::new();
    cloud.add_role("r", &[]);
    cloud.lose_reply_next("DeleteRole", "ServiceUnavailable", 503, 1);
    let (report, events) = run(
        &plan(vec![delete_role("r")]),
        &cloud,
        &ExecuteOptions::default(),
    )
    .await;
    assert!(report.is_success(), "{report:?}");
    assert!(!cloud.state().roles.contains_key("r"));
    assert_eq!(
        cloud.calls(),
        ["DeleteRole r", "DeleteRole r", "ConfirmDeleteRole r"]
    );
    assert!(events.iter().any(|e| matches!(e, Event::Retrying { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_just_created_role_not_yet_visible_to_attach_and_imm_is_retried() {
    let cloud = FakeCloud::new();
    cloud.invisible_after_create(3);
    let p = plan(vec![
        create_policy("p"),
        create_role("r"),
        attach("r", "p"),
        create_project("media", "r"),
    ]);
    let (report, events) = run(&p, &cloud, &ExecuteOptions::default()).await;
    assert!(report.is_success(), "{report:?}");
    let retries = events
        .iter()
        .filter(|e| matches!(e, Event::Retrying { .. }))
        .count();
    // Three invisible calls on the role are shared by attach and CreateProject, three more on the policy.
    assert!(retries >= 3, "{retries}");
    assert_eq!(cloud.state().projects[&key("media")].service_role, "r");
}

#[tokio::test(start_paused = true)]
async fn not_yet_visible_retries_stop_at_the_consistency_timeout() {
    let cloud = FakeCloud::new();
    cloud.invisible_after_create(u32::MAX);
    let opts = ExecuteOptions {
        consistency_timeout: Duration::from_secs(10),
        ..Default::default()
    };
    let started = tokio::time::Instant::now();
    let (report, _) = run(
        &plan(vec![create_policy("p"), create_role("r"), attach("r", "p")]),
        &cloud,
        &opts,
    )
    .await;
    let waited = started.elapsed();
    assert_eq!(report.failures.len(), 1);
    assert_eq!(report.failures[0].error.code, "EntityNotExist.Role");
    assert!(
        waited >= Duration::from_secs(10) && waited < Duration::from_secs(16),
        "{waited:?}"
    );
    let attempts = cloud.calls_of("AttachPolicyToRole").len();
    assert!((3..=20).contains(&attempts), "{attempts}");
}

#[tokio::test(start_paused = true)]
async fn transient_errors_are_retried_a_bounded_number_of_times_and_permanent_ones_never() {
    let cloud = FakeCloud::new();
    cloud.fail_next("CreateRole", "Throttling.User", 400, 2);
    cloud.fail_next("CreatePolicy", "Throttling.User", 400, 100);
    let mut forbidden = create_role("forbidden");
    forbidden.ops = vec![Op::UpdateRole {
        name: "forbidden".into(),
        trust_policy: None,
        description: Some("x".into()),
        max_session_duration: None,
    }];
    forbidden.action = Action::Update;
    cloud.fail_next("UpdateRole", "NoPermission", 403, 1);
    let (report, _) = run(
        &plan(vec![create_role("r"), create_policy("p"), forbidden]),
        &cloud,
        &ExecuteOptions::default(),
    )
    .await;
    assert_eq!(report.done(), 1);
    assert_eq!(cloud.calls_of("CreateRole").len(), 3);
    // 1 + transient_retries (3).
    assert_eq!(cloud.calls_of("CreatePolicy").len(), 4);
    assert_eq!(cloud.calls_of("UpdateRole").len(), 1);
    let codes: Vec<&str> = report
        .failures
        .iter()
        .map(|f| f.error.code.as_str())
        .collect();
    assert_eq!(codes.len(), 2);
    assert!(codes.contains(&"Throttling.User") && codes.contains(&"NoPermission"));
}

#[tokio::test(start_paused = true)]
async fn a_service_role_change_is_confirmed_by_reading_the_project_back() {
    let cloud = FakeCloud::new();
    cloud.add_role("r", &[]);
    cloud
        .state()
        .projects
        .insert(key("media"), Default::default());
    cloud.stale_project_reads(2);
    let update = change(
        Address::project(&key("media")),
        Action::Update,
        &[],
        vec![Op::UpdateProject {
            key: key("media"),
            service_role: Some("r".into()),
            description: None,
            template_id: None,
            limits: ProjectLimits::default(),
            tags: None,
        }],
    );
    let (report, _) = run(&plan(vec![update]), &cloud, &ExecuteOptions::default()).await;
    assert!(report.is_success(), "{report:?}");
    assert_eq!(cloud.calls_of("ConfirmUpdateProject").len(), 3);
}

#[tokio::test(start_paused = true)]
async fn cancellation_lets_the_call_in_flight_finish_and_starts_nothing_more() {
    let cloud = FakeCloud::new().with_latency(Duration::from_millis(10));
    let token = CancellationToken::new();
    // Cancelled while the 3rd call is in flight.
    cloud.cancel_after(3, token.clone());
    let two_ops = |name: &str| {
        let mut c = create_role(name);
        c.ops.push(Op::TagResources {
            resource_type: TagResourceType::Role,
            name: name.into(),
            tags: owner_tags(),
        });
        c
    };
    let p = plan(vec![two_ops("a"), two_ops("b"), two_ops("c"), two_ops("d")]);
    let opts = ExecuteOptions {
        max_concurrency: 1,
        cancel: token,
        ..Default::default()
    };
    let (report, events) = run(&p, &cloud, &opts).await;
    assert_eq!(
        cloud.calls(),
        ["CreateRole a", "TagResources a", "CreateRole b"]
    );
    // The call in flight completed.
    assert!(cloud.state().roles.contains_key("b"));
    assert!(report.interrupted);
    assert!(!report.is_success());
    let statuses: Vec<ChangeStatus> = report.outcomes.iter().map(|o| o.status.clone()).collect();
    assert_eq!(
        statuses,
        [
            ChangeStatus::Done,
            ChangeStatus::Interrupted { ops_done: 1 },
            ChangeStatus::NotStarted,
            ChangeStatus::NotStarted,
        ]
    );
    assert!(
        events
            .iter()
            .any(|e| e.to_string() == "ram_role.b: interrupted after 1 of 2 operations")
    );
    assert!(
        report.summary().ends_with("interrupted (3 not finished)."),
        "{}",
        report.summary()
    );
    // What was left is listed by address, not only counted.
    assert_eq!(
        report.unfinished(),
        [
            "not finished: ram_role.b (create, stopped after 1 of its API calls)",
            "not started: ram_role.c (create)",
            "not started: ram_role.d (create)",
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn cancellation_during_a_retry_wait_stops_without_another_call() {
    let cloud = FakeCloud::new();
    cloud.invisible_after_create(u32::MAX);
    let token = CancellationToken::new();
    let opts = ExecuteOptions {
        cancel: token.clone(),
        ..Default::default()
    };
    let p = plan(vec![create_policy("p"), create_role("r"), attach("r", "p")]);
    let canceller = async {
        tokio::time::sleep(Duration::from_secs(2)).await;
        token.cancel();
    };
    let ((report, _), ()) = tokio::join!(run(&p, &cloud, &opts), canceller);
    let attempts_at_cancel = cloud.calls_of("AttachPolicyToRole").len();
    assert!(report.interrupted);
    assert!(report.failures.is_empty());
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(
        cloud.calls_of("AttachPolicyToRole").len(),
        attempts_at_cancel
    );
}

#[tokio::test(start_paused = true)]
async fn the_prune_guard_refuses_a_delete_without_the_planners_evidence() {
    let cloud = FakeCloud::new();
    cloud.add_role("r", &[]);
    cloud.add_role("s", &[]);
    let mut no_reason = delete_role("r");
    no_reason.reasons.clear();
    let mut not_ours = delete_role("s");
    not_ours.before = Some(json!({"tags": {"immctl-owner": "someone-else"}}));
    let (report, _) = run(
        &plan(vec![no_reason, not_ours]),
        &cloud,
        &ExecuteOptions::default(),
    )
    .await;
    assert_eq!(report.failures.len(), 2);
    for f in &report.failures {
        assert_eq!(f.error.kind, OpErrorKind::Refused);
        assert_eq!(f.error.code, "Immctl.PruneGuard");
        assert_eq!(f.error.action, "DeleteRole");
    }
    assert!(cloud.calls().is_empty());
    assert_eq!(cloud.state().roles.len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_dependency_cycle_is_reported_as_a_bug_not_a_hang() {
    let cloud = FakeCloud::new();
    let mut a = create_role("a");
    a.depends_on = vec![Address::role("b")];
    let mut b = create_role("b");
    b.depends_on = vec![Address::role("a")];
    let (report, _) = run(
        &plan(vec![a, b, create_role("c")]),
        &cloud,
        &ExecuteOptions::default(),
    )
    .await;
    assert_eq!(report.done(), 1);
    assert_eq!(report.failures.len(), 2);
    assert!(
        report
            .failures
            .iter()
            .all(|f| f.error.kind == OpErrorKind::InvalidPlan)
    );
    assert!(report.failures[0].error.message.starts_with("bug:"));
}

#[tokio::test(start_paused = true)]
async fn execute_is_send_so_the_daemon_can_spawn_it() {
    let cloud = std::sync::Arc::new(FakeCloud::new());
    let p = plan(vec![create_role("r")]);
    let c2 = cloud.clone();
    let handle = tokio::spawn(async move {
        let mut n = 0;
        let report = execute(&p, &*c2, &ExecuteOptions::default(), &mut |_| n += 1).await;
        (report.is_success(), n)
    });
    assert_eq!(handle.await.unwrap(), (true, 3));
}

/// A create whose reply was lost (the cloud acted, then answered 503) is retried; the retry
/// answers "already exists", and a read that shows the resource with our tags and the planned
/// content makes it done, for each kind of create. It used to fail the change as someone
/// else's resource ("409 EntityAlreadyExists.Role") although it was our own.
#[tokio::test(start_paused = true)]
async fn a_create_whose_reply_was_lost_is_done_when_a_read_shows_it_ours() {
    for (change, action, target) in [
        (create_role("r"), "CreateRole", "r"),
        (create_policy("p"), "CreatePolicy", "p"),
        (
            create_project("media", "ReadOnlyRole"),
            "CreateProject",
            "cn-hangzhou/media",
        ),
    ] {
        let cloud = FakeCloud::new();
        cloud.add_role("ReadOnlyRole", &[]);
        cloud.lose_reply_next(action, "ServiceUnavailable", 503, 1);
        let (report, _) = run(&plan(vec![change]), &cloud, &ExecuteOptions::default()).await;
        assert!(report.is_success(), "{action}: {report:?}");
        let calls: Vec<String> = cloud
            .calls()
            .into_iter()
            .filter(|c| !c.starts_with("Confirm"))
            .collect();
        assert_eq!(
            calls,
            [
                format!("{action} {target}"),
                format!("{action} {target}"),
                format!("Created{action} {target}"),
            ],
            "{action}"
        );
    }
}

/// "Already exists" with a resource that is not the planned one (another owner's tag, or our
/// tag on other content) stays a failure with the cloud's code, read once, never retried.
#[tokio::test(start_paused = true)]
async fn a_create_that_finds_another_resource_fails_with_the_clouds_answer() {
    for other_owner in [true, false] {
        let cloud = FakeCloud::new();
        cloud.add_role("r", &[]);
        {
            let mut s = cloud.state();
            let role = s.roles.get_mut("r").unwrap();
            if other_owner {
                role.tags = Tags::from([("immctl-owner".to_string(), "another".to_string())]);
            } else {
                role.tags = owner_tags();
                role.trust_policy = "{\"Version\":\"1\",\"Statement\":[]}".into();
            }
        }
        let (report, _) = run(
            &plan(vec![create_role("r")]),
            &cloud,
            &ExecuteOptions::default(),
        )
        .await;
        assert!(!report.is_success(), "other owner {other_owner}");
        let e = &report.failures[0].error;
        assert_eq!(e.code, "EntityAlreadyExists.Role");
        assert_eq!(e.kind, OpErrorKind::AlreadyExists);
        assert_eq!(cloud.calls(), ["CreateRole r", "CreatedCreateRole r"]);
    }
}
