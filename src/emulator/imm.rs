//! IMM 2020-09-30: projects per region (with the service-role checks), datasets and bindings
//! (reference/alibaba-api.md §4 and §7 items 19-22).
//!
//! Region of a call: the `RegionId` parameter if present, else the Host header
//! `imm.<region>.aliyuncs.com`, else the emulator's default region (cn-hangzhou).
//!
//! Status choices: `ResourceNotFound` 404 and `ResourceAlreadyExists` 409 (the IMM error page
//! shows 400 for both; clients must classify by Code). Refusing to delete a project that
//! still has datasets, or a dataset that still has bindings, is `InvalidArgument` 400
//! (UNCONFIRMED).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Value, json};

use super::engine::{Caller, Ctx, Engine};
use super::state::{
    self, Binding, Dataset, Project, WorkflowParameter, d_dataset_max_bind_count,
    d_dataset_max_entity_count, d_dataset_max_file_count, d_dataset_max_relation_count,
    d_dataset_max_total_file_size, d_hundred, d_project_max_dataset_count,
};
use super::wire::{ApiError, ApiResult, TagParam, imm_time};
use crate::policy::eval::{self, Decision};

/// Projects per region (default quota).
const MAX_PROJECTS_PER_REGION: usize = 100;
/// The principal IMM passes service roles to.
pub const IMM_SERVICE: &str = "imm.aliyuncs.com";

pub fn dispatch(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    match ctx.action.as_str() {
        "CreateProject" => create_project(e, ctx),
        "GetProject" => get_project(e, ctx),
        "UpdateProject" => update_project(e, ctx),
        "DeleteProject" => delete_project(e, ctx),
        "ListProjects" => list_projects(e, ctx),
        "CreateDataset" => create_dataset(e, ctx),
        "GetDataset" => get_dataset(e, ctx),
        "UpdateDataset" => update_dataset(e, ctx),
        "DeleteDataset" => delete_dataset(e, ctx),
        "ListDatasets" => list_datasets(e, ctx),
        "CreateBinding" => create_binding(e, ctx),
        "GetBinding" => get_binding(e, ctx),
        "DeleteBinding" => delete_binding(e, ctx),
        "ListBindings" => list_bindings(e, ctx),
        _ => Err(super::ram::unknown_action()),
    }
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::bad("InvalidArgument", msg)
}

fn not_found(kind: &str) -> ApiError {
    ApiError::new(
        404,
        "ResourceNotFound",
        format!("The specified resource {kind} is not found."),
    )
}

fn already_exists(kind: &str) -> ApiError {
    ApiError::new(
        409,
        "ResourceAlreadyExists",
        format!("The specified resource {kind} already exists."),
    )
}

fn name<'a>(ctx: &'a Ctx<'_>, key: &str) -> ApiResult<&'a str> {
    let n = ctx.params.required_imm(key)?;
    let mut chars = n.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if !first_ok || !rest_ok || n.chars().count() > 128 {
        return Err(invalid(format!(
            "The parameter {key} is invalid: 1-128 letters, digits, '_' or '-', starting with a letter or '_'."
        )));
    }
    Ok(n)
}

fn description(ctx: &Ctx<'_>) -> ApiResult<Option<String>> {
    match ctx.params.get("Description") {
        Some(d) if d.chars().count() > 256 => Err(invalid(
            "The parameter Description is beyond the length limit of 256.",
        )),
        d => Ok(d.map(str::to_string)),
    }
}

/// An optional int64 limit parameter within `1..=max`.
fn limit(ctx: &Ctx<'_>, key: &str, max: i64) -> ApiResult<Option<i64>> {
    match ctx.params.int(key, "InvalidArgument")? {
        None => Ok(None),
        Some(v) if v < 1 => Err(invalid(format!("The parameter {key} must be positive."))),
        Some(v) if v > max => Err(ApiError::bad(
            "LimitExceededError",
            format!("input quota exceed the max value: {key}"),
        )),
        Some(v) => Ok(Some(v)),
    }
}

fn tags(ctx: &Ctx<'_>) -> ApiResult<Option<BTreeMap<String, String>>> {
    let t: Option<Vec<TagParam>> = ctx.params.json("Tag", "InvalidArgument")?;
    Ok(t.map(|t| t.into_iter().map(|t| (t.key, t.value)).collect()))
}

fn tags_json(tags: &BTreeMap<String, String>) -> Value {
    Value::Array(
        tags.iter()
            .map(|(k, v)| json!({"TagKey": k, "TagValue": v}))
            .collect(),
    )
}

fn max_results(ctx: &Ctx<'_>) -> ApiResult<usize> {
    match ctx
        .params
        .int("MaxResults", "InvalidArgument")?
        .unwrap_or(0)
    {
        0 => Ok(100),
        n @ 1..=200 => Ok(n as usize),
        _ => Err(invalid(
            "The parameter MaxResults must be between 0 and 200.",
        )),
    }
}

fn token_after(ctx: &Ctx<'_>, scope: &str) -> ApiResult<Option<String>> {
    let Some(t) = ctx.params.non_empty("NextToken") else {
        return Ok(None);
    };
    let text = base64::engine::general_purpose::STANDARD
        .decode(t)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| invalid("The parameter NextToken is invalid."))?;
    text.strip_prefix(&format!("{scope}:"))
        .map(|s| Some(s.to_string()))
        .ok_or_else(|| invalid("The parameter NextToken is invalid."))
}

/// Lexicographic page after the token; `NextToken` only when more remain.
fn page(
    items: Vec<(String, Value)>,
    after: Option<String>,
    max: usize,
    scope: &str,
    field: &str,
) -> Value {
    let rest: Vec<(String, Value)> = items
        .into_iter()
        .filter(|(k, _)| after.as_ref().is_none_or(|a| k > a))
        .collect();
    let more = rest.len() > max;
    let taken: Vec<(String, Value)> = rest.into_iter().take(max).collect();
    let mut body = json!({});
    if more && let Some((k, _)) = taken.last() {
        body["NextToken"] =
            json!(base64::engine::general_purpose::STANDARD.encode(format!("{scope}:{k}")));
    }
    body[field] = Value::Array(taken.into_iter().map(|(_, v)| v).collect());
    body
}

fn project_json(name: &str, p: &Project) -> Value {
    json!({
        "ProjectName": name,
        "Description": p.description,
        "ServiceRole": p.service_role,
        "TemplateId": p.template_id,
        "ProjectMaxDatasetCount": p.project_max_dataset_count,
        "DatasetMaxBindCount": p.dataset_max_bind_count,
        "DatasetMaxFileCount": p.dataset_max_file_count,
        "DatasetMaxEntityCount": p.dataset_max_entity_count,
        "DatasetMaxRelationCount": p.dataset_max_relation_count,
        "DatasetMaxTotalFileSize": p.dataset_max_total_file_size,
        "DatasetCount": p.datasets.len(),
        "FileCount": 0,
        "TotalFileSize": 0,
        "EngineConcurrency": p.engine_concurrency,
        "ProjectQueriesPerSecond": p.project_queries_per_second,
        "CreateTime": p.create_time,
        "UpdateTime": p.update_time,
        "Tags": tags_json(&p.tags),
    })
}

fn project_key(region: &str, name: &str) -> String {
    format!("project/{region}/{name}")
}

fn visible_project<'a>(e: &'a Engine, ctx: &Ctx<'_>, name: &str) -> ApiResult<&'a Project> {
    match e.state.projects.get(&ctx.region).and_then(|m| m.get(name)) {
        Some(p) if e.visible(&project_key(&ctx.region, name), ctx.now) => Ok(p),
        _ => Err(not_found("project")),
    }
}

fn project_mut<'a>(e: &'a mut Engine, ctx: &Ctx<'_>, name: &str) -> ApiResult<&'a mut Project> {
    if !e.visible(&project_key(&ctx.region, name), ctx.now) {
        return Err(not_found("project"));
    }
    e.state
        .projects
        .get_mut(&ctx.region)
        .and_then(|m| m.get_mut(name))
        .ok_or_else(|| not_found("project"))
}

/// Giving a project a service role: the caller needs `ram:PassRole` on the role (with
/// `acs:Service = imm.aliyuncs.com`), and must itself hold every permission the role grants.
///
/// The exact rule for the second part is [`eval::uncovered`] (shared with immctl's
/// preflight): over the policies attached to the role (only if the role exists and is
/// visible), every granted action pattern must be allowed for the caller on every granted
/// resource pattern, taken as literal strings, with the context `acs:Service =
/// imm.aliyuncs.com`. So a caller with `oss:*` covers a role's `oss:Get*`, but one with only
/// `oss:GetObject` does not. Role statement conditions are not compared. A role that does not exist grants
/// nothing, so only PassRole is checked (the real IMM's behaviour for a missing role is
/// UNCONFIRMED; this emulator accepts it, as IMM only assumes the role later).
fn check_service_role(e: &Engine, ctx: &Ctx<'_>, role: &str) -> ApiResult<()> {
    if matches!(ctx.caller, Caller::Root { .. }) {
        return Ok(());
    }
    let role_res = e.ram_role_resource(role);
    let req = Engine::base_request(ctx, "ram:PassRole", &role_res).with("acs:Service", IMM_SERVICE);
    let d = e.decide(ctx, &req);
    if d != Decision::Allow {
        let mut err = e.no_permission(ctx, "ram:PassRole", d);
        err.message = format!(
            "You are not authorized to pass the role {} to {IMM_SERVICE} (ram:PassRole).",
            e.role_arn(role)
        );
        return Err(err);
    }
    if !e.state.roles.contains_key(role) || !e.visible(&format!("role/{role}"), ctx.now) {
        return Ok(());
    }
    let docs = e.role_documents(role);
    let refs: Vec<&Value> = docs.iter().collect();
    let missing = eval::uncovered(&refs, |a, r| {
        e.decide(
            ctx,
            &Engine::base_request(ctx, a, r).with("acs:Service", IMM_SERVICE),
        )
    });
    if let Some(u) = missing.first() {
        let (a, r) = (&u.grant.action, &u.grant.resource);
        let mut err = e.no_permission(ctx, a, u.decision);
        err.message = format!(
            "You do not hold the permission {a} on {r} that the service role {role} grants; a caller must hold every permission of the role it passes."
        );
        return Err(err);
    }
    Ok(())
}

struct ProjectFields {
    description: Option<String>,
    service_role: Option<String>,
    template_id: Option<String>,
    project_max_dataset_count: Option<i64>,
    dataset_max_bind_count: Option<i64>,
    dataset_max_file_count: Option<i64>,
    dataset_max_entity_count: Option<i64>,
    dataset_max_relation_count: Option<i64>,
    dataset_max_total_file_size: Option<i64>,
    engine_concurrency: Option<i64>,
    project_queries_per_second: Option<i64>,
    tags: Option<BTreeMap<String, String>>,
}

fn project_fields(ctx: &Ctx<'_>) -> ApiResult<ProjectFields> {
    let service_role = match ctx.params.get("ServiceRole") {
        Some("") => return Err(invalid("The parameter ServiceRole is invalid.")),
        r => r.map(str::to_string),
    };
    Ok(ProjectFields {
        description: description(ctx)?,
        service_role,
        template_id: ctx.params.get("TemplateId").map(str::to_string),
        project_max_dataset_count: limit(
            ctx,
            "ProjectMaxDatasetCount",
            d_project_max_dataset_count(),
        )?,
        dataset_max_bind_count: limit(ctx, "DatasetMaxBindCount", d_dataset_max_bind_count())?,
        dataset_max_file_count: limit(ctx, "DatasetMaxFileCount", 10_000_000_000)?,
        dataset_max_entity_count: limit(
            ctx,
            "DatasetMaxEntityCount",
            d_dataset_max_entity_count(),
        )?,
        dataset_max_relation_count: limit(
            ctx,
            "DatasetMaxRelationCount",
            d_dataset_max_relation_count(),
        )?,
        dataset_max_total_file_size: limit(
            ctx,
            "DatasetMaxTotalFileSize",
            d_dataset_max_total_file_size(),
        )?,
        engine_concurrency: limit(ctx, "EngineConcurrency", 10_000)?,
        project_queries_per_second: limit(ctx, "ProjectQueriesPerSecond", 10_000)?,
        tags: tags(ctx)?,
    })
}

fn create_project(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let pname = name(ctx, "ProjectName")?;
    let f = project_fields(ctx)?;
    e.authorize(
        ctx,
        "imm:CreateProject",
        &e.imm_project_resource(&ctx.region, pname),
    )?;
    let role = f
        .service_role
        .clone()
        .unwrap_or_else(state::default_service_role);
    let region_projects = e.state.projects.get(&ctx.region);
    if region_projects.is_some_and(|m| m.contains_key(pname)) {
        return Err(already_exists("project"));
    }
    if region_projects.is_some_and(|m| m.len() >= MAX_PROJECTS_PER_REGION) {
        return Err(ApiError::bad(
            "LimitExceededError",
            "resource count exceeds the limit",
        ));
    }
    check_service_role(e, ctx, &role)?;
    let now = imm_time(ctx.now);
    let p = Project {
        description: f.description.unwrap_or_default(),
        service_role: role,
        template_id: f.template_id.unwrap_or_default(),
        project_max_dataset_count: f
            .project_max_dataset_count
            .unwrap_or_else(d_project_max_dataset_count),
        dataset_max_bind_count: f
            .dataset_max_bind_count
            .unwrap_or_else(d_dataset_max_bind_count),
        dataset_max_file_count: f
            .dataset_max_file_count
            .unwrap_or_else(d_dataset_max_file_count),
        dataset_max_entity_count: f
            .dataset_max_entity_count
            .unwrap_or_else(d_dataset_max_entity_count),
        dataset_max_relation_count: f
            .dataset_max_relation_count
            .unwrap_or_else(d_dataset_max_relation_count),
        dataset_max_total_file_size: f
            .dataset_max_total_file_size
            .unwrap_or_else(d_dataset_max_total_file_size),
        engine_concurrency: f.engine_concurrency.unwrap_or_else(d_hundred),
        project_queries_per_second: f.project_queries_per_second.unwrap_or_else(d_hundred),
        create_time: now.clone(),
        update_time: now,
        tags: f.tags.unwrap_or_default(),
        datasets: BTreeMap::new(),
    };
    let body = project_json(pname, &p);
    e.state
        .projects
        .entry(ctx.region.clone())
        .or_default()
        .insert(pname.to_string(), p);
    e.created(project_key(&ctx.region, pname), ctx.now);
    e.dirty = true;
    Ok(json!({"Project": body}))
}

fn get_project(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let pname = name(ctx, "ProjectName")?;
    ctx.params.bool("WithStatistics", "InvalidArgument")?;
    e.authorize(
        ctx,
        "imm:GetProject",
        &e.imm_project_resource(&ctx.region, pname),
    )?;
    let p = visible_project(e, ctx, pname)?;
    Ok(json!({"Project": project_json(pname, p)}))
}

fn update_project(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let pname = name(ctx, "ProjectName")?;
    let f = project_fields(ctx)?;
    e.authorize(
        ctx,
        "imm:UpdateProject",
        &e.imm_project_resource(&ctx.region, pname),
    )?;
    visible_project(e, ctx, pname)?;
    if let Some(role) = &f.service_role {
        check_service_role(e, ctx, role)?;
    }
    let now = imm_time(ctx.now);
    let p = project_mut(e, ctx, pname)?;
    if let Some(v) = f.description {
        p.description = v;
    }
    if let Some(v) = f.service_role {
        p.service_role = v;
    }
    if let Some(v) = f.template_id {
        p.template_id = v;
    }
    macro_rules! set {
        ($($field:ident),*) => { $( if let Some(v) = f.$field { p.$field = v; } )* };
    }
    set!(
        project_max_dataset_count,
        dataset_max_bind_count,
        dataset_max_file_count,
        dataset_max_entity_count,
        dataset_max_relation_count,
        dataset_max_total_file_size,
        engine_concurrency,
        project_queries_per_second
    );
    // `Tag` replaces the whole set (UNCONFIRMED; the reference recommends sending it whole).
    if let Some(t) = f.tags {
        p.tags = t;
    }
    p.update_time = now;
    let body = project_json(pname, p);
    e.dirty = true;
    Ok(json!({"Project": body}))
}

fn delete_project(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let pname = name(ctx, "ProjectName")?;
    e.authorize(
        ctx,
        "imm:DeleteProject",
        &e.imm_project_resource(&ctx.region, pname),
    )?;
    let p = project_mut(e, ctx, pname)?;
    if !p.datasets.is_empty() {
        return Err(invalid(
            "The project still has datasets; delete its datasets and bindings first.",
        ));
    }
    if let Some(m) = e.state.projects.get_mut(&ctx.region) {
        m.remove(pname);
        if m.is_empty() {
            e.state.projects.remove(&ctx.region);
        }
    }
    e.visible_at.remove(&project_key(&ctx.region, pname));
    e.dirty = true;
    Ok(json!({}))
}

fn list_projects(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let max = max_results(ctx)?;
    let prefix = ctx.params.get("Prefix").unwrap_or("").to_string();
    if prefix.chars().count() > 128 {
        return Err(invalid(
            "The parameter Prefix is beyond the length limit of 128.",
        ));
    }
    let filter = tags(ctx)?;
    let after = token_after(ctx, &e.state.account_id)?;
    e.authorize(
        ctx,
        "imm:ListProjects",
        &e.imm_project_resource(&ctx.region, "*"),
    )?;
    let items: Vec<(String, Value)> = e
        .state
        .projects
        .get(&ctx.region)
        .map(|m| {
            m.iter()
                .filter(|(n, _)| n.starts_with(&prefix))
                .filter(|(n, _)| e.visible(&project_key(&ctx.region, n), ctx.now))
                .filter(|(_, p)| {
                    filter
                        .as_ref()
                        .is_none_or(|f| f.iter().all(|(k, v)| p.tags.get(k) == Some(v)))
                })
                .map(|(n, p)| (n.clone(), project_json(n, p)))
                .collect()
        })
        .unwrap_or_default();
    Ok(page(items, after, max, &e.state.account_id, "Projects"))
}

// ---------------------------------------------------------------------- datasets

fn dataset_json(project: &str, name: &str, d: &Dataset) -> Value {
    json!({
        "ProjectName": project,
        "DatasetName": name,
        "Description": d.description,
        "TemplateId": d.template_id,
        "BindCount": d.bindings.len(),
        "FileCount": 0,
        "TotalFileSize": 0,
        "DatasetMaxBindCount": d.dataset_max_bind_count,
        "DatasetMaxFileCount": d.dataset_max_file_count,
        "DatasetMaxEntityCount": d.dataset_max_entity_count,
        "DatasetMaxRelationCount": d.dataset_max_relation_count,
        "DatasetMaxTotalFileSize": d.dataset_max_total_file_size,
        "WorkflowParameters": d.workflow_parameters.iter().map(|w| json!({"Name": w.name, "Value": w.value})).collect::<Vec<_>>(),
        "CreateTime": d.create_time,
        "UpdateTime": d.update_time,
    })
}

fn workflow_parameters(ctx: &Ctx<'_>) -> ApiResult<Option<Vec<WorkflowParameter>>> {
    ctx.params.json("WorkflowParameters", "InvalidArgument")
}

fn create_dataset(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let pname = name(ctx, "ProjectName")?;
    let dname = name(ctx, "DatasetName")?;
    let desc = description(ctx)?;
    let bind = limit(ctx, "DatasetMaxBindCount", d_dataset_max_bind_count())?;
    let files = limit(ctx, "DatasetMaxFileCount", 10_000_000_000)?;
    let entities = limit(ctx, "DatasetMaxEntityCount", d_dataset_max_entity_count())?;
    let relations = limit(
        ctx,
        "DatasetMaxRelationCount",
        d_dataset_max_relation_count(),
    )?;
    let size = limit(
        ctx,
        "DatasetMaxTotalFileSize",
        d_dataset_max_total_file_size(),
    )?;
    let wf = workflow_parameters(ctx)?;
    e.authorize(
        ctx,
        "imm:CreateDataset",
        &e.imm_project_resource(&ctx.region, pname),
    )?;
    let now = imm_time(ctx.now);
    let p = project_mut(e, ctx, pname)?;
    if p.datasets.contains_key(dname) {
        return Err(already_exists("dataset"));
    }
    if p.datasets.len() as i64 >= p.project_max_dataset_count {
        return Err(ApiError::bad(
            "LimitExceededError",
            "resource count exceeds the limit",
        ));
    }
    let d = Dataset {
        description: desc.unwrap_or_default(),
        template_id: ctx.params.get("TemplateId").unwrap_or("").to_string(),
        dataset_max_bind_count: bind.unwrap_or(p.dataset_max_bind_count),
        dataset_max_file_count: files.unwrap_or(p.dataset_max_file_count),
        dataset_max_entity_count: entities.unwrap_or(p.dataset_max_entity_count),
        dataset_max_relation_count: relations.unwrap_or(p.dataset_max_relation_count),
        dataset_max_total_file_size: size.unwrap_or(p.dataset_max_total_file_size),
        workflow_parameters: wf.unwrap_or_default(),
        create_time: now.clone(),
        update_time: now,
        bindings: BTreeMap::new(),
    };
    let body = dataset_json(pname, dname, &d);
    p.datasets.insert(dname.to_string(), d);
    e.dirty = true;
    Ok(json!({"Dataset": body}))
}

fn get_dataset(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let pname = name(ctx, "ProjectName")?;
    let dname = name(ctx, "DatasetName")?;
    e.authorize(
        ctx,
        "imm:GetDataset",
        &e.imm_project_resource(&ctx.region, pname),
    )?;
    let p = visible_project(e, ctx, pname)?;
    let d = p.datasets.get(dname).ok_or_else(|| not_found("dataset"))?;
    Ok(json!({"Dataset": dataset_json(pname, dname, d)}))
}

fn update_dataset(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let pname = name(ctx, "ProjectName")?;
    let dname = name(ctx, "DatasetName")?;
    let desc = description(ctx)?;
    let bind = limit(ctx, "DatasetMaxBindCount", d_dataset_max_bind_count())?;
    let files = limit(ctx, "DatasetMaxFileCount", 10_000_000_000)?;
    let entities = limit(ctx, "DatasetMaxEntityCount", d_dataset_max_entity_count())?;
    let relations = limit(
        ctx,
        "DatasetMaxRelationCount",
        d_dataset_max_relation_count(),
    )?;
    let size = limit(
        ctx,
        "DatasetMaxTotalFileSize",
        d_dataset_max_total_file_size(),
    )?;
    let wf = workflow_parameters(ctx)?;
    e.authorize(
        ctx,
        "imm:UpdateDataset",
        &e.imm_project_resource(&ctx.region, pname),
    )?;
    let now = imm_time(ctx.now);
    let p = project_mut(e, ctx, pname)?;
    let d = p
        .datasets
        .get_mut(dname)
        .ok_or_else(|| not_found("dataset"))?;
    if let Some(v) = desc {
        d.description = v;
    }
    if let Some(v) = ctx.params.get("TemplateId") {
        d.template_id = v.to_string();
    }
    if let Some(v) = bind {
        d.dataset_max_bind_count = v;
    }
    if let Some(v) = files {
        d.dataset_max_file_count = v;
    }
    if let Some(v) = entities {
        d.dataset_max_entity_count = v;
    }
    if let Some(v) = relations {
        d.dataset_max_relation_count = v;
    }
    if let Some(v) = size {
        d.dataset_max_total_file_size = v;
    }
    if let Some(v) = wf {
        d.workflow_parameters = v;
    }
    d.update_time = now;
    let body = dataset_json(pname, dname, d);
    e.dirty = true;
    Ok(json!({"Dataset": body}))
}

fn delete_dataset(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let pname = name(ctx, "ProjectName")?;
    let dname = name(ctx, "DatasetName")?;
    e.authorize(
        ctx,
        "imm:DeleteDataset",
        &e.imm_project_resource(&ctx.region, pname),
    )?;
    let p = project_mut(e, ctx, pname)?;
    let d = p.datasets.get(dname).ok_or_else(|| not_found("dataset"))?;
    if !d.bindings.is_empty() {
        return Err(invalid(
            "The dataset still has bindings; delete them first.",
        ));
    }
    p.datasets.remove(dname);
    e.dirty = true;
    Ok(json!({}))
}

fn list_datasets(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let pname = name(ctx, "ProjectName")?;
    let max = max_results(ctx)?;
    let prefix = ctx.params.get("Prefix").unwrap_or("").to_string();
    let scope = format!("{}:{pname}", e.state.account_id);
    let after = token_after(ctx, &scope)?;
    e.authorize(
        ctx,
        "imm:ListDatasets",
        &e.imm_project_resource(&ctx.region, pname),
    )?;
    let p = visible_project(e, ctx, pname)?;
    let items = p
        .datasets
        .iter()
        .filter(|(n, _)| n.starts_with(&prefix))
        .map(|(n, d)| (n.clone(), dataset_json(pname, n, d)))
        .collect();
    Ok(page(items, after, max, &scope, "Datasets"))
}

// ---------------------------------------------------------------------- bindings

fn binding_json(project: &str, dataset: &str, uri: &str, b: &Binding) -> Value {
    json!({
        "ProjectName": project,
        "DatasetName": dataset,
        "URI": uri,
        "State": b.state,
        "Phase": b.phase,
        "Reason": b.reason,
        "CreateTime": b.create_time,
        "UpdateTime": b.update_time,
    })
}

fn uri(ctx: &Ctx<'_>) -> ApiResult<String> {
    let u = ctx.params.required_imm("URI")?;
    let bucket = u.strip_prefix("oss://").unwrap_or("");
    let bucket = bucket.split('/').next().unwrap_or("");
    if bucket.is_empty() {
        return Err(invalid(
            "The parameter URI must be of the form oss://<bucket>.",
        ));
    }
    Ok(u.to_string())
}

fn create_binding(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let pname = name(ctx, "ProjectName")?;
    let dname = name(ctx, "DatasetName")?;
    let u = uri(ctx)?;
    e.authorize(
        ctx,
        "imm:CreateBinding",
        &e.imm_project_resource(&ctx.region, pname),
    )?;
    let now = imm_time(ctx.now);
    let p = project_mut(e, ctx, pname)?;
    let d = p
        .datasets
        .get_mut(dname)
        .ok_or_else(|| not_found("dataset"))?;
    if d.bindings.contains_key(&u) {
        return Err(already_exists("binding"));
    }
    if d.bindings.len() as i64 >= d.dataset_max_bind_count {
        return Err(ApiError::bad(
            "LimitExceededError",
            "resource count exceeds the limit",
        ));
    }
    let b = Binding {
        state: "Running".to_string(),
        phase: "FullScanning".to_string(),
        reason: String::new(),
        create_time: now.clone(),
        update_time: now,
    };
    let body = binding_json(pname, dname, &u, &b);
    d.bindings.insert(u, b);
    e.dirty = true;
    Ok(json!({"Binding": body}))
}

fn get_binding(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let pname = name(ctx, "ProjectName")?;
    let dname = name(ctx, "DatasetName")?;
    let u = uri(ctx)?;
    e.authorize(
        ctx,
        "imm:GetBinding",
        &e.imm_project_resource(&ctx.region, pname),
    )?;
    let p = visible_project(e, ctx, pname)?;
    let d = p.datasets.get(dname).ok_or_else(|| not_found("dataset"))?;
    let b = d.bindings.get(&u).ok_or_else(|| not_found("binding"))?;
    Ok(json!({"Binding": binding_json(pname, dname, &u, b)}))
}

fn delete_binding(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let pname = name(ctx, "ProjectName")?;
    let dname = name(ctx, "DatasetName")?;
    let u = uri(ctx)?;
    e.authorize(
        ctx,
        "imm:DeleteBinding",
        &e.imm_project_resource(&ctx.region, pname),
    )?;
    let p = project_mut(e, ctx, pname)?;
    let d = p
        .datasets
        .get_mut(dname)
        .ok_or_else(|| not_found("dataset"))?;
    d.bindings.remove(&u).ok_or_else(|| not_found("binding"))?;
    e.dirty = true;
    Ok(json!({}))
}

fn list_bindings(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let pname = name(ctx, "ProjectName")?;
    let dname = name(ctx, "DatasetName")?;
    let max = max_results(ctx)?;
    let scope = format!("{pname}:{dname}");
    let after = token_after(ctx, &scope)?;
    e.authorize(
        ctx,
        "imm:ListBindings",
        &e.imm_project_resource(&ctx.region, pname),
    )?;
    let p = visible_project(e, ctx, pname)?;
    let d = p.datasets.get(dname).ok_or_else(|| not_found("dataset"))?;
    let items = d
        .bindings
        .iter()
        .map(|(u, b)| (u.clone(), binding_json(pname, dname, u, b)))
        .collect();
    Ok(page(items, after, max, &scope, "Bindings"))
}
