//! Errors of the cloud client: the API's own error envelope kept whole ([`ApiError`]) and the
//! transport / decoding / credential failures around it ([`Error`]).
//!
//! Callers branch on `Code` (via [`Error::code`], [`Error::is_not_found`], ...), never on
//! `Message`. Nothing here may carry a secret: messages that echo the request (the string to
//! sign of a `SignatureDoesNotMatch`) are cut by the client before they get here, and
//! transport errors are stripped of the request URL (whose query holds `Signature` and
//! `SecurityToken`).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::credentials::CredentialsError;

/// `AccessDeniedDetail` of a permission error (present on some `NoPermission` answers).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AccessDeniedDetail {
    pub auth_action: Option<String>,
    pub auth_principal_type: Option<String>,
    pub auth_principal_owner_id: Option<String>,
    pub auth_principal_display_name: Option<String>,
    pub policy_type: Option<String>,
    /// `ImplicitDeny` / `ExplicitDeny`.
    pub no_permission_type: Option<String>,
    pub encoded_diagnostic_message: Option<String>,
}

/// The error envelope as the service sent it (HTTP 4xx/5xx), plus the action and HTTP status.
///
/// Display: `CreateRole: 409 EntityAlreadyExists.Role: <Message> (RequestId 6A1F…)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The API action, e.g. `CreateRole`.
    pub action: String,
    /// HTTP status of the answer.
    pub status: u16,
    /// The service's `Code`, e.g. `EntityNotExist.Role`. When the body was not a JSON
    /// envelope: `SDK.UnknownServerError` (as the official SDK reports it).
    pub code: String,
    /// The service's `Message` (cut where it would echo the signed request).
    pub message: String,
    /// `RequestId`; empty when the body carried none.
    pub request_id: String,
    /// `HostId`: the endpoint host as the service names it.
    pub host_id: Option<String>,
    /// `Recommend`: the troubleshooting link.
    pub recommend: Option<String>,
    pub access_denied_detail: Option<AccessDeniedDetail>,
    /// From the `x-acs-retry-after` header (the service asks us to wait this long).
    pub retry_after: Option<Duration>,
}

/// Code used when an error body is not a JSON envelope.
pub const UNKNOWN_SERVER_ERROR: &str = "SDK.UnknownServerError";

impl ApiError {
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The resource does not exist: `EntityNotExist.*` (RAM), `ResourceNotFound` (IMM), any
    /// `*.NotFound` except the unknown-AccessKey one (which is a credentials problem).
    pub fn is_not_found(&self) -> bool {
        let c = self.code.as_str();
        c.starts_with("EntityNotExist")
            || c == "ResourceNotFound"
            || (c.ends_with(".NotFound") && !c.starts_with("InvalidAccessKeyId"))
    }

    /// `EntityAlreadyExists.*` (RAM) or `ResourceAlreadyExists` (IMM).
    pub fn is_already_exists(&self) -> bool {
        self.code.starts_with("EntityAlreadyExists") || self.code == "ResourceAlreadyExists"
    }

    /// `DeleteConflict.*`: dependents still exist.
    pub fn is_delete_conflict(&self) -> bool {
        self.code.starts_with("DeleteConflict")
    }

    /// Flow control: any code containing `Throttling` (`Throttling`, `Throttling.User`,
    /// `Throttling.Api`, `Rejected.Throttling`), HTTP 429, or a `x-acs-retry-after` header.
    pub fn is_throttling(&self) -> bool {
        self.code.contains("Throttling") || self.status == 429 || self.retry_after.is_some()
    }

    /// Permission problems: `NoPermission`, `Forbidden*`, `*AccessDenied*`, HTTP 403.
    pub fn is_permission_denied(&self) -> bool {
        self.code == "NoPermission"
            || self.code.starts_with("Forbidden")
            || self.code.contains("AccessDenied")
            || self.status == 403
    }

    /// The credentials themselves are wrong (bad secret, unknown or expired key).
    pub fn is_bad_credentials(&self) -> bool {
        matches!(
            self.code.as_str(),
            "SignatureDoesNotMatch"
                | "InvalidAccessKeySecret"
                | "InvalidAccessKeyId.NotFound"
                | "InvalidAccessKeyId"
                | "InvalidSecurityToken.Expired"
                | "InvalidSecurityToken.Malformed"
                | "InvalidSecurityToken.MismatchWithAccessKey"
        )
    }

    /// Worth another attempt: throttling, `ServiceUnavailable`, `InternalError`,
    /// `UnknownError`, any HTTP 5xx. Validation, permission, not-found, conflict and
    /// signature errors never are (the same request would fail the same way).
    pub fn is_retryable(&self) -> bool {
        self.is_throttling()
            || matches!(
                self.code.as_str(),
                "ServiceUnavailable" | "InternalError" | "UnknownError"
            )
            || self.status >= 500
    }

    /// What the user should check, for errors whose `Message` does not say it plainly.
    pub fn hint(&self) -> Option<&'static str> {
        if self.code == "SignatureDoesNotMatch" || self.code == "InvalidAccessKeySecret" {
            Some(
                "the AccessKey secret does not match the AccessKey ID (check the credentials source)",
            )
        } else if self.code.starts_with("InvalidAccessKeyId") {
            Some(
                "the AccessKey ID is unknown or the STS token expired (check the credentials source)",
            )
        } else if self.code.starts_with("InvalidSecurityToken") {
            Some("the STS security token is invalid or expired (check the credentials source)")
        } else {
            None
        }
    }
}

impl ApiError {
    /// What went wrong, without the action: `409 EntityAlreadyExists.Role: <Message>
    /// (RequestId 6A1F…)` and the hint, if any. Display is `<action>: <detail>`.
    pub fn detail(&self) -> String {
        let mut s = format!("{} {}", self.status, self.code);
        if !self.message.is_empty() {
            s.push_str(&format!(": {}", self.message));
        }
        if !self.request_id.is_empty() {
            s.push_str(&format!(" (RequestId {})", self.request_id));
        }
        if let Some(hint) = self.hint() {
            s.push_str(&format!("; {hint}"));
        }
        s
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.action, self.detail())
    }
}

impl std::error::Error for ApiError {}

/// An error and its causes on one line (`error sending request: client error (Connect): tcp
/// connect error: Connection refused (os error 111)`): the root cause is what a reader needs,
/// and reqwest's own message ("error sending request") never says it.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = vec![e.to_string()];
    let mut next = e.source();
    while let Some(cause) = next {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(text.as_str())) {
            parts.push(text);
        }
        next = cause.source();
    }
    parts.join(": ")
}

/// Everything a call can fail with. Display is `<action>: <detail>` ([`Error::detail`]), so a
/// caller that names the action itself (with more context, e.g. the resource address) shows
/// the detail alone instead of cutting the action off the text.
#[derive(Debug)]
pub enum Error {
    /// The service answered with an error envelope. Boxed: the envelope is large and errors
    /// travel in every `Result` of the client.
    Api(Box<ApiError>),
    /// Connection refused / reset / dropped, TLS failure, body cut short (after retries).
    Transport {
        action: String,
        /// Stripped of its URL (the query carries the signature).
        source: reqwest::Error,
    },
    /// No connection within the connect timeout, or no answer within the request timeout
    /// (after retries).
    Timeout {
        action: String,
        after: Duration,
        /// The connection was never made (connect timeout).
        connecting: bool,
    },
    /// A 2xx answer whose body is not the JSON we expect.
    Decode {
        action: String,
        request_id: String,
        source: serde_json::Error,
    },
    /// No usable credentials.
    Credentials {
        action: String,
        source: CredentialsError,
    },
    /// A misconfigured endpoint or similar local problem.
    Config { action: String, message: String },
    /// A paginated list did not advance (the service handed back a `Marker` / `NextToken`
    /// already seen): stopping is safer than looping or returning a partial list.
    Pagination { action: String, token: String },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.action(), self.detail())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            // The envelope is the whole story (it had no source of its own when it was
            // `#[error(transparent)]` either).
            Error::Api(_) => None,
            Error::Transport { source, .. } => Some(source),
            Error::Decode { source, .. } => Some(source),
            Error::Credentials { source, .. } => Some(source),
            Error::Timeout { .. } | Error::Config { .. } | Error::Pagination { .. } => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<ApiError> for Error {
    fn from(e: ApiError) -> Self {
        Error::Api(Box::new(e))
    }
}

impl Error {
    /// What went wrong, without the action (see the type's docs).
    pub fn detail(&self) -> String {
        match self {
            Error::Api(e) => e.detail(),
            Error::Transport { source, .. } => format!("transport error: {}", chain(source)),
            Error::Timeout {
                after, connecting, ..
            } => format!(
                "{} within {after:?}",
                if *connecting {
                    "could not connect"
                } else {
                    "no answer"
                }
            ),
            Error::Decode {
                request_id, source, ..
            } => format!("cannot decode the answer (RequestId {request_id}): {source}"),
            Error::Credentials { source, .. } => source.to_string(),
            Error::Config { message, .. } => message.clone(),
            Error::Pagination { token, .. } => {
                format!("pagination did not advance (token {token:?} came back twice)")
            }
        }
    }

    /// The API error, when the service answered with one.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e.as_ref()),
            _ => None,
        }
    }

    /// The service's `Code`, when the service answered with one.
    pub fn code(&self) -> Option<&str> {
        self.api().map(ApiError::code)
    }

    pub fn request_id(&self) -> Option<&str> {
        self.api().map(|e| e.request_id.as_str())
    }

    pub fn action(&self) -> &str {
        match self {
            Error::Api(e) => &e.action,
            Error::Transport { action, .. }
            | Error::Timeout { action, .. }
            | Error::Decode { action, .. }
            | Error::Credentials { action, .. }
            | Error::Config { action, .. }
            | Error::Pagination { action, .. } => action,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.api().is_some_and(ApiError::is_not_found)
    }

    pub fn is_already_exists(&self) -> bool {
        self.api().is_some_and(ApiError::is_already_exists)
    }

    pub fn is_delete_conflict(&self) -> bool {
        self.api().is_some_and(ApiError::is_delete_conflict)
    }

    pub fn is_throttling(&self) -> bool {
        self.api().is_some_and(ApiError::is_throttling)
    }

    pub fn is_permission_denied(&self) -> bool {
        self.api().is_some_and(ApiError::is_permission_denied)
    }

    /// Transient: throttling, 5xx, timeouts and dropped connections, and a credential
    /// source that failed the same way (STS throttled, metadata service unreachable).
    /// Never: any other API error, an undecodable answer, a bad configuration.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Api(e) => e.is_retryable(),
            Error::Transport { .. } | Error::Timeout { .. } => true,
            Error::Credentials { source, .. } => source.is_transient(),
            Error::Decode { .. } | Error::Config { .. } | Error::Pagination { .. } => false,
        }
    }

    /// What the service asked us to wait (`x-acs-retry-after`).
    pub fn retry_after(&self) -> Option<Duration> {
        self.api().and_then(|e| e.retry_after)
    }

    /// Label for metrics (`immctl_api_calls_total{code=...}`): the API `Code`, or `Transport`,
    /// `Timeout`, `Decode`, `Credentials`, `Config`, `Pagination`.
    pub fn metric_label(&self) -> &str {
        match self {
            Error::Api(e) => &e.code,
            Error::Transport { .. } => "Transport",
            Error::Timeout { .. } => "Timeout",
            Error::Decode { .. } => "Decode",
            Error::Credentials { .. } => "Credentials",
            Error::Config { .. } => "Config",
            Error::Pagination { .. } => "Pagination",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> ApiError {
        ApiError {
            action: "CreateRole".into(),
            status,
            code: code.into(),
            message: "The role does already EXIST.".into(),
            request_id: "6A1F0000-1111-2222-3333-444455556666".into(),
            host_id: Some("ram.aliyuncs.com".into()),
            recommend: None,
            access_denied_detail: None,
            retry_after: None,
        }
    }

    #[test]
    fn display_names_action_status_code_message_and_request_id() {
        assert_eq!(
            api(409, "EntityAlreadyExists.Role").to_string(),
            "CreateRole: 409 EntityAlreadyExists.Role: The role does already EXIST. \
             (RequestId 6A1F0000-1111-2222-3333-444455556666)"
        );
    }

    /// Every variant shows as `<action>: <detail>`, and the detail never repeats the action:
    /// callers that name the action themselves (fetch errors, with the address) use the
    /// detail alone. The action here is one that also appears inside a message, so a
    /// string-prefix cut would be caught out.
    #[test]
    fn display_is_the_action_then_the_detail() {
        let decode_source = serde_json::from_str::<u8>("x").unwrap_err();
        let all = [
            Error::from(api(409, "EntityAlreadyExists.Role")),
            Error::Timeout {
                action: "GetRole".into(),
                after: Duration::from_secs(3),
                connecting: true,
            },
            Error::Decode {
                action: "GetRole".into(),
                request_id: "R1".into(),
                source: decode_source,
            },
            Error::Credentials {
                action: "GetRole".into(),
                source: CredentialsError::Chain(vec!["env: not set".into()]),
            },
            Error::Config {
                action: "GetRole".into(),
                message: "GetRole: endpoint has no host".into(),
            },
            Error::Pagination {
                action: "ListRoles".into(),
                token: "m1".into(),
            },
        ];
        let details = [
            "409 EntityAlreadyExists.Role: The role does already EXIST. \
             (RequestId 6A1F0000-1111-2222-3333-444455556666)",
            "could not connect within 3s",
            "cannot decode the answer (RequestId R1): expected value at line 1 column 1",
            "no credentials found; every source failed: env: not set",
            "GetRole: endpoint has no host",
            "pagination did not advance (token \"m1\" came back twice)",
        ];
        for (e, detail) in all.iter().zip(details) {
            assert_eq!(e.detail(), detail);
            assert_eq!(e.to_string(), format!("{}: {detail}", e.action()));
        }
        assert!(std::error::Error::source(&all[2]).is_some());
        assert!(std::error::Error::source(&all[0]).is_none());
    }

    /// The retry table: what is retried and what never is, by Code (and HTTP status only
    /// where the Code says nothing).
    #[test]
    fn classification_follows_the_code_not_the_status() {
        for (status, code) in [
            (400, "Throttling.User"),
            (400, "Throttling"),
            (400, "Throttling.Api"),
            (400, "Rejected.Throttling"),
            (429, "TooManyRequests"),
            (503, "ServiceUnavailable"),
            (500, "InternalError"),
            (500, "UnknownError"),
            (502, UNKNOWN_SERVER_ERROR),
            (504, "GatewayTimeout"),
        ] {
            assert!(
                api(status, code).is_retryable(),
                "{status} {code} should be retried"
            );
        }
        for (status, code) in [
            // validation
            (400, "InvalidParameter"),
            (400, "InvalidParameter.RoleName.Length"),
            (400, "MissingParameter"),
            (400, "MissingRoleName"),
            (400, "InvalidArgument"),
            (400, "MalformedPolicyDocument"),
            (400, "LimitExceededError"),
            // permission
            (403, "NoPermission"),
            (403, "Forbidden.RAM"),
            // not found
            (404, "EntityNotExist.Role"),
            (404, "EntityNotExist.Role.Policy"),
            (404, "ResourceNotFound"),
            // conflicts and limits
            (409, "EntityAlreadyExists.Role"),
            (409, "EntityAlreadyExists.Role.Policy"),
            (409, "DeleteConflict.Role.Policy"),
            (409, "LimitExceeded.Policy.Version"),
            // signature and credentials
            (400, "SignatureDoesNotMatch"),
            (400, "InvalidAccessKeySecret"),
            (400, "SignatureNonceUsed"),
            (400, "InvalidTimeStamp.Expired"),
            (404, "InvalidAccessKeyId.NotFound"),
            (400, "InvalidSecurityToken.Expired"),
            (400, "InvalidSecurityToken.MismatchWithAccessKey"),
            (404, UNKNOWN_SERVER_ERROR),
        ] {
            assert!(
                !api(status, code).is_retryable(),
                "{status} {code} must not be retried"
            );
            assert!(!Error::from(api(status, code)).is_retryable());
        }
        assert!(api(404, "EntityNotExist.Role.Policy").is_not_found());
        assert!(api(404, "ResourceNotFound").is_not_found());
        assert!(!api(404, "InvalidAccessKeyId.NotFound").is_not_found());
        assert!(api(404, "InvalidAccessKeyId.NotFound").is_bad_credentials());
        assert!(api(403, "NoPermission").is_permission_denied());
        assert!(api(409, "DeleteConflict.Policy.Version").is_delete_conflict());
        assert!(api(409, "EntityAlreadyExists.Role").is_already_exists());
        let mut with_header = api(400, "Whatever");
        with_header.retry_after = Some(Duration::from_secs(1));
        assert!(with_header.is_throttling() && with_header.is_retryable());

        // The failures around the API.
        let timeout = Error::Timeout {
            action: "GetRole".into(),
            after: Duration::from_secs(1),
            connecting: false,
        };
        assert!(timeout.is_retryable());
        let creds = |transient| Error::Credentials {
            action: "GetRole".into(),
            source: CredentialsError::Provider {
                provider: "ecs_ram_role".into(),
                message: "m".into(),
                transient,
            },
        };
        assert!(creds(true).is_retryable());
        assert!(!creds(false).is_retryable());
        let chain = Error::Credentials {
            action: "GetRole".into(),
            source: CredentialsError::Chain(vec!["env: not set".into()]),
        };
        assert!(!chain.is_retryable());
        let config = Error::Config {
            action: "GetRole".into(),
            message: "bad endpoint".into(),
        };
        assert!(!config.is_retryable());
        let pagination = Error::Pagination {
            action: "ListRoles".into(),
            token: "m".into(),
        };
        assert!(!pagination.is_retryable());
        let decode = Error::Decode {
            action: "GetRole".into(),
            request_id: "r".into(),
            source: serde_json::from_str::<u8>("x").unwrap_err(),
        };
        assert!(!decode.is_retryable());
    }

    #[test]
    fn bad_secret_gets_a_hint() {
        let text = api(400, "SignatureDoesNotMatch").to_string();
        assert!(text.contains("AccessKey secret does not match"), "{text}");
        let text = api(404, "InvalidAccessKeyId.NotFound").to_string();
        assert!(text.contains("AccessKey ID is unknown"), "{text}");
        assert_eq!(api(404, "EntityNotExist.Role").hint(), None);
    }
}
