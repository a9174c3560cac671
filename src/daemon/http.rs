//! The daemon's HTTP endpoints. All of them only read the shared state; none changes
//! anything, so they need no authentication beyond network policy.
//!
//! | path | answer |
//! |---|---|
//! | `GET /healthz` | 200 `ok`: the process is alive and serving |
//! | `GET /readyz` | 200 when a tick succeeded within the last three intervals and the manifests are valid; 503 otherwise; the body says why |
//! | `GET /metrics` | Prometheus text exposition 0.0.4 |
//! | `GET /status`, `GET /` | JSON diagnostics: last tick, last plan summary, last error, manifest digest |

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::metrics::CONTENT_TYPE;
use super::status::Shared;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/status", get(status))
        .route("/", get(status))
        .fallback(not_found)
        .with_state(shared)
}

fn text(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

async fn healthz() -> Response {
    text(StatusCode::OK, "ok\n".into())
}

async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let (ready, why) = shared.readiness();
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    text(code, format!("{why}\n"))
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        shared.render_metrics(),
    )
        .into_response()
}

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    let mut body = serde_json::to_string_pretty(&shared.status_json())
        .unwrap_or_else(|e| format!("{{\"error\": \"bug: status not serializable: {e}\"}}"));
    body.push('\n');
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

async fn not_found() -> Response {
    text(
        StatusCode::NOT_FOUND,
        "not found; try /healthz, /readyz, /metrics or /status\n".into(),
    )
}
