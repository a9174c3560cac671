//! Live state: what the cloud says exists. [`model`] is data only; [`fetch`] (async) reads it
//! through the cloud client with the minimum number of calls (the formula is in its docs).

pub mod fetch;
pub mod model;

pub use fetch::{Everything, FetchError, Fetched, Scope, fetch, fetch_all};
pub use model::*;
