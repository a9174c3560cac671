//! The way into RAM / IMM / STS: the signer (pure: takes time and nonce), wire types per
//! action, the error envelope, the client (reqwest, retries, per-action rate limits) and the
//! credential chain.
//!
//! Start at [`Client`] (construction, [`Client::metrics`]), then the typed operations in
//! [`ram`], [`imm`] and [`sts`]. Errors are [`Error`] / [`ApiError`]; branch on `Code`.
//! Must not: log a request URL, a secret or a token; read the environment outside
//! [`credentials`].

pub mod client;
pub mod credentials;
pub mod error;
pub mod imm;
pub mod metrics;
pub mod pages;
pub mod ram;
pub mod ratelimit;
pub mod retry;
pub mod signer;
pub mod sts;
pub mod wire;

pub use client::{Client, ClientConfig, Endpoints, Product};
pub use credentials::{ChainConfig, Credentials, CredentialsError, CredentialsProvider};
pub use error::{ApiError, Error, Result};
pub use metrics::{ActionMetrics, MetricsSnapshot};
pub use ratelimit::RateLimits;
pub use retry::RetryPolicy;
