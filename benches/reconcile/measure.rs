//! Measuring: a child process's wall time, CPU time and peak RSS (from `wait4`'s `rusage`:
//! on Linux `ru_maxrss` is the child's peak resident set in KiB, the same figure as the
//! `VmHWM` line of /proc/PID/status); this thread's CPU time (for the planning
//! micro-benchmark); this process's CPU time (the in-process emulator's share); the machine.
//!
//! Children are measured through an intermediate process ([`run_measured`]): Linux carries
//! the peak RSS of the address space a process gives up at `exec` into its `ru_maxrss`, and a
//! spawned child execs from a copy of its parent's address space (fork) or from the very same
//! one (vfork, posix_spawn). Spawned from this harness, immctl's peak would read at least the
//! harness's own RSS, the emulator's state included (we measured exactly that: `/bin/true`
//! "peaked" at the harness's 68 MiB). The intermediate is this executable, started with
//! [`MEASURE_FLAG`], which does nothing but spawn and wait: the floor it leaves is a few MiB
//! (reported), and since `ru_maxrss` is a maximum, not a sum, it hides nothing above that.

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// First argument of the intermediate process: `--measure-child REPORT PROGRAM ARGS...`.
pub const MEASURE_FLAG: &str = "--measure-child";

/// How a child process ran.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct ChildRun {
    pub wall: Duration,
    /// Exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    pub user: Duration,
    pub sys: Duration,
    /// Peak RSS, KiB.
    pub max_rss_kib: u64,
}

impl ChildRun {
    pub fn cpu(&self) -> Duration {
        self.user + self.sys
    }
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// Start `cmd`, wait for it, and return its own resource usage (not its children's).
pub fn run_child(cmd: &mut Command) -> io::Result<ChildRun> {
    let start = Instant::now();
    let child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain data; zeroed is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: valid pointers to locals; `pid` is our own child, not yet reaped (std's
        // `Child` is dropped without waiting, which neither kills nor reaps it).
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let wall = start.elapsed();
    drop(child);
    let code = if libc::WIFEXITED(status) {
        Some(libc::WEXITSTATUS(status))
    } else {
        None
    };
    Ok(ChildRun {
        wall,
        code,
        user: timeval(usage.ru_utime),
        sys: timeval(usage.ru_stime),
        max_rss_kib: usage.ru_maxrss as u64,
    })
}

/// The intermediate process's `main`: run the program, write its [`ChildRun`] as JSON to the
/// report file, exit 0 (127 when it could not be started).
pub fn child_main(args: &[OsString]) -> ! {
    let [report, program, rest @ ..] = args else {
        eprintln!("usage: {MEASURE_FLAG} REPORT PROGRAM [ARGS...]");
        std::process::exit(2);
    };
    match run_child(Command::new(program).args(rest)) {
        Ok(run) => {
            let json = serde_json::to_string(&run).expect("json");
            if let Err(e) = std::fs::write(report, json) {
                eprintln!("writing {}: {e}", Path::new(report).display());
                std::process::exit(1);
            }
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("starting {}: {e}", Path::new(program).display());
            std::process::exit(127)
        }
    }
}

/// Run `cmd` (its program, arguments, working directory and the variables it sets, on an
/// otherwise empty environment) through the intermediate process, with `stdout` / `stderr`;
/// the figures are the program's own.
pub fn run_measured(cmd: &Command, stdout: Stdio, stderr: Stdio) -> io::Result<ChildRun> {
    let report = tempfile::NamedTempFile::new()?;
    let mut c = Command::new(std::env::current_exe()?);
    c.arg(MEASURE_FLAG)
        .arg(report.path())
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .env_clear();
    for (k, v) in cmd.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    if let Some(d) = cmd.get_current_dir() {
        c.current_dir(d);
    }
    let status = c
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .status()?;
    if !status.success() {
        return Err(io::Error::other(format!(
            "the measuring process failed ({status})"
        )));
    }
    let text = std::fs::read_to_string(report.path())?;
    serde_json::from_str(&text).map_err(io::Error::other)
}

/// What the measurement reports for `/bin/true`: the floor under every peak RSS figure.
pub fn floor(dir: &Path) -> ChildRun {
    let mut c = Command::new("/bin/true");
    c.current_dir(dir);
    run_measured(&c, Stdio::null(), Stdio::null()).expect("/bin/true runs")
}

/// CPU time of the calling thread.
pub fn thread_cpu() -> Duration {
    // SAFETY: plain data out-parameter.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer; CLOCK_THREAD_CPUTIME_ID is always available on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// User + system CPU time of this whole process (all threads).
pub fn process_cpu() -> Duration {
    // SAFETY: plain data out-parameter.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointer.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    timeval(usage.ru_utime) + timeval(usage.ru_stime)
}

/// Peak RSS of this process, KiB (`VmHWM`).
pub fn own_peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// The 1-minute load average.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// `N cores, <model>`.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cores} cores, {model}")
}
