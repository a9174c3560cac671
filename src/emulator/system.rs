//! The built-in, read-only System policies every emulated account has, with documents in
//! the shape Alibaba publishes them. Data only.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use super::state::{DocText, SystemPolicy};

const SYSTEM: &[(&str, &str, &str)] = &[
    (
        "AdministratorAccess",
        "管理所有阿里云资源的权限",
        r#"{"Version":"1","Statement":[{"Action":"*","Effect":"Allow","Resource":"*"}]}"#,
    ),
    (
        "ReadOnlyAccess",
        "只读访问所有阿里云资源的权限",
        r#"{"Version":"1","Statement":[{"Action":["*:Describe*","*:List*","*:Get*","*:BatchGet*","*:Query*","*:BatchQuery*","actiontrail:LookupEvents","dm:Desc*","dm:SenderStatistics*","ram:GenerateCredentialReport","ram:GetCredentialReport"],"Effect":"Allow","Resource":"*"}]}"#,
    ),
    (
        "AliyunIMMFullAccess",
        "管理智能媒体管理（IMM）的权限",
        r#"{"Version":"1","Statement":[{"Action":"imm:*","Resource":"*","Effect":"Allow"},{"Action":"ram:PassRole","Resource":"*","Effect":"Allow","Condition":{"StringEquals":{"acs:Service":"imm.aliyuncs.com"}}}]}"#,
    ),
    (
        "AliyunIMMReadOnlyAccess",
        "只读访问智能媒体管理（IMM）的权限",
        r#"{"Version":"1","Statement":[{"Action":["imm:Get*","imm:List*","imm:Query*","imm:Batch*Get*","imm:Describe*"],"Resource":"*","Effect":"Allow"}]}"#,
    ),
    (
        "AliyunIMMDefaultRolePolicy",
        "用于智能媒体管理（IMM）服务默认角色的授权策略",
        r#"{"Version":"1","Statement":[{"Action":["oss:*"],"Resource":"*","Effect":"Allow"},{"Action":["mns:*"],"Resource":"*","Effect":"Allow"},{"Action":["ram:PassRole"],"Resource":"*","Effect":"Allow","Condition":{"StringEquals":{"acs:Service":"imm.aliyuncs.com"}}}]}"#,
    ),
    (
        "AliyunOSSFullAccess",
        "管理对象存储服务（OSS）权限",
        r#"{"Version":"1","Statement":[{"Action":"oss:*","Effect":"Allow","Resource":"*"}]}"#,
    ),
    (
        "AliyunOSSReadOnlyAccess",
        "只读访问对象存储服务（OSS）的权限",
        r#"{"Version":"1","Statement":[{"Action":["oss:Get*","oss:List*"],"Effect":"Allow","Resource":"*"}]}"#,
    ),
    (
        "AliyunMNSFullAccess",
        "管理消息服务（MNS）的权限",
        r#"{"Version":"1","Statement":[{"Action":"mns:*","Resource":"*","Effect":"Allow"}]}"#,
    ),
    (
        "AliyunSTSAssumeRoleAccess",
        "调用STS服务AssumeRole接口的权限",
        r#"{"Version":"1","Statement":[{"Action":"sts:AssumeRole","Effect":"Allow","Resource":"*"}]}"#,
    ),
    (
        "AliyunRAMFullAccess",
        "管理访问控制（RAM）的权限，即管理用户以及授权的权限",
        r#"{"Version":"1","Statement":[{"Action":"ram:*","Resource":"*","Effect":"Allow"}]}"#,
    ),
    (
        "AliyunRAMReadOnlyAccess",
        "只读访问访问控制（RAM）的权限，即查看用户、用户组以及授权信息的权限",
        r#"{"Version":"1","Statement":[{"Action":["ram:Get*","ram:List*"],"Resource":"*","Effect":"Allow"}]}"#,
    ),
];

/// The built-in System policies by name.
pub fn builtin() -> &'static BTreeMap<String, SystemPolicy> {
    static CELL: OnceLock<BTreeMap<String, SystemPolicy>> = OnceLock::new();
    CELL.get_or_init(|| {
        SYSTEM
            .iter()
            .map(|(name, desc, doc)| {
                (
                    name.to_string(),
                    SystemPolicy {
                        description: desc.to_string(),
                        document: DocText(doc.to_string()),
                        default_version: "v1".to_string(),
                        create_date: "2015-04-28T03:21:23Z".to_string(),
                    },
                )
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_builtin_document_is_valid_json_with_statements() {
        for (name, p) in super::builtin() {
            let v: serde_json::Value = serde_json::from_str(&p.document.0).unwrap();
            assert_eq!(v["Version"], "1", "{name}");
            assert!(
                v["Statement"].as_array().is_some_and(|s| !s.is_empty()),
                "{name}"
            );
        }
    }
}
