//! Property tests of the planner (STYLE.md §6), for arbitrary `Desired` and `Live` drawn from
//! small name pools so that they overlap:
//! - planning `Desired` against itself as the live state gives no changes;
//! - applying a plan to the in-memory model (`plan::simulate_strict`) never breaks a cloud
//!   rule, and planning again gives no changes;
//! - no address appears twice and every dependency comes first (`plan::check`).

use std::collections::{BTreeMap, BTreeSet};

use immctl::live::{Live, LivePolicyVersion, OWNER_TAG_KEY};
use immctl::manifest::{
    DeletionPolicy, Desired, DesiredPolicy, DesiredProject, DesiredRole, IMM_DEFAULT_ROLE,
    PolicyRef, PolicyType, ProjectLimits, Tags,
};
use immctl::plan::testing::{
    allow, desired, desired_policy, desired_project, desired_role, empty_live, live_from_desired,
    policy_ref, trust,
};
use immctl::plan::{Plan, PlanSettings, check, diff, simulate_strict};
use immctl::policy::PolicyDocument;
use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;
use proptest::sample::select;

const POLICIES: &[&str] = &["p-a", "p-b", "p-c"];
const ROLES: &[&str] = &["r-a", "r-b", "r-c"];
const PROJECTS: &[&str] = &["j-a", "j-b"];
const REGIONS: &[&str] = &["cn-hangzhou", "cn-shanghai"];
const SYSTEM: &[&str] = &["AliyunOSSReadOnlyAccess", "AliyunMNSFullAccess"];

fn document() -> impl Strategy<Value = PolicyDocument> {
    (
        select(&["oss:GetObject", "oss:PutObject", "mns:*"][..]),
        select(&["*", "acs:oss:*:*:media/*"][..]),
    )
        .prop_map(|(a, r)| allow(a, r))
}

fn description() -> impl Strategy<Value = Option<String>> {
    proptest::option::of(select(&["one", "two"][..]).prop_map(str::to_string))
}

fn tags() -> impl Strategy<Value = Tags> {
    btree_map(
        select(&["team", "env"][..]).prop_map(str::to_string),
        select(&["a", "b"][..]).prop_map(str::to_string),
        0..=2,
    )
}

fn deletion_policy() -> impl Strategy<Value = DeletionPolicy> {
    prop_oneof![Just(DeletionPolicy::Delete), Just(DeletionPolicy::Retain)]
}

fn policies() -> impl Strategy<Value = Vec<DesiredPolicy>> {
    btree_set(select(POLICIES), 0..=POLICIES.len()).prop_flat_map(|names| {
        names
            .into_iter()
            .map(|n| {
                (
                    document(),
                    description(),
                    tags(),
                    deletion_policy(),
                    any::<bool>(),
                )
                    .prop_map(move |(doc, d, t, dp, adopt)| DesiredPolicy {
                        document: doc,
                        description: d,
                        tags: t,
                        deletion_policy: dp,
                        adopt,
                        ..desired_policy(n)
                    })
            })
            .collect::<Vec<_>>()
    })
}

fn roles(custom: Vec<String>) -> impl Strategy<Value = Vec<DesiredRole>> {
    let mut refs: Vec<PolicyRef> = custom
        .iter()
        .map(|n| policy_ref(PolicyType::Custom, n))
        .collect();
    refs.extend(SYSTEM.iter().map(|n| policy_ref(PolicyType::System, n)));
    btree_set(select(ROLES), 0..=ROLES.len()).prop_flat_map(move |names| {
        let refs = refs.clone();
        names
            .into_iter()
            .map(|n| {
                let attach = if refs.is_empty() {
                    Just(BTreeSet::new()).boxed()
                } else {
                    btree_set(select(refs.clone()), 0..=refs.len().min(3)).boxed()
                };
                (
                    description(),
                    select(&[3600u32, 7200][..]),
                    select(&["imm.aliyuncs.com", "ecs.aliyuncs.com"][..]),
                    attach,
                    tags(),
                    deletion_policy(),
                    any::<bool>(),
                )
                    .prop_map(move |(d, msd, svc, att, t, dp, adopt)| {
                        DesiredRole {
                            description: d,
                            max_session_duration: msd,
                            trust_policy: trust(svc),
                            policies: att,
                            tags: t,
                            deletion_policy: dp,
                            adopt,
                            ..desired_role(n, &[])
                        }
                    })
            })
            .collect::<Vec<_>>()
    })
}

fn limits() -> impl Strategy<Value = ProjectLimits> {
    (
        proptest::option::of(select(&[10i64, 100][..])),
        proptest::option::of(select(&[5i64, 100][..])),
        proptest::option::of(select(&[1i64, 10][..])),
    )
        .prop_map(|(qps, ec, bind)| ProjectLimits {
            project_queries_per_second: qps,
            engine_concurrency: ec,
            dataset_max_bind_count: bind,
            ..ProjectLimits::default()
        })
}

fn projects(role_names: Vec<String>) -> impl Strategy<Value = Vec<DesiredProject>> {
    let mut roles = role_names;
    roles.push(IMM_DEFAULT_ROLE.to_string());
    btree_set((select(REGIONS), select(PROJECTS)), 0..=3).prop_flat_map(move |keys| {
        let roles = roles.clone();
        keys.into_iter()
            .map(|(region, name)| {
                (
                    select(roles.clone()),
                    description(),
                    proptest::option::of(select(&["Official:ImageManagement", ""][..])),
                    limits(),
                    tags(),
                    deletion_policy(),
                    any::<bool>(),
                )
                    .prop_map(move |(sr, d, tpl, l, t, dp, adopt)| {
                        DesiredProject {
                            region: region.to_string(),
                            description: d,
                            template_id: tpl.map(str::to_string),
                            limits: l,
                            tags: t,
                            deletion_policy: dp,
                            adopt,
                            ..desired_project(name, &sr)
                        }
                    })
            })
            .collect::<Vec<_>>()
    })
}

fn desired_state() -> impl Strategy<Value = Desired> {
    policies().prop_flat_map(|ps| {
        let custom: Vec<String> = ps.iter().map(|p| p.name.clone()).collect();
        roles(custom).prop_flat_map(move |rs| {
            let ps = ps.clone();
            let names: Vec<String> = rs.iter().map(|r| r.name.clone()).collect();
            projects(names).prop_map(move |js| desired(ps.clone(), rs.clone(), js))
        })
    })
}

/// Who owns a live resource.
#[derive(Debug, Clone, Copy)]
enum Owner {
    Us,
    Nobody,
    Other,
}

fn owner() -> impl Strategy<Value = Owner> {
    prop_oneof![
        3 => Just(Owner::Us),
        1 => Just(Owner::Nobody),
        1 => Just(Owner::Other)
    ]
}

fn retag(tags: &mut Tags, o: Owner) {
    match o {
        Owner::Us => {}
        Owner::Nobody => {
            tags.remove(OWNER_TAG_KEY);
        }
        Owner::Other => {
            tags.insert(OWNER_TAG_KEY.to_string(), "other-repo".to_string());
        }
    }
}

/// A live account: another desired state made real, then perturbed (owners, number of
/// policy versions, hand-attached System policies, cloud-managed tags).
fn live_state() -> impl Strategy<Value = Live> {
    (
        desired_state(),
        vec(owner(), 16),
        vec(1usize..=5, POLICIES.len()),
        vec(proptest::option::of(select(SYSTEM)), ROLES.len()),
        any::<bool>(),
    )
        .prop_map(|(d, owners, versions, extra, cloud_tag)| {
            let mut live = live_from_desired(&d, "default", &empty_live());
            let mut o = owners.into_iter().cycle();
            for (i, p) in live.policies.values_mut().enumerate() {
                retag(&mut p.tags, o.next().unwrap());
                let n = versions[i % versions.len()];
                p.versions = (1..=n)
                    .map(|k| LivePolicyVersion {
                        version_id: format!("v{k}"),
                        is_default: k == n,
                        create_date: String::new(),
                    })
                    .collect();
                p.default_version = format!("v{n}");
            }
            for (i, r) in live.roles.values_mut().enumerate() {
                retag(&mut r.tags, o.next().unwrap());
                if cloud_tag {
                    r.tags.insert("acs:rm:rgId".into(), "rg-1".into());
                }
                if let Some(s) = extra[i % extra.len()] {
                    r.attachments.insert(policy_ref(PolicyType::System, s));
                }
            }
            for p in live.projects.values_mut() {
                retag(&mut p.tags, o.next().unwrap());
            }
            live
        })
}

fn settings() -> impl Strategy<Value = PlanSettings> {
    (any::<bool>(), any::<bool>(), 0usize..=6, any::<bool>()).prop_map(
        |(adopt, prune, max_deletions, allow_mass_delete)| PlanSettings {
            adopt,
            prune,
            max_deletions,
            allow_mass_delete,
            ..PlanSettings::default()
        },
    )
}

fn checked(plan: Plan) -> Result<Plan, TestCaseError> {
    if let Err(errs) = check(&plan) {
        return Err(TestCaseError::fail(format!(
            "check failed: {errs:#?}\n{plan:#?}"
        )));
    }
    let mut seen = BTreeSet::new();
    let position: BTreeMap<_, _> = plan
        .changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.address.clone(), i))
        .collect();
    for (i, c) in plan.changes.iter().enumerate() {
        prop_assert!(seen.insert(c.address.clone()), "{} twice", c.address);
        for d in &c.depends_on {
            prop_assert!(position[d] < i, "{} before its dependency {d}", c.address);
        }
    }
    Ok(plan)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn desired_against_itself_plans_nothing(d in desired_state(), base in live_state(), s in settings()) {
        // Other owned resources in `base` are orphans; without prune they are left alone.
        let s = PlanSettings { prune: false, ..s };
        let live = live_from_desired(&d, &s.owner, &base);
        let plan = checked(diff(&d, &live, &s))?;
        prop_assert!(plan.is_empty(), "{plan:#?}");
    }

    #[test]
    fn applying_the_plan_then_planning_again_plans_nothing(
        d in desired_state(),
        live in live_state(),
        s in settings(),
    ) {
        let first = checked(diff(&d, &live, &s))?;
        let after = simulate_strict(&first, &live)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{first:#?}")))?;
        let second = checked(diff(&d, &after, &s))?;
        prop_assert!(second.is_empty(), "first: {first:#?}\nsecond: {second:#?}");
    }
}
