//! Unit tests of the planner's rules, on small fixtures. Every plan goes through `check`.

use super::*;
use crate::manifest::IMM_DEFAULT_ROLE;
use crate::plan::check::check;
use crate::plan::simulate::simulate_strict;
use crate::plan::testing::*;

fn plan(desired: &Desired, live: &Live, settings: &PlanSettings) -> Plan {
    let p = diff(desired, live, settings);
    if let Err(errs) = check(&p) {
        panic!("plan violates invariants: {errs:#?}\n{p:#?}");
    }
    p
}

fn addrs(p: &Plan) -> Vec<(String, Action)> {
    p.changes
        .iter()
        .map(|c| (c.address.to_string(), c.action))
        .collect()
}

fn codes_of(p: &Plan) -> Vec<&str> {
    p.findings.iter().map(|f| f.code.as_str()).collect()
}

fn reasons_of<'a>(p: &'a Plan, address: &str) -> Vec<&'a str> {
    p.changes
        .iter()
        .find(|c| c.address.as_str() == address)
        .map(|c| c.reasons.iter().map(|r| r.code.as_str()).collect())
        .unwrap_or_default()
}

fn sample() -> Desired {
    desired(
        vec![desired_policy("media-read")],
        vec![desired_role(
            "media-role",
            &[
                policy_ref(PolicyType::Custom, "media-read"),
                policy_ref(PolicyType::System, "AliyunMNSFullAccess"),
            ],
        )],
        vec![desired_project("media", "media-role")],
    )
}

#[test]
fn creates_everything_parents_first() {
    let d = sample();
    let p = plan(&d, &empty_live(), &settings());
    assert_eq!(
        addrs(&p),
        vec![
            ("ram_policy.media-read".into(), Action::Create),
            ("ram_role.media-role".into(), Action::Create),
            (
                "ram_role_policy.media-role/Custom/media-read".into(),
                Action::Create
            ),
            (
                "ram_role_policy.media-role/System/AliyunMNSFullAccess".into(),
                Action::Create
            ),
            ("imm_project.cn-hangzhou/media".into(), Action::Create),
        ]
    );
    let attach = &p.changes[2];
    assert_eq!(
        attach.depends_on,
        vec![Address::policy("media-read"), Address::role("media-role")]
    );
    // The project waits for its role and for the role's attachments (it uses the role at
    // once, and must not run with part of its permissions).
    assert_eq!(
        p.changes[4].depends_on,
        vec![
            Address::role("media-role"),
            Address("ram_role_policy.media-role/Custom/media-read".into()),
            Address("ram_role_policy.media-role/System/AliyunMNSFullAccess".into()),
        ]
    );
    // Every create carries the owner tag.
    match &p.changes[0].ops[0] {
        Op::CreatePolicy { tags, .. } => assert_eq!(tags, &owned("default")),
        other => panic!("unexpected {other:?}"),
    }
    // After apply, nothing is left to do.
    let after = simulate_strict(&p, &empty_live()).expect("plan applies");
    assert!(plan(&d, &after, &settings()).is_empty());
}

#[test]
fn desired_as_live_is_a_no_op() {
    let d = sample();
    let live = live_from_desired(&d, "default", &empty_live());
    let p = plan(&d, &live, &settings());
    assert!(p.is_empty(), "{p:#?}");
    assert!(p.findings.is_empty(), "{:#?}", p.findings);
}

#[test]
fn semantic_document_equality_makes_no_diff() {
    let d = sample();
    let mut live = live_from_desired(&d, "default", &empty_live());
    live.policies.get_mut("media-read").unwrap().document = PolicyDocument(serde_json::json!({
        "Statement": [{"Resource": ["acs:oss:*:*:media/*"], "Action": ["oss:GetObject"], "Effect": "Allow"}],
        "Version": "1"
    }));
    assert!(plan(&d, &live, &settings()).is_empty());
}

#[test]
fn document_change_creates_a_version_and_rotates_at_five() {
    let mut d = sample();
    d.policies.get_mut("media-read").unwrap().document = allow("oss:*", "*");
    let mut live = live_from_desired(&d, "default", &empty_live());
    {
        let lp = live.policies.get_mut("media-read").unwrap();
        lp.document = allow("oss:GetObject", "*");
    }
    let p = plan(&d, &live, &settings());
    assert_eq!(reasons_of(&p, "ram_policy.media-read"), vec!["document"]);
    assert!(matches!(
        p.changes[0].ops[..],
        [Op::CreatePolicyVersion { .. }]
    ));

    let lp = live.policies.get_mut("media-read").unwrap();
    lp.versions = (1..=5)
        .map(|n| crate::live::LivePolicyVersion {
            version_id: format!("v{n}"),
            is_default: n == 2,
            create_date: String::new(),
        })
        .collect();
    lp.default_version = "v2".into();
    let p = plan(&d, &live, &settings());
    assert_eq!(
        reasons_of(&p, "ram_policy.media-read"),
        vec!["version_rotation", "document"]
    );
    assert_eq!(
        p.changes[0].ops[0],
        Op::DeletePolicyVersion {
            name: "media-read".into(),
            version_id: "v1".into()
        }
    );
    let after = simulate_strict(&p, &live).expect("rotation keeps within 5 versions");
    assert!(plan(&d, &after, &settings()).is_empty());
}

#[test]
fn unmanaged_description_is_left_alone() {
    let mut d = sample();
    d.policies.get_mut("media-read").unwrap().description = None;
    let mut live = live_from_desired(&d, "default", &empty_live());
    live.policies.get_mut("media-read").unwrap().description = "hand-written".into();
    assert!(plan(&d, &live, &settings()).is_empty());
}

#[test]
fn tags_are_authoritative_except_cloud_keys() {
    let d = sample();
    let mut live = live_from_desired(&d, "default", &empty_live());
    let tags = &mut live.roles.get_mut("media-role").unwrap().tags;
    tags.insert("acs:rm:rgId".into(), "rg-1".into());
    tags.insert("aliyun-system".into(), "x".into());
    assert!(plan(&d, &live, &settings()).is_empty());
    live.roles
        .get_mut("media-role")
        .unwrap()
        .tags
        .insert("team".into(), "x".into());
    let p = plan(&d, &live, &settings());
    assert_eq!(
        p.changes[0].ops,
        vec![Op::UntagResources {
            resource_type: TagResourceType::Role,
            name: "media-role".into(),
            keys: vec!["team".into()]
        }]
    );
}

#[test]
fn unowned_resource_is_reported_not_changed() {
    let d = sample();
    let mut live = live_from_desired(&d, "default", &empty_live());
    let r = live.roles.get_mut("media-role").unwrap();
    r.tags.clear();
    r.description = "other".into();
    r.attachments.clear();
    let p = plan(&d, &live, &settings());
    assert!(p.is_empty(), "{p:#?}");
    assert_eq!(codes_of(&p), vec![codes::UNOWNED]);
}

#[test]
fn adopt_tags_first_then_updates_in_one_change() {
    let d = sample();
    let mut live = live_from_desired(&d, "default", &empty_live());
    let r = live.roles.get_mut("media-role").unwrap();
    r.tags.clear();
    r.description = "other".into();
    r.attachments
        .insert(policy_ref(PolicyType::System, "AliyunOSSReadOnlyAccess"));
    let s = PlanSettings {
        adopt: true,
        ..settings()
    };
    let p = plan(&d, &live, &s);
    assert_eq!(
        addrs(&p),
        vec![
            ("ram_role.media-role".into(), Action::Adopt),
            (
                "ram_role_policy.media-role/System/AliyunOSSReadOnlyAccess".into(),
                Action::Delete
            ),
        ]
    );
    assert_eq!(
        reasons_of(&p, "ram_role.media-role"),
        vec!["adopt", "tags", "description"]
    );
    assert_eq!(p.changes[1].depends_on, vec![Address::role("media-role")]);
    let after = simulate_strict(&p, &live).unwrap();
    assert!(plan(&d, &after, &settings()).is_empty());
}

#[test]
fn another_owner_needs_spec_adopt_not_the_flag() {
    let mut d = sample();
    let mut live = live_from_desired(&d, "default", &empty_live());
    live.roles.get_mut("media-role").unwrap().tags = owned("other-repo");
    let s = PlanSettings {
        adopt: true,
        ..settings()
    };
    let p = plan(&d, &live, &s);
    assert!(p.is_empty());
    assert_eq!(codes_of(&p), vec![codes::OTHER_OWNER]);

    d.roles.get_mut("media-role").unwrap().adopt = true;
    let p = plan(&d, &live, &settings());
    assert_eq!(
        addrs(&p),
        vec![("ram_role.media-role".into(), Action::Adopt)]
    );
}

#[test]
fn protected_roles_are_never_touched() {
    let mut d = sample();
    d.roles
        .insert(IMM_DEFAULT_ROLE.into(), desired_role(IMM_DEFAULT_ROLE, &[]));
    let live = live_from_desired(&sample(), "default", &empty_live());
    let p = plan(&d, &live, &settings());
    assert!(p.is_empty());
    assert_eq!(codes_of(&p), vec![codes::PROTECTED]);

    let mut d = sample();
    d.roles.get_mut("media-role").unwrap().description = Some("x".into());
    let mut live = live_from_desired(&sample(), "default", &empty_live());
    live.roles.get_mut("media-role").unwrap().service_linked = true;
    let p = plan(&d, &live, &settings());
    assert!(p.is_empty());
    assert_eq!(codes_of(&p), vec![codes::PROTECTED]);
}

#[test]
fn attachments_are_authoritative() {
    let d = sample();
    let mut live = live_from_desired(&d, "default", &empty_live());
    let r = live.roles.get_mut("media-role").unwrap();
    r.attachments
        .remove(&policy_ref(PolicyType::System, "AliyunMNSFullAccess"));
    r.attachments
        .insert(policy_ref(PolicyType::System, "AliyunOSSReadOnlyAccess"));
    let p = plan(&d, &live, &settings());
    assert_eq!(
        addrs(&p),
        vec![
            (
                "ram_role_policy.media-role/System/AliyunOSSReadOnlyAccess".into(),
                Action::Delete
            ),
            (
                "ram_role_policy.media-role/System/AliyunMNSFullAccess".into(),
                Action::Create
            ),
        ]
    );
}

#[test]
fn unknown_policy_attachment_is_an_error_finding() {
    let mut d = sample();
    d.roles
        .get_mut("media-role")
        .unwrap()
        .policies
        .insert(policy_ref(PolicyType::System, "NoSuchPolicy"));
    let p = plan(&d, &empty_live(), &settings());
    assert_eq!(codes_of(&p), vec![codes::UNKNOWN_POLICY]);
}

#[test]
fn project_fields_update_only_when_managed_and_different() {
    let mut d = sample();
    let live = live_from_desired(&d, "default", &empty_live());
    let j = d.projects.values_mut().next().unwrap();
    j.limits.engine_concurrency = Some(7);
    j.service_role = "media-role-2".into();
    d.roles
        .insert("media-role-2".into(), desired_role("media-role-2", &[]));
    let p = plan(&d, &live, &settings());
    assert_eq!(
        reasons_of(&p, "imm_project.cn-hangzhou/media"),
        vec!["service_role", "engine_concurrency"]
    );
    let c = p
        .changes
        .iter()
        .find(|c| c.address.as_str() == "imm_project.cn-hangzhou/media")
        .unwrap();
    assert_eq!(c.depends_on, vec![Address::role("media-role-2")]);
    match &c.ops[0] {
        Op::UpdateProject {
            limits,
            tags,
            description,
            ..
        } => {
            assert_eq!(limits.engine_concurrency, Some(7));
            assert_eq!(limits.project_queries_per_second, None);
            assert!(tags.is_none() && description.is_none());
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn imm_service_role_findings_are_left_to_the_lints() {
    // `crate::lint` owns the IMM* codes (default role, unknown role, default role missing):
    // the planner plans these projects and reports nothing about their roles, so no finding
    // is reported twice once the lints are appended.
    let d = desired(vec![], vec![], vec![desired_project("a", IMM_DEFAULT_ROLE)]);
    let mut bare = empty_live();
    bare.role_names.clear();
    for live in [empty_live(), bare] {
        let p = plan(&d, &live, &settings());
        assert!(codes_of(&p).is_empty(), "{:?}", p.findings);
        assert_eq!(
            addrs(&p),
            vec![("imm_project.cn-hangzhou/a".to_string(), Action::Create)]
        );
    }
    let d = desired(vec![], vec![], vec![desired_project("a", "ghost")]);
    let p = plan(&d, &empty_live(), &settings());
    assert!(codes_of(&p).is_empty(), "{:?}", p.findings);
}

fn orphaned_live() -> Live {
    // Everything of `sample()` plus an owned policy/role/project that are no longer declared.
    let mut extra = sample();
    extra.policies = [("old-policy".to_string(), desired_policy("old-policy"))].into();
    extra.roles = [(
        "old-role".to_string(),
        desired_role("old-role", &[policy_ref(PolicyType::Custom, "old-policy")]),
    )]
    .into();
    extra.projects = [(
        ProjectKey {
            region: REGION.into(),
            name: "old".into(),
        },
        desired_project("old", "old-role"),
    )]
    .into();
    let base = live_from_desired(&sample(), "default", &empty_live());
    live_from_desired(&extra, "default", &base)
}

#[test]
fn prune_deletes_children_first() {
    let live = orphaned_live();
    let s = PlanSettings {
        prune: true,
        ..settings()
    };
    let p = plan(&sample(), &live, &s);
    assert_eq!(
        addrs(&p),
        vec![
            ("imm_project.cn-hangzhou/old".into(), Action::Delete),
            (
                "ram_role_policy.old-role/Custom/old-policy".into(),
                Action::Delete
            ),
            ("ram_role.old-role".into(), Action::Delete),
            ("ram_policy.old-policy".into(), Action::Delete),
        ]
    );
    let after = simulate_strict(&p, &live).unwrap();
    assert_eq!(
        after,
        live_from_desired(&sample(), "default", &empty_live())
    );
    // Without prune: info findings only.
    let p = plan(&sample(), &live, &settings());
    assert!(p.is_empty());
    assert_eq!(codes_of(&p), vec![codes::ORPHAN; 3]);
}

#[test]
fn prune_guards_refuse_mass_and_empty() {
    let live = orphaned_live();
    let s = PlanSettings {
        prune: true,
        max_deletions: 2,
        ..settings()
    };
    let p = plan(&sample(), &live, &s);
    assert!(p.is_empty());
    assert_eq!(codes_of(&p), vec![codes::PRUNE_MASS_DELETE]);
    let s = PlanSettings {
        allow_mass_delete: true,
        ..s
    };
    assert_eq!(plan(&sample(), &live, &s).changes.len(), 4);

    let s = PlanSettings {
        prune: true,
        ..settings()
    };
    let p = plan(&Desired::default(), &live, &s);
    assert!(p.is_empty());
    assert_eq!(codes_of(&p), vec![codes::PRUNE_EMPTY]);
}

#[test]
fn retain_tag_protects_from_prune() {
    let mut d = sample();
    d.policies.get_mut("media-read").unwrap().deletion_policy = DeletionPolicy::Retain;
    let p = plan(
        &d,
        &live_from_desired(&sample(), "default", &empty_live()),
        &settings(),
    );
    assert_eq!(reasons_of(&p, "ram_policy.media-read"), vec!["tags"]);
    // Declared Retain, then removed from the manifests, the role no longer attaching it.
    let live = live_from_desired(&d, "default", &empty_live());
    let mut d2 = sample();
    d2.policies.clear();
    d2.roles
        .get_mut("media-role")
        .unwrap()
        .policies
        .remove(&policy_ref(PolicyType::Custom, "media-read"));
    let s = PlanSettings {
        prune: true,
        ..settings()
    };
    let p = plan(&d2, &live, &s);
    assert_eq!(
        addrs(&p),
        vec![(
            "ram_role_policy.media-role/Custom/media-read".into(),
            Action::Delete
        )]
    );
    assert_eq!(codes_of(&p), vec![codes::RETAINED]);
}

#[test]
fn prune_keeps_policies_attached_elsewhere_and_roles_in_use() {
    let mut live = orphaned_live();
    live.policies
        .get_mut("old-policy")
        .unwrap()
        .attachment_count += 1; // a user has it
    let mut d = sample();
    // A declared project now uses the old role.
    d.projects.values_mut().next().unwrap().service_role = "old-role".into();
    let s = PlanSettings {
        prune: true,
        ..settings()
    };
    let p = plan(&d, &live, &s);
    assert_eq!(
        addrs(&p),
        vec![
            ("imm_project.cn-hangzhou/old".into(), Action::Delete),
            ("imm_project.cn-hangzhou/media".into(), Action::Update),
        ]
    );
    assert_eq!(
        codes_of(&p),
        vec![codes::PRUNE_BLOCKED, codes::PRUNE_BLOCKED]
    );
}

#[test]
fn targets_select_changes_and_their_dependencies() {
    let d = sample();
    let s = PlanSettings {
        targets: vec![Address(
            "ram_role_policy.media-role/Custom/media-read".into(),
        )],
        ..settings()
    };
    let p = plan(&d, &empty_live(), &s);
    assert_eq!(
        addrs(&p),
        vec![
            ("ram_policy.media-read".into(), Action::Create),
            ("ram_role.media-role".into(), Action::Create),
            (
                "ram_role_policy.media-role/Custom/media-read".into(),
                Action::Create
            ),
        ]
    );
    let s = PlanSettings {
        targets: vec![Address::role("media-role")],
        ..settings()
    };
    assert_eq!(plan(&d, &empty_live(), &s).changes.len(), 4);
}

#[test]
fn plans_are_deterministic_and_fingerprint_live() {
    let live = orphaned_live();
    let s = PlanSettings {
        prune: true,
        ..settings()
    };
    let a = plan(&sample(), &live, &s);
    let b = plan(&sample(), &live, &s);
    assert_eq!(
        serde_json::to_string(&a).unwrap(),
        serde_json::to_string(&b).unwrap()
    );
    let role = Address::role("old-role");
    let c = a.changes.iter().find(|c| c.address == role).unwrap();
    assert_eq!(c.live_fingerprint.as_ref(), a.live_fingerprints.get(&role));
    assert!(a.live_fingerprints.contains_key(&Address(
        "ram_role_policy.old-role/Custom/old-policy".into()
    )));
}

#[test]
fn check_catches_broken_plans() {
    let live = orphaned_live();
    let s = PlanSettings {
        prune: true,
        ..settings()
    };
    let good = plan(&sample(), &live, &s);
    let mut reversed = good.clone();
    reversed.changes.reverse();
    assert!(check(&reversed).is_err());
    let mut dup = good.clone();
    dup.changes.push(dup.changes[0].clone());
    assert!(check(&dup).is_err());
    let mut foreign = good.clone();
    foreign.settings.owner = "someone-else".into();
    let errs = check(&foreign).unwrap_err();
    assert!(errs.iter().any(|e| e.contains("owner tag")), "{errs:?}");
}

#[test]
fn live_serializes_to_json() {
    let live = orphaned_live();
    let text = serde_json::to_string(&live).unwrap();
    let back: Live = serde_json::from_str(&text).unwrap();
    assert_eq!(back, live);
}

/// A service-role rename (a new role with the same policies, the project moved to it, the
/// old role pruned): the project moves before the old role loses any policy, so IMM never
/// runs on a role short of its permissions. The detaches used to come first (their phase),
/// leaving the live project on a stripped role until its update (found by trial6).
#[test]
fn a_project_moves_off_a_role_before_that_role_loses_its_policies() {
    let old = sample();
    let live = live_from_desired(&old, "default", &empty_live());
    let d = desired(
        vec![desired_policy("media-read")],
        vec![desired_role(
            "media-role-2",
            &[
                policy_ref(PolicyType::Custom, "media-read"),
                policy_ref(PolicyType::System, "AliyunMNSFullAccess"),
            ],
        )],
        vec![desired_project("media", "media-role-2")],
    );
    let settings = PlanSettings {
        prune: true,
        ..settings()
    };
    let p = plan(&d, &live, &settings);
    let project = Address::project(&ProjectKey {
        region: "cn-hangzhou".into(),
        name: "media".into(),
    });
    let at = |a: &Address| p.changes.iter().position(|c| &c.address == a).unwrap();
    let detaching: Vec<&Change> = p
        .changes
        .iter()
        .filter(|c| {
            c.ops
                .iter()
                .any(|o| matches!(o, Op::DetachPolicyFromRole { role, .. } if role == "media-role"))
        })
        .collect();
    assert!(!detaching.is_empty(), "{:#?}", addrs(&p));
    for c in detaching {
        assert!(
            c.depends_on.contains(&project),
            "{}: {:?}",
            c.address,
            c.depends_on
        );
        assert!(at(&c.address) > at(&project), "{:#?}", addrs(&p));
    }
}
