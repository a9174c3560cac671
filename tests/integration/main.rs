//! Integration tests, one binary: one module per area.

mod apply;
mod cli;
mod cloud;
mod cloud_support;
mod crash;
mod emulator;
mod golden;
mod import;
mod lint;
mod live;
mod manifests;
mod plan_props;
mod policy_props;
mod preflight;
mod settings;
