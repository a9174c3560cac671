//! One integration-test binary; one module per area.

mod settings;
