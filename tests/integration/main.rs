//! Integration tests, one binary: one module per area.

mod apply;
mod cloud_support;
mod emulator;
mod live;
mod manifests;
mod plan_props;
mod policy_props;
mod settings;
