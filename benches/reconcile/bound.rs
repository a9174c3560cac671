//! The lower bound on a reconcile's wall time implied by the per-action quotas, the minimum
//! call counts and the order calls must come in. BENCHMARKS.md derives it; in short:
//!
//! - One *lane* per action. Its calls are spaced at least `1/q` apart (q: the documented quota
//!   per second, reference §1.6) and each call has an earliest send time (its *release*), set by
//!   what it waits for. With releases sorted `e_0 <= ... <= e_{N-1}`, the last call cannot be
//!   sent before `e_j + (N-1-j)/q` for any `j`, and its answer comes one latency `L` later:
//!   `lane_end = max_j (e_j + (N-1-j)/q) + L`. With every release at 0 that is
//!   `(N-1)/q + L`, within `1/q` of the `N/q` "calls over quota" figure.
//! - Lanes of one stage run in parallel: the stage takes the longest lane.
//! - Stages are sequential: the plan needs the whole live state (fetch), the apply needs the
//!   plan and the preflight.
//! - Releases follow data dependencies only, assuming no rate limit on the way (so the bound
//!   stays a lower bound): list pages chain by their marker; per-resource reads follow the
//!   lists; an op follows the previous op of its change (one `L` each) and every op of the
//!   changes its change depends on; a read-back follows its write.

use std::collections::BTreeMap;

use immctl::cloud::{Product, RateLimits};
use immctl::plan::{Op, Plan};

/// The product an action belongs to (for its quota).
pub fn product(action: &str) -> Product {
    match action {
        "CreateProject" | "UpdateProject" | "DeleteProject" | "GetProject" | "ListProjects" => {
            Product::Imm
        }
        "GetCallerIdentity" | "AssumeRole" | "AssumeRoleWithOIDC" => Product::Sts,
        _ => Product::Ram,
    }
}

/// The documented quota of `action`, per second (the table the emulator enforces).
pub fn quota(action: &str) -> f64 {
    RateLimits::default()
        .quota(product(action), action)
        .expect("every action has a documented quota")
}

/// One action's share of a stage.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Lane {
    pub action: String,
    pub calls: usize,
    pub quota: f64,
    /// `calls / quota`, seconds.
    pub quota_seconds: f64,
    /// Earliest release, seconds from the stage start.
    pub first_release: f64,
    /// When the lane's last answer can come at the earliest, seconds from the stage start.
    pub end: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Stage {
    pub name: &'static str,
    pub lanes: Vec<Lane>,
    /// The longest lane, seconds.
    pub seconds: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Bound {
    pub stages: Vec<Stage>,
    pub seconds: f64,
}

impl Bound {
    pub fn new(stages: Vec<Stage>) -> Bound {
        let seconds = stages.iter().map(|s| s.seconds).sum();
        Bound { stages, seconds }
    }

    /// Minimum calls per action over all stages.
    pub fn calls(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for s in &self.stages {
            for l in &s.lanes {
                *out.entry(l.action.clone()).or_default() += l.calls;
            }
        }
        out
    }
}

/// `max_j (e_j + (N-1-j)/q) + L` over the sorted releases.
pub fn lane_end(releases: &mut [f64], q: f64, latency: f64) -> f64 {
    if releases.is_empty() {
        return 0.0;
    }
    releases.sort_by(f64::total_cmp);
    let n = releases.len();
    releases
        .iter()
        .enumerate()
        .map(|(j, e)| e + (n - 1 - j) as f64 / q)
        .fold(f64::MIN, f64::max)
        + latency
}

fn stage(name: &'static str, releases: BTreeMap<String, Vec<f64>>, latency: f64) -> Stage {
    let mut lanes = Vec::new();
    for (action, mut r) in releases {
        let q = quota(&action);
        let first_release = r.iter().copied().fold(f64::INFINITY, f64::min);
        let end = lane_end(&mut r, q, latency);
        lanes.push(Lane {
            calls: r.len(),
            quota_seconds: r.len() as f64 / q,
            quota: q,
            first_release,
            end,
            action,
        });
    }
    let seconds = lanes.iter().map(|l| l.end).fold(0.0, f64::max);
    Stage {
        name,
        lanes,
        seconds,
    }
}

/// What the account holds before the run, and what the fetch reads in full (the terms of
/// the minimum-call formula in src/live/fetch.rs).
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Account {
    /// Roles listed (`R`).
    pub roles: usize,
    /// Custom + System policies listed (`C + S`).
    pub policies: usize,
    /// Projects per scanned region (`P_g`).
    pub projects: BTreeMap<String, usize>,
    /// Roles read in full (`Rs`), custom policies read in full (`Cs`), System documents (`Ss`).
    pub roles_read: usize,
    pub policies_read: usize,
    pub system_read: usize,
}

/// The fetch: the three lists (pages chained by their marker), then the per-resource reads.
/// Calls per action are exactly the minimum-call formula.
pub fn fetch_stage(a: &Account, latency: f64) -> Stage {
    let pages = |n: usize, per: usize| n.div_ceil(per).max(1);
    let mut r: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let chain = |n: usize| (0..n).map(|k| k as f64 * latency).collect::<Vec<_>>();
    let role_pages = pages(a.roles, 1000);
    let policy_pages = pages(a.policies, 1000);
    r.insert("ListRoles".into(), chain(role_pages));
    r.insert("ListPolicies".into(), chain(policy_pages));
    let mut longest = role_pages.max(policy_pages);
    for n in a.projects.values() {
        let p = pages(*n, 200);
        longest = longest.max(p);
        r.entry("ListProjects".into()).or_default().extend(chain(p));
    }
    if a.roles == 0 {
        // No role ARN to take the account id from.
        r.insert(
            "GetCallerIdentity".into(),
            vec![role_pages as f64 * latency],
        );
    }
    let lists_done = longest as f64 * latency;
    for (action, n) in [
        ("GetRole", a.roles_read),
        ("ListPoliciesForRole", a.roles_read),
        ("ListPolicyVersions", a.policies_read),
        ("GetPolicy", a.system_read),
    ] {
        if n > 0 {
            r.entry(action.into())
                .or_default()
                .extend(std::iter::repeat_n(lists_done, n));
        }
    }
    stage("fetch", r, latency)
}

/// Whether the plan sets a project's service role (then preflight reads the caller).
pub fn sets_service_role(plan: &Plan) -> bool {
    plan.changes.iter().flat_map(|c| &c.ops).any(|op| {
        matches!(
            op,
            Op::CreateProject { .. }
                | Op::UpdateProject {
                    service_role: Some(_),
                    ..
                }
        )
    })
}

/// Preflight for a RAM user caller: `GetCallerIdentity`, then its policies and its groups
/// (independent of each other); System policy documents are known offline.
pub fn preflight_stage(plan: &Plan, latency: f64) -> Stage {
    let mut r: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    if sets_service_role(plan) {
        r.insert("GetCallerIdentity".into(), vec![0.0]);
        r.insert("ListPoliciesForUser".into(), vec![latency]);
        r.insert("ListGroupsForUser".into(), vec![latency]);
    }
    stage("preflight", r, latency)
}

fn needs_read_back(op: &Op) -> bool {
    matches!(
        op,
        Op::CreateProject { .. }
            | Op::UpdateProject {
                service_role: Some(_),
                ..
            }
    )
}

/// The apply: every op of the plan (plus the read-back of project writes that set a service
/// role), released by the dependency order.
pub fn apply_stage(plan: &Plan, latency: f64) -> Stage {
    let index: BTreeMap<&str, usize> = plan
        .changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.address.as_str(), i))
        .collect();
    // The plan is in apply order (dependencies first), so one pass fills every finish time.
    let mut finish = vec![0.0f64; plan.changes.len()];
    let mut r: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for (i, c) in plan.changes.iter().enumerate() {
        let mut t = c
            .depends_on
            .iter()
            .filter_map(|d| index.get(d.as_str()))
            .map(|&j| finish[j])
            .fold(0.0, f64::max);
        for op in &c.ops {
            r.entry(immctl::apply::op_name(op).to_string())
                .or_default()
                .push(t);
            t += latency;
            if needs_read_back(op) {
                r.entry("GetProject".into()).or_default().push(t);
                t += latency;
            }
        }
        finish[i] = t;
    }
    stage("apply", r, latency)
}

/// Checks of the formula on cases worked by hand (run in smoke mode).
pub fn self_check() {
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    // 1000 calls at 100/s from t=0: the last is sent at 9.99 s, answered at 10.01 s.
    let mut r = vec![0.0; 1000];
    assert!(close(lane_end(&mut r, 100.0, 0.02), 10.01));
    // Late releases dominate: 10 calls at 10/s, 9 free at 0, one released at 5 s.
    let mut r = vec![0.0; 9];
    r.push(5.0);
    assert!(close(lane_end(&mut r, 10.0, 0.0), 5.0));
    // ...or spacing does: 10 released at 0.5 s at 10/s -> last at 1.4 s.
    let mut r = vec![0.5; 10];
    assert!(close(lane_end(&mut r, 10.0, 0.1), 1.5));
    let mut none: Vec<f64> = vec![];
    assert!(close(lane_end(&mut none, 10.0, 0.1), 0.0));
    // An empty account: the lists (one page each) and GetCallerIdentity after ListRoles.
    let s = fetch_stage(&Account::default(), 0.02);
    assert!(close(s.seconds, 0.04), "{}", s.seconds);
    // 1000 roles, 1000 + 50 policies (2 pages), 100 projects: lists 2 L, then 1000 reads each.
    let a = Account {
        roles: 1000,
        policies: 1050,
        projects: BTreeMap::from([("r".to_string(), 100)]),
        roles_read: 1000,
        policies_read: 1000,
        system_read: 0,
    };
    let s = fetch_stage(&a, 0.02);
    assert!(close(s.seconds, 0.04 + 9.99 + 0.02), "{}", s.seconds);
    assert_eq!(quota("AttachPolicyToRole"), 10.0);
    assert_eq!(quota("CreateRole"), 20.0);
    assert_eq!(quota("GetRole"), 100.0);
    assert_eq!(quota("UpdateProject"), 20.0);
}
