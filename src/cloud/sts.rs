//! Typed STS 2015-04-01 operations. (The credential providers make their own STS calls; see
//! [`super::credentials`].)

use super::client::{Client, Params, Product};
use super::error::Result;
use super::wire::*;

/// AssumeRole / AssumeRoleWithOIDC options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AssumeRoleOptions {
    /// 900..=role MaxSessionDuration (service default 3600).
    pub duration_seconds: Option<u32>,
    /// JSON narrowing the session's permissions.
    pub policy: Option<String>,
    pub external_id: Option<String>,
}

impl AssumeRoleOptions {
    fn apply(&self, p: &mut Params) {
        if let Some(d) = self.duration_seconds {
            p.insert("DurationSeconds".into(), d.to_string());
        }
        if let Some(x) = &self.policy {
            p.insert("Policy".into(), x.clone());
        }
        if let Some(x) = &self.external_id {
            p.insert("ExternalId".into(), x.clone());
        }
    }
}

impl Client {
    /// Who the client's credentials belong to.
    pub async fn get_caller_identity(&self) -> Result<GetCallerIdentityResponse> {
        self.call(Product::Sts, "GetCallerIdentity", None, Params::new())
            .await
    }

    pub async fn assume_role(
        &self,
        role_arn: &str,
        role_session_name: &str,
        options: &AssumeRoleOptions,
    ) -> Result<AssumeRoleResponse> {
        let mut p = Params::new();
        p.insert("RoleArn".into(), role_arn.into());
        p.insert("RoleSessionName".into(), role_session_name.into());
        options.apply(&mut p);
        self.call(Product::Sts, "AssumeRole", None, p).await
    }

    /// Sent unsigned, as the SDKs send it (no `AccessKeyId`, no `Signature`: the OIDC token
    /// is the proof), so it works without any credentials.
    pub async fn assume_role_with_oidc(
        &self,
        oidc_provider_arn: &str,
        role_arn: &str,
        oidc_token: &Secret,
        role_session_name: &str,
        options: &AssumeRoleOptions,
    ) -> Result<AssumeRoleWithOidcResponse> {
        let mut p = Params::new();
        p.insert("OIDCProviderArn".into(), oidc_provider_arn.into());
        p.insert("RoleArn".into(), role_arn.into());
        p.insert("OIDCToken".into(), oidc_token.expose().into());
        p.insert("RoleSessionName".into(), role_session_name.into());
        let opts = AssumeRoleOptions {
            external_id: None,
            ..options.clone()
        };
        opts.apply(&mut p);
        self.call_anonymous(Product::Sts, "AssumeRoleWithOIDC", p)
            .await
    }
}
