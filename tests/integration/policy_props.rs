//! Property tests of the policy canonical form (issue 2 point 4), for arbitrary permission and
//! trust documents:
//! - canonicalisation is idempotent (the canonical form of a canonical form is itself);
//! - equality survives what RAM ignores: whitespace, key order, statement order, order of
//!   every list, `"x"` versus `["x"]`, repeated list entries and repeated statements (the
//!   variant is written out as JSON text by hand, so key order really varies);
//! - a real change is a difference: one action added, `Allow` <-> `Deny`, one condition value
//!   changed.

use std::collections::BTreeMap;

use immctl::policy::PolicyDocument;
use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Value, json};

/// One statement, as data (lists are sets here; the variants decide how they are written).
#[derive(Debug, Clone)]
struct Stmt {
    allow: bool,
    not_action: bool,
    actions: Vec<String>,
    not_resource: bool,
    resources: Vec<String>,
    condition: BTreeMap<String, BTreeMap<String, Vec<String>>>,
    principal: BTreeMap<String, Vec<String>>,
}

fn names(pool: &'static [&'static str], max: usize) -> impl Strategy<Value = Vec<String>> {
    btree_set(select(pool), 1..=max).prop_map(|s| s.into_iter().map(str::to_string).collect())
}

fn stmt() -> impl Strategy<Value = Stmt> {
    (
        any::<bool>(),
        any::<bool>(),
        names(
            &[
                "oss:GetObject",
                "oss:PutObject",
                "oss:List*",
                "mns:*",
                "imm:*",
                "ram:PassRole",
            ],
            4,
        ),
        any::<bool>(),
        names(
            &[
                "*",
                "acs:oss:*:*:media",
                "acs:oss:*:*:media/*",
                "acs:imm:*:*:project/x",
            ],
            3,
        ),
        btree_map(
            select(&["StringEquals", "StringLike", "IpAddress"][..]).prop_map(str::to_string),
            btree_map(
                select(&["acs:Service", "acs:SourceIp", "oss:Prefix"][..]).prop_map(str::to_string),
                names(&["imm.aliyuncs.com", "10.0.0.0/8", "a/*", "b"], 3),
                1..=2,
            ),
            0..=2,
        ),
        btree_map(
            select(&["Service", "RAM"][..]).prop_map(str::to_string),
            names(
                &["imm.aliyuncs.com", "ecs.aliyuncs.com", "acs:ram::1:root"],
                2,
            ),
            0..=2,
        ),
    )
        .prop_map(
            |(allow, not_action, actions, not_resource, resources, condition, principal)| Stmt {
                allow,
                not_action,
                actions,
                not_resource,
                resources,
                condition,
                principal,
            },
        )
}

/// A document of distinct statements (two statements that differ only in list order are one).
fn statements() -> impl Strategy<Value = Vec<Stmt>> {
    vec(stmt(), 1..=4).prop_map(|stmts| {
        let mut seen = std::collections::BTreeSet::new();
        stmts
            .into_iter()
            .filter(|s| seen.insert(doc(std::slice::from_ref(s)).canonical_string()))
            .collect()
    })
}

fn stmt_value(s: &Stmt) -> Value {
    let mut m = serde_json::Map::new();
    m.insert(
        "Effect".into(),
        json!(if s.allow { "Allow" } else { "Deny" }),
    );
    m.insert(
        if s.not_action { "NotAction" } else { "Action" }.into(),
        json!(s.actions),
    );
    m.insert(
        if s.not_resource {
            "NotResource"
        } else {
            "Resource"
        }
        .into(),
        json!(s.resources),
    );
    if !s.condition.is_empty() {
        m.insert("Condition".into(), json!(s.condition));
    }
    if !s.principal.is_empty() {
        m.insert("Principal".into(), json!(s.principal));
    }
    Value::Object(m)
}

fn doc(stmts: &[Stmt]) -> PolicyDocument {
    PolicyDocument(json!({
        "Version": "1",
        "Statement": stmts.iter().map(stmt_value).collect::<Vec<_>>(),
    }))
}

/// A tiny deterministic generator driven by the test's seed, for the variant's choices.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
    fn space(&mut self) -> &'static str {
        [" ", "", "\n", "\n\t  ", "  "][self.below(5)]
    }
}

/// JSON text of `v` with keys in a random order, random whitespace, every list shuffled with
/// some entries repeated, and one-element lists sometimes written as the bare string.
fn write_variant(v: &Value, rng: &mut Rng, out: &mut String, in_list_field: bool) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            rng.shuffle(&mut keys);
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(rng.space());
                out.push_str(&serde_json::to_string(k).unwrap());
                out.push_str(rng.space());
                out.push(':');
                out.push_str(rng.space());
                // Below Statement, every array is a set-like list (actions, resources,
                // principals, condition values).
                write_variant(&map[*k], rng, out, true);
            }
            out.push_str(rng.space());
            out.push('}');
        }
        Value::Array(items) => {
            let mut items: Vec<&Value> = items.iter().collect();
            if in_list_field && items.len() == 1 && items[0].is_string() && rng.coin() {
                // "x" instead of ["x"]
                out.push_str(&serde_json::to_string(items[0]).unwrap());
                return;
            }
            if !items.is_empty() && rng.coin() {
                let dup = items[rng.below(items.len())];
                items.push(dup);
            }
            rng.shuffle(&mut items);
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(rng.space());
                write_variant(item, rng, out, in_list_field);
            }
            out.push_str(rng.space());
            out.push(']');
        }
        other => out.push_str(&serde_json::to_string(other).unwrap()),
    }
}

fn variant(d: &PolicyDocument, seed: u64) -> PolicyDocument {
    let mut rng = Rng(seed | 1);
    let mut text = String::new();
    write_variant(&d.0, &mut rng, &mut text, false);
    PolicyDocument::from_json_str(&text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn canonicalisation_is_idempotent(stmts in statements(), seed in any::<u64>()) {
        for d in [doc(&stmts), variant(&doc(&stmts), seed)] {
            let once = PolicyDocument(d.canonical());
            prop_assert_eq!(once.canonical(), d.canonical());
            prop_assert_eq!(once.canonical_string(), d.canonical_string());
            prop_assert_eq!(once.canonical_pretty(), d.canonical_pretty());
        }
    }

    #[test]
    fn equality_survives_order_whitespace_and_singletons(stmts in statements(), seed in any::<u64>()) {
        let d = doc(&stmts);
        let v = variant(&d, seed);
        prop_assert!(d.semantically_eq(&v), "{}\nvs\n{}", d.canonical_pretty(), v.canonical_pretty());
        prop_assert_eq!(d.canonical_string(), v.canonical_string());
        // What the plan diffs and the fingerprints hash: identical text.
        prop_assert_eq!(d.canonical_pretty(), v.canonical_pretty());
        prop_assert_eq!(d.to_wire(), v.to_wire());
    }

    #[test]
    fn a_real_change_is_a_difference(stmts in statements(), seed in any::<u64>(), which in 0usize..3) {
        let mut rng = Rng(seed | 1);
        let i = rng.below(stmts.len());
        let mut changed = stmts.clone();
        let s = &mut changed[i];
        match which {
            0 => s.actions.push(format!("zz:Added{}", rng.below(1000))),
            1 => s.allow = !s.allow,
            _ => {
                if s.condition.is_empty() {
                    s.condition.insert("StringEquals".into(), BTreeMap::from([(
                        "acs:Service".into(), vec!["imm.aliyuncs.com".into()])]));
                } else {
                    let op = s.condition.keys().nth(rng.below(s.condition.len())).unwrap().clone();
                    let keys = s.condition.get_mut(&op).unwrap();
                    let key = keys.keys().nth(rng.below(keys.len())).unwrap().clone();
                    let values = keys.get_mut(&key).unwrap();
                    let j = rng.below(values.len());
                    values[j] = format!("changed-{}", rng.below(1000));
                }
            }
        }
        let before = doc(&stmts);
        let after = variant(&doc(&changed), seed ^ 0x9e37_79b9);
        prop_assert!(!before.semantically_eq(&after),
            "change {} of statement {} went unseen:\n{}", which, i, before.canonical_pretty());
        prop_assert_ne!(before.canonical_string(), after.canonical_string());
    }
}

/// Any JSON at all, with keys that the canonical form treats specially, nested anywhere.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (0i64..3).prop_map(|n| json!(n)),
        select(&["x", "y", "*", "Allow"][..]).prop_map(|s| json!(s)),
    ];
    leaf.prop_recursive(4, 48, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(
                select(
                    &[
                        "Statement",
                        "Action",
                        "Resource",
                        "Condition",
                        "Principal",
                        "StringEquals",
                        "k"
                    ][..]
                )
                .prop_map(str::to_string),
                inner,
                0..4,
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Idempotence holds for malformed documents too (the live side can hold anything).
    #[test]
    fn canonicalisation_is_idempotent_on_any_json(v in any_json()) {
        let d = PolicyDocument(v);
        let once = PolicyDocument(d.canonical());
        prop_assert_eq!(once.canonical(), d.canonical());
    }
}

#[test]
fn statement_as_object_equals_a_list_of_one() {
    let a = PolicyDocument(
        json!({"Version":"1","Statement":{"Effect":"Allow","Action":"a:b","Resource":"*"}}),
    );
    let b = PolicyDocument(
        json!({"Version":"1","Statement":[{"Effect":"Allow","Action":["a:b"],"Resource":["*"]}]}),
    );
    assert_eq!(a, b);
    assert_eq!(a.canonical_string(), b.canonical_string());
}
