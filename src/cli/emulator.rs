//! `immctl emulator`: serve the RAM / IMM / STS emulator until SIGINT / SIGTERM.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;

use super::GlobalArgs;
use crate::emulator::{self, EmulatorOptions};
use crate::settings::{LOG_FORMAT_EXPECTED, LogFormat};

#[derive(Debug, Args)]
pub struct EmulatorArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// State file (YAML or JSON): loaded at start if it exists, rewritten atomically after
    /// every change. Without it the emulator starts with a fresh test account.
    #[arg(long)]
    pub state: Option<PathBuf>,
    /// Latency added to every API call (e.g. `20ms`, `1s`).
    #[arg(long, value_parser = parse_duration, default_value = "0ms")]
    pub latency: Duration,
    /// Probability (0..1) of a random fault per call (throttling, 503, 500, dropped connection).
    #[arg(long, default_value_t = 0.0)]
    pub fault_rate: f64,
    /// Multiplier of the documented per-action quotas; 0 disables them.
    #[arg(long, default_value_t = 1.0)]
    pub rate_limit_scale: f64,
    /// How long a just-created role, policy or project stays invisible to reads.
    #[arg(long, value_parser = parse_duration, default_value = "0ms")]
    pub consistency_delay: Duration,
}

/// `250ms`, `2s`, `1m`, or a bare number of milliseconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "ms"),
    };
    let n: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?}: expected e.g. 20ms, 2s, 1m"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        _ => return Err(format!("invalid duration unit in {s:?}: use ms, s or m")),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(format!("invalid duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub fn run(global: &GlobalArgs, args: EmulatorArgs) -> i32 {
    match serve(global, args) {
        Ok(()) => super::EXIT_OK,
        Err(e) => {
            super::report_error(&e);
            super::EXIT_ERROR
        }
    }
}

fn serve(global: &GlobalArgs, args: EmulatorArgs) -> anyhow::Result<()> {
    if !(0.0..=1.0).contains(&args.fault_rate) {
        anyhow::bail!("--fault-rate must be between 0 and 1");
    }
    if args.rate_limit_scale < 0.0 {
        anyhow::bail!("--rate-limit-scale must not be negative");
    }
    let opts = EmulatorOptions {
        state: None,
        state_file: args.state.clone(),
        latency: args.latency,
        fault_rate: args.fault_rate,
        rate_limit_scale: args.rate_limit_scale,
        consistency_delay: args.consistency_delay,
        region: global
            .region
            .clone()
            .unwrap_or_else(|| emulator::DEFAULT_REGION.to_string()),
    };
    // The same rule as every other command: a bad value is refused naming the flag, not
    // taken silently as `text`.
    let json_logs = match global
        .log_format
        .as_deref()
        .map(|s| (s, LogFormat::parse(s)))
    {
        None => false,
        Some((_, Some(format))) => format == LogFormat::Json,
        Some((other, None)) => anyhow::bail!(
            "invalid value {other:?} for log_format (from flag --log-format): expected \
             {LOG_FORMAT_EXPECTED}"
        ),
    };
    init_logging(global, json_logs);
    let rt = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    rt.block_on(async move {
        let server = emulator::Server::new(opts).map_err(|e| {
            if emulator::state::StateError::is_unwritable(&e) {
                // Not "loading the state file ...: writing state file ...": say what is
                // wrong and what to do (found by a tester with a read-only state file).
                anyhow::anyhow!(
                    "{e}. The emulator rewrites it after every change: make it and its \
                     directory writable, or use another --state FILE"
                )
            } else {
                match &args.state {
                    Some(path) => anyhow::Error::new(e)
                        .context(format!("loading the state file {}", path.display())),
                    None => anyhow::Error::new(e).context("starting the emulator"),
                }
            }
        })?;
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("--listen {}: cannot listen on this address", args.listen))?;
        let addr = listener.local_addr()?;
        say!("immctl emulator listening on http://{addr}");
        server
            .serve(listener, shutdown_signal())
            .await
            .context("serving the emulator")
    })
}

/// Logs to stderr: warnings and errors (e.g. a state file that cannot be written) by
/// default, every call with `-v` (info) / `-vv` (debug); `--log-format json` for containers.
/// `RUST_LOG` overrides the level.
fn init_logging(global: &GlobalArgs, json: bool) {
    let level = match global.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        // As `logging::init`: a closed stderr must not panic the emulator.
        .log_internal_errors(false);
    let _ = if json {
        builder.json().try_init()
    } else {
        // Colour only on a terminal and without NO_COLOR, as the other commands: a log
        // redirected to a file used to be full of escape sequences.
        builder
            .with_ansi(
                std::io::stderr().is_terminal()
                    && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()),
            )
            .try_init()
    };
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_in_common_units() {
        assert_eq!(parse_duration("20ms").unwrap(), Duration::from_millis(20));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("15").unwrap(), Duration::from_millis(15));
        assert!(parse_duration("2h").is_err());
        assert!(parse_duration("x").is_err());
    }
}
