//! The emulator: a faithful stand-in for RAM 2015-05-01, IMM 2020-09-30 and STS 2015-04-01 on
//! one HTTP listener, used by every test and by `--emulator`. Of our modules it uses only
//! `cloud::signer` and `policy`.
//!
//! Faithful, not forgiving: it verifies V1 and V3 signatures, timestamps and nonces, answers
//! with the real error envelope, codes and statuses, paginates, enforces RAM limits, refuses
//! conflicting deletes, and authorizes every call with the caller's policies. It must never
//! be weakened to make the product pass: a client bug the real service would refuse is
//! refused here too.
//!
//! docs/emulator.md is its spec map (each promise with the code and the test that proves
//! it), and documents the state file, the control endpoints and every choice made where the
//! service's behaviour is UNCONFIRMED.
//!
//! Layout: `wire` (decoding, envelope), `engine` (auth, quotas, faults, authorization),
//! `ram` / `imm` / `sts` (product semantics), `state` (the state file), `system` (built-in
//! System policies). This file is the HTTP layer and the public API.

mod engine;
mod imm;
mod ram;
pub mod state;
mod sts;
mod system;
#[cfg(test)]
mod tests;
mod wire;

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;

pub use engine::{FailNext, Faults, Stats};
pub use state::State;

use engine::{Config, Engine, Incoming, Injected};
use wire::{ApiError, Params, Product};

/// The region used for IMM when neither `RegionId` nor the Host header names one.
pub const DEFAULT_REGION: &str = "cn-hangzhou";

/// How to start an emulator.
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    /// Initial state. `None`: load `state_file` if it exists, else a fresh default account.
    pub state: Option<State>,
    /// Where to persist the state after every mutating call (atomic write). Also the file
    /// loaded at start when `state` is `None`.
    pub state_file: Option<PathBuf>,
    /// Added to every API call.
    pub latency: Duration,
    /// Probability of a random injected fault per call.
    pub fault_rate: f64,
    /// Quota multiplier (reference §1.6 figures); 0 disables quotas. Default here: 0
    /// (tests); the CLI default is 1.
    pub rate_limit_scale: f64,
    /// How long a just-created role / policy / project is invisible to reads.
    pub consistency_delay: Duration,
    /// Default IMM region.
    pub region: String,
}

impl Default for EmulatorOptions {
    fn default() -> Self {
        EmulatorOptions {
            state: None,
            state_file: None,
            latency: Duration::ZERO,
            fault_rate: 0.0,
            rate_limit_scale: 0.0,
            consistency_delay: Duration::ZERO,
            region: DEFAULT_REGION.to_string(),
        }
    }
}

struct Shared {
    engine: Mutex<Engine>,
}

impl Shared {
    fn new(opts: EmulatorOptions) -> io::Result<Shared> {
        let now = wire::ram_time(chrono::Utc::now());
        let mut st = match (&opts.state, &opts.state_file) {
            (Some(s), _) => s.clone(),
            (None, Some(path)) if path.exists() => State::load(path, &now)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            _ => State::default(),
        };
        st.normalize(&now);
        if let Some(path) = &opts.state_file {
            st.save(path).map_err(|e| match e {
                state::StateError::Write { path, source } => io::Error::new(
                    source.kind(),
                    state::StateError::Unwritable { path, source },
                ),
                other => io::Error::other(other),
            })?;
        }
        let config = Config {
            latency: opts.latency,
            fault_rate: opts.fault_rate.clamp(0.0, 1.0),
            rate_limit_scale: opts.rate_limit_scale.max(0.0),
            consistency_delay: opts.consistency_delay,
            retry_after: None,
            fail_next: Vec::new(),
            lose_reply_next: Vec::new(),
            region: opts.region.clone(),
        };
        Ok(Shared {
            engine: Mutex::new(Engine::new(st, config, opts.state_file.clone())),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Engine> {
        // A panic while holding the lock must not take the emulator down with it.
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Write the state file if the state changed. On failure the state stays dirty (the
    /// next call retries) and the caller answers `InternalError`: a write is acknowledged
    /// only once it is on disk.
    fn persist(engine: &mut Engine) -> Result<(), state::StateError> {
        if !engine.dirty {
            return Ok(());
        }
        if let Some(path) = engine.state_file.clone()
            && let Err(e) = engine.state.save(&path)
        {
            tracing::error!(error = %e, "emulator: could not persist state");
            return Err(e);
        }
        engine.dirty = false;
        Ok(())
    }
}

/// A running in-process emulator.
pub struct EmulatorHandle {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl EmulatorHandle {
    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn stats(&self) -> Stats {
        self.shared.lock().stats.clone()
    }
    pub fn reset_stats(&self) {
        self.shared.lock().stats = Stats::default();
    }
    /// Merge fault settings (absent fields keep their value).
    pub fn set_faults(&self, faults: Faults) {
        self.shared.lock().apply_faults(faults);
    }
    /// A snapshot of the whole state.
    pub fn state(&self) -> State {
        self.shared.lock().state.clone()
    }
    /// Replace the whole state (persisted when a state file is set).
    pub fn put_state(&self, mut state: State) {
        state.normalize(&wire::ram_time(chrono::Utc::now()));
        let mut e = self.shared.lock();
        e.replace_state(state);
        // A failure is logged; the next call retries the write.
        let _ = Shared::persist(&mut e);
    }
    /// Stop serving and wait for the server task.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Start an emulator on `127.0.0.1:0` inside the current tokio runtime.
pub async fn spawn(opts: EmulatorOptions) -> io::Result<EmulatorHandle> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared::new(opts)?);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = router(shared.clone());
    let task = tokio::spawn(async move {
        let server = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = rx.await;
        });
        if let Err(e) = server.await {
            tracing::error!(error = %e, "emulator server stopped");
        }
    });
    Ok(EmulatorHandle {
        addr,
        shared,
        shutdown: Some(tx),
        task,
    })
}

/// An emulator whose state is loaded (and the state file written) but that does not serve
/// yet: the CLI builds it first, so a broken state file fails before anything listens and
/// the file exists by the time "listening" is announced.
pub struct Server {
    shared: Arc<Shared>,
}

impl Server {
    pub fn new(opts: EmulatorOptions) -> io::Result<Server> {
        Ok(Server {
            shared: Arc::new(Shared::new(opts)?),
        })
    }

    /// Serve on an already bound listener until `shutdown` completes.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> io::Result<()> {
        axum::serve(
            listener,
            router(self.shared).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
    }
}

/// Serve on an already bound listener until `shutdown` completes.
pub async fn serve(
    listener: tokio::net::TcpListener,
    opts: EmulatorOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    Server::new(opts)?.serve(listener, shutdown).await
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(api).post(api))
        .route("/_emulator/state", get(get_state).put(put_state))
        .route("/_emulator/reset", post(reset))
        .route("/_emulator/stats", get(get_stats))
        .route("/_emulator/faults", get(get_faults).put(put_faults))
        .fallback(not_found)
        // For the control endpoints' bodies (the API handler applies MAX_BODY_BYTES itself).
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024 * 1024))
        .with_state(shared)
}

// ---------------------------------------------------------------------- control endpoints

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    resp
}

async fn get_state(AxState(shared): AxState<Arc<Shared>>) -> Response {
    let st = shared.lock().state.clone();
    json_response(
        StatusCode::OK,
        &serde_json::to_value(&st).unwrap_or(Value::Null),
    )
}

async fn put_state(AxState(shared): AxState<Arc<Shared>>, body: Bytes) -> Response {
    let text = String::from_utf8_lossy(&body);
    // The checks a state file gets at load: all problems, each with where it is.
    let parsed = State::from_text(&text).map(|st| {
        let problems = st.problems();
        (st, problems)
    });
    match parsed {
        Ok((_, problems)) if !problems.is_empty() => json_response(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({
                "error": "invalid state: not a usable emulator state",
                "problems": problems,
            }),
        ),
        Ok((mut st, _)) => {
            st.normalize(&wire::ram_time(chrono::Utc::now()));
            let mut e = shared.lock();
            e.replace_state(st);
            persisted_ok(Shared::persist(&mut e))
        }
        Err(msg) => json_response(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({"error": format!("invalid state: {msg}")}),
        ),
    }
}

async fn reset(AxState(shared): AxState<Arc<Shared>>) -> Response {
    let mut e = shared.lock();
    e.reset();
    persisted_ok(Shared::persist(&mut e))
}

fn persisted_ok(r: Result<(), state::StateError>) -> Response {
    match r {
        Ok(()) => json_response(StatusCode::OK, &serde_json::json!({"ok": true})),
        Err(e) => json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &serde_json::json!({"error": e.to_string()}),
        ),
    }
}

async fn get_stats(AxState(shared): AxState<Arc<Shared>>) -> Response {
    let s = shared.lock().stats.clone();
    json_response(
        StatusCode::OK,
        &serde_json::to_value(&s).unwrap_or(Value::Null),
    )
}

async fn get_faults(AxState(shared): AxState<Arc<Shared>>) -> Response {
    let f = shared.lock().faults();
    json_response(
        StatusCode::OK,
        &serde_json::to_value(&f).unwrap_or(Value::Null),
    )
}

/// Every action the emulator serves (the arms of `ram::dispatch`, `imm::dispatch`,
/// `sts::dispatch`; a unit test keeps them in step).
pub const ACTIONS: &[&str] = &[
    "CreateRole",
    "GetRole",
    "UpdateRole",
    "DeleteRole",
    "ListRoles",
    "CreatePolicy",
    "GetPolicy",
    "ListPolicies",
    "UpdatePolicyDescription",
    "DeletePolicy",
    "CreatePolicyVersion",
    "GetPolicyVersion",
    "ListPolicyVersions",
    "SetDefaultPolicyVersion",
    "DeletePolicyVersion",
    "AttachPolicyToRole",
    "DetachPolicyFromRole",
    "ListPoliciesForRole",
    "ListEntitiesForPolicy",
    "TagResources",
    "UntagResources",
    "ListTagResources",
    "ListPoliciesForUser",
    "ListGroupsForUser",
    "ListPoliciesForGroup",
    "CreateProject",
    "GetProject",
    "UpdateProject",
    "DeleteProject",
    "ListProjects",
    "CreateDataset",
    "GetDataset",
    "UpdateDataset",
    "DeleteDataset",
    "ListDatasets",
    "CreateBinding",
    "GetBinding",
    "DeleteBinding",
    "ListBindings",
    "GetCallerIdentity",
    "AssumeRole",
    "AssumeRoleWithOIDC",
];

/// What in fault settings the emulator would not do as asked, all of it: a scheduled fault
/// for an action it does not serve would never fire (a test with a typo,
/// `CreatePolicyVerison`, would pass without its fault), and values out of range used to be
/// clamped or answered as something else. `None`: all usable.
fn fault_problems(f: &Faults) -> Option<String> {
    let mut bad: Vec<String> = [
        ("failNext", &f.fail_next),
        ("loseReplyNext", &f.lose_reply_next),
    ]
    .into_iter()
    .flat_map(|(field, list)| {
        list.iter().flatten().enumerate().flat_map(move |(i, n)| {
            let action = (!ACTIONS.contains(&n.action.as_str()))
                .then(|| format!("{field}[{i}].action: unknown action {:?}", n.action));
            // An HTTP error status: anything else would be answered as something it is not.
            let status = n.status.filter(|s| !(400..=599).contains(s)).map(|s| {
                format!("{field}[{i}].status: {s} is not an HTTP error status (400 to 599)")
            });
            action.into_iter().chain(status)
        })
    })
    .collect();
    // Out of range used to be clamped silently (`faultRate: 2` ran at 1).
    if let Some(r) = f.fault_rate.filter(|r| !(0.0..=1.0).contains(r)) {
        bad.push(format!("faultRate: {r} is not a probability (0 to 1)"));
    }
    if let Some(s) = f.rate_limit_scale.filter(|s| !(s.is_finite() && *s >= 0.0)) {
        bad.push(format!(
            "rateLimitScale: {s} is not a factor of 0 or more (0 turns quotas off)"
        ));
    }
    (!bad.is_empty()).then(|| bad.join("; "))
}

async fn put_faults(AxState(shared): AxState<Arc<Shared>>, body: Bytes) -> Response {
    let parsed = serde_json::from_slice::<Faults>(&body)
        .map_err(|e| e.to_string())
        .and_then(|f| fault_problems(&f).map_or(Ok(f), Err));
    match parsed {
        Ok(f) => {
            let mut e = shared.lock();
            e.apply_faults(f);
            json_response(
                StatusCode::OK,
                &serde_json::to_value(e.faults()).unwrap_or(Value::Null),
            )
        }
        Err(err) => json_response(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({"error": format!("invalid faults: {err}")}),
        ),
    }
}

async fn not_found(uri: Uri) -> Response {
    let _ = uri;
    error_response(
        &ApiError::new(
            404,
            "InvalidAction.NotFound",
            "Specified api is not found, please check your url and method.",
        ),
        None,
        DEFAULT_REGION,
    )
}

// ---------------------------------------------------------------------- the API

fn error_response(err: &ApiError, product: Option<Product>, region: &str) -> Response {
    let rid = wire::request_id();
    let status = StatusCode::from_u16(err.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut resp = json_response(status, &err.body(&rid, product, region));
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("x-acs-request-id", v);
    }
    if let Some(secs) = err.retry_after
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        resp.headers_mut().insert("x-acs-retry-after", v);
    }
    resp
}

fn success_response(mut body: Value) -> Response {
    let rid = wire::request_id();
    if let Value::Object(m) = &mut body {
        m.insert("RequestId".to_string(), Value::String(rid.clone()));
    }
    let mut resp = json_response(StatusCode::OK, &body);
    if let Ok(v) = HeaderValue::from_str(&rid) {
        resp.headers_mut().insert("x-acs-request-id", v);
    }
    resp
}

/// A body that fails at once: hyper aborts the connection mid-response (a dropped
/// connection as the client sees it).
struct BrokenReader;

impl tokio::io::AsyncRead for BrokenReader {
    fn poll_read(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        _buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::ConnectionReset,
            "injected dropped connection",
        )))
    }
}

fn dropped_response() -> Response {
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(BrokenReader));
    (StatusCode::OK, body).into_response()
}

/// Decode method, query, form body and headers into an [`Incoming`] call.
fn decode(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
    peer: SocketAddr,
    default_region: &str,
) -> Result<Incoming, (ApiError, Option<Product>)> {
    let mut hmap: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        if let Ok(v) = value.to_str() {
            hmap.insert(name.as_str().to_ascii_lowercase(), v.to_string());
        }
    }
    let bad = |e: wire::DecodeError| (ApiError::bad("InvalidParameter", e.0), None);
    let query_pairs = wire::decode_form(uri.query().unwrap_or("")).map_err(bad)?;
    let query: BTreeMap<String, String> = query_pairs.into_iter().collect();
    let mut params = query.clone();
    let is_form = hmap.get("content-type").is_some_and(|c| {
        c.to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
    });
    if is_form && !body.is_empty() {
        let text = std::str::from_utf8(body).map_err(|_| {
            (
                ApiError::bad("InvalidParameter", "The request body is not valid UTF-8."),
                None,
            )
        })?;
        for (k, v) in wire::decode_form(text).map_err(bad)? {
            params.insert(k, v);
        }
    }
    let version = params
        .get("Version")
        .cloned()
        .or_else(|| hmap.get("x-acs-version").cloned());
    let action = params
        .get("Action")
        .cloned()
        .or_else(|| hmap.get("x-acs-action").cloned());
    let product_hint = version.as_deref().and_then(Product::from_version);
    let Some(action) = action.filter(|a| !a.is_empty()) else {
        // UNCONFIRMED: the gateway's code for a call without Action.
        return Err((
            ApiError::bad("MissingAction", "Action is mandatory for this action."),
            product_hint,
        ));
    };
    let Some(version) = version.filter(|v| !v.is_empty()) else {
        return Err((
            ApiError::bad("MissingVersion", "Version is mandatory for this action."),
            None,
        ));
    };
    let Some(product) = Product::from_version(&version) else {
        return Err((ram::unknown_action(), None));
    };
    let region = params
        .get("RegionId")
        .filter(|r| !r.is_empty())
        .cloned()
        .or_else(|| {
            let host = hmap.get("host")?;
            let host = host.split(':').next()?;
            let rest = host.strip_prefix("imm.")?;
            let region = rest.strip_suffix(".aliyuncs.com")?;
            (!region.is_empty() && !region.contains('.')).then(|| region.to_string())
        })
        .unwrap_or_else(|| default_region.to_string());
    Ok(Incoming {
        method: method.as_str().to_string(),
        query,
        params: Params(params),
        headers: hmap,
        body: body.to_vec(),
        action,
        product,
        region,
        source_ip: peer.ip().to_string(),
    })
}

/// The largest API request body accepted (far above any real request: documents are at
/// most 6 KiB). Bigger bodies get the error envelope, never a hang or a plain-text answer.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

async fn api(
    AxState(shared): AxState<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let default_region = shared.lock().config.region.clone();
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(b) => b,
        Err(_) => {
            // UNCONFIRMED: the gateway's answer to an oversized body; 413 with the envelope.
            let err = ApiError::new(
                413,
                "InvalidParameter",
                format!("The request body is larger than {MAX_BODY_BYTES} bytes."),
            );
            shared.lock().record_error("(undecodable)", &err.code);
            return error_response(&err, None, &default_region);
        }
    };
    let inc = match decode(&method, &uri, &headers, &body, peer, &default_region) {
        Ok(inc) => inc,
        Err((err, product)) => {
            let mut e = shared.lock();
            e.record_error("(undecodable)", &err.code);
            return error_response(&err, product, &default_region);
        }
    };
    let (injected, latency) = {
        let mut e = shared.lock();
        (e.admit(&inc.action), e.config.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let lost_reply = match injected {
        Some(Injected::Drop) => return dropped_response(),
        Some(Injected::Error(err)) => {
            shared.lock().record_error(&inc.action, &err.code);
            return error_response(&err, Some(inc.product), &inc.region);
        }
        Some(Injected::AfterApply(answer)) => Some(answer),
        None => None,
    };
    let mut e = shared.lock();
    let mut result = e.process(&inc);
    if let Some(answer) = lost_reply {
        // The call was carried out (and is persisted below); its reply is lost.
        let _ = Shared::persist(&mut e);
        return match *answer {
            Injected::Error(err) => {
                e.record_error(&inc.action, &err.code);
                error_response(&err, Some(inc.product), &inc.region)
            }
            _ => dropped_response(),
        };
    }
    if Shared::persist(&mut e).is_err() && result.is_ok() {
        // The change is in memory but not on disk: not acknowledged (a real service whose
        // storage fails answers the same way, and the caller may retry).
        result = Err(ApiError::new(
            500,
            "InternalError",
            "The request processing has failed due to some unknown error, exception or failure.",
        ));
    }
    match result {
        Ok(body) => {
            tracing::debug!(action = %inc.action, "emulator: ok");
            success_response(body)
        }
        Err(err) => {
            e.record_error(&inc.action, &err.code);
            tracing::debug!(action = %inc.action, code = %err.code, "emulator: error");
            error_response(&err, Some(inc.product), &inc.region)
        }
    }
}
