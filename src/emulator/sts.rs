//! STS 2015-04-01: GetCallerIdentity, AssumeRole (signed; trust policy checked) and
//! AssumeRoleWithOIDC (unsigned; the JWT is decoded, not verified). Issued credentials are
//! kept in memory only (not in the state file) and are honoured until they expire.

use base64::Engine as _;
use serde_json::{Value, json};

use super::engine::{Caller, Ctx, Engine, Session};
use super::wire::{ApiError, ApiResult, ram_time};
use crate::policy::eval::{self, Request};

pub fn dispatch(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    match ctx.action.as_str() {
        "GetCallerIdentity" => Ok(caller_identity(e, ctx)),
        "AssumeRole" => assume_role(e, ctx),
        "AssumeRoleWithOIDC" => assume_role_with_oidc(e, ctx),
        _ => Err(super::ram::unknown_action()),
    }
}

fn caller_identity(e: &Engine, ctx: &Ctx<'_>) -> Value {
    let account = &e.state.account_id;
    match &ctx.caller {
        Caller::Root { .. } => json!({
            "AccountId": account,
            "PrincipalId": account,
            "IdentityType": "Account",
            "Arn": format!("acs:ram::{account}:root"),
        }),
        Caller::User { name, user_id, .. } => json!({
            "AccountId": account,
            "UserId": user_id,
            "PrincipalId": user_id,
            "IdentityType": "RAMUser",
            "Arn": format!("acs:ram::{account}:user/{name}"),
        }),
        Caller::Role { session, .. } => json!({
            "AccountId": account,
            "RoleId": session.role_id,
            "PrincipalId": format!("{}:{}", session.role_id, session.session_name),
            "IdentityType": "AssumedRoleUser",
            "Arn": format!("acs:ram::{account}:assumed-role/{}/{}", session.role, session.session_name),
        }),
        Caller::Anonymous => json!({"AccountId": account}),
    }
}

/// `acs:ram::<account>:role/<name>` -> the role name (account must be ours; name compared
/// case-insensitively as ARNs are).
fn role_from_arn(e: &Engine, arn: &str) -> ApiResult<String> {
    let bad = || {
        ApiError::bad(
            "InvalidParameter.RoleArn",
            "The parameter RoleArn is not valid.",
        )
    };
    let rest = arn.strip_prefix("acs:ram::").ok_or_else(bad)?;
    let (account, name) = rest.split_once(":role/").ok_or_else(bad)?;
    if account != e.state.account_id || name.is_empty() {
        // UNCONFIRMED for STS (reference §5.2).
        return Err(ApiError::new(
            404,
            "EntityNotExist.Role",
            format!("The role not exists: {arn}."),
        ));
    }
    e.state
        .roles
        .keys()
        .find(|k| k.eq_ignore_ascii_case(name))
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                404,
                "EntityNotExist.Role",
                format!("The role not exists: {arn}."),
            )
        })
}

struct Common {
    role: String,
    session_name: String,
    duration: i64,
    policy: Option<Value>,
}

fn common(e: &Engine, ctx: &Ctx<'_>) -> ApiResult<Common> {
    let arn = ctx.params.required("RoleArn")?;
    let session_name = ctx.params.required("RoleSessionName")?.to_string();
    let ok_chars = session_name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "._@-".contains(c));
    if !(2..=64).contains(&session_name.len()) || !ok_chars {
        return Err(ApiError::bad(
            "InvalidParameter.RoleSessionName",
            "The parameter RoleSessionName must be 2-64 characters of [A-Za-z0-9.@_-].",
        ));
    }
    let policy = match ctx.params.non_empty("Policy") {
        None => None,
        Some(p) if p.len() > 2048 => {
            return Err(ApiError::bad(
                "InvalidParameter.PolicySize",
                "The parameter Policy is beyond the length limit of 2048.",
            ));
        }
        Some(p) => Some(
            serde_json::from_str::<Value>(p)
                .ok()
                .filter(Value::is_object)
                .ok_or_else(|| {
                    ApiError::bad(
                        "InvalidParameter.PolicyGrammar",
                        "The parameter Policy is not a valid policy.",
                    )
                })?,
        ),
    };
    let role = role_from_arn(e, arn)?;
    let max = e
        .state
        .roles
        .get(&role)
        .map(|r| r.max_session_duration)
        .unwrap_or(3600) as i64;
    let duration = ctx
        .params
        .int("DurationSeconds", "InvalidParameter.DurationSeconds")?
        .unwrap_or(3600);
    if duration < 900 || duration > max {
        return Err(ApiError::bad(
            "InvalidParameter.DurationSeconds",
            format!("The parameter DurationSeconds must be between 900 and {max}."),
        ));
    }
    Ok(Common {
        role,
        session_name,
        duration,
        policy,
    })
}

fn random_text(n: usize) -> String {
    let bytes: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn issue(e: &mut Engine, ctx: &Ctx<'_>, c: Common) -> Value {
    let role_id = e
        .state
        .roles
        .get(&c.role)
        .map(|r| r.role_id.clone())
        .unwrap_or_default();
    let akid = format!(
        "STS.{}",
        hex::encode((0..12).map(|_| rand::random::<u8>()).collect::<Vec<_>>())
    );
    let expiration = ctx.now + chrono::TimeDelta::seconds(c.duration);
    let session = Session {
        secret: random_text(30),
        token: format!("CAIS{}", random_text(96)),
        expiration,
        role: c.role.clone(),
        role_id: role_id.clone(),
        session_name: c.session_name.clone(),
        policy: c.policy,
    };
    let body = json!({
        "AssumedRoleUser": {
            "Arn": format!("{}/{}", e.role_arn(&c.role), c.session_name),
            "AssumedRoleId": format!("{role_id}:{}", c.session_name),
        },
        "Credentials": {
            "AccessKeyId": akid,
            "AccessKeySecret": session.secret,
            "SecurityToken": session.token,
            "Expiration": ram_time(expiration),
        },
    });
    e.sessions.retain(|_, s| s.expiration > ctx.now);
    e.sessions.insert(akid, session);
    body
}

/// Does the role's trust policy let this principal assume it?
fn trusted(e: &Engine, role: &str, principal_values: &[(&str, String)]) -> bool {
    let Some(r) = e.state.roles.get(role) else {
        return false;
    };
    let Ok(doc) = serde_json::from_str::<Value>(&r.assume_role_policy_document.0) else {
        return false;
    };
    eval::statements(&doc).into_iter().any(|s| {
        let allow = s.get("Effect").and_then(Value::as_str) == Some("Allow");
        let action_ok = eval::string_list(s.get("Action"))
            .unwrap_or_default()
            .iter()
            .any(|a| eval::wildcard_match(a, "sts:AssumeRole", true));
        let principal = s.get("Principal");
        let principal_ok = match principal {
            Some(Value::String(p)) => p == "*",
            Some(Value::Object(m)) => principal_values.iter().any(|(kind, want)| {
                m.iter().any(|(k, v)| {
                    k.eq_ignore_ascii_case(kind)
                        && eval::string_list(Some(v))
                            .unwrap_or_default()
                            .iter()
                            .any(|p| p == "*" || p.eq_ignore_ascii_case(want))
                })
            }),
            _ => false,
        };
        allow && action_ok && principal_ok
    })
}

fn assume_role(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let c = common(e, ctx)?;
    let account = e.state.account_id.clone();
    let caller_arn = match &ctx.caller {
        // Documented: the account root cannot call AssumeRole.
        Caller::Root { .. } | Caller::Anonymous => {
            return Err(e.no_permission(ctx, "sts:AssumeRole", eval::Decision::ImplicitDeny));
        }
        Caller::User { name, .. } => format!("acs:ram::{account}:user/{name}"),
        Caller::Role { session, .. } => {
            format!(
                "acs:ram::{account}:assumed-role/{}/{}",
                session.role, session.session_name
            )
        }
    };
    let req: Request = Engine::base_request(ctx, "sts:AssumeRole", &e.ram_role_resource(&c.role));
    e.authorize_request(ctx, &req)?;
    let principals = [
        ("RAM", format!("acs:ram::{account}:root")),
        ("RAM", account.clone()),
        ("RAM", caller_arn),
    ];
    if !trusted(e, &c.role, &principals) {
        let mut err = e.no_permission(ctx, "sts:AssumeRole", eval::Decision::ImplicitDeny);
        err.message = "You are not authorized to assume this role: the role's trust policy does not allow the caller.".to_string();
        return Err(err);
    }
    Ok(issue(e, ctx, c))
}

fn jwt_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn assume_role_with_oidc(e: &mut Engine, ctx: &Ctx<'_>) -> ApiResult<Value> {
    let provider = ctx.params.required("OIDCProviderArn")?.to_string();
    let token = ctx.params.required("OIDCToken")?.to_string();
    if !(4..=20000).contains(&token.len()) {
        return Err(ApiError::bad(
            "InvalidParameter.OIDCToken",
            "The parameter OIDCToken is not valid.",
        ));
    }
    // UNCONFIRMED code for an undecodable token.
    let claims = jwt_claims(&token).ok_or_else(|| {
        ApiError::bad(
            "InvalidParameter.OIDCToken",
            "The parameter OIDCToken is not a valid JWT.",
        )
    })?;
    let c = common(e, ctx)?;
    if !trusted(e, &c.role, &[("Federated", provider.clone())]) {
        let mut err = e.no_permission(ctx, "sts:AssumeRole", eval::Decision::ImplicitDeny);
        err.message = "You are not authorized to assume this role: the role's trust policy does not allow the OIDC provider.".to_string();
        return Err(err);
    }
    let text = |k: &str| match claims.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(","),
        Some(Value::Number(n)) => n
            .as_i64()
            .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
            .map(ram_time)
            .unwrap_or_default(),
        _ => String::new(),
    };
    let info = json!({
        "Issuer": text("iss"),
        "Subject": text("sub"),
        "ClientIds": text("aud"),
        "IssuanceTime": text("iat"),
        "ExpirationTime": text("exp"),
        "VerificationInfo": "Success",
    });
    let mut body = issue(e, ctx, c);
    body["OIDCTokenInfo"] = info;
    Ok(body)
}
