//! Process-wide logging: a `tracing` subscriber writing to stderr, as human text or as one
//! JSON object per line (containers, log shippers). Stdout stays reserved for plans and other
//! command output, so `immctl reconcile --format json > plan.json` is never polluted by logs.
//!
//! Verbosity comes from the resolved settings (`-v`, `IMMCTL_VERBOSITY`, the config file),
//! never from the environment directly.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::settings::LogFormat;

/// The filter for a verbosity: 0 = immctl at info, others at warn; 1 = immctl at debug;
/// 2+ = immctl at trace and dependencies at debug.
pub fn filter_directives(verbosity: u8) -> &'static str {
    match verbosity {
        0 => "warn,immctl=info",
        1 => "info,immctl=debug",
        _ => "debug,immctl=trace",
    }
}

/// Install the global subscriber. Later calls are no-ops (tests and the daemon may call it
/// more than once), and a failure to install never stops the command.
pub fn init(format: LogFormat, verbosity: u8) {
    let filter = EnvFilter::new(filter_directives(verbosity));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A failed write (stderr is a closed pipe: the log reader went away) is dropped. By
        // default the subscriber reports it with `eprintln!`, which panics when stderr is
        // gone: the daemon died with exit 101 at its next log line.
        .log_internal_errors(false);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            // Every enclosing span too, so a change's lines also name their tick.
            .with_span_list(true)
            .try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .try_init(),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verbosity_is_a_valid_filter_that_raises_the_immctl_level() {
        for v in 0..4u8 {
            assert!(EnvFilter::try_new(filter_directives(v)).is_ok());
        }
        assert!(filter_directives(0).contains("immctl=info"));
        assert!(filter_directives(1).contains("immctl=debug"));
        assert!(filter_directives(5).contains("immctl=trace"));
    }
}
