//! Preflight, before apply: does the caller hold what the plan will make it pass?
//!
//! IMM refuses CreateProject / UpdateProject(ServiceRole) unless the caller holds
//! `ram:PassRole` on the role (for `acs:Service = imm.aliyuncs.com`) and every permission the
//! role grants (DESIGN.md §1). When the plan sets a project's service role, [`preflight`]:
//!
//! 1. asks who the caller is (STS `GetCallerIdentity`); the account root holds everything,
//!    so nothing more is read;
//! 2. reads the caller's own policies where it can: a RAM user's (`ListPoliciesForUser`, and
//!    its groups' through `ListGroupsForUser` / `ListPoliciesForGroup`), an assumed role's
//!    (`ListPoliciesForRole`); custom documents with `GetPolicy`, System documents from the
//!    live read or [`crate::policy::system`] (else `GetPolicy`);
//! 3. checks, with the evaluator and the very rule the emulator authorizes with
//!    ([`crate::policy::eval::uncovered`]), PassRole and each permission the role will grant
//!    once the plan is applied (the declared attachments and documents).
//!
//! Findings (the apply refuses errors unless forced, like lint errors):
//!
//! | code | severity | what |
//! |---|---|---|
//! | `PF001` | error | the caller may not pass the role to IMM (`ram:PassRole`) |
//! | `PF002` | error | the caller lacks permissions the role grants (names them) |
//! | `PF003` | warning | the check was skipped: the caller's policies (or the role's) cannot be read |
//! | `PF004` | warning | the caller holds it only under conditions preflight cannot evaluate |
//!
//! What it cannot see, so a pass here is not a promise: the session policy of an assumed
//! role (it only narrows), the request's source IP (an `Allow` limited by it is `PF004`, not
//! an error), resource groups. A refusal is definite: no `Allow` statement would grant the
//! permission whatever its conditions. Unreadable policies (a permission error on the reads)
//! are a `PF003` warning, not a failure; other read failures are errors.
//!
//! Async and outside the pure modules: it talks to the cloud and reads the clock.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::cloud::{self, Client};
use crate::lint::{RoleLookup, Sources};
use crate::live::Live;
use crate::manifest::{Address, Desired, PolicyRef, PolicyType};
use crate::plan::{Finding, Op, Plan, Severity};
use crate::policy::eval::{
    Decision, Request, Verdict, evaluate, evaluate_ignoring_allow_conditions, judge, uncovered,
};
use crate::policy::imm::{IMM_SERVICE_PRINCIPAL, PASS_ROLE_CONDITION_KEY};
use crate::policy::{PolicyDocument, system};

/// Preflight finding codes (see the module docs).
pub mod codes {
    pub const PASS_ROLE: &str = "PF001";
    pub const ROLE_PERMISSION: &str = "PF002";
    pub const SKIPPED: &str = "PF003";
    pub const CONDITIONAL: &str = "PF004";
}

/// A read preflight needed failed for a reason other than permissions.
#[derive(Debug, thiserror::Error)]
pub enum PreflightError {
    /// `GetCallerIdentity` failed: the credentials do not work at all.
    #[error("preflight: who is the caller: {0}")]
    Identity(#[source] Box<cloud::Error>),
    /// Reading the caller's policies failed (not a permission refusal).
    #[error("preflight: reading {what}: {source}")]
    Read {
        what: String,
        #[source]
        source: Box<cloud::Error>,
    },
}

pub type Result<T, E = PreflightError> = std::result::Result<T, E>;

/// Who the caller is, from `GetCallerIdentity`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The account root: RAM policies do not apply.
    Root {
        account: String,
    },
    User {
        account: String,
        name: String,
    },
    AssumedRole {
        account: String,
        role: String,
    },
    /// An identity type preflight does not know how to read.
    Other {
        account: String,
        arn: String,
    },
}

impl Caller {
    fn describe(&self) -> String {
        match self {
            Caller::Root { .. } => "the account root".into(),
            Caller::User { name, .. } => format!("RAM user \"{name}\""),
            Caller::AssumedRole { role, .. } => format!("a session of role \"{role}\""),
            Caller::Other { arn, .. } => format!("\"{arn}\""),
        }
    }

    fn account(&self) -> &str {
        match self {
            Caller::Root { account }
            | Caller::User { account, .. }
            | Caller::AssumedRole { account, .. }
            | Caller::Other { account, .. } => account,
        }
    }
}

/// Read `IdentityType` / `Arn` (`acs:ram::<acct>:user/<name>`,
/// `acs:ram::<acct>:assumed-role/<role>/<session>`, `acs:ram::<acct>:root`).
pub fn caller_from_identity(r: &cloud::wire::GetCallerIdentityResponse) -> Caller {
    let account = r.account_id.clone();
    let path = r.arn.split_once(&format!("{account}:")).map(|(_, p)| p);
    match (r.identity_type.as_str(), path) {
        ("Account", _) | (_, Some("root")) => Caller::Root { account },
        ("RAMUser", Some(p)) if p.starts_with("user/") => Caller::User {
            account,
            name: p["user/".len()..].to_string(),
        },
        ("AssumedRoleUser", Some(p)) if p.starts_with("assumed-role/") => {
            let role = p["assumed-role/".len()..]
                .split('/')
                .next()
                .unwrap_or_default()
                .to_string();
            Caller::AssumedRole { account, role }
        }
        _ => Caller::Other {
            account,
            arn: r.arn.clone(),
        },
    }
}

/// The projects whose service role the plan sets: (project address, role).
fn role_settings(plan: &Plan) -> Vec<(Address, String)> {
    let mut out = Vec::new();
    for c in &plan.changes {
        for op in &c.ops {
            match op {
                Op::CreateProject { service_role, .. }
                | Op::UpdateProject {
                    service_role: Some(service_role),
                    ..
                } => out.push((c.address.clone(), service_role.clone())),
                _ => {}
            }
        }
    }
    out
}

fn skipped(address: &Address, message: String) -> Finding {
    Finding {
        code: codes::SKIPPED.into(),
        severity: Severity::Warning,
        address: address.clone(),
        message,
        fix: Some(
            "grant the caller read access to its own RAM policies (e.g. AliyunRAMReadOnlyAccess) to have this checked before apply"
                .into(),
        ),
    }
}

fn is_permission_error(e: &cloud::Error) -> bool {
    e.code().is_some_and(crate::apply::is_permission_code)
}

fn is_not_found(e: &cloud::Error) -> bool {
    e.code().is_some_and(|c| c.starts_with("EntityNotExist"))
}

/// `ListPoliciesForUser: 403 NoPermission (RequestId X)`
fn brief(e: &cloud::Error) -> String {
    match e.api() {
        Some(a) => {
            let mut s = format!("{}: {} {}", a.action, a.status, a.code);
            if !a.request_id.is_empty() {
                s.push_str(&format!(" (RequestId {})", a.request_id));
            }
            s
        }
        None => e.to_string(),
    }
}

/// What a read of the caller's policies came to.
enum Got<T> {
    Ok(T),
    /// Refused for lack of permission: the check is skipped (with the words why).
    Denied(String),
}

fn read<T>(r: cloud::Result<T>, what: impl Into<String>) -> Result<Got<T>> {
    match r {
        Ok(v) => Ok(Got::Ok(v)),
        Err(e) if is_permission_error(&e) => Ok(Got::Denied(brief(&e))),
        Err(e) => Err(PreflightError::Read {
            what: what.into(),
            source: Box::new(e),
        }),
    }
}

/// The caller's policy attachments.
async fn caller_attachments(client: &Client, caller: &Caller) -> Result<Got<Vec<PolicyRef>>> {
    let to_refs = |list: Vec<cloud::wire::Policy>| -> Vec<PolicyRef> {
        list.into_iter()
            .map(crate::live::fetch::policy_ref)
            .collect()
    };
    match caller {
        Caller::User { name, .. } => {
            let mut refs = match read(
                client.list_policies_for_user(name).await,
                format!("the policies of RAM user \"{name}\""),
            )? {
                Got::Ok(r) => to_refs(r.policies.policy),
                Got::Denied(why) => return Ok(Got::Denied(why)),
            };
            let groups = match read(
                client.list_groups_for_user(name).await,
                format!("the groups of RAM user \"{name}\""),
            )? {
                Got::Ok(g) => g.groups.group,
                Got::Denied(why) => return Ok(Got::Denied(why)),
            };
            for g in groups {
                match client.list_policies_for_group(&g.group_name).await {
                    Ok(r) => refs.extend(to_refs(r.policies.policy)),
                    Err(e) if is_not_found(&e) => {}
                    Err(e) if is_permission_error(&e) => return Ok(Got::Denied(brief(&e))),
                    Err(e) => {
                        return Err(PreflightError::Read {
                            what: format!("the policies of group \"{}\"", g.group_name),
                            source: Box::new(e),
                        });
                    }
                }
            }
            Ok(Got::Ok(refs))
        }
        Caller::AssumedRole { role, .. } => Ok(
            match read(
                client.list_policies_for_role(role).await,
                format!("the policies of role \"{role}\""),
            )? {
                Got::Ok(r) => Got::Ok(to_refs(r.policies.policy)),
                Got::Denied(why) => Got::Denied(why),
            },
        ),
        Caller::Root { .. } | Caller::Other { .. } => Ok(Got::Ok(Vec::new())),
    }
}

/// The default document of each attached policy.
async fn documents(
    client: &Client,
    live: &Live,
    refs: &[PolicyRef],
) -> Result<Got<Vec<PolicyDocument>>> {
    let mut out = Vec::new();
    for p in refs {
        let known = match p.policy_type {
            PolicyType::System => live
                .system_policy_documents
                .get(&p.name)
                .or_else(|| system::document(&p.name))
                .cloned(),
            PolicyType::Custom => None,
        };
        if let Some(d) = known {
            out.push(d);
            continue;
        }
        let got = match client.get_policy(&p.name, p.policy_type.as_str()).await {
            Ok(r) => r,
            Err(e) if is_not_found(&e) => continue,
            Err(e) if is_permission_error(&e) => return Ok(Got::Denied(brief(&e))),
            Err(e) => {
                return Err(PreflightError::Read {
                    what: format!("{} policy \"{}\"", p.policy_type, p.name),
                    source: Box::new(e),
                });
            }
        };
        let text = got
            .default_policy_version
            .and_then(|v| v.policy_document)
            .or(got.policy.policy_document);
        if let Some(d) = text.and_then(|t| PolicyDocument::from_json_str(&t).ok()) {
            out.push(d);
        }
    }
    Ok(Got::Ok(out))
}

/// Check, before apply, that the caller may set every service role the plan sets (see the
/// module docs). No call is made when the plan sets none.
pub async fn preflight(
    client: &Client,
    plan: &Plan,
    desired: &Desired,
    live: &Live,
) -> Result<Vec<Finding>> {
    let settings = role_settings(plan);
    if settings.is_empty() {
        return Ok(Vec::new());
    }
    let identity = client
        .get_caller_identity()
        .await
        .map_err(|e| PreflightError::Identity(Box::new(e)))?;
    let caller = caller_from_identity(&identity);
    let first = &settings[0].0;
    let refs = match &caller {
        Caller::Root { .. } => return Ok(Vec::new()),
        Caller::Other { arn, .. } => {
            return Ok(vec![skipped(
                first,
                format!(
                    "preflight skipped: immctl cannot read the policies of caller \"{arn}\" (identity type {:?})",
                    identity.identity_type
                ),
            )]);
        }
        _ => match caller_attachments(client, &caller).await? {
            Got::Ok(r) => r,
            Got::Denied(why) => {
                return Ok(vec![skipped(
                    first,
                    format!(
                        "preflight skipped: the policies of the caller ({}) cannot be read ({why}); whether it may pass the service roles of this plan is unchecked",
                        caller.describe()
                    ),
                )]);
            }
        },
    };
    let docs = match documents(client, live, &refs).await? {
        Got::Ok(d) => d,
        Got::Denied(why) => {
            return Ok(vec![skipped(
                first,
                format!(
                    "preflight skipped: a policy of the caller ({}) cannot be read ({why})",
                    caller.describe()
                ),
            )]);
        }
    };
    let caller_docs: Vec<&Value> = docs.iter().map(|d| &d.0).collect();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    Ok(check(&caller, &caller_docs, &settings, desired, live, &now))
}

/// The pure part of [`preflight`]: the caller's documents against every role setting.
pub fn check(
    caller: &Caller,
    caller_docs: &[&Value],
    settings: &[(Address, String)],
    desired: &Desired,
    live: &Live,
    now: &str,
) -> Vec<Finding> {
    if matches!(caller, Caller::Root { .. }) {
        return Vec::new();
    }
    let who = caller.describe();
    let request = |action: &str, resource: &str| {
        Request::new(action, resource)
            .with(PASS_ROLE_CONDITION_KEY, IMM_SERVICE_PRINCIPAL)
            .with("acs:CurrentTime", now)
    };
    let src = Sources {
        desired: Some(desired),
        live: Some(live),
    };
    // Keyed for a stable order and no duplicates (two projects on one role each get theirs).
    let mut out: BTreeMap<(Address, String, String), Finding> = BTreeMap::new();
    let mut push = |f: Finding| {
        out.insert((f.address.clone(), f.code.clone(), f.message.clone()), f);
    };
    for (address, role) in settings {
        let role_arn = format!("acs:ram:*:{}:role/{role}", caller.account());
        match judge(caller_docs, &request("ram:PassRole", &role_arn)) {
            Verdict::Allowed => {}
            Verdict::Conditional => push(Finding {
                code: codes::CONDITIONAL.into(),
                severity: Severity::Warning,
                address: address.clone(),
                message: format!(
                    "the caller ({who}) may pass service role \"{role}\" to {IMM_SERVICE_PRINCIPAL} only under conditions preflight cannot evaluate"
                ),
                fix: Some("make sure the apply runs where those conditions hold".into()),
            }),
            Verdict::Refused(d) => push(Finding {
                code: codes::PASS_ROLE.into(),
                severity: Severity::Error,
                address: address.clone(),
                message: format!(
                    "the caller ({who}) may not pass service role \"{role}\" to {IMM_SERVICE_PRINCIPAL}: ram:PassRole on {role_arn} is {}; IMM would refuse this change, because whoever sets a project's service role must hold ram:PassRole on it and every permission it grants",
                    denied(d)
                ),
                fix: Some(format!(
                    "grant the caller ram:PassRole on {role_arn} with Condition StringEquals {PASS_ROLE_CONDITION_KEY} = {IMM_SERVICE_PRINCIPAL} (AliyunIMMFullAccess includes it), or pass --force"
                )),
            }),
        }
        let (RoleLookup::Declared(v) | RoleLookup::Live(v)) = src.role(role) else {
            if role != crate::manifest::IMM_DEFAULT_ROLE {
                push(skipped(
                    address,
                    format!(
                        "preflight did not check the permissions service role \"{role}\" grants: immctl did not read the role"
                    ),
                ));
            }
            continue;
        };
        let role_docs = v.known_docs();
        let missing = uncovered(&role_docs, |a, r| evaluate(caller_docs, &request(a, r)));
        let (mut refused, mut conditional) = (Vec::new(), Vec::new());
        for u in missing {
            let lenient = evaluate_ignoring_allow_conditions(
                caller_docs,
                &request(&u.grant.action, &u.grant.resource),
            );
            let text = format!("{} on {}", u.grant.action, u.grant.resource);
            if lenient == Decision::Allow {
                conditional.push(text);
            } else {
                refused.push(text);
            }
        }
        if !refused.is_empty() {
            push(Finding {
                code: codes::ROLE_PERMISSION.into(),
                severity: Severity::Error,
                address: address.clone(),
                message: format!(
                    "the caller ({who}) does not hold what service role \"{role}\" grants: {}; IMM would refuse this change, because whoever sets a project's service role must hold every permission it grants",
                    refused.join(", ")
                ),
                fix: Some(
                    "grant the caller these permissions (or a superset), narrow the role, or pass --force"
                        .into(),
                ),
            });
        }
        if !conditional.is_empty() {
            push(Finding {
                code: codes::CONDITIONAL.into(),
                severity: Severity::Warning,
                address: address.clone(),
                message: format!(
                    "the caller ({who}) holds {} (granted by service role \"{role}\") only under conditions preflight cannot evaluate",
                    conditional.join(", ")
                ),
                fix: Some("make sure the apply runs where those conditions hold".into()),
            });
        }
        for u in v.unknown() {
            push(skipped(
                address,
                format!(
                    "preflight checked service role \"{role}\" without one of its policies: {}",
                    src.why_unknown(u)
                ),
            ));
        }
    }
    out.into_values().collect()
}

fn denied(d: Decision) -> &'static str {
    match d {
        Decision::ExplicitDeny => "explicitly denied",
        _ => "not granted",
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::cloud::wire::GetCallerIdentityResponse;
    use crate::manifest::ProjectKey;
    use crate::plan::testing::*;
    use crate::policy::imm;

    fn identity(t: &str, arn: &str) -> GetCallerIdentityResponse {
        GetCallerIdentityResponse {
            account_id: "123".into(),
            identity_type: t.into(),
            arn: arn.into(),
            ..Default::default()
        }
    }

    #[test]
    fn identities_are_read_from_type_and_arn() {
        assert_eq!(
            caller_from_identity(&identity("Account", "acs:ram::123:root")),
            Caller::Root {
                account: "123".into()
            }
        );
        assert_eq!(
            caller_from_identity(&identity("RAMUser", "acs:ram::123:user/dev")),
            Caller::User {
                account: "123".into(),
                name: "dev".into()
            }
        );
        assert_eq!(
            caller_from_identity(&identity(
                "AssumedRoleUser",
                "acs:ram::123:assumed-role/deployer/ci-42"
            )),
            Caller::AssumedRole {
                account: "123".into(),
                role: "deployer".into()
            }
        );
        assert!(matches!(
            caller_from_identity(&identity("Federated", "acs:ram::123:saml/x")),
            Caller::Other { .. }
        ));
    }

    fn fixture() -> (Desired, Vec<(Address, String)>) {
        let mut p = desired_policy("svc-min");
        p.document = imm::service_role_policy(&["media".into()], &[]);
        let d = desired(
            vec![p],
            vec![desired_role(
                "svc",
                &[policy_ref(crate::manifest::PolicyType::Custom, "svc-min")],
            )],
            vec![desired_project("media", "svc")],
        );
        let addr = Address::project(&ProjectKey {
            region: REGION.into(),
            name: "media".into(),
        });
        (d, vec![(addr, "svc".into())])
    }

    fn run(caller_docs: &[Value]) -> Vec<Finding> {
        let (d, settings) = fixture();
        let refs: Vec<&Value> = caller_docs.iter().collect();
        let dev = Caller::User {
            account: "123".into(),
            name: "dev".into(),
        };
        check(
            &dev,
            &refs,
            &settings,
            &d,
            &empty_live(),
            "2026-06-01T00:00:00Z",
        )
    }

    fn codes_of(f: &[Finding]) -> Vec<&str> {
        f.iter().map(|f| f.code.as_str()).collect()
    }

    #[test]
    fn a_caller_holding_pass_role_and_a_superset_passes() {
        let full = crate::policy::system::document("AliyunIMMFullAccess")
            .unwrap()
            .0
            .clone();
        let oss = crate::policy::system::document("AliyunOSSFullAccess")
            .unwrap()
            .0
            .clone();
        let mns = crate::policy::system::document("AliyunMNSFullAccess")
            .unwrap()
            .0
            .clone();
        assert!(run(&[full, oss, mns]).is_empty());
    }

    #[test]
    fn a_caller_without_pass_role_is_refused_with_the_rule() {
        let f = run(&[
            json!({"Version":"1","Statement":[{"Effect":"Allow","Action":["imm:*","oss:*","mns:*"],"Resource":"*"}]}),
        ]);
        // The role's own minimum grants ram:PassRole too, which the caller then also lacks.
        assert_eq!(codes_of(&f), [codes::PASS_ROLE, codes::ROLE_PERMISSION]);
        assert!(f[1].message.ends_with(
            "grants: ram:PassRole on *; IMM would refuse this change, because whoever sets a project's service role must hold every permission it grants"
        ), "{}", f[1].message);
        assert_eq!(f[0].severity, Severity::Error);
        assert!(f[0].message.contains("RAM user \"dev\""));
        assert!(
            f[0].message
                .contains("ram:PassRole on acs:ram:*:123:role/svc is not granted")
        );
        assert!(
            f[0].message
                .contains("must hold ram:PassRole on it and every permission it grants")
        );
    }

    #[test]
    fn a_caller_lacking_what_the_role_grants_is_told_exactly_what() {
        let f = run(&[
            crate::policy::system::document("AliyunIMMFullAccess")
                .unwrap()
                .0
                .clone(),
            json!({"Version":"1","Statement":[{"Effect":"Allow","Action":["oss:GetObject","oss:List*","mns:*"],"Resource":"*"}]}),
        ]);
        assert_eq!(codes_of(&f), [codes::ROLE_PERMISSION]);
        assert!(
            f[0].message.contains("oss:Get* on acs:oss:*:*:media, "),
            "{}",
            f[0].message
        );
        assert!(!f[0].message.contains("oss:List*"));
        assert!(!f[0].message.contains("mns:*"));
    }

    #[test]
    fn a_grant_under_a_condition_preflight_cannot_see_is_a_warning() {
        let f = run(&[json!({"Version":"1","Statement":[
            {"Effect":"Allow","Action":"*","Resource":"*",
             "Condition":{"IpAddress":{"acs:SourceIp":"10.0.0.0/8"}}}]})]);
        assert_eq!(codes_of(&f), [codes::CONDITIONAL, codes::CONDITIONAL]);
        assert!(f.iter().all(|f| f.severity == Severity::Warning));
    }

    #[test]
    fn root_holds_everything() {
        let (d, settings) = fixture();
        let root = Caller::Root {
            account: "123".into(),
        };
        assert!(check(&root, &[], &settings, &d, &empty_live(), "x").is_empty());
    }
}
