//! What changed in one [`Change`], field by field, for the human renderers: scalars as
//! `old -> new`, tags key by key, policy documents as unified diffs of canonical pretty JSON.

use serde_json::Value;
use similar::TextDiff;

use crate::plan::{Action, Change};

/// Fields holding a policy document (shown as pretty JSON / unified diffs).
const DOCUMENT_FIELDS: &[&str] = &["document", "trust_policy"];
/// Fields never shown field by field (identity, shown in the header).
const HIDDEN_FIELDS: &[&str] = &[
    "name",
    "region",
    "role",
    "policy_type",
    "policy_name",
    "role_owner",
];

/// One line (or block) of a change's details.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum FieldLine {
    /// A field the resource gets (create).
    Added { key: String, value: String },
    /// A field that changes.
    Changed {
        key: String,
        before: String,
        after: String,
    },
    /// A field (a tag) that goes away.
    Removed { key: String, value: String },
    /// A new document: pretty JSON.
    NewDocument { key: String, pretty: String },
    /// A changed document: unified diff (`---`/`+++` headers, hunks).
    DocumentDiff { key: String, diff: String },
}

/// A JSON value as shown to people: strings quoted, `null` as `(unset)`.
pub(crate) fn show(v: &Value) -> String {
    match v {
        Value::Null => "(unset)".to_string(),
        other => other.to_string(),
    }
}

/// Pretty canonical JSON with a final newline (documents are already canonical in plans).
pub(crate) fn pretty(v: &Value) -> String {
    let mut s = serde_json::to_string_pretty(v).expect("JSON always serializes");
    s.push('\n');
    s
}

pub(crate) fn unified_diff(before: &Value, after: &Value) -> String {
    let (a, b) = (pretty(before), pretty(after));
    TextDiff::from_lines(&a, &b)
        .unified_diff()
        .context_radius(3)
        .header("before", "after")
        .to_string()
}

fn object(v: Option<&Value>) -> serde_json::Map<String, Value> {
    match v {
        Some(Value::Object(m)) => m.clone(),
        _ => serde_json::Map::new(),
    }
}

/// The detail lines of a change. Deletes show none (the header and reasons say it all).
pub(crate) fn field_lines(change: &Change) -> Vec<FieldLine> {
    let before = object(change.before.as_ref());
    let after = object(change.after.as_ref());
    let mut out = Vec::new();
    if change.action == Action::Delete {
        return out;
    }
    for (key, new) in &after {
        if HIDDEN_FIELDS.contains(&key.as_str()) {
            continue;
        }
        let old = before.get(key);
        let is_doc = DOCUMENT_FIELDS.contains(&key.as_str());
        match (old, change.action) {
            (None, _) | (_, Action::Create) => {
                if new.is_null() {
                    continue;
                }
                if is_doc {
                    out.push(FieldLine::NewDocument {
                        key: key.clone(),
                        pretty: pretty(new),
                    });
                } else if key == "tags" {
                    for (k, v) in object(Some(new)) {
                        out.push(FieldLine::Added {
                            key: format!("tags.{k}"),
                            value: show(&v),
                        });
                    }
                } else {
                    out.push(FieldLine::Added {
                        key: key.clone(),
                        value: show(new),
                    });
                }
            }
            (Some(old), _) if old == new => {}
            (Some(old), _) if is_doc => out.push(FieldLine::DocumentDiff {
                key: key.clone(),
                diff: unified_diff(old, new),
            }),
            (Some(old), _) if key == "tags" => {
                let (o, n) = (object(Some(old)), object(Some(new)));
                for (k, v) in &n {
                    match o.get(k) {
                        None => out.push(FieldLine::Added {
                            key: format!("tags.{k}"),
                            value: show(v),
                        }),
                        Some(ov) if ov != v => out.push(FieldLine::Changed {
                            key: format!("tags.{k}"),
                            before: show(ov),
                            after: show(v),
                        }),
                        Some(_) => {}
                    }
                }
                for (k, v) in &o {
                    if !n.contains_key(k) {
                        out.push(FieldLine::Removed {
                            key: format!("tags.{k}"),
                            value: show(v),
                        });
                    }
                }
            }
            (Some(old), _) => out.push(FieldLine::Changed {
                key: key.clone(),
                before: show(old),
                after: show(new),
            }),
        }
    }
    out
}

/// The API calls of a change, one short phrase each (`CreatePolicyVersion`,
/// `DeletePolicyVersion v1`, ...).
pub(crate) fn calls(change: &Change) -> Vec<String> {
    use crate::plan::Op;
    change
        .ops
        .iter()
        .map(|op| {
            let name = crate::plan::check::op_name(op);
            match op {
                Op::DeletePolicyVersion { version_id, .. } => format!("{name} {version_id}"),
                _ => name.to_string(),
            }
        })
        .collect()
}

/// "will be created" etc.
pub(crate) fn verb(action: Action) -> &'static str {
    match action {
        Action::Create => "will be created",
        Action::Update => "will be updated in place",
        Action::Adopt => "will be adopted (owner tag added)",
        Action::Delete => "will be deleted",
    }
}

/// `+`, `~`, `-`.
pub(crate) fn symbol(action: Action) -> char {
    match action {
        Action::Create => '+',
        Action::Update | Action::Adopt => '~',
        Action::Delete => '-',
    }
}
