//! The way into RAM / IMM / STS: the signer (pure: takes time and nonce), wire types per
//! action, the error envelope, the client (reqwest, retries, per-action rate limits) and the
//! credential chain.

pub mod signer;
