//! Daemon soak: does `immctl run` hold steady memory over many ticks?
//!
//! Runs `daemon::run` in this process against an embedded emulator seeded with the demo
//! account (`manifests/demo-live-state.yaml`) and the example manifests, with a 1 ms interval,
//! logging at info into a sink (formatted, then dropped) and a scrape of `/metrics` and
//! `/status` after every tick. Every 100 ticks it drifts a policy behind the daemon's back, so
//! applies happen too. It reports the process's resident memory (`VmRSS`, and the peak
//! `VmHWM`, from /proc/self/status) before the first tick, after 100 and after the last.
//!
//! ```text
//! cargo run --release --example daemon_soak                 # 1,000 ticks, emulator in-process
//! cargo run --release --example daemon_soak -- 5000         # more
//! cargo build --release --bin immctl &&
//!   cargo run --release --example daemon_soak -- 1000 --separate-emulator
//! ```
//!
//! With the emulator in-process its memory counts too, and it grows with the request count:
//! it remembers every signature nonce for 15 minutes to refuse replays (as the real gateway
//! does), about 100 bytes per API call. `--separate-emulator` runs it as an `immctl emulator`
//! child process instead, so the figures are the daemon's alone.
//!
//! A benchmark, not a test: it prints figures (BENCHMARKS.md, "Daemon soak") and fails only
//! when the daemon stops ticking or a tick fails.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use immctl::cloud::{Client, ClientConfig, CredentialsProvider, Endpoints, RateLimits};
use immctl::daemon::{self, Options};
use immctl::emulator::{self, EmulatorOptions, State};
use immctl::settings::{self, SettingsInput};

/// `(VmRSS, VmHWM)` in KiB.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

async fn get(http: &reqwest::Client, addr: std::net::SocketAddr, path: &str) -> String {
    http.get(format!("http://{addr}{path}"))
        .send()
        .await
        .expect("the daemon answers")
        .text()
        .await
        .unwrap()
}

/// Where the emulator runs.
enum Emulator {
    InProcess(emulator::EmulatorHandle),
    Process(std::process::Child, String),
}

impl Emulator {
    fn endpoint(&self) -> String {
        match self {
            Emulator::InProcess(h) => h.endpoint(),
            Emulator::Process(_, e) => e.clone(),
        }
    }

    /// Change a policy's description behind the daemon's back.
    async fn drift(&self, http: &reqwest::Client, n: u64) {
        match self {
            Emulator::InProcess(h) => {
                let mut st = h.state();
                if let Some(p) = st.policies.get_mut("media-app-imm-query") {
                    p.description = format!("drift {n}");
                }
                h.put_state(st);
            }
            Emulator::Process(_, e) => {
                let url = format!("{e}/_emulator/state");
                let mut st: serde_json::Value =
                    http.get(&url).send().await.unwrap().json().await.unwrap();
                st["policies"]["media-app-imm-query"]["description"] = format!("drift {n}").into();
                let put = http.put(&url).body(st.to_string()).send().await.unwrap();
                assert!(put.status().is_success(), "PUT /_emulator/state");
            }
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Emulator::Process(child, _) = self {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `immctl emulator` (the release binary next to this example's directory) on a free port.
async fn emulator_process(seed: &Path, http: &reqwest::Client) -> Emulator {
    let exe = std::env::current_exe().unwrap();
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("immctl"))
        .filter(|b| b.exists())
        .expect("build the binary first: cargo build --release --bin immctl");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = std::process::Command::new(bin)
        .args([
            "emulator",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--state",
        ])
        .arg(seed)
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    while http
        .get(format!("{endpoint}/_emulator/stats"))
        .send()
        .await
        .is_err()
    {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the emulator did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Emulator::Process(child, endpoint)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let separate = args.iter().any(|a| a == "--separate-emulator");
    let ticks: u64 = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(|a| {
            a.parse()
                .expect("usage: daemon_soak [TICKS] [--separate-emulator]")
        })
        .unwrap_or(1000);
    let _ = tracing_subscriber::fmt()
        .json()
        .with_max_level(tracing::Level::INFO)
        .with_writer(std::io::sink)
        .try_init();

    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let work = tempfile::tempdir().unwrap();
    let manifests: PathBuf = work.path().join("manifests");
    copy_dir(&repo.join("manifests"), &manifests);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let emu = if separate {
        let seed = work.path().join("emulator-state.yaml");
        std::fs::copy(repo.join("manifests/demo-live-state.yaml"), &seed).unwrap();
        emulator_process(&seed, &http).await
    } else {
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let seed = State::load(&repo.join("manifests/demo-live-state.yaml"), &now).unwrap();
        let handle = emulator::spawn(EmulatorOptions {
            state: Some(seed),
            ..EmulatorOptions::default()
        })
        .await
        .unwrap();
        Emulator::InProcess(handle)
    };

    let mut config = ClientConfig::new(CredentialsProvider::static_ak(
        emulator::state::DEFAULT_ACCESS_KEY_ID,
        emulator::state::DEFAULT_ACCESS_KEY_SECRET,
    ));
    config.endpoints = Endpoints::single(emu.endpoint());
    config.rate_limits = RateLimits::unlimited();
    let client = Client::new(config).unwrap();
    let input = SettingsInput {
        jitter: Some("0".into()),
        ..SettingsInput::default()
    };
    let settings = settings::resolve(&input, Vec::<(String, String)>::new()).unwrap();
    let mut opts = Options::from_settings(client, vec![manifests], &settings);
    // 1 ms between ticks, set directly (settings refuse intervals under a second).
    opts.schedule = immctl::daemon::Schedule::new(std::time::Duration::from_millis(1), 0.0);
    // The example manifests move a project onto the demo account's unowned role
    // imm-media-role, which only adoption makes safe (IMM014 otherwise): `immctl run --adopt`.
    opts.pass.plan.adopt = true;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();

    let (rss0, _) = memory();
    println!(
        "daemon soak: {ticks} ticks, 1 ms interval, demo account, emulator {}",
        if separate {
            "in a child process (not counted)"
        } else {
            "in this process (counted)"
        }
    );
    println!("RSS before the first tick: {rss0} KiB");
    let started = Instant::now();
    let daemon = tokio::spawn(daemon::run(opts, listener, async move {
        let _ = stopped.await;
    }));

    let mut seen = 0u64;
    let mut rss100 = 0;
    let mut last_drift = 0;
    let checkpoint_every = (ticks / 5).max(100);
    let mut next_checkpoint = checkpoint_every;
    let deadline = Instant::now() + Duration::from_secs(3600);
    while seen < ticks {
        assert!(Instant::now() < deadline, "the daemon stopped ticking");
        let status: serde_json::Value =
            serde_json::from_str(&get(&http, addr, "/status").await).expect("/status is JSON");
        let _metrics = get(&http, addr, "/metrics").await;
        seen = status["ticks"].as_u64().unwrap_or(0);
        if status["last_tick"]["result"]
            .as_str()
            .is_some_and(|r| r != "success")
        {
            panic!("a tick failed: {status:#}");
        }
        if seen >= 100 && rss100 == 0 {
            rss100 = memory().0;
            println!(
                "RSS after {seen} ticks: {rss100} KiB ({:.1}s)",
                started.elapsed().as_secs_f64()
            );
        }
        // Checkpoints in between, to tell a leak (steady growth) from warm-up (a plateau).
        if seen >= next_checkpoint && seen < ticks {
            println!(
                "  RSS after {seen} ticks: {} KiB ({:.1}s)",
                memory().0,
                started.elapsed().as_secs_f64()
            );
            next_checkpoint += checkpoint_every;
        }
        if seen / 100 > last_drift {
            last_drift = seen / 100;
            emu.drift(&http, last_drift).await;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = started.elapsed();
    let (rss_end, hwm) = memory();
    let metrics = get(&http, addr, "/metrics").await;
    let _ = stop.send(());
    daemon.await.unwrap().unwrap();

    let applied: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("immctl_changes_applied_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    println!(
        "RSS after {seen} ticks: {rss_end} KiB ({:.1}s, {:.1} ms/tick, {applied} changes applied)",
        elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1000.0 / seen as f64
    );
    println!("peak RSS (VmHWM): {hwm} KiB");
    println!(
        "growth from tick 100 to tick {seen}: {} KiB",
        rss_end as i64 - rss100 as i64
    );
}
