//! What an IMM service role needs (DESIGN.md §1): the trust policy that lets
//! `imm.aliyuncs.com` assume it, and the least-privilege permission policy for a set of OSS
//! buckets. Shared by the `ImmServiceRole` expansion and by the lints, so "the minimum" is
//! written down exactly once.
//!
//! Pure data: no I/O.

use serde_json::json;

use super::PolicyDocument;

/// The IMM cloud service principal a service role must trust.
pub const IMM_SERVICE_PRINCIPAL: &str = "imm.aliyuncs.com";

/// OSS actions IMM needs on the bucket itself (`acs:oss:*:*:<bucket>`).
///
/// `oss:Get*` / `oss:List*` cover both levels (GetBucketInfo, ListObjects on the bucket;
/// GetObject on objects), so they appear in both lists.
pub const OSS_BUCKET_ACTIONS: &[&str] = &[
    "oss:Get*",
    "oss:List*",
    "oss:PutBucketLifecycle",
    "oss:PutBucketNotification",
    "oss:DeleteBucketNotification",
    "oss:PutBucketAcl",
    "oss:StartEventRecord",
    "oss:StopEventRecord",
    "oss:GetEventRecordStatus",
];

/// OSS actions IMM needs on the bucket's objects (`acs:oss:*:*:<bucket>/*`).
pub const OSS_OBJECT_ACTIONS: &[&str] = &[
    "oss:Get*",
    "oss:List*",
    "oss:PutObjectAcl",
    "oss:CopyObject",
    "oss:AppendObject",
    "oss:PutSymlink",
    "oss:PutObject",
];

/// MNS actions IMM needs (on every resource).
pub const MNS_ACTIONS: &[&str] = &["mns:*"];

/// The condition `ram:PassRole` must carry in a service role's policy.
pub const PASS_ROLE_CONDITION_KEY: &str = "acs:Service";

/// `acs:oss:*:*:<bucket>`
pub fn bucket_resource(bucket: &str) -> String {
    format!("acs:oss:*:*:{bucket}")
}

/// `acs:oss:*:*:<bucket>/*`
pub fn object_resource(bucket: &str) -> String {
    format!("acs:oss:*:*:{bucket}/*")
}

/// The trust policy of an IMM service role: `imm.aliyuncs.com` may assume it.
pub fn trust_policy() -> PolicyDocument {
    PolicyDocument(json!({
        "Version": "1",
        "Statement": [{
            "Effect": "Allow",
            "Action": "sts:AssumeRole",
            "Principal": { "Service": [IMM_SERVICE_PRINCIPAL] }
        }]
    }))
}

/// The least-privilege permission policy for `buckets`: each OSS action on the resource form
/// it is checked against (bucket-level on `<bucket>`, object-level on `<bucket>/*`), `mns:*`,
/// and `ram:PassRole` limited to IMM by `acs:Service`. `extra` statements are appended as
/// written.
pub fn service_role_policy(buckets: &[String], extra: &[serde_json::Value]) -> PolicyDocument {
    let mut buckets: Vec<&String> = buckets.iter().collect();
    buckets.sort();
    buckets.dedup();
    let mut statements = Vec::new();
    if !buckets.is_empty() {
        statements.push(json!({
            "Effect": "Allow",
            "Action": OSS_BUCKET_ACTIONS,
            "Resource": buckets.iter().map(|b| bucket_resource(b)).collect::<Vec<_>>(),
        }));
        statements.push(json!({
            "Effect": "Allow",
            "Action": OSS_OBJECT_ACTIONS,
            "Resource": buckets.iter().map(|b| object_resource(b)).collect::<Vec<_>>(),
        }));
    }
    statements.push(json!({
        "Effect": "Allow",
        "Action": MNS_ACTIONS,
        "Resource": "*",
    }));
    statements.push(json!({
        "Effect": "Allow",
        "Action": "ram:PassRole",
        "Resource": "*",
        "Condition": { "StringEquals": { PASS_ROLE_CONDITION_KEY: IMM_SERVICE_PRINCIPAL } },
    }));
    statements.extend(extra.iter().cloned());
    PolicyDocument(json!({ "Version": "1", "Statement": statements }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_scopes_bucket_and_object_actions_to_their_resource_forms() {
        let doc = service_role_policy(&["b2".into(), "b1".into(), "b1".into()], &[]);
        let stmts = doc.0["Statement"].as_array().unwrap();
        assert_eq!(
            stmts[0]["Resource"],
            json!(["acs:oss:*:*:b1", "acs:oss:*:*:b2"])
        );
        assert_eq!(
            stmts[1]["Resource"],
            json!(["acs:oss:*:*:b1/*", "acs:oss:*:*:b2/*"])
        );
        assert!(
            stmts[1]["Action"]
                .as_array()
                .unwrap()
                .contains(&json!("oss:PutObject"))
        );
        assert_eq!(
            stmts[3]["Condition"]["StringEquals"]["acs:Service"],
            json!("imm.aliyuncs.com")
        );
    }

    #[test]
    fn trust_names_the_imm_service() {
        assert_eq!(
            trust_policy().0["Statement"][0]["Principal"]["Service"][0],
            json!("imm.aliyuncs.com")
        );
    }
}
