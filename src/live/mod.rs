//! Live state: what the cloud says exists. [`model`] is data only; [`fetch`] (async) reads it
//! through the cloud client with the minimum number of calls.

pub mod model;

pub use model::*;
