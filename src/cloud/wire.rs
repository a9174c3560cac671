//! Wire types: the JSON the services answer, with their real field names and nesting, and
//! the small helpers that write request parameters the way the official SDKs do.
//!
//! Pure data (serde only): no I/O, no client. The emulator may use these types to write its
//! answers, so every type derives both `Serialize` and `Deserialize`.
//!
//! Traps this module absorbs:
//! - RAM lists are wrapped twice (`Roles.Role[]`); an empty list may come as `{"Role":[]}`,
//!   `{}`, `null` or not at all. All four read as an empty list.
//! - RAM per-item tags are `Tags.Tag[]` with `TagKey`/`TagValue`; IMM project tags are a flat
//!   `Tags[]` of the same shape; request tags are `[{"Key","Value"}]` JSON in one parameter.
//! - Booleans go out lower-case (`true`/`false`).

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// API versions, one per product.
pub const RAM_VERSION: &str = "2015-05-01";
pub const IMM_VERSION: &str = "2020-09-30";
pub const STS_VERSION: &str = "2015-04-01";

/// A secret string (AccessKey secret, STS token). Its `Debug` prints `***`; it has no
/// `Display`. `Serialize` writes the value (the emulator needs it to answer STS calls):
/// never serialize a type holding one into logs or output.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    /// The secret itself: only for signing and for sending it where it belongs.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Null reads as the default (some answers carry `"Tags": null`).
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

macro_rules! ram_list {
    ($(#[$doc:meta])* $name:ident, $key:literal, $item:ty, $field:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            #[serde(rename = $key, default, deserialize_with = "null_default")]
            pub $field: Vec<$item>,
        }
    };
}

ram_list!(
    /// `Roles: {"Role": [...]}`
    RoleList, "Role", Role, role);
ram_list!(
    /// `Policies: {"Policy": [...]}`
    PolicyList, "Policy", Policy, policy);
ram_list!(
    /// `PolicyVersions: {"PolicyVersion": [...]}`
    PolicyVersionList, "PolicyVersion", PolicyVersion, policy_version);
ram_list!(
    /// `Tags: {"Tag": [...]}`
    RamTagList, "Tag", RamTag, tag);
ram_list!(
    /// `Users: {"User": [...]}`
    UserList, "User", PolicyUser, user);
ram_list!(
    /// `Groups: {"Group": [...]}`
    GroupList, "Group", PolicyGroup, group);

/// A tag as RAM lists and IMM projects carry it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RamTag {
    pub tag_key: String,
    #[serde(default)]
    pub tag_value: String,
}

impl RamTagList {
    /// The tags as a map.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.tag
            .iter()
            .map(|t| (t.tag_key.clone(), t.tag_value.clone()))
            .collect()
    }
}

/// A tag as requests carry it: `[{"Key":"k","Value":"v"}]` JSON in one parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RequestTag {
    pub key: String,
    pub value: String,
}

/// `Tag` parameter text for a tag map (`[]` for an empty map, as the SDKs send it).
pub fn tags_param(tags: &BTreeMap<String, String>) -> String {
    let list: Vec<RequestTag> = tags
        .iter()
        .map(|(k, v)| RequestTag {
            key: k.clone(),
            value: v.clone(),
        })
        .collect();
    serde_json::to_string(&list).expect("tags always serialize")
}

/// JSON string array parameter (`ResourceNames`, `TagKeys`).
pub fn string_list_param(items: &[String]) -> String {
    serde_json::to_string(items).expect("strings always serialize")
}

/// Booleans as Go/Java/terraform send them.
pub fn bool_param(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

// ---------------------------------------------------------------------------------------
// RAM

/// A RAM role. `GetRole` / `CreateRole` / `UpdateRole` fill `AssumeRolePolicyDocument`;
/// `ListRoles` items omit it and carry `Tags`; `ListEntitiesForPolicy` items carry `AttachDate`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Role {
    pub role_id: String,
    pub role_name: String,
    pub arn: String,
    pub description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assume_role_policy_document: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_session_duration: Option<i64>,
    pub create_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<RamTagList>,
    /// Newest API only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub is_service_linked_role: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_principal_name: Option<String>,
}

impl Role {
    pub fn tag_map(&self) -> BTreeMap<String, String> {
        self.tags
            .as_ref()
            .map(RamTagList::to_map)
            .unwrap_or_default()
    }
}

/// A RAM policy (list item, GetPolicy's `Policy`, ListPoliciesForRole's items).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Policy {
    pub policy_name: String,
    /// `System` / `Custom`.
    pub policy_type: String,
    pub description: String,
    pub default_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attachment_count: Option<i64>,
    pub create_date: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attach_date: Option<String>,
    /// Deprecated in GetPolicy's `Policy`; use `DefaultPolicyVersion.PolicyDocument`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_document: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<RamTagList>,
}

impl Policy {
    pub fn tag_map(&self) -> BTreeMap<String, String> {
        self.tags
            .as_ref()
            .map(RamTagList::to_map)
            .unwrap_or_default()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PolicyVersion {
    /// `v<N>`
    pub version_id: String,
    pub is_default_version: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy_document: Option<String>,
    pub create_date: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PolicyUser {
    pub user_id: String,
    pub user_name: String,
    pub display_name: String,
    pub attach_date: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PolicyGroup {
    pub group_name: String,
    pub comments: String,
    pub attach_date: String,
}

/// Answers that carry only `RequestId` (DeleteRole, Attach..., TagResources, ...).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RequestIdOnly {
    pub request_id: String,
}

/// GetRole / CreateRole / UpdateRole.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoleResponse {
    #[serde(default)]
    pub request_id: String,
    pub role: Role,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListRolesResponse {
    pub request_id: String,
    pub is_truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marker: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub roles: RoleList,
}

/// GetPolicy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct GetPolicyResponse {
    #[serde(default)]
    pub request_id: String,
    pub policy: Policy,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_policy_version: Option<PolicyVersion>,
}

/// CreatePolicy / UpdatePolicyDescription.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyResponse {
    #[serde(default)]
    pub request_id: String,
    pub policy: Policy,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListPoliciesResponse {
    pub request_id: String,
    pub is_truncated: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marker: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub policies: PolicyList,
}

/// CreatePolicyVersion / GetPolicyVersion.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyVersionResponse {
    #[serde(default)]
    pub request_id: String,
    pub policy_version: PolicyVersion,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListPolicyVersionsResponse {
    pub request_id: String,
    #[serde(deserialize_with = "null_default")]
    pub policy_versions: PolicyVersionList,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListPoliciesForRoleResponse {
    pub request_id: String,
    #[serde(deserialize_with = "null_default")]
    pub policies: PolicyList,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListEntitiesForPolicyResponse {
    pub request_id: String,
    #[serde(deserialize_with = "null_default")]
    pub users: UserList,
    #[serde(deserialize_with = "null_default")]
    pub groups: GroupList,
    #[serde(deserialize_with = "null_default")]
    pub roles: RoleList,
}

/// One (resource, tag) row of ListTagResources.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TagResource {
    /// `role` / `policy`.
    pub resource_type: String,
    pub resource_name: String,
    pub tag_key: String,
    pub tag_value: String,
}

/// `TagResources` is documented as a flat array; a `{"TagResource": [...]}` wrapper is
/// accepted too, in case the service wraps it like its other lists.
fn tag_resources<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<TagResource>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Shape {
        Flat(Vec<TagResource>),
        Wrapped {
            #[serde(rename = "TagResource", default)]
            tag_resource: Vec<TagResource>,
        },
    }
    Ok(match Option::<Shape>::deserialize(d)? {
        None => Vec::new(),
        Some(Shape::Flat(v)) => v,
        Some(Shape::Wrapped { tag_resource }) => tag_resource,
    })
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListTagResourcesResponse {
    pub request_id: String,
    /// Absent or empty on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    #[serde(deserialize_with = "tag_resources")]
    pub tag_resources: Vec<TagResource>,
}

// ---------------------------------------------------------------------------------------
// IMM

/// An IMM tag inside a Project (flat array, RAM field names).
pub type ImmTag = RamTag;

/// An IMM 2020-09-30 project. `ListProjects` items are full projects.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Project {
    pub project_name: String,
    pub description: String,
    pub service_role: String,
    pub template_id: String,
    pub project_max_dataset_count: i64,
    pub dataset_max_bind_count: i64,
    pub dataset_max_file_count: i64,
    pub dataset_max_entity_count: i64,
    pub dataset_max_relation_count: i64,
    pub dataset_max_total_file_size: i64,
    pub dataset_count: i64,
    pub file_count: i64,
    pub total_file_size: i64,
    pub engine_concurrency: i64,
    pub project_queries_per_second: i64,
    pub create_time: String,
    pub update_time: String,
    #[serde(deserialize_with = "null_default")]
    pub tags: Vec<ImmTag>,
}

impl Project {
    pub fn tag_map(&self) -> BTreeMap<String, String> {
        self.tags
            .iter()
            .map(|t| (t.tag_key.clone(), t.tag_value.clone()))
            .collect()
    }
}

/// CreateProject / GetProject / UpdateProject.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectResponse {
    #[serde(default)]
    pub request_id: String,
    pub project: Project,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListProjectsResponse {
    pub request_id: String,
    /// Absent or empty on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub projects: Vec<Project>,
}

// ---------------------------------------------------------------------------------------
// STS

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GetCallerIdentityResponse {
    pub request_id: String,
    pub account_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role_id: Option<String>,
    pub principal_id: String,
    pub identity_type: String,
    pub arn: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AssumedRoleUser {
    pub arn: String,
    pub assumed_role_id: String,
}

/// Temporary credentials. `Debug` hides the secret and the token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StsCredentials {
    pub access_key_id: String,
    pub access_key_secret: Secret,
    pub security_token: Secret,
    /// UTC `YYYY-MM-DDThh:mm:ssZ`.
    pub expiration: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AssumeRoleResponse {
    #[serde(default)]
    pub request_id: String,
    #[serde(default)]
    pub assumed_role_user: AssumedRoleUser,
    pub credentials: StsCredentials,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct OidcTokenInfo {
    pub issuer: String,
    pub subject: String,
    /// Comma-separated `aud`.
    pub client_ids: String,
    pub issuance_time: String,
    pub expiration_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verification_info: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AssumeRoleWithOidcResponse {
    #[serde(default)]
    pub request_id: String,
    #[serde(default)]
    pub assumed_role_user: AssumedRoleUser,
    pub credentials: StsCredentials,
    #[serde(rename = "OIDCTokenInfo", default)]
    pub oidc_token_info: OidcTokenInfo,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_identity: Option<String>,
}

// ---------------------------------------------------------------------------------------
// Errors

/// The error envelope. SDK parsers read `Code`/`code` etc.; the capitalised form is canonical.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    #[serde(rename = "RequestId", alias = "requestId", default)]
    pub request_id: String,
    #[serde(rename = "HostId", alias = "hostId", default)]
    pub host_id: Option<String>,
    #[serde(rename = "Code", alias = "code")]
    pub code: String,
    #[serde(rename = "Message", alias = "message", default)]
    pub message: String,
    #[serde(rename = "Recommend", alias = "recommend", default)]
    pub recommend: Option<String>,
    #[serde(
        rename = "AccessDeniedDetail",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub access_denied_detail: Option<super::error::AccessDeniedDetail>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ram_double_wrapper_accepts_every_empty_form() {
        for body in [
            r#"{"RequestId":"r","IsTruncated":false,"Roles":{"Role":[]}}"#,
            r#"{"RequestId":"r","IsTruncated":false,"Roles":{}}"#,
            r#"{"RequestId":"r","IsTruncated":false,"Roles":null}"#,
            r#"{"RequestId":"r","IsTruncated":false}"#,
            r#"{"RequestId":"r","IsTruncated":false,"Roles":{"Role":null}}"#,
        ] {
            let r: ListRolesResponse = serde_json::from_str(body).expect(body);
            assert!(r.roles.role.is_empty(), "{body}");
            assert!(!r.is_truncated);
        }
    }

    #[test]
    fn list_roles_reads_the_documented_shape() {
        let body = r#"{"RequestId":"x","IsTruncated":true,"Marker":"EXAMPLE",
         "Roles":{"Role":[{"RoleId":"901234567890","RoleName":"ECSAdmin","Arn":"acs:ram::1:role/ECSAdmin",
           "Description":"d","MaxSessionDuration":3600,"CreateDate":"2015-01-23T12:33:18Z",
           "UpdateDate":"2015-01-23T12:33:18Z","Tags":{"Tag":[{"TagKey":"owner","TagValue":"alice"}]}}]}}"#;
        let r: ListRolesResponse = serde_json::from_str(body).unwrap();
        assert!(r.is_truncated);
        assert_eq!(r.marker.as_deref(), Some("EXAMPLE"));
        let role = &r.roles.role[0];
        assert_eq!(role.role_name, "ECSAdmin");
        assert_eq!(role.max_session_duration, Some(3600));
        assert_eq!(
            role.tag_map().get("owner").map(String::as_str),
            Some("alice")
        );
        assert!(role.assume_role_policy_document.is_none());
    }

    #[test]
    fn get_policy_reads_default_version_document() {
        let body = r#"{"RequestId":"x","Policy":{"PolicyName":"OSS-Administrator","PolicyType":"Custom",
          "Description":"","DefaultVersion":"v1","AttachmentCount":0,"CreateDate":"c","UpdateDate":"u"},
          "DefaultPolicyVersion":{"VersionId":"v1","IsDefaultVersion":true,
          "PolicyDocument":"{\"Statement\":[],\"Version\":\"1\"}","CreateDate":"c"}}"#;
        let r: GetPolicyResponse = serde_json::from_str(body).unwrap();
        let v = r.default_policy_version.unwrap();
        assert!(v.is_default_version);
        assert_eq!(
            v.policy_document.as_deref(),
            Some(r#"{"Statement":[],"Version":"1"}"#)
        );
        assert_eq!(r.policy.attachment_count, Some(0));
    }

    #[test]
    fn list_entities_and_versions_and_tags() {
        let body = r#"{"RequestId":"x","Users":{"User":[{"UserId":"1","UserName":"u","DisplayName":"U","AttachDate":"a"}]},
          "Groups":{},"Roles":{"Role":[{"RoleId":"2","RoleName":"ECSAdmin","Arn":"a","Description":"","AttachDate":"d"}]}}"#;
        let r: ListEntitiesForPolicyResponse = serde_json::from_str(body).unwrap();
        assert_eq!(r.users.user.len(), 1);
        assert!(r.groups.group.is_empty());
        assert_eq!(r.roles.role[0].attach_date.as_deref(), Some("d"));

        let body = r#"{"RequestId":"x","PolicyVersions":{"PolicyVersion":[
            {"VersionId":"v1","IsDefaultVersion":false,"PolicyDocument":"{}","CreateDate":"c"},
            {"VersionId":"v2","IsDefaultVersion":true,"PolicyDocument":"{}","CreateDate":"c"}]}}"#;
        let r: ListPolicyVersionsResponse = serde_json::from_str(body).unwrap();
        assert_eq!(r.policy_versions.policy_version.len(), 2);

        for body in [
            r#"{"RequestId":"5C","NextToken":"GY","TagResources":[{"ResourceType":"role","ResourceName":"role1","TagKey":"t1","TagValue":"v1"}]}"#,
            r#"{"RequestId":"5C","NextToken":"GY","TagResources":{"TagResource":[{"ResourceType":"role","ResourceName":"role1","TagKey":"t1","TagValue":"v1"}]}}"#,
        ] {
            let r: ListTagResourcesResponse = serde_json::from_str(body).unwrap();
            assert_eq!(r.tag_resources[0].resource_name, "role1");
            assert_eq!(r.next_token.as_deref(), Some("GY"));
        }
    }

    #[test]
    fn imm_project_reads_the_documented_shape() {
        let body = r#"{"RequestId":"7F","Project":{"ProjectName":"test-project","Description":"immtest",
          "ServiceRole":"AliyunIMMDefaultRole","TemplateId":"","ProjectMaxDatasetCount":1000000000,
          "DatasetMaxBindCount":10,"DatasetMaxFileCount":100000000,"DatasetMaxEntityCount":10000000000,
          "DatasetMaxRelationCount":100000000000,"DatasetMaxTotalFileSize":90000000000000000,
          "DatasetCount":0,"FileCount":0,"TotalFileSize":0,"EngineConcurrency":100,
          "ProjectQueriesPerSecond":100,"CreateTime":"2021-06-29T14:50:13.011643661+08:00",
          "UpdateTime":"2021-06-29T14:50:13.011643661+08:00",
          "Tags":[{"TagKey":"TestKey","TagValue":"TestValue"}]}}"#;
        let r: ProjectResponse = serde_json::from_str(body).unwrap();
        assert_eq!(
            r.project.dataset_max_total_file_size,
            90_000_000_000_000_000
        );
        assert_eq!(r.project.tag_map()["TestKey"], "TestValue");
        let r: ListProjectsResponse =
            serde_json::from_str(r#"{"RequestId":"x","NextToken":""}"#).unwrap();
        assert!(r.projects.is_empty());
    }

    #[test]
    fn sts_answers_parse_and_hide_secrets_in_debug() {
        let body = r#"{"RequestId":"6894B13B","AssumedRoleUser":{"Arn":"acs:ram::1:role/adminrole/alice","AssumedRoleId":"344:alice"},
          "Credentials":{"AccessKeyId":"STS.L4aB","AccessKeySecret":"wyLTSmsy-secret","SecurityToken":"tok-secret","Expiration":"2015-04-09T11:52:19Z"}}"#;
        let r: AssumeRoleResponse = serde_json::from_str(body).unwrap();
        assert_eq!(r.credentials.access_key_secret.expose(), "wyLTSmsy-secret");
        let dbg = format!("{r:?}");
        assert!(
            !dbg.contains("wyLTSmsy-secret") && !dbg.contains("tok-secret"),
            "{dbg}"
        );

        let body = r#"{"RequestId":"x","Credentials":{"AccessKeyId":"STS.a","AccessKeySecret":"s","SecurityToken":"t","Expiration":"2030-01-01T00:00:00Z"},
          "OIDCTokenInfo":{"Issuer":"https://oidc","Subject":"sub","ClientIds":"a,b"}}"#;
        let r: AssumeRoleWithOidcResponse = serde_json::from_str(body).unwrap();
        assert_eq!(r.oidc_token_info.client_ids, "a,b");

        let body = r#"{"RequestId":"x","AccountId":"1968","UserId":"2169","PrincipalId":"2887","IdentityType":"RAMUser","Arn":"acs:ram::1968:user/admin"}"#;
        let r: GetCallerIdentityResponse = serde_json::from_str(body).unwrap();
        assert_eq!(r.account_id, "1968");
        assert!(r.role_id.is_none());
    }

    #[test]
    fn error_envelope_reads_both_key_cases() {
        let e: ErrorEnvelope = serde_json::from_str(
            r#"{"RequestId":"7463B73D","HostId":"ram.aliyuncs.com","Code":"EntityNotExist.Role","Message":"The role not exists: x.",
                "AccessDeniedDetail":{"AuthAction":"ram:GetRole","NoPermissionType":"ImplicitDeny"}}"#,
        )
        .unwrap();
        assert_eq!(e.code, "EntityNotExist.Role");
        assert_eq!(
            e.access_denied_detail
                .unwrap()
                .no_permission_type
                .as_deref(),
            Some("ImplicitDeny")
        );
        let e: ErrorEnvelope =
            serde_json::from_str(r#"{"requestId":"r","code":"c","message":"m"}"#).unwrap();
        assert_eq!((e.request_id.as_str(), e.code.as_str()), ("r", "c"));
    }

    #[test]
    fn request_params_follow_the_sdks() {
        let mut tags = BTreeMap::new();
        tags.insert("immctl-owner".to_string(), "default".to_string());
        assert_eq!(
            tags_param(&tags),
            r#"[{"Key":"immctl-owner","Value":"default"}]"#
        );
        assert_eq!(tags_param(&BTreeMap::new()), "[]");
        assert_eq!(
            string_list_param(&["r1".into(), "r2".into()]),
            r#"["r1","r2"]"#
        );
        assert_eq!((bool_param(true), bool_param(false)), ("true", "false"));
    }
}

// ---------------------------------------------------------------------------------------
// RAM: the caller's own policies (read by immctl's preflight)

/// A group a RAM user belongs to (ListGroupsForUser's items).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UserGroup {
    pub group_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_id: Option<String>,
    pub comments: String,
    pub join_date: String,
}

ram_list!(
    /// `Groups: {"Group": [...]}` of ListGroupsForUser.
    UserGroupList, "Group", UserGroup, group);

/// ListPoliciesForUser (same shape as ListPoliciesForRole).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListPoliciesForUserResponse {
    pub request_id: String,
    #[serde(deserialize_with = "null_default")]
    pub policies: PolicyList,
}

/// ListPoliciesForGroup (same shape as ListPoliciesForRole).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListPoliciesForGroupResponse {
    pub request_id: String,
    #[serde(deserialize_with = "null_default")]
    pub policies: PolicyList,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct ListGroupsForUserResponse {
    pub request_id: String,
    #[serde(deserialize_with = "null_default")]
    pub groups: UserGroupList,
}

#[cfg(test)]
mod caller_policy_tests {
    use super::*;

    #[test]
    fn user_and_group_lists_read_the_documented_shapes() {
        let r: ListPoliciesForUserResponse = serde_json::from_str(
            r#"{"RequestId":"r","Policies":{"Policy":[{"PolicyName":"AliyunIMMFullAccess",
            "PolicyType":"System","Description":"d","DefaultVersion":"v1",
            "AttachDate":"2026-01-01T00:00:00Z"}]}}"#,
        )
        .unwrap();
        assert_eq!(r.policies.policy[0].policy_name, "AliyunIMMFullAccess");
        assert_eq!(r.policies.policy[0].policy_type, "System");
        let g: ListGroupsForUserResponse = serde_json::from_str(
            r#"{"RequestId":"r","Groups":{"Group":[{"GroupName":"dev","GroupId":"g-1",
            "Comments":"","JoinDate":"2026-01-01T00:00:00Z"}]}}"#,
        )
        .unwrap();
        assert_eq!(g.groups.group[0].group_name, "dev");
        let empty: ListGroupsForUserResponse =
            serde_json::from_str(r#"{"RequestId":"r","Groups":{}}"#).unwrap();
        assert!(empty.groups.group.is_empty());
        let p: ListPoliciesForGroupResponse =
            serde_json::from_str(r#"{"RequestId":"r","Policies":null}"#).unwrap();
        assert!(p.policies.policy.is_empty());
    }
}
