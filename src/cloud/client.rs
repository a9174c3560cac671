//! The HTTP client for RAM / IMM / STS: one signed RPC call per attempt, retries, per-action
//! rate limits, bounded concurrency, metrics.
//!
//! Wire form (what the official SDKs send in V1 mode): `POST /` with an empty body and every
//! parameter in the query string: `Action`, `Version`, `Format=JSON`, `AccessKeyId`,
//! `SignatureMethod=HMAC-SHA1`, `SignatureVersion=1.0`, a 32-hex `SignatureNonce`, `Timestamp`
//! (UTC `YYYY-MM-DDThh:mm:ssZ`), `SecurityToken` with STS credentials, `RegionId` on IMM
//! calls, then `Signature` (see [`super::signer`]). Headers `x-acs-action` / `x-acs-version`
//! as the SDKs add them.
//!
//! Each attempt first waits for its action's token bucket ([`super::ratelimit`]), then for a
//! concurrency permit, so a slow bucket never holds a permit. Retries follow
//! [`super::retry::RetryPolicy`]; what is retryable is [`Error::is_retryable`]; an
//! `x-acs-retry-after` header (milliseconds, as the Tea runtimes read it) is a floor on the
//! wait. Every attempt is signed afresh (new `Timestamp` and `SignatureNonce`).
//!
//! The request URL carries the signature and the STS token: it is never logged, transport
//! errors are stripped of it, and error messages are scrubbed of the secret, the token and
//! the signature in every encoding ([`redact_all`]). Writes are retried on dropped
//! connections and 5xx like reads (as terraform does): a retried Create may then answer
//! `EntityAlreadyExists`, which the apply layer counts as done only when a read shows the
//! resource with our tags and the planned content (`apply::OpErrorKind::AlreadyExists`).
//! `CreatePolicyVersion` is the exception ([`NOT_RETRIED_BLINDLY`]): a repeat would make a
//! second identical version, so after a failure that may have been carried out (anything but
//! throttling) the client returns it at once, and the apply layer, which owns retry and
//! confirm policy, reads whether it was carried out before sending it again.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use serde::de::DeserializeOwned;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use super::credentials::{Credentials, CredentialsProvider};
use super::error::{ApiError, Error, Result, UNKNOWN_SERVER_ERROR};
use super::metrics::{Metrics, MetricsSnapshot, SUCCESS};
use super::ratelimit::{RateLimiter, RateLimits};
use super::retry::RetryPolicy;
use super::signer;
use super::wire::{ErrorEnvelope, IMM_VERSION, RAM_VERSION, STS_VERSION};

/// Writes that are not idempotent and answer no "already exists" when repeated: a retry
/// after a lost reply (5xx, dropped connection, timeout) would carry them out twice. The
/// client retries them after throttling only (which refuses before acting); any other
/// failure goes to the caller, which reads before it sends again (`apply::executor`).
pub const NOT_RETRIED_BLINDLY: &[&str] = &["CreatePolicyVersion"];

/// The three products, each with its API version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Product {
    Ram,
    Imm,
    Sts,
}

impl Product {
    pub fn version(self) -> &'static str {
        match self {
            Product::Ram => RAM_VERSION,
            Product::Imm => IMM_VERSION,
            Product::Sts => STS_VERSION,
        }
    }
}

/// Where each product is reached. An IMM override is used for every region (the client then
/// tells regions apart by `RegionId`), so one emulator can serve them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    /// Default `https://ram.aliyuncs.com` (global).
    pub ram: String,
    /// Default `https://sts.aliyuncs.com`.
    pub sts: String,
    /// `None`: `https://imm.<region>.aliyuncs.com`.
    pub imm: Option<String>,
}

impl Default for Endpoints {
    fn default() -> Self {
        Endpoints {
            ram: "https://ram.aliyuncs.com".into(),
            sts: super::credentials::DEFAULT_STS_ENDPOINT.into(),
            imm: None,
        }
    }
}

impl Endpoints {
    /// Every product at one base URL (the emulator).
    pub fn single(base: impl Into<String>) -> Self {
        let base = base.into();
        Endpoints {
            ram: base.clone(),
            sts: base.clone(),
            imm: Some(base),
        }
    }

    pub fn for_product(&self, product: Product, region: &str) -> String {
        match product {
            Product::Ram => self.ram.clone(),
            Product::Sts => self.sts.clone(),
            Product::Imm => self
                .imm
                .clone()
                .unwrap_or_else(|| format!("https://imm.{region}.aliyuncs.com")),
        }
    }
}

/// Everything a [`Client`] needs. `ClientConfig::new(credentials)` gives the defaults.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub endpoints: Endpoints,
    /// Default region for IMM calls that name none (settings' region).
    pub region: String,
    pub credentials: CredentialsProvider,
    pub rate_limits: RateLimits,
    pub retry: RetryPolicy,
    /// Default 5 s.
    pub connect_timeout: Duration,
    /// Whole request, per attempt. Default 30 s.
    pub request_timeout: Duration,
    /// HTTP requests in flight at once, over all actions. Default 16.
    pub max_concurrency: usize,
}

impl ClientConfig {
    pub fn new(credentials: CredentialsProvider) -> Self {
        ClientConfig {
            endpoints: Endpoints::default(),
            region: "cn-hangzhou".into(),
            credentials,
            rate_limits: RateLimits::default(),
            retry: RetryPolicy::default(),
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_concurrency: 16,
        }
    }
}

struct Inner {
    http: reqwest::Client,
    config: ClientConfig,
    limiter: RateLimiter,
    permits: Arc<Semaphore>,
    metrics: Metrics,
}

/// The RAM / IMM / STS client. Cheap to clone; clones share rate-limit buckets, the
/// concurrency limit, credentials and metrics. Typed operations live in [`super::ram`],
/// [`super::imm`] and [`super::sts`].
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.inner.config.endpoints)
            .field("region", &self.inner.config.region)
            .field("credentials", &self.inner.config.credentials)
            .finish_non_exhaustive()
    }
}

/// Query parameters of one call (business parameters only; the client adds the rest).
pub type Params = BTreeMap<String, String>;

/// `https://host` and `http://host:port` stay (without a trailing `/`); a bare
/// `host[:port]` (as settings accept it) gets `https://`.
pub fn endpoint_url(endpoint: &str) -> String {
    let e = endpoint.trim().trim_end_matches('/');
    if e.starts_with("http://") || e.starts_with("https://") {
        e.to_string()
    } else {
        format!("https://{e}")
    }
}

/// The full query string of a V1 call: business parameters plus the common ones, signed
/// when `credentials` are given (unsigned calls: `AssumeRoleWithOIDC`). Pure: `now` and
/// `nonce` (default: random 32 hex) are inputs. Returns the query and the signature (which
/// error messages must never echo).
pub fn sign_query(
    version: &str,
    action: &str,
    mut params: Params,
    credentials: Option<&Credentials>,
    region: Option<&str>,
    now: DateTime<Utc>,
    nonce: Option<String>,
) -> (String, Option<String>) {
    params.insert("Action".into(), action.into());
    params.insert("Version".into(), version.into());
    params.insert("Format".into(), "JSON".into());
    params.insert(
        "Timestamp".into(),
        now.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    );
    params.insert(
        "SignatureNonce".into(),
        nonce.unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string()),
    );
    if let Some(region) = region {
        params.insert("RegionId".into(), region.into());
    }
    let mut signature = None;
    if let Some(c) = credentials {
        params.insert("AccessKeyId".into(), c.access_key_id.clone());
        params.insert("SignatureMethod".into(), "HMAC-SHA1".into());
        params.insert("SignatureVersion".into(), "1.0".into());
        if let Some(t) = &c.security_token {
            params.insert("SecurityToken".into(), t.expose().to_string());
        }
        signature = Some(signer::sign_v1(
            "POST",
            &params,
            c.access_key_secret.expose(),
        ));
    }
    let mut query = signer::canonicalized_query_v1(&params);
    if let Some(s) = &signature {
        query.push_str("&Signature=");
        query.push_str(&signer::percent_encode(s));
    }
    (query, signature)
}

/// [`sign_query`] without the signature.
pub fn signed_query(
    version: &str,
    action: &str,
    params: Params,
    credentials: Option<&Credentials>,
    region: Option<&str>,
    now: DateTime<Utc>,
    nonce: Option<String>,
) -> String {
    sign_query(version, action, params, credentials, region, now, nonce).0
}

/// `x-acs-retry-after`: a positive whole number of **milliseconds**, as the official Tea
/// runtimes read it (aliyun/darabonba-openapi: the Java `ThrottlingBackoffTest` waits ~80 ms
/// for `80`; the C# `GetThrottlingTimeLeft` returns `2000` for `2000`). Zero, negative or
/// non-numeric values are ignored, as there.
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get("x-acs-retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|n| *n > 0)
        .map(Duration::from_millis)
}

/// The text between `<tag>` and `</tag>` in a flat XML error body.
fn xml_text(body: &str, tag: &str) -> Option<String> {
    let start = body.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + body[start..].find(&format!("</{tag}>"))?;
    Some(body[start..end].trim().to_string())
}

/// Builds the [`ApiError`] of a non-2xx answer, whatever the body:
/// - the JSON envelope (`Code`/`code`, `Message`/`message`, `RequestId`/`requestId`,
///   `HostId`, `Recommend`, `AccessDeniedDetail`), kept whole;
/// - an XML `<Error>` with `<Code>` (what the Tea V3 path parses);
/// - anything else (an HTML page from a proxy, a cut body): code `SDK.UnknownServerError`
///   (the official SDK's name) with the start of the body as the message.
///
/// A missing `RequestId` is taken from the `x-acs-request-id` header. `redact` lists the
/// strings no message may carry (the secret, the STS token, the signature in use): each is
/// replaced by `***`, raw and percent-encoded (a proxy page may echo the request URL). The
/// string to sign that `SignatureDoesNotMatch` echoes (it holds the `SecurityToken`) is cut
/// off.
pub fn api_error(
    action: &str,
    status: u16,
    headers: &HeaderMap,
    body: &[u8],
    redact: &[&str],
) -> ApiError {
    let retry_after = retry_after(headers);
    let header_request_id = headers
        .get("x-acs-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = String::from_utf8_lossy(body);
    let xml_code = if text.trim_start().starts_with('<') {
        xml_text(&text, "Code").filter(|c| !c.is_empty())
    } else {
        None
    };
    let mut e = match (serde_json::from_slice::<ErrorEnvelope>(body), xml_code) {
        (Ok(env), _) => ApiError {
            action: action.to_string(),
            status,
            code: env.code,
            message: env.message,
            request_id: env.request_id,
            host_id: env.host_id,
            recommend: env.recommend,
            access_denied_detail: env.access_denied_detail,
            retry_after,
        },
        (Err(_), Some(code)) => ApiError {
            action: action.to_string(),
            status,
            code,
            message: xml_text(&text, "Message").unwrap_or_default(),
            request_id: xml_text(&text, "RequestId").unwrap_or_default(),
            host_id: xml_text(&text, "HostId"),
            recommend: xml_text(&text, "Recommend"),
            access_denied_detail: None,
            retry_after,
        },
        (Err(_), None) => {
            let snippet: String = text.chars().take(200).collect();
            let snippet = snippet.split_whitespace().collect::<Vec<_>>().join(" ");
            ApiError {
                action: action.to_string(),
                status,
                code: UNKNOWN_SERVER_ERROR.to_string(),
                message: if snippet.is_empty() {
                    "empty answer".to_string()
                } else {
                    format!("answer is not an error envelope: {snippet}")
                },
                request_id: String::new(),
                host_id: None,
                recommend: None,
                access_denied_detail: None,
                retry_after,
            }
        }
    };
    if e.request_id.is_empty() {
        e.request_id = header_request_id;
    }
    if let Some(i) = e.message.to_ascii_lowercase().find("string to sign") {
        let kept = e.message[..i].trim_end_matches([' ', ':', ',', '.']);
        let kept = kept
            .strip_suffix(" server")
            .unwrap_or(kept)
            .trim_end_matches([' ', ':', ',', '.']);
        e.message = format!("{kept}.");
    }
    e.message = redact_all(&e.message, redact);
    e
}

/// `text` with every `secret` (raw, RFC 3986- and form-encoded) replaced by `***`. Strings
/// shorter than 4 characters are left alone (they would match everywhere).
pub fn redact_all(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        let encoded = signer::percent_encode(s);
        let form = encoded.replace("%20", "+");
        for form in [s.to_string(), encoded, form] {
            out = out.replace(&form, "***");
        }
    }
    out
}

/// Whether a call is signed with the client's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signing {
    Signed,
    /// `AssumeRoleWithOIDC`: no `AccessKeyId`, no `Signature` (the OIDC token is the proof).
    Anonymous,
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .user_agent(concat!("immctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Config {
                action: "client".into(),
                message: format!("cannot build the HTTP client: {e}"),
            })?;
        tracing::debug!(
            credentials = %config.credentials.name(),
            ram = %config.endpoints.ram,
            sts = %config.endpoints.sts,
            imm = ?config.endpoints.imm,
            region = %config.region,
            "cloud client"
        );
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                limiter: RateLimiter::new(config.rate_limits.clone()),
                permits: Arc::new(Semaphore::new(config.max_concurrency.max(1))),
                metrics: Metrics::default(),
                config,
            }),
        })
    }

    /// A client with a fixed AccessKey against one endpoint (the emulator); defaults
    /// otherwise (quotas on, retries on).
    pub fn with_static_credentials(
        endpoint: &str,
        access_key_id: &str,
        access_key_secret: &str,
    ) -> Result<Self> {
        let mut config = ClientConfig::new(CredentialsProvider::static_ak(
            access_key_id,
            access_key_secret,
        ));
        config.endpoints = Endpoints::single(endpoint);
        Client::new(config)
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// The default region (for IMM calls).
    pub fn region(&self) -> &str {
        &self.inner.config.region
    }

    /// Counters per action (calls, retries, answers by code, errors by code).
    pub fn metrics(&self) -> MetricsSnapshot {
        self.inner.metrics.snapshot()
    }

    /// One logical call: rate limit, sign, send, decode, retry.
    /// `region` is sent as `RegionId` (always given for IMM).
    pub async fn call<T: DeserializeOwned>(
        &self,
        product: Product,
        action: &'static str,
        region: Option<&str>,
        params: Params,
    ) -> Result<T> {
        self.call_with(product, action, region, params, Signing::Signed)
            .await
    }

    /// [`Client::call`] without signing (`AssumeRoleWithOIDC`).
    pub(crate) async fn call_anonymous<T: DeserializeOwned>(
        &self,
        product: Product,
        action: &'static str,
        params: Params,
    ) -> Result<T> {
        self.call_with(product, action, None, params, Signing::Anonymous)
            .await
    }

    /// The retry loop (but see [`NOT_RETRIED_BLINDLY`]). Time is bounded twice: at most
    /// `max_attempts` attempts, and at most `max_elapsed` spent failing: from the start of
    /// the first attempt, attempts and backoff sleeps count, the time a retry queues for its
    /// rate-limit token or a concurrency permit does not (that is this client's own backlog,
    /// not the service failing; counting it would make a deep queue give up on transient
    /// errors). Each
    /// retry's timeout is cut to what is left, so the time spent is at most
    /// `max(request_timeout, max_elapsed)`.
    async fn call_with<T: DeserializeOwned>(
        &self,
        product: Product,
        action: &'static str,
        region: Option<&str>,
        params: Params,
        signing: Signing,
    ) -> Result<T> {
        let inner = &self.inner;
        let policy = &inner.config.retry;
        inner.metrics.call(action);
        // When the first attempt started, and how long retries queued since.
        let mut start: Option<Instant> = None;
        let mut queued = Duration::ZERO;
        let spent = |start: Option<Instant>, queued: Duration| {
            start.map_or(Duration::ZERO, |s| s.elapsed().saturating_sub(queued))
        };
        let mut attempt = 0u32;
        let mut last_err: Option<Error> = None;
        loop {
            attempt += 1;
            let queue_start = Instant::now();
            inner.limiter.acquire(product, action).await;
            let result = {
                let _permit = inner
                    .permits
                    .acquire()
                    .await
                    .expect("the semaphore is never closed");
                let timeout = match start {
                    None => {
                        start = Some(Instant::now());
                        inner.config.request_timeout
                    }
                    Some(_) => {
                        queued += queue_start.elapsed();
                        let left = policy.max_elapsed.saturating_sub(spent(start, queued));
                        if left < MIN_ATTEMPT_TIME {
                            let err = last_err.expect("a retry follows a failure");
                            return Err(self.give_up(action, attempt - 1, err));
                        }
                        inner.config.request_timeout.min(left)
                    }
                };
                tracing::trace!(action, attempt, "sending");
                self.attempt::<T>(product, action, region, params.clone(), signing, timeout)
                    .await
            };
            let label = match &result {
                Ok(_) => SUCCESS,
                Err(e) => e.metric_label(),
            };
            inner.metrics.attempt(action, label, attempt > 1);
            let err = match result {
                Ok(v) => return Ok(v),
                Err(e) => e,
            };
            // Throttling refuses before acting; any other failure of such a write may have
            // been carried out, and only the caller can read whether it was.
            let blind = NOT_RETRIED_BLINDLY.contains(&action) && !err.is_throttling();
            if err.is_retryable() && !blind && attempt < policy.max_attempts {
                let delay = policy.delay(attempt, err.is_throttling(), err.retry_after());
                // Another attempt needs time for its backoff and for an answer.
                if spent(start, queued) + delay + MIN_ATTEMPT_TIME <= policy.max_elapsed {
                    tracing::debug!(
                        action,
                        attempt,
                        code = err.metric_label(),
                        delay_ms = delay.as_millis() as u64,
                        "retrying"
                    );
                    last_err = Some(err);
                    tokio::time::sleep(delay).await;
                    continue;
                }
            }
            return Err(self.give_up(action, attempt, err));
        }
    }

    fn give_up(&self, action: &'static str, attempts: u32, err: Error) -> Error {
        tracing::debug!(
            action,
            attempts,
            code = err.metric_label(),
            retryable = err.is_retryable(),
            "call failed"
        );
        self.inner.metrics.error(action, err.metric_label());
        err
    }

    async fn attempt<T: DeserializeOwned>(
        &self,
        product: Product,
        action: &'static str,
        region: Option<&str>,
        params: Params,
        signing: Signing,
        timeout: Duration,
    ) -> Result<T> {
        let inner = &self.inner;
        let creds = match signing {
            Signing::Signed => Some(inner.config.credentials.credentials().await.map_err(
                |source| Error::Credentials {
                    action: action.to_string(),
                    source,
                },
            )?),
            Signing::Anonymous => None,
        };
        let endpoint = endpoint_url(
            &inner
                .config
                .endpoints
                .for_product(product, region.unwrap_or(&inner.config.region)),
        );
        let (query, signature) = sign_query(
            product.version(),
            action,
            params,
            creds.as_ref(),
            region,
            Utc::now(),
            None,
        );
        let url = format!("{endpoint}/?{query}");
        let transport = |e: reqwest::Error| {
            if e.is_timeout() {
                let connecting = e.is_connect();
                Error::Timeout {
                    action: action.to_string(),
                    after: if connecting {
                        inner.config.connect_timeout.min(timeout)
                    } else {
                        timeout
                    },
                    connecting,
                }
            } else if e.is_builder() {
                Error::Config {
                    action: action.to_string(),
                    message: format!(
                        "cannot build the request to {endpoint}: {}",
                        e.without_url()
                    ),
                }
            } else {
                Error::Transport {
                    action: action.to_string(),
                    source: e.without_url(),
                }
            }
        };
        let resp = inner
            .http
            .post(url)
            .timeout(timeout)
            .header("x-acs-action", action)
            .header("x-acs-version", product.version())
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_LENGTH, "0")
            .send()
            .await
            .map_err(transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await.map_err(transport)?;
        if !status.is_success() {
            let mut redact: Vec<&str> = Vec::new();
            if let Some(c) = &creds {
                redact.push(c.access_key_secret.expose());
                if let Some(t) = &c.security_token {
                    redact.push(t.expose());
                }
            }
            if let Some(s) = &signature {
                redact.push(s);
            }
            return Err(Error::from(api_error(
                action,
                status.as_u16(),
                &headers,
                &body,
                &redact,
            )));
        }
        serde_json::from_slice(&body).map_err(|source| Error::Decode {
            action: action.to_string(),
            request_id: serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    v.get("RequestId")
                        .and_then(|r| r.as_str())
                        .map(str::to_string)
                })
                .or_else(|| {
                    headers
                        .get("x-acs-request-id")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                })
                .unwrap_or_default(),
            source,
        })
    }
}

/// A retry is not started when less than this would be left of `max_elapsed` for it.
const MIN_ATTEMPT_TIME: Duration = Duration::from_millis(50);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::wire::Secret;

    fn creds(token: Option<&str>) -> Credentials {
        Credentials {
            access_key_id: "testid".into(),
            access_key_secret: Secret::new("testsecret"),
            security_token: token.map(Secret::new),
            expiration: None,
            source: "test".into(),
        }
    }

    fn decode(query: &str) -> BTreeMap<String, String> {
        query
            .split('&')
            .map(|kv| {
                let (k, v) = kv.split_once('=').unwrap();
                (
                    percent_encoding::percent_decode_str(k)
                        .decode_utf8()
                        .unwrap()
                        .into_owned(),
                    percent_encoding::percent_decode_str(v)
                        .decode_utf8()
                        .unwrap()
                        .into_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn query_reproduces_the_documented_signature() {
        let mut p = Params::new();
        p.insert("RoleName".into(), "my-role".into());
        let now = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let q = signed_query(
            RAM_VERSION,
            "GetRole",
            p,
            Some(&creds(None)),
            None,
            now,
            Some("3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf".into()),
        );
        let params = decode(&q);
        // reference/alibaba-api.md §1.3
        assert_eq!(params["Signature"], "nkiQIqBYbI9/bSEQKmUzFlyUzr0=");
        assert!(
            q.ends_with("&Signature=nkiQIqBYbI9%2FbSEQKmUzFlyUzr0%3D"),
            "{q}"
        );
    }

    #[test]
    fn query_carries_the_common_parameters_like_the_sdks() {
        let mut p = Params::new();
        p.insert("Description".into(), "a b*".into());
        let q = signed_query(
            IMM_VERSION,
            "UpdateProject",
            p,
            Some(&creds(Some("tok-en"))),
            Some("cn-beijing"),
            Utc::now(),
            None,
        );
        assert!(q.contains("Description=a%20b%2A"), "{q}");
        let params = decode(&q);
        assert_eq!(params["Format"], "JSON");
        assert_eq!(params["SignatureMethod"], "HMAC-SHA1");
        assert_eq!(params["SignatureVersion"], "1.0");
        assert_eq!(params["SecurityToken"], "tok-en");
        assert_eq!(params["RegionId"], "cn-beijing");
        assert_eq!(params["Version"], "2020-09-30");
        let nonce = &params["SignatureNonce"];
        assert!(nonce.len() == 32 && nonce.chars().all(|c| c.is_ascii_hexdigit()));
        let ts = &params["Timestamp"];
        assert!(
            chrono::NaiveDateTime::parse_from_str(ts, "%Y-%m-%dT%H:%M:%SZ").is_ok(),
            "{ts}"
        );
        // The signature verifies over every other parameter.
        let mut signed = params.clone();
        let sig = signed.remove("Signature").unwrap();
        assert_eq!(signer::sign_v1("POST", &signed, "testsecret"), sig);
    }

    #[test]
    fn unsigned_query_has_no_key_and_no_signature() {
        let q = signed_query(
            STS_VERSION,
            "AssumeRoleWithOIDC",
            Params::new(),
            None,
            None,
            Utc::now(),
            None,
        );
        let params = decode(&q);
        assert!(!params.contains_key("AccessKeyId") && !params.contains_key("Signature"));
    }

    /// The query reproduces what the Tea SDK (V1 mode) signed in the captured requests, for
    /// the same parameters, nonce and time (tests/data/vectors/sdk-requests.json).
    #[test]
    fn signatures_match_the_captured_sdk_requests() {
        let text = include_str!("../../tests/data/vectors/sdk-requests.json");
        let doc: serde_json::Value = serde_json::from_str(text).unwrap();
        let mut checked = 0;
        for call in doc["calls"].as_array().unwrap() {
            let family = call["family"].as_str().unwrap();
            if family != "tea-v1" && family != "tea-v1-sts" {
                continue;
            }
            let secret = if family.ends_with("-sts") {
                doc["credentials"]["sts"]["access_key_secret"]
                    .as_str()
                    .unwrap()
            } else {
                doc["credentials"]["access_key_secret"].as_str().unwrap()
            }
            .to_string();
            for req in call["requests"].as_array().unwrap() {
                let mut params: BTreeMap<String, String> = req["query"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                let sig = params.remove("Signature").unwrap();
                assert_eq!(signer::sign_v1("POST", &params, &secret), sig);
                // Our query for the same inputs carries the same signature.
                let action = params.remove("Action").unwrap();
                let version = params.remove("Version").unwrap();
                let ts = params.remove("Timestamp").unwrap();
                let nonce = params.remove("SignatureNonce").unwrap();
                let id = params.remove("AccessKeyId").unwrap();
                let token = params.remove("SecurityToken");
                for k in ["Format", "SignatureMethod", "SignatureVersion"] {
                    params.remove(k);
                }
                let c = Credentials {
                    access_key_id: id,
                    access_key_secret: Secret::new(secret.clone()),
                    security_token: token.map(Secret::new),
                    expiration: None,
                    source: "t".into(),
                };
                let now = DateTime::parse_from_rfc3339(&ts)
                    .unwrap()
                    .with_timezone(&Utc);
                let ours = decode(&signed_query(
                    &version,
                    &action,
                    params,
                    Some(&c),
                    None,
                    now,
                    Some(nonce),
                ));
                // Same parameter names and values as the SDK sent, except `Format`: Tea
                // sends `json`, the legacy SDK `JSON`; the service takes either.
                let captured: BTreeMap<String, String> = req["query"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                    .collect();
                assert_eq!(
                    ours.keys().collect::<Vec<_>>(),
                    captured.keys().collect::<Vec<_>>()
                );
                for (k, v) in &captured {
                    if k == "Format" {
                        assert!(ours[k].eq_ignore_ascii_case(v));
                    } else if k != "Signature" {
                        assert_eq!(&ours[k], v, "{action} {k}");
                    }
                }
                let mut unsigned = ours.clone();
                let sig = unsigned.remove("Signature").unwrap();
                assert_eq!(signer::sign_v1("POST", &unsigned, &secret), sig);
                checked += 1;
            }
        }
        assert!(checked >= 10, "checked {checked} captured requests");
    }

    #[test]
    fn signature_mismatch_message_loses_the_string_to_sign_and_secrets() {
        let body = br#"{"RequestId":"R1","Code":"SignatureDoesNotMatch","Message":"Specified signature is not matched with our calculation. server string to sign is:POST&%2F&AccessKeyId%3Did%26SecurityToken%3Dtok-secret"}"#;
        let e = api_error("GetRole", 400, &HeaderMap::new(), body, &["tok-secret"]);
        assert_eq!(
            e.message,
            "Specified signature is not matched with our calculation."
        );
        let body = br#"{"RequestId":"R2","Code":"X","Message":"echo sekrit-value here"}"#;
        let e = api_error("GetRole", 400, &HeaderMap::new(), body, &["sekrit-value"]);
        assert_eq!(e.message, "echo *** here");
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    /// The error bodies of `error_body_parsing_observed` in sdk-requests.json, and the
    /// canonical envelope of `error_behaviour_observed`.
    #[test]
    fn every_error_body_shape_gives_a_typed_error() {
        // The canonical envelope, kept whole.
        let body = br#"{"Code":"EntityNotExist.Role","Message":"The role does not exist: imm-role.","HostId":"ram.aliyuncs.com","Recommend":"https://api.aliyun.com/troubleshoot?q=EntityNotExist.Role&product=Ram","RequestId":"00000000-0000-0000-0000-000000000001"}"#;
        let e = api_error("GetRole", 404, &HeaderMap::new(), body, &[]);
        assert_eq!(e.code, "EntityNotExist.Role");
        assert_eq!(e.status, 404);
        assert_eq!(e.message, "The role does not exist: imm-role.");
        assert_eq!(e.request_id, "00000000-0000-0000-0000-000000000001");
        assert_eq!(e.host_id.as_deref(), Some("ram.aliyuncs.com"));
        assert!(e.recommend.as_deref().unwrap().contains("troubleshoot"));
        assert!(e.is_not_found() && !e.is_retryable());

        // Lower-case keys (what the Tea SDK also accepts).
        let body = br#"{"code": "lower.case.Code", "message": "m", "requestId": "r"}"#;
        let e = api_error("GetRole", 400, &HeaderMap::new(), body, &[]);
        assert_eq!(
            (e.code.as_str(), e.message.as_str(), e.request_id.as_str()),
            ("lower.case.Code", "m", "r")
        );

        // An XML <Error> (text/xml), as the Tea V3 path parses it.
        let body = br#"<?xml version="1.0" encoding="UTF-8"?><Error><RequestId>r</RequestId><Code>XmlCode</Code><Message>m</Message></Error>"#;
        let e = api_error(
            "GetRole",
            400,
            &headers(&[("content-type", "text/xml;charset=utf-8")]),
            body,
            &[],
        );
        assert_eq!(
            (e.code.as_str(), e.message.as_str(), e.request_id.as_str()),
            ("XmlCode", "m", "r")
        );

        // HTML from a proxy: the SDK's SDK.UnknownServerError, the body's start as message,
        // the RequestId from the header; a 404 is final, a 502 is retried.
        let e = api_error(
            "GetRole",
            404,
            &headers(&[("x-acs-request-id", "HDR-1")]),
            b"<html>not found</html>",
            &[],
        );
        assert_eq!(e.code, UNKNOWN_SERVER_ERROR);
        assert_eq!(
            e.message,
            "answer is not an error envelope: <html>not found</html>"
        );
        assert_eq!(e.request_id, "HDR-1");
        assert!(!e.is_retryable());
        let e = api_error(
            "GetRole",
            502,
            &HeaderMap::new(),
            b"<html>\n bad gateway\n</html>",
            &[],
        );
        assert!(e.is_retryable());
        let e = api_error("GetRole", 503, &HeaderMap::new(), b"", &[]);
        assert_eq!(e.message, "empty answer");
        assert!(e.is_retryable());
    }

    #[test]
    fn retry_after_is_read_in_milliseconds_like_the_tea_runtimes() {
        let e = api_error(
            "GetRole",
            400,
            &headers(&[("x-acs-retry-after", "80")]),
            br#"{"Code":"Throttling","Message":"m","RequestId":"r"}"#,
            &[],
        );
        assert_eq!(e.retry_after, Some(Duration::from_millis(80)));
        assert!(e.is_throttling() && e.is_retryable());
        for bad in ["0", "", "invalid", "-5"] {
            assert_eq!(
                retry_after(&headers(&[("x-acs-retry-after", bad)])),
                None,
                "{bad:?}"
            );
        }
        // Any error carrying the header is throttling (the Tea runtime's rule).
        let e = api_error(
            "GetRole",
            400,
            &headers(&[("X-Acs-Retry-After", "5")]),
            br#"{"Code":"Whatever","Message":"m","RequestId":"r"}"#,
            &[],
        );
        assert!(e.is_throttling());
    }

    /// A proxy page that echoes the request URL must not carry the signature, the token or
    /// the secret, in any encoding.
    #[test]
    fn an_echoed_request_url_is_redacted() {
        let token = "CAIS+tok/en=value";
        let (query, sig) = sign_query(
            RAM_VERSION,
            "GetRole",
            Params::new(),
            Some(&creds(Some(token))),
            None,
            Utc::now(),
            None,
        );
        let sig = sig.unwrap();
        let body = format!("<html>414 URI too long: /?{query} (secret testsecret)</html>");
        let e = api_error(
            "GetRole",
            414,
            &HeaderMap::new(),
            body.as_bytes(),
            &["testsecret", token, &sig],
        );
        let shown = format!("{e} {e:?}");
        for s in [
            token.to_string(),
            signer::percent_encode(token),
            sig.clone(),
            signer::percent_encode(&sig),
            "testsecret".to_string(),
        ] {
            assert!(!shown.contains(&s), "{s:?} in {shown}");
        }
        assert!(shown.contains("SecurityToken=***"), "{shown}");
    }

    #[test]
    fn endpoints_get_a_scheme_and_lose_the_trailing_slash() {
        assert_eq!(endpoint_url("ram.aliyuncs.com"), "https://ram.aliyuncs.com");
        assert_eq!(endpoint_url("127.0.0.1:8080/"), "https://127.0.0.1:8080");
        assert_eq!(
            endpoint_url("http://127.0.0.1:8080/"),
            "http://127.0.0.1:8080"
        );
        assert_eq!(
            endpoint_url("https://sts.aliyuncs.com"),
            "https://sts.aliyuncs.com"
        );
    }

    #[test]
    fn imm_endpoint_is_per_region_unless_overridden() {
        let e = Endpoints::default();
        assert_eq!(
            e.for_product(Product::Imm, "cn-shanghai"),
            "https://imm.cn-shanghai.aliyuncs.com"
        );
        assert_eq!(
            e.for_product(Product::Ram, "cn-shanghai"),
            "https://ram.aliyuncs.com"
        );
        let s = Endpoints::single("http://127.0.0.1:9");
        assert_eq!(
            s.for_product(Product::Imm, "cn-shanghai"),
            "http://127.0.0.1:9"
        );
    }
}
