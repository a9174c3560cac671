//! The catalogue of Alibaba Cloud System policies immctl knows by heart: name, description and
//! default-version document, in the shape Alibaba publishes them.
//!
//! One list, two users: the emulator serves these as every emulated account's built-in,
//! read-only System policies, and the lints (`immctl validate`, offline) evaluate a service
//! role through the real documents of its System attachments. When planning, the documents
//! read live (`Live::system_policy_documents`) take precedence; a System policy that is
//! neither live nor listed here is "unknown, can't check", never a silent pass.
//!
//! Pure data: no I/O.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::PolicyDocument;

/// One System policy: `(name, description, default-version document as JSON text)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemPolicyDef {
    pub name: &'static str,
    pub description: &'static str,
    /// The default version's document, as RAM returns it (compact JSON text).
    pub document: &'static str,
}

const fn def(
    name: &'static str,
    description: &'static str,
    document: &'static str,
) -> SystemPolicyDef {
    SystemPolicyDef {
        name,
        description,
        document,
    }
}

/// Every System policy in the catalogue.
pub const CATALOGUE: &[SystemPolicyDef] = &[
    def(
        "AdministratorAccess",
        "管理所有阿里云资源的权限",
        r#"{"Version":"1","Statement":[{"Action":"*","Effect":"Allow","Resource":"*"}]}"#,
    ),
    def(
        "ReadOnlyAccess",
        "只读访问所有阿里云资源的权限",
        r#"{"Version":"1","Statement":[{"Action":["*:Describe*","*:List*","*:Get*","*:BatchGet*","*:Query*","*:BatchQuery*","actiontrail:LookupEvents","dm:Desc*","dm:SenderStatistics*","ram:GenerateCredentialReport","ram:GetCredentialReport"],"Effect":"Allow","Resource":"*"}]}"#,
    ),
    def(
        "AliyunIMMFullAccess",
        "管理智能媒体管理（IMM）的权限",
        r#"{"Version":"1","Statement":[{"Action":"imm:*","Resource":"*","Effect":"Allow"},{"Action":"ram:PassRole","Resource":"*","Effect":"Allow","Condition":{"StringEquals":{"acs:Service":"imm.aliyuncs.com"}}}]}"#,
    ),
    def(
        "AliyunIMMReadOnlyAccess",
        "只读访问智能媒体管理（IMM）的权限",
        r#"{"Version":"1","Statement":[{"Action":["imm:Get*","imm:List*","imm:Query*","imm:Batch*Get*","imm:Describe*"],"Resource":"*","Effect":"Allow"}]}"#,
    ),
    def(
        "AliyunIMMDefaultRolePolicy",
        "用于智能媒体管理（IMM）服务默认角色的授权策略",
        r#"{"Version":"1","Statement":[{"Action":["oss:*"],"Resource":"*","Effect":"Allow"},{"Action":["mns:*"],"Resource":"*","Effect":"Allow"},{"Action":["ram:PassRole"],"Resource":"*","Effect":"Allow","Condition":{"StringEquals":{"acs:Service":"imm.aliyuncs.com"}}}]}"#,
    ),
    def(
        "AliyunOSSFullAccess",
        "管理对象存储服务（OSS）权限",
        r#"{"Version":"1","Statement":[{"Action":"oss:*","Effect":"Allow","Resource":"*"}]}"#,
    ),
    def(
        "AliyunOSSReadOnlyAccess",
        "只读访问对象存储服务（OSS）的权限",
        r#"{"Version":"1","Statement":[{"Action":["oss:Get*","oss:List*"],"Effect":"Allow","Resource":"*"}]}"#,
    ),
    def(
        "AliyunMNSFullAccess",
        "管理消息服务（MNS）的权限",
        r#"{"Version":"1","Statement":[{"Action":"mns:*","Resource":"*","Effect":"Allow"}]}"#,
    ),
    def(
        "AliyunSTSAssumeRoleAccess",
        "调用STS服务AssumeRole接口的权限",
        r#"{"Version":"1","Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Resource":"*"}]}"#,
    ),
    def(
        "AliyunRAMFullAccess",
        "管理访问控制（RAM）的权限，即管理用户以及授权的权限",
        r#"{"Version":"1","Statement":[{"Action":"ram:*","Resource":"*","Effect":"Allow"}]}"#,
    ),
    def(
        "AliyunRAMReadOnlyAccess",
        "只读访问访问控制（RAM）的权限，即查看用户、用户组以及授权信息的权限",
        r#"{"Version":"1","Statement":[{"Action":["ram:Get*","ram:List*"],"Resource":"*","Effect":"Allow"}]}"#,
    ),
];

/// The catalogue entry for `name` (System policy names are case-sensitive).
pub fn lookup(name: &str) -> Option<&'static SystemPolicyDef> {
    CATALOGUE.iter().find(|d| d.name == name)
}

/// The parsed default document of a catalogued System policy.
pub fn document(name: &str) -> Option<&'static PolicyDocument> {
    static DOCS: OnceLock<BTreeMap<&'static str, PolicyDocument>> = OnceLock::new();
    DOCS.get_or_init(|| {
        CATALOGUE
            .iter()
            .map(|d| {
                let doc = PolicyDocument::from_json_str(d.document)
                    .expect("catalogue documents are valid JSON (tested)");
                (d.name, doc)
            })
            .collect()
    })
    .get(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_document_is_valid_json_with_statements() {
        for d in CATALOGUE {
            let v: serde_json::Value = serde_json::from_str(d.document).unwrap();
            assert_eq!(v["Version"], "1", "{}", d.name);
            assert!(
                v["Statement"].as_array().is_some_and(|s| !s.is_empty()),
                "{}",
                d.name
            );
            assert!(document(d.name).is_some());
        }
    }

    #[test]
    fn names_are_unique_and_unknown_names_are_absent() {
        let mut names: Vec<&str> = CATALOGUE.iter().map(|d| d.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), CATALOGUE.len());
        assert!(lookup("AliyunOSSFullAccess").is_some());
        assert!(lookup("aliyunossfullaccess").is_none());
        assert!(document("AliyunNoSuchPolicy").is_none());
    }
}
