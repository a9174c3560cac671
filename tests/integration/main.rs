//! Integration tests, one binary: one module per area.

mod emulator;
mod plan_props;
mod settings;
