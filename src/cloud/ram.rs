//! Typed RAM 2015-05-01 operations and pagination helpers (`Marker`/`IsTruncated`,
//! `NextToken`). Parameters are written the way the SDKs write them (see [`super::wire`]).

use std::collections::BTreeMap;

use super::client::{Client, Params, Product};
use super::error::Result;
use super::pages::Pages;
use super::wire::*;

/// `CreateRole` parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateRoleRequest {
    pub role_name: String,
    /// JSON text.
    pub assume_role_policy_document: String,
    pub description: Option<String>,
    pub max_session_duration: Option<u32>,
    /// Sent as `Tag=[{"Key","Value"}]` when not empty.
    pub tags: BTreeMap<String, String>,
}

/// `UpdateRole` parameters: only the fields given change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateRoleRequest {
    pub role_name: String,
    pub new_assume_role_policy_document: Option<String>,
    pub new_description: Option<String>,
    pub new_max_session_duration: Option<u32>,
}

/// `CreatePolicy` parameters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreatePolicyRequest {
    pub policy_name: String,
    pub policy_document: String,
    pub description: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// `RotateStrategy` of CreatePolicyVersion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RotateStrategy {
    /// Fail with `LimitExceeded.Policy.Version` at 5 versions.
    #[default]
    None,
    DeleteOldestNonDefaultVersionWhenLimitExceeded,
}

impl RotateStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            RotateStrategy::None => "None",
            RotateStrategy::DeleteOldestNonDefaultVersionWhenLimitExceeded => {
                "DeleteOldestNonDefaultVersionWhenLimitExceeded"
            }
        }
    }
}

/// `ResourceType` of the tagging actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RamResourceType {
    Role,
    Policy,
}

impl RamResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            RamResourceType::Role => "role",
            RamResourceType::Policy => "policy",
        }
    }
}

/// `ListRoles` / `ListPolicies` page request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListPage {
    pub marker: Option<String>,
    /// 1..=1000 (service default 100).
    pub max_items: Option<u32>,
    /// Tag filter.
    pub tags: BTreeMap<String, String>,
}

fn params<const N: usize>(pairs: [(&str, &str); N]) -> Params {
    pairs
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn opt(p: &mut Params, k: &str, v: Option<impl ToString>) {
    if let Some(v) = v {
        p.insert(k.to_string(), v.to_string());
    }
}

fn page_params(page: &ListPage) -> Params {
    let mut p = Params::new();
    opt(&mut p, "Marker", page.marker.as_ref());
    opt(&mut p, "MaxItems", page.max_items);
    if !page.tags.is_empty() {
        p.insert("Tag".into(), tags_param(&page.tags));
    }
    p
}

impl Client {
    async fn ram<T: serde::de::DeserializeOwned>(
        &self,
        action: &'static str,
        p: Params,
    ) -> Result<T> {
        self.call(Product::Ram, action, None, p).await
    }

    // --- roles ---

    pub async fn get_role(&self, role_name: &str) -> Result<RoleResponse> {
        self.ram("GetRole", params([("RoleName", role_name)])).await
    }

    pub async fn list_roles(&self, page: &ListPage) -> Result<ListRolesResponse> {
        self.ram("ListRoles", page_params(page)).await
    }

    /// Every role (following `Marker` while `IsTruncated`), `max_items` per page.
    pub async fn list_roles_all(&self, max_items: u32) -> Result<Vec<Role>> {
        let mut out = Vec::new();
        let mut pages = Pages::new("ListRoles");
        let mut page = ListPage {
            max_items: Some(max_items),
            ..ListPage::default()
        };
        loop {
            let r = self.list_roles(&page).await?;
            out.extend(r.roles.role);
            match pages.next_marker(r.is_truncated, r.marker)? {
                Some(m) => page.marker = Some(m),
                None => return Ok(out),
            }
        }
    }

    pub async fn create_role(&self, req: &CreateRoleRequest) -> Result<RoleResponse> {
        let mut p = params([
            ("RoleName", req.role_name.as_str()),
            (
                "AssumeRolePolicyDocument",
                req.assume_role_policy_document.as_str(),
            ),
        ]);
        opt(&mut p, "Description", req.description.as_ref());
        opt(&mut p, "MaxSessionDuration", req.max_session_duration);
        if !req.tags.is_empty() {
            p.insert("Tag".into(), tags_param(&req.tags));
        }
        self.ram("CreateRole", p).await
    }

    pub async fn update_role(&self, req: &UpdateRoleRequest) -> Result<RoleResponse> {
        let mut p = params([("RoleName", req.role_name.as_str())]);
        opt(
            &mut p,
            "NewAssumeRolePolicyDocument",
            req.new_assume_role_policy_document.as_ref(),
        );
        opt(&mut p, "NewDescription", req.new_description.as_ref());
        opt(
            &mut p,
            "NewMaxSessionDuration",
            req.new_max_session_duration,
        );
        self.ram("UpdateRole", p).await
    }

    pub async fn delete_role(&self, role_name: &str) -> Result<RequestIdOnly> {
        self.ram("DeleteRole", params([("RoleName", role_name)]))
            .await
    }

    // --- policies ---

    /// `policy_type`: `Custom` / `System` (always sent).
    pub async fn get_policy(
        &self,
        policy_name: &str,
        policy_type: &str,
    ) -> Result<GetPolicyResponse> {
        self.ram(
            "GetPolicy",
            params([("PolicyName", policy_name), ("PolicyType", policy_type)]),
        )
        .await
    }

    /// `policy_type`: `None` lists custom and system policies.
    pub async fn list_policies(
        &self,
        page: &ListPage,
        policy_type: Option<&str>,
    ) -> Result<ListPoliciesResponse> {
        let mut p = page_params(page);
        opt(&mut p, "PolicyType", policy_type);
        self.ram("ListPolicies", p).await
    }

    /// Every policy of `policy_type` (`None`: both), `max_items` per page.
    pub async fn list_policies_all(
        &self,
        policy_type: Option<&str>,
        max_items: u32,
    ) -> Result<Vec<Policy>> {
        let mut out = Vec::new();
        let mut pages = Pages::new("ListPolicies");
        let mut page = ListPage {
            max_items: Some(max_items),
            ..ListPage::default()
        };
        loop {
            let r = self.list_policies(&page, policy_type).await?;
            out.extend(r.policies.policy);
            match pages.next_marker(r.is_truncated, r.marker)? {
                Some(m) => page.marker = Some(m),
                None => return Ok(out),
            }
        }
    }

    pub async fn create_policy(&self, req: &CreatePolicyRequest) -> Result<PolicyResponse> {
        let mut p = params([
            ("PolicyName", req.policy_name.as_str()),
            ("PolicyDocument", req.policy_document.as_str()),
        ]);
        opt(&mut p, "Description", req.description.as_ref());
        if !req.tags.is_empty() {
            p.insert("Tag".into(), tags_param(&req.tags));
        }
        self.ram("CreatePolicy", p).await
    }

    pub async fn update_policy_description(
        &self,
        policy_name: &str,
        new_description: &str,
    ) -> Result<PolicyResponse> {
        self.ram(
            "UpdatePolicyDescription",
            params([
                ("PolicyName", policy_name),
                ("NewDescription", new_description),
            ]),
        )
        .await
    }

    /// `cascading_delete`: also delete non-default versions.
    pub async fn delete_policy(
        &self,
        policy_name: &str,
        cascading_delete: bool,
    ) -> Result<RequestIdOnly> {
        let mut p = params([("PolicyName", policy_name)]);
        if cascading_delete {
            p.insert("CascadingDelete".into(), bool_param(true).into());
        }
        self.ram("DeletePolicy", p).await
    }

    // --- policy versions ---

    pub async fn create_policy_version(
        &self,
        policy_name: &str,
        policy_document: &str,
        set_as_default: bool,
        rotate: RotateStrategy,
    ) -> Result<PolicyVersionResponse> {
        self.ram(
            "CreatePolicyVersion",
            params([
                ("PolicyName", policy_name),
                ("PolicyDocument", policy_document),
                ("SetAsDefault", bool_param(set_as_default)),
                ("RotateStrategy", rotate.as_str()),
            ]),
        )
        .await
    }

    pub async fn delete_policy_version(
        &self,
        policy_name: &str,
        version_id: &str,
    ) -> Result<RequestIdOnly> {
        self.ram(
            "DeletePolicyVersion",
            params([("PolicyName", policy_name), ("VersionId", version_id)]),
        )
        .await
    }

    pub async fn list_policy_versions(
        &self,
        policy_name: &str,
        policy_type: &str,
    ) -> Result<ListPolicyVersionsResponse> {
        self.ram(
            "ListPolicyVersions",
            params([("PolicyName", policy_name), ("PolicyType", policy_type)]),
        )
        .await
    }

    pub async fn get_policy_version(
        &self,
        policy_name: &str,
        policy_type: &str,
        version_id: &str,
    ) -> Result<PolicyVersionResponse> {
        self.ram(
            "GetPolicyVersion",
            params([
                ("PolicyName", policy_name),
                ("PolicyType", policy_type),
                ("VersionId", version_id),
            ]),
        )
        .await
    }

    pub async fn set_default_policy_version(
        &self,
        policy_name: &str,
        version_id: &str,
    ) -> Result<RequestIdOnly> {
        self.ram(
            "SetDefaultPolicyVersion",
            params([("PolicyName", policy_name), ("VersionId", version_id)]),
        )
        .await
    }

    // --- attachments ---

    pub async fn attach_policy_to_role(
        &self,
        policy_type: &str,
        policy_name: &str,
        role_name: &str,
    ) -> Result<RequestIdOnly> {
        self.ram(
            "AttachPolicyToRole",
            params([
                ("PolicyType", policy_type),
                ("PolicyName", policy_name),
                ("RoleName", role_name),
            ]),
        )
        .await
    }

    pub async fn detach_policy_from_role(
        &self,
        policy_type: &str,
        policy_name: &str,
        role_name: &str,
    ) -> Result<RequestIdOnly> {
        self.ram(
            "DetachPolicyFromRole",
            params([
                ("PolicyType", policy_type),
                ("PolicyName", policy_name),
                ("RoleName", role_name),
            ]),
        )
        .await
    }

    pub async fn list_policies_for_role(
        &self,
        role_name: &str,
    ) -> Result<ListPoliciesForRoleResponse> {
        self.ram("ListPoliciesForRole", params([("RoleName", role_name)]))
            .await
    }

    pub async fn list_entities_for_policy(
        &self,
        policy_name: &str,
        policy_type: &str,
    ) -> Result<ListEntitiesForPolicyResponse> {
        self.ram(
            "ListEntitiesForPolicy",
            params([("PolicyName", policy_name), ("PolicyType", policy_type)]),
        )
        .await
    }

    // --- tags ---

    /// Upserts `tags` on every named resource (≤50 names, ≤20 tags per call).
    pub async fn tag_resources(
        &self,
        resource_type: RamResourceType,
        resource_names: &[String],
        tags: &BTreeMap<String, String>,
    ) -> Result<RequestIdOnly> {
        let mut p = params([("ResourceType", resource_type.as_str())]);
        p.insert("ResourceNames".into(), string_list_param(resource_names));
        p.insert("Tag".into(), tags_param(tags));
        self.ram("TagResources", p).await
    }

    /// Removes `tag_keys` (or every tag with `all`).
    pub async fn untag_resources(
        &self,
        resource_type: RamResourceType,
        resource_names: &[String],
        tag_keys: &[String],
        all: bool,
    ) -> Result<RequestIdOnly> {
        let mut p = params([("ResourceType", resource_type.as_str())]);
        p.insert("ResourceNames".into(), string_list_param(resource_names));
        if !tag_keys.is_empty() {
            p.insert("TagKeys".into(), string_list_param(tag_keys));
        }
        if all {
            p.insert("All".into(), bool_param(true).into());
        }
        self.ram("UntagResources", p).await
    }

    /// One page; `resource_names` ≤50, `page_size` 1..=100.
    pub async fn list_tag_resources(
        &self,
        resource_type: RamResourceType,
        resource_names: &[String],
        next_token: Option<&str>,
        page_size: Option<u32>,
    ) -> Result<ListTagResourcesResponse> {
        let mut p = params([("ResourceType", resource_type.as_str())]);
        if !resource_names.is_empty() {
            p.insert("ResourceNames".into(), string_list_param(resource_names));
        }
        opt(&mut p, "NextToken", next_token);
        opt(&mut p, "PageSize", page_size);
        self.ram("ListTagResources", p).await
    }

    /// Every (resource, tag) row, following `NextToken` until it is absent or empty
    /// (`resource_names` ≤50 per call).
    pub async fn list_tag_resources_all(
        &self,
        resource_type: RamResourceType,
        resource_names: &[String],
    ) -> Result<Vec<TagResource>> {
        let mut out = Vec::new();
        let mut pages = Pages::new("ListTagResources");
        let mut token: Option<String> = None;
        loop {
            let r = self
                .list_tag_resources(resource_type, resource_names, token.as_deref(), Some(100))
                .await?;
            out.extend(r.tag_resources);
            match pages.next_token(r.next_token)? {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }
}

// --- the caller's own policies (preflight) ---

impl Client {
    /// Policies attached to a RAM user (not those of its groups).
    pub async fn list_policies_for_user(
        &self,
        user_name: &str,
    ) -> Result<ListPoliciesForUserResponse> {
        self.ram("ListPoliciesForUser", params([("UserName", user_name)]))
            .await
    }

    /// The groups a RAM user belongs to.
    pub async fn list_groups_for_user(&self, user_name: &str) -> Result<ListGroupsForUserResponse> {
        self.ram("ListGroupsForUser", params([("UserName", user_name)]))
            .await
    }

    /// Policies attached to a RAM user group.
    pub async fn list_policies_for_group(
        &self,
        group_name: &str,
    ) -> Result<ListPoliciesForGroupResponse> {
        self.ram("ListPoliciesForGroup", params([("GroupName", group_name)]))
            .await
    }
}
