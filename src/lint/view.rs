//! Where the lints get their facts: a role's trust policy and the documents of the policies
//! attached to it, from the manifests (`Desired`), the live state (`Live`, when planning), and
//! the System policy catalogue (offline). Also the IMM minimum as a list of requests.
//!
//! Pure: no I/O.

use std::collections::BTreeSet;

use crate::live::Live;
use crate::manifest::{Desired, PolicyRef, PolicyType};
use crate::policy::eval::{Decision, Request, Verdict, judge};
use crate::policy::imm::{
    IMM_SERVICE_PRINCIPAL, MNS_ACTIONS, OSS_BUCKET_ACTIONS, OSS_OBJECT_ACTIONS,
    PASS_ROLE_CONDITION_KEY, bucket_resource, object_resource,
};
use crate::policy::{PolicyDocument, system};

/// The facts available to a lint run. `desired: None` reads the live side only (what the
/// plan lint does for "before" and "after"); `live: None` is offline (`immctl validate`).
#[derive(Clone, Copy)]
pub(crate) struct Sources<'a> {
    pub desired: Option<&'a Desired>,
    pub live: Option<&'a Live>,
}

/// One policy attached to a role, with its document when known.
#[derive(Debug, Clone)]
pub(crate) struct Attached<'a> {
    pub policy: PolicyRef,
    pub doc: Option<&'a PolicyDocument>,
}

/// A role as the lints see it.
#[derive(Debug, Clone)]
pub(crate) struct RoleView<'a> {
    pub name: String,
    pub trust: &'a PolicyDocument,
    pub attached: Vec<Attached<'a>>,
}

impl<'a> RoleView<'a> {
    /// Documents immctl knows.
    pub fn known_docs(&self) -> Vec<&'a serde_json::Value> {
        self.attached
            .iter()
            .filter_map(|a| a.doc.map(|d| &d.0))
            .collect()
    }

    /// Attached policies whose document immctl does not know.
    pub fn unknown(&self) -> Vec<&PolicyRef> {
        self.attached
            .iter()
            .filter(|a| a.doc.is_none())
            .map(|a| &a.policy)
            .collect()
    }
}

/// What a role name resolves to.
pub(crate) enum RoleLookup<'a> {
    /// Declared in the manifests: the declared trust policy and attachments.
    Declared(RoleView<'a>),
    /// Not declared, but read in full from the account.
    Live(RoleView<'a>),
    /// Exists in the account but was not read in full (neither declared nor owned).
    NotRead,
    /// Known not to exist (planning: the account's role list lacks it).
    Absent,
    /// Offline and not declared: nothing is known.
    Offline,
}

impl<'a> Sources<'a> {
    pub fn offline(&self) -> bool {
        self.live.is_none()
    }

    /// The document of a policy as it will be: the declared one, else the live one; System
    /// documents from the live read, else the catalogue.
    pub fn doc(&self, p: &PolicyRef) -> Option<&'a PolicyDocument> {
        match p.policy_type {
            PolicyType::Custom => self
                .desired
                .and_then(|d| d.policies.get(&p.name))
                .map(|d| &d.document)
                .or_else(|| {
                    self.live
                        .and_then(|l| l.policies.get(&p.name))
                        .map(|l| &l.document)
                }),
            PolicyType::System => self
                .live
                .and_then(|l| l.system_policy_documents.get(&p.name))
                .or_else(|| system::document(&p.name)),
        }
    }

    pub fn role(&self, name: &str) -> RoleLookup<'a> {
        if let Some(r) = self.desired.and_then(|d| d.roles.get(name)) {
            return RoleLookup::Declared(RoleView {
                name: name.to_string(),
                trust: &r.trust_policy,
                attached: self.attach(r.policies.iter()),
            });
        }
        let Some(live) = self.live else {
            return RoleLookup::Offline;
        };
        if let Some(r) = live.roles.get(name) {
            return RoleLookup::Live(RoleView {
                name: name.to_string(),
                trust: &r.trust_policy,
                attached: self.attach(r.attachments.iter()),
            });
        }
        if live.role_names.contains(name) {
            RoleLookup::NotRead
        } else {
            RoleLookup::Absent
        }
    }

    fn attach<'p>(&self, refs: impl Iterator<Item = &'p PolicyRef>) -> Vec<Attached<'a>> {
        refs.map(|p| Attached {
            policy: p.clone(),
            doc: self.doc(p),
        })
        .collect()
    }

    /// Why a policy's document is unknown, in words.
    pub fn why_unknown(&self, p: &PolicyRef) -> String {
        match (p.policy_type, self.offline()) {
            (PolicyType::System, true) => format!(
                "System policy \"{}\" is not in immctl's catalogue, so its document is unknown offline",
                p.name
            ),
            (PolicyType::System, false) => {
                format!("System policy \"{}\" could not be read", p.name)
            }
            (PolicyType::Custom, true) => format!(
                "custom policy \"{}\" is not declared in these manifests, so its document is unknown offline",
                p.name
            ),
            (PolicyType::Custom, false) => format!(
                "custom policy \"{}\" is neither declared nor read from the account",
                p.name
            ),
        }
    }

    /// The account id for ARNs, or `*` when unknown (offline).
    pub fn account(&self) -> &str {
        self.live
            .and_then(|l| l.account_id.as_deref())
            .unwrap_or("*")
    }
}

/// Which resource form an OSS requirement is checked against (DESIGN.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Form {
    /// `acs:oss:*:*:<bucket>`
    Bucket,
    /// `acs:oss:*:*:<bucket>/*`
    Object,
}

impl Form {
    pub fn label(self) -> &'static str {
        match self {
            Form::Bucket => "bucket level",
            Form::Object => "object level",
        }
    }
    /// `bucket` / `object`
    pub fn word(self) -> &'static str {
        match self {
            Form::Bucket => "bucket",
            Form::Object => "object",
        }
    }
    pub fn other(self) -> Form {
        match self {
            Form::Bucket => Form::Object,
            Form::Object => Form::Bucket,
        }
    }
    pub fn resource(self, bucket: &str) -> String {
        match self {
            Form::Bucket => bucket_resource(bucket),
            Form::Object => object_resource(bucket),
        }
    }
}

/// One permission of the IMM minimum.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Need {
    Oss {
        bucket: String,
        form: Form,
        action: &'static str,
    },
    Mns {
        action: &'static str,
    },
    PassRole,
}

impl Need {
    /// The request that checks it. Action patterns are asked as literal text, so only a
    /// grant that covers the whole pattern (`oss:*` for `oss:Get*`) satisfies it; the same for
    /// `<bucket>/*` (every object of the bucket).
    pub fn request(&self, role: &str, account: &str) -> Request {
        match self {
            Need::Oss {
                bucket,
                form,
                action,
            } => Request::new(*action, form.resource(bucket)),
            Need::Mns { action } => Request::new(*action, "acs:mns:*:*:*"),
            Need::PassRole => Request::new("ram:PassRole", pass_role_resource(role, account))
                .with(PASS_ROLE_CONDITION_KEY, IMM_SERVICE_PRINCIPAL),
        }
    }
}

pub(crate) fn pass_role_resource(role: &str, account: &str) -> String {
    format!("acs:ram:*:{account}:role/{role}")
}

/// The IMM minimum for `buckets` (sorted, de-duplicated): every bucket-level action on the
/// bucket, every object-level action on its objects, `mns:*`, and `ram:PassRole` for IMM.
pub(crate) fn minimum<'b>(buckets: impl IntoIterator<Item = &'b String>) -> Vec<Need> {
    let buckets: BTreeSet<&String> = buckets.into_iter().collect();
    let mut out = Vec::new();
    for b in buckets {
        for (form, actions) in [
            (Form::Bucket, OSS_BUCKET_ACTIONS),
            (Form::Object, OSS_OBJECT_ACTIONS),
        ] {
            for action in actions {
                out.push(Need::Oss {
                    bucket: b.clone(),
                    form,
                    action,
                });
            }
        }
    }
    out.extend(MNS_ACTIONS.iter().map(|action| Need::Mns { action }));
    out.push(Need::PassRole);
    out
}

/// How the role's known documents answer each need.
pub(crate) struct Coverage {
    pub missing: Vec<Need>,
    pub conditional: Vec<Need>,
}

pub(crate) fn coverage(
    docs: &[&serde_json::Value],
    needs: &[Need],
    role: &str,
    account: &str,
) -> Coverage {
    let mut c = Coverage {
        missing: Vec::new(),
        conditional: Vec::new(),
    };
    for n in needs {
        match judge(docs, &n.request(role, account)) {
            Verdict::Allowed => {}
            Verdict::Conditional => c.conditional.push(n.clone()),
            Verdict::Refused(_) => c.missing.push(n.clone()),
        }
    }
    c
}

/// Is the need allowed by these documents (strictly)?
pub(crate) fn allows(docs: &[&serde_json::Value], n: &Need, role: &str, account: &str) -> bool {
    crate::policy::eval::evaluate(docs, &n.request(role, account)) == Decision::Allow
}

/// `on bucket media: oss:PutBucketAcl (bucket level, acs:oss:*:*:media); oss:PutObject
/// (object level, acs:oss:*:*:media/*); mns:* (acs:mns:*:*:*); ram:PassRole (with
/// acs:Service=imm.aliyuncs.com)`
pub(crate) fn describe(needs: &[Need]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < needs.len() {
        match &needs[i] {
            Need::Oss { bucket, form, .. } => {
                let mut actions = Vec::new();
                while let Some(Need::Oss {
                    bucket: b,
                    form: f,
                    action,
                }) = needs.get(i)
                {
                    if b != bucket || f != form {
                        break;
                    }
                    actions.push(*action);
                    i += 1;
                }
                parts.push(format!(
                    "{} on {} ({})",
                    actions.join(", "),
                    form.resource(bucket),
                    form.label()
                ));
            }
            Need::Mns { action } => {
                parts.push(format!("{action} on acs:mns:*:*:*"));
                i += 1;
            }
            Need::PassRole => {
                parts.push(format!(
                    "ram:PassRole with {PASS_ROLE_CONDITION_KEY}={IMM_SERVICE_PRINCIPAL}"
                ));
                i += 1;
            }
        }
    }
    parts.join("; ")
}
