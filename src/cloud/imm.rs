//! Typed IMM 2020-09-30 project operations. Every call names its region: the endpoint is
//! `imm.<region>.aliyuncs.com` (or the override) and `RegionId=<region>` is always sent.

use std::collections::BTreeMap;

use super::client::{Client, Params, Product};
use super::error::Result;
use super::pages::Pages;
use super::wire::*;

/// CreateProject / UpdateProject parameters. `None` fields are not sent (Update: unchanged).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProjectRequest {
    pub project_name: String,
    pub description: Option<String>,
    pub service_role: Option<String>,
    pub template_id: Option<String>,
    pub project_max_dataset_count: Option<i64>,
    pub dataset_max_bind_count: Option<i64>,
    pub dataset_max_file_count: Option<i64>,
    pub dataset_max_entity_count: Option<i64>,
    pub dataset_max_relation_count: Option<i64>,
    pub dataset_max_total_file_size: Option<i64>,
    pub engine_concurrency: Option<i64>,
    pub project_queries_per_second: Option<i64>,
    /// `Some`: sent as `Tag=[...]` (UpdateProject: the full set; an empty map sends `[]`).
    pub tags: Option<BTreeMap<String, String>>,
}

impl ProjectRequest {
    fn to_params(&self) -> Params {
        let mut p = Params::new();
        p.insert("ProjectName".into(), self.project_name.clone());
        let mut opt = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                p.insert(k.into(), v);
            }
        };
        opt("Description", self.description.clone());
        opt("ServiceRole", self.service_role.clone());
        opt("TemplateId", self.template_id.clone());
        let n = |v: Option<i64>| v.map(|n| n.to_string());
        opt("ProjectMaxDatasetCount", n(self.project_max_dataset_count));
        opt("DatasetMaxBindCount", n(self.dataset_max_bind_count));
        opt("DatasetMaxFileCount", n(self.dataset_max_file_count));
        opt("DatasetMaxEntityCount", n(self.dataset_max_entity_count));
        opt(
            "DatasetMaxRelationCount",
            n(self.dataset_max_relation_count),
        );
        opt(
            "DatasetMaxTotalFileSize",
            n(self.dataset_max_total_file_size),
        );
        opt("EngineConcurrency", n(self.engine_concurrency));
        opt(
            "ProjectQueriesPerSecond",
            n(self.project_queries_per_second),
        );
        opt("Tag", self.tags.as_ref().map(tags_param));
        p
    }
}

impl Client {
    async fn imm<T: serde::de::DeserializeOwned>(
        &self,
        region: &str,
        action: &'static str,
        p: Params,
    ) -> Result<T> {
        self.call(Product::Imm, action, Some(region), p).await
    }

    pub async fn create_project(
        &self,
        region: &str,
        req: &ProjectRequest,
    ) -> Result<ProjectResponse> {
        self.imm(region, "CreateProject", req.to_params()).await
    }

    pub async fn get_project(
        &self,
        region: &str,
        project_name: &str,
        with_statistics: bool,
    ) -> Result<ProjectResponse> {
        let mut p = Params::new();
        p.insert("ProjectName".into(), project_name.into());
        if with_statistics {
            p.insert("WithStatistics".into(), bool_param(true).into());
        }
        self.imm(region, "GetProject", p).await
    }

    pub async fn update_project(
        &self,
        region: &str,
        req: &ProjectRequest,
    ) -> Result<ProjectResponse> {
        self.imm(region, "UpdateProject", req.to_params()).await
    }

    pub async fn delete_project(&self, region: &str, project_name: &str) -> Result<RequestIdOnly> {
        let mut p = Params::new();
        p.insert("ProjectName".into(), project_name.into());
        self.imm(region, "DeleteProject", p).await
    }

    /// One page; `max_results` 0..=200 (0 → 100).
    pub async fn list_projects(
        &self,
        region: &str,
        next_token: Option<&str>,
        max_results: Option<u32>,
        prefix: Option<&str>,
    ) -> Result<ListProjectsResponse> {
        let mut p = Params::new();
        if let Some(t) = next_token {
            p.insert("NextToken".into(), t.into());
        }
        if let Some(m) = max_results {
            p.insert("MaxResults".into(), m.to_string());
        }
        if let Some(x) = prefix {
            p.insert("Prefix".into(), x.into());
        }
        self.imm(region, "ListProjects", p).await
    }

    /// Every project of a region (full objects, tags included), `max_results` per page
    /// (at most 200), following `NextToken` until it is absent or empty.
    pub async fn list_projects_all(&self, region: &str, max_results: u32) -> Result<Vec<Project>> {
        let mut out = Vec::new();
        let mut pages = Pages::new("ListProjects");
        let mut token: Option<String> = None;
        loop {
            let r = self
                .list_projects(region, token.as_deref(), Some(max_results), None)
                .await?;
            out.extend(r.projects);
            match pages.next_token(r.next_token)? {
                Some(t) => token = Some(t),
                None => return Ok(out),
            }
        }
    }
}
