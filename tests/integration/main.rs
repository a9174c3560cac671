//! Integration tests, one binary: one module per area.

mod apply;
mod cloud;
mod cloud_support;
mod emulator;
mod live;
mod plan_props;
mod settings;
