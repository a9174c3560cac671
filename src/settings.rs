//! Settings: how to run (endpoints, region, owner, interval, listen address, client tuning),
//! never what should exist (that is `manifest`). Precedence: defaults < config file (YAML or
//! TOML, `--config FILE` or `IMMCTL_CONFIG`) < `IMMCTL_*` environment < flags; every wrong
//! value is reported with where it came from (file path, environment variable or flag).
//!
//! The layering goes through the `config` crate; this module then parses each merged value
//! itself so that the error can name its origin. What comes out is the plain [`Settings`]
//! struct: no clap or `config` type leaks past this module.
//!
//! Must not: read the process environment (the caller passes it in, see [`resolve`]), read
//! credentials (that is `cloud::credentials`), or touch the network.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use config::{Config, Environment, File, FileFormat, Value, ValueKind};

/// Prefix of every environment variable this module reads.
pub const ENV_PREFIX: &str = "IMMCTL_";

/// Environment variable naming the settings file (the `--config` flag wins over it).
pub const ENV_CONFIG: &str = "IMMCTL_CONFIG";

/// Default region for IMM projects without `spec.region`.
pub const DEFAULT_REGION: &str = "cn-hangzhou";
/// Default value of the `immctl-owner` tag.
pub const DEFAULT_OWNER: &str = "default";

/// Resolved settings: plain values, ready for the core. Built only by [`resolve`].
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Default region for IMM projects (manifests may override per project).
    pub region: String,
    /// RAM endpoint override (`https://host` or `host[:port]`); `None` means the public one.
    pub endpoint_ram: Option<String>,
    /// IMM endpoint override; `None` means `imm.<region>.aliyuncs.com`.
    pub endpoint_imm: Option<String>,
    /// STS endpoint override; `None` means the public one.
    pub endpoint_sts: Option<String>,
    /// Value of the `immctl-owner` tag on everything this repo manages: 1-64 of `[A-Za-z0-9._-]`.
    pub owner: String,
    /// Log line format.
    pub log_format: LogFormat,
    /// 0 = info, 1 = debug, 2+ = trace.
    pub verbosity: u8,
    /// `immctl run` settings.
    pub daemon: DaemonSettings,
    /// Cloud client tuning.
    pub client: ClientSettings,
    /// The settings file that was read, if any.
    pub config_file: Option<PathBuf>,
    /// Where each key's value came from (key -> origin), for diagnostics.
    pub origins: BTreeMap<&'static str, Origin>,
    /// Non-fatal findings, e.g. an `IMMCTL_*` variable that names no setting (likely a typo).
    /// The CLI logs them as warnings.
    pub warnings: Vec<String>,
}

/// Settings of the reconcile loop (`immctl run`).
#[derive(Debug, Clone, PartialEq)]
pub struct DaemonSettings {
    /// Time between ticks (before jitter). Default 5m.
    pub interval: Duration,
    /// Each wait is `interval * (1 ± jitter)`; a fraction in `[0, 1)`. Default 0.1.
    pub jitter: f64,
    /// Address of the health / metrics / status listener. Default `0.0.0.0:9090`.
    pub listen: SocketAddr,
    /// Plan and report drift, never apply.
    pub detect_only: bool,
    /// Delete owned resources absent from the manifests (under the guards below).
    pub prune: bool,
    /// Prune refuses to delete more than this many resources at once. Default 5.
    pub max_deletions: u32,
    /// Lift the `max_deletions` guard.
    pub allow_mass_delete: bool,
}

/// Tuning of the cloud client.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSettings {
    /// Most API calls in flight at once (also: changes an apply runs at once). Default 16:
    /// reaching the quotas takes about (sum of the quotas of the actions running side by side)
    /// × (latency of one call) calls in flight, e.g. the three read lanes of a fetch at 95/s
    /// each with 25 ms calls need 7; BENCHMARKS.md measured 4 at 1.72× the quota bound, 8 at
    /// 1.15×, 16 at 1.09×.
    pub max_concurrency: usize,
    /// Whole-request timeout. Default 30s.
    pub request_timeout: Duration,
    /// TCP/TLS connect timeout. Default 10s.
    pub connect_timeout: Duration,
    /// Multiplies the client-side per-action rate limits (> 0). Default 1.
    pub rate_limit_scale: f64,
}

/// `text` (humans) or `json` (containers, log shippers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// What a `log_format` value may be, for errors.
pub const LOG_FORMAT_EXPECTED: &str = "text or json";

impl LogFormat {
    /// `text` or `json`; anything else is `None`.
    pub fn parse(s: &str) -> Option<LogFormat> {
        match s {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// Flag values, as the CLI got them from clap. `None` means "flag not given". Values are the
/// raw strings so that a bad flag is reported exactly like a bad file or env value.
#[derive(Debug, Clone, Default)]
pub struct SettingsInput {
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    pub region: Option<String>,
    pub endpoint_ram: Option<String>,
    pub endpoint_imm: Option<String>,
    pub endpoint_sts: Option<String>,
    pub owner: Option<String>,
    pub log_format: Option<String>,
    /// `-v` count; `None` (or leave it `None` when the count is 0) keeps lower layers.
    pub verbosity: Option<u8>,
    pub interval: Option<String>,
    pub jitter: Option<String>,
    pub listen: Option<String>,
    pub detect_only: Option<bool>,
    pub prune: Option<bool>,
    pub max_deletions: Option<String>,
    pub allow_mass_delete: Option<bool>,
    pub max_concurrency: Option<String>,
    pub request_timeout: Option<String>,
    pub connect_timeout: Option<String>,
    pub rate_limit_scale: Option<String>,
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// Built-in default.
    Default,
    /// A settings file.
    File(PathBuf),
    /// An environment variable (its full name).
    Env(String),
    /// A command-line flag (as typed, e.g. `--interval`).
    Flag(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => write!(f, "default"),
            Origin::File(p) => write!(f, "file {}", p.display()),
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::Flag(flag) => write!(f, "flag {flag}"),
        }
    }
}

/// One value that failed to parse or validate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidValue {
    /// Setting name (the file key), e.g. `interval`.
    pub key: &'static str,
    /// The value as given (rendered as text).
    pub value: String,
    /// Where it came from.
    pub origin: Origin,
    /// What would have been accepted.
    pub expected: String,
}

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid value {:?} for {} (from {}): expected {}",
            self.value, self.key, self.origin, self.expected
        )
    }
}

/// Why settings could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// The settings file could not be read.
    #[error("cannot read settings file {} (from {origin}): {source}", path.display())]
    ReadFile {
        path: PathBuf,
        origin: Origin,
        #[source]
        source: std::io::Error,
    },
    /// The settings file's extension names no supported format.
    #[error(
        "settings file {} (from {origin}): unsupported extension; use .yaml, .yml or .toml",
        path.display()
    )]
    UnsupportedFormat { path: PathBuf, origin: Origin },
    /// The settings file is not valid YAML / TOML, or its top level is not a map.
    #[error("settings file {}: {message}", path.display())]
    ParseFile { path: PathBuf, message: String },
    /// The settings file has keys that name no setting (typos are errors, not silence).
    #[error(
        "settings file {}: unknown key{} {}; known keys: {}",
        path.display(),
        if keys.len() == 1 { "" } else { "s" },
        details.join(", "),
        KEYS.iter().map(|k| k.name).collect::<Vec<_>>().join(", ")
    )]
    UnknownKeys {
        path: PathBuf,
        keys: Vec<String>,
        /// Per key, in order: `"intervall" (line 2; did you mean "interval"?)`.
        details: Vec<String>,
    },
    /// One or more values are wrong; every one found is listed.
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
    Invalid(Vec<InvalidValue>),
    /// The `config` crate failed where it should not (our bug, not the user's).
    #[error("internal error merging settings (this is a bug in immctl; please report it): {0}")]
    Internal(String),
}

/// Result alias of this module.
pub type Result<T> = std::result::Result<T, SettingsError>;

/// One known setting: file key (= lowercased env suffix), flag spelling and default.
struct Key {
    name: &'static str,
    flag: &'static str,
    default: Option<&'static str>,
}

const KEYS: &[Key] = &[
    key("region", Some(DEFAULT_REGION)),
    key("endpoint_ram", None),
    key("endpoint_imm", None),
    key("endpoint_sts", None),
    key("owner", Some(DEFAULT_OWNER)),
    key("log_format", Some("text")),
    Key {
        name: "verbosity",
        flag: "-v",
        default: Some("0"),
    },
    key("interval", Some("5m")),
    key("jitter", Some("0.1")),
    key("listen", Some("0.0.0.0:9090")),
    key("detect_only", Some("false")),
    key("prune", Some("false")),
    key("max_deletions", Some("5")),
    key("allow_mass_delete", Some("false")),
    key("max_concurrency", Some("16")),
    key("request_timeout", Some("30s")),
    key("connect_timeout", Some("10s")),
    key("rate_limit_scale", Some("1")),
];

const fn key(name: &'static str, default: Option<&'static str>) -> Key {
    // The flag is the key with dashes; spelled out in `flag_name` because const fns cannot
    // build strings. `flag` here is only used for keys whose flag differs (verbosity).
    Key {
        name,
        flag: "",
        default,
    }
}

fn has_default(name: &str) -> bool {
    KEYS.iter().any(|k| k.name == name && k.default.is_some())
}

fn flag_name(k: &Key) -> String {
    if k.flag.is_empty() {
        format!("--{}", k.name.replace('_', "-"))
    } else {
        k.flag.to_string()
    }
}

fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.to_uppercase())
}

impl SettingsInput {
    /// The flag value for `key`, rendered as the string the parsers take.
    fn flag(&self, key: &str) -> Option<String> {
        let s = |v: &Option<String>| v.clone();
        let b = |v: &Option<bool>| v.map(|b| b.to_string());
        match key {
            "region" => s(&self.region),
            "endpoint_ram" => s(&self.endpoint_ram),
            "endpoint_imm" => s(&self.endpoint_imm),
            "endpoint_sts" => s(&self.endpoint_sts),
            "owner" => s(&self.owner),
            "log_format" => s(&self.log_format),
            "verbosity" => self.verbosity.map(|v| v.to_string()),
            "interval" => s(&self.interval),
            "jitter" => s(&self.jitter),
            "listen" => s(&self.listen),
            "detect_only" => b(&self.detect_only),
            "prune" => b(&self.prune),
            "max_deletions" => s(&self.max_deletions),
            "allow_mass_delete" => b(&self.allow_mass_delete),
            "max_concurrency" => s(&self.max_concurrency),
            "request_timeout" => s(&self.request_timeout),
            "connect_timeout" => s(&self.connect_timeout),
            "rate_limit_scale" => s(&self.rate_limit_scale),
            _ => None,
        }
    }
}

/// Resolve settings from the flags in `input`, the environment `env` (the CLI passes
/// `std::env::vars()`; tests pass a map) and the settings file named by `--config` or
/// `IMMCTL_CONFIG`. Every invalid value is reported, each with its origin.
pub fn resolve<I, K, V>(input: &SettingsInput, env: I) -> Result<Settings>
where
    I: IntoIterator<Item = (K, V)>,
    K: Into<String>,
    V: Into<String>,
{
    let env: BTreeMap<String, String> =
        env.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
    let mut warnings = Vec::new();

    // Which file, and from where.
    let config_file = match (&input.config, env.get(ENV_CONFIG)) {
        (Some(p), _) => Some((p.clone(), Origin::Flag("--config".into()))),
        (None, Some(p)) if !p.is_empty() => {
            Some((PathBuf::from(p), Origin::Env(ENV_CONFIG.into())))
        }
        _ => None,
    };
    let file_source = match &config_file {
        Some((path, origin)) => Some(load_file(path, origin)?),
        None => None,
    };

    // Only our own variables go to the `config` crate; others (PATH, credentials) never do.
    let known: BTreeSet<&str> = KEYS.iter().map(|k| k.name).collect();
    let mut ours = config::Map::new();
    for (name, value) in &env {
        let Some(suffix) = name.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        if name == ENV_CONFIG {
            continue;
        }
        let key = suffix.to_lowercase();
        if known.contains(key.as_str()) && suffix == suffix.to_uppercase() {
            ours.insert(name.clone(), value.clone());
        } else {
            warnings.push(format!(
                "environment variable {name} names no setting and is ignored"
            ));
        }
    }

    let mut builder = Config::builder();
    for k in KEYS {
        if let Some(d) = k.default {
            builder = builder
                .set_default(k.name, d)
                .map_err(|e| SettingsError::Internal(e.to_string()))?;
        }
    }
    if let Some(file) = &file_source {
        builder = builder.add_source(File::from_str(&file.text, file.format));
    }
    builder = builder.add_source(
        Environment::with_prefix("IMMCTL")
            .prefix_separator("_")
            .source(Some(ours.clone())),
    );
    for k in KEYS {
        if let Some(v) = input.flag(k.name) {
            builder = builder
                .set_override(k.name, v)
                .map_err(|e| SettingsError::Internal(e.to_string()))?;
        }
    }
    let merged = builder
        .build()
        .map_err(|e| SettingsError::Internal(e.to_string()))?;

    // Read each key back with its origin; the layer that won is the highest one that set it.
    let mut raw: BTreeMap<&'static str, Raw> = BTreeMap::new();
    for k in KEYS {
        let origin = if input.flag(k.name).is_some() {
            Origin::Flag(flag_name(k))
        } else if ours.contains_key(&env_name(k.name)) {
            Origin::Env(env_name(k.name))
        } else if file_source
            .as_ref()
            .is_some_and(|f| f.keys.contains(k.name))
        {
            Origin::File(
                config_file
                    .as_ref()
                    .map(|(p, _)| p.clone())
                    .unwrap_or_default(),
            )
        } else {
            Origin::Default
        };
        match merged.get::<Value>(k.name) {
            Ok(value) => {
                raw.insert(k.name, Raw { value, origin });
            }
            Err(config::ConfigError::NotFound(_)) => {}
            Err(e) => return Err(SettingsError::Internal(e.to_string())),
        }
    }

    let mut p = Parser {
        raw: &raw,
        errors: Vec::new(),
    };
    let region = p.get(
        "region",
        "a region id like cn-hangzhou or ap-southeast-1",
        parse_region,
    );
    let endpoint_ram = p.get("endpoint_ram", ENDPOINT_EXPECTED, parse_endpoint);
    let endpoint_imm = p.get("endpoint_imm", ENDPOINT_EXPECTED, parse_endpoint);
    let endpoint_sts = p.get("endpoint_sts", ENDPOINT_EXPECTED, parse_endpoint);
    let owner = p.get("owner", "1-64 characters of A-Z a-z 0-9 . _ -", parse_owner);
    let log_format = p.get("log_format", LOG_FORMAT_EXPECTED, LogFormat::parse);
    let verbosity = p.get("verbosity", "a number from 0 to 255", |s| s.parse().ok());
    // At least a second: a daemon reconciling more often than that is a typo (`1ns`, `5ms`),
    // and would spend its API quota and its log on ticks nobody needs.
    let interval = p.get(
        "interval",
        "a duration of at least 1s, like 30s or 5m",
        |s| parse_duration(s).filter(|d| *d >= std::time::Duration::from_secs(1)),
    );
    let jitter = p.get("jitter", "a fraction from 0 to below 1, like 0.1", |s| {
        s.parse::<f64>().ok().filter(|f| (0.0..1.0).contains(f))
    });
    let listen = p.get(
        "listen",
        "a socket address like 0.0.0.0:9090 or [::]:9090",
        |s| s.parse::<SocketAddr>().ok(),
    );
    let detect_only = p.get("detect_only", BOOL_EXPECTED, parse_bool);
    let prune = p.get("prune", BOOL_EXPECTED, parse_bool);
    let max_deletions = p.get(
        "max_deletions",
        "a whole number from 0 to 4294967295, like 5",
        |s| s.parse().ok(),
    );
    let allow_mass_delete = p.get("allow_mass_delete", BOOL_EXPECTED, parse_bool);
    // At most MAX_CONCURRENCY: far above what the API quotas serve (writes 20/s), and a huge
    // value made the client's semaphore panic.
    let max_concurrency = p.get(
        "max_concurrency",
        &format!("a whole number from 1 to {MAX_CONCURRENCY}, like 16"),
        |s| {
            s.parse::<usize>()
                .ok()
                .filter(|n| (1..=MAX_CONCURRENCY).contains(n))
        },
    );
    let request_timeout = p.get("request_timeout", DURATION_EXPECTED, |s| {
        parse_duration(s).filter(|d| !d.is_zero())
    });
    let connect_timeout = p.get("connect_timeout", DURATION_EXPECTED, |s| {
        parse_duration(s).filter(|d| !d.is_zero())
    });
    // At least 0.01 (RAM writes at 0.2/s): a scale like 1e-300 made the rate limiter's wait
    // overflow `Duration` and panic, and 1e-9 waited for years without a word.
    let rate_limit_scale = p.get(
        "rate_limit_scale",
        "a number from 0.01 up, like 1 or 0.5",
        |s| {
            s.parse::<f64>()
                .ok()
                .filter(|f| f.is_finite() && *f >= 0.01)
        },
    );

    if !p.errors.is_empty() {
        return Err(SettingsError::Invalid(p.errors));
    }
    // Every `get` above succeeded (no errors), and every key with a `get` has a default, so
    // these are all `Some`; a `None` here is our bug.
    let missing = || SettingsError::Internal("a setting with a default resolved to nothing".into());
    Ok(Settings {
        region: region.ok_or_else(missing)?,
        endpoint_ram,
        endpoint_imm,
        endpoint_sts,
        owner: owner.ok_or_else(missing)?,
        log_format: log_format.ok_or_else(missing)?,
        verbosity: verbosity.ok_or_else(missing)?,
        daemon: DaemonSettings {
            interval: interval.ok_or_else(missing)?,
            jitter: jitter.ok_or_else(missing)?,
            listen: listen.ok_or_else(missing)?,
            detect_only: detect_only.ok_or_else(missing)?,
            prune: prune.ok_or_else(missing)?,
            max_deletions: max_deletions.ok_or_else(missing)?,
            allow_mass_delete: allow_mass_delete.ok_or_else(missing)?,
        },
        client: ClientSettings {
            max_concurrency: max_concurrency.ok_or_else(missing)?,
            request_timeout: request_timeout.ok_or_else(missing)?,
            connect_timeout: connect_timeout.ok_or_else(missing)?,
            rate_limit_scale: rate_limit_scale.ok_or_else(missing)?,
        },
        config_file: config_file.map(|(p, _)| p),
        origins: raw.iter().map(|(k, r)| (*k, r.origin.clone())).collect(),
        warnings,
    })
}

/// The largest `max_concurrency` accepted.
pub const MAX_CONCURRENCY: usize = 1024;

const DURATION_EXPECTED: &str = "a duration above 0, like 30s or 5m";
const BOOL_EXPECTED: &str = "true or false";
const ENDPOINT_EXPECTED: &str = "an endpoint like https://ram.aliyuncs.com or host:port";

/// `"intervall" (line 2; did you mean "interval"?)`: where a top-level key of the file sits
/// (YAML `key:`, TOML `key =` or `[key]`, at the start of a line) and the known key it most
/// likely misspells (case, or at most two edits away).
fn unknown_key_detail(text: &str, key: &str) -> String {
    let line = text.lines().position(|l| {
        let l = l.trim_end();
        let rest = l
            .strip_prefix(key)
            .or_else(|| l.strip_prefix(&format!("\"{key}\"")))
            .or_else(|| l.strip_prefix(&format!("'{key}'")));
        let header = l == format!("[{key}]");
        header || rest.is_some_and(|r| matches!(r.trim_start().chars().next(), Some(':' | '=')))
    });
    let suggestion = KEYS
        .iter()
        .map(|k| k.name)
        .filter(|name| {
            name.eq_ignore_ascii_case(key)
                || strsim::levenshtein(name, &key.to_ascii_lowercase()) <= 2
        })
        .min_by_key(|name| strsim::levenshtein(name, key));
    let mut notes = Vec::new();
    if let Some(n) = line {
        notes.push(format!("line {}", n + 1));
    }
    if let Some(s) = suggestion {
        notes.push(format!("did you mean {s:?}?"));
    }
    if notes.is_empty() {
        format!("{key:?}")
    } else {
        format!("{key:?} ({})", notes.join("; "))
    }
}

/// The parser's message, made to name the key and line where it can. The YAML reader
/// refuses YAML's own special floats (`.nan`, `.inf`, `-.inf`) with only "Parsing .nan as
/// floating point number failed"; no setting takes them, so say which key holds one.
fn parse_error_message(text: &str, message: &str) -> String {
    let Some(value) = message
        .strip_prefix("Parsing ")
        .and_then(|m| m.strip_suffix(" as floating point number failed"))
    else {
        return message.to_string();
    };
    let place = text.lines().enumerate().find_map(|(n, l)| {
        let (key, rest) = l.split_once(':')?;
        let rest = rest.split(" #").next().unwrap_or(rest).trim();
        (rest == value).then(|| format!("line {}: {}: ", n + 1, key.trim()))
    });
    format!(
        "{}{value} is not a finite number; settings take plain numbers (like 0.1 or 16)",
        place.unwrap_or_default()
    )
}

/// The settings file, read and checked for unknown keys.
struct LoadedFile {
    text: String,
    format: FileFormat,
    keys: BTreeSet<String>,
}

fn load_file(path: &Path, origin: &Origin) -> Result<LoadedFile> {
    // Read first: a missing file is "cannot read", whatever its extension.
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::ReadFile {
        path: path.to_owned(),
        origin: origin.clone(),
        source,
    })?;
    if let Some(at) = text.find(|c: char| c.is_control() && !matches!(c, '\n' | '\r' | '\t')) {
        let line = text[..at].matches('\n').count() + 1;
        return Err(SettingsError::ParseFile {
            path: path.to_owned(),
            message: format!("not a text settings file (a control character at line {line})"),
        });
    }
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let format = match ext.as_deref() {
        Some("yaml" | "yml") => FileFormat::Yaml,
        Some("toml") => FileFormat::Toml,
        _ => {
            return Err(SettingsError::UnsupportedFormat {
                path: path.to_owned(),
                origin: origin.clone(),
            });
        }
    };
    let parse_err = |e: config::ConfigError| SettingsError::ParseFile {
        path: path.to_owned(),
        message: parse_error_message(&text, &e.to_string()),
    };
    let alone = Config::builder()
        .add_source(File::from_str(&text, format))
        .build()
        .map_err(parse_err)?;
    let table = alone
        .cache
        .into_table()
        .map_err(|_| SettingsError::ParseFile {
            path: path.to_owned(),
            message: "the top level must be a map of setting names to values".into(),
        })?;
    let known: BTreeSet<&str> = KEYS.iter().map(|k| k.name).collect();
    // `config::Map` is a HashMap: sort so the message is stable.
    let unknown: Vec<String> = table
        .keys()
        .filter(|k| !known.contains(k.as_str()))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if !unknown.is_empty() {
        let details = unknown
            .iter()
            .map(|k| unknown_key_detail(&text, k))
            .collect();
        return Err(SettingsError::UnknownKeys {
            path: path.to_owned(),
            keys: unknown,
            details,
        });
    }
    Ok(LoadedFile {
        text,
        format,
        keys: table.into_keys().collect(),
    })
}

/// A merged value and the layer it came from.
struct Raw {
    value: Value,
    origin: Origin,
}

/// Parses merged values one by one, collecting every error.
struct Parser<'a> {
    raw: &'a BTreeMap<&'static str, Raw>,
    errors: Vec<InvalidValue>,
}

impl Parser<'_> {
    /// Parse `key` with `parse`; `None` when the key is unset or invalid (then recorded).
    fn get<T>(
        &mut self,
        key: &'static str,
        expected: &str,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Option<T> {
        let raw = self.raw.get(key)?;
        let found = match &raw.value.kind {
            // `endpoint_ram: ~` in a file means "not set"; keys with defaults need a value.
            ValueKind::Nil if !has_default(key) => return None,
            ValueKind::Nil => Some("<null>"),
            ValueKind::Table(_) => Some("<map>"),
            ValueKind::Array(_) => Some("<list>"),
            _ => None,
        };
        if let Some(found) = found {
            self.errors.push(InvalidValue {
                key,
                value: found.to_string(),
                origin: raw.origin.clone(),
                expected: format!("a single value: {expected}"),
            });
            return None;
        }
        let text = raw
            .value
            .clone()
            .into_string()
            .unwrap_or_else(|_| raw.value.to_string());
        let parsed = parse(text.trim());
        if parsed.is_none() {
            self.errors.push(InvalidValue {
                key,
                value: text,
                origin: raw.origin.clone(),
                expected: expected.to_string(),
            });
        }
        parsed
    }
}

/// `30s`, `5m`, `1h`, `250ms`, `1h 30m` (humantime's grammar).
pub fn parse_duration(s: &str) -> Option<Duration> {
    humantime::parse_duration(s).ok()
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

/// A region id by the rule the manifests' `spec.region` follows (E207: `cn-hangzhou`,
/// `ap-southeast-1`). The default region is where projects that name none are planned and
/// created, so `--region 5` or `region: 2024-01-01` must be refused here as it is there
/// (it was accepted, and a plan created `imm_project.5/...`).
fn parse_region(s: &str) -> Option<String> {
    crate::manifest::validate::valid_region(s).then(|| s.to_string())
}

/// The owner tag value: 1-64 characters of `[A-Za-z0-9._-]`.
pub fn parse_owner(s: &str) -> Option<String> {
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    ok.then(|| s.to_string())
}

/// `http(s)://host[:port][/]` or a bare `host[:port]`.
fn parse_endpoint(s: &str) -> Option<String> {
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = match rest.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
    let port_ok = port.is_none_or(|p| p.parse::<u16>().is_ok_and(|n| n > 0));
    (host_ok && port_ok).then(|| s.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    #[test]
    fn defaults_resolve() {
        let s = resolve(&SettingsInput::default(), no_env()).unwrap();
        assert_eq!(s.region, "cn-hangzhou");
        assert_eq!(s.owner, "default");
        assert_eq!(s.log_format, LogFormat::Text);
        assert_eq!(s.daemon.interval, Duration::from_secs(300));
        assert_eq!(s.daemon.jitter, 0.1);
        assert_eq!(s.daemon.listen, "0.0.0.0:9090".parse().unwrap());
        assert_eq!(s.daemon.max_deletions, 5);
        assert!(!s.daemon.prune && !s.daemon.detect_only && !s.daemon.allow_mass_delete);
        assert_eq!(s.client.max_concurrency, 16);
        assert_eq!(s.client.rate_limit_scale, 1.0);
        assert_eq!(s.endpoint_ram, None);
        assert_eq!(s.origins["interval"], Origin::Default);
        assert!(s.warnings.is_empty());
    }

    #[test]
    fn durations_parse_with_units_only() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Some(Duration::from_secs(30)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("5x"), None);
        assert_eq!(parse_duration("300"), None);
    }

    #[test]
    fn region_rules_are_the_manifests() {
        for ok in [
            "cn-hangzhou",
            "ap-southeast-1",
            "us-west-1",
            "cn-hangzhou-finance",
        ] {
            assert_eq!(parse_region(ok).as_deref(), Some(ok));
        }
        for bad in [
            "5",
            "true",
            "2024-01-01",
            "hangzhou",
            "CN-Hangzhou",
            "cn--x",
            "1cn-x",
        ] {
            assert_eq!(parse_region(bad), None, "{bad}");
        }
    }

    #[test]
    fn owner_rules() {
        assert!(parse_owner("team-a.prod_1").is_some());
        assert!(parse_owner("").is_none());
        assert!(parse_owner(&"a".repeat(64)).is_some());
        assert!(parse_owner(&"a".repeat(65)).is_none());
        assert!(parse_owner("team a").is_none());
        assert!(parse_owner("team/a").is_none());
    }

    #[test]
    fn endpoints_accept_urls_and_host_port() {
        for ok in [
            "https://ram.aliyuncs.com",
            "http://127.0.0.1:8080",
            "http://127.0.0.1:8080/",
            "sts.cn-hangzhou.aliyuncs.com",
        ] {
            assert!(parse_endpoint(ok).is_some(), "{ok}");
        }
        for bad in ["", "ftp://x", "http://", "host:0", "host:99999", "a b"] {
            assert!(parse_endpoint(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn lowercase_or_unknown_immctl_env_vars_are_warned_not_used() {
        let s = resolve(
            &SettingsInput::default(),
            [("IMMCTL_INTERVL", "1m"), ("immctl_owner", "x")],
        )
        .unwrap();
        assert_eq!(s.daemon.interval, Duration::from_secs(300));
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
        assert!(s.warnings[0].contains("IMMCTL_INTERVL"));
    }
}
