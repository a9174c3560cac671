//! Where the AccessKey comes from: the default chain of the official SDKs
//! (reference/credentials.md §1, §9) and each provider in it.
//!
//! Order: environment (`ALIBABA_CLOUD_ACCESS_KEY_ID` / `_SECRET` / `_SECURITY_TOKEN`) → OIDC
//! (only when `ALIBABA_CLOUD_ROLE_ARN`, `ALIBABA_CLOUD_OIDC_PROVIDER_ARN` and
//! `ALIBABA_CLOUD_OIDC_TOKEN_FILE` are all set; STS `AssumeRoleWithOIDC`) → the aliyun CLI
//! profile file `~/.aliyun/config.json` (modes `AK`, `StsToken`, `RamRoleArn`, `EcsRamRole`,
//! `OIDC`, `ChainableRamRoleArn`) → the INI file `~/.alibabacloud/credentials.ini` → ECS
//! instance metadata (token header, IMDSv1 fallback) → `ALIBABA_CLOUD_CREDENTIALS_URI`.
//! The chain is sticky: the first source that yields credentials is used from then on. A
//! source that fails for good is skipped (as the SDKs do); one the user configured that
//! fails *for now* (STS throttled or unreachable) ends the walk with a transient error that
//! the client retries: falling through to the next source would act as another identity.
//! The ECS metadata service is only probed (when no role name is configured), so its
//! failures always mean "not on ECS" and the walk moves on.
//!
//! Temporary credentials are refreshed 15 minutes before `Expiration`, judged by a
//! [`Clock`] (the system's, or a test's). STS and URI sources use the *strict* policy (a
//! failed refresh of a stale credential is an error); the ECS source the *lenient* one (the
//! stale value is served and the next attempt pushed back). The STS and metadata endpoints
//! are overridable (the `sts_endpoint` and `ecs_metadata_endpoint` fields of [`ChainConfig`]).
//!
//! This module (with `settings.rs`) is the only place that reads the environment, and only
//! in [`ChainConfig::from_env`]. The chosen source is logged at debug level; secrets never
//! are: [`Credentials`] holds them in [`Secret`], whose `Debug` prints `***`, and error
//! messages carry codes and request ids, never a request.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;

pub use super::wire::Secret;
use super::wire::{AssumeRoleResponse, STS_VERSION};

/// Default STS endpoint.
pub const DEFAULT_STS_ENDPOINT: &str = "https://sts.aliyuncs.com";
/// Default ECS metadata endpoint.
pub const DEFAULT_ECS_METADATA_ENDPOINT: &str = "http://100.100.100.200";
/// Temporary credentials are refreshed this long before they expire.
pub const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(15 * 60);

/// A usable AccessKey (with an STS token when temporary). `Debug` hides the secret parts.
#[derive(Debug, Clone, PartialEq)]
pub struct Credentials {
    pub access_key_id: String,
    pub access_key_secret: Secret,
    pub security_token: Option<Secret>,
    /// `None` for long-lived keys.
    pub expiration: Option<DateTime<Utc>>,
    /// Where they came from, e.g. `env`, `cli_profile/RamRoleArn`, `ecs_ram_role`.
    pub source: String,
}

/// Why no credentials could be had. Never carries a secret.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CredentialsError {
    /// Every source of the default chain failed (each one's reason, in chain order).
    #[error("no credentials found; every source failed: {}", .0.join("; "))]
    Chain(Vec<String>),
    /// One source failed.
    #[error("credentials from {provider}: {message}")]
    Provider {
        provider: String,
        message: String,
        /// The source may well answer next time (STS throttled or 5xx, metadata service or
        /// STS unreachable): the client retries the call like any transient failure.
        transient: bool,
    },
}

impl CredentialsError {
    /// See [`CredentialsError::Provider::transient`]; a failed chain never is.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            CredentialsError::Provider {
                transient: true,
                ..
            }
        )
    }
}

/// A permanent failure of `provider`.
fn perr(provider: &str, message: impl Into<String>) -> CredentialsError {
    CredentialsError::Provider {
        provider: provider.to_string(),
        message: message.into(),
        transient: false,
    }
}

/// A failure of `provider` that may pass (network, throttling, 5xx).
fn terr(provider: &str, message: impl Into<String>) -> CredentialsError {
    CredentialsError::Provider {
        provider: provider.to_string(),
        message: message.into(),
        transient: true,
    }
}

/// What time it is, for deciding when temporary credentials go stale. The system clock by
/// default; tests pass a controllable one ([`CredentialsProvider::with_clock`]).
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>);

impl Clock {
    pub fn system() -> Self {
        Clock(Arc::new(Utc::now))
    }
    pub fn new(now: impl Fn() -> DateTime<Utc> + Send + Sync + 'static) -> Self {
        Clock(Arc::new(now))
    }
    pub fn now(&self) -> DateTime<Utc> {
        (self.0)()
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Clock")
    }
}

/// Role assumption through STS `AssumeRole`, signed with `source`'s credentials.
#[derive(Debug, Clone)]
pub struct RoleArnConfig {
    pub role_arn: String,
    /// Default `immctl-<unix seconds>`.
    pub role_session_name: Option<String>,
    /// Default 3600; at least 900.
    pub duration_seconds: Option<u32>,
    pub policy: Option<String>,
    pub external_id: Option<String>,
    /// Default [`DEFAULT_STS_ENDPOINT`].
    pub sts_endpoint: Option<String>,
}

/// Role assumption through STS `AssumeRoleWithOIDC` (unsigned; RRSA on ACK).
#[derive(Debug, Clone)]
pub struct OidcConfig {
    pub role_arn: String,
    pub oidc_provider_arn: String,
    /// Re-read on every refresh.
    pub oidc_token_file: PathBuf,
    pub role_session_name: Option<String>,
    pub duration_seconds: Option<u32>,
    pub policy: Option<String>,
    pub sts_endpoint: Option<String>,
}

/// The ECS RAM role through the instance metadata service.
#[derive(Debug, Clone, Default)]
pub struct EcsConfig {
    /// Default [`DEFAULT_ECS_METADATA_ENDPOINT`].
    pub endpoint: Option<String>,
    /// Read from the metadata service when `None`.
    pub role_name: Option<String>,
    /// `true`: the IMDSv2 token is mandatory (no IMDSv1 fallback).
    pub imdsv1_disabled: bool,
}

/// Inputs of the default chain: the environment (as a map, so tests pass their own), the
/// home directory, and endpoint overrides (for loopback tests).
///
/// `Debug` prints the names of the variables only: their values include the AccessKey
/// secret and the STS token.
#[derive(Clone, Default)]
pub struct ChainConfig {
    pub vars: BTreeMap<String, String>,
    pub home: Option<PathBuf>,
    /// Overrides every STS endpoint the chain would use.
    pub sts_endpoint: Option<String>,
    /// Overrides the ECS metadata endpoint.
    pub ecs_metadata_endpoint: Option<String>,
}

impl std::fmt::Debug for ChainConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainConfig")
            .field("vars", &self.vars.keys().collect::<Vec<_>>())
            .field("home", &self.home)
            .field("sts_endpoint", &self.sts_endpoint)
            .field("ecs_metadata_endpoint", &self.ecs_metadata_endpoint)
            .finish()
    }
}

impl ChainConfig {
    /// The process environment (`ALIBABA_CLOUD_*`) and `$HOME`. The only env read here.
    pub fn from_env() -> Self {
        // `vars_os`: `std::env::vars()` panics on any variable that is not UTF-8. Such a
        // value of ours is taken lossily (a credential then fails to verify, with the API's
        // error), never printed.
        let vars = std::env::vars_os()
            .filter_map(|(k, v)| {
                let k = k.into_string().ok()?;
                k.starts_with("ALIBABA_CLOUD_")
                    .then(|| (k, v.to_string_lossy().into_owned()))
            })
            .collect();
        let home = std::env::var_os("HOME")
            .or_else(|| std::env::var_os("HOMEPATH"))
            .map(PathBuf::from);
        ChainConfig {
            vars,
            home,
            sts_endpoint: None,
            ecs_metadata_endpoint: None,
        }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn flag(&self, name: &str) -> bool {
        self.var(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }

    /// `ALIBABA_CLOUD_ECS_METADATA_DISABLED=true` also refuses a profile that names the ECS
    /// role explicitly (as the SDK refuses to build the provider).
    fn ecs_allowed(&self, provider: &str) -> Result<(), CredentialsError> {
        if self.flag("ALIBABA_CLOUD_ECS_METADATA_DISABLED") {
            Err(perr(
                provider,
                "the ECS metadata service is disabled by ALIBABA_CLOUD_ECS_METADATA_DISABLED",
            ))
        } else {
            Ok(())
        }
    }

    /// STS endpoint: override, else `ALIBABA_CLOUD_STS_REGION` (+ VPC), else the profile's
    /// region, else the global one.
    fn sts_endpoint(&self, profile_region: Option<&str>, profile_vpc: bool) -> String {
        if let Some(e) = &self.sts_endpoint {
            return e.clone();
        }
        let vpc = profile_vpc || self.flag("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED");
        match self.var("ALIBABA_CLOUD_STS_REGION").or(profile_region) {
            Some(region) if vpc => format!("https://sts-vpc.{region}.aliyuncs.com"),
            Some(region) => format!("https://sts.{region}.aliyuncs.com"),
            None => DEFAULT_STS_ENDPOINT.to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StalePolicy {
    Strict,
    Lenient,
}

/// One source of the default chain.
#[derive(Clone)]
struct Candidate {
    name: String,
    /// `Err`: why the source could not even be built (variable unset, file missing, ...).
    provider: Result<CredentialsProvider, CredentialsError>,
    /// Tried on the chance it applies (the ECS metadata service when no role name is
    /// configured): any failure means "not here", and the chain moves on. A source the
    /// user configured is not a probe: a transient failure of it stops the chain (the call
    /// is retried) instead of falling through to another identity.
    probe: bool,
}

#[derive(Clone)]
enum Kind {
    Static(Credentials),
    AssumeRole {
        source: CredentialsProvider,
        config: RoleArnConfig,
    },
    Oidc(OidcConfig),
    Ecs(EcsConfig),
    Uri(String),
    /// Candidates in chain order.
    Chain(Vec<Candidate>),
}

#[derive(Default)]
struct Cache {
    value: Option<Credentials>,
    stale_at: Option<DateTime<Utc>>,
    /// Lenient policy: no new attempt before this.
    next_attempt: Option<DateTime<Utc>>,
    failures: u32,
    /// Chain: the index of the source that worked (sticky).
    chosen: Option<usize>,
}

struct Inner {
    name: String,
    kind: Kind,
    http: reqwest::Client,
    clock: Clock,
    cache: tokio::sync::Mutex<Cache>,
}

/// A source of credentials. Cheap to clone; clones share the cached value.
#[derive(Clone)]
pub struct CredentialsProvider {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CredentialsProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialsProvider")
            .field("source", &self.inner.name)
            .finish_non_exhaustive()
    }
}

/// `proxy`: whether the `HTTP(S)_PROXY` variables apply (never to the instance metadata
/// service, which only the instance itself can reach).
fn http_client(connect: Duration, read: Duration, proxy: bool) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .connect_timeout(connect)
        .timeout(connect + read);
    if !proxy {
        b = b.no_proxy();
    }
    b.build()
        .expect("a reqwest client with timeouts always builds")
}

impl CredentialsProvider {
    fn new(name: impl Into<String>, kind: Kind) -> Self {
        // The SDKs' timeouts: 1 s + 1 s for the metadata service, 5 s + 10 s otherwise.
        let http = match &kind {
            Kind::Ecs(_) => http_client(Duration::from_secs(1), Duration::from_secs(1), false),
            _ => http_client(Duration::from_secs(5), Duration::from_secs(10), true),
        };
        CredentialsProvider {
            inner: Arc::new(Inner {
                name: name.into(),
                kind,
                http,
                clock: Clock::system(),
                cache: tokio::sync::Mutex::new(Cache::default()),
            }),
        }
    }

    /// The same source judging staleness by `clock` (and so do the sources it is made of:
    /// chain candidates, the source credentials of a role assumption). The copy starts with
    /// an empty cache.
    pub fn with_clock(&self, clock: Clock) -> Self {
        let kind = match &self.inner.kind {
            Kind::AssumeRole { source, config } => Kind::AssumeRole {
                source: source.with_clock(clock.clone()),
                config: config.clone(),
            },
            Kind::Chain(candidates) => Kind::Chain(
                candidates
                    .iter()
                    .map(|c| Candidate {
                        provider: match &c.provider {
                            Ok(p) => Ok(p.with_clock(clock.clone())),
                            Err(e) => Err(e.clone()),
                        },
                        ..c.clone()
                    })
                    .collect(),
            ),
            other => other.clone(),
        };
        CredentialsProvider {
            inner: Arc::new(Inner {
                name: self.inner.name.clone(),
                kind,
                http: self.inner.http.clone(),
                clock,
                cache: tokio::sync::Mutex::new(Cache::default()),
            }),
        }
    }

    /// A long-lived AccessKey.
    pub fn static_ak(access_key_id: impl Into<String>, secret: impl Into<String>) -> Self {
        Self::static_credentials(Credentials {
            access_key_id: access_key_id.into(),
            access_key_secret: Secret::new(secret),
            security_token: None,
            expiration: None,
            source: "static_ak".into(),
        })
    }

    /// A fixed STS credential (AK + token).
    pub fn static_sts(
        access_key_id: impl Into<String>,
        secret: impl Into<String>,
        token: impl Into<String>,
    ) -> Self {
        Self::static_credentials(Credentials {
            access_key_id: access_key_id.into(),
            access_key_secret: Secret::new(secret),
            security_token: Some(Secret::new(token)),
            expiration: None,
            source: "static_sts".into(),
        })
    }

    pub fn static_credentials(c: Credentials) -> Self {
        Self::new(c.source.clone(), Kind::Static(c))
    }

    /// `AssumeRole` with `source`'s credentials, refreshed before expiry (strict).
    pub fn assume_role(source: CredentialsProvider, config: RoleArnConfig) -> Self {
        Self::new(
            format!("ram_role_arn({})", source.name()),
            Kind::AssumeRole { source, config },
        )
    }

    /// `AssumeRoleWithOIDC` with the token file's contents, refreshed before expiry (strict).
    pub fn oidc(config: OidcConfig) -> Self {
        Self::new("oidc_role_arn", Kind::Oidc(config))
    }

    /// The ECS instance RAM role (lenient).
    pub fn ecs_ram_role(config: EcsConfig) -> Self {
        Self::new("ecs_ram_role", Kind::Ecs(config))
    }

    /// A credentials service answering `{"Code":"Success","AccessKeyId",...}` (strict).
    pub fn uri(url: impl Into<String>) -> Self {
        Self::new("credentials_uri", Kind::Uri(url.into()))
    }

    /// The official SDKs' default chain (see the module docs). Files are read now; the
    /// network is touched only by [`credentials`](Self::credentials).
    pub fn default_chain(config: ChainConfig) -> Self {
        let mut candidates = Vec::new();

        // 1. Environment.
        let env = match (
            config.var("ALIBABA_CLOUD_ACCESS_KEY_ID"),
            config.var("ALIBABA_CLOUD_ACCESS_KEY_SECRET"),
        ) {
            (Some(id), Some(secret)) => Ok(Self::static_credentials(Credentials {
                access_key_id: id.to_string(),
                access_key_secret: Secret::new(secret),
                security_token: config.var("ALIBABA_CLOUD_SECURITY_TOKEN").map(Secret::new),
                expiration: None,
                source: "env".into(),
            })),
            _ => Err(perr(
                "env",
                "ALIBABA_CLOUD_ACCESS_KEY_ID or ALIBABA_CLOUD_ACCESS_KEY_SECRET is not set",
            )),
        };
        candidates.push(Candidate {
            name: "env".into(),
            provider: env,
            probe: false,
        });

        // 2. OIDC, only when all three variables are set.
        if let (Some(role), Some(provider), Some(file)) = (
            config.var("ALIBABA_CLOUD_ROLE_ARN"),
            config.var("ALIBABA_CLOUD_OIDC_PROVIDER_ARN"),
            config.var("ALIBABA_CLOUD_OIDC_TOKEN_FILE"),
        ) {
            let p = Self::oidc(OidcConfig {
                role_arn: role.to_string(),
                oidc_provider_arn: provider.to_string(),
                oidc_token_file: PathBuf::from(file),
                role_session_name: config
                    .var("ALIBABA_CLOUD_ROLE_SESSION_NAME")
                    .map(str::to_string),
                duration_seconds: None,
                policy: None,
                sts_endpoint: Some(config.sts_endpoint(None, false)),
            });
            candidates.push(Candidate {
                name: "oidc".into(),
                provider: Ok(p),
                probe: false,
            });
        }

        // 3. aliyun CLI profile.
        if !config.flag("ALIBABA_CLOUD_CLI_PROFILE_DISABLED") {
            let c = match &config.home {
                Some(home) => cli_profile(&config, &home.join(".aliyun").join("config.json")),
                None => Err(perr("cli_profile", "no home directory")),
            };
            candidates.push(Candidate {
                name: "cli_profile".into(),
                provider: c,
                probe: false,
            });
        }

        // 4. INI file.
        let ini_path = config
            .var("ALIBABA_CLOUD_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| {
                config
                    .home
                    .as_ref()
                    .map(|h| h.join(".alibabacloud").join("credentials.ini"))
            });
        let ini = match ini_path {
            Some(path) => ini_profile(&config, &path),
            None => Err(perr("ini", "no home directory")),
        };
        candidates.push(Candidate {
            name: "ini".into(),
            provider: ini,
            probe: false,
        });

        // 5. ECS metadata.
        if !config.flag("ALIBABA_CLOUD_ECS_METADATA_DISABLED") {
            let p = Self::ecs_ram_role(EcsConfig {
                endpoint: config.ecs_metadata_endpoint.clone(),
                role_name: config.var("ALIBABA_CLOUD_ECS_METADATA").map(str::to_string),
                imdsv1_disabled: config.flag("ALIBABA_CLOUD_IMDSV1_DISABLED"),
            });
            candidates.push(Candidate {
                name: "ecs_ram_role".into(),
                provider: Ok(p),
                probe: config.var("ALIBABA_CLOUD_ECS_METADATA").is_none(),
            });
        }

        // 6. Credentials URI.
        if let Some(uri) = config.var("ALIBABA_CLOUD_CREDENTIALS_URI") {
            candidates.push(Candidate {
                name: "credentials_uri".into(),
                provider: Ok(Self::uri(uri)),
                probe: false,
            });
        }

        Self::new("default_chain", Kind::Chain(candidates))
    }

    /// A short name of this source (`env`, `ecs_ram_role`, ...). Never secret.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Current credentials, refreshed when stale.
    pub async fn credentials(&self) -> Result<Credentials, CredentialsError> {
        match &self.inner.kind {
            Kind::Static(c) => Ok(c.clone()),
            Kind::Chain(candidates) => self.resolve_chain(candidates).await,
            Kind::Ecs(_) => self.refreshing(StalePolicy::Lenient).await,
            Kind::AssumeRole { .. } | Kind::Oidc(_) | Kind::Uri(_) => {
                self.refreshing(StalePolicy::Strict).await
            }
        }
    }

    /// The first candidate that yields credentials, remembered (sticky). A configured
    /// source failing transiently ends the walk with that (transient) error, so the call
    /// is retried rather than made as another identity.
    async fn resolve_chain(
        &self,
        candidates: &[Candidate],
    ) -> Result<Credentials, CredentialsError> {
        let chosen = self.inner.cache.lock().await.chosen;
        if let Some(i) = chosen {
            let p = candidates[i]
                .provider
                .as_ref()
                .expect("only a built candidate is chosen");
            return Box::pin(p.credentials()).await;
        }
        let mut reasons = Vec::new();
        for (i, candidate) in candidates.iter().enumerate() {
            let failure = match &candidate.provider {
                Err(e) => e.clone(),
                Ok(p) => match Box::pin(p.credentials()).await {
                    Ok(c) => {
                        tracing::debug!(
                            source = %c.source,
                            candidate = %candidate.name,
                            access_key_id = %c.access_key_id,
                            temporary = c.security_token.is_some(),
                            "credentials source chosen"
                        );
                        self.inner.cache.lock().await.chosen = Some(i);
                        return Ok(c);
                    }
                    Err(e) if e.is_transient() && !candidate.probe => {
                        tracing::debug!(
                            candidate = %candidate.name,
                            reason = %e,
                            "credentials source failed for now; not falling through"
                        );
                        return Err(e);
                    }
                    Err(e) => e,
                },
            };
            tracing::debug!(candidate = %candidate.name, reason = %failure, "credentials source skipped");
            reasons.push(failure.to_string());
        }
        Err(CredentialsError::Chain(reasons))
    }

    async fn refreshing(&self, policy: StalePolicy) -> Result<Credentials, CredentialsError> {
        let mut cache = self.inner.cache.lock().await;
        let now = self.inner.clock.now();
        if let Some(value) = &cache.value {
            if cache.stale_at.is_some_and(|s| now < s) {
                return Ok(value.clone());
            }
            if cache.next_attempt.is_some_and(|t| now < t) {
                return Ok(value.clone());
            }
        }
        match self.fetch().await {
            Ok(c) => {
                cache.stale_at = Some(stale_time(c.expiration, now, policy));
                cache.failures = 0;
                cache.next_attempt = None;
                cache.value = Some(c.clone());
                tracing::debug!(
                    source = %c.source,
                    access_key_id = %c.access_key_id,
                    expiration = ?c.expiration,
                    "credentials refreshed"
                );
                Ok(c)
            }
            Err(e) => match (cache.value.clone(), policy) {
                (Some(old), StalePolicy::Lenient) => {
                    cache.failures += 1;
                    let n = cache.failures;
                    let ceiling_ms = 10_000u64.max(100u64.saturating_mul(1u64 << (n - 1).min(40)));
                    let wait = rand::random_range(1_000..=ceiling_ms);
                    cache.next_attempt = Some(now + chrono::Duration::milliseconds(wait as i64));
                    tracing::warn!(error = %e, retry_in_ms = wait, "credentials refresh failed; serving the stale value");
                    Ok(old)
                }
                _ => Err(e),
            },
        }
    }

    async fn fetch(&self) -> Result<Credentials, CredentialsError> {
        let http = &self.inner.http;
        match &self.inner.kind {
            Kind::AssumeRole { source, config } => {
                let src = Box::pin(source.credentials()).await?;
                assume_role(http, &src, config, &self.inner.name).await
            }
            Kind::Oidc(config) => assume_role_with_oidc(http, config).await,
            Kind::Ecs(config) => ecs_fetch(http, config).await,
            Kind::Uri(url) => uri_fetch(http, url).await,
            Kind::Static(c) => Ok(c.clone()),
            Kind::Chain(_) => unreachable!("a chain is not refreshed itself"),
        }
    }
}

/// When a credential fetched at `now` goes stale (credentials.md §8).
fn stale_time(
    expiration: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    policy: StalePolicy,
) -> DateTime<Utc> {
    let Some(exp) = expiration else {
        return DateTime::<Utc>::MAX_UTC;
    };
    let stale = exp - chrono::Duration::from_std(REFRESH_BEFORE_EXPIRY).expect("15 min fits");
    if stale > now {
        stale
    } else if exp > now {
        // Already inside the window: used once, refreshed on the next call.
        now
    } else {
        match policy {
            StalePolicy::Strict => now + chrono::Duration::seconds(1),
            StalePolicy::Lenient => now + chrono::Duration::seconds(rand::random_range(50..=70)),
        }
    }
}

fn parse_expiration(provider: &str, text: &str) -> Result<DateTime<Utc>, CredentialsError> {
    DateTime::parse_from_rfc3339(text)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| perr(provider, format!("bad Expiration {text:?}: {e}")))
}

fn session_name(given: &Option<String>) -> String {
    given
        .clone()
        .unwrap_or_else(|| format!("immctl-{}", Utc::now().timestamp()))
}

/// One STS call from a credentials provider: POST, all parameters in the query, signed V1
/// when `signer` is given (AssumeRole), unsigned otherwise (AssumeRoleWithOIDC). `secrets`
/// are more strings no error message may carry (the OIDC token).
async fn sts_call(
    http: &reqwest::Client,
    endpoint: &str,
    action: &str,
    params: BTreeMap<String, String>,
    signer: Option<&Credentials>,
    provider: &str,
    secrets: &[&str],
) -> Result<AssumeRoleResponse, CredentialsError> {
    let endpoint = super::client::endpoint_url(endpoint);
    let (query, signature) =
        super::client::sign_query(STS_VERSION, action, params, signer, None, Utc::now(), None);
    let url = format!("{endpoint}/?{query}");
    let resp = http
        .post(url)
        .header("x-acs-action", action)
        .header("x-acs-version", STS_VERSION)
        .header(reqwest::header::CONTENT_LENGTH, "0")
        .send()
        .await
        .map_err(|e| transport_err(provider, action, e))?;
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .bytes()
        .await
        .map_err(|e| transport_err(provider, action, e))?;
    if !status.is_success() {
        let mut redact: Vec<&str> = secrets.to_vec();
        if let Some(c) = signer {
            redact.push(c.access_key_secret.expose());
            if let Some(t) = &c.security_token {
                redact.push(t.expose());
            }
        }
        if let Some(s) = &signature {
            redact.push(s);
        }
        let e = super::client::api_error(action, status.as_u16(), &headers, &body, &redact);
        let transient = e.is_retryable();
        return Err(CredentialsError::Provider {
            provider: provider.to_string(),
            message: e.to_string(),
            transient,
        });
    }
    let answer: AssumeRoleResponse = serde_json::from_slice(&body).map_err(|e| {
        perr(
            provider,
            format!("{action}: answer without Credentials: {e}"),
        )
    })?;
    let c = &answer.credentials;
    if c.access_key_id.is_empty() || c.access_key_secret.is_empty() || c.security_token.is_empty() {
        return Err(perr(provider, format!("{action}: incomplete Credentials")));
    }
    Ok(answer)
}

/// A request that got no answer: transient (the client retries), and never with its URL
/// (the query carries the signature and the tokens).
fn transport_err(provider: &str, action: &str, e: reqwest::Error) -> CredentialsError {
    if e.is_builder() {
        perr(provider, format!("{action}: {}", e.without_url()))
    } else {
        terr(provider, format!("{action}: {}", e.without_url()))
    }
}

fn sts_credentials(
    answer: AssumeRoleResponse,
    provider: &str,
) -> Result<Credentials, CredentialsError> {
    let c = answer.credentials;
    Ok(Credentials {
        expiration: Some(parse_expiration(provider, &c.expiration)?),
        access_key_id: c.access_key_id,
        access_key_secret: c.access_key_secret,
        security_token: Some(c.security_token),
        source: provider.to_string(),
    })
}

async fn assume_role(
    http: &reqwest::Client,
    source: &Credentials,
    config: &RoleArnConfig,
    provider: &str,
) -> Result<Credentials, CredentialsError> {
    let duration = config.duration_seconds.filter(|d| *d > 0).unwrap_or(3600);
    if duration < 900 {
        return Err(perr(provider, "DurationSeconds must be at least 900"));
    }
    let mut p = BTreeMap::new();
    p.insert("RoleArn".into(), config.role_arn.clone());
    p.insert(
        "RoleSessionName".into(),
        session_name(&config.role_session_name),
    );
    p.insert("DurationSeconds".into(), duration.to_string());
    if let Some(policy) = &config.policy {
        p.insert("Policy".into(), policy.clone());
    }
    if let Some(ext) = &config.external_id {
        p.insert("ExternalId".into(), ext.clone());
    }
    let endpoint = config
        .sts_endpoint
        .as_deref()
        .unwrap_or(DEFAULT_STS_ENDPOINT);
    let answer = sts_call(http, endpoint, "AssumeRole", p, Some(source), provider, &[]).await?;
    sts_credentials(answer, provider)
}

async fn assume_role_with_oidc(
    http: &reqwest::Client,
    config: &OidcConfig,
) -> Result<Credentials, CredentialsError> {
    const NAME: &str = "oidc_role_arn";
    let token = tokio::fs::read_to_string(&config.oidc_token_file)
        .await
        .map_err(|e| {
            perr(
                NAME,
                format!(
                    "cannot read the OIDC token file {}: {e}",
                    config.oidc_token_file.display()
                ),
            )
        })?;
    let duration = config.duration_seconds.filter(|d| *d > 0).unwrap_or(3600);
    if duration < 900 {
        return Err(perr(NAME, "DurationSeconds must be at least 900"));
    }
    let mut p = BTreeMap::new();
    p.insert("RoleArn".into(), config.role_arn.clone());
    p.insert("OIDCProviderArn".into(), config.oidc_provider_arn.clone());
    p.insert("OIDCToken".into(), token.trim().to_string());
    p.insert(
        "RoleSessionName".into(),
        session_name(&config.role_session_name),
    );
    p.insert("DurationSeconds".into(), duration.to_string());
    if let Some(policy) = &config.policy {
        p.insert("Policy".into(), policy.clone());
    }
    let endpoint = config
        .sts_endpoint
        .as_deref()
        .unwrap_or(DEFAULT_STS_ENDPOINT);
    let answer = sts_call(
        http,
        endpoint,
        "AssumeRoleWithOIDC",
        p,
        None,
        NAME,
        &[token.trim()],
    )
    .await?;
    sts_credentials(answer, NAME)
}

/// `{"Code":"Success","AccessKeyId",...}` from the metadata service or a credentials URI.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ServedCredentials {
    #[serde(default)]
    code: String,
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    access_key_secret: Secret,
    #[serde(default)]
    security_token: Secret,
    #[serde(default)]
    expiration: String,
}

fn served(provider: &str, body: &[u8]) -> Result<Credentials, CredentialsError> {
    let s: ServedCredentials = serde_json::from_slice(body)
        .map_err(|e| perr(provider, format!("answer is not credentials JSON: {e}")))?;
    if s.code != "Success" {
        return Err(perr(provider, format!("answer Code is {:?}", s.code)));
    }
    if s.access_key_id.is_empty()
        || s.access_key_secret.is_empty()
        || s.security_token.is_empty()
        || s.expiration.is_empty()
    {
        return Err(perr(provider, "answer lacks a credential field"));
    }
    Ok(Credentials {
        expiration: Some(parse_expiration(provider, &s.expiration)?),
        access_key_id: s.access_key_id,
        access_key_secret: s.access_key_secret,
        security_token: Some(s.security_token),
        source: provider.to_string(),
    })
}

const ECS_TOKEN_HEADER: &str = "X-aliyun-ecs-metadata-token";
const ECS_TOKEN_TTL_HEADER: &str = "X-aliyun-ecs-metadata-token-ttl-seconds";

/// Why a metadata / URI request failed, and whether another try may succeed (no answer, or
/// a 5xx / 429) or not (any other status).
struct Fail {
    message: String,
    transient: bool,
}

impl Fail {
    fn into_error(self, provider: &str, what: &str) -> CredentialsError {
        let message = format!("{what}: {}", self.message);
        if self.transient {
            terr(provider, message)
        } else {
            perr(provider, message)
        }
    }
}

fn no_answer(e: reqwest::Error) -> Fail {
    Fail {
        transient: !e.is_builder(),
        message: e.without_url().to_string(),
    }
}

/// Send `req`; the body of a 2xx answer.
async fn fetch_body(req: reqwest::RequestBuilder) -> Result<Vec<u8>, Fail> {
    let resp = req.send().await.map_err(no_answer)?;
    let status = resp.status();
    if !status.is_success() {
        return Err(Fail {
            message: format!("HTTP {status}"),
            transient: status.is_server_error() || status.as_u16() == 429,
        });
    }
    resp.bytes().await.map(|b| b.to_vec()).map_err(no_answer)
}

/// GET with the token; on failure once more without it, unless IMDSv1 is disabled.
async fn ecs_get_with_fallback(
    http: &reqwest::Client,
    url: &str,
    token: Option<&str>,
    imdsv1_disabled: bool,
) -> Result<Vec<u8>, Fail> {
    let mut req = http.get(url);
    if let Some(t) = token {
        req = req.header(ECS_TOKEN_HEADER, t);
    }
    match fetch_body(req).await {
        Ok(b) => Ok(b),
        Err(e) if token.is_some() && !imdsv1_disabled => {
            tracing::debug!(error = %e.message, "metadata request with token failed; retrying without (IMDSv1)");
            fetch_body(http.get(url)).await
        }
        Err(e) => Err(e),
    }
}

async fn ecs_fetch(
    http: &reqwest::Client,
    config: &EcsConfig,
) -> Result<Credentials, CredentialsError> {
    const NAME: &str = "ecs_ram_role";
    let base = super::client::endpoint_url(
        config
            .endpoint
            .as_deref()
            .unwrap_or(DEFAULT_ECS_METADATA_ENDPOINT),
    );
    let token = fetch_body(
        http.put(format!("{base}/latest/api/token"))
            .header(ECS_TOKEN_TTL_HEADER, "21600"),
    )
    .await;
    let token = match token {
        Ok(t) => Some(String::from_utf8_lossy(&t).trim().to_string()),
        Err(e) if config.imdsv1_disabled => {
            return Err(e.into_error(NAME, "cannot get the metadata token (IMDSv1 is disabled)"));
        }
        Err(e) => {
            tracing::debug!(error = %e.message, "no metadata token; using IMDSv1");
            None
        }
    };
    let prefix = format!("{base}/latest/meta-data/ram/security-credentials/");
    let role = match &config.role_name {
        Some(r) => r.clone(),
        None => {
            let body =
                ecs_get_with_fallback(http, &prefix, token.as_deref(), config.imdsv1_disabled)
                    .await
                    .map_err(|e| e.into_error(NAME, "cannot read the instance role name"))?;
            let text = String::from_utf8_lossy(&body);
            let role = text.lines().next().unwrap_or("").trim().to_string();
            if role.is_empty() {
                return Err(perr(NAME, "the instance has no RAM role"));
            }
            role
        }
    };
    let body = ecs_get_with_fallback(
        http,
        &format!("{prefix}{role}"),
        token.as_deref(),
        config.imdsv1_disabled,
    )
    .await
    .map_err(|e| e.into_error(NAME, &format!("cannot read the credentials of role {role}")))?;
    served(NAME, &body)
}

async fn uri_fetch(http: &reqwest::Client, url: &str) -> Result<Credentials, CredentialsError> {
    const NAME: &str = "credentials_uri";
    let url = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    let body = fetch_body(http.get(&url))
        .await
        .map_err(|e| e.into_error(NAME, "cannot read the credentials service"))?;
    served(NAME, &body)
}

// ---------------------------------------------------------------------------------------
// Profile files

struct CliConfig {
    current: String,
    profiles: Vec<CliProfile>,
}

/// One profile of `~/.aliyun/config.json`. Read field by field and leniently: the aliyun CLI
/// writes every key of every mode (`"expired_seconds": 0`, `"verified": ""`, ...), and a
/// key of an unexpected type must not make the whole file unreadable.
#[derive(Default, Clone)]
struct CliProfile {
    name: String,
    mode: String,
    access_key_id: String,
    access_key_secret: Secret,
    sts_token: Secret,
    ram_role_arn: String,
    ram_session_name: String,
    /// `None` when absent or 0 (the CLI's "not set").
    expired_seconds: Option<u32>,
    policy: String,
    external_id: String,
    sts_region: String,
    enable_vpc: bool,
    ram_role_name: String,
    oidc_provider_arn: String,
    oidc_token_file: String,
    role_session_name: String,
    source_profile: String,
}

impl CliConfig {
    fn from_json(v: &serde_json::Value) -> CliConfig {
        CliConfig {
            current: text_field(v, "current"),
            profiles: v
                .get("profiles")
                .and_then(serde_json::Value::as_array)
                .map(|a| a.iter().map(CliProfile::from_json).collect())
                .unwrap_or_default(),
        }
    }
}

impl CliProfile {
    fn from_json(v: &serde_json::Value) -> CliProfile {
        let t = |k: &str| text_field(v, k);
        CliProfile {
            name: t("name"),
            mode: t("mode"),
            access_key_id: t("access_key_id"),
            access_key_secret: Secret::new(t("access_key_secret")),
            sts_token: Secret::new(t("sts_token")),
            ram_role_arn: t("ram_role_arn"),
            ram_session_name: t("ram_session_name"),
            expired_seconds: t("expired_seconds").parse::<u32>().ok().filter(|n| *n > 0),
            policy: t("policy"),
            external_id: t("external_id"),
            sts_region: t("sts_region"),
            enable_vpc: t("enable_vpc").eq_ignore_ascii_case("true"),
            ram_role_name: t("ram_role_name"),
            oidc_provider_arn: t("oidc_provider_arn"),
            oidc_token_file: t("oidc_token_file"),
            role_session_name: t("role_session_name"),
            source_profile: t("source_profile"),
        }
    }
}

/// A string, number or boolean field as text; anything else (absent, null, object) is "".
fn text_field(v: &serde_json::Value, key: &str) -> String {
    match v.get(key) {
        Some(serde_json::Value::String(s)) => s.trim().to_string(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        Some(serde_json::Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_string())
}

fn cli_profile(config: &ChainConfig, path: &Path) -> Result<CredentialsProvider, CredentialsError> {
    const NAME: &str = "cli_profile";
    let text = std::fs::read_to_string(path)
        .map_err(|e| perr(NAME, format!("unable to open {}: {e}", path.display())))?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| perr(NAME, format!("{} is not valid JSON: {e}", path.display())))?;
    let file = CliConfig::from_json(&json);
    let wanted = config
        .var("ALIBABA_CLOUD_PROFILE")
        .map(str::to_string)
        .unwrap_or(file.current.clone());
    cli_profile_named(config, &file, &wanted, path, 0)
}

fn cli_profile_named(
    config: &ChainConfig,
    file: &CliConfig,
    wanted: &str,
    path: &Path,
    depth: u32,
) -> Result<CredentialsProvider, CredentialsError> {
    const NAME: &str = "cli_profile";
    if depth > 5 {
        return Err(perr(NAME, "source_profile chain too deep (a loop?)"));
    }
    let p = file
        .profiles
        .iter()
        .find(|p| p.name == wanted)
        .ok_or_else(|| perr(NAME, format!("no profile {wanted:?} in {}", path.display())))?;
    let source = format!("cli_profile/{}", p.mode);
    let need = |v: &str, key: &str| {
        if v.is_empty() {
            Err(perr(
                NAME,
                format!("profile {wanted:?} (mode {}) lacks {key}", p.mode),
            ))
        } else {
            Ok(v.to_string())
        }
    };
    let ak = |p: &CliProfile| -> Result<Credentials, CredentialsError> {
        Ok(Credentials {
            access_key_id: need(&p.access_key_id, "access_key_id")?,
            access_key_secret: Secret::new(need(
                p.access_key_secret.expose(),
                "access_key_secret",
            )?),
            security_token: None,
            expiration: None,
            source: source.clone(),
        })
    };
    let sts_endpoint = config.sts_endpoint(non_empty(&p.sts_region).as_deref(), p.enable_vpc);
    let role_config = |p: &CliProfile| -> Result<RoleArnConfig, CredentialsError> {
        Ok(RoleArnConfig {
            role_arn: need(&p.ram_role_arn, "ram_role_arn")?,
            role_session_name: non_empty(&p.ram_session_name),
            duration_seconds: p.expired_seconds,
            policy: non_empty(&p.policy),
            external_id: non_empty(&p.external_id),
            sts_endpoint: Some(sts_endpoint.clone()),
        })
    };
    match p.mode.as_str() {
        "AK" => Ok(CredentialsProvider::static_credentials(ak(p)?)),
        "StsToken" => {
            let mut c = ak(p)?;
            c.security_token = Some(Secret::new(need(p.sts_token.expose(), "sts_token")?));
            Ok(CredentialsProvider::static_credentials(c))
        }
        "RamRoleArn" => {
            let src = CredentialsProvider::static_credentials(ak(p)?);
            Ok(CredentialsProvider::assume_role(src, role_config(p)?))
        }
        "ChainableRamRoleArn" => {
            let src_name = need(&p.source_profile, "source_profile")?;
            let src = cli_profile_named(config, file, &src_name, path, depth + 1)?;
            Ok(CredentialsProvider::assume_role(src, role_config(p)?))
        }
        "EcsRamRole" => {
            config.ecs_allowed(NAME)?;
            Ok(CredentialsProvider::ecs_ram_role(EcsConfig {
                endpoint: config.ecs_metadata_endpoint.clone(),
                role_name: non_empty(&p.ram_role_name),
                imdsv1_disabled: config.flag("ALIBABA_CLOUD_IMDSV1_DISABLED"),
            }))
        }
        "OIDC" => Ok(CredentialsProvider::oidc(OidcConfig {
            role_arn: need(&p.ram_role_arn, "ram_role_arn")?,
            oidc_provider_arn: need(&p.oidc_provider_arn, "oidc_provider_arn")?,
            oidc_token_file: PathBuf::from(need(&p.oidc_token_file, "oidc_token_file")?),
            role_session_name: non_empty(&p.role_session_name),
            duration_seconds: p.expired_seconds,
            policy: non_empty(&p.policy),
            sts_endpoint: Some(sts_endpoint),
        })),
        other => Err(perr(
            NAME,
            format!("profile {wanted:?}: unsupported profile mode {other:?}"),
        )),
    }
}

/// Sections of an INI file: `[name]` then `key = value`; `#` starts a comment in a value.
fn parse_ini(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    let mut section = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(name.trim().to_string());
            out.entry(name.trim().to_string()).or_default();
            continue;
        }
        if let (Some(s), Some((k, v))) = (&section, line.split_once('=')) {
            let v = v.split('#').next().unwrap_or("").trim();
            out.entry(s.clone())
                .or_default()
                .insert(k.trim().to_string(), v.to_string());
        }
    }
    out
}

fn ini_profile(config: &ChainConfig, path: &Path) -> Result<CredentialsProvider, CredentialsError> {
    const NAME: &str = "ini";
    let text = std::fs::read_to_string(path)
        .map_err(|e| perr(NAME, format!("unable to open {}: {e}", path.display())))?;
    let sections = parse_ini(&text);
    let wanted = config.var("ALIBABA_CLOUD_PROFILE").unwrap_or("default");
    let s = sections
        .get(wanted)
        .ok_or_else(|| perr(NAME, format!("no section [{wanted}] in {}", path.display())))?;
    let get = |k: &str| s.get(k).filter(|v| !v.is_empty()).cloned();
    let need = |k: &str| get(k).ok_or_else(|| perr(NAME, format!("section [{wanted}] lacks {k}")));
    let ty = need("type")?;
    let source = format!("ini/{ty}");
    match ty.as_str() {
        "access_key" => Ok(CredentialsProvider::static_credentials(Credentials {
            access_key_id: need("access_key_id")?,
            access_key_secret: Secret::new(need("access_key_secret")?),
            security_token: None,
            expiration: None,
            source,
        })),
        "ram_role_arn" => {
            let src = CredentialsProvider::static_credentials(Credentials {
                access_key_id: need("access_key_id")?,
                access_key_secret: Secret::new(need("access_key_secret")?),
                security_token: None,
                expiration: None,
                source,
            });
            Ok(CredentialsProvider::assume_role(
                src,
                RoleArnConfig {
                    role_arn: need("role_arn")?,
                    role_session_name: get("role_session_name"),
                    duration_seconds: None,
                    policy: get("policy"),
                    external_id: None,
                    sts_endpoint: Some(config.sts_endpoint(None, false)),
                },
            ))
        }
        "oidc_role_arn" => Ok(CredentialsProvider::oidc(OidcConfig {
            role_arn: need("role_arn")?,
            oidc_provider_arn: need("oidc_provider_arn")?,
            oidc_token_file: PathBuf::from(need("oidc_token_file_path")?),
            role_session_name: get("role_session_name"),
            duration_seconds: None,
            policy: get("policy"),
            sts_endpoint: Some(config.sts_endpoint(None, false)),
        })),
        "ecs_ram_role" => {
            config.ecs_allowed(NAME)?;
            Ok(CredentialsProvider::ecs_ram_role(EcsConfig {
                endpoint: config.ecs_metadata_endpoint.clone(),
                role_name: get("role_name"),
                imdsv1_disabled: config.flag("ALIBABA_CLOUD_IMDSV1_DISABLED"),
            }))
        }
        other => Err(perr(
            NAME,
            format!("section [{wanted}]: unsupported type {other:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ini_values_are_trimmed_and_comments_dropped() {
        let s = parse_ini(
            "# top\n[default]\ntype = access_key   # static\naccess_key_id = id1\n\n[other]\nx=1\n",
        );
        assert_eq!(s["default"]["type"], "access_key");
        assert_eq!(s["default"]["access_key_id"], "id1");
        assert_eq!(s["other"]["x"], "1");
    }

    #[test]
    fn stale_time_follows_the_documented_policies() {
        let now = Utc::now();
        let in_1h = now + chrono::Duration::hours(1);
        assert_eq!(
            stale_time(Some(in_1h), now, StalePolicy::Strict),
            in_1h - chrono::Duration::minutes(15)
        );
        let in_10m = now + chrono::Duration::minutes(10);
        assert_eq!(stale_time(Some(in_10m), now, StalePolicy::Strict), now);
        let past = now - chrono::Duration::minutes(1);
        assert_eq!(
            stale_time(Some(past), now, StalePolicy::Strict),
            now + chrono::Duration::seconds(1)
        );
        let lenient = stale_time(Some(past), now, StalePolicy::Lenient);
        assert!(lenient >= now + chrono::Duration::seconds(50));
        assert!(lenient <= now + chrono::Duration::seconds(70));
        assert_eq!(
            stale_time(None, now, StalePolicy::Strict),
            DateTime::<Utc>::MAX_UTC
        );
    }

    #[test]
    fn sts_endpoint_resolution() {
        let mut c = ChainConfig::default();
        assert_eq!(c.sts_endpoint(None, false), DEFAULT_STS_ENDPOINT);
        assert_eq!(
            c.sts_endpoint(Some("cn-hangzhou"), false),
            "https://sts.cn-hangzhou.aliyuncs.com"
        );
        c.vars
            .insert("ALIBABA_CLOUD_STS_REGION".into(), "cn-beijing".into());
        c.vars
            .insert("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED".into(), "true".into());
        assert_eq!(
            c.sts_endpoint(Some("cn-hangzhou"), false),
            "https://sts-vpc.cn-beijing.aliyuncs.com"
        );
        c.sts_endpoint = Some("http://127.0.0.1:1".into());
        assert_eq!(c.sts_endpoint(None, false), "http://127.0.0.1:1");
    }

    /// A home directory with the two profile files, and the env vars of a test chain
    /// (ECS off, so nothing ever reaches 100.100.100.200).
    struct Home {
        dir: tempfile::TempDir,
        vars: BTreeMap<String, String>,
    }

    impl Home {
        fn new() -> Home {
            let dir = tempfile::tempdir().unwrap();
            let mut vars = BTreeMap::new();
            vars.insert("ALIBABA_CLOUD_ECS_METADATA_DISABLED".into(), "true".into());
            Home { dir, vars }
        }
        fn var(mut self, k: &str, v: &str) -> Home {
            self.vars.insert(k.into(), v.into());
            self
        }
        fn cli(self, json: &str) -> Home {
            let d = self.dir.path().join(".aliyun");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("config.json"), json).unwrap();
            self
        }
        fn ini(self, text: &str) -> Home {
            let d = self.dir.path().join(".alibabacloud");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("credentials.ini"), text).unwrap();
            self
        }
        fn chain(&self) -> CredentialsProvider {
            CredentialsProvider::default_chain(ChainConfig {
                vars: self.vars.clone(),
                home: Some(self.dir.path().to_path_buf()),
                ..ChainConfig::default()
            })
        }
        async fn resolve(&self) -> Result<Credentials, CredentialsError> {
            self.chain().credentials().await
        }
    }

    /// What `aliyun configure` writes: every key of every mode, `expired_seconds: 0`.
    const CLI_FILE: &str = r#"{
        "current": "dev",
        "profiles": [
            {"name": "default", "mode": "AK", "access_key_id": "cli-ak", "access_key_secret": "cli-ak-secret",
             "sts_token": "", "ram_role_name": "", "ram_role_arn": "", "ram_session_name": "",
             "private_key": "", "key_pair_name": "", "expired_seconds": 0, "verified": "",
             "region_id": "cn-hangzhou", "output_format": "json", "language": "en", "site": "",
             "retry_timeout": 0, "connect_timeout": 0, "retry_count": 0, "process_command": ""},
            {"name": "dev", "mode": "StsToken", "access_key_id": "cli-sts", "access_key_secret": "cli-sts-secret",
             "sts_token": "cli-sts-token", "expired_seconds": 0, "enable_vpc": "false", "region_id": 7},
            {"name": "weird", "mode": "CloudSSO"}
        ],
        "meta_path": ""
    }"#;

    const INI_FILE: &str = "[default]\ntype = access_key   # static\naccess_key_id = ini-ak\naccess_key_secret = ini-secret\n\n[other]\ntype = access_key\naccess_key_id = ini-other\naccess_key_secret = ini-other-secret\n";

    #[tokio::test]
    async fn the_chain_tries_env_then_cli_profile_then_ini_in_that_order() {
        let all = || {
            Home::new()
                .cli(CLI_FILE)
                .ini(INI_FILE)
                .var("ALIBABA_CLOUD_ACCESS_KEY_ID", "env-ak")
                .var("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "env-secret")
        };
        // 1. env wins, with its STS token when there is one.
        let c = all().resolve().await.unwrap();
        assert_eq!(
            (c.source.as_str(), c.access_key_id.as_str()),
            ("env", "env-ak")
        );
        assert!(c.security_token.is_none());
        let c = all()
            .var("ALIBABA_CLOUD_SECURITY_TOKEN", "env-token")
            .resolve()
            .await
            .unwrap();
        assert_eq!(c.security_token.as_ref().unwrap().expose(), "env-token");
        // An empty secret makes env fail, and the chain moves on: the CLI file's `current`.
        let c = all()
            .var("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "")
            .resolve()
            .await
            .unwrap();
        assert_eq!(c.source, "cli_profile/StsToken");
        assert_eq!(c.access_key_id, "cli-sts");
        assert_eq!(c.security_token.as_ref().unwrap().expose(), "cli-sts-token");
        // ALIBABA_CLOUD_PROFILE picks the CLI profile...
        let c = Home::new()
            .cli(CLI_FILE)
            .ini(INI_FILE)
            .var("ALIBABA_CLOUD_PROFILE", "default")
            .resolve()
            .await
            .unwrap();
        assert_eq!(
            (c.source.as_str(), c.access_key_id.as_str()),
            ("cli_profile/AK", "cli-ak")
        );
        // ... and the INI section once the CLI file is disabled.
        let c = Home::new()
            .cli(CLI_FILE)
            .ini(INI_FILE)
            .var("ALIBABA_CLOUD_PROFILE", "other")
            .var("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")
            .resolve()
            .await
            .unwrap();
        assert_eq!(
            (c.source.as_str(), c.access_key_id.as_str()),
            ("ini/access_key", "ini-other")
        );
        // 4. INI when there is no CLI file.
        let c = Home::new().ini(INI_FILE).resolve().await.unwrap();
        assert_eq!(
            (c.source.as_str(), c.access_key_id.as_str()),
            ("ini/access_key", "ini-ak")
        );
        // ALIBABA_CLOUD_CREDENTIALS_FILE points anywhere.
        let other = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(other.path(), INI_FILE.replace("ini-ak", "moved-ak")).unwrap();
        let c = Home::new()
            .var(
                "ALIBABA_CLOUD_CREDENTIALS_FILE",
                other.path().to_str().unwrap(),
            )
            .resolve()
            .await
            .unwrap();
        assert_eq!(c.access_key_id, "moved-ak");
    }

    #[tokio::test]
    async fn a_failed_chain_names_every_source_and_no_secret() {
        let h = Home::new()
            .cli(CLI_FILE)
            .var("ALIBABA_CLOUD_PROFILE", "weird");
        let e = h.resolve().await.unwrap_err();
        let text = e.to_string();
        assert!(text.contains("ALIBABA_CLOUD_ACCESS_KEY_ID"), "{text}");
        assert!(
            text.contains("unsupported profile mode \"CloudSSO\""),
            "{text}"
        );
        assert!(text.contains("credentials.ini"), "{text}");
        assert!(!e.is_transient());
        for secret in ["cli-ak-secret", "cli-sts-secret", "cli-sts-token"] {
            assert!(!text.contains(secret) && !format!("{e:?}").contains(secret));
        }
        // A profile lacking its keys says which key.
        let h = Home::new()
            .cli(r#"{"current":"x","profiles":[{"name":"x","mode":"AK","access_key_id":"id"}]}"#);
        let text = h.resolve().await.unwrap_err().to_string();
        assert!(text.contains("lacks access_key_secret"), "{text}");
        let h = Home::new().cli("{not json");
        let text = h.resolve().await.unwrap_err().to_string();
        assert!(text.contains("is not valid JSON"), "{text}");
    }

    #[test]
    fn cli_profiles_are_read_leniently() {
        let v: serde_json::Value = serde_json::from_str(CLI_FILE).unwrap();
        let f = CliConfig::from_json(&v);
        assert_eq!(f.current, "dev");
        assert_eq!(f.profiles.len(), 3);
        assert_eq!(f.profiles[0].expired_seconds, None, "0 means not set");
        assert!(!f.profiles[1].enable_vpc);
        let p = CliProfile::from_json(
            &serde_json::json!({"expired_seconds": "1800", "enable_vpc": true}),
        );
        assert_eq!(p.expired_seconds, Some(1800));
        assert!(p.enable_vpc);
    }

    #[test]
    fn chain_config_debug_names_variables_but_hides_their_values() {
        let c = ChainConfig {
            vars: BTreeMap::from([
                (
                    "ALIBABA_CLOUD_ACCESS_KEY_ID".to_string(),
                    "LTAIvisible".to_string(),
                ),
                (
                    "ALIBABA_CLOUD_ACCESS_KEY_SECRET".to_string(),
                    "hidden-secret-1".to_string(),
                ),
                (
                    "ALIBABA_CLOUD_SECURITY_TOKEN".to_string(),
                    "hidden-token-1".to_string(),
                ),
            ]),
            ..ChainConfig::default()
        };
        let d = format!("{c:?} {c:#?}");
        assert!(d.contains("ALIBABA_CLOUD_ACCESS_KEY_SECRET"), "{d}");
        assert!(
            !d.contains("hidden-secret-1") && !d.contains("hidden-token-1"),
            "{d}"
        );
        let p = CredentialsProvider::default_chain(c);
        let d = format!("{p:?}");
        assert!(
            !d.contains("hidden-secret-1") && !d.contains("hidden-token-1"),
            "{d}"
        );
    }

    #[test]
    fn credentials_debug_hides_secrets() {
        let c = Credentials {
            access_key_id: "LTAIid".into(),
            access_key_secret: Secret::new("s3cr3t-value"),
            security_token: Some(Secret::new("t0ken-value")),
            expiration: None,
            source: "env".into(),
        };
        let d = format!("{c:?}");
        assert!(d.contains("LTAIid"));
        assert!(
            !d.contains("s3cr3t-value") && !d.contains("t0ken-value"),
            "{d}"
        );
    }
}
