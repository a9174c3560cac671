//! The emulator over real HTTP: signatures (V1 and V3), STS credentials, RAM and IMM
//! semantics, authorization (including ram:PassRole), quotas, faults, consistency delay,
//! control endpoints, state persistence, concurrency and malformed requests.
//!
//! Each test starts its own emulator on 127.0.0.1:0 and talks to it with a small signing
//! client built on `immctl::cloud::signer` (whose V1/V3 output is pinned by the SDK vectors).

use std::collections::BTreeMap;
use std::time::Duration;

use immctl::cloud::signer;
use immctl::emulator::state::{AccessKey, Attachment, DocText, Policy, User};
use immctl::emulator::{self, EmulatorHandle, EmulatorOptions, FailNext, Faults, State};
use serde_json::{Value, json};

const RAM: &str = "2015-05-01";
const IMM: &str = "2020-09-30";
const STS: &str = "2015-04-01";
const ADMIN_ID: &str = "emulator-admin";
const ADMIN_SECRET: &str = "emulator-secret";

const IMM_TRUST: &str = r#"{"Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{"Service":["imm.aliyuncs.com"]}}],"Version":"1"}"#;

fn account_trust(account: &str) -> String {
    format!(
        r#"{{"Statement":[{{"Action":"sts:AssumeRole","Effect":"Allow","Principal":{{"RAM":["acs:ram::{account}:root"]}}}}],"Version":"1"}}"#
    )
}

fn doc(actions: &[&str], resource: &str) -> String {
    json!({"Version":"1","Statement":[{"Effect":"Allow","Action":actions,"Resource":resource}]})
        .to_string()
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Scheme {
    V1,
    V1Form,
    V1Get,
    V3,
}

#[derive(Clone)]
struct Client {
    http: reqwest::Client,
    endpoint: String,
    id: String,
    secret: String,
    token: Option<String>,
    scheme: Scheme,
    host: Option<String>,
}

#[derive(Debug)]
struct Resp {
    status: u16,
    body: Value,
}

impl Resp {
    fn code(&self) -> &str {
        self.body["Code"].as_str().unwrap_or("")
    }
    #[track_caller]
    fn ok(self) -> Value {
        assert_eq!(self.status, 200, "expected success, got {:?}", self.body);
        self.body
    }
    #[track_caller]
    fn err(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.code()),
            (status, code),
            "body: {}",
            self.body
        );
    }
}

fn enc_pairs(params: &BTreeMap<String, String>) -> String {
    params
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                signer::percent_encode(k),
                signer::percent_encode(v)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn now_ts() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

impl Client {
    fn new(h: &EmulatorHandle, id: &str, secret: &str) -> Client {
        Client::at(&h.endpoint(), id, secret)
    }
    /// A client of an emulator known only by its endpoint (e.g. a child process).
    fn at(endpoint: &str, id: &str, secret: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            endpoint: endpoint.to_string(),
            id: id.into(),
            secret: secret.into(),
            token: None,
            scheme: Scheme::V1,
            host: None,
        }
    }
    fn admin(h: &EmulatorHandle) -> Client {
        Client::new(h, ADMIN_ID, ADMIN_SECRET)
    }
    fn scheme(mut self, s: Scheme) -> Client {
        self.scheme = s;
        self
    }

    /// Every V1 parameter that gets signed (business and common ones).
    fn v1_params(
        &self,
        version: &str,
        action: &str,
        params: &[(&str, &str)],
        timestamp: &str,
        nonce: &str,
    ) -> BTreeMap<String, String> {
        let mut all: BTreeMap<String, String> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in [
            ("Action", action),
            ("Version", version),
            ("Format", "JSON"),
            ("AccessKeyId", &self.id),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("SignatureNonce", nonce),
            ("Timestamp", timestamp),
        ] {
            all.insert(k.into(), v.into());
        }
        if let Some(t) = &self.token {
            all.insert("SecurityToken".into(), t.clone());
        }
        all
    }

    async fn call(&self, version: &str, action: &str, params: &[(&str, &str)]) -> Resp {
        self.call_at(version, action, params, &now_ts(), &nonce())
            .await
    }

    async fn call_at(
        &self,
        version: &str,
        action: &str,
        params: &[(&str, &str)],
        timestamp: &str,
        nonce: &str,
    ) -> Resp {
        self.try_call_at(version, action, params, timestamp, nonce)
            .await
            .expect("transport")
    }

    /// A call that may fail at the transport level (a killed server, a dropped connection).
    async fn try_call(
        &self,
        version: &str,
        action: &str,
        params: &[(&str, &str)],
    ) -> Result<Resp, reqwest::Error> {
        self.try_call_at(version, action, params, &now_ts(), &nonce())
            .await
    }

    async fn try_call_at(
        &self,
        version: &str,
        action: &str,
        params: &[(&str, &str)],
        timestamp: &str,
        nonce: &str,
    ) -> Result<Resp, reqwest::Error> {
        let business: BTreeMap<String, String> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let req = match self.scheme {
            Scheme::V1 | Scheme::V1Form | Scheme::V1Get => {
                let mut all = self.v1_params(version, action, params, timestamp, nonce);
                let method = if self.scheme == Scheme::V1Get {
                    "GET"
                } else {
                    "POST"
                };
                let sig = signer::sign_v1(method, &all, &self.secret);
                if self.scheme == Scheme::V1Form {
                    // Common parameters in the query, business ones in a form body (terraform style).
                    let mut query: BTreeMap<String, String> = all
                        .iter()
                        .filter(|(k, _)| !business.contains_key(*k))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    query.insert("Signature".into(), sig);
                    self.http
                        .post(format!("{}/?{}", self.endpoint, enc_pairs(&query)))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(enc_pairs(&business))
                } else {
                    all.insert("Signature".into(), sig);
                    let url = format!("{}/?{}", self.endpoint, enc_pairs(&all));
                    if method == "GET" {
                        self.http.get(url)
                    } else {
                        self.http.post(url)
                    }
                }
            }
            Scheme::V3 => {
                let host = self
                    .host
                    .clone()
                    .unwrap_or_else(|| self.endpoint.trim_start_matches("http://").to_string());
                let mut headers = BTreeMap::new();
                headers.insert("host".to_string(), host);
                headers.insert("x-acs-action".to_string(), action.to_string());
                headers.insert("x-acs-version".to_string(), version.to_string());
                headers.insert("x-acs-date".to_string(), timestamp.to_string());
                headers.insert("x-acs-signature-nonce".to_string(), nonce.to_string());
                headers.insert(
                    "x-acs-content-sha256".to_string(),
                    signer::hashed_payload_v3(b""),
                );
                headers.insert("accept".to_string(), "application/json".to_string());
                if let Some(t) = &self.token {
                    headers.insert("x-acs-security-token".to_string(), t.clone());
                    headers.insert("x-acs-accesskey-id".to_string(), self.id.clone());
                }
                let auth = signer::authorization_v3(
                    "POST",
                    "/",
                    &business,
                    &headers,
                    b"",
                    &self.id,
                    &self.secret,
                );
                let mut rb = self
                    .http
                    .post(format!("{}/?{}", self.endpoint, enc_pairs(&business)));
                for (k, v) in &headers {
                    rb = rb.header(k.as_str(), v.as_str());
                }
                rb.header("authorization", auth)
            }
        };
        let req = match (&self.host, self.scheme) {
            (Some(h), s) if s != Scheme::V3 => req.header("host", h.as_str()),
            _ => req,
        };
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let body: Value = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("non-JSON answer ({status}): {text:.300}"));
        Ok(Resp { status, body })
    }
}

async fn start() -> EmulatorHandle {
    emulator::spawn(EmulatorOptions::default()).await.unwrap()
}

async fn start_with(state: State) -> EmulatorHandle {
    emulator::spawn(EmulatorOptions {
        state: Some(state),
        ..Default::default()
    })
    .await
    .unwrap()
}

/// A state with an extra RAM user `dev` (key `dev-id` / `dev-secret`) holding the given
/// policy documents as custom policies `dev-0`, `dev-1`, ...
fn state_with_dev(docs: &[String]) -> State {
    let mut st = State::default();
    let mut attachments = Vec::new();
    for (i, d) in docs.iter().enumerate() {
        let name = format!("dev-{i}");
        st.policies.insert(
            name.clone(),
            Policy {
                description: String::new(),
                create_date: String::new(),
                update_date: String::new(),
                default_version: String::new(),
                last_version_number: 0,
                versions: Vec::new(),
                document: Some(DocText(d.clone())),
                tags: BTreeMap::new(),
            },
        );
        attachments.push(Attachment {
            policy_type: "Custom".into(),
            name,
            attach_date: String::new(),
        });
    }
    st.users.insert(
        "dev".into(),
        User {
            user_id: String::new(),
            policies: attachments,
        },
    );
    st.access_keys.push(AccessKey {
        id: "dev-id".into(),
        secret: "dev-secret".into(),
        user: Some("dev".into()),
    });
    st
}

// ------------------------------------------------------------------------------- signatures

#[tokio::test]
async fn accepts_v1_post_get_form_and_v3_signatures() {
    let h = start().await;
    for s in [Scheme::V1, Scheme::V1Get, Scheme::V1Form, Scheme::V3] {
        let b = Client::admin(&h)
            .scheme(s)
            .call(STS, "GetCallerIdentity", &[])
            .await
            .ok();
        assert_eq!(b["AccountId"], "1234567890123456", "{s:?}");
        assert_eq!(b["IdentityType"], "RAMUser");
        assert_eq!(b["Arn"], "acs:ram::1234567890123456:user/admin");
        let rid = b["RequestId"].as_str().unwrap();
        assert_eq!(rid, rid.to_uppercase());
        assert_eq!(rid.len(), 36);
    }
    // Form-body parameters are merged with the query and signed together.
    let c = Client::admin(&h).scheme(Scheme::V1Form);
    c.call(
        RAM,
        "CreateRole",
        &[
            ("RoleName", "form-role"),
            ("AssumeRolePolicyDocument", IMM_TRUST),
            ("Description", "a b+c"),
        ],
    )
    .await
    .ok();
    let r = c
        .call(RAM, "GetRole", &[("RoleName", "form-role")])
        .await
        .ok();
    assert_eq!(r["Role"]["Description"], "a b+c");
}

#[tokio::test]
async fn wrong_secret_gets_signature_does_not_match_with_string_to_sign() {
    let h = start().await;
    let bad = Client::new(&h, ADMIN_ID, "not-the-secret");
    // The old SDK runs Message.split(':')[1] and compares it with its own string to sign
    // (then reports InvalidAccessKeySecret); with no ':' it crashes. So the server's string
    // to sign must come out of that split whole and equal to the client's.
    for scheme in [Scheme::V1, Scheme::V1Get] {
        let c = bad.clone().scheme(scheme);
        let (ts, n) = (now_ts(), nonce());
        let params = [("RoleName", "x y*~/:")];
        let r = c.call_at(RAM, "GetRole", &params, &ts, &n).await;
        r.err(400, "SignatureDoesNotMatch");
        let msg = r.body["Message"].as_str().unwrap();
        let prefix =
            "Specified signature is not matched with our calculation. server string to sign is:";
        assert!(msg.starts_with(prefix), "{msg}");
        let method = if scheme == Scheme::V1Get {
            "GET"
        } else {
            "POST"
        };
        let mine =
            signer::string_to_sign_v1(method, &c.v1_params(RAM, "GetRole", &params, &ts, &n));
        assert_eq!(msg.split(':').nth(1).unwrap(), mine);
    }
    let r = bad.call(STS, "GetCallerIdentity", &[]).await;
    r.err(400, "SignatureDoesNotMatch");
    assert_eq!(r.body["HostId"], "sts.aliyuncs.com");
    assert!(
        r.body["Recommend"]
            .as_str()
            .unwrap()
            .contains("SignatureDoesNotMatch")
    );
    for version in [RAM, IMM] {
        let action = if version == RAM {
            "ListRoles"
        } else {
            "ListProjects"
        };
        bad.clone()
            .scheme(Scheme::V3)
            .call(version, action, &[])
            .await
            .err(400, "SignatureDoesNotMatch");
        bad.call(version, action, &[])
            .await
            .err(400, "SignatureDoesNotMatch");
    }
}

#[tokio::test]
async fn unknown_access_key_is_not_found() {
    let h = start().await;
    for s in [Scheme::V1, Scheme::V3] {
        Client::new(&h, "LTAInobody", "x")
            .scheme(s)
            .call(STS, "GetCallerIdentity", &[])
            .await
            .err(404, "InvalidAccessKeyId.NotFound");
    }
}

#[tokio::test]
async fn stale_timestamp_and_reused_nonce_are_refused() {
    let h = start().await;
    for s in [Scheme::V1, Scheme::V3] {
        let c = Client::admin(&h).scheme(s);
        let old = (chrono::Utc::now() - chrono::TimeDelta::minutes(20))
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        c.call_at(STS, "GetCallerIdentity", &[], &old, &nonce())
            .await
            .err(400, "InvalidTimeStamp.Expired");
        let n = nonce();
        c.call_at(STS, "GetCallerIdentity", &[], &now_ts(), &n)
            .await
            .ok();
        c.call_at(STS, "GetCallerIdentity", &[], &now_ts(), &n)
            .await
            .err(400, "SignatureNonceUsed");
    }
}

#[tokio::test]
async fn unsigned_calls_are_refused_except_assume_role_with_oidc() {
    let h = start().await;
    let url = format!("{}/?Action=ListRoles&Version=2015-05-01", h.endpoint());
    let r = reqwest::get(url).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["Code"], "MissingAccessKeyId");
}

// ------------------------------------------------------------------------------- STS

#[tokio::test]
async fn sts_credentials_carry_the_assumed_roles_policies() {
    let h = start().await;
    let admin = Client::admin(&h);
    let account = "1234567890123456";
    admin
        .call(
            RAM,
            "CreateRole",
            &[
                ("RoleName", "reader"),
                ("AssumeRolePolicyDocument", &account_trust(account)),
            ],
        )
        .await
        .ok();
    admin
        .call(
            RAM,
            "CreatePolicy",
            &[
                ("PolicyName", "get-role-only"),
                ("PolicyDocument", &doc(&["ram:GetRole"], "*")),
            ],
        )
        .await
        .ok();
    admin
        .call(
            RAM,
            "AttachPolicyToRole",
            &[
                ("RoleName", "reader"),
                ("PolicyType", "Custom"),
                ("PolicyName", "get-role-only"),
            ],
        )
        .await
        .ok();
    let arn = format!("acs:ram::{account}:role/reader");
    // Out-of-range duration and bad session names are refused.
    admin
        .call(
            STS,
            "AssumeRole",
            &[
                ("RoleArn", &arn),
                ("RoleSessionName", "s1"),
                ("DurationSeconds", "100"),
            ],
        )
        .await
        .err(400, "InvalidParameter.DurationSeconds");
    admin
        .call(
            STS,
            "AssumeRole",
            &[("RoleArn", &arn), ("RoleSessionName", "x")],
        )
        .await
        .err(400, "InvalidParameter.RoleSessionName");
    admin
        .call(
            STS,
            "AssumeRole",
            &[
                ("RoleArn", &format!("acs:ram::{account}:role/none")),
                ("RoleSessionName", "s1"),
            ],
        )
        .await
        .err(404, "EntityNotExist.Role");
    let b = admin
        .call(
            STS,
            "AssumeRole",
            &[("RoleArn", &arn), ("RoleSessionName", "session-1")],
        )
        .await
        .ok();
    let cred = &b["Credentials"];
    assert!(cred["AccessKeyId"].as_str().unwrap().starts_with("STS."));
    assert_eq!(b["AssumedRoleUser"]["Arn"], format!("{arn}/session-1"));
    let role_id = h.state().roles["reader"].role_id.clone();
    assert_eq!(
        b["AssumedRoleUser"]["AssumedRoleId"],
        format!("{role_id}:session-1")
    );
    let exp = chrono::DateTime::parse_from_rfc3339(cred["Expiration"].as_str().unwrap()).unwrap();
    let left = exp.with_timezone(&chrono::Utc) - chrono::Utc::now();
    assert!(
        (3590..=3600).contains(&left.num_seconds()),
        "default DurationSeconds is 3600: {left}"
    );
    for s in [Scheme::V1, Scheme::V3] {
        let mut c = Client::new(
            &h,
            cred["AccessKeyId"].as_str().unwrap(),
            cred["AccessKeySecret"].as_str().unwrap(),
        )
        .scheme(s);
        c.token = Some(cred["SecurityToken"].as_str().unwrap().to_string());
        let who = c.call(STS, "GetCallerIdentity", &[]).await.ok();
        assert_eq!(who["IdentityType"], "AssumedRoleUser");
        assert_eq!(
            who["Arn"],
            format!("acs:ram::{account}:assumed-role/reader/session-1")
        );
        c.call(RAM, "GetRole", &[("RoleName", "reader")]).await.ok();
        let denied = c.call(RAM, "ListRoles", &[]).await;
        denied.err(403, "NoPermission");
        assert_eq!(
            denied.body["AccessDeniedDetail"]["AuthAction"],
            "ram:ListRoles"
        );
        assert_eq!(
            denied.body["AccessDeniedDetail"]["NoPermissionType"],
            "ImplicitDeny"
        );
        let mut wrong = c.clone();
        wrong.token = Some("CAISforged".into());
        wrong
            .call(STS, "GetCallerIdentity", &[])
            .await
            .err(400, "InvalidSecurityToken.MismatchWithAccessKey");
    }
    // The permissions follow the role's attachments live.
    admin
        .call(
            RAM,
            "DetachPolicyFromRole",
            &[
                ("RoleName", "reader"),
                ("PolicyType", "Custom"),
                ("PolicyName", "get-role-only"),
            ],
        )
        .await
        .ok();
    let mut c = Client::new(
        &h,
        cred["AccessKeyId"].as_str().unwrap(),
        cred["AccessKeySecret"].as_str().unwrap(),
    );
    c.token = Some(cred["SecurityToken"].as_str().unwrap().to_string());
    c.call(RAM, "GetRole", &[("RoleName", "reader")])
        .await
        .err(403, "NoPermission");
}

#[tokio::test]
async fn assume_role_respects_the_trust_policy_and_session_policy() {
    let h = start().await;
    let admin = Client::admin(&h);
    admin
        .call(
            RAM,
            "CreateRole",
            &[
                ("RoleName", "imm-only"),
                ("AssumeRolePolicyDocument", IMM_TRUST),
            ],
        )
        .await
        .ok();
    let r = admin
        .call(
            STS,
            "AssumeRole",
            &[
                ("RoleArn", "acs:ram::1234567890123456:role/imm-only"),
                ("RoleSessionName", "s1"),
            ],
        )
        .await;
    r.err(403, "NoPermission");
    // A session Policy narrows the role's permissions.
    admin
        .call(
            RAM,
            "CreateRole",
            &[
                ("RoleName", "admin-role"),
                (
                    "AssumeRolePolicyDocument",
                    &account_trust("1234567890123456"),
                ),
            ],
        )
        .await
        .ok();
    admin
        .call(
            RAM,
            "AttachPolicyToRole",
            &[
                ("RoleName", "admin-role"),
                ("PolicyType", "System"),
                ("PolicyName", "AdministratorAccess"),
            ],
        )
        .await
        .ok();
    let b = admin
        .call(
            STS,
            "AssumeRole",
            &[
                ("RoleArn", "acs:ram::1234567890123456:role/admin-role"),
                ("RoleSessionName", "narrow"),
                ("Policy", &doc(&["ram:Get*"], "*")),
            ],
        )
        .await
        .ok();
    let cred = &b["Credentials"];
    let mut c = Client::new(
        &h,
        cred["AccessKeyId"].as_str().unwrap(),
        cred["AccessKeySecret"].as_str().unwrap(),
    );
    c.token = Some(cred["SecurityToken"].as_str().unwrap().to_string());
    c.call(RAM, "GetRole", &[("RoleName", "admin-role")])
        .await
        .ok();
    c.call(RAM, "DeleteRole", &[("RoleName", "imm-only")])
        .await
        .err(403, "NoPermission");
}

#[tokio::test]
async fn assume_role_with_oidc_works_unsigned() {
    use base64::Engine as _;
    let h = start().await;
    let provider = "acs:ram::1234567890123456:oidc-provider/ack-rrsa";
    let trust = json!({"Version":"1","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole",
        "Principal":{"Federated":[provider]}}]})
    .to_string();
    Client::admin(&h)
        .call(
            RAM,
            "CreateRole",
            &[
                ("RoleName", "oidc-role"),
                ("AssumeRolePolicyDocument", &trust),
            ],
        )
        .await
        .ok();
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(json!({"iss":"https://oidc.example","sub":"system:serviceaccount:ns:sa","aud":"sts.aliyuncs.com","iat":1700000000,"exp":1700003600}).to_string());
    let token = format!("eyJhbGciOiJSUzI1NiJ9.{payload}.sig");
    let q: BTreeMap<String, String> = [
        ("Action", "AssumeRoleWithOIDC"),
        ("Version", STS),
        ("Format", "JSON"),
        ("RoleArn", "acs:ram::1234567890123456:role/oidc-role"),
        ("OIDCProviderArn", provider),
        ("OIDCToken", token.as_str()),
        ("RoleSessionName", "pod-1"),
        ("Timestamp", &now_ts()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let r = reqwest::get(format!("{}/?{}", h.endpoint(), enc_pairs(&q)))
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let b: Value = r.json().await.unwrap();
    assert!(
        b["Credentials"]["AccessKeyId"]
            .as_str()
            .unwrap()
            .starts_with("STS.")
    );
    assert_eq!(b["OIDCTokenInfo"]["Subject"], "system:serviceaccount:ns:sa");
    assert_eq!(b["OIDCTokenInfo"]["Issuer"], "https://oidc.example");
}

// ------------------------------------------------------------------------------- RAM

#[tokio::test]
async fn ram_roles_validate_paginate_and_embed_tags() {
    let h = start().await;
    let c = Client::admin(&h);
    c.call(
        RAM,
        "CreateRole",
        &[
            ("RoleName", "bad_name"),
            ("AssumeRolePolicyDocument", IMM_TRUST),
        ],
    )
    .await
    .err(400, "InvalidParameter.RoleName.InvalidChars");
    c.call(
        RAM,
        "CreateRole",
        &[
            ("RoleName", &"a".repeat(65)),
            ("AssumeRolePolicyDocument", IMM_TRUST),
        ],
    )
    .await
    .err(400, "InvalidParameter.RoleName.Length");
    c.call(
        RAM,
        "CreateRole",
        &[
            ("RoleName", "r0"),
            ("AssumeRolePolicyDocument", "{not json"),
        ],
    )
    .await
    .err(400, "MalformedPolicyDocument");
    c.call(RAM, "CreateRole", &[("RoleName", "r0")])
        .await
        .err(400, "MissingAssumeRolePolicyDocument");
    for i in 0..5 {
        let name = format!("role-{i}");
        let tag = format!(r#"[{{"Key":"team","Value":"t{}"}}]"#, i % 2);
        let b = c
            .call(
                RAM,
                "CreateRole",
                &[
                    ("RoleName", &name),
                    ("AssumeRolePolicyDocument", IMM_TRUST),
                    ("Tag", &tag),
                ],
            )
            .await
            .ok();
        assert_eq!(
            b["Role"]["Arn"],
            format!("acs:ram::1234567890123456:role/{name}")
        );
        assert_eq!(b["Role"]["MaxSessionDuration"], 3600);
        assert!(
            b["Role"]["RoleId"]
                .as_str()
                .unwrap()
                .chars()
                .all(|c| c.is_ascii_digit())
        );
    }
    c.call(
        RAM,
        "CreateRole",
        &[
            ("RoleName", "role-0"),
            ("AssumeRolePolicyDocument", IMM_TRUST),
        ],
    )
    .await
    .err(409, "EntityAlreadyExists.Role");
    c.call(RAM, "GetRole", &[("RoleName", "missing")])
        .await
        .err(404, "EntityNotExist.Role");
    // Pages of 2: 3 pages, IsTruncated always present, Marker only when truncated.
    let (mut seen, mut marker, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        pages += 1;
        let mut p = vec![("MaxItems", "2")];
        if let Some(m) = &marker {
            p.push(("Marker", m.as_str()));
        }
        let b = c.call(RAM, "ListRoles", &p).await.ok();
        for r in b["Roles"]["Role"].as_array().unwrap() {
            assert!(
                r.get("AssumeRolePolicyDocument").is_none(),
                "list items carry no document"
            );
            assert_eq!(r["Tags"]["Tag"][0]["TagKey"], "team");
            seen.push(r["RoleName"].as_str().unwrap().to_string());
        }
        if !b["IsTruncated"].as_bool().unwrap() {
            assert!(b.get("Marker").is_none());
            break;
        }
        marker = Some(b["Marker"].as_str().unwrap().to_string());
    }
    assert_eq!(pages, 3);
    assert_eq!(seen, ["role-0", "role-1", "role-2", "role-3", "role-4"]);
    c.call(RAM, "ListRoles", &[("MaxItems", "0")])
        .await
        .err(400, "InvalidParameter.MaxItems");
    let b = c
        .call(
            RAM,
            "ListRoles",
            &[("Tag", r#"[{"Key":"team","Value":"t1"}]"#)],
        )
        .await
        .ok();
    let names: Vec<&str> = b["Roles"]["Role"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["RoleName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["role-1", "role-3"]);
    // Partial UpdateRole.
    let u = c
        .call(
            RAM,
            "UpdateRole",
            &[("RoleName", "role-0"), ("NewMaxSessionDuration", "7200")],
        )
        .await
        .ok();
    assert_eq!(u["Role"]["MaxSessionDuration"], 7200);
    assert_eq!(u["Role"]["AssumeRolePolicyDocument"], IMM_TRUST);
    c.call(
        RAM,
        "UpdateRole",
        &[("RoleName", "role-0"), ("NewMaxSessionDuration", "100")],
    )
    .await
    .err(400, "InvalidParameter.NewMaxSessionDuration");
}

#[tokio::test]
async fn ram_tags_upsert_remove_and_list() {
    let h = start().await;
    let c = Client::admin(&h);
    c.call(
        RAM,
        "CreateRole",
        &[
            ("RoleName", "tagged"),
            ("AssumeRolePolicyDocument", IMM_TRUST),
        ],
    )
    .await
    .ok();
    c.call(
        RAM,
        "CreatePolicy",
        &[
            ("PolicyName", "tagged-p"),
            ("PolicyDocument", &doc(&["oss:Get*"], "*")),
        ],
    )
    .await
    .ok();
    c.call(
        RAM,
        "TagResources",
        &[
            ("ResourceType", "role"),
            ("ResourceNames", r#"["tagged"]"#),
            (
                "Tag",
                r#"[{"Key":"a","Value":"1"},{"Key":"b","Value":"2"}]"#,
            ),
        ],
    )
    .await
    .ok();
    c.call(
        RAM,
        "TagResources",
        &[
            ("ResourceType", "role"),
            ("ResourceNames", r#"["tagged"]"#),
            ("Tag", r#"[{"Key":"a","Value":"9"}]"#),
        ],
    )
    .await
    .ok();
    c.call(
        RAM,
        "TagResources",
        &[
            ("ResourceType", "policy"),
            ("ResourceNames", r#"["tagged-p"]"#),
            ("Tag", r#"[{"Key":"immctl-owner","Value":"default"}]"#),
        ],
    )
    .await
    .ok();
    c.call(
        RAM,
        "TagResources",
        &[
            ("ResourceType", "role"),
            ("ResourceNames", r#"["nope"]"#),
            ("Tag", r#"[{"Key":"a","Value":"1"}]"#),
        ],
    )
    .await
    .err(404, "EntityNotExist.Role");
    c.call(
        RAM,
        "TagResources",
        &[
            ("ResourceType", "role"),
            ("ResourceNames", r#"["tagged"]"#),
            ("Tag", r#"[{"Key":"acs:x","Value":"1"}]"#),
        ],
    )
    .await
    .err(400, "InvalidParameter.Tag.Key");
    let b = c
        .call(
            RAM,
            "ListTagResources",
            &[("ResourceType", "role"), ("ResourceNames", r#"["tagged"]"#)],
        )
        .await
        .ok();
    assert_eq!(
        b["TagResources"],
        json!([{"ResourceType":"role","ResourceName":"tagged","TagKey":"a","TagValue":"9"},
               {"ResourceType":"role","ResourceName":"tagged","TagKey":"b","TagValue":"2"}])
    );
    let p1 = c
        .call(
            RAM,
            "ListTagResources",
            &[("ResourceType", "role"), ("PageSize", "1")],
        )
        .await
        .ok();
    assert_eq!(p1["TagResources"].as_array().unwrap().len(), 1);
    let tok = p1["NextToken"].as_str().unwrap().to_string();
    let p2 = c
        .call(
            RAM,
            "ListTagResources",
            &[
                ("ResourceType", "role"),
                ("PageSize", "1"),
                ("NextToken", &tok),
            ],
        )
        .await
        .ok();
    assert_eq!(p2["TagResources"][0]["TagKey"], "b");
    assert!(p2.get("NextToken").is_none());
    c.call(
        RAM,
        "UntagResources",
        &[
            ("ResourceType", "role"),
            ("ResourceNames", r#"["tagged"]"#),
            ("TagKeys", r#"["a"]"#),
        ],
    )
    .await
    .ok();
    let b = c
        .call(RAM, "ListPolicies", &[("PolicyType", "Custom")])
        .await
        .ok();
    assert_eq!(
        b["Policies"]["Policy"][0]["Tags"]["Tag"],
        json!([{"TagKey":"immctl-owner","TagValue":"default"}])
    );
    c.call(
        RAM,
        "UntagResources",
        &[
            ("ResourceType", "policy"),
            ("ResourceNames", r#"["tagged-p"]"#),
            ("All", "True"),
        ],
    )
    .await
    .ok();
    let st = h.state();
    assert_eq!(
        st.roles["tagged"].tags,
        BTreeMap::from([("b".to_string(), "2".to_string())])
    );
    assert!(st.policies["tagged-p"].tags.is_empty());
}

#[tokio::test]
async fn ram_policy_versions_limit_rotate_and_never_reuse_numbers() {
    let h = start().await;
    let c = Client::admin(&h);
    let b = c
        .call(
            RAM,
            "CreatePolicy",
            &[
                ("PolicyName", "p"),
                ("PolicyDocument", &doc(&["oss:GetObject"], "*")),
                ("Description", "d"),
            ],
        )
        .await
        .ok();
    assert_eq!(b["Policy"]["DefaultVersion"], "v1");
    assert_eq!(b["Policy"]["PolicyType"], "Custom");
    let u = c
        .call(
            RAM,
            "UpdatePolicyDescription",
            &[("PolicyName", "p"), ("NewDescription", "described")],
        )
        .await
        .ok();
    assert_eq!(u["Policy"]["Description"], "described");
    // Without NewDescription nothing is cleared.
    let u = c
        .call(RAM, "UpdatePolicyDescription", &[("PolicyName", "p")])
        .await
        .ok();
    assert_eq!(u["Policy"]["Description"], "described");
    c.call(
        RAM,
        "CreatePolicy",
        &[
            ("PolicyName", "p"),
            ("PolicyDocument", &doc(&["oss:GetObject"], "*")),
        ],
    )
    .await
    .err(409, "EntityAlreadyExists.Policy");
    c.call(
        RAM,
        "CreatePolicy",
        &[
            ("PolicyName", "big"),
            ("PolicyDocument", &doc(&[&"x".repeat(7000)], "*")),
        ],
    )
    .await
    .err(400, "InvalidParameter.PolicyDocument.Length");
    c.call(
        RAM,
        "CreatePolicy",
        &[
            ("PolicyName", "nores"),
            (
                "PolicyDocument",
                r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*"}]}"#,
            ),
        ],
    )
    .await
    .err(400, "MalformedPolicyDocument");
    for n in 2..=5 {
        let b = c
            .call(
                RAM,
                "CreatePolicyVersion",
                &[
                    ("PolicyName", "p"),
                    ("PolicyDocument", &doc(&[&format!("oss:Get{n}")], "*")),
                    ("SetAsDefault", "False"),
                ],
            )
            .await
            .ok();
        assert_eq!(b["PolicyVersion"]["VersionId"], format!("v{n}"));
        assert_eq!(b["PolicyVersion"]["IsDefaultVersion"], false);
    }
    c.call(
        RAM,
        "CreatePolicyVersion",
        &[("PolicyName", "p"), ("PolicyDocument", &doc(&["a:b"], "*"))],
    )
    .await
    .err(409, "LimitExceeded.Policy.Version");
    c.call(
        RAM,
        "CreatePolicyVersion",
        &[
            ("PolicyName", "p"),
            ("PolicyDocument", &doc(&["a:b"], "*")),
            ("RotateStrategy", "None"),
        ],
    )
    .await
    .err(409, "LimitExceeded.Policy.Version");
    // Rotation deletes the oldest non-default (v2) and creates v6 as default.
    let b = c
        .call(
            RAM,
            "CreatePolicyVersion",
            &[
                ("PolicyName", "p"),
                ("PolicyDocument", &doc(&["a:b"], "*")),
                ("SetAsDefault", "true"),
                (
                    "RotateStrategy",
                    "DeleteOldestNonDefaultVersionWhenLimitExceeded",
                ),
            ],
        )
        .await
        .ok();
    assert_eq!(b["PolicyVersion"]["VersionId"], "v6");
    assert_eq!(b["PolicyVersion"]["IsDefaultVersion"], true);
    let l = c
        .call(
            RAM,
            "ListPolicyVersions",
            &[("PolicyName", "p"), ("PolicyType", "Custom")],
        )
        .await
        .ok();
    let ids: Vec<(&str, bool)> = l["PolicyVersions"]["PolicyVersion"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["VersionId"].as_str().unwrap(),
                v["IsDefaultVersion"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        ids,
        [
            ("v1", false),
            ("v3", false),
            ("v4", false),
            ("v5", false),
            ("v6", true)
        ]
    );
    c.call(
        RAM,
        "DeletePolicyVersion",
        &[("PolicyName", "p"), ("VersionId", "v6")],
    )
    .await
    .err(409, "DeleteConflict.Policy.Version.Default");
    c.call(
        RAM,
        "DeletePolicyVersion",
        &[("PolicyName", "p"), ("VersionId", "v5")],
    )
    .await
    .ok();
    // Numbers are never reused: the next one is v7, not v5.
    let b = c
        .call(
            RAM,
            "CreatePolicyVersion",
            &[("PolicyName", "p"), ("PolicyDocument", &doc(&["a:c"], "*"))],
        )
        .await
        .ok();
    assert_eq!(b["PolicyVersion"]["VersionId"], "v7");
    c.call(
        RAM,
        "SetDefaultPolicyVersion",
        &[("PolicyName", "p"), ("VersionId", "v9")],
    )
    .await
    .err(404, "EntityNotExist.Policy.Version");
    c.call(
        RAM,
        "GetPolicyVersion",
        &[
            ("PolicyName", "p"),
            ("PolicyType", "Custom"),
            ("VersionId", "x1"),
        ],
    )
    .await
    .err(400, "InvalidParameter.VersionId.Format");
    c.call(
        RAM,
        "SetDefaultPolicyVersion",
        &[("PolicyName", "p"), ("VersionId", "v3")],
    )
    .await
    .ok();
    let g = c
        .call(
            RAM,
            "GetPolicy",
            &[("PolicyName", "p"), ("PolicyType", "Custom")],
        )
        .await
        .ok();
    assert_eq!(g["Policy"]["DefaultVersion"], "v3");
    assert_eq!(g["DefaultPolicyVersion"]["VersionId"], "v3");
    assert_eq!(
        g["DefaultPolicyVersion"]["PolicyDocument"],
        doc(&["oss:Get3"], "*")
    );
    c.call(
        RAM,
        "GetPolicy",
        &[("PolicyName", "p"), ("PolicyType", "System")],
    )
    .await
    .err(404, "EntityNotExist.Policy");
    c.call(
        RAM,
        "GetPolicy",
        &[("PolicyName", "p"), ("PolicyType", "Bogus")],
    )
    .await
    .err(400, "InvalidParameter.PolicyType");
    c.call(RAM, "DeletePolicy", &[("PolicyName", "p")])
        .await
        .err(409, "DeleteConflict.Policy.Version");
    c.call(
        RAM,
        "DeletePolicy",
        &[("PolicyName", "p"), ("CascadingDelete", "true")],
    )
    .await
    .ok();
    c.call(
        RAM,
        "GetPolicy",
        &[("PolicyName", "p"), ("PolicyType", "Custom")],
    )
    .await
    .err(404, "EntityNotExist.Policy");
}

#[tokio::test]
async fn ram_system_policies_are_seeded_and_read_only() {
    let h = start().await;
    let c = Client::admin(&h);
    let b = c
        .call(
            RAM,
            "ListPolicies",
            &[("PolicyType", "System"), ("MaxItems", "1000")],
        )
        .await
        .ok();
    let names: Vec<&str> = b["Policies"]["Policy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["PolicyName"].as_str().unwrap())
        .collect();
    for want in [
        "AdministratorAccess",
        "ReadOnlyAccess",
        "AliyunIMMFullAccess",
        "AliyunOSSFullAccess",
        "AliyunOSSReadOnlyAccess",
        "AliyunMNSFullAccess",
        "AliyunSTSAssumeRoleAccess",
        "AliyunRAMFullAccess",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    // Without PolicyType, both kinds are listed.
    c.call(
        RAM,
        "CreatePolicy",
        &[
            ("PolicyName", "mine"),
            ("PolicyDocument", &doc(&["oss:Get*"], "*")),
        ],
    )
    .await
    .ok();
    let all = c
        .call(RAM, "ListPolicies", &[("MaxItems", "1000")])
        .await
        .ok();
    let kinds: Vec<(&str, &str)> = all["Policies"]["Policy"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["PolicyName"].as_str().unwrap(),
                p["PolicyType"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(kinds.contains(&("mine", "Custom")), "{kinds:?}");
    assert!(
        kinds.contains(&("AdministratorAccess", "System")),
        "{kinds:?}"
    );
    assert!(all["Policies"]["Policy"][0].get("PolicyDocument").is_none());
    let g = c
        .call(
            RAM,
            "GetPolicy",
            &[
                ("PolicyName", "AliyunIMMFullAccess"),
                ("PolicyType", "System"),
            ],
        )
        .await
        .ok();
    let d: Value = serde_json::from_str(
        g["DefaultPolicyVersion"]["PolicyDocument"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(d["Statement"][0]["Action"], "imm:*");
    assert_eq!(g["Policy"]["AttachmentCount"], 0);
    let a = c
        .call(
            RAM,
            "GetPolicy",
            &[
                ("PolicyName", "AdministratorAccess"),
                ("PolicyType", "System"),
            ],
        )
        .await
        .ok();
    assert_eq!(a["Policy"]["AttachmentCount"], 1, "the admin user holds it");
    c.call(
        RAM,
        "CreatePolicyVersion",
        &[
            ("PolicyName", "AdministratorAccess"),
            ("PolicyDocument", &doc(&["*"], "*")),
        ],
    )
    .await
    .err(404, "EntityNotExist.Policy");
    c.call(
        RAM,
        "DeletePolicy",
        &[("PolicyName", "AdministratorAccess")],
    )
    .await
    .err(404, "EntityNotExist.Policy");
    c.call(
        RAM,
        "CreatePolicy",
        &[
            ("PolicyName", "ReadOnlyAccess"),
            ("PolicyDocument", &doc(&["*"], "*")),
        ],
    )
    .await
    .err(409, "EntityAlreadyExists.Policy");
    // Without the console authorization, AliyunIMMDefaultRole does not exist.
    c.call(RAM, "GetRole", &[("RoleName", "AliyunIMMDefaultRole")])
        .await
        .err(404, "EntityNotExist.Role");
    let st = State {
        imm_default_role_authorized: true,
        ..State::default()
    };
    let h2 = start_with(st).await;
    let r = Client::admin(&h2)
        .call(RAM, "GetRole", &[("RoleName", "AliyunIMMDefaultRole")])
        .await
        .ok();
    assert!(
        r["Role"]["AssumeRolePolicyDocument"]
            .as_str()
            .unwrap()
            .contains("imm.aliyuncs.com")
    );
}

#[tokio::test]
async fn ram_attachments_are_not_idempotent_limited_and_block_deletes() {
    let mut st = State::default();
    for i in 0..20 {
        st.system_policies.insert(
            format!("ExtraSystem{i}"),
            immctl::emulator::state::SystemPolicy {
                description: String::new(),
                document: DocText(doc(&["oss:Get*"], "*")),
                default_version: "v1".into(),
                create_date: "2015-01-01T00:00:00Z".into(),
            },
        );
    }
    let h = start_with(st).await;
    let c = Client::admin(&h);
    c.call(
        RAM,
        "CreateRole",
        &[("RoleName", "app"), ("AssumeRolePolicyDocument", IMM_TRUST)],
    )
    .await
    .ok();
    for i in 0..11 {
        c.call(
            RAM,
            "CreatePolicy",
            &[
                ("PolicyName", &format!("c{i}")),
                ("PolicyDocument", &doc(&["oss:Get*"], "*")),
            ],
        )
        .await
        .ok();
    }
    let attach = |ptype: &'static str, name: String| {
        let c = c.clone();
        async move {
            c.call(
                RAM,
                "AttachPolicyToRole",
                &[
                    ("RoleName", "app"),
                    ("PolicyType", ptype),
                    ("PolicyName", &name),
                ],
            )
            .await
        }
    };
    attach("Custom", "c0".into()).await.ok();
    attach("Custom", "c0".into())
        .await
        .err(409, "EntityAlreadyExists.Role.Policy");
    attach("System", "c0".into())
        .await
        .err(404, "EntityNotExist.Policy");
    attach("Custom", "nope".into())
        .await
        .err(404, "EntityNotExist.Policy");
    c.call(
        RAM,
        "AttachPolicyToRole",
        &[
            ("RoleName", "ghost"),
            ("PolicyType", "Custom"),
            ("PolicyName", "c0"),
        ],
    )
    .await
    .err(404, "EntityNotExist.Role");
    for i in 1..10 {
        attach("Custom", format!("c{i}")).await.ok();
    }
    attach("Custom", "c10".into())
        .await
        .err(409, "LimitExceeded.Role.Policy");
    for i in 0..20 {
        attach("System", format!("ExtraSystem{i}")).await.ok();
    }
    attach("System", "AliyunOSSFullAccess".into())
        .await
        .err(409, "LimitExceeded.Role.Policy");
    let l = c
        .call(RAM, "ListPoliciesForRole", &[("RoleName", "app")])
        .await
        .ok();
    assert_eq!(l["Policies"]["Policy"].as_array().unwrap().len(), 30);
    let g = c
        .call(
            RAM,
            "GetPolicy",
            &[("PolicyName", "c0"), ("PolicyType", "Custom")],
        )
        .await
        .ok();
    assert_eq!(g["Policy"]["AttachmentCount"], 1);
    let e = c
        .call(
            RAM,
            "ListEntitiesForPolicy",
            &[("PolicyName", "c0"), ("PolicyType", "Custom")],
        )
        .await
        .ok();
    assert_eq!(e["Roles"]["Role"][0]["RoleName"], "app");
    c.call(RAM, "DeleteRole", &[("RoleName", "app")])
        .await
        .err(409, "DeleteConflict.Role.Policy");
    c.call(RAM, "DeletePolicy", &[("PolicyName", "c0")])
        .await
        .err(409, "DeleteConflict.Role.Policy");
    c.call(
        RAM,
        "DetachPolicyFromRole",
        &[
            ("RoleName", "app"),
            ("PolicyType", "Custom"),
            ("PolicyName", "c0"),
        ],
    )
    .await
    .ok();
    c.call(
        RAM,
        "DetachPolicyFromRole",
        &[
            ("RoleName", "app"),
            ("PolicyType", "Custom"),
            ("PolicyName", "c0"),
        ],
    )
    .await
    .err(404, "EntityNotExist.Role.Policy");
    c.call(RAM, "DeletePolicy", &[("PolicyName", "c0")])
        .await
        .ok();
}

// ------------------------------------------------------------------------------- IMM

#[tokio::test]
async fn imm_projects_defaults_updates_tags_and_errors() {
    let h = start().await;
    let c = Client::admin(&h);
    let r = c.call(IMM, "CreateProject", &[]).await;
    r.err(400, "InvalidArgument");
    assert_eq!(
        r.body["Message"],
        "The parameter ProjectName is required but not provided."
    );
    assert_eq!(r.body["HostId"], "imm.cn-hangzhou.aliyuncs.com");
    assert_eq!(
        r.body["Recommend"],
        "https://next.api.aliyun.com/troubleshoot?q=InvalidArgument&product=imm"
    );
    c.call(IMM, "CreateProject", &[("ProjectName", "9bad")])
        .await
        .err(400, "InvalidArgument");
    c.call(
        IMM,
        "CreateProject",
        &[("ProjectName", "p1"), ("DatasetMaxBindCount", "11")],
    )
    .await
    .err(400, "LimitExceededError");
    c.call(
        IMM,
        "CreateProject",
        &[("ProjectName", "p1"), ("Tag", "[{bad json")],
    )
    .await
    .err(400, "InvalidArgument");
    let b = c
        .call(
            IMM,
            "CreateProject",
            &[
                ("ProjectName", "p1"),
                ("Tag", r#"[{"Key":"immctl-owner","Value":"default"}]"#),
            ],
        )
        .await
        .ok();
    let p = &b["Project"];
    assert_eq!(p["ServiceRole"], "AliyunIMMDefaultRole");
    assert_eq!(p["ProjectMaxDatasetCount"], 1_000_000_000i64);
    assert_eq!(p["DatasetMaxBindCount"], 10);
    assert_eq!(p["DatasetMaxTotalFileSize"], 90_000_000_000_000_000i64);
    assert_eq!(p["EngineConcurrency"], 100);
    assert_eq!(p["CreateTime"], p["UpdateTime"]);
    assert_eq!(
        p["Tags"],
        json!([{"TagKey":"immctl-owner","TagValue":"default"}])
    );
    c.call(IMM, "CreateProject", &[("ProjectName", "p1")])
        .await
        .err(409, "ResourceAlreadyExists");
    let nf = c.call(IMM, "GetProject", &[("ProjectName", "nope")]).await;
    nf.err(404, "ResourceNotFound");
    assert_eq!(
        nf.body["Message"],
        "The specified resource project is not found."
    );
    assert_eq!(nf.body["HostId"], "imm.cn-hangzhou.aliyuncs.com");
    // Partial update: only the given fields change; Tag replaces the set.
    let u = c
        .call(
            IMM,
            "UpdateProject",
            &[
                ("ProjectName", "p1"),
                ("Description", "新的"),
                ("Tag", r#"[{"Key":"x","Value":"y"}]"#),
            ],
        )
        .await
        .ok();
    assert_eq!(u["Project"]["Description"], "新的");
    assert_eq!(u["Project"]["ServiceRole"], "AliyunIMMDefaultRole");
    assert_eq!(u["Project"]["DatasetMaxBindCount"], 10);
    assert_eq!(u["Project"]["Tags"], json!([{"TagKey":"x","TagValue":"y"}]));
    let g = c
        .call(
            IMM,
            "GetProject",
            &[("ProjectName", "p1"), ("WithStatistics", "True")],
        )
        .await
        .ok();
    assert_eq!(g["Project"]["Description"], "新的");
    c.call(IMM, "UpdateProject", &[("ProjectName", "nope")])
        .await
        .err(404, "ResourceNotFound");
    c.call(IMM, "DeleteProject", &[("ProjectName", "p1")])
        .await
        .ok();
    c.call(IMM, "DeleteProject", &[("ProjectName", "p1")])
        .await
        .err(404, "ResourceNotFound");
}

#[tokio::test]
async fn imm_list_projects_prefix_tag_pagination_and_regions() {
    let h = start().await;
    let c = Client::admin(&h);
    for (n, team) in [
        ("media-a", "x"),
        ("media-b", "y"),
        ("media-c", "x"),
        ("other", "x"),
    ] {
        let tag = format!(r#"[{{"Key":"team","Value":"{team}"}}]"#);
        c.call(IMM, "CreateProject", &[("ProjectName", n), ("Tag", &tag)])
            .await
            .ok();
    }
    // Another region, by RegionId and by Host.
    c.call(
        IMM,
        "CreateProject",
        &[("ProjectName", "media-sh"), ("RegionId", "cn-shanghai")],
    )
    .await
    .ok();
    let mut by_host = c.clone();
    by_host.host = Some("imm.cn-beijing.aliyuncs.com".into());
    by_host
        .call(IMM, "CreateProject", &[("ProjectName", "media-bj")])
        .await
        .ok();
    let st = h.state();
    assert!(st.projects["cn-shanghai"].contains_key("media-sh"));
    assert!(st.projects["cn-beijing"].contains_key("media-bj"));
    assert!(!st.projects["cn-hangzhou"].contains_key("media-sh"));
    c.call(IMM, "GetProject", &[("ProjectName", "media-sh")])
        .await
        .err(404, "ResourceNotFound");
    let (mut seen, mut token, mut pages) = (Vec::new(), None::<String>, 0);
    loop {
        pages += 1;
        let mut p = vec![("MaxResults", "1"), ("Prefix", "media")];
        if let Some(t) = &token {
            p.push(("NextToken", t.as_str()));
        }
        let b = c.call(IMM, "ListProjects", &p).await.ok();
        seen.extend(
            b["Projects"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["ProjectName"].as_str().unwrap().to_string()),
        );
        match b.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ["media-a", "media-b", "media-c"]);
    assert_eq!(pages, 3);
    let b = c
        .call(
            IMM,
            "ListProjects",
            &[("Tag", r#"[{"Key":"team","Value":"x"}]"#)],
        )
        .await
        .ok();
    let names: Vec<&str> = b["Projects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["ProjectName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["media-a", "media-c", "other"]);
    c.call(IMM, "ListProjects", &[("MaxResults", "201")])
        .await
        .err(400, "InvalidArgument");
    c.call(IMM, "ListProjects", &[("NextToken", "!!!")])
        .await
        .err(400, "InvalidArgument");
}

#[tokio::test]
async fn imm_datasets_and_bindings_crud() {
    let h = start().await;
    let c = Client::admin(&h);
    c.call(
        IMM,
        "CreateProject",
        &[("ProjectName", "proj"), ("DatasetMaxBindCount", "2")],
    )
    .await
    .ok();
    c.call(
        IMM,
        "CreateDataset",
        &[("ProjectName", "nope"), ("DatasetName", "d")],
    )
    .await
    .err(404, "ResourceNotFound");
    let d = c
        .call(
            IMM,
            "CreateDataset",
            &[
                ("ProjectName", "proj"),
                ("DatasetName", "ds1"),
                ("WorkflowParameters", r#"[{"Name":"a","Value":"b"}]"#),
            ],
        )
        .await
        .ok();
    assert_eq!(
        d["Dataset"]["DatasetMaxBindCount"], 2,
        "defaults follow the project's limits"
    );
    assert_eq!(
        d["Dataset"]["WorkflowParameters"],
        json!([{"Name":"a","Value":"b"}])
    );
    c.call(
        IMM,
        "CreateDataset",
        &[("ProjectName", "proj"), ("DatasetName", "ds1")],
    )
    .await
    .err(409, "ResourceAlreadyExists");
    c.call(
        IMM,
        "CreateDataset",
        &[("ProjectName", "proj"), ("DatasetName", "ds2")],
    )
    .await
    .ok();
    let u = c
        .call(
            IMM,
            "UpdateDataset",
            &[
                ("ProjectName", "proj"),
                ("DatasetName", "ds2"),
                ("Description", "two"),
            ],
        )
        .await
        .ok();
    assert_eq!(u["Dataset"]["Description"], "two");
    let l = c
        .call(
            IMM,
            "ListDatasets",
            &[("ProjectName", "proj"), ("MaxResults", "1")],
        )
        .await
        .ok();
    assert_eq!(l["Datasets"][0]["DatasetName"], "ds1");
    let t = l["NextToken"].as_str().unwrap().to_string();
    let l2 = c
        .call(
            IMM,
            "ListDatasets",
            &[
                ("ProjectName", "proj"),
                ("MaxResults", "1"),
                ("NextToken", &t),
            ],
        )
        .await
        .ok();
    assert_eq!(l2["Datasets"][0]["DatasetName"], "ds2");
    assert!(l2.get("NextToken").is_none());
    c.call(
        IMM,
        "CreateBinding",
        &[
            ("ProjectName", "proj"),
            ("DatasetName", "ds1"),
            ("URI", "http://bucket"),
        ],
    )
    .await
    .err(400, "InvalidArgument");
    let b = c
        .call(
            IMM,
            "CreateBinding",
            &[
                ("ProjectName", "proj"),
                ("DatasetName", "ds1"),
                ("URI", "oss://bucket-a"),
            ],
        )
        .await
        .ok();
    assert_eq!(b["Binding"]["State"], "Running");
    assert_eq!(b["Binding"]["Phase"], "FullScanning");
    c.call(
        IMM,
        "CreateBinding",
        &[
            ("ProjectName", "proj"),
            ("DatasetName", "ds1"),
            ("URI", "oss://bucket-a"),
        ],
    )
    .await
    .err(409, "ResourceAlreadyExists");
    c.call(
        IMM,
        "CreateBinding",
        &[
            ("ProjectName", "proj"),
            ("DatasetName", "ds1"),
            ("URI", "oss://bucket-b"),
        ],
    )
    .await
    .ok();
    c.call(
        IMM,
        "CreateBinding",
        &[
            ("ProjectName", "proj"),
            ("DatasetName", "ds1"),
            ("URI", "oss://bucket-c"),
        ],
    )
    .await
    .err(400, "LimitExceededError");
    let lb = c
        .call(
            IMM,
            "ListBindings",
            &[("ProjectName", "proj"), ("DatasetName", "ds1")],
        )
        .await
        .ok();
    assert_eq!(lb["Bindings"].as_array().unwrap().len(), 2);
    c.call(
        IMM,
        "GetBinding",
        &[
            ("ProjectName", "proj"),
            ("DatasetName", "ds1"),
            ("URI", "oss://bucket-a"),
        ],
    )
    .await
    .ok();
    c.call(
        IMM,
        "DeleteDataset",
        &[("ProjectName", "proj"), ("DatasetName", "ds1")],
    )
    .await
    .err(400, "InvalidArgument");
    c.call(IMM, "DeleteProject", &[("ProjectName", "proj")])
        .await
        .err(400, "InvalidArgument");
    for u in ["oss://bucket-a", "oss://bucket-b"] {
        c.call(
            IMM,
            "DeleteBinding",
            &[("ProjectName", "proj"), ("DatasetName", "ds1"), ("URI", u)],
        )
        .await
        .ok();
    }
    c.call(
        IMM,
        "GetBinding",
        &[
            ("ProjectName", "proj"),
            ("DatasetName", "ds1"),
            ("URI", "oss://bucket-a"),
        ],
    )
    .await
    .err(404, "ResourceNotFound");
    for d in ["ds1", "ds2"] {
        c.call(
            IMM,
            "DeleteDataset",
            &[("ProjectName", "proj"), ("DatasetName", d)],
        )
        .await
        .ok();
    }
    c.call(IMM, "DeleteProject", &[("ProjectName", "proj")])
        .await
        .ok();
}

// ------------------------------------------------------------------------------- authorization

#[tokio::test]
async fn callers_without_a_matching_allow_get_no_permission() {
    let deny = json!({"Version":"1","Statement":[
        {"Effect":"Allow","Action":["ram:*","imm:GetProject"],"Resource":"*"},
        {"Effect":"Deny","Action":"ram:Delete*","Resource":"acs:ram:*:*:role/protected-*"}]})
    .to_string();
    let h = start_with(state_with_dev(&[deny])).await;
    let admin = Client::admin(&h);
    let dev = Client::new(&h, "dev-id", "dev-secret");
    admin
        .call(
            RAM,
            "CreateRole",
            &[
                ("RoleName", "protected-a"),
                ("AssumeRolePolicyDocument", IMM_TRUST),
            ],
        )
        .await
        .ok();
    dev.call(
        RAM,
        "CreateRole",
        &[
            ("RoleName", "mine"),
            ("AssumeRolePolicyDocument", IMM_TRUST),
        ],
    )
    .await
    .ok();
    let r = dev
        .call(RAM, "DeleteRole", &[("RoleName", "protected-a")])
        .await;
    r.err(403, "NoPermission");
    assert_eq!(
        r.body["AccessDeniedDetail"]["NoPermissionType"],
        "ExplicitDeny"
    );
    assert_eq!(r.body["AccessDeniedDetail"]["AuthPrincipalType"], "SubUser");
    dev.call(RAM, "DeleteRole", &[("RoleName", "mine")])
        .await
        .ok();
    let i = dev
        .clone()
        .scheme(Scheme::V3)
        .call(IMM, "ListProjects", &[])
        .await;
    i.err(403, "NoPermission");
    assert_eq!(
        i.body["AccessDeniedDetail"]["AuthAction"],
        "imm:ListProjects"
    );
    dev.call(STS, "GetCallerIdentity", &[]).await.ok();
    // A user with no policies at all.
    let mut st = state_with_dev(&[]);
    st.users.get_mut("dev").unwrap().policies.clear();
    let h2 = start_with(st).await;
    Client::new(&h2, "dev-id", "dev-secret")
        .call(RAM, "ListRoles", &[])
        .await
        .err(403, "NoPermission");
}

#[tokio::test]
async fn service_role_needs_pass_role_and_the_roles_permissions() {
    let account = "1234567890123456";
    let imm_only = doc(&["imm:*"], "*");
    let pass =
        json!({"Version":"1","Statement":[{"Effect":"Allow","Action":"ram:PassRole","Resource":"*",
        "Condition":{"StringEquals":{"acs:Service":"imm.aliyuncs.com"}}}]})
        .to_string();
    let oss_some = doc(&["oss:GetObject"], "acs:oss:*:*:media/*");
    let oss_all = doc(&["oss:*", "mns:*"], "*");
    let h = start().await;
    let admin = Client::admin(&h);
    admin
        .call(
            RAM,
            "CreateRole",
            &[
                ("RoleName", "imm-svc"),
                ("AssumeRolePolicyDocument", IMM_TRUST),
            ],
        )
        .await
        .ok();
    admin
        .call(
            RAM,
            "CreatePolicy",
            &[
                ("PolicyName", "imm-svc-policy"),
                (
                    "PolicyDocument",
                    &doc(&["oss:Get*", "oss:PutObject"], "acs:oss:*:*:media/*"),
                ),
            ],
        )
        .await
        .ok();
    admin
        .call(
            RAM,
            "AttachPolicyToRole",
            &[
                ("RoleName", "imm-svc"),
                ("PolicyType", "Custom"),
                ("PolicyName", "imm-svc-policy"),
            ],
        )
        .await
        .ok();
    let st = h.state();
    let run = |docs: Vec<String>| {
        let mut s = state_with_dev(&docs);
        s.roles = st.roles.clone();
        s.policies.extend(st.policies.clone());
        s.account_id = account.into();
        s
    };
    // imm:* alone: PassRole is missing.
    h.put_state(run(vec![imm_only.clone()]));
    let dev = Client::new(&h, "dev-id", "dev-secret");
    let r = dev
        .call(
            IMM,
            "CreateProject",
            &[("ProjectName", "p"), ("ServiceRole", "imm-svc")],
        )
        .await;
    r.err(403, "NoPermission");
    assert_eq!(r.body["AccessDeniedDetail"]["AuthAction"], "ram:PassRole");
    // PassRole, but the caller lacks oss:Get* / oss:PutObject the role grants.
    h.put_state(run(vec![imm_only.clone(), pass.clone(), oss_some]));
    let r = dev
        .call(
            IMM,
            "CreateProject",
            &[("ProjectName", "p"), ("ServiceRole", "imm-svc")],
        )
        .await;
    r.err(403, "NoPermission");
    assert_eq!(r.body["AccessDeniedDetail"]["AuthAction"], "oss:Get*");
    // PassRole and a superset of the role's permissions.
    h.put_state(run(vec![imm_only.clone(), pass.clone(), oss_all]));
    dev.call(
        IMM,
        "CreateProject",
        &[("ProjectName", "p"), ("ServiceRole", "imm-svc")],
    )
    .await
    .ok();
    // Changing the service role is checked the same way.
    h.put_state({
        let mut s = run(vec![imm_only.clone()]);
        s.projects = h.state().projects;
        s
    });
    dev.call(
        IMM,
        "UpdateProject",
        &[("ProjectName", "p"), ("ServiceRole", "imm-svc")],
    )
    .await
    .err(403, "NoPermission");
    dev.call(
        IMM,
        "UpdateProject",
        &[("ProjectName", "p"), ("Description", "only this")],
    )
    .await
    .ok();
}

// ------------------------------------------------------------------------------- quotas and faults

#[tokio::test]
async fn quotas_throttle_per_action_per_account_with_throttling_user() {
    // Scale 0.1 of the documented figures: GetRole 100/s -> 10/s (burst 10),
    // AttachPolicyToRole 10/s -> 1/s (burst 1).
    let h = emulator::spawn(EmulatorOptions {
        state: Some(state_with_dev(&[doc(&["ram:*"], "*")])),
        rate_limit_scale: 0.1,
        ..Default::default()
    })
    .await
    .unwrap();
    let admin = Client::admin(&h);
    let dev = Client::new(&h, "dev-id", "dev-secret");
    // Two callers of the same account alternate on GetRole: they share one bucket, so
    // together they get the burst (10) plus what refills meanwhile, not 10 each.
    let started = std::time::Instant::now();
    let (mut ok, mut throttled) = (
        BTreeMap::<&str, usize>::new(),
        BTreeMap::<&str, usize>::new(),
    );
    for i in 0..30 {
        let (who, c) = if i % 2 == 0 {
            ("admin", &admin)
        } else {
            ("dev", &dev)
        };
        let r = c.call(RAM, "GetRole", &[("RoleName", "x")]).await;
        match (r.status, r.code()) {
            (404, "EntityNotExist.Role") => *ok.entry(who).or_default() += 1,
            (400, "Throttling.User") => {
                *throttled.entry(who).or_default() += 1;
                assert_eq!(
                    r.body["Message"],
                    "Request was denied due to user flow control."
                );
            }
            other => panic!("{other:?}"),
        }
    }
    let refill = (started.elapsed().as_secs_f64() * 10.0).ceil() as usize;
    let total_ok: usize = ok.values().sum();
    assert!(
        total_ok >= 10 && total_ok <= 10 + refill + 1,
        "ok {ok:?}, throttled {throttled:?}, refill {refill}"
    );
    assert!(
        throttled.contains_key("admin") && throttled.contains_key("dev"),
        "{throttled:?}"
    );
    // Another action has its own bucket.
    dev.call(RAM, "ListRoles", &[]).await.ok();
    // Attach/detach have the smaller quota (10/s documented): one call per second here.
    let attach = [
        ("RoleName", "x"),
        ("PolicyType", "System"),
        ("PolicyName", "ReadOnlyAccess"),
    ];
    admin
        .call(RAM, "AttachPolicyToRole", &attach)
        .await
        .err(404, "EntityNotExist.Role");
    admin
        .call(RAM, "AttachPolicyToRole", &attach)
        .await
        .err(400, "Throttling.User");
    // Tokens come back with time.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    admin
        .call(RAM, "AttachPolicyToRole", &attach)
        .await
        .err(404, "EntityNotExist.Role");
    let stats = h.stats();
    assert_eq!(
        stats.errors_by_action["GetRole"]["Throttling.User"] as usize,
        throttled.values().sum::<usize>()
    );
    assert!(stats.throttled as usize > throttled.values().sum::<usize>());
    // Scale 0 disables quotas.
    h.set_faults(Faults {
        rate_limit_scale: Some(0.0),
        ..Default::default()
    });
    for _ in 0..30 {
        admin
            .call(RAM, "GetRole", &[("RoleName", "x")])
            .await
            .err(404, "EntityNotExist.Role");
    }
}

#[tokio::test]
async fn injected_latency_delays_every_call() {
    let h = emulator::spawn(EmulatorOptions {
        latency: Duration::from_millis(250),
        ..Default::default()
    })
    .await
    .unwrap();
    let c = Client::admin(&h);
    let t = std::time::Instant::now();
    c.call(STS, "GetCallerIdentity", &[]).await.ok();
    assert!(
        t.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    h.set_faults(Faults {
        latency_ms: Some(0),
        ..Default::default()
    });
    let t = std::time::Instant::now();
    c.call(STS, "GetCallerIdentity", &[]).await.ok();
    assert!(
        t.elapsed() < Duration::from_millis(250),
        "{:?}",
        t.elapsed()
    );
    // Concurrent calls are delayed in parallel, not one after the other.
    h.set_faults(Faults {
        latency_ms: Some(300),
        ..Default::default()
    });
    let t = std::time::Instant::now();
    let calls: Vec<_> = (0..8)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.call(STS, "GetCallerIdentity", &[]).await.status })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    assert!(
        t.elapsed() < Duration::from_millis(2000),
        "{:?}",
        t.elapsed()
    );
}

/// `loseReplyNext`: the call is carried out, then answered with the fault instead of its
/// reply (a timeout after commit); the next call is answered as usual.
#[tokio::test]
async fn a_lost_reply_fault_carries_the_call_out_then_fails_it() {
    let h = start().await;
    let c = Client::admin(&h);
    h.set_faults(Faults {
        lose_reply_next: Some(vec![FailNext {
            action: "CreateRole".into(),
            code: "ServiceUnavailable".into(),
            count: 1,
            status: None,
            message: None,
        }]),
        ..Default::default()
    });
    let create = [
        ("RoleName", "lost-reply"),
        ("AssumeRolePolicyDocument", IMM_TRUST),
    ];
    c.call(RAM, "CreateRole", &create)
        .await
        .err(503, "ServiceUnavailable");
    assert!(h.state().roles.contains_key("lost-reply"), "carried out");
    c.call(RAM, "CreateRole", &create)
        .await
        .err(409, "EntityAlreadyExists.Role");
    c.call(RAM, "GetRole", &[("RoleName", "lost-reply")])
        .await
        .ok();
    // Used up: the next create is answered.
    c.call(
        RAM,
        "CreateRole",
        &[
            ("RoleName", "answered"),
            ("AssumeRolePolicyDocument", IMM_TRUST),
        ],
    )
    .await
    .ok();
}

#[tokio::test]
async fn scheduled_and_random_faults_and_dropped_connections() {
    let h = start().await;
    let c = Client::admin(&h);
    h.set_faults(Faults {
        fail_next: Some(vec![
            FailNext {
                action: "ListRoles".into(),
                code: "ServiceUnavailable".into(),
                count: 2,
                status: None,
                message: None,
            },
            FailNext {
                action: "GetRole".into(),
                code: "Drop".into(),
                count: 1,
                status: None,
                message: None,
            },
        ]),
        retry_after: Some(3),
        ..Default::default()
    });
    c.call(RAM, "ListRoles", &[])
        .await
        .err(503, "ServiceUnavailable");
    c.call(RAM, "ListRoles", &[])
        .await
        .err(503, "ServiceUnavailable");
    c.call(RAM, "ListRoles", &[]).await.ok();
    // A dropped connection is a transport error, never an answer.
    let url = format!(
        "{}/?Action=GetRole&Version=2015-05-01&RoleName=x",
        h.endpoint()
    );
    let dropped = match reqwest::get(url).await {
        Err(_) => true,
        Ok(r) => r.text().await.is_err(),
    };
    assert!(dropped);
    // At fault rate 1 every call fails with one of the four injected kinds, and over 80
    // calls each kind shows up (a kind missing has probability 4 * 0.75^80 < 1e-9).
    h.set_faults(Faults {
        fault_rate: Some(1.0),
        ..Default::default()
    });
    let mut kinds = BTreeMap::<String, usize>::new();
    for _ in 0..80 {
        let url = format!("{}/?Action=ListRoles&Version=2015-05-01", h.endpoint());
        let kind = match reqwest::get(url).await {
            Err(_) => "dropped".to_string(),
            Ok(r) => {
                let status = r.status().as_u16();
                let retry = r
                    .headers()
                    .get("x-acs-retry-after")
                    .map(|v| v.to_str().unwrap().to_string());
                match r.text().await {
                    Err(_) => "dropped".to_string(),
                    Ok(text) => {
                        let b: Value = serde_json::from_str(&text).unwrap();
                        let code = b["Code"].as_str().unwrap().to_string();
                        assert!(
                            matches!(
                                (status, code.as_str()),
                                (400, "Throttling.User")
                                    | (503, "ServiceUnavailable")
                                    | (500, "InternalError")
                            ),
                            "{status} {code}"
                        );
                        if code == "Throttling.User" {
                            assert_eq!(retry.as_deref(), Some("3"));
                        } else {
                            assert_eq!(retry, None);
                        }
                        code
                    }
                }
            }
        };
        *kinds.entry(kind).or_default() += 1;
    }
    assert_eq!(
        kinds.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "InternalError",
            "ServiceUnavailable",
            "Throttling.User",
            "dropped"
        ],
        "{kinds:?}"
    );
    let s = h.stats();
    assert_eq!(s.injected_faults, 3 + 80, "{s:?}");
    assert!(s.errors_by_action["ListRoles"]["ServiceUnavailable"] >= 2);
}

#[tokio::test]
async fn consistency_delay_hides_new_entities_from_reads_and_attach() {
    let h = emulator::spawn(EmulatorOptions {
        consistency_delay: Duration::from_millis(1500),
        ..Default::default()
    })
    .await
    .unwrap();
    let c = Client::admin(&h);
    c.call(
        RAM,
        "CreateRole",
        &[
            ("RoleName", "fresh"),
            ("AssumeRolePolicyDocument", IMM_TRUST),
        ],
    )
    .await
    .ok();
    c.call(
        RAM,
        "CreatePolicy",
        &[
            ("PolicyName", "fresh-p"),
            ("PolicyDocument", &doc(&["oss:Get*"], "*")),
        ],
    )
    .await
    .ok();
    c.call(IMM, "CreateProject", &[("ProjectName", "fresh_proj")])
        .await
        .ok();
    c.call(RAM, "GetRole", &[("RoleName", "fresh")])
        .await
        .err(404, "EntityNotExist.Role");
    c.call(
        RAM,
        "AttachPolicyToRole",
        &[
            ("RoleName", "fresh"),
            ("PolicyType", "Custom"),
            ("PolicyName", "fresh-p"),
        ],
    )
    .await
    .err(404, "EntityNotExist.Role");
    c.call(IMM, "GetProject", &[("ProjectName", "fresh_proj")])
        .await
        .err(404, "ResourceNotFound");
    let l = c.call(RAM, "ListRoles", &[]).await.ok();
    assert!(l["Roles"]["Role"].as_array().unwrap().is_empty());
    // The create itself happened: a duplicate is still refused.
    c.call(
        RAM,
        "CreateRole",
        &[
            ("RoleName", "fresh"),
            ("AssumeRolePolicyDocument", IMM_TRUST),
        ],
    )
    .await
    .err(409, "EntityAlreadyExists.Role");
    tokio::time::sleep(Duration::from_millis(1700)).await;
    c.call(RAM, "GetRole", &[("RoleName", "fresh")]).await.ok();
    c.call(
        RAM,
        "AttachPolicyToRole",
        &[
            ("RoleName", "fresh"),
            ("PolicyType", "Custom"),
            ("PolicyName", "fresh-p"),
        ],
    )
    .await
    .ok();
    c.call(IMM, "GetProject", &[("ProjectName", "fresh_proj")])
        .await
        .ok();
}

// ------------------------------------------------------------------------------- control and state

/// `PUT /_emulator/<what>` with `body` (YAML or JSON).
async fn put_control(
    h: &EmulatorHandle,
    what: &str,
    body: impl Into<reqwest::Body>,
) -> reqwest::Response {
    reqwest::Client::new()
        .put(format!("{}/_emulator/{what}", h.endpoint()))
        .body(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn control_endpoints_state_reset_stats_faults() {
    let h = start().await;
    let http = reqwest::Client::new();
    let c = Client::admin(&h);
    c.call(
        RAM,
        "CreateRole",
        &[("RoleName", "r1"), ("AssumeRolePolicyDocument", IMM_TRUST)],
    )
    .await
    .ok();
    let st: Value = http
        .get(format!("{}/_emulator/state", h.endpoint()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(st["accountId"], "1234567890123456");
    assert!(st["roles"]["r1"]["roleId"].is_string());
    let stats: Value = http
        .get(format!("{}/_emulator/stats", h.endpoint()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["calls"]["CreateRole"], 1);
    // PUT a YAML state.
    let yaml = "accountId: \"5555\"\naccessKeys:\n  - {id: root-key, secret: root-secret}\nroles:\n  seeded:\n    assumeRolePolicyDocument: {Version: \"1\", Statement: [{Effect: Allow, Action: sts:AssumeRole, Principal: {Service: [imm.aliyuncs.com]}}]}\n";
    let r = put_control(&h, "state", yaml).await;
    assert_eq!(r.status().as_u16(), 200);
    let root = Client::new(&h, "root-key", "root-secret");
    let who = root.call(STS, "GetCallerIdentity", &[]).await.ok();
    assert_eq!(who["IdentityType"], "Account");
    assert_eq!(who["Arn"], "acs:ram::5555:root");
    let g = root
        .call(RAM, "GetRole", &[("RoleName", "seeded")])
        .await
        .ok();
    assert_eq!(g["Role"]["Arn"], "acs:ram::5555:role/seeded");
    c.call(STS, "GetCallerIdentity", &[])
        .await
        .err(404, "InvalidAccessKeyId.NotFound");
    let bad = put_control(&h, "state", "roles: [").await;
    assert_eq!(bad.status().as_u16(), 400);
    // A state the API could never have made is refused with every problem, as at load, and
    // the state in place stays.
    let bad = put_control(
        &h,
        "state",
        "accessKeys:\n  - {id: k, secret: s, user: ghost}\n  - {id: k, secret: t}\n",
    )
    .await;
    assert_eq!(bad.status().as_u16(), 400);
    let body: Value = bad.json().await.unwrap();
    let problems = body["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 2, "{body}");
    assert!(
        problems[0]
            .as_str()
            .unwrap()
            .starts_with("accessKeys[0].user: no user \"ghost\""),
        "{body}"
    );
    assert!(
        !body.to_string().contains("\"s\""),
        "no secret echoed: {body}"
    );
    root.call(STS, "GetCallerIdentity", &[]).await.ok();
    // Faults over HTTP.
    // A fault for an action the emulator does not serve (a typo) would never fire: refused
    // by name (found by a trial run: it was accepted and the faulted run "passed").
    let typo = put_control(
        &h,
        "faults",
        r#"{"loseReplyNext":[{"action":"CreatePolicyVerison","code":"Drop","count":1}]}"#,
    )
    .await;
    assert_eq!(typo.status().as_u16(), 400);
    let body: Value = typo.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("loseReplyNext[0].action: unknown action \"CreatePolicyVerison\""),
        "{body}"
    );
    let f = put_control(
        &h,
        "faults",
        r#"{"failNext":[{"action":"GetRole","code":"InternalError","count":1}]}"#,
    )
    .await;
    assert_eq!(f.status().as_u16(), 200);
    root.call(RAM, "GetRole", &[("RoleName", "seeded")])
        .await
        .err(500, "InternalError");
    let f = put_control(&h, "faults", r#"{"latencyMs":5,"failNext":[{"action":"GetRole","code":"ServiceUnavailable","count":3}]}"#).await;
    let f: Value = f.json().await.unwrap();
    assert_eq!(f["failNext"][0]["count"], 3, "{f}");
    assert_eq!(f["latencyMs"], 5);
    // Reset returns to the start state.
    let r = http
        .post(format!("{}/_emulator/reset", h.endpoint()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    c.call(RAM, "GetRole", &[("RoleName", "r1")])
        .await
        .err(404, "EntityNotExist.Role");
    assert_eq!(h.stats().calls.get("CreateRole"), None);
    // ...and to the start-up fault settings: nothing scheduled, no latency.
    let f: Value = http
        .get(format!("{}/_emulator/faults", h.endpoint()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(f["failNext"], json!([]));
    assert_eq!(f["latencyMs"], 0);
    h.reset_stats();
}

#[tokio::test]
async fn state_file_is_persisted_atomically_and_reloaded() {
    let dir = tempfile::tempdir().unwrap();
    for file in ["state.json", "state.yaml"] {
        let path = dir.path().join(file);
        let h = emulator::spawn(EmulatorOptions {
            state_file: Some(path.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
        let c = Client::admin(&h);
        c.call(
            RAM,
            "CreateRole",
            &[
                ("RoleName", "kept"),
                ("AssumeRolePolicyDocument", IMM_TRUST),
            ],
        )
        .await
        .ok();
        c.call(IMM, "CreateProject", &[("ProjectName", "kept_proj")])
            .await
            .ok();
        let on_disk = State::load(&path, "2026-01-01T00:00:00Z").unwrap();
        assert_eq!(on_disk, h.state(), "{file}");
        // No temporary files left behind.
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
        h.shutdown().await;
        let h2 = emulator::spawn(EmulatorOptions {
            state_file: Some(path.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
        let c2 = Client::admin(&h2);
        c2.call(RAM, "GetRole", &[("RoleName", "kept")]).await.ok();
        c2.call(IMM, "GetProject", &[("ProjectName", "kept_proj")])
            .await
            .ok();
    }
    // A broken state file is an error at start, not a silent fresh account.
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "roles: [").unwrap();
    assert!(
        emulator::spawn(EmulatorOptions {
            state_file: Some(broken),
            ..Default::default()
        })
        .await
        .is_err()
    );
}

#[tokio::test]
async fn sixteen_concurrent_writers_lose_no_updates() {
    // With a state file, so every write also goes through persistence.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.yaml");
    let h = emulator::spawn(EmulatorOptions {
        state_file: Some(path.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    let c = Client::admin(&h);
    c.call(
        RAM,
        "CreateRole",
        &[
            ("RoleName", "shared"),
            ("AssumeRolePolicyDocument", IMM_TRUST),
        ],
    )
    .await
    .ok();
    c.call(
        RAM,
        "CreatePolicy",
        &[
            ("PolicyName", "shared-p"),
            ("PolicyDocument", &doc(&["a:b"], "*")),
        ],
    )
    .await
    .ok();
    let mut tasks = Vec::new();
    for w in 0..16 {
        let c = c
            .clone()
            .scheme(if w % 2 == 0 { Scheme::V1 } else { Scheme::V3 });
        tasks.push(tokio::spawn(async move {
            for i in 0..4 {
                let name = format!("w{w}-r{i}");
                c.call(
                    RAM,
                    "CreateRole",
                    &[("RoleName", &name), ("AssumeRolePolicyDocument", IMM_TRUST)],
                )
                .await
                .ok();
                c.call(
                    IMM,
                    "CreateProject",
                    &[("ProjectName", &format!("w{w}_p{i}"))],
                )
                .await
                .ok();
            }
            let tag = format!(r#"[{{"Key":"writer-{w}","Value":"v"}}]"#);
            c.call(
                RAM,
                "TagResources",
                &[
                    ("ResourceType", "role"),
                    ("ResourceNames", r#"["shared"]"#),
                    ("Tag", &tag),
                ],
            )
            .await
            .ok();
            c.call(
                RAM,
                "CreatePolicyVersion",
                &[
                    ("PolicyName", "shared-p"),
                    ("PolicyDocument", &doc(&[&format!("a:w{w}")], "*")),
                    (
                        "RotateStrategy",
                        "DeleteOldestNonDefaultVersionWhenLimitExceeded",
                    ),
                ],
            )
            .await
            .ok();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let st = h.state();
    assert_eq!(st.roles.len(), 1 + 16 * 4);
    assert_eq!(st.projects["cn-hangzhou"].len(), 16 * 4);
    assert_eq!(st.roles["shared"].tags.len(), 16);
    let p = &st.policies["shared-p"];
    assert_eq!(
        p.last_version_number, 17,
        "16 versions after v1, each number used once"
    );
    assert_eq!(p.versions.len(), 5);
    // What is on disk is exactly what is in memory after the last write.
    assert_eq!(State::load(&path, "2026-01-01T00:00:00Z").unwrap(), st);
}

#[tokio::test]
async fn sixteen_racing_writers_see_exactly_one_winner_and_the_limits() {
    let h = start().await;
    let c = Client::admin(&h);
    c.call(
        RAM,
        "CreateRole",
        &[("RoleName", "r"), ("AssumeRolePolicyDocument", IMM_TRUST)],
    )
    .await
    .ok();
    c.call(
        RAM,
        "CreatePolicy",
        &[("PolicyName", "p"), ("PolicyDocument", &doc(&["a:b"], "*"))],
    )
    .await
    .ok();
    let race = |action: &'static str, params: Vec<(&'static str, String)>| {
        let c = c.clone();
        async move {
            let tasks: Vec<_> = (0..16)
                .map(|w| {
                    let c = c
                        .clone()
                        .scheme(if w % 2 == 0 { Scheme::V1 } else { Scheme::V3 });
                    let params = params.clone();
                    tokio::spawn(async move {
                        let p: Vec<(&str, &str)> =
                            params.iter().map(|(k, v)| (*k, v.as_str())).collect();
                        let r = c.call(RAM, action, &p).await;
                        (r.status, r.code().to_string())
                    })
                })
                .collect();
            let mut out = BTreeMap::<(u16, String), usize>::new();
            for t in tasks {
                *out.entry(t.await.unwrap()).or_default() += 1;
            }
            out
        }
    };
    // The same attachment sixteen times at once: one wins, fifteen are told it exists.
    let attach = race(
        "AttachPolicyToRole",
        vec![
            ("RoleName", "r".into()),
            ("PolicyType", "Custom".into()),
            ("PolicyName", "p".into()),
        ],
    )
    .await;
    assert_eq!(
        attach,
        BTreeMap::from([
            ((200, String::new()), 1),
            ((409, "EntityAlreadyExists.Role.Policy".to_string()), 15)
        ])
    );
    let l = c
        .call(RAM, "ListPoliciesForRole", &[("RoleName", "r")])
        .await
        .ok();
    assert_eq!(l["Policies"]["Policy"].as_array().unwrap().len(), 1);
    // Sixteen new versions at once without rotation: exactly four fit beside v1.
    let versions = race(
        "CreatePolicyVersion",
        vec![
            ("PolicyName", "p".into()),
            ("PolicyDocument", doc(&["a:c"], "*")),
        ],
    )
    .await;
    assert_eq!(
        versions,
        BTreeMap::from([
            ((200, String::new()), 4),
            ((409, "LimitExceeded.Policy.Version".to_string()), 12)
        ])
    );
    let st = h.state();
    let ids: Vec<&str> = st.policies["p"]
        .versions
        .iter()
        .map(|v| v.id.as_str())
        .collect();
    assert_eq!(ids, ["v1", "v2", "v3", "v4", "v5"]);
    // Sixteen deletes of the same role's attachment: one succeeds.
    let detach = race(
        "DetachPolicyFromRole",
        vec![
            ("RoleName", "r".into()),
            ("PolicyType", "Custom".into()),
            ("PolicyName", "p".into()),
        ],
    )
    .await;
    assert_eq!(
        detach,
        BTreeMap::from([
            ((200, String::new()), 1),
            ((404, "EntityNotExist.Role.Policy".to_string()), 15)
        ])
    );
}

// ------------------------------------------------------------------------------- malformed requests

async fn raw(
    h: &EmulatorHandle,
    method: reqwest::Method,
    target: &str,
    body: Option<(&str, Vec<u8>)>,
) -> (u16, Value) {
    let mut rb = reqwest::Client::new().request(method, format!("{}{target}", h.endpoint()));
    if let Some((ct, b)) = body {
        rb = rb.header("content-type", ct).body(b);
    }
    let r = rb.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

#[tokio::test]
async fn malformed_requests_get_the_services_4xx_never_a_500() {
    let h = start().await;
    let c = Client::admin(&h);
    // Missing Action.
    let (s, b) = raw(&h, reqwest::Method::POST, "/?Version=2015-05-01", None).await;
    assert_eq!((s, b["Code"].as_str().unwrap()), (400, "MissingAction"));
    assert_eq!(b["HostId"], "ram.aliyuncs.com");
    // Unknown version / action.
    let (s, b) = raw(
        &h,
        reqwest::Method::POST,
        "/?Action=ListRoles&Version=1999-01-01",
        None,
    )
    .await;
    assert_eq!((s, b["Code"].as_str().unwrap()), (400, "InvalidParameter"));
    c.call(RAM, "DescribeEverything", &[])
        .await
        .err(400, "InvalidParameter");
    // Invalid UTF-8 after percent-decoding, in the query and in a form body.
    let (s, b) = raw(
        &h,
        reqwest::Method::GET,
        "/?Action=GetRole&Version=2015-05-01&RoleName=%FF%FE",
        None,
    )
    .await;
    assert_eq!((s, b["Code"].as_str().unwrap()), (400, "InvalidParameter"));
    let (s, b) = raw(
        &h,
        reqwest::Method::POST,
        "/?Action=GetRole&Version=2015-05-01",
        Some((
            "application/x-www-form-urlencoded",
            b"RoleName=%C3%28".to_vec(),
        )),
    )
    .await;
    assert_eq!((s, b["Code"].as_str().unwrap()), (400, "InvalidParameter"));
    let (s, _) = raw(
        &h,
        reqwest::Method::POST,
        "/?Action=GetRole&Version=2015-05-01",
        Some(("application/x-www-form-urlencoded", vec![0xff, 0xfe])),
    )
    .await;
    assert_eq!(s, 400);
    // Bad JSON in Tag (RAM and IMM).
    c.call(
        RAM,
        "CreateRole",
        &[
            ("RoleName", "t"),
            ("AssumeRolePolicyDocument", IMM_TRUST),
            ("Tag", "{not a list"),
        ],
    )
    .await
    .err(400, "InvalidParameter.Tag");
    c.call(
        RAM,
        "TagResources",
        &[
            ("ResourceType", "role"),
            ("ResourceNames", "not json"),
            ("Tag", "[]"),
        ],
    )
    .await
    .err(400, "InvalidParameter.ResourceNames");
    c.call(
        IMM,
        "CreateProject",
        &[("ProjectName", "p"), ("Tag", r#"[{"Key":1}]"#)],
    )
    .await
    .err(400, "InvalidArgument");
    // Huge parameters: length codes, in a form body too.
    let huge = "a".repeat(30_000);
    c.call(RAM, "GetRole", &[("RoleName", &huge)])
        .await
        .err(400, "InvalidParameter.RoleName.Length");
    c.clone()
        .scheme(Scheme::V1Form)
        .call(
            RAM,
            "CreatePolicy",
            &[
                ("PolicyName", "huge"),
                ("PolicyDocument", &doc(&[&"x".repeat(1_000_000)], "*")),
            ],
        )
        .await
        .err(400, "InvalidParameter.PolicyDocument.Length");
    // Bad booleans and integers.
    c.call(RAM, "ListRoles", &[("MaxItems", "ten")])
        .await
        .err(400, "InvalidParameter.MaxItems");
    c.call(
        IMM,
        "GetProject",
        &[("ProjectName", "p"), ("WithStatistics", "maybe")],
    )
    .await
    .err(400, "InvalidArgument");
    // Unknown parameters are ignored.
    c.call(
        RAM,
        "ListRoles",
        &[("TagKey.1", "x"), ("SomethingNew", "y")],
    )
    .await
    .ok();
    // Unknown paths.
    let (s, b) = raw(&h, reqwest::Method::GET, "/nope", None).await;
    assert_eq!(
        (s, b["Code"].as_str().unwrap()),
        (404, "InvalidAction.NotFound")
    );
    let stats = h.stats();
    assert!(!stats.errors.contains_key("InternalError"), "{stats:?}");
}

/// An error answer in the service's envelope: JSON with Code, Message, an upper-case
/// RequestId, HostId and Recommend.
#[track_caller]
fn assert_envelope(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(
        (status, body["Code"].as_str().unwrap_or("(no Code)")),
        (want_status, want_code),
        "{body}"
    );
    let rid = body["RequestId"].as_str().unwrap();
    assert_eq!((rid.len(), rid.to_uppercase()), (36, rid.to_string()));
    assert!(body["Message"].as_str().is_some_and(|m| !m.is_empty()));
    assert!(body["HostId"].is_string() && body["Recommend"].is_string());
}

/// Send raw bytes, return the HTTP status of the answer (0 when the server closed the
/// connection without one).
async fn raw_status(h: &EmulatorHandle, request: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut sock = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    // The server may answer and close before reading everything: ignore write errors.
    let _ = sock.write_all(request).await;
    let mut head = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), sock.read_to_end(&mut head)).await;
    let text = String::from_utf8_lossy(&head);
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn missing_version_garbage_authorization_and_oversized_requests_get_4xx_envelopes() {
    let h = start().await;
    let c = Client::admin(&h);
    let post = reqwest::Method::POST;
    // Missing Version (Action given), and an unknown Version given only by header.
    let (s, b) = raw(&h, post.clone(), "/?Action=ListRoles", None).await;
    assert_envelope(s, &b, 400, "MissingVersion");
    let r = reqwest::Client::new()
        .post(format!("{}/", h.endpoint()))
        .header("x-acs-action", "ListRoles")
        .header("x-acs-version", "2099-01-01")
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert_envelope(s, &r.json().await.unwrap(), 400, "InvalidParameter");
    // Nothing at all.
    let (s, b) = raw(&h, reqwest::Method::GET, "/", None).await;
    assert_envelope(s, &b, 400, "MissingAction");
    // Garbage Authorization headers.
    for (auth, code) in [
        ("ACS3-HMAC-SHA256 garbage", "InvalidAuthorization"),
        (
            "ACS3-HMAC-SHA256 Credential=emulator-admin",
            "InvalidAuthorization",
        ),
        (
            "ACS3-HMAC-SHA1 Credential=a,SignedHeaders=host,Signature=00",
            "InvalidAuthorization",
        ),
        (
            "ACS3-HMAC-SHA256 Credential=emulator-admin,SignedHeaders=host,Signature=zz",
            "SignatureDoesNotMatch",
        ),
        (
            "ACS3-HMAC-SHA256 Credential=nobody,SignedHeaders=host,Signature=00",
            "InvalidAccessKeyId.NotFound",
        ),
        ("Bearer abc.def", "MissingAccessKeyId"),
        ("", "MissingAccessKeyId"),
    ] {
        let r = reqwest::Client::new()
            .post(format!(
                "{}/?Action=ListRoles&Version=2015-05-01",
                h.endpoint()
            ))
            .header("authorization", auth)
            .header("x-acs-date", now_ts())
            .header("x-acs-signature-nonce", nonce())
            .send()
            .await
            .unwrap();
        let s = r.status().as_u16();
        let b: Value = r.json().await.unwrap();
        let want = if code == "InvalidAccessKeyId.NotFound" {
            404
        } else {
            400
        };
        assert_envelope(s, &b, want, code);
    }
    // A request body over the limit: 413 with the envelope, not a plain-text answer.
    let big = vec![b'a'; emulator::MAX_BODY_BYTES + 1];
    let (s, b) = raw(
        &h,
        post.clone(),
        "/?Action=GetRole&Version=2015-05-01",
        Some(("application/x-www-form-urlencoded", big)),
    )
    .await;
    assert_envelope(s, &b, 413, "InvalidParameter");
    // A 60 KB parameter in the query still reaches the service's validation...
    let long = "a".repeat(60_000);
    c.call(RAM, "GetRole", &[("RoleName", &long)])
        .await
        .err(400, "InvalidParameter.RoleName.Length");
    // ...beyond the HTTP server's URI limit (64 KiB) the answer is a bare 414 / 431, as a
    // front end's would be: a 4xx, never a hang or a 5xx; the emulator keeps serving.
    // (reqwest refuses such URIs itself, so they go over a raw socket.)
    for n in [70_000, 2_000_000] {
        let request = format!(
            "GET /?Action=GetRole&Version=2015-05-01&RoleName={} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            "a".repeat(n)
        );
        let status = raw_status(&h, request.as_bytes()).await;
        assert!(matches!(status, 414 | 431), "{n} bytes: HTTP {status}");
    }
    // Non-numeric and out-of-range integers, bad JSON in list filters.
    c.call(IMM, "ListProjects", &[("MaxResults", "1e3")])
        .await
        .err(400, "InvalidArgument");
    c.call(RAM, "ListRoles", &[("MaxItems", "1001")])
        .await
        .err(400, "InvalidParameter.MaxItems");
    c.call(RAM, "ListRoles", &[("Tag", "[{")])
        .await
        .err(400, "InvalidParameter.Tag");
    c.call(IMM, "ListProjects", &[("Tag", "{\"Key\":\"a\"}")])
        .await
        .err(400, "InvalidArgument");
    c.call(
        RAM,
        "TagResources",
        &[
            ("ResourceType", "role"),
            ("ResourceNames", r#"["x"]"#),
            ("Tag", "not json"),
        ],
    )
    .await
    .err(400, "InvalidParameter.Tag");
    // A NextToken the service never issued, decoding to a huge offset: not a panic.
    use base64::Engine as _;
    let tok = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(u64::MAX.to_string());
    let b = c
        .call(
            RAM,
            "ListTagResources",
            &[("ResourceType", "role"), ("NextToken", &tok)],
        )
        .await
        .ok();
    assert_eq!(b["TagResources"], json!([]));
    // PolicyType is required where the service requires it.
    c.call(RAM, "GetPolicy", &[("PolicyName", "AdministratorAccess")])
        .await
        .err(400, "MissingPolicyType");
    // Invalid UTF-8 in a header-borne action is ignored like any unreadable header.
    let r = reqwest::Client::new()
        .post(format!("{}/?Version=2015-05-01", h.endpoint()))
        .header(
            "x-acs-action",
            reqwest::header::HeaderValue::from_bytes(b"List\xffRoles").unwrap(),
        )
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    assert_envelope(s, &r.json().await.unwrap(), 400, "MissingAction");
    // Still healthy, and no 5xx was ever answered.
    c.call(STS, "GetCallerIdentity", &[]).await.ok();
    let stats = h.stats();
    assert!(
        !stats
            .errors
            .keys()
            .any(|k| k == "InternalError" || k == "ServiceUnavailable"),
        "{stats:?}"
    );
}

#[tokio::test]
async fn absurd_fault_settings_do_not_break_the_emulator() {
    let h = start().await;
    let c = Client::admin(&h);
    let r = put_control(
        &h,
        "faults",
        r#"{"consistencyDelayMs": 18446744073709551615}"#,
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    c.call(
        RAM,
        "CreateRole",
        &[
            ("RoleName", "late"),
            ("AssumeRolePolicyDocument", IMM_TRUST),
        ],
    )
    .await
    .ok();
    c.call(RAM, "GetRole", &[("RoleName", "late")])
        .await
        .err(404, "EntityNotExist.Role");
    let r = put_control(&h, "faults", r#"{"faultRate": "lots"}"#).await;
    assert_eq!(r.status().as_u16(), 400);
    // Out of range is refused by name (it used to be clamped or answered as another status).
    for (body, says) in [
        (r#"{"faultRate": 2}"#, "faultRate: 2 is not a probability"),
        (
            r#"{"faultRate": -0.5}"#,
            "faultRate: -0.5 is not a probability",
        ),
        (
            r#"{"rateLimitScale": -1}"#,
            "rateLimitScale: -1 is not a factor",
        ),
        (
            r#"{"failNext": [{"action": "GetRole", "code": "X", "status": 99}]}"#,
            "failNext[0].status: 99 is not an HTTP error status",
        ),
    ] {
        let r = put_control(&h, "faults", body).await;
        assert_eq!(r.status().as_u16(), 400, "{body}");
        let text = r.text().await.unwrap();
        assert!(text.contains(says), "{body}: {text}");
    }
    // Nothing of those was taken: calls are still answered.
    c.call(RAM, "ListRoles", &[]).await.ok();
}

// ------------------------------------------------------------------------------- the binary

/// `immctl emulator ARGS` as a child process on a port-0 listener: the child and its
/// endpoint (read from the "listening on" line it prints).
async fn spawn_cli(args: &[&str]) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_immctl"))
        .arg("emulator")
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = tokio::io::BufReader::new(stderr).lines();
    let endpoint = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split("listening on ").nth(1) {
                return rest.trim().to_string();
            }
        }
        panic!("the emulator exited without listening");
    })
    .await
    .expect("the emulator starts within 30 s");
    // Keep draining stderr so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, endpoint)
}

async fn cli_output(args: &[&str]) -> std::process::Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_immctl"))
        .arg("emulator")
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn immctl_emulator_flags_configure_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    let (mut child, endpoint) = spawn_cli(&[
        "--listen",
        "127.0.0.1:0",
        "--state",
        path.to_str().unwrap(),
        "--latency",
        "30ms",
        "--fault-rate",
        "0",
        "--rate-limit-scale",
        "3",
        "--consistency-delay",
        "1500ms",
    ])
    .await;
    let f: Value = reqwest::get(format!("{endpoint}/_emulator/faults"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(f["latencyMs"], 30);
    assert_eq!(f["faultRate"], 0.0);
    assert_eq!(f["rateLimitScale"], 3.0);
    assert_eq!(f["consistencyDelayMs"], 1500);
    // The state file exists from the start (a fresh account) and follows every write.
    let fresh = State::load(&path, "2026-01-01T00:00:00Z").unwrap();
    assert_eq!(fresh.account_id, "1234567890123456");
    let c = Client::at(&endpoint, ADMIN_ID, ADMIN_SECRET);
    c.call(
        RAM,
        "CreateRole",
        &[
            ("RoleName", "cli-role"),
            ("AssumeRolePolicyDocument", IMM_TRUST),
        ],
    )
    .await
    .ok();
    // The consistency delay from the flag hides it from reads for now.
    c.call(RAM, "GetRole", &[("RoleName", "cli-role")])
        .await
        .err(404, "EntityNotExist.Role");
    let on_disk = State::load(&path, "2026-01-01T00:00:00Z").unwrap();
    assert!(on_disk.roles.contains_key("cli-role"));
    child.start_kill().unwrap();
    child.wait().await.unwrap();

    // Restarted on the same file, the role is there.
    let (mut child, endpoint) =
        spawn_cli(&["--listen", "127.0.0.1:0", "--state", path.to_str().unwrap()]).await;
    Client::at(&endpoint, ADMIN_ID, ADMIN_SECRET)
        .call(RAM, "GetRole", &[("RoleName", "cli-role")])
        .await
        .ok();
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}

#[tokio::test]
async fn immctl_emulator_without_state_serves_the_default_account_and_key() {
    let (mut child, endpoint) = spawn_cli(&["--listen", "127.0.0.1:0"]).await;
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    let f: Value = reqwest::get(format!("{endpoint}/_emulator/faults"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(f["rateLimitScale"], 1.0, "documented quotas by default");
    assert_eq!(
        (f["latencyMs"].clone(), f["faultRate"].clone()),
        (json!(0), json!(0.0))
    );
    let c = Client::at(&endpoint, "emulator-admin", "emulator-secret");
    for s in [Scheme::V1, Scheme::V3] {
        let who = c
            .clone()
            .scheme(s)
            .call(STS, "GetCallerIdentity", &[])
            .await
            .ok();
        assert_eq!(who["AccountId"], "1234567890123456");
        assert_eq!(who["Arn"], "acs:ram::1234567890123456:user/admin");
    }
    // An administrator: it may do anything.
    c.call(IMM, "CreateProject", &[("ProjectName", "first")])
        .await
        .ok();
    child.start_kill().unwrap();
    child.wait().await.unwrap();
}

#[tokio::test]
async fn immctl_emulator_refuses_bad_flags() {
    let out = cli_output(&["--listen", "127.0.0.1:0", "--fault-rate", "1.5"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--fault-rate"));
    let out = cli_output(&["--listen", "127.0.0.1:0", "--rate-limit-scale", "-1"]).await;
    assert_ne!(out.status.code(), Some(0));
    let out = cli_output(&["--latency", "2h"]).await;
    // A usage error is an error (1), never 2 (`--detailed-exitcode`'s "changes").
    assert_eq!(out.status.code(), Some(1), "clap usage error");
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.yaml");
    std::fs::write(&broken, "roles: [").unwrap();
    let out = cli_output(&[
        "--listen",
        "127.0.0.1:0",
        "--state",
        broken.to_str().unwrap(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("broken.yaml"), "{err}");
    // The broken file is left as it was, not replaced by a fresh account.
    assert_eq!(std::fs::read_to_string(&broken).unwrap(), "roles: [");
    // A bad --log-format is refused naming the flag, as by every other command (found by
    // trial6: the emulator took any value as `text`).
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        cli_output(&["--listen", "127.0.0.1:0", "--log-format", "bogus"]),
    )
    .await
    .expect("a bad --log-format is refused, not served");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--log-format") && err.contains("bogus"),
        "{err}"
    );
    // An address that cannot be listened on names the flag, not just "binding <value>".
    for bad in ["127.0.0.1", "127.0.0.1:99999", ":0"] {
        let out = cli_output(&["--listen", bad]).await;
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("--listen {bad}:")), "{err}");
    }
}

/// A state the API could never have produced is refused at start-up, naming the file and
/// every problem with where it is (found by a tester: a key of a missing user loaded
/// silently and failed only at call time with `InvalidAccessKeyId.NotFound`).
#[tokio::test]
async fn immctl_emulator_refuses_a_nonsense_state_naming_each_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nonsense.yaml");
    let text = "users:\n  admin: {}\naccessKeys:\n  - {id: a, secret: s, user: admin}\n  - {id: b, secret: s, user: ghost}\n  - {id: a, secret: t}\nroles:\n  media-app:\n    assumeRolePolicyDocument: not json\n    maxSessionDuration: 100000\nprojects:\n  \"\": {p: {}}\n";
    std::fs::write(&path, text).unwrap();
    let out = cli_output(&["--listen", "127.0.0.1:0", "--state", path.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    for want in [
        "nonsense.yaml",
        "accessKeys[1].user",
        "accessKeys[2].id: duplicate",
        "roles.media-app.assumeRolePolicyDocument: is not valid JSON",
        "roles.media-app.maxSessionDuration: 100000",
        "projects: a region with an empty name",
    ] {
        assert!(err.contains(want), "{want:?} missing from:\n{err}");
    }
    // Left as it was, not rewritten.
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
}

/// A state file that cannot be written is reported as such at start-up, with the OS reason
/// and what to do (found by a tester: a read-only one gave "loading the state file ro.yaml
/// ... writing state file ro.yaml: Operation not permitted"). A path under a regular file
/// fails for root too; an unwritable directory is tried as well when not root.
#[tokio::test]
async fn immctl_emulator_says_an_unwritable_state_file_cannot_be_written() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("some-file");
    std::fs::write(&file, "not a directory").unwrap();
    let mut paths = vec![file.join("state.json")];
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let ro = dir.path().join("ro");
        std::fs::create_dir(&ro).unwrap();
        std::fs::write(ro.join("ro.yaml"), "accountId: \"1\"\n").unwrap();
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        // Root writes anyway; only a probe tells whether the directory really is unwritable.
        if std::fs::write(ro.join("probe"), "").is_err() {
            paths.push(ro.join("ro.yaml"));
        }
    }
    for path in &paths {
        let out = cli_output(&["--listen", "127.0.0.1:0", "--state", path.to_str().unwrap()]).await;
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "the state file {} cannot be written: ",
                path.display()
            )),
            "{err}"
        );
        assert!(
            err.contains("make it and its directory writable, or use another --state FILE"),
            "{err}"
        );
        assert!(!err.contains("loading the state file"), "{err}");
    }
    assert!(
        String::from_utf8_lossy(
            &cli_output(&[
                "--listen",
                "127.0.0.1:0",
                "--state",
                paths[0].to_str().unwrap()
            ])
            .await
            .stderr
        )
        .contains("some-file is not a directory")
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let _ = std::fs::set_permissions(
            dir.path().join("ro"),
            std::fs::Permissions::from_mode(0o755),
        );
    }
}

/// Logs written to a file (not a terminal) carry no ANSI colour codes (found by trial6: a
/// redirected `immctl emulator` log was full of escape sequences).
#[tokio::test]
async fn the_emulator_log_has_no_colour_codes_off_a_terminal() {
    use std::io::{Read as _, Write as _};
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("emulator.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_immctl"))
        .args(["emulator", "-vv", "--listen", "127.0.0.1:0"])
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let addr = loop {
        let text = std::fs::read_to_string(&log).unwrap();
        if let Some(rest) = text.split("listening on http://").nth(1) {
            break rest.lines().next().unwrap().trim().to_string();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no listen line: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // One request without credentials: logged at debug as an error answer.
    let mut tcp = std::net::TcpStream::connect(&addr).unwrap();
    write!(
        tcp,
        "GET /?Action=ListRoles&Version=2015-05-01 HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("emulator: error"), "{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a log file:\n{text}"
    );
}

/// Kill -9 the emulator while sixteen clients write: the state file must always parse, and
/// hold every write the emulator acknowledged (it persists before it answers).
#[tokio::test]
async fn a_killed_emulator_never_leaves_a_torn_state_file() {
    let dir = tempfile::tempdir().unwrap();
    for round in 0..8u64 {
        let file = if round % 2 == 0 {
            "state.json"
        } else {
            "state.yaml"
        };
        let path = dir.path().join(file);
        let (mut child, endpoint) = spawn_cli(&[
            "--listen",
            "127.0.0.1:0",
            "--state",
            path.to_str().unwrap(),
            "--rate-limit-scale",
            "0",
        ])
        .await;
        let before = State::load(&path, "2026-01-01T00:00:00Z").unwrap();
        // Counts acknowledged writes, so the kill lands while writes are going on even when
        // a loaded machine is slow to start the writers.
        let acks = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let writers: Vec<_> = (0..16)
            .map(|w| {
                let c = Client::at(&endpoint, ADMIN_ID, ADMIN_SECRET);
                let acks = acks.clone();
                tokio::spawn(async move {
                    let mut acked = Vec::new();
                    for i in 0.. {
                        let name = format!("k{round}-{w}-{i}");
                        let doc = IMM_TRUST.replace("imm.", &format!("imm{i}."));
                        match c
                            .try_call(
                                RAM,
                                "CreateRole",
                                &[("RoleName", &name), ("AssumeRolePolicyDocument", &doc)],
                            )
                            .await
                        {
                            Ok(r) if r.status == 200 => {
                                acks.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                acked.push(name)
                            }
                            Ok(r) => panic!("unexpected answer {}: {}", r.status, r.body),
                            Err(_) => break,
                        }
                    }
                    acked
                })
            })
            .collect();
        let started = std::time::Instant::now();
        while acks.load(std::sync::atomic::Ordering::SeqCst) == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "round {round}: no write acknowledged in 30 s"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(40 + 37 * round)).await;
        child.start_kill().unwrap();
        child.wait().await.unwrap();
        let mut acked = Vec::new();
        for w in writers {
            acked.extend(w.await.unwrap());
        }
        let after = State::load(&path, "2026-01-01T00:00:00Z")
            .unwrap_or_else(|e| panic!("round {round}: torn state file: {e}"));
        assert!(!acked.is_empty(), "round {round}: no write got through");
        for name in &acked {
            assert!(
                after.roles.contains_key(name),
                "round {round}: acknowledged {name} lost"
            );
        }
        assert!(after.roles.len() >= before.roles.len() + acked.len());
    }
}

#[tokio::test]
async fn authorization_evaluates_not_action_not_resource_and_conditions_on_the_request() {
    // Everything but deletes, from loopback only; GetRole denied outside `open-*`.
    let everything_but_deletes = json!({"Version":"1","Statement":[
        {"Effect":"Allow","NotAction":["ram:Delete*","imm:*"],"Resource":"*",
         "Condition":{"IpAddress":{"acs:SourceIp":["127.0.0.0/8"]}}},
        {"Effect":"Deny","Action":"ram:GetRole","NotResource":"acs:ram:*:*:role/open-*"}]})
    .to_string();
    let h = start_with(state_with_dev(&[everything_but_deletes])).await;
    let dev = Client::new(&h, "dev-id", "dev-secret");
    dev.call(RAM, "ListRoles", &[]).await.ok();
    dev.call(
        RAM,
        "CreateRole",
        &[
            ("RoleName", "open-a"),
            ("AssumeRolePolicyDocument", IMM_TRUST),
        ],
    )
    .await
    .ok();
    dev.call(RAM, "GetRole", &[("RoleName", "open-a")])
        .await
        .ok();
    let r = dev.call(RAM, "GetRole", &[("RoleName", "closed")]).await;
    r.err(403, "NoPermission");
    assert_eq!(
        r.body["AccessDeniedDetail"]["NoPermissionType"],
        "ExplicitDeny"
    );
    let r = dev.call(RAM, "DeleteRole", &[("RoleName", "open-a")]).await;
    r.err(403, "NoPermission");
    assert_eq!(
        r.body["AccessDeniedDetail"]["NoPermissionType"],
        "ImplicitDeny"
    );
    assert_eq!(r.body["AccessDeniedDetail"]["AuthAction"], "ram:DeleteRole");
    dev.call(IMM, "ListProjects", &[])
        .await
        .err(403, "NoPermission");

    // The same grant limited to another network, or to a time long past, grants nothing.
    for cond in [
        json!({"IpAddress":{"acs:SourceIp":"10.0.0.0/8"}}),
        json!({"DateLessThan":{"acs:CurrentTime":"2001-01-01T00:00:00Z"}}),
        json!({"Bool":{"acs:SecureTransport":"true"}}),
    ] {
        let p = json!({"Version":"1","Statement":[
            {"Effect":"Allow","Action":"ram:List*","Resource":"*","Condition":cond}]})
        .to_string();
        let h = start_with(state_with_dev(&[p])).await;
        Client::new(&h, "dev-id", "dev-secret")
            .call(RAM, "ListRoles", &[])
            .await
            .err(403, "NoPermission");
    }
    // And a condition the request satisfies grants it.
    let p = json!({"Version":"1","Statement":[
        {"Effect":"Allow","Action":"ram:list*","Resource":"*",
         "Condition":{"DateGreaterThan":{"acs:CurrentTime":"2001-01-01T00:00:00Z"},
                      "StringLike":{"acs:AccessId":"dev-*"}}}]})
    .to_string();
    let h = start_with(state_with_dev(&[p])).await;
    Client::new(&h, "dev-id", "dev-secret")
        .call(RAM, "ListRoles", &[])
        .await
        .ok();
}

#[tokio::test]
async fn a_write_that_cannot_be_persisted_is_not_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("sub");
    let path = sub.join("state.json");
    let h = emulator::spawn(EmulatorOptions {
        state_file: Some(path.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    let c = Client::admin(&h);
    let create = |name: &'static str| {
        let c = c.clone();
        async move {
            c.call(
                RAM,
                "CreateRole",
                &[("RoleName", name), ("AssumeRolePolicyDocument", IMM_TRUST)],
            )
            .await
        }
    };
    create("first").await.ok();
    // The state file's directory becomes a plain file: the next write cannot be saved.
    std::fs::remove_dir_all(&sub).unwrap();
    std::fs::write(&sub, "not a directory").unwrap();
    create("second").await.err(500, "InternalError");
    // Once the disk is back, the next call writes everything, the pending change included.
    std::fs::remove_file(&sub).unwrap();
    c.call(RAM, "GetRole", &[("RoleName", "first")]).await.ok();
    let on_disk = State::load(&path, "2026-01-01T00:00:00Z").unwrap();
    assert!(on_disk.roles.contains_key("first") && on_disk.roles.contains_key("second"));
    assert_eq!(on_disk, h.state());
}

/// Every RAM, IMM and STS action the emulator serves (GetCallerIdentity excepted, as in the
/// service) is checked against the caller's policies: a RAM user with no policy is refused
/// each one with `NoPermission` naming the action, before anything is looked up.
#[tokio::test]
async fn every_action_is_authorized() {
    let mut st = state_with_dev(&[]);
    st.users.get_mut("dev").unwrap().policies.clear();
    let h = start_with(st).await;
    Client::admin(&h)
        .call(
            RAM,
            "CreateRole",
            &[
                ("RoleName", "target"),
                (
                    "AssumeRolePolicyDocument",
                    &account_trust("1234567890123456"),
                ),
            ],
        )
        .await
        .ok();
    let dev = Client::new(&h, "dev-id", "dev-secret");
    let pdoc = doc(&["oss:GetObject"], "*");
    type Call<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);
    let calls: Vec<Call> = vec![
        (
            RAM,
            "CreateRole",
            vec![("RoleName", "r"), ("AssumeRolePolicyDocument", IMM_TRUST)],
        ),
        (RAM, "GetRole", vec![("RoleName", "r")]),
        (
            RAM,
            "UpdateRole",
            vec![("RoleName", "r"), ("NewDescription", "d")],
        ),
        (RAM, "DeleteRole", vec![("RoleName", "r")]),
        (RAM, "ListRoles", vec![]),
        (
            RAM,
            "CreatePolicy",
            vec![("PolicyName", "p"), ("PolicyDocument", &pdoc)],
        ),
        (
            RAM,
            "GetPolicy",
            vec![("PolicyName", "p"), ("PolicyType", "Custom")],
        ),
        (RAM, "ListPolicies", vec![]),
        (
            RAM,
            "UpdatePolicyDescription",
            vec![("PolicyName", "p"), ("NewDescription", "d")],
        ),
        (RAM, "DeletePolicy", vec![("PolicyName", "p")]),
        (
            RAM,
            "CreatePolicyVersion",
            vec![("PolicyName", "p"), ("PolicyDocument", &pdoc)],
        ),
        (
            RAM,
            "GetPolicyVersion",
            vec![
                ("PolicyName", "p"),
                ("PolicyType", "Custom"),
                ("VersionId", "v1"),
            ],
        ),
        (
            RAM,
            "ListPolicyVersions",
            vec![("PolicyName", "p"), ("PolicyType", "Custom")],
        ),
        (
            RAM,
            "SetDefaultPolicyVersion",
            vec![("PolicyName", "p"), ("VersionId", "v1")],
        ),
        (
            RAM,
            "DeletePolicyVersion",
            vec![("PolicyName", "p"), ("VersionId", "v2")],
        ),
        (
            RAM,
            "AttachPolicyToRole",
            vec![
                ("RoleName", "r"),
                ("PolicyType", "Custom"),
                ("PolicyName", "p"),
            ],
        ),
        (
            RAM,
            "DetachPolicyFromRole",
            vec![
                ("RoleName", "r"),
                ("PolicyType", "Custom"),
                ("PolicyName", "p"),
            ],
        ),
        (RAM, "ListPoliciesForRole", vec![("RoleName", "r")]),
        (
            RAM,
            "ListEntitiesForPolicy",
            vec![("PolicyName", "p"), ("PolicyType", "Custom")],
        ),
        (
            RAM,
            "TagResources",
            vec![
                ("ResourceType", "role"),
                ("ResourceNames", r#"["r"]"#),
                ("Tag", r#"[{"Key":"k","Value":"v"}]"#),
            ],
        ),
        (
            RAM,
            "UntagResources",
            vec![
                ("ResourceType", "role"),
                ("ResourceNames", r#"["r"]"#),
                ("TagKeys", r#"["k"]"#),
            ],
        ),
        (RAM, "ListTagResources", vec![("ResourceType", "role")]),
        (IMM, "CreateProject", vec![("ProjectName", "p")]),
        (IMM, "GetProject", vec![("ProjectName", "p")]),
        (
            IMM,
            "UpdateProject",
            vec![("ProjectName", "p"), ("Description", "d")],
        ),
        (IMM, "DeleteProject", vec![("ProjectName", "p")]),
        (IMM, "ListProjects", vec![]),
        (
            IMM,
            "CreateDataset",
            vec![("ProjectName", "p"), ("DatasetName", "d")],
        ),
        (
            IMM,
            "GetDataset",
            vec![("ProjectName", "p"), ("DatasetName", "d")],
        ),
        (
            IMM,
            "UpdateDataset",
            vec![("ProjectName", "p"), ("DatasetName", "d")],
        ),
        (
            IMM,
            "DeleteDataset",
            vec![("ProjectName", "p"), ("DatasetName", "d")],
        ),
        (IMM, "ListDatasets", vec![("ProjectName", "p")]),
        (
            IMM,
            "CreateBinding",
            vec![
                ("ProjectName", "p"),
                ("DatasetName", "d"),
                ("URI", "oss://b"),
            ],
        ),
        (
            IMM,
            "GetBinding",
            vec![
                ("ProjectName", "p"),
                ("DatasetName", "d"),
                ("URI", "oss://b"),
            ],
        ),
        (
            IMM,
            "DeleteBinding",
            vec![
                ("ProjectName", "p"),
                ("DatasetName", "d"),
                ("URI", "oss://b"),
            ],
        ),
        (
            IMM,
            "ListBindings",
            vec![("ProjectName", "p"), ("DatasetName", "d")],
        ),
        (
            STS,
            "AssumeRole",
            vec![
                ("RoleArn", "acs:ram::1234567890123456:role/target"),
                ("RoleSessionName", "s1"),
            ],
        ),
    ];
    for (version, action, params) in &calls {
        let r = dev.call(version, action, params).await;
        r.err(403, "NoPermission");
        let service = match *version {
            RAM => "ram",
            IMM => "imm",
            _ => "sts",
        };
        assert_eq!(
            r.body["AccessDeniedDetail"]["AuthAction"],
            format!("{service}:{action}"),
            "{action}"
        );
    }
    // Nothing was changed by the refused calls.
    let st = h.state();
    assert_eq!(st.roles.keys().collect::<Vec<_>>(), ["target"]);
    assert!(st.policies.is_empty() && st.projects.is_empty());
    dev.call(STS, "GetCallerIdentity", &[]).await.ok();
}

/// `PUT /_emulator/faults` with a misspelt key (`fault_rate` for `faultRate`, a key inside
/// `failNext`) used to answer 200 and change nothing, so a test believed it injected faults
/// that never came. It is a 400 naming the key, and the settings stay as they were.
#[tokio::test]
async fn faults_with_an_unknown_key_are_refused_naming_it() {
    let h = start().await;
    let http = reqwest::Client::new();
    for (body, key) in [
        (r#"{"fault_rate": 1.0}"#, "fault_rate"),
        (r#"{"faultRate": 1.0, "latency": 5}"#, "latency"),
        (
            r#"{"failNext": [{"action": "GetRole", "code": "InternalError", "times": 3}]}"#,
            "times",
        ),
    ] {
        let r = put_control(&h, "faults", body).await;
        assert_eq!(r.status().as_u16(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        assert!(
            v["error"].as_str().is_some_and(|e| e.contains(key)),
            "{body}: {v}"
        );
    }
    let f: Value = http
        .get(format!("{}/_emulator/faults", h.endpoint()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(f["faultRate"], 0.0, "{f}");
    assert_eq!(f["failNext"], serde_json::json!([]), "{f}");
}
