//! `PolicyDocument`: a RAM policy (permission or trust) as JSON, and its canonical form.
//!
//! Two documents are *equal* when their canonical forms are equal. The canonical form
//! removes every difference RAM does not care about:
//! - whitespace and object key order (serde_json's map is ordered by key);
//! - `"x"` versus `["x"]` for the list-valued fields (`Action`, `NotAction`, `Resource`,
//!   `NotResource`, principal values and condition values): always a sorted, de-duplicated list;
//! - statement order (statements are sorted by their canonical text; duplicates removed).
//!
//! Everything else is significant: an added action, `Allow` versus `Deny`, a condition value.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Fields whose value may be a string or a list of strings, and whose order is irrelevant.
const LIST_FIELDS: &[&str] = &["Action", "NotAction", "Resource", "NotResource"];

/// A RAM policy document, kept as the JSON the user (or the cloud) wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PolicyDocument(pub Value);

impl PolicyDocument {
    /// Parse JSON text (as RAM returns it) into a document.
    pub fn from_json_str(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text).map(PolicyDocument)
    }

    /// The canonical form: see the module docs. Idempotent.
    pub fn canonical(&self) -> Value {
        canonicalize(&self.0)
    }

    /// Compact canonical JSON text; what gets hashed for fingerprints.
    pub fn canonical_string(&self) -> String {
        serde_json::to_string(&self.canonical()).expect("a JSON value always serializes")
    }

    /// Pretty canonical JSON text; what plans diff line by line.
    pub fn canonical_pretty(&self) -> String {
        serde_json::to_string_pretty(&self.canonical()).expect("a JSON value always serializes")
    }

    /// Compact JSON as sent to the API (canonical, so repeated applies send identical text).
    pub fn to_wire(&self) -> String {
        self.canonical_string()
    }

    /// Semantic equality (canonical forms equal).
    pub fn semantically_eq(&self, other: &PolicyDocument) -> bool {
        self.canonical() == other.canonical()
    }
}

impl PartialEq for PolicyDocument {
    fn eq(&self, other: &Self) -> bool {
        self.semantically_eq(other)
    }
}
impl Eq for PolicyDocument {}

fn canonicalize(v: &Value) -> Value {
    match v {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, val) in map {
                let c = if k == "Statement" {
                    canonical_statements(val)
                } else {
                    canonicalize(val)
                };
                out.insert(k.clone(), c);
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(canonicalize).collect()),
        other => other.clone(),
    }
}

fn canonical_statements(v: &Value) -> Value {
    let items: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        // A single statement object is accepted by RAM; treat it as a list of one.
        other => vec![other],
    };
    let mut stmts: Vec<Value> = items.into_iter().map(canonical_statement).collect();
    stmts.sort_by_cached_key(|s| serde_json::to_string(s).unwrap_or_default());
    stmts.dedup();
    Value::Array(stmts)
}

fn canonical_statement(v: &Value) -> Value {
    let Value::Object(map) = v else {
        return canonicalize(v);
    };
    let mut out = Map::new();
    for (k, val) in map {
        let c = match k.as_str() {
            f if LIST_FIELDS.contains(&f) => string_set(val),
            // Principal: {"Service": "x" | ["x"], "RAM": ..., "Federated": ...} or "*".
            "Principal" => match val {
                Value::Object(p) => Value::Object(
                    p.iter()
                        .map(|(pk, pv)| (pk.clone(), string_set(pv)))
                        .collect(),
                ),
                other => canonicalize(other),
            },
            // Condition: {Operator: {Key: "v" | ["v", ...]}}.
            "Condition" => match val {
                Value::Object(ops) => Value::Object(
                    ops.iter()
                        .map(|(op, keys)| {
                            let keys = match keys {
                                Value::Object(km) => Value::Object(
                                    km.iter()
                                        .map(|(ck, cv)| (ck.clone(), string_set(cv)))
                                        .collect(),
                                ),
                                other => canonicalize(other),
                            };
                            (op.clone(), keys)
                        })
                        .collect(),
                ),
                other => canonicalize(other),
            },
            _ => canonicalize(val),
        };
        out.insert(k.clone(), c);
    }
    Value::Object(out)
}

/// `"x"` and `["x"]` both become `["x"]`; lists are sorted and de-duplicated. Non-string
/// scalars (numbers, booleans in conditions) are kept as their JSON value, sorted by text.
fn string_set(v: &Value) -> Value {
    let items: Vec<&Value> = match v {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    // Plain strings (every action and ARN in practice) sort by the string itself, without
    // serializing each one: for strings with no `"`, `\`, space, `!` or control character,
    // that is the very order of their JSON text (`"` + s + `"`), which stays the rule.
    let plain: Option<Vec<&str>> = items
        .iter()
        .map(|x| {
            x.as_str()
                .filter(|s| s.bytes().all(|b| b > b'"' && b != b'\\'))
        })
        .collect();
    if let Some(mut strings) = plain {
        strings.sort_unstable();
        strings.dedup();
        return Value::Array(
            strings
                .into_iter()
                .map(|s| Value::String(s.to_string()))
                .collect(),
        );
    }
    let mut items: Vec<Value> = items.into_iter().map(canonicalize).collect();
    items.sort_by_cached_key(|x| serde_json::to_string(x).unwrap_or_default());
    items.dedup();
    Value::Array(items)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> PolicyDocument {
        PolicyDocument(v)
    }

    #[test]
    fn string_and_single_element_list_are_equal() {
        let a = doc(
            json!({"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:GetObject","Resource":"*"}]}),
        );
        let b = doc(
            json!({"Statement":[{"Resource":["*"],"Action":["oss:GetObject"],"Effect":"Allow"}],"Version":"1"}),
        );
        assert_eq!(a, b);
    }

    #[test]
    fn statement_and_array_order_do_not_matter() {
        let a = doc(json!({"Version":"1","Statement":[
            {"Effect":"Allow","Action":["a:1","a:2"],"Resource":"*"},
            {"Effect":"Deny","Action":"b:1","Resource":"*"}]}));
        let b = doc(json!({"Version":"1","Statement":[
            {"Effect":"Deny","Action":"b:1","Resource":"*"},
            {"Effect":"Allow","Action":["a:2","a:1"],"Resource":"*"}]}));
        assert_eq!(a, b);
    }

    /// The order of a canonical list is the order of its items' JSON text, whichever way it
    /// is computed (plain strings take a shortcut).
    #[test]
    fn lists_sort_by_their_json_text() {
        let by_text = |items: &[Value]| {
            let mut v = items.to_vec();
            v.sort_by_cached_key(|x| serde_json::to_string(x).unwrap());
            v.dedup();
            Value::Array(v)
        };
        for items in [
            vec![json!("b"), json!("a"), json!("a:*"), json!("A"), json!("a")],
            // `!` and space sort before the closing quote: not plain, the general path.
            vec![
                json!("ab"),
                json!("ab!"),
                json!("ab c"),
                json!("a\\b"),
                json!("a\"b"),
            ],
            vec![json!(2), json!("x"), json!(true), json!(10)],
            vec![json!("智能"), json!("z"), json!("é")],
        ] {
            assert_eq!(string_set(&Value::Array(items.clone())), by_text(&items));
        }
        assert_eq!(string_set(&json!("x")), json!(["x"]));
    }

    proptest::proptest! {
        #[test]
        fn any_string_list_sorts_by_json_text(items in proptest::collection::vec("[ab! \"\\\\*:é]{0,4}", 0..6)) {
            let items: Vec<Value> = items.into_iter().map(Value::String).collect();
            let mut expected = items.clone();
            expected.sort_by_cached_key(|x| serde_json::to_string(x).unwrap());
            expected.dedup();
            proptest::prop_assert_eq!(string_set(&Value::Array(items)), Value::Array(expected));
        }
    }

    #[test]
    fn real_changes_are_differences() {
        let base = json!({"Version":"1","Statement":[{"Effect":"Allow","Action":["a:1"],"Resource":"*",
            "Condition":{"StringEquals":{"acs:Service":"imm.aliyuncs.com"}}}]});
        let mut added = base.clone();
        added["Statement"][0]["Action"] = json!(["a:1", "a:2"]);
        let mut deny = base.clone();
        deny["Statement"][0]["Effect"] = json!("Deny");
        let mut cond = base.clone();
        cond["Statement"][0]["Condition"]["StringEquals"]["acs:Service"] =
            json!("oss.aliyuncs.com");
        for changed in [added, deny, cond] {
            assert_ne!(doc(base.clone()), doc(changed));
        }
    }
}
