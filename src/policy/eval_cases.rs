//! The evaluator's verdict table (issue 8 point 4): each row is a set of policies, one
//! request, and the decision RAM gives. Rows cover the IMM service-role minimum (allowed,
//! one action missing, wrong bucket, bucket versus object form), explicit deny, `NotAction`,
//! `NotResource`, conditions (`acs:Service` included), wildcards and case rules.

use serde_json::{Value, json};

use super::eval::{Decision, Request, evaluate};
use super::imm;

use Decision::{Allow, ExplicitDeny, ImplicitDeny};

struct Case {
    name: &'static str,
    policies: Vec<Value>,
    action: &'static str,
    resource: &'static str,
    context: &'static [(&'static str, &'static str)],
    want: Decision,
}

fn stmt(effect: &str, action: Value, resource: Value) -> Value {
    json!({"Effect": effect, "Action": action, "Resource": resource})
}

fn doc(statements: Vec<Value>) -> Value {
    json!({"Version": "1", "Statement": statements})
}

fn minimum() -> Value {
    imm::service_role_policy(&["media".to_string()], &[]).0
}

/// The guide's example: every action on `<bucket>/*` only.
fn guide_example() -> Value {
    let mut actions: Vec<&str> = imm::OSS_BUCKET_ACTIONS.to_vec();
    actions.extend(imm::OSS_OBJECT_ACTIONS);
    doc(vec![stmt(
        "Allow",
        json!(actions),
        json!("acs:oss:*:*:media/*"),
    )])
}

fn cases() -> Vec<Case> {
    let none: &[(&str, &str)] = &[];
    let imm_ctx: &[(&str, &str)] = &[("acs:Service", "imm.aliyuncs.com")];
    let ecs_ctx: &[(&str, &str)] = &[("acs:Service", "ecs.aliyuncs.com")];
    let pass_role_imm_only = doc(vec![json!({
        "Effect": "Allow", "Action": "ram:PassRole", "Resource": "*",
        "Condition": {"StringEquals": {"acs:Service": "imm.aliyuncs.com"}}})]);
    vec![
        Case {
            name: "minimum: bucket-level action on the bucket",
            policies: vec![minimum()],
            action: "oss:PutBucketNotification",
            resource: "acs:oss:*:*:media",
            context: none,
            want: Allow,
        },
        Case {
            name: "minimum: object-level action on an object",
            policies: vec![minimum()],
            action: "oss:PutObject",
            resource: "acs:oss:*:*:media/2026/a.jpg",
            context: none,
            want: Allow,
        },
        Case {
            name: "minimum: wildcard oss:Get* covers GetObject",
            policies: vec![minimum()],
            action: "oss:GetObject",
            resource: "acs:oss:*:*:media/a.jpg",
            context: none,
            want: Allow,
        },
        Case {
            name: "minimum: an action outside it (DeleteObject) is missing",
            policies: vec![minimum()],
            action: "oss:DeleteObject",
            resource: "acs:oss:*:*:media/a.jpg",
            context: none,
            want: ImplicitDeny,
        },
        Case {
            name: "minimum: wrong bucket",
            policies: vec![minimum()],
            action: "oss:PutObject",
            resource: "acs:oss:*:*:other/a.jpg",
            context: none,
            want: ImplicitDeny,
        },
        Case {
            name: "minimum: bucket action on the object form is not what OSS checks",
            policies: vec![minimum()],
            action: "oss:PutBucketLifecycle",
            resource: "acs:oss:*:*:media/a.jpg",
            context: none,
            want: ImplicitDeny,
        },
        Case {
            name: "guide example (<bucket>/* only) does not cover the bucket itself",
            policies: vec![guide_example()],
            action: "oss:PutBucketLifecycle",
            resource: "acs:oss:*:*:media",
            context: none,
            want: ImplicitDeny,
        },
        Case {
            name: "guide example covers objects",
            policies: vec![guide_example()],
            action: "oss:AppendObject",
            resource: "acs:oss:*:*:media/log.txt",
            context: none,
            want: Allow,
        },
        Case {
            name: "missing one action: PutSymlink not granted",
            policies: vec![doc(vec![stmt(
                "Allow",
                json!(["oss:PutObject", "oss:CopyObject"]),
                json!("acs:oss:*:*:media/*"),
            )])],
            action: "oss:PutSymlink",
            resource: "acs:oss:*:*:media/a",
            context: none,
            want: ImplicitDeny,
        },
        Case {
            name: "Deny in another policy overrides Allow",
            policies: vec![
                minimum(),
                doc(vec![stmt("Deny", json!("oss:Put*"), json!("*"))]),
            ],
            action: "oss:PutObject",
            resource: "acs:oss:*:*:media/a.jpg",
            context: none,
            want: ExplicitDeny,
        },
        Case {
            name: "Deny on another resource leaves the Allow",
            policies: vec![
                minimum(),
                doc(vec![stmt(
                    "Deny",
                    json!("oss:*"),
                    json!("acs:oss:*:*:secret/*"),
                )]),
            ],
            action: "oss:PutObject",
            resource: "acs:oss:*:*:media/a.jpg",
            context: none,
            want: Allow,
        },
        Case {
            name: "NotAction grants everything but what it lists",
            policies: vec![doc(vec![
                json!({"Effect":"Allow","NotAction":"ram:*","Resource":"*"}),
            ])],
            action: "oss:DeleteBucket",
            resource: "acs:oss:*:*:media",
            context: none,
            want: Allow,
        },
        Case {
            name: "NotAction does not grant what it lists",
            policies: vec![doc(vec![
                json!({"Effect":"Allow","NotAction":"ram:*","Resource":"*"}),
            ])],
            action: "ram:PassRole",
            resource: "acs:ram:*:1:role/x",
            context: none,
            want: ImplicitDeny,
        },
        Case {
            name: "NotResource excludes a bucket",
            policies: vec![doc(vec![json!({"Effect":"Allow","Action":"oss:*",
                "NotResource":["acs:oss:*:*:secret","acs:oss:*:*:secret/*"]})])],
            action: "oss:GetObject",
            resource: "acs:oss:*:*:secret/a",
            context: none,
            want: ImplicitDeny,
        },
        Case {
            name: "NotResource grants the other buckets",
            policies: vec![doc(vec![json!({"Effect":"Allow","Action":"oss:*",
                "NotResource":["acs:oss:*:*:secret","acs:oss:*:*:secret/*"]})])],
            action: "oss:GetObject",
            resource: "acs:oss:*:*:media/a",
            context: none,
            want: Allow,
        },
        Case {
            name: "PassRole with acs:Service = imm, asked by IMM",
            policies: vec![pass_role_imm_only.clone()],
            action: "ram:PassRole",
            resource: "acs:ram:*:1:role/imm-svc",
            context: imm_ctx,
            want: Allow,
        },
        Case {
            name: "PassRole with acs:Service = imm, asked for ECS",
            policies: vec![pass_role_imm_only.clone()],
            action: "ram:PassRole",
            resource: "acs:ram:*:1:role/imm-svc",
            context: ecs_ctx,
            want: ImplicitDeny,
        },
        Case {
            name: "PassRole with acs:Service = imm, no service in the context",
            policies: vec![pass_role_imm_only],
            action: "ram:PassRole",
            resource: "acs:ram:*:1:role/imm-svc",
            context: none,
            want: ImplicitDeny,
        },
        Case {
            name: "Deny PassRole unless IMM (StringNotEquals) blocks ECS",
            policies: vec![
                doc(vec![stmt("Allow", json!("ram:PassRole"), json!("*"))]),
                doc(vec![
                    json!({"Effect":"Deny","Action":"ram:PassRole","Resource":"*",
                    "Condition":{"StringNotEquals":{"acs:Service":"imm.aliyuncs.com"}}}),
                ]),
            ],
            action: "ram:PassRole",
            resource: "acs:ram:*:1:role/imm-svc",
            context: ecs_ctx,
            want: ExplicitDeny,
        },
        Case {
            name: "condition on the source IP: outside the range",
            policies: vec![doc(vec![
                json!({"Effect":"Allow","Action":"oss:*","Resource":"*",
                "Condition":{"IpAddress":{"acs:SourceIp":"10.0.0.0/8"}}}),
            ])],
            action: "oss:GetObject",
            resource: "acs:oss:*:*:media/a",
            context: &[("acs:SourceIp", "192.168.1.1")],
            want: ImplicitDeny,
        },
        Case {
            name: "action names are case-insensitive",
            policies: vec![doc(vec![stmt("Allow", json!("OSS:putobject"), json!("*"))])],
            action: "oss:PutObject",
            resource: "acs:oss:*:*:media/a",
            context: none,
            want: Allow,
        },
        Case {
            name: "resources are case-sensitive",
            policies: vec![doc(vec![stmt(
                "Allow",
                json!("oss:*"),
                json!("acs:oss:*:*:Media/*"),
            )])],
            action: "oss:GetObject",
            resource: "acs:oss:*:*:media/a",
            context: none,
            want: ImplicitDeny,
        },
        Case {
            name: "? matches exactly one character",
            policies: vec![doc(vec![stmt(
                "Allow",
                json!("oss:*"),
                json!("acs:oss:*:*:media-?/*"),
            )])],
            action: "oss:GetObject",
            resource: "acs:oss:*:*:media-10/a",
            context: none,
            want: ImplicitDeny,
        },
        Case {
            name: "a holder's oss:* covers a role's oss:Get* (literal * in the request)",
            policies: vec![doc(vec![stmt("Allow", json!("oss:*"), json!("*"))])],
            action: "oss:Get*",
            resource: "acs:oss:*:*:media/*",
            context: none,
            want: Allow,
        },
        Case {
            name: "a holder's oss:GetObject does not cover a role's oss:Get*",
            policies: vec![doc(vec![stmt("Allow", json!("oss:GetObject"), json!("*"))])],
            action: "oss:Get*",
            resource: "acs:oss:*:*:media/*",
            context: none,
            want: ImplicitDeny,
        },
        Case {
            name: "a holder's media/photos/* does not cover a role's media/*",
            policies: vec![doc(vec![stmt(
                "Allow",
                json!("oss:*"),
                json!("acs:oss:*:*:media/photos/*"),
            )])],
            action: "oss:PutObject",
            resource: "acs:oss:*:*:media/*",
            context: none,
            want: ImplicitDeny,
        },
        Case {
            name: "mns:* on * from AliyunMNSFullAccess",
            policies: vec![
                super::system::document("AliyunMNSFullAccess")
                    .unwrap()
                    .0
                    .clone(),
            ],
            action: "mns:SendMessage",
            resource: "acs:mns:cn-hangzhou:1:/queues/q",
            context: none,
            want: Allow,
        },
        Case {
            name: "ReadOnlyAccess grants no OSS write",
            policies: vec![super::system::document("ReadOnlyAccess").unwrap().0.clone()],
            action: "oss:PutObject",
            resource: "acs:oss:*:*:media/a",
            context: none,
            want: ImplicitDeny,
        },
        Case {
            name: "a statement without Effect grants nothing",
            policies: vec![doc(vec![json!({"Action":"*","Resource":"*"})])],
            action: "oss:GetObject",
            resource: "acs:oss:*:*:media/a",
            context: none,
            want: ImplicitDeny,
        },
    ]
}

#[test]
fn verdict_table() {
    let cases = cases();
    assert!(cases.len() >= 20, "the issue asks for at least 20 cases");
    let mut failures = Vec::new();
    for c in &cases {
        let mut req = Request::new(c.action, c.resource);
        for (k, v) in c.context {
            req = req.with(*k, *v);
        }
        let refs: Vec<&Value> = c.policies.iter().collect();
        let got = evaluate(&refs, &req);
        if got != c.want {
            failures.push(format!(
                "{}: {} on {}: got {got:?}, want {:?}",
                c.name, c.action, c.resource, c.want
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
