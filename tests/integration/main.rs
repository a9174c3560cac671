//! Integration tests, one binary: one module per area.

mod apply;
mod cloud;
mod cloud_support;
mod emulator;
mod lint;
mod live;
mod plan_props;
mod preflight;
mod settings;
mod golden;
mod cli;
