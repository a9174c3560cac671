//! RAM 2015-05-01: roles, custom and System policies, policy versions, role attachments and
//! tags, with the service's validation order, limits, conflicts and error codes
//! (reference/alibaba-api.md §3 and §7 items 8-18). Codes the reference marks UNCONFIRMED
//! are marked so here too.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Value, json};

use super::engine::{Ctx, Engine};
use super::state::{Attachment, DocText, Policy, PolicyVersion, Role, version_number};
use super::system;
use super::wire::{ApiError, ApiResult, TagParam, ram_time};

/// Roles per account (current limits page).
const MAX_ROLES: usize = 1000;
/// Custom policies per account.
const MAX_POLICIES: usize = 1500;
/// Versions per custom policy, the default included.
pub(super) const MAX_VERSIONS: usize = 5;
/// A role's `MaxSessionDuration`, seconds (CreateRole / UpdateRole accept these bounds).
pub(super) const SESSION_SECONDS: std::ops::RangeInclusive<u32> = 3600..=43200;
const MAX_CUSTOM_PER_ROLE: usize = 10;
const MAX_SYSTEM_PER_ROLE: usize = 20;
/// Policy document size (characters).
const MAX_DOCUMENT: usize = 6144;
/// Trust policy size: UNCONFIRMED (no source gives the number).
const MAX_TRUST_DOCUMENT: usize = 4096;
/// Tags per role/policy: UNCONFIRMED (RAM users allow 20).
const MAX_TAGS_PER_RESOURCE: usize = 20;

pub fn dispatch(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    match ctx.action.as_str() {
        "CreateRole" => create_role(e, ctx),
        "GetRole" => get_role(e, ctx),
        "UpdateRole" => update_role(e, ctx),
        "DeleteRole" => delete_role(e, ctx),
        "ListRoles" => list_roles(e, ctx),
        "CreatePolicy" => create_policy(e, ctx),
        "GetPolicy" => get_policy(e, ctx),
        "ListPolicies" => list_policies(e, ctx),
        "UpdatePolicyDescription" => update_policy_description(e, ctx),
        "DeletePolicy" => delete_policy(e, ctx),
        "CreatePolicyVersion" => create_policy_version(e, ctx),
        "GetPolicyVersion" => get_policy_version(e, ctx),
        "ListPolicyVersions" => list_policy_versions(e, ctx),
        "SetDefaultPolicyVersion" => set_default_policy_version(e, ctx),
        "DeletePolicyVersion" => delete_policy_version(e, ctx),
        "AttachPolicyToRole" => attach(e, ctx),
        "DetachPolicyFromRole" => detach(e, ctx),
        "ListPoliciesForRole" => list_policies_for_role(e, ctx),
        "ListEntitiesForPolicy" => list_entities_for_policy(e, ctx),
        "TagResources" => tag_resources(e, ctx),
        "UntagResources" => untag_resources(e, ctx),
        "ListTagResources" => list_tag_resources(e, ctx),
        "ListPoliciesForUser" => list_policies_for_user(e, ctx),
        "ListGroupsForUser" => list_groups_for_user(e, ctx),
        "ListPoliciesForGroup" => list_policies_for_group(e, ctx),
        _ => Err(unknown_action()),
    }
}

/// Unknown action for a known version (reference §7.1; the gateway's 404 variant is
/// UNCONFIRMED).
pub fn unknown_action() -> ApiError {
    ApiError::bad(
        "InvalidParameter",
        "Specified parameter Action or Version is not valid.",
    )
}

// ---------------------------------------------------------------------- validation

fn role_name<'a>(ctx: &'a Ctx<'_>, key: &str) -> ApiResult<&'a str> {
    let name = ctx.params.required(key)?;
    validate_name(
        name,
        64,
        |c| c.is_ascii_alphanumeric() || c == '.' || c == '-',
        "RoleName",
    )?;
    Ok(name)
}

fn policy_name<'a>(ctx: &'a Ctx<'_>) -> ApiResult<&'a str> {
    let name = ctx.params.required("PolicyName")?;
    validate_name(
        name,
        128,
        |c| c.is_ascii_alphanumeric() || c == '-',
        "PolicyName",
    )?;
    Ok(name)
}

fn validate_name(name: &str, max: usize, ok: impl Fn(char) -> bool, what: &str) -> ApiResult<()> {
    if name.chars().count() > max {
        return Err(ApiError::bad(
            format!("InvalidParameter.{what}.Length"),
            format!("The parameter {what} is beyond the length limit of {max}."),
        ));
    }
    if !name.chars().all(ok) {
        return Err(ApiError::bad(
            format!("InvalidParameter.{what}.InvalidChars"),
            format!("The parameter {what} contains invalid chars."),
        ));
    }
    Ok(())
}

fn description(ctx: &Ctx<'_>, key: &str) -> ApiResult<Option<String>> {
    match ctx.params.get(key) {
        None => Ok(None),
        Some(d) if d.chars().count() > 1024 => Err(ApiError::bad(
            "InvalidParameter.Description.Length",
            "The parameter Description is beyond the length limit of 1024.",
        )),
        Some(d) => Ok(Some(d.to_string())),
    }
}

fn policy_type<'a>(ctx: &'a Ctx<'_>, required: bool) -> ApiResult<Option<&'a str>> {
    match ctx.params.non_empty("PolicyType") {
        None if required => Err(ApiError::bad(
            "MissingPolicyType",
            "PolicyType is mandatory for this action.",
        )),
        None => Ok(None),
        Some(t @ ("System" | "Custom")) => Ok(Some(t)),
        Some(_) => Err(ApiError::bad(
            "InvalidParameter.PolicyType",
            "The parameter PolicyType must be System or Custom.",
        )),
    }
}

fn version_id<'a>(ctx: &'a Ctx<'_>) -> ApiResult<&'a str> {
    let v = ctx.params.required("VersionId")?;
    if version_number(v).is_none() {
        return Err(ApiError::bad(
            "InvalidParameter.VersionId.Format",
            "The parameter VersionId is not in the form v<N>.",
        ));
    }
    Ok(v)
}

/// Which kind of document is being checked.
#[derive(Clone, Copy, PartialEq, Eq)]
enum DocKind {
    Permission,
    Trust,
}

fn malformed(why: &str) -> ApiError {
    ApiError::bad(
        "MalformedPolicyDocument",
        format!("The policy document is malformed: {why}"),
    )
}

/// Length, JSON, `Version: "1"`, a non-empty `Statement`, and per statement an `Effect`, an
/// action part, and a resource part (permission policies) or a `Principal` (trust policies).
fn validate_document(text: &str, kind: DocKind, length_code: &str, max: usize) -> ApiResult<()> {
    if text.chars().count() > max {
        return Err(ApiError::bad(
            length_code,
            format!("The policy document is beyond the length limit of {max}."),
        ));
    }
    let v: Value = serde_json::from_str(text).map_err(|_| malformed("not valid JSON"))?;
    let obj = v
        .as_object()
        .ok_or_else(|| malformed("not a JSON object"))?;
    if obj.get("Version").and_then(Value::as_str) != Some("1") {
        return Err(malformed("Version must be \"1\""));
    }
    let stmts: Vec<&Value> = match obj.get("Statement") {
        Some(Value::Array(a)) if !a.is_empty() => a.iter().collect(),
        Some(o @ Value::Object(_)) => vec![o],
        _ => return Err(malformed("Statement must be a non-empty list")),
    };
    let is_strings = |v: &Value| match v {
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty() && a.iter().all(|x| x.is_string()),
        _ => false,
    };
    for s in stmts {
        let s = s
            .as_object()
            .ok_or_else(|| malformed("a statement is not an object"))?;
        match s.get("Effect").and_then(Value::as_str) {
            Some("Allow") | Some("Deny") => {}
            _ => return Err(malformed("Effect must be Allow or Deny")),
        }
        let action = s.get("Action").or_else(|| s.get("NotAction"));
        if !action.is_some_and(is_strings) {
            return Err(malformed("a statement needs Action or NotAction"));
        }
        match kind {
            DocKind::Permission => {
                let res = s.get("Resource").or_else(|| s.get("NotResource"));
                if !res.is_some_and(is_strings) {
                    return Err(malformed("a statement needs Resource or NotResource"));
                }
            }
            DocKind::Trust => {
                if !s
                    .get("Principal")
                    .is_some_and(|p| p.is_object() || p == "*")
                {
                    return Err(malformed("a trust statement needs Principal"));
                }
            }
        }
        if let Some(c) = s.get("Condition")
            && !c.is_object()
        {
            return Err(malformed("Condition must be an object"));
        }
    }
    Ok(())
}

fn tags_param(ctx: &Ctx<'_>, key: &str) -> ApiResult<Option<Vec<TagParam>>> {
    let tags: Option<Vec<TagParam>> = ctx.params.json(key, "InvalidParameter.Tag")?;
    if let Some(tags) = &tags {
        if tags.len() > 20 {
            return Err(ApiError::bad(
                "InvalidParameter.Tag.Size",
                "The number of tags in one call cannot exceed 20.",
            ));
        }
        for t in tags {
            check_tag_key(&t.key)?;
            if t.value.chars().count() > 256 {
                return Err(ApiError::bad(
                    "InvalidParameter.Tag.Value",
                    "The tag value is beyond the length limit of 256.",
                ));
            }
        }
    }
    Ok(tags)
}

fn check_tag_key(key: &str) -> ApiResult<()> {
    let lower = key.to_ascii_lowercase();
    if key.is_empty()
        || key.chars().count() > 128
        || lower.starts_with("aliyun")
        || lower.starts_with("acs:")
    {
        return Err(ApiError::bad(
            "InvalidParameter.Tag.Key",
            format!("The tag key is not valid: {key:.140}"),
        ));
    }
    Ok(())
}

fn tags_json(tags: &BTreeMap<String, String>) -> Value {
    json!({"Tag": tags.iter().map(|(k, v)| json!({"TagKey": k, "TagValue": v})).collect::<Vec<_>>()})
}

fn matches_tags(have: &BTreeMap<String, String>, want: &Option<Vec<TagParam>>) -> bool {
    want.as_ref()
        .is_none_or(|w| w.iter().all(|t| have.get(&t.key) == Some(&t.value)))
}

fn new_numeric_id() -> String {
    format!("3{:015}", rand::random::<u64>() % 1_000_000_000_000_000)
}

fn role_not_found(name: &str) -> ApiError {
    ApiError::new(
        404,
        "EntityNotExist.Role",
        format!("The role not exists: {name}."),
    )
}

fn policy_not_found(name: &str) -> ApiError {
    ApiError::new(
        404,
        "EntityNotExist.Policy",
        format!("The policy not exists: {name}."),
    )
}

fn version_not_found(name: &str, v: &str) -> ApiError {
    ApiError::new(
        404,
        "EntityNotExist.Policy.Version",
        format!("The policy version not exists: {name}/{v}."),
    )
}

/// A role visible to reads (outside the consistency delay).
fn visible_role<'a>(e: &'a Engine, ctx: &Ctx<'_>, name: &str) -> ApiResult<&'a Role> {
    match e.state.roles.get(name) {
        Some(r) if e.visible(&format!("role/{name}"), ctx.now) => Ok(r),
        _ => Err(role_not_found(name)),
    }
}

fn visible_policy<'a>(e: &'a Engine, ctx: &Ctx<'_>, name: &str) -> ApiResult<&'a Policy> {
    match e.state.policies.get(name) {
        Some(p) if e.visible(&format!("policy/{name}"), ctx.now) => Ok(p),
        _ => Err(policy_not_found(name)),
    }
}

fn role_json(e: &Engine, name: &str, r: &Role, with_document: bool) -> Value {
    let mut v = json!({
        "RoleId": r.role_id,
        "RoleName": name,
        "Arn": e.role_arn(name),
        "Description": r.description,
        "MaxSessionDuration": r.max_session_duration,
        "CreateDate": r.create_date,
        "UpdateDate": r.update_date,
    });
    if with_document {
        v["AssumeRolePolicyDocument"] = json!(r.assume_role_policy_document.0);
    }
    v
}

fn attachment_count(e: &Engine, policy_type: &str, name: &str) -> usize {
    let hit = |a: &Attachment| a.policy_type == policy_type && a.name == name;
    e.state
        .roles
        .values()
        .map(|r| r.policies.iter().filter(|a| hit(a)).count())
        .sum::<usize>()
        + e.state
            .users
            .values()
            .map(|u| u.policies.iter().filter(|a| hit(a)).count())
            .sum::<usize>()
}

fn custom_policy_json(e: &Engine, name: &str, p: &Policy) -> Value {
    json!({
        "PolicyName": name,
        "PolicyType": "Custom",
        "Description": p.description,
        "DefaultVersion": p.default_version,
        "AttachmentCount": attachment_count(e, "Custom", name),
        "CreateDate": p.create_date,
        "UpdateDate": p.update_date,
    })
}

fn system_policy_json(e: &Engine, name: &str, p: &super::state::SystemPolicy) -> Value {
    json!({
        "PolicyName": name,
        "PolicyType": "System",
        "Description": p.description,
        "DefaultVersion": p.default_version,
        "AttachmentCount": attachment_count(e, "System", name),
        "CreateDate": p.create_date,
        "UpdateDate": p.create_date,
    })
}

fn system_policy<'a>(e: &'a Engine, name: &str) -> Option<&'a super::state::SystemPolicy> {
    system::builtin()
        .get(name)
        .or_else(|| e.state.system_policies.get(name))
}

fn version_json(v: &PolicyVersion, default: &str) -> Value {
    json!({
        "VersionId": v.id,
        "IsDefaultVersion": v.id == default,
        "PolicyDocument": v.document.0,
        "CreateDate": v.create_date,
    })
}

fn max_items(ctx: &Ctx<'_>) -> ApiResult<usize> {
    // UNCONFIRMED code for an out-of-range MaxItems.
    let n = ctx
        .params
        .int("MaxItems", "InvalidParameter.MaxItems")?
        .unwrap_or(100);
    if !(1..=1000).contains(&n) {
        return Err(ApiError::bad(
            "InvalidParameter.MaxItems",
            "The parameter MaxItems must be between 1 and 1000.",
        ));
    }
    Ok(n as usize)
}

fn decode_marker(ctx: &Ctx<'_>, key: &str) -> ApiResult<Option<String>> {
    match ctx.params.non_empty(key) {
        None => Ok(None),
        Some(m) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(m)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .map(Some)
            // UNCONFIRMED code for a marker the service did not issue.
            .ok_or_else(|| {
                ApiError::bad(
                    format!("InvalidParameter.{key}"),
                    format!("The parameter {key} is not valid."),
                )
            }),
    }
}

fn encode_marker(s: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s)
}

/// Page over (key, item) pairs sorted by key: `IsTruncated` always, `Marker` when truncated.
fn page(items: Vec<(String, Value)>, after: Option<String>, max: usize) -> (Vec<Value>, Value) {
    let rest: Vec<(String, Value)> = items
        .into_iter()
        .filter(|(k, _)| after.as_ref().is_none_or(|a| k > a))
        .collect();
    let truncated = rest.len() > max;
    let taken: Vec<(String, Value)> = rest.into_iter().take(max).collect();
    let mut meta = json!({"IsTruncated": truncated});
    if truncated && let Some((k, _)) = taken.last() {
        meta["Marker"] = json!(encode_marker(k));
    }
    (taken.into_iter().map(|(_, v)| v).collect(), meta)
}

// ---------------------------------------------------------------------- roles

fn create_role(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let name = role_name(ctx, "RoleName")?;
    let doc = ctx.params.required("AssumeRolePolicyDocument")?;
    validate_document(
        doc,
        DocKind::Trust,
        "InvalidParameter.AssumeRolePolicyDocument.Length",
        MAX_TRUST_DOCUMENT,
    )?;
    let desc = description(ctx, "Description")?.unwrap_or_default();
    let max_session =
        session_duration(ctx, "MaxSessionDuration")?.unwrap_or(*SESSION_SECONDS.start());
    let tags = tags_param(ctx, "Tag")?;
    e.authorize(ctx, "ram:CreateRole", &e.ram_role_resource(name))?;
    if e.state.roles.contains_key(name) {
        return Err(ApiError::new(
            409,
            "EntityAlreadyExists.Role",
            format!("The role already exists: {name}."),
        ));
    }
    if e.state.roles.len() >= MAX_ROLES {
        return Err(ApiError::new(
            409,
            "LimitExceeded.Role",
            "The count of roles beyond the current limits.",
        ));
    }
    let now = ram_time(ctx.now);
    let role = Role {
        role_id: new_numeric_id(),
        description: desc,
        assume_role_policy_document: DocText(doc.to_string()),
        max_session_duration: max_session,
        create_date: now.clone(),
        update_date: now,
        tags: tags
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t.key, t.value))
            .collect(),
        policies: Vec::new(),
    };
    let mut body = role_json(e, name, &role, true);
    body.as_object_mut().map(|o| o.remove("UpdateDate"));
    e.state.roles.insert(name.to_string(), role);
    e.created(format!("role/{name}"), ctx.now);
    e.dirty = true;
    Ok(json!({"Role": body}))
}

fn session_duration(ctx: &Ctx<'_>, key: &str) -> ApiResult<Option<u32>> {
    // UNCONFIRMED code for an out-of-range MaxSessionDuration.
    let code = format!("InvalidParameter.{key}");
    match ctx.params.int(key, &code)? {
        None => Ok(None),
        Some(n) if u32::try_from(n).is_ok_and(|n| SESSION_SECONDS.contains(&n)) => {
            Ok(Some(n as u32))
        }
        Some(_) => Err(ApiError::bad(
            code,
            format!(
                "The parameter {key} must be between {} and {}.",
                SESSION_SECONDS.start(),
                SESSION_SECONDS.end()
            ),
        )),
    }
}

fn get_role(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let name = role_name(ctx, "RoleName")?;
    e.authorize(ctx, "ram:GetRole", &e.ram_role_resource(name))?;
    let r = visible_role(e, ctx, name)?;
    Ok(json!({"Role": role_json(e, name, r, true)}))
}

fn update_role(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let name = role_name(ctx, "RoleName")?;
    let doc = ctx.params.non_empty("NewAssumeRolePolicyDocument");
    if let Some(doc) = doc {
        validate_document(
            doc,
            DocKind::Trust,
            "InvalidParameter.NewAssumeRolePolicyDocument.Length",
            MAX_TRUST_DOCUMENT,
        )?;
    }
    let desc = description(ctx, "NewDescription")?;
    let max_session = session_duration(ctx, "NewMaxSessionDuration")?;
    e.authorize(ctx, "ram:UpdateRole", &e.ram_role_resource(name))?;
    visible_role(e, ctx, name)?;
    let now = ram_time(ctx.now);
    let role = e
        .state
        .roles
        .get_mut(name)
        .ok_or_else(|| role_not_found(name))?;
    if let Some(doc) = doc {
        role.assume_role_policy_document = DocText(doc.to_string());
    }
    if let Some(d) = desc {
        role.description = d;
    }
    if let Some(m) = max_session {
        role.max_session_duration = m;
    }
    role.update_date = now;
    let role = role.clone();
    e.dirty = true;
    Ok(json!({"Role": role_json(e, name, &role, true)}))
}

fn delete_role(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let name = role_name(ctx, "RoleName")?;
    e.authorize(ctx, "ram:DeleteRole", &e.ram_role_resource(name))?;
    let role = e
        .state
        .roles
        .get(name)
        .ok_or_else(|| role_not_found(name))?;
    if !role.policies.is_empty() {
        return Err(ApiError::new(
            409,
            "DeleteConflict.Role.Policy",
            "The role CAN NOT has any attached policy while deleting the role.",
        ));
    }
    e.state.roles.remove(name);
    e.visible_at.remove(&format!("role/{name}"));
    e.dirty = true;
    Ok(json!({}))
}

fn list_roles(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let max = max_items(ctx)?;
    let marker = decode_marker(ctx, "Marker")?;
    let filter = tags_param(ctx, "Tag")?;
    e.authorize(ctx, "ram:ListRoles", &e.ram_role_resource("*"))?;
    let items: Vec<(String, Value)> = e
        .state
        .roles
        .iter()
        .filter(|(n, r)| e.visible(&format!("role/{n}"), ctx.now) && matches_tags(&r.tags, &filter))
        .map(|(n, r)| {
            let mut v = role_json(e, n, r, false);
            v["Tags"] = tags_json(&r.tags);
            (n.clone(), v)
        })
        .collect();
    let (roles, mut meta) = page(items, marker, max);
    meta["Roles"] = json!({"Role": roles});
    Ok(meta)
}

// ---------------------------------------------------------------------- policies

fn create_policy(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let name = policy_name(ctx)?;
    let doc = ctx.params.required("PolicyDocument")?;
    validate_document(
        doc,
        DocKind::Permission,
        "InvalidParameter.PolicyDocument.Length",
        MAX_DOCUMENT,
    )?;
    let desc = description(ctx, "Description")?.unwrap_or_default();
    let tags = tags_param(ctx, "Tag")?;
    e.authorize(ctx, "ram:CreatePolicy", &e.ram_policy_resource(name))?;
    if e.state.policies.contains_key(name) || system_policy(e, name).is_some() {
        return Err(ApiError::new(
            409,
            "EntityAlreadyExists.Policy",
            format!("The policy already exists: {name}."),
        ));
    }
    if e.state.policies.len() >= MAX_POLICIES {
        return Err(ApiError::new(
            409,
            "LimitExceeded.Policy",
            "The count of policies beyond the current limits.",
        ));
    }
    let now = ram_time(ctx.now);
    let p = Policy {
        description: desc,
        create_date: now.clone(),
        update_date: now.clone(),
        default_version: "v1".to_string(),
        last_version_number: 1,
        versions: vec![PolicyVersion {
            id: "v1".to_string(),
            document: DocText(doc.to_string()),
            create_date: now.clone(),
        }],
        document: None,
        tags: tags
            .unwrap_or_default()
            .into_iter()
            .map(|t| (t.key, t.value))
            .collect(),
    };
    let body = json!({
        "PolicyName": name,
        "PolicyType": "Custom",
        "Description": p.description,
        "DefaultVersion": "v1",
        "CreateDate": now,
    });
    e.state.policies.insert(name.to_string(), p);
    e.created(format!("policy/{name}"), ctx.now);
    e.dirty = true;
    Ok(json!({"Policy": body}))
}

fn get_policy(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let name = policy_name(ctx)?;
    // Required, as for GetPolicyVersion / ListPolicyVersions (reference §3.3: required per
    // the docs; clients always send it). Not guessed from the name.
    let ptype = policy_type(ctx, true)?;
    e.authorize(ctx, "ram:GetPolicy", &e.ram_policy_resource(name))?;
    if ptype == Some("System") {
        let p = system_policy(e, name).ok_or_else(|| policy_not_found(name))?;
        let mut pol = system_policy_json(e, name, p);
        pol["PolicyDocument"] = json!(p.document.0);
        return Ok(json!({
            "Policy": pol,
            "DefaultPolicyVersion": {
                "VersionId": p.default_version,
                "IsDefaultVersion": true,
                "PolicyDocument": p.document.0,
                "CreateDate": p.create_date,
            }
        }));
    }
    let p = visible_policy(e, ctx, name)?;
    let default = p
        .versions
        .iter()
        .find(|v| v.id == p.default_version)
        .ok_or_else(|| ApiError::new(500, "InternalError", "The policy has no default version."))?;
    let mut pol = custom_policy_json(e, name, p);
    pol["PolicyDocument"] = json!(default.document.0);
    Ok(json!({"Policy": pol, "DefaultPolicyVersion": version_json(default, &p.default_version)}))
}

fn list_policies(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let ptype = policy_type(ctx, false)?;
    let max = max_items(ctx)?;
    let marker = decode_marker(ctx, "Marker")?;
    let filter = tags_param(ctx, "Tag")?;
    e.authorize(ctx, "ram:ListPolicies", &e.ram_policy_resource("*"))?;
    let mut items: Vec<(String, Value)> = Vec::new();
    if ptype != Some("Custom") && filter.is_none() {
        let mut names: Vec<&String> = system::builtin()
            .keys()
            .chain(e.state.system_policies.keys())
            .collect();
        names.sort();
        names.dedup();
        for n in names {
            if let Some(p) = system_policy(e, n) {
                let mut v = system_policy_json(e, n, p);
                v["Tags"] = tags_json(&BTreeMap::new());
                items.push((format!("System:{n}"), v));
            }
        }
    }
    if ptype != Some("System") {
        for (n, p) in &e.state.policies {
            if e.visible(&format!("policy/{n}"), ctx.now) && matches_tags(&p.tags, &filter) {
                let mut v = custom_policy_json(e, n, p);
                v["Tags"] = tags_json(&p.tags);
                items.push((format!("Custom:{n}"), v));
            }
        }
    }
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let (policies, mut meta) = page(items, marker, max);
    meta["Policies"] = json!({"Policy": policies});
    Ok(meta)
}

fn update_policy_description(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let name = policy_name(ctx)?;
    // Absent: the description is left as it is (not cleared).
    let desc = description(ctx, "NewDescription")?;
    e.authorize(
        ctx,
        "ram:UpdatePolicyDescription",
        &e.ram_policy_resource(name),
    )?;
    visible_policy(e, ctx, name)?;
    let now = ram_time(ctx.now);
    let p = e
        .state
        .policies
        .get_mut(name)
        .ok_or_else(|| policy_not_found(name))?;
    if let Some(d) = desc {
        p.description = d;
    }
    p.update_date = now;
    let p = p.clone();
    e.dirty = true;
    let mut v = custom_policy_json(e, name, &p);
    v.as_object_mut().map(|o| o.remove("AttachmentCount"));
    Ok(json!({"Policy": v}))
}

fn delete_policy(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let name = policy_name(ctx)?;
    let cascading = ctx
        .params
        .bool("CascadingDelete", "InvalidParameter.CascadingDelete")?
        .unwrap_or(false);
    e.authorize(ctx, "ram:DeletePolicy", &e.ram_policy_resource(name))?;
    let p = e
        .state
        .policies
        .get(name)
        .ok_or_else(|| policy_not_found(name))?;
    let hit = |a: &Attachment| a.policy_type == "Custom" && a.name == name;
    if e.state.users.values().any(|u| u.policies.iter().any(hit)) {
        return Err(ApiError::new(
            409,
            "DeleteConflict.Policy.User",
            "The policy has been attached to some users.",
        ));
    }
    // UNCONFIRMED: the code when still attached to a role (terraform expects this one).
    if e.state.roles.values().any(|r| r.policies.iter().any(hit)) {
        return Err(ApiError::new(
            409,
            "DeleteConflict.Role.Policy",
            "The policy has been attached to some roles.",
        ));
    }
    if p.versions.len() > 1 && !cascading {
        return Err(ApiError::new(
            409,
            "DeleteConflict.Policy.Version",
            "The policy CAN NOT has any version except the default version.",
        ));
    }
    e.state.policies.remove(name);
    e.visible_at.remove(&format!("policy/{name}"));
    e.dirty = true;
    Ok(json!({}))
}

// ---------------------------------------------------------------------- versions

fn create_policy_version(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let name = policy_name(ctx)?;
    let doc = ctx.params.required("PolicyDocument")?;
    validate_document(
        doc,
        DocKind::Permission,
        "InvalidParameter.PolicyDocument.Length",
        MAX_DOCUMENT,
    )?;
    let set_default = ctx
        .params
        .bool("SetAsDefault", "InvalidParameter.SetAsDefault")?
        .unwrap_or(false);
    let rotate = match ctx.params.non_empty("RotateStrategy") {
        None | Some("None") => false,
        Some("DeleteOldestNonDefaultVersionWhenLimitExceeded") => true,
        Some(_) => {
            return Err(ApiError::bad(
                "InvalidParameter.RotateStrategy",
                "The parameter RotateStrategy must be None or DeleteOldestNonDefaultVersionWhenLimitExceeded.",
            ));
        }
    };
    e.authorize(ctx, "ram:CreatePolicyVersion", &e.ram_policy_resource(name))?;
    let now = ram_time(ctx.now);
    let p = e
        .state
        .policies
        .get_mut(name)
        .ok_or_else(|| policy_not_found(name))?;
    if p.versions.len() >= MAX_VERSIONS {
        if !rotate {
            return Err(ApiError::new(
                409,
                "LimitExceeded.Policy.Version",
                "The count of policy version beyond the current limits.",
            ));
        }
        // The oldest non-default version: lowest number (numbers only ever grow).
        let oldest = p
            .versions
            .iter()
            .filter(|v| v.id != p.default_version)
            .min_by_key(|v| version_number(&v.id).unwrap_or(u32::MAX))
            .map(|v| v.id.clone());
        if let Some(old) = oldest {
            p.versions.retain(|v| v.id != old);
        }
    }
    p.last_version_number += 1;
    let id = format!("v{}", p.last_version_number);
    let v = PolicyVersion {
        id: id.clone(),
        document: DocText(doc.to_string()),
        create_date: now.clone(),
    };
    p.versions.push(v.clone());
    if set_default {
        p.default_version = id;
    }
    p.update_date = now;
    let body = version_json(&v, &p.default_version);
    e.dirty = true;
    Ok(json!({"PolicyVersion": body}))
}

/// A custom or System policy's versions and default, for the read actions.
fn versions_of(
    e: &Engine,
    ctx: &Ctx<'_>,
    name: &str,
    ptype: &str,
) -> ApiResult<(Vec<PolicyVersion>, String)> {
    if ptype == "System" {
        let p = system_policy(e, name).ok_or_else(|| policy_not_found(name))?;
        Ok((
            vec![PolicyVersion {
                id: p.default_version.clone(),
                document: p.document.clone(),
                create_date: p.create_date.clone(),
            }],
            p.default_version.clone(),
        ))
    } else {
        let p = visible_policy(e, ctx, name)?;
        Ok((p.versions.clone(), p.default_version.clone()))
    }
}

fn get_policy_version(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let name = policy_name(ctx)?;
    let ptype = policy_type(ctx, true)?.unwrap_or("Custom");
    let vid = version_id(ctx)?;
    e.authorize(ctx, "ram:GetPolicyVersion", &e.ram_policy_resource(name))?;
    let (versions, default) = versions_of(e, ctx, name, ptype)?;
    let v = versions
        .iter()
        .find(|v| v.id == vid)
        .ok_or_else(|| version_not_found(name, vid))?;
    Ok(json!({"PolicyVersion": version_json(v, &default)}))
}

fn list_policy_versions(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let name = policy_name(ctx)?;
    let ptype = policy_type(ctx, true)?.unwrap_or("Custom");
    e.authorize(ctx, "ram:ListPolicyVersions", &e.ram_policy_resource(name))?;
    let (mut versions, default) = versions_of(e, ctx, name, ptype)?;
    versions.sort_by_key(|v| version_number(&v.id).unwrap_or(0));
    let list: Vec<Value> = versions.iter().map(|v| version_json(v, &default)).collect();
    Ok(json!({"PolicyVersions": {"PolicyVersion": list}}))
}

fn set_default_policy_version(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let name = policy_name(ctx)?;
    let vid = version_id(ctx)?;
    e.authorize(
        ctx,
        "ram:SetDefaultPolicyVersion",
        &e.ram_policy_resource(name),
    )?;
    let now = ram_time(ctx.now);
    let p = e
        .state
        .policies
        .get_mut(name)
        .ok_or_else(|| policy_not_found(name))?;
    if !p.versions.iter().any(|v| v.id == vid) {
        return Err(version_not_found(name, vid));
    }
    // Setting the current default again succeeds as a no-op (UNCONFIRMED).
    if p.default_version != vid {
        p.default_version = vid.to_string();
        p.update_date = now;
        e.dirty = true;
    }
    Ok(json!({}))
}

fn delete_policy_version(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let name = policy_name(ctx)?;
    let vid = version_id(ctx)?;
    e.authorize(ctx, "ram:DeletePolicyVersion", &e.ram_policy_resource(name))?;
    let p = e
        .state
        .policies
        .get_mut(name)
        .ok_or_else(|| policy_not_found(name))?;
    if !p.versions.iter().any(|v| v.id == vid) {
        return Err(version_not_found(name, vid));
    }
    if p.default_version == vid {
        return Err(ApiError::new(
            409,
            "DeleteConflict.Policy.Version.Default",
            "The default policy version CAN NOT been deleted directly.",
        ));
    }
    p.versions.retain(|v| v.id != vid);
    e.dirty = true;
    Ok(json!({}))
}

// ---------------------------------------------------------------------- attachments

fn attachment_params<'a>(ctx: &'a Ctx<'_>) -> ApiResult<(&'a str, &'a str, &'a str)> {
    let role = role_name(ctx, "RoleName")?;
    let ptype = policy_type(ctx, true)?.unwrap_or("Custom");
    let name = policy_name(ctx)?;
    Ok((role, ptype, name))
}

fn policy_exists(e: &Engine, ctx: &Ctx<'_>, ptype: &str, name: &str) -> bool {
    if ptype == "System" {
        system_policy(e, name).is_some()
    } else {
        visible_policy(e, ctx, name).is_ok()
    }
}

fn attach(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let (role, ptype, name) = attachment_params(ctx)?;
    e.authorize(ctx, "ram:AttachPolicyToRole", &e.ram_role_resource(role))?;
    e.authorize(ctx, "ram:AttachPolicyToRole", &e.ram_policy_resource(name))?;
    visible_role(e, ctx, role)?;
    if !policy_exists(e, ctx, ptype, name) {
        return Err(policy_not_found(name));
    }
    let now = ram_time(ctx.now);
    let r = e
        .state
        .roles
        .get_mut(role)
        .ok_or_else(|| role_not_found(role))?;
    if r.policies
        .iter()
        .any(|a| a.policy_type == ptype && a.name == name)
    {
        return Err(ApiError::new(
            409,
            "EntityAlreadyExists.Role.Policy",
            "The role has already been attached this policy.",
        ));
    }
    let same_type = r.policies.iter().filter(|a| a.policy_type == ptype).count();
    let limit = if ptype == "System" {
        MAX_SYSTEM_PER_ROLE
    } else {
        MAX_CUSTOM_PER_ROLE
    };
    if same_type >= limit {
        return Err(ApiError::new(
            409,
            "LimitExceeded.Role.Policy",
            format!(
                "The count of {ptype} policies attached to the role beyond the current limits ({limit})."
            ),
        ));
    }
    r.policies.push(Attachment {
        policy_type: ptype.to_string(),
        name: name.to_string(),
        attach_date: now,
    });
    e.dirty = true;
    Ok(json!({}))
}

fn detach(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let (role, ptype, name) = attachment_params(ctx)?;
    e.authorize(ctx, "ram:DetachPolicyFromRole", &e.ram_role_resource(role))?;
    e.authorize(
        ctx,
        "ram:DetachPolicyFromRole",
        &e.ram_policy_resource(name),
    )?;
    if !e.state.roles.contains_key(role) {
        return Err(role_not_found(role));
    }
    let exists = if ptype == "System" {
        system_policy(e, name).is_some()
    } else {
        e.state.policies.contains_key(name)
    };
    if !exists {
        return Err(policy_not_found(name));
    }
    let r = e
        .state
        .roles
        .get_mut(role)
        .ok_or_else(|| role_not_found(role))?;
    let before = r.policies.len();
    r.policies
        .retain(|a| !(a.policy_type == ptype && a.name == name));
    if r.policies.len() == before {
        return Err(ApiError::new(
            404,
            "EntityNotExist.Role.Policy",
            "The indicate policy attached to the role does not exist.",
        ));
    }
    e.dirty = true;
    Ok(json!({}))
}

fn list_policies_for_role(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let role = role_name(ctx, "RoleName")?;
    e.authorize(ctx, "ram:ListPoliciesForRole", &e.ram_role_resource(role))?;
    let r = visible_role(e, ctx, role)?;
    let list: Vec<Value> = r
        .policies
        .iter()
        .map(|a| {
            let (desc, default) = if a.policy_type == "System" {
                system_policy(e, &a.name)
                    .map(|p| (p.description.clone(), p.default_version.clone()))
                    .unwrap_or_default()
            } else {
                e.state
                    .policies
                    .get(&a.name)
                    .map(|p| (p.description.clone(), p.default_version.clone()))
                    .unwrap_or_default()
            };
            json!({
                "PolicyName": a.name,
                "PolicyType": a.policy_type,
                "Description": desc,
                "DefaultVersion": default,
                "AttachDate": a.attach_date,
            })
        })
        .collect();
    Ok(json!({"Policies": {"Policy": list}}))
}

fn list_entities_for_policy(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let name = policy_name(ctx)?;
    let ptype = policy_type(ctx, true)?.unwrap_or("Custom");
    e.authorize(
        ctx,
        "ram:ListEntitiesForPolicy",
        &e.ram_policy_resource(name),
    )?;
    if !policy_exists(e, ctx, ptype, name) {
        return Err(policy_not_found(name));
    }
    let hit = |a: &&Attachment| a.policy_type == ptype && a.name == name;
    let roles: Vec<Value> = e
        .state
        .roles
        .iter()
        .filter_map(|(n, r)| {
            r.policies.iter().find(hit).map(|a| {
                json!({"RoleId": r.role_id, "RoleName": n, "Arn": e.role_arn(n),
                       "Description": r.description, "AttachDate": a.attach_date})
            })
        })
        .collect();
    let users: Vec<Value> = e
        .state
        .users
        .iter()
        .filter_map(|(n, u)| {
            u.policies.iter().find(hit).map(|a| {
                json!({"UserId": u.user_id, "UserName": n, "DisplayName": n, "AttachDate": a.attach_date})
            })
        })
        .collect();
    Ok(json!({"Users": {"User": users}, "Groups": {"Group": []}, "Roles": {"Role": roles}}))
}

// ---------------------------------------------------------------------- tags

fn resource_type<'a>(ctx: &'a Ctx<'_>) -> ApiResult<&'a str> {
    match ctx.params.required("ResourceType")? {
        t @ ("role" | "policy") => Ok(t),
        _ => Err(ApiError::bad(
            "InvalidParameter.ResourceType",
            "The parameter ResourceType must be role or policy.",
        )),
    }
}

fn resource_names(ctx: &Ctx<'_>, required: bool) -> ApiResult<Option<Vec<String>>> {
    let names: Option<Vec<String>> = ctx
        .params
        .json("ResourceNames", "InvalidParameter.ResourceNames")?;
    match &names {
        None if required => Err(ApiError::bad(
            "MissingResourceNames",
            "ResourceNames is mandatory for this action.",
        )),
        Some(n) if n.len() > 50 => Err(ApiError::bad(
            "InvalidParameter.ResourceNames",
            "The number of ResourceNames cannot exceed 50.",
        )),
        _ => Ok(names),
    }
}

fn resource_arn(e: &Engine, rtype: &str, name: &str) -> String {
    if rtype == "role" {
        e.ram_role_resource(name)
    } else {
        e.ram_policy_resource(name)
    }
}

fn tags_mut<'a>(
    e: &'a mut Engine,
    rtype: &str,
    name: &str,
) -> ApiResult<&'a mut BTreeMap<String, String>> {
    if rtype == "role" {
        e.state
            .roles
            .get_mut(name)
            .map(|r| &mut r.tags)
            .ok_or_else(|| role_not_found(name))
    } else {
        e.state
            .policies
            .get_mut(name)
            .map(|p| &mut p.tags)
            .ok_or_else(|| policy_not_found(name))
    }
}

fn tag_resources(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let rtype = resource_type(ctx)?;
    let names = resource_names(ctx, true)?.unwrap_or_default();
    let tags = tags_param(ctx, "Tag")?
        .ok_or_else(|| ApiError::bad("MissingTag", "Tag is mandatory for this action."))?;
    for n in &names {
        e.authorize(ctx, "ram:TagResources", &resource_arn(e, rtype, n))?;
    }
    // Check every resource (and the per-resource limit) before changing any.
    for n in &names {
        let have = tags_mut(e, rtype, n)?;
        let mut after = have.clone();
        for t in &tags {
            after.insert(t.key.clone(), t.value.clone());
        }
        if after.len() > MAX_TAGS_PER_RESOURCE {
            return Err(ApiError::bad(
                "LimitExceeded.Tag",
                format!("The count of tags on a resource cannot exceed {MAX_TAGS_PER_RESOURCE}."),
            ));
        }
    }
    for n in &names {
        let have = tags_mut(e, rtype, n)?;
        for t in &tags {
            have.insert(t.key.clone(), t.value.clone());
        }
    }
    e.dirty = true;
    Ok(json!({}))
}

fn untag_resources(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let rtype = resource_type(ctx)?;
    let names = resource_names(ctx, true)?.unwrap_or_default();
    let keys: Vec<String> = ctx
        .params
        .json("TagKeys", "InvalidParameter.TagKeys")?
        .unwrap_or_default();
    let all = ctx
        .params
        .bool("All", "InvalidParameter.All")?
        .unwrap_or(false);
    for n in &names {
        e.authorize(ctx, "ram:UntagResources", &resource_arn(e, rtype, n))?;
    }
    for n in &names {
        tags_mut(e, rtype, n)?;
    }
    for n in &names {
        let have = tags_mut(e, rtype, n)?;
        if all {
            have.clear();
        } else {
            for k in &keys {
                have.remove(k);
            }
        }
    }
    e.dirty = true;
    Ok(json!({}))
}

fn list_tag_resources(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let rtype = resource_type(ctx)?;
    let names = resource_names(ctx, false)?;
    let filter = tags_param(ctx, "Tag")?;
    // Default page size UNCONFIRMED; 50 here.
    let size = ctx
        .params
        .int("PageSize", "InvalidParameter.PageSize")?
        .unwrap_or(50);
    if !(1..=100).contains(&size) {
        return Err(ApiError::bad(
            "InvalidParameter.PageSize",
            "The parameter PageSize must be between 1 and 100.",
        ));
    }
    let start: usize = match decode_marker(ctx, "NextToken")? {
        None => 0,
        Some(s) => s.parse().map_err(|_| {
            ApiError::bad(
                "InvalidParameter.NextToken",
                "The parameter NextToken is not valid.",
            )
        })?,
    };
    e.authorize(ctx, "ram:ListTagResources", &resource_arn(e, rtype, "*"))?;
    let all: Vec<(String, BTreeMap<String, String>)> = if rtype == "role" {
        e.state
            .roles
            .iter()
            .filter(|(n, _)| e.visible(&format!("role/{n}"), ctx.now))
            .map(|(n, r)| (n.clone(), r.tags.clone()))
            .collect()
    } else {
        e.state
            .policies
            .iter()
            .filter(|(n, _)| e.visible(&format!("policy/{n}"), ctx.now))
            .map(|(n, p)| (n.clone(), p.tags.clone()))
            .collect()
    };
    if let Some(names) = &names {
        for n in names {
            if !all.iter().any(|(m, _)| m == n) {
                return Err(if rtype == "role" {
                    role_not_found(n)
                } else {
                    policy_not_found(n)
                });
            }
        }
    }
    let rows: Vec<Value> = all
        .iter()
        .filter(|(n, _)| names.as_ref().is_none_or(|ns| ns.contains(n)))
        .filter(|(_, tags)| matches_tags(tags, &filter))
        .flat_map(|(n, tags)| {
            tags.iter().map(move |(k, v)| {
                json!({"ResourceType": rtype, "ResourceName": n, "TagKey": k, "TagValue": v})
            })
        })
        .collect();
    // `start` comes from the caller's NextToken: never trust it for arithmetic.
    let end = start.saturating_add(size as usize).min(rows.len());
    let page: Vec<Value> = rows.get(start.min(rows.len())..end).unwrap_or(&[]).to_vec();
    let mut body = json!({"TagResources": page});
    if end < rows.len() {
        body["NextToken"] = json!(encode_marker(&end.to_string()));
    }
    Ok(body)
}

// ------------------------------------------------------------ users and groups (read-only)
//
// Users exist only through the state file (they hold the access keys the emulator checks);
// the emulator has no groups. These reads let a caller see its own policies, as immctl's
// preflight does.

fn user_name<'a>(ctx: &'a Ctx<'_>) -> ApiResult<&'a str> {
    let name = ctx.params.required("UserName")?;
    validate_name(
        name,
        64,
        |c| c.is_ascii_alphanumeric() || ".@_-".contains(c),
        "UserName",
    )?;
    Ok(name)
}

fn user_not_found(name: &str) -> ApiError {
    ApiError::new(
        404,
        "EntityNotExist.User",
        format!("The user not exists: {name}."),
    )
}

fn ram_user_resource(e: &Engine, name: &str) -> String {
    format!("acs:ram:*:{}:user/{name}", e.state.account_id)
}

/// `Policies.Policy[]` items for a list of attachments (as ListPoliciesForRole writes them).
fn attached_policies_json(e: &Engine, attachments: &[Attachment]) -> Vec<Value> {
    attachments
        .iter()
        .map(|a| {
            let (desc, default) = if a.policy_type == "System" {
                system_policy(e, &a.name)
                    .map(|p| (p.description.clone(), p.default_version.clone()))
                    .unwrap_or_default()
            } else {
                e.state
                    .policies
                    .get(&a.name)
                    .map(|p| (p.description.clone(), p.default_version.clone()))
                    .unwrap_or_default()
            };
            json!({
                "PolicyName": a.name,
                "PolicyType": a.policy_type,
                "Description": desc,
                "DefaultVersion": default,
                "AttachDate": a.attach_date,
            })
        })
        .collect()
}

fn list_policies_for_user(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let name = user_name(ctx)?;
    e.authorize(ctx, "ram:ListPoliciesForUser", &ram_user_resource(e, name))?;
    let u = e
        .state
        .users
        .get(name)
        .ok_or_else(|| user_not_found(name))?;
    Ok(json!({"Policies": {"Policy": attached_policies_json(e, &u.policies)}}))
}

fn list_groups_for_user(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let name = user_name(ctx)?;
    e.authorize(ctx, "ram:ListGroupsForUser", &ram_user_resource(e, name))?;
    if !e.state.users.contains_key(name) {
        return Err(user_not_found(name));
    }
    Ok(json!({"Groups": {"Group": []}}))
}

fn list_policies_for_group(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let name = ctx.params.required("GroupName")?;
    e.authorize(
        ctx,
        "ram:ListPoliciesForGroup",
        &format!("acs:ram:*:{}:group/{name}", e.state.account_id),
    )?;
    Err(ApiError::new(
        404,
        "EntityNotExist.Group",
        format!("The group not exists: {name}."),
    ))
}
