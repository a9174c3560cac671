//! Fingerprints of live resources: hex SHA-256 of a canonical JSON form. A saved plan keeps
//! the fingerprint of everything it read; `immctl apply PLAN.json` re-reads and refuses when
//! a resource it touches has a different fingerprint (or appeared / disappeared).
//!
//! Canonical: object keys sorted (serde_json's map), policy documents in their canonical
//! form. Left out on purpose: a role's attachments (each attachment is its own address) and a
//! policy's `attachment_count` (it changes whenever anything anywhere attaches the policy,
//! which would make every saved plan stale for no reason).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::live::{Live, LivePolicy, LiveProject, LiveRole};
use crate::manifest::{Address, PolicyRef, ProjectKey};

/// A live resource, by reference, as fingerprinted.
#[derive(Debug, Clone, Copy)]
pub enum LiveResource<'a> {
    Role(&'a LiveRole),
    Policy(&'a LivePolicy),
    Project(&'a LiveProject),
    /// An attachment exists; its fingerprint only says so.
    Attachment {
        role: &'a str,
        policy: &'a PolicyRef,
    },
}

impl LiveResource<'_> {
    pub fn address(&self) -> Address {
        match self {
            LiveResource::Role(r) => Address::role(&r.name),
            LiveResource::Policy(p) => Address::policy(&p.name),
            LiveResource::Project(p) => Address::project(&ProjectKey {
                region: p.region.clone(),
                name: p.name.clone(),
            }),
            LiveResource::Attachment { role, policy } => Address::attachment(role, policy),
        }
    }

    fn canonical(&self) -> Value {
        match self {
            LiveResource::Role(r) => json!({
                "kind": "role",
                "name": r.name,
                "role_id": r.role_id,
                "arn": r.arn,
                "description": r.description,
                "max_session_duration": r.max_session_duration,
                "trust_policy": r.trust_policy.canonical(),
                "tags": r.tags,
                "service_linked": r.service_linked,
            }),
            LiveResource::Policy(p) => json!({
                "kind": "policy",
                "name": p.name,
                "description": p.description,
                "default_version": p.default_version,
                "document": p.document.canonical(),
                "versions": p.versions.iter().map(|v| json!({
                    "version_id": v.version_id,
                    "is_default": v.is_default,
                    "create_date": v.create_date,
                })).collect::<Vec<_>>(),
                "tags": p.tags,
            }),
            LiveResource::Project(p) => {
                let mut v = serde_json::to_value(p).expect("a project always serializes");
                v["kind"] = json!("project");
                v
            }
            LiveResource::Attachment { role, policy } => json!({
                "kind": "attachment",
                "role": role,
                "policy_type": policy.policy_type,
                "policy_name": policy.name,
            }),
        }
    }
}

/// Hex SHA-256 of the resource's canonical JSON.
pub fn fingerprint(resource: LiveResource<'_>) -> String {
    let text = serde_json::to_string(&resource.canonical()).expect("JSON always serializes");
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// The fingerprint of every live resource read in full (roles, their attachments, custom
/// policies, projects), by address.
pub fn live_fingerprints(live: &Live) -> BTreeMap<Address, String> {
    let mut out = BTreeMap::new();
    let mut put = |r: LiveResource<'_>| {
        out.insert(r.address(), fingerprint(r));
    };
    for r in live.roles.values() {
        put(LiveResource::Role(r));
        for a in &r.attachments {
            put(LiveResource::Attachment {
                role: &r.name,
                policy: a,
            });
        }
    }
    for p in live.policies.values() {
        put(LiveResource::Policy(p));
    }
    for p in live.projects.values() {
        put(LiveResource::Project(p));
    }
    out
}
