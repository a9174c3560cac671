//! `immctl run`: the tick loop, graceful shutdown, and the HTTP endpoints (`/healthz`,
//! `/readyz`, `/metrics`, `/status`).
