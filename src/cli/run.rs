//! `immctl run`: the long-running reconcile loop (docs/daemon.md). This file is the door:
//! flags into settings, the listener bound, the client connected, SIGTERM / SIGINT turned
//! into the shutdown future; `crate::daemon` does the rest.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;

use super::{GlobalArgs, common};
use crate::daemon;
use crate::settings::Origin;

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Manifest files or directories (default: manifests/).
    pub paths: Vec<PathBuf>,
    /// Time between ticks, e.g. 30s, 5m (setting `interval`, default 5m).
    #[arg(long, value_name = "DURATION")]
    pub interval: Option<String>,
    /// Each wait is interval × (1 ± jitter), a fraction in [0, 1) (default 0.1).
    #[arg(long, value_name = "FRACTION")]
    pub jitter: Option<String>,
    /// Address of /healthz, /readyz, /metrics and /status (default 0.0.0.0:9090).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Plan and report drift; never apply. `--detect-only=false` overrides the settings file.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub detect_only: Option<bool>,
    /// Delete owned resources no longer in the manifests (under the guards below).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub prune: Option<bool>,
    /// Prune refuses to delete more than this many resources in one plan (default 5).
    #[arg(long, value_name = "N")]
    pub max_deletions: Option<String>,
    /// Take over declared resources that exist without any owner tag, on every tick (as
    /// `reconcile --adopt`; `spec.adopt: true` does it for one resource).
    #[arg(long)]
    pub adopt: bool,
    /// Allow prune past --max-deletions.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub allow_mass_delete: Option<bool>,
    /// Run against an embedded emulator (state in .immctl/emulator-state.json).
    #[arg(long)]
    pub emulator: bool,
    /// Most API calls in flight at once (default 4).
    #[arg(long, value_name = "N")]
    pub max_concurrency: Option<String>,
    /// Timeout of one API request (default 30s).
    #[arg(long, value_name = "DURATION")]
    pub request_timeout: Option<String>,
    /// TCP/TLS connect timeout (default 10s).
    #[arg(long, value_name = "DURATION")]
    pub connect_timeout: Option<String>,
    /// Multiplies the client's per-action rate limits (default 1).
    #[arg(long, value_name = "FACTOR")]
    pub rate_limit_scale: Option<String>,
}

pub fn run(global: &GlobalArgs, args: RunArgs) -> i32 {
    super::block_on(async {
        serve(global, args).await?;
        Ok(super::EXIT_OK)
    })
}

async fn serve(global: &GlobalArgs, args: RunArgs) -> anyhow::Result<()> {
    let settings = common::resolve_settings(global, |input| {
        input.interval = args.interval.clone();
        input.jitter = args.jitter.clone();
        input.listen = args.listen.clone();
        input.detect_only = args.detect_only;
        input.prune = args.prune;
        input.max_deletions = args.max_deletions.clone();
        input.allow_mass_delete = args.allow_mass_delete;
        input.max_concurrency = args.max_concurrency.clone();
        input.request_timeout = args.request_timeout.clone();
        input.connect_timeout = args.connect_timeout.clone();
        input.rate_limit_scale = args.rate_limit_scale.clone();
    })?;
    super::logging::init(settings.log_format, settings.verbosity);

    // Signals first: a SIGTERM that arrives while connecting must not kill us mid-way.
    let shutdown = common::shutdown_signal().context("installing the SIGTERM / SIGINT handlers")?;

    let listen = settings.daemon.listen;
    let origin = settings
        .origins
        .get("listen")
        .cloned()
        .unwrap_or(Origin::Default);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen} (listen, from {origin})"))?;

    let cloud = common::connect(&settings, args.emulator).await?;
    let mut opts =
        daemon::Options::from_settings(cloud.client.clone(), args.paths.clone(), &settings);
    opts.pass.plan.adopt = args.adopt;
    let served = daemon::run(opts, listener, shutdown).await;
    cloud.close().await;
    served.context("serving the HTTP endpoints")
}
