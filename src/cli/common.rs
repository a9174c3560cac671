//! What the cloud-facing subcommands share: settings from the global flags, the client
//! (credentials chain or the embedded emulator), plan rendering to stdout, apply events to
//! stderr.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::GlobalArgs;
use super::reconcile::Format;
use crate::cloud::{ChainConfig, Client, ClientConfig, CredentialsProvider, Endpoints, RateLimits};
use crate::emulator::{self, EmulatorHandle, EmulatorOptions};
use crate::plan::Plan;
use crate::render;
use crate::settings::{self, Settings, SettingsInput};

/// Where `--emulator` keeps the embedded emulator's account between runs.
pub const EMULATOR_STATE_FILE: &str = ".immctl/emulator-state.json";
/// Held (an exclusive advisory lock) by the one process whose embedded emulator uses
/// [`EMULATOR_STATE_FILE`]. Each embedded emulator keeps the account in memory and rewrites
/// the whole file after every change, so a second one at the same time would silently undo
/// the first one's writes (a `reconcile --prune` next to `immctl run --emulator` came back
/// at the daemon's next write).
pub const EMULATOR_LOCK_FILE: &str = ".immctl/emulator-state.lock";
/// What the embedded emulator's account is seeded from the first time.
pub const EMULATOR_SEED_FILE: &str = "manifests/demo-live-state.yaml";

/// The global flags (plus the subcommand's own, through `extra`) resolved against the
/// environment and the settings file.
pub fn resolve_settings(
    global: &GlobalArgs,
    extra: impl FnOnce(&mut SettingsInput),
) -> anyhow::Result<Settings> {
    let mut input = SettingsInput {
        config: global.config.clone(),
        region: global.region.clone(),
        endpoint_ram: global.endpoint_ram.clone(),
        endpoint_imm: global.endpoint_imm.clone(),
        endpoint_sts: global.endpoint_sts.clone(),
        owner: global.owner.clone(),
        log_format: global.log_format.clone(),
        verbosity: (global.verbose > 0).then_some(global.verbose),
        ..SettingsInput::default()
    };
    extra(&mut input);
    let settings = settings::resolve(&input, process_env()?)?;
    for w in &settings.warnings {
        say!("warning: {w}");
    }
    Ok(settings)
}

/// The process environment as UTF-8 pairs. `std::env::vars()` panics on a variable that is
/// not UTF-8 (a Latin-1 `LANG`, a stray byte); here one of ours (`IMMCTL_*`) is an error
/// naming it (not its value), and anyone else's is skipped.
fn process_env() -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (k, v) in std::env::vars_os() {
        match (k.into_string(), v.into_string()) {
            (Ok(k), Ok(v)) => out.push((k, v)),
            (k, _) => {
                let name = match &k {
                    Ok(k) => k.clone(),
                    Err(k) => k.to_string_lossy().into_owned(),
                };
                if name.starts_with(settings::ENV_PREFIX) {
                    anyhow::bail!(
                        "environment variable {name}: not valid UTF-8; set it to UTF-8 text or unset it"
                    );
                }
            }
        }
    }
    Ok(out)
}

/// A connected client, and the embedded emulator behind it when `--emulator` was given (it
/// lives as long as this value).
pub struct Cloud {
    pub client: Client,
    pub emulator: Option<EmulatorHandle>,
    /// With `--emulator`: the exclusive lock on [`EMULATOR_LOCK_FILE`], held as long as the
    /// embedded emulator runs (released when the process ends, however it ends).
    _state_lock: Option<std::fs::File>,
}

impl Cloud {
    /// Stop the embedded emulator (its state is already on disk after every change).
    pub async fn close(self) {
        if let Some(e) = self.emulator {
            e.shutdown().await;
        }
    }
}

/// `https://host` stays; `host[:port]` gets `https://`.
fn endpoint_url(e: &str) -> String {
    if e.starts_with("http://") || e.starts_with("https://") {
        e.trim_end_matches('/').to_string()
    } else {
        format!("https://{}", e.trim_end_matches('/'))
    }
}

/// Build the client: against the embedded emulator (`emulator`), else against the endpoints
/// and credentials the settings and the official credential chain name.
pub async fn connect(settings: &Settings, use_emulator: bool) -> anyhow::Result<Cloud> {
    let mut state_lock = None;
    let (mut config, emulator) = if use_emulator {
        for key in ["endpoint_ram", "endpoint_imm", "endpoint_sts"] {
            if let Some(origin) = settings.origins.get(key)
                && *origin != crate::settings::Origin::Default
            {
                say!(
                    "warning: {key} (from {origin}) is ignored with --emulator: the embedded \
                     emulator serves RAM, IMM and STS"
                );
            }
        }
        state_lock = Some(lock_emulator_state(Path::new(EMULATOR_LOCK_FILE))?);
        let handle = start_embedded_emulator(Path::new(EMULATOR_STATE_FILE), settings)
            .await
            .context("starting the embedded emulator (--emulator)")?;
        let mut config = ClientConfig::new(CredentialsProvider::static_ak(
            emulator::state::DEFAULT_ACCESS_KEY_ID,
            emulator::state::DEFAULT_ACCESS_KEY_SECRET,
        ));
        config.endpoints = Endpoints::single(handle.endpoint());
        (config, Some(handle))
    } else {
        let mut chain = ChainConfig::from_env();
        chain.sts_endpoint = settings.endpoint_sts.as_deref().map(endpoint_url);
        let mut config = ClientConfig::new(CredentialsProvider::default_chain(chain));
        let defaults = Endpoints::default();
        config.endpoints = Endpoints {
            ram: settings
                .endpoint_ram
                .as_deref()
                .map(endpoint_url)
                .unwrap_or(defaults.ram),
            sts: settings
                .endpoint_sts
                .as_deref()
                .map(endpoint_url)
                .unwrap_or(defaults.sts),
            imm: settings.endpoint_imm.as_deref().map(endpoint_url),
        };
        (config, None)
    };
    config.region = settings.region.clone();
    config.rate_limits = RateLimits {
        scale: settings.client.rate_limit_scale,
        ..RateLimits::default()
    };
    config.max_concurrency = settings.client.max_concurrency.max(1);
    config.request_timeout = settings.client.request_timeout;
    config.connect_timeout = settings.client.connect_timeout;
    let client = Client::new(config).context("building the API client")?;
    Ok(Cloud {
        client,
        emulator,
        _state_lock: state_lock,
    })
}

/// Take the lock that makes this process the only user of the embedded emulator's state,
/// or say who to stop (or how to share one emulator) instead.
fn lock_emulator_state(lock_file: &Path) -> anyhow::Result<std::fs::File> {
    if let Some(dir) = lock_file.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("--emulator: creating {}", dir.display()))?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_file)
        .with_context(|| format!("--emulator: opening {}", lock_file.display()))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => anyhow::bail!(
            "--emulator: another immctl process in this directory is using the embedded \
             emulator ({EMULATOR_STATE_FILE}; an `immctl run --emulator`?); two at once would \
             undo each other's changes. Stop it first, or share one emulator: run \
             `immctl emulator --state FILE` and point every command at it with --endpoint-ram, \
             --endpoint-imm and --endpoint-sts (docs/emulator.md)"
        ),
        Err(std::fs::TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("--emulator: locking {}", lock_file.display()))
        }
    }
}

/// The embedded emulator on a loopback port, its state persisted in `state_file` and seeded
/// from [`EMULATOR_SEED_FILE`] (when present) the first time.
async fn start_embedded_emulator(
    state_file: &Path,
    settings: &Settings,
) -> anyhow::Result<EmulatorHandle> {
    // An empty state file (a truncated write by hand, `> file`) is not this account: read
    // as the bare default account it silently dropped the seed and everything applied.
    if let Ok(text) = std::fs::read_to_string(state_file)
        && text.trim().is_empty()
    {
        let start_over = if Path::new(EMULATOR_SEED_FILE).exists() {
            format!("from the seed {EMULATOR_SEED_FILE}")
        } else {
            "with a fresh test account".to_string()
        };
        anyhow::bail!(
            "the embedded emulator's state file {} is empty, so it holds no account; immctl \
             does not guess one. Delete it to start over {start_over}",
            state_file.display()
        );
    }
    let seed = if state_file.exists() {
        None
    } else if Path::new(EMULATOR_SEED_FILE).exists() {
        seed_stays_in_manifests(Path::new(EMULATOR_SEED_FILE))?;
        let state = emulator::State::load(Path::new(EMULATOR_SEED_FILE), &now())
            .with_context(|| format!("reading the emulator seed {EMULATOR_SEED_FILE}"))?;
        say!(
            "immctl: embedded emulator seeded from {EMULATOR_SEED_FILE}; its state is kept in {}",
            state_file.display()
        );
        Some(state)
    } else {
        say!(
            "immctl: embedded emulator starts with an empty test account; its state is kept in {}",
            state_file.display()
        );
        Some(emulator::State::default())
    };
    let opts = EmulatorOptions {
        state: seed,
        state_file: Some(PathBuf::from(state_file)),
        // The documented quotas, as the real service enforces them.
        rate_limit_scale: 1.0,
        region: settings.region.clone(),
        ..EmulatorOptions::default()
    };
    emulator::spawn(opts).await.map_err(|e| {
        if emulator::state::StateError::is_unwritable(&e) {
            anyhow::anyhow!(
                "{e}. The embedded emulator keeps its account there: make it and its directory \
                 writable (or run immctl from a directory where {} can be written)",
                state_file.display()
            )
        } else {
            anyhow::Error::new(e).context(format!("loading {}", state_file.display()))
        }
    })
}

/// The seed is read only where the manifest walk would read it: inside its directory and
/// not in a hidden part of it (`E001`'s rule, [`crate::manifest::discover::link_escape`]). Its
/// parse errors can quote the file, and a checkout's `manifests/demo-live-state.yaml` comes
/// from a pull request: a link from it to `~/.aliyun/config.json` or a CI token must not be
/// printed.
fn seed_stays_in_manifests(seed: &Path) -> anyhow::Result<()> {
    let dir = match seed.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let root = std::fs::canonicalize(dir)
        .with_context(|| format!("reading the emulator seed {}", seed.display()))?;
    match crate::manifest::discover::link_escape(&root, seed) {
        None => Ok(()),
        Some(why) => anyhow::bail!(
            "the emulator seed {} is a link {why} ({}); immctl does not read it (the rule for \
             manifests, E001). Replace the link with the file itself",
            seed.display(),
            dir.display()
        ),
    }
}

fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// Colour only on a terminal, and never when `NO_COLOR` is set (https://no-color.org).
/// The CLI is the door where such environment facts are read.
pub fn use_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Render `plan` to stdout in `format`.
pub fn print_plan(plan: &Plan, format: Format) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match format {
        Format::Text => render::render_text(plan, &mut out, use_color()),
        Format::Json => render::render_json(plan, &mut out),
        Format::Markdown => render::render_markdown(plan, &mut out),
    }
    .and_then(|()| out.flush())
    .context("writing the plan to stdout")
}

/// `--out PATH` may name a new file or an earlier plan, nothing else: a slip of the keyboard
/// (`--out manifests/roles.yaml`, or `.immctl/emulator-state.json`) used to replace that file
/// with the plan, losing a manifest or the emulator's whole account. Checked before anything
/// is read, and again when the plan is saved.
pub fn check_plan_out(path: &Path) -> anyhow::Result<()> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            // A new file: its directory must be there (immctl does not make one), said now
            // rather than after the whole live state was read.
            let dir = match path.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            if !dir.is_dir() {
                anyhow::bail!(
                    "--out {}: no directory {} to write it in (immctl does not create one)",
                    path.display(),
                    dir.display()
                );
            }
            return Ok(());
        }
        Err(e) => return Err(e).with_context(|| format!("--out {}", path.display())),
    };
    let is_plan = meta.is_file()
        && std::fs::read_to_string(path)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .is_some_and(|v| v.get("format_version").is_some());
    if !is_plan {
        anyhow::bail!(
            "--out {}: exists and is not an immctl plan; refusing to overwrite it (a plan \
             replaces only an earlier plan): name a new file",
            path.display()
        );
    }
    Ok(())
}

/// Save `plan` as JSON (for `immctl apply`), atomically.
pub fn save_plan(plan: &Plan, path: &Path) -> anyhow::Result<()> {
    check_plan_out(path)?;
    let mut text = Vec::new();
    render::render_json(plan, &mut text)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.write_all(&text)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.persist(path)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Preflight before an apply (`crate::preflight`): print its findings to stderr and refuse
/// (nothing applied) when one is an error, unless `force`. A plan that sets no service role
/// costs no call.
pub async fn preflight_or_refuse(
    client: &Client,
    plan: &Plan,
    desired: &crate::manifest::Desired,
    live: &crate::live::Live,
    force: bool,
) -> anyhow::Result<()> {
    let findings = crate::preflight::preflight(client, plan, desired, live)
        .await
        .context(
            "preflight (checking the caller may set the plan's service roles); nothing was applied",
        )?;
    if findings.is_empty() {
        return Ok(());
    }
    let color = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let mut err = std::io::stderr().lock();
    let _ = render::render_findings(&findings, &mut err, color);
    drop(err);
    if crate::lint::blocks_apply(&findings) {
        if force {
            say!("warning: preflight found errors; applying anyway (--force)");
        } else {
            anyhow::bail!(
                "preflight: the caller cannot make this change (above); nothing was applied. Grant what is missing, or pass --force to try anyway"
            );
        }
    }
    Ok(())
}

/// Apply `plan`, printing each event to stderr as it happens. The first SIGINT (Ctrl-C) or
/// SIGTERM lets the API calls in flight finish and starts nothing more, as Terraform does:
/// the report then lists what was interrupted or not started, and the next run finishes it.
/// A second one exits at once.
pub async fn apply_plan(client: &Client, plan: &Plan) -> crate::apply::ApplyReport {
    let cancel = tokio_util::sync::CancellationToken::new();
    let opts = crate::apply::ExecuteOptions {
        max_concurrency: client.config().max_concurrency.max(1),
        cancel: cancel.clone(),
        ..crate::apply::ExecuteOptions::default()
    };
    let watcher = match shutdown_signal() {
        Ok(signal) => Some(tokio::spawn(async move {
            signal.await;
            say!(
                "immctl: interrupted: letting the API calls in flight finish, starting nothing \
                 more (interrupt again to stop at once)"
            );
            cancel.cancel();
        })),
        Err(e) => {
            tracing::warn!(error = %e, "cannot install the SIGINT / SIGTERM handlers");
            None
        }
    };
    let report = crate::reconcile::execute(client, plan, &opts, &mut |event| say!("{event}")).await;
    if let Some(w) = watcher {
        w.abort();
    }
    report
}

/// At debug level (`-v`), the API calls this command made, one event per action: logical
/// calls, HTTP attempts, retries, every attempt's answer by code and the errors returned to
/// the caller by code (JSON objects in the `responses` / `errors` fields).
pub fn log_api_calls(client: &Client) {
    for (action, m) in client.metrics().actions {
        tracing::debug!(
            action = %action,
            calls = m.calls,
            attempts = m.attempts,
            retries = m.retries,
            responses = %serde_json::json!(m.responses),
            errors = %serde_json::json!(m.errors),
            "api calls"
        );
    }
}

/// Print the outcome of an apply; `Err` (exit 1) unless every change was done.
pub fn finish_apply(report: &crate::apply::ApplyReport) -> anyhow::Result<()> {
    if report.is_success() {
        say!("{}", report.summary());
        return Ok(());
    }
    for failure in report.root_failures() {
        say!("error: {failure}");
    }
    for line in report.unfinished() {
        say!("{line}");
    }
    anyhow::bail!(
        "{} The next run picks up where this one stopped.",
        report.summary()
    )
}

/// Resolves on the first SIGTERM or SIGINT. A second one while shutting down exits at once
/// (status 130), for a person at a terminal who does not want to wait for the calls in
/// flight.
#[cfg(unix)]
pub(super) fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(signal = name, "signal received");
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            say!("immctl: second signal: exiting now without waiting for the calls in flight");
            std::process::exit(130);
        });
    })
}

#[cfg(not(unix))]
pub(super) fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!(signal = "ctrl-c", "signal received");
    })
}
