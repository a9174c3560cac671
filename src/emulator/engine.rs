//! The emulator's core, behind one mutex: state, STS sessions, nonce cache, quotas, fault
//! settings and statistics; authentication (V1 / V3 signatures, timestamps, nonces, STS
//! tokens), quotas, and authorization with the policy evaluator. Product semantics live in
//! `ram.rs`, `imm.rs` and `sts.rs`; HTTP lives in `mod.rs`.
//!
//! Every call runs to completion under the lock, so concurrent writers never lose updates.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::state::State;
use super::system;
use super::wire::{ApiError, ApiResult, Params, Product};
use crate::cloud::signer;
use crate::policy::eval::{self, Decision, Request};

/// Allowed clock skew for `Timestamp` / `x-acs-date` (the gateway's documented 15 minutes).
pub const MAX_SKEW: chrono::TimeDelta = chrono::TimeDelta::minutes(15);

/// Statistics served by `GET /_emulator/stats`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Every API call received, by action (including refused ones).
    pub calls: BTreeMap<String, u64>,
    /// Error answers by Code.
    pub errors: BTreeMap<String, u64>,
    /// Error answers by action, then Code.
    pub errors_by_action: BTreeMap<String, BTreeMap<String, u64>>,
    /// Calls refused by the quota (`Throttling.User`).
    pub throttled: u64,
    /// Faults injected (random or scheduled), including dropped connections.
    pub injected_faults: u64,
}

/// Fail the next `count` calls of `action` with `code` (`"Drop"` drops the connection).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailNext {
    pub action: String,
    pub code: String,
    #[serde(default = "one")]
    pub count: u32,
    /// HTTP status; default derived from the code (Throttling* 400, ServiceUnavailable 503,
    /// InternalError 500, *NotExist*/*NotFound* 404, otherwise 400).
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub message: Option<String>,
}

fn one() -> u32 {
    1
}

/// Fault settings (`PUT /_emulator/faults`). Absent fields keep their current value;
/// `failNext`, when present, replaces the scheduled failures. An unknown key is an error (a
/// misspelt `fault_rate` must not quietly inject nothing).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct Faults {
    pub latency_ms: Option<u64>,
    /// Probability (0..1) that a call fails with a random fault: `Throttling.User` 400,
    /// `ServiceUnavailable` 503, `InternalError` 500 or a dropped connection.
    pub fault_rate: Option<f64>,
    /// Quota multiplier; 0 disables quotas.
    pub rate_limit_scale: Option<f64>,
    /// How long a just-created role / policy / project stays invisible to reads.
    pub consistency_delay_ms: Option<u64>,
    /// Seconds to advertise in `x-acs-retry-after` on throttling faults (none by default).
    pub retry_after: Option<u32>,
    pub fail_next: Option<Vec<FailNext>>,
    /// The next `count` calls of `action` are carried out, then answered with `code` (or a
    /// dropped connection) instead of their reply: a reply lost after the service acted, as
    /// a timeout after commit is on the real cloud. When present, replaces the scheduled ones.
    pub lose_reply_next: Option<Vec<FailNext>>,
}

/// The effective runtime configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub latency: Duration,
    pub fault_rate: f64,
    pub rate_limit_scale: f64,
    pub consistency_delay: Duration,
    pub retry_after: Option<u32>,
    pub fail_next: Vec<FailNext>,
    pub lose_reply_next: Vec<FailNext>,
    pub region: String,
}

/// What an injected fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum Injected {
    Error(ApiError),
    Drop,
    /// Carry the call out, then answer with this instead of its reply.
    AfterApply(Box<Injected>),
}

/// A temporary credential issued by AssumeRole / AssumeRoleWithOIDC.
#[derive(Debug, Clone)]
pub struct Session {
    pub secret: String,
    pub token: String,
    pub expiration: DateTime<Utc>,
    pub role: String,
    pub role_id: String,
    pub session_name: String,
    /// The `Policy` passed to AssumeRole, narrowing the role's permissions.
    pub policy: Option<Value>,
}

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Caller {
    /// The account's root identity: RAM policies do not apply to it.
    Root { access_key_id: String },
    User {
        name: String,
        user_id: String,
        access_key_id: String,
    },
    Role {
        access_key_id: String,
        session: Session,
    },
    /// Unsigned (only AssumeRoleWithOIDC accepts it).
    Anonymous,
}

/// A request whose signature checked out (freshness not yet checked).
#[derive(Debug, Clone)]
pub struct Verified {
    pub caller: Caller,
    pub access_key_id: String,
    /// Signed with V3 (else V1).
    pub v3: bool,
    /// `Timestamp` (V1) or `x-acs-date` (V3), as sent; required by the freshness check.
    pub timestamp: Option<String>,
    /// `SignatureNonce` (V1) or `x-acs-signature-nonce` (V3); required likewise.
    pub nonce: Option<String>,
}

struct Bucket {
    tokens: f64,
    last: Instant,
}

/// A parsed incoming call, ready for the engine.
#[derive(Debug, Clone)]
pub struct Incoming {
    pub method: String,
    /// Query parameters only (V3 signs these).
    pub query: BTreeMap<String, String>,
    /// Query merged with the form body (V1 signs these; handlers read these).
    pub params: Params,
    /// Lower-case header names.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
    pub action: String,
    pub product: Product,
    pub region: String,
    pub source_ip: String,
}

/// The per-call context handed to product handlers.
pub struct Ctx<'a> {
    pub params: &'a Params,
    pub now: DateTime<Utc>,
    pub caller: Caller,
    pub region: String,
    pub source_ip: String,
    pub action: String,
}

pub struct Engine {
    pub state: State,
    /// The state a reset returns to.
    pub initial: State,
    /// The configuration a reset returns to (the start-up options).
    pub initial_config: Config,
    /// Entities created within the consistency delay: key -> when they become visible.
    pub visible_at: HashMap<String, DateTime<Utc>>,
    pub sessions: HashMap<String, Session>,
    nonces: HashMap<String, DateTime<Utc>>,
    buckets: HashMap<String, Bucket>,
    pub stats: Stats,
    pub config: Config,
    pub state_file: Option<PathBuf>,
    /// Set when a call changed the state (persisted after the call).
    pub dirty: bool,
}

impl Engine {
    pub fn new(state: State, config: Config, state_file: Option<PathBuf>) -> Engine {
        Engine {
            initial: state.clone(),
            initial_config: config.clone(),
            state,
            visible_at: HashMap::new(),
            sessions: HashMap::new(),
            nonces: HashMap::new(),
            buckets: HashMap::new(),
            stats: Stats::default(),
            config,
            state_file,
            dirty: false,
        }
    }

    pub fn apply_faults(&mut self, f: Faults) {
        if let Some(ms) = f.latency_ms {
            self.config.latency = Duration::from_millis(ms);
        }
        if let Some(r) = f.fault_rate {
            self.config.fault_rate = r.clamp(0.0, 1.0);
        }
        if let Some(s) = f.rate_limit_scale {
            self.config.rate_limit_scale = s.max(0.0);
            self.buckets.clear();
        }
        if let Some(ms) = f.consistency_delay_ms {
            self.config.consistency_delay = Duration::from_millis(ms);
        }
        if f.retry_after.is_some() {
            self.config.retry_after = f.retry_after;
        }
        if let Some(list) = f.fail_next {
            self.config.fail_next = list;
        }
        if let Some(list) = f.lose_reply_next {
            self.config.lose_reply_next = list;
        }
    }

    pub fn faults(&self) -> Faults {
        Faults {
            latency_ms: Some(self.config.latency.as_millis() as u64),
            fault_rate: Some(self.config.fault_rate),
            rate_limit_scale: Some(self.config.rate_limit_scale),
            consistency_delay_ms: Some(self.config.consistency_delay.as_millis() as u64),
            retry_after: self.config.retry_after,
            fail_next: Some(self.config.fail_next.clone()),
            lose_reply_next: Some(self.config.lose_reply_next.clone()),
        }
    }

    /// Replace the whole state (PUT /_emulator/state, reset). Issued STS credentials and
    /// pending visibility delays belong to the old state and go with it.
    pub fn replace_state(&mut self, state: State) {
        self.state = state;
        self.visible_at.clear();
        self.sessions.clear();
        self.dirty = true;
    }

    /// `POST /_emulator/reset`: as if freshly started: the start state, the start-up fault
    /// and quota settings (full buckets), no statistics. Seen nonces are kept: a replayed
    /// request stays a replay.
    pub fn reset(&mut self) {
        let initial = self.initial.clone();
        self.replace_state(initial);
        self.config = self.initial_config.clone();
        self.buckets.clear();
        self.stats = Stats::default();
    }

    /// Count a call and decide whether a fault is injected.
    pub fn admit(&mut self, action: &str) -> Option<Injected> {
        *self.stats.calls.entry(action.to_string()).or_default() += 1;
        if let Some(injected) =
            Self::scheduled(&mut self.config.fail_next, action, self.config.retry_after)
        {
            self.stats.injected_faults += 1;
            return Some(injected);
        }
        if let Some(injected) = Self::scheduled(
            &mut self.config.lose_reply_next,
            action,
            self.config.retry_after,
        ) {
            self.stats.injected_faults += 1;
            return Some(Injected::AfterApply(Box::new(injected)));
        }
        if self.config.fault_rate > 0.0 && rand::random::<f64>() < self.config.fault_rate {
            self.stats.injected_faults += 1;
            return Some(match rand::random_range(0..4u32) {
                0 => {
                    let mut e = throttling();
                    e.retry_after = self.config.retry_after;
                    Injected::Error(e)
                }
                1 => Injected::Error(ApiError::new(
                    503,
                    "ServiceUnavailable",
                    "The request has failed due to a temporary failure of the server.",
                )),
                2 => Injected::Error(ApiError::new(
                    500,
                    "InternalError",
                    "The request processing has failed due to some unknown error, exception or failure.",
                )),
                _ => Injected::Drop,
            });
        }
        None
    }

    /// The first scheduled fault for `action` in `list`, counted down (and dropped at zero).
    fn scheduled(
        list: &mut Vec<FailNext>,
        action: &str,
        retry_after: Option<u32>,
    ) -> Option<Injected> {
        let pos = list
            .iter()
            .position(|f| f.action == action && f.count > 0)?;
        let f = &mut list[pos];
        f.count -= 1;
        let f = f.clone();
        list.retain(|f| f.count > 0);
        if f.code.eq_ignore_ascii_case("drop") {
            return Some(Injected::Drop);
        }
        let status = f.status.unwrap_or_else(|| default_status(&f.code));
        let message = f
            .message
            .unwrap_or_else(|| format!("Injected fault {}.", f.code));
        let mut e = ApiError::new(status, f.code.clone(), message);
        if f.code.starts_with("Throttling") {
            e.retry_after = retry_after;
        }
        Some(Injected::Error(e))
    }

    pub fn record_error(&mut self, action: &str, code: &str) {
        *self.stats.errors.entry(code.to_string()).or_default() += 1;
        *self
            .stats
            .errors_by_action
            .entry(action.to_string())
            .or_default()
            .entry(code.to_string())
            .or_default() += 1;
    }

    /// Authenticate, apply the quota, and run the action at the current time.
    pub fn process(&mut self, inc: &Incoming) -> ApiResult<Value> {
        self.process_at(inc, Utc::now())
    }

    /// [`Engine::process`] with an injected clock (timestamps, nonces, STS expiry, dates).
    pub fn process_at(&mut self, inc: &Incoming, now: DateTime<Utc>) -> ApiResult<Value> {
        let caller = if inc.product == Product::Sts && inc.action == "AssumeRoleWithOIDC" {
            Caller::Anonymous
        } else {
            self.authenticate(inc, now)?
        };
        self.throttle(&inc.action, inc.product)?;
        let ctx = Ctx {
            params: &inc.params,
            now,
            caller,
            region: inc.region.clone(),
            source_ip: inc.source_ip.clone(),
            action: inc.action.clone(),
        };
        match inc.product {
            Product::Ram => super::ram::dispatch(self, &ctx),
            Product::Imm => super::imm::dispatch(self, &ctx),
            Product::Sts => super::sts::dispatch(self, &ctx),
        }
    }

    // ------------------------------------------------------------------ authentication

    /// Signature first ([`Engine::verify_signature`]), then freshness: the timestamp within
    /// [`MAX_SKEW`] and the nonce never seen before for this key.
    fn authenticate(&mut self, inc: &Incoming, now: DateTime<Utc>) -> ApiResult<Caller> {
        let v = self.verify_signature(inc, now)?;
        // V3 carries them in headers; the codes are the V1 parameters' (UNCONFIRMED for V3).
        let (ts_name, nonce_name) = if v.v3 {
            ("x-acs-date", "x-acs-signature-nonce")
        } else {
            ("Timestamp", "SignatureNonce")
        };
        let missing = |code: &str, name: &str| {
            ApiError::bad(code, format!("{name} is mandatory for this action."))
        };
        let ts = v
            .timestamp
            .as_deref()
            .ok_or_else(|| missing("MissingTimestamp", ts_name))?;
        let nonce = v
            .nonce
            .as_deref()
            .ok_or_else(|| missing("MissingSignatureNonce", nonce_name))?;
        self.check_time_and_nonce(ts, &v.access_key_id, nonce, now)?;
        Ok(v.caller)
    }

    /// Check the request's signature (V3 when the `Authorization` header says
    /// `ACS3-...`, else V1 from the parameters) against the key's secret, and resolve the
    /// key to its identity. Pure apart from reading the state: no nonce is recorded and the
    /// timestamp is not compared with the clock (`now` only decides whether an STS key has
    /// expired), so captured SDK requests can be replayed through it.
    pub fn verify_signature(&self, inc: &Incoming, now: DateTime<Utc>) -> ApiResult<Verified> {
        let auth_header = inc.headers.get("authorization");
        if let Some(h) = auth_header.filter(|h| h.trim_start().starts_with("ACS3-")) {
            return self.verify_v3(inc, h, now);
        }
        if inc.params.get("Signature").is_some() || inc.params.get("AccessKeyId").is_some() {
            return self.verify_v1(inc, now);
        }
        // UNCONFIRMED: the gateway's code for a request with no credentials at all.
        Err(ApiError::bad(
            "MissingAccessKeyId",
            "AccessKeyId is mandatory for this action.",
        ))
    }

    fn verify_v1(&self, inc: &Incoming, now: DateTime<Utc>) -> ApiResult<Verified> {
        let p = &inc.params;
        let akid = p.required("AccessKeyId")?.to_string();
        let signature = p.required("Signature")?.to_string();
        if let Some(m) = p.non_empty("SignatureMethod")
            && m != "HMAC-SHA1"
        {
            // UNCONFIRMED code for an unsupported V1 signature method.
            return Err(ApiError::bad(
                "InvalidSignatureMethod",
                format!("Specified signature method is not valid: {m:.32}"),
            ));
        }
        let token = p.non_empty("SecurityToken").map(str::to_string);
        let (secret, caller) = self.resolve_key(&akid, token.as_deref(), now)?;
        let mut signed = p.0.clone();
        signed.remove("Signature");
        let expected = signer::sign_v1(&inc.method, &signed, &secret);
        if expected != signature {
            return Err(signature_mismatch(&signer::string_to_sign_v1(
                &inc.method,
                &signed,
            )));
        }
        Ok(Verified {
            caller,
            access_key_id: akid,
            v3: false,
            timestamp: p.non_empty("Timestamp").map(str::to_string),
            nonce: p.non_empty("SignatureNonce").map(str::to_string),
        })
    }

    fn verify_v3(&self, inc: &Incoming, header: &str, now: DateTime<Utc>) -> ApiResult<Verified> {
        let Some(auth) = signer::parse_authorization_v3(header) else {
            // UNCONFIRMED code for a malformed Authorization header.
            return Err(ApiError::bad(
                "InvalidAuthorization",
                "The Authorization header is not a valid ACS3-HMAC-SHA256 authorization.",
            ));
        };
        let token = inc.headers.get("x-acs-security-token").cloned();
        let (secret, caller) = self.resolve_key(&auth.access_key_id, token.as_deref(), now)?;
        let mut signed = BTreeMap::new();
        for name in &auth.signed_headers {
            signed.insert(
                name.clone(),
                inc.headers.get(name).cloned().unwrap_or_default(),
            );
        }
        // The headers that identify the call must be covered by the signature: host, the
        // date and nonce, and the action / version when they come from headers (else an
        // intermediary could turn a signed GetRole into an unsigned DeleteRole).
        let mut required = vec!["host", "x-acs-date", "x-acs-signature-nonce"];
        if !inc.query.contains_key("Action") {
            required.push("x-acs-action");
        }
        if !inc.query.contains_key("Version") {
            required.push("x-acs-version");
        }
        let missing_required = required.iter().any(|h| !signed.contains_key(*h));
        let cr = signer::canonical_request_v3(
            &inc.method,
            "/",
            &inc.query,
            &signed,
            &signer::hashed_payload_v3(&inc.body),
        );
        let sts = signer::string_to_sign_v3(&cr);
        let expected = signer::sign_v3(&sts, &secret);
        if missing_required || expected != auth.signature.to_ascii_lowercase() {
            return Err(signature_mismatch(&sts));
        }
        Ok(Verified {
            caller,
            access_key_id: auth.access_key_id,
            v3: true,
            timestamp: inc.headers.get("x-acs-date").cloned(),
            nonce: inc.headers.get("x-acs-signature-nonce").cloned(),
        })
    }

    /// The secret of an access key and the identity it stands for.
    fn resolve_key(
        &self,
        akid: &str,
        token: Option<&str>,
        now: DateTime<Utc>,
    ) -> ApiResult<(String, Caller)> {
        let not_found = || {
            ApiError::new(
                404,
                "InvalidAccessKeyId.NotFound",
                "Specified access key is not found.",
            )
        };
        if let Some(session) = self.sessions.get(akid) {
            // Expired STS keys answer like unknown keys (reference §2.2).
            if session.expiration <= now {
                return Err(not_found());
            }
            match token {
                Some(t) if t == session.token => {}
                // UNCONFIRMED codes for a missing / wrong STS token.
                None => {
                    return Err(ApiError::bad(
                        "InvalidSecurityToken.Missing",
                        "SecurityToken is mandatory for temporary credentials.",
                    ));
                }
                Some(_) => {
                    return Err(ApiError::bad(
                        "InvalidSecurityToken.MismatchWithAccessKey",
                        "Specified SecurityToken mismatch with the AccessKey.",
                    ));
                }
            }
            let session = session.clone();
            return Ok((
                session.secret.clone(),
                Caller::Role {
                    access_key_id: akid.to_string(),
                    session,
                },
            ));
        }
        let key = self
            .state
            .access_keys
            .iter()
            .find(|k| k.id == akid)
            .ok_or_else(not_found)?;
        let caller = match &key.user {
            None => Caller::Root {
                access_key_id: akid.to_string(),
            },
            Some(u) => {
                let user = self.state.users.get(u).ok_or_else(not_found)?;
                Caller::User {
                    name: u.clone(),
                    user_id: user.user_id.clone(),
                    access_key_id: akid.to_string(),
                }
            }
        };
        Ok((key.secret.clone(), caller))
    }

    fn check_time_and_nonce(
        &mut self,
        timestamp: &str,
        akid: &str,
        nonce: &str,
        now: DateTime<Utc>,
    ) -> ApiResult<()> {
        let t = DateTime::parse_from_rfc3339(timestamp)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| {
                // UNCONFIRMED code for an unparsable timestamp.
                ApiError::bad(
                    "InvalidTimeStamp.Format",
                    format!(
                        "Specified time stamp or date value is not well formatted: {timestamp:.40}"
                    ),
                )
            })?;
        if (now - t).abs() > MAX_SKEW {
            // UNCONFIRMED: the gateway's code for clock skew (reference §2.2).
            return Err(ApiError::bad(
                "InvalidTimeStamp.Expired",
                format!(
                    "Specified time stamp or date value is expired. server time is {}",
                    super::wire::ram_time(now)
                ),
            ));
        }
        self.nonces.retain(|_, exp| *exp > now);
        let key = format!("{akid}\u{0}{nonce}");
        if self.nonces.contains_key(&key) {
            return Err(ApiError::bad(
                "SignatureNonceUsed",
                "Specified signature nonce was used already.",
            ));
        }
        self.nonces.insert(key, now + MAX_SKEW * 2);
        Ok(())
    }

    // ------------------------------------------------------------------ quotas

    fn throttle(&mut self, action: &str, product: Product) -> ApiResult<()> {
        let scale = self.config.rate_limit_scale;
        if scale <= 0.0 {
            return Ok(());
        }
        let rate = quota(product, action) * scale;
        let key = format!("{}/{:?}/{action}", self.state.account_id, product);
        let now = Instant::now();
        let b = self.buckets.entry(key).or_insert(Bucket {
            tokens: rate.max(1.0),
            last: now,
        });
        let elapsed = now.duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * rate).min(rate.max(1.0));
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            self.stats.throttled += 1;
            Err(throttling())
        }
    }

    // ------------------------------------------------------------------ authorization

    /// Is the entity (`role/x`, `policy/x`, `project/<region>/x`) visible to reads yet?
    pub fn visible(&self, key: &str, now: DateTime<Utc>) -> bool {
        self.visible_at.get(key).is_none_or(|t| *t <= now)
    }

    /// Record a creation for the consistency delay.
    pub fn created(&mut self, key: String, now: DateTime<Utc>) {
        if !self.config.consistency_delay.is_zero() {
            // An absurd delay (set through /_emulator/faults) saturates instead of
            // overflowing the date arithmetic.
            let until = chrono::TimeDelta::from_std(self.config.consistency_delay)
                .ok()
                .and_then(|d| now.checked_add_signed(d))
                .unwrap_or(DateTime::<Utc>::MAX_UTC);
            self.visible_at.insert(key, until);
        } else {
            self.visible_at.remove(&key);
        }
    }

    /// The document of the default version of a policy (System or Custom), if it exists.
    pub fn policy_document(&self, policy_type: &str, name: &str) -> Option<Value> {
        let text = if policy_type == "System" {
            system::builtin()
                .get(name)
                .or_else(|| self.state.system_policies.get(name))
                .map(|p| p.document.0.clone())?
        } else {
            let p = self.state.policies.get(name)?;
            p.versions
                .iter()
                .find(|v| v.id == p.default_version)
                .map(|v| v.document.0.clone())?
        };
        serde_json::from_str(&text).ok()
    }

    /// Documents of every policy attached to a role.
    pub fn role_documents(&self, role: &str) -> Vec<Value> {
        self.state
            .roles
            .get(role)
            .map(|r| {
                r.policies
                    .iter()
                    .filter_map(|a| self.policy_document(&a.policy_type, &a.name))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The request context every evaluation sees.
    pub fn base_request(ctx: &Ctx<'_>, action: &str, resource: &str) -> Request {
        let mut r = Request::new(action, resource)
            .with("acs:CurrentTime", super::wire::ram_time(ctx.now))
            .with("acs:SecureTransport", "false")
            .with("acs:SourceIp", ctx.source_ip.clone());
        match &ctx.caller {
            Caller::User { access_key_id, .. }
            | Caller::Root { access_key_id }
            | Caller::Role { access_key_id, .. } => {
                r = r.with("acs:AccessId", access_key_id.clone());
            }
            Caller::Anonymous => {}
        }
        r
    }

    /// Evaluate a request for the caller: user policies, or the assumed role's policies
    /// intersected with the session policy.
    pub fn decide(&self, ctx: &Ctx<'_>, req: &Request) -> Decision {
        match &ctx.caller {
            Caller::Root { .. } => Decision::Allow,
            Caller::Anonymous => Decision::ImplicitDeny,
            Caller::User { name, .. } => {
                let docs: Vec<Value> = self
                    .state
                    .users
                    .get(name)
                    .map(|u| {
                        u.policies
                            .iter()
                            .filter_map(|a| self.policy_document(&a.policy_type, &a.name))
                            .collect()
                    })
                    .unwrap_or_default();
                let refs: Vec<&Value> = docs.iter().collect();
                eval::evaluate(&refs, req)
            }
            Caller::Role { session, .. } => {
                let docs = self.role_documents(&session.role);
                let refs: Vec<&Value> = docs.iter().collect();
                let d = eval::evaluate(&refs, req);
                match (&session.policy, d) {
                    (Some(p), Decision::Allow) => eval::evaluate(&[p], req),
                    (_, d) => d,
                }
            }
        }
    }

    /// Check one action on one resource; on refusal, the product's permission error.
    pub fn authorize(&self, ctx: &Ctx<'_>, action: &str, resource: &str) -> ApiResult<()> {
        let req = Self::base_request(ctx, action, resource);
        self.authorize_request(ctx, &req)
    }

    pub fn authorize_request(&self, ctx: &Ctx<'_>, req: &Request) -> ApiResult<()> {
        match self.decide(ctx, req) {
            Decision::Allow => Ok(()),
            d => Err(self.no_permission(ctx, &req.action, d)),
        }
    }

    /// The permission error, for every product: `NoPermission` 403 with
    /// `AccessDeniedDetail` (reference §2.1, §2.2). For IMM 2020-09-30 the exact code is
    /// UNCONFIRMED (reference §4.6 lists `NoPermission` / `Forbidden`); the contract
    /// is `NoPermission` for a caller with no matching Allow.
    pub fn no_permission(&self, ctx: &Ctx<'_>, action: &str, d: Decision) -> ApiError {
        let mut e = ApiError::new(
            403,
            "NoPermission",
            "You are not authorized to do this action. You should be authorized by RAM.",
        );
        e.access_denied_detail = Some(self.access_denied_detail(ctx, action, d));
        e
    }

    pub fn access_denied_detail(&self, ctx: &Ctx<'_>, action: &str, d: Decision) -> Value {
        use base64::Engine as _;
        let (ptype, display) = match &ctx.caller {
            Caller::User { name, .. } => ("SubUser", name.clone()),
            Caller::Role { session, .. } => (
                "AssumedRoleUser",
                format!("{}:{}", session.role_id, session.session_name),
            ),
            Caller::Root { .. } => ("Account", self.state.account_id.clone()),
            Caller::Anonymous => ("Anonymous", String::new()),
        };
        let kind = if d == Decision::ExplicitDeny {
            "ExplicitDeny"
        } else {
            "ImplicitDeny"
        };
        let diag = json!({"AuthAction": action, "NoPermissionType": kind});
        json!({
            "AuthAction": action,
            "AuthPrincipalType": ptype,
            "AuthPrincipalOwnerId": self.state.account_id,
            "AuthPrincipalDisplayName": display,
            "PolicyType": "AccountLevelIdentityBasedPolicy",
            "NoPermissionType": kind,
            "EncodedDiagnosticMessage": base64::engine::general_purpose::STANDARD.encode(diag.to_string()),
        })
    }

    // ------------------------------------------------------------------ helpers

    pub fn role_arn(&self, name: &str) -> String {
        format!("acs:ram::{}:role/{name}", self.state.account_id)
    }
    pub fn ram_role_resource(&self, name: &str) -> String {
        format!("acs:ram:*:{}:role/{name}", self.state.account_id)
    }
    pub fn ram_policy_resource(&self, name: &str) -> String {
        format!("acs:ram:*:{}:policy/{name}", self.state.account_id)
    }
    pub fn imm_project_resource(&self, region: &str, name: &str) -> String {
        format!("acs:imm:{region}:{}:project/{name}", self.state.account_id)
    }
}

/// `SignatureDoesNotMatch` with the server's string to sign after the last `:` of the
/// fixed text: the old Python SDK runs `Message.split(':')[1]` and compares it with its own
/// string to sign (and crashes when there is no `:`). The V1 string to sign contains no
/// raw `:` (it is percent-encoded), so the split yields it whole.
pub fn signature_mismatch(string_to_sign: &str) -> ApiError {
    ApiError::bad(
        "SignatureDoesNotMatch",
        format!(
            "Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"
        ),
    )
}

pub fn throttling() -> ApiError {
    ApiError::bad(
        "Throttling.User",
        "Request was denied due to user flow control.",
    )
}

fn default_status(code: &str) -> u16 {
    if code.starts_with("Throttling") {
        400
    } else if code == "ServiceUnavailable" {
        503
    } else if code == "InternalError" || code == "UnknownError" {
        500
    } else if code.contains("NotExist") || code.contains("NotFound") {
        404
    } else if code.contains("AlreadyExist") || code.contains("Conflict") {
        409
    } else {
        400
    }
}

/// Calls per second per account allowed for an action (reference §1.6; IMM and STS
/// figures UNCONFIRMED: 100 for reads, 20 for writes).
pub fn quota(product: Product, action: &str) -> f64 {
    let read = ["Get", "List", "Query", "Describe", "Batch"]
        .iter()
        .any(|p| action.starts_with(p));
    match product {
        Product::Ram => match action {
            "AttachPolicyToRole"
            | "DetachPolicyFromRole"
            | "AttachPolicyToUser"
            | "DetachPolicyFromUser"
            | "TagResources"
            | "UntagResources" => 10.0,
            _ if read => 100.0,
            _ => 20.0,
        },
        Product::Imm => {
            if read {
                100.0
            } else {
                20.0
            }
        }
        Product::Sts => 100.0,
    }
}
