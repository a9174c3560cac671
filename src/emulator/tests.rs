//! Known-answer tests of the emulator's request verification.
//!
//! The emulator verifies with the same `cloud::signer` code the client signs with, so a bug
//! both sides share would go unnoticed by round trips. These tests feed the verifier what
//! the official SDKs produced (`tests/data/vectors/`, copies of `shared/vectors/`): every
//! V1 and V3 vector, and every raw HTTP request captured from the old SDK, the Tea SDK in V3
//! mode and the Tea SDK in V1 mode, decoded by the emulator's own HTTP decoding. Freshness
//! (clock skew, nonce reuse, STS expiry) is tested with the injectable clock.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use super::engine::{Caller, Config, Engine, Incoming, Session};
use super::state::{AccessKey, State};
use super::wire::{ApiError, Params, Product};

const V1: &str = include_str!("../../tests/data/vectors/signature-v1.json");
const V3: &str = include_str!("../../tests/data/vectors/signature-v3.json");
const CAPTURES: &str = include_str!("../../tests/data/vectors/sdk-requests.json");

fn config() -> Config {
    Config {
        latency: Duration::ZERO,
        fault_rate: 0.0,
        rate_limit_scale: 0.0,
        consistency_delay: Duration::ZERO,
        retry_after: None,
        fail_next: Vec::new(),
        lose_reply_next: Vec::new(),
        region: "cn-hangzhou".to_string(),
    }
}

/// An engine whose account knows `id` as a root key with `secret`, or, when `token` is
/// given, as an STS key of the role `reader` valid until `expires`.
fn engine(id: &str, secret: &str, token: Option<&str>, expires: DateTime<Utc>) -> Engine {
    let mut st = State::default();
    let mut e = match token {
        None => {
            st.access_keys.push(AccessKey {
                id: id.to_string(),
                secret: secret.to_string(),
                user: None,
            });
            Engine::new(st, config(), None)
        }
        Some(t) => {
            let mut e = Engine::new(st, config(), None);
            e.sessions.insert(
                id.to_string(),
                Session {
                    secret: secret.to_string(),
                    token: t.to_string(),
                    expiration: expires,
                    role: "reader".to_string(),
                    role_id: "300000000000000001".to_string(),
                    session_name: "s1".to_string(),
                    policy: None,
                },
            );
            e
        }
    };
    e.dirty = false;
    e
}

fn far_future() -> DateTime<Utc> {
    Utc::now() + TimeDelta::days(3650)
}

fn str_map(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect()
}

fn product_of(params: &BTreeMap<String, String>) -> Product {
    params
        .get("Version")
        .and_then(|v| Product::from_version(v))
        .unwrap_or(Product::Ram)
}

/// A V1 call as the HTTP layer would hand it over: `params` plus `Signature`.
fn v1_incoming(method: &str, params: &BTreeMap<String, String>, signature: &str) -> Incoming {
    let mut all = params.clone();
    all.insert("Signature".to_string(), signature.to_string());
    Incoming {
        method: method.to_string(),
        query: all.clone(),
        params: Params(all),
        headers: BTreeMap::new(),
        body: Vec::new(),
        action: params.get("Action").cloned().unwrap_or_default(),
        product: product_of(params),
        region: "cn-hangzhou".to_string(),
        source_ip: "127.0.0.1".to_string(),
    }
}

#[track_caller]
fn expect_mismatch(r: Result<super::engine::Verified, ApiError>) -> ApiError {
    let err = r.expect_err("a tampered request must not verify");
    assert_eq!(
        (err.status, err.code.as_str()),
        (400, "SignatureDoesNotMatch")
    );
    err
}

/// What the old Python SDK does with the message: `Message.split(':')[1]`.
fn old_sdk_split(message: &str) -> &str {
    message.split(':').nth(1).expect("the message has a ':'")
}

#[test]
fn every_v1_vector_verifies_and_any_change_is_refused_with_the_string_to_sign() {
    let file: Value = serde_json::from_str(V1).unwrap();
    let vectors = file["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 22);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let method = v["method"].as_str().unwrap();
        let params = str_map(&v["params"]);
        let id = v["access_key_id"].as_str().unwrap();
        let secret = v["access_key_secret"].as_str().unwrap();
        let sig = v["signature"].as_str().unwrap();
        let sts = v["string_to_sign"].as_str().unwrap();
        let token = params.get("SecurityToken").map(String::as_str);
        let e = engine(id, secret, token, far_future());
        let ok = e
            .verify_signature(&v1_incoming(method, &params, sig), Utc::now())
            .unwrap_or_else(|err| panic!("{name}: {err:?}"));
        assert_eq!(ok.access_key_id, id, "{name}");
        assert!(!ok.v3, "{name}");
        match (token, &ok.caller) {
            (None, Caller::Root { .. }) | (Some(_), Caller::Role { .. }) => {}
            (_, other) => panic!("{name}: caller {other:?}"),
        }

        // Wrong secret: refused, and the message carries the server's string to sign in
        // the form the old SDK parses (it must equal the SDK's own string to sign).
        let wrong = engine(id, &format!("{secret}x"), token, far_future());
        let err =
            expect_mismatch(wrong.verify_signature(&v1_incoming(method, &params, sig), Utc::now()));
        assert_eq!(old_sdk_split(&err.message), sts, "{name}");
        assert!(
            err.message
                .starts_with("Specified signature is not matched with our calculation."),
            "{name}"
        );

        // Any changed parameter, or the other HTTP method, breaks the signature.
        let mut changed = params.clone();
        let key = changed
            .keys()
            .find(|k| !matches!(k.as_str(), "AccessKeyId" | "SecurityToken"))
            .unwrap()
            .clone();
        changed.get_mut(&key).unwrap().push('x');
        expect_mismatch(e.verify_signature(&v1_incoming(method, &changed, sig), Utc::now()));
        let other = if method == "GET" { "POST" } else { "GET" };
        expect_mismatch(e.verify_signature(&v1_incoming(other, &params, sig), Utc::now()));
    }
}

#[test]
fn v1_vector_with_the_exact_request_target_decodes_and_verifies() {
    let file: Value = serde_json::from_str(V1).unwrap();
    let v = file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "core-get-signed-url-end-to-end")
        .unwrap();
    let target = v["request_path_and_query"].as_str().unwrap();
    let inc = decode_raw(v["method"].as_str().unwrap(), target, &[], b"");
    assert_eq!(inc.action, "CreateRole");
    assert_eq!(inc.product, Product::Ram);
    let e = engine("testid", "testsecret", None, far_future());
    e.verify_signature(&inc, Utc::now()).unwrap();
}

fn v3_incoming(v: &Value) -> Incoming {
    let mut headers: BTreeMap<String, String> = str_map(&v["headers"])
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    headers.insert(
        "authorization".to_string(),
        v["authorization"].as_str().unwrap().to_string(),
    );
    let query = str_map(&v["query"]);
    let body = v["body"].as_str().unwrap_or("").as_bytes().to_vec();
    let version = headers.get("x-acs-version").cloned().unwrap_or_default();
    Incoming {
        method: v["method"].as_str().unwrap().to_string(),
        params: Params(query.clone()),
        query,
        action: headers.get("x-acs-action").cloned().unwrap_or_default(),
        product: Product::from_version(&version).unwrap_or(Product::Ram),
        headers,
        body,
        region: "cn-hangzhou".to_string(),
        source_ip: "127.0.0.1".to_string(),
    }
}

#[test]
fn every_v3_vector_verifies_and_any_change_is_refused() {
    let file: Value = serde_json::from_str(V3).unwrap();
    let vectors = file["vectors"].as_array().unwrap();
    assert!(vectors.len() >= 8);
    for v in vectors {
        let name = v["name"].as_str().unwrap();
        let id = v["access_key_id"].as_str().unwrap();
        let secret = v["access_key_secret"].as_str().unwrap();
        let inc = v3_incoming(v);
        let token = inc.headers.get("x-acs-security-token").cloned();
        let e = engine(id, secret, token.as_deref(), far_future());
        let ok = e
            .verify_signature(&inc, Utc::now())
            .unwrap_or_else(|err| panic!("{name}: {err:?}"));
        assert!(ok.v3, "{name}");
        assert_eq!(
            ok.timestamp.as_deref(),
            inc.headers.get("x-acs-date").map(String::as_str)
        );

        let wrong = engine(id, &format!("{secret}x"), token.as_deref(), far_future());
        let err = expect_mismatch(wrong.verify_signature(&inc, Utc::now()));
        assert_eq!(
            old_sdk_split(&err.message),
            v["string_to_sign"].as_str().unwrap(),
            "{name}"
        );

        // A changed signed header, query value or body breaks it.
        let mut h = inc.clone();
        h.headers
            .insert("x-acs-signature-nonce".into(), "another-nonce".into());
        expect_mismatch(e.verify_signature(&h, Utc::now()));
        let mut q = inc.clone();
        q.query.insert("Injected".into(), "1".into());
        expect_mismatch(e.verify_signature(&q, Utc::now()));
        let mut b = inc.clone();
        b.body.extend_from_slice(b"&x=1");
        expect_mismatch(e.verify_signature(&b, Utc::now()));
    }
}

#[test]
fn v3_action_and_version_headers_must_be_signed() {
    // Sign correctly, but leave x-acs-action out of SignedHeaders: an intermediary could
    // then change the action. Refused as a signature mismatch.
    let query = BTreeMap::from([("RoleName".to_string(), "r".to_string())]);
    let signed: BTreeMap<String, String> = [
        ("host", "127.0.0.1:1"),
        ("x-acs-version", "2015-05-01"),
        ("x-acs-date", "2024-01-02T03:04:05Z"),
        ("x-acs-signature-nonce", "n1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let auth = crate::cloud::signer::authorization_v3(
        "POST",
        "/",
        &query,
        &signed,
        b"",
        "testid",
        "testsecret",
    );
    let mut headers = signed.clone();
    headers.insert("x-acs-action".into(), "DeleteRole".into());
    headers.insert("authorization".into(), auth);
    let inc = Incoming {
        method: "POST".into(),
        query: query.clone(),
        params: Params(query),
        headers,
        body: Vec::new(),
        action: "DeleteRole".into(),
        product: Product::Ram,
        region: "cn-hangzhou".into(),
        source_ip: "127.0.0.1".into(),
    };
    let e = engine("testid", "testsecret", None, far_future());
    expect_mismatch(e.verify_signature(&inc, Utc::now()));
}

/// Run raw request bytes through the emulator's HTTP decoding.
fn decode_raw(method: &str, target: &str, headers: &[(String, String)], body: &[u8]) -> Incoming {
    let mut map = HeaderMap::new();
    for (k, v) in headers {
        map.append(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    let uri: Uri = target.parse().unwrap();
    let method = Method::from_bytes(method.as_bytes()).unwrap();
    super::decode(
        &method,
        &uri,
        &map,
        &Bytes::copy_from_slice(body),
        "127.0.0.1:1".parse().unwrap(),
        "cn-hangzhou",
    )
    .unwrap_or_else(|(e, _)| panic!("{target}: {e:?}"))
}

#[test]
fn every_captured_sdk_request_decodes_and_verifies() {
    let file: Value = serde_json::from_str(CAPTURES).unwrap();
    let creds = &file["credentials"];
    let calls = file["calls"].as_array().unwrap();
    let mut families = std::collections::BTreeSet::new();
    let mut checked = 0;
    for call in calls {
        let family = call["family"].as_str().unwrap();
        let action = call["action"].as_str().unwrap();
        let service = call["service"].as_str().unwrap();
        families.insert(family.to_string());
        let (id, secret, token) = if family.ends_with("-sts") {
            let s = &creds["sts"];
            (
                s["access_key_id"].as_str().unwrap(),
                s["access_key_secret"].as_str().unwrap(),
                s["security_token"].as_str(),
            )
        } else {
            (
                creds["access_key_id"].as_str().unwrap(),
                creds["access_key_secret"].as_str().unwrap(),
                None,
            )
        };
        for r in call["requests"].as_array().unwrap() {
            let headers: Vec<(String, String)> = r["headers"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| {
                    (
                        h[0].as_str().unwrap().to_string(),
                        h[1].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            let inc = decode_raw(
                r["method"].as_str().unwrap(),
                r["target"].as_str().unwrap(),
                &headers,
                r["body"].as_str().unwrap_or("").as_bytes(),
            );
            let what = format!("{family} {service}.{action}");
            assert_eq!(inc.action, action, "{what}");
            let want = match service {
                "ram" => Product::Ram,
                "imm" => Product::Imm,
                _ => Product::Sts,
            };
            assert_eq!(inc.product, want, "{what}");
            let e = engine(id, secret, token, far_future());
            let ok = e
                .verify_signature(&inc, Utc::now())
                .unwrap_or_else(|err| panic!("{what}: {err:?}"));
            assert_eq!(ok.v3, family.starts_with("tea-v3"), "{what}");
            assert!(ok.timestamp.is_some() && ok.nonce.is_some(), "{what}");
            let wrong = engine(id, "not-the-secret", token, far_future());
            expect_mismatch(wrong.verify_signature(&inc, Utc::now()));
            checked += 1;
        }
    }
    assert_eq!(
        families.into_iter().collect::<Vec<_>>(),
        [
            "core",
            "core-sts",
            "tea-v1",
            "tea-v1-sts",
            "tea-v3",
            "tea-v3-sts"
        ]
    );
    assert!(checked >= 42, "{checked}");
}

// ------------------------------------------------------------------ freshness and expiry

fn vector(name: &str) -> Value {
    let file: Value = serde_json::from_str(V1).unwrap();
    file["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap()
        .clone()
}

fn signed_call(name: &str) -> (Incoming, DateTime<Utc>) {
    let v = vector(name);
    let params = str_map(&v["params"]);
    let ts = DateTime::parse_from_rfc3339(&params["Timestamp"])
        .unwrap()
        .with_timezone(&Utc);
    let inc = v1_incoming(
        v["method"].as_str().unwrap(),
        &params,
        v["signature"].as_str().unwrap(),
    );
    (inc, ts)
}

#[test]
fn timestamps_beyond_fifteen_minutes_either_way_are_expired() {
    let (inc, ts) = signed_call("ram-getrole-post");
    for skew in [-16, 16] {
        let mut e = engine("testid", "testsecret", None, far_future());
        let err = e
            .process_at(&inc, ts + TimeDelta::minutes(skew))
            .unwrap_err();
        assert_eq!(
            (err.status, err.code.as_str()),
            (400, "InvalidTimeStamp.Expired")
        );
    }
    // Within the window the call goes through to RAM (the role does not exist).
    let mut e = engine("testid", "testsecret", None, far_future());
    let err = e.process_at(&inc, ts + TimeDelta::minutes(14)).unwrap_err();
    assert_eq!(err.code, "EntityNotExist.Role");
}

#[test]
fn a_nonce_is_accepted_once_per_key() {
    let (inc, ts) = signed_call("ram-getrole-post");
    let mut e = engine("testid", "testsecret", None, far_future());
    assert_eq!(
        e.process_at(&inc, ts).unwrap_err().code,
        "EntityNotExist.Role"
    );
    let err = e.process_at(&inc, ts + TimeDelta::seconds(1)).unwrap_err();
    assert_eq!((err.status, err.code.as_str()), (400, "SignatureNonceUsed"));
    // A refused signature does not burn the nonce of a later, correct request.
    let (other, ts2) = signed_call("ram-getrole-get");
    let mut tampered = other.clone();
    tampered.params.0.insert("RoleName".into(), "x".into());
    let mut e = engine("testid", "testsecret", None, far_future());
    assert_eq!(
        e.process_at(&tampered, ts2).unwrap_err().code,
        "SignatureDoesNotMatch"
    );
    assert_eq!(
        e.process_at(&other, ts2).unwrap_err().code,
        "EntityNotExist.Role"
    );
}

#[test]
fn expired_sts_credentials_are_unknown_keys() {
    let (inc, ts) = signed_call("sts-getcalleridentity-securitytoken");
    let token = inc.params.get("SecurityToken").unwrap().to_string();
    let expires = ts + TimeDelta::minutes(5);
    let mut e = engine("testid", "testsecret", Some(&token), expires);
    let who = e.process_at(&inc, ts + TimeDelta::minutes(1)).unwrap();
    assert_eq!(who["IdentityType"], "AssumedRoleUser");
    let mut e = engine("testid", "testsecret", Some(&token), expires);
    let err = e.process_at(&inc, ts + TimeDelta::minutes(6)).unwrap_err();
    assert_eq!(
        (err.status, err.code.as_str()),
        (404, "InvalidAccessKeyId.NotFound")
    );
    // A session key used without its token is refused.
    let mut no_token = inc.clone();
    no_token.params.0.remove("SecurityToken");
    let e = engine("testid", "testsecret", Some(&token), expires);
    let err = e
        .verify_signature(&no_token, ts + TimeDelta::minutes(1))
        .unwrap_err();
    assert_eq!(err.code, "InvalidSecurityToken.Missing");
}

#[test]
fn a_missing_timestamp_or_nonce_is_refused_after_the_signature() {
    for (drop, code) in [
        ("Timestamp", "MissingTimestamp"),
        ("SignatureNonce", "MissingSignatureNonce"),
    ] {
        let v = vector("ram-getrole-post");
        let mut params = str_map(&v["params"]);
        params.remove(drop);
        let sig = crate::cloud::signer::sign_v1("POST", &params, "testsecret");
        let mut e = engine("testid", "testsecret", None, far_future());
        let err = e
            .process_at(&v1_incoming("POST", &params, &sig), Utc::now())
            .unwrap_err();
        assert_eq!((err.status, err.code.as_str()), (400, code));
    }
}

#[test]
fn quotas_follow_the_documented_figures_per_action() {
    use super::engine::quota;
    for a in [
        "GetRole",
        "ListRoles",
        "GetPolicy",
        "ListPolicies",
        "GetPolicyVersion",
        "ListPolicyVersions",
        "ListPoliciesForRole",
        "ListEntitiesForPolicy",
        "ListTagResources",
    ] {
        assert_eq!(quota(Product::Ram, a), 100.0, "{a}");
    }
    for a in [
        "CreateRole",
        "DeleteRole",
        "UpdateRole",
        "CreatePolicy",
        "CreatePolicyVersion",
        "DeletePolicy",
        "DeletePolicyVersion",
        "SetDefaultPolicyVersion",
    ] {
        assert_eq!(quota(Product::Ram, a), 20.0, "{a}");
    }
    for a in [
        "AttachPolicyToRole",
        "DetachPolicyFromRole",
        "TagResources",
        "UntagResources",
    ] {
        assert_eq!(quota(Product::Ram, a), 10.0, "{a}");
    }
    assert_eq!(quota(Product::Imm, "ListProjects"), 100.0);
    assert_eq!(quota(Product::Imm, "CreateProject"), 20.0);
}

/// `ACTIONS` (what `PUT /_emulator/faults` accepts) is exactly the dispatchers' arms.
#[test]
fn the_fault_action_list_is_every_dispatched_action() {
    let mut arms: Vec<&str> = [
        include_str!("ram.rs"),
        include_str!("imm.rs"),
        include_str!("sts.rs"),
    ]
    .iter()
    .flat_map(|src| src.lines())
    .filter_map(|l| {
        let l = l.strip_prefix("        \"")?;
        let (name, rest) = l.split_once('"')?;
        rest.starts_with(" =>").then_some(name)
    })
    .collect();
    arms.sort_unstable();
    let mut listed = super::ACTIONS.to_vec();
    listed.sort_unstable();
    assert_eq!(arms, listed);
}
