//! Settings: defaults < file < `IMMCTL_*` environment < flags, and errors that name where the
//! wrong value came from. Error texts are golden files in `tests/data/settings/golden/`
//! (`IMMCTL_BLESS=1` rewrites them). The environment is always a map: no test touches the
//! process environment.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use immctl::settings::{LogFormat, Origin, SettingsError, SettingsInput, resolve};

const DATA: &str = "tests/data/settings";

fn data(name: &str) -> PathBuf {
    Path::new(DATA).join(name)
}

fn with_config(name: &str) -> SettingsInput {
    SettingsInput {
        config: Some(data(name)),
        ..SettingsInput::default()
    }
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn error_text(input: &SettingsInput, env_pairs: &[(&str, &str)]) -> String {
    match resolve(input, env(env_pairs)) {
        Ok(s) => panic!("expected an error, got {s:?}"),
        Err(e) => e.to_string(),
    }
}

/// Compare with `tests/data/settings/golden/<name>.txt`; `IMMCTL_BLESS=1` rewrites it.
fn assert_golden(name: &str, actual: &str) {
    let path = data("golden").join(format!("{name}.txt"));
    let actual = format!("{actual}\n");
    if ["IMMCTL_BLESS", "UPDATE_GOLDEN"]
        .iter()
        .any(|v| std::env::var_os(v).is_some())
    {
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with IMMCTL_BLESS=1)", path.display()));
    assert_eq!(
        actual,
        expected,
        "golden {} differs (UPDATE_GOLDEN=1 to accept)",
        path.display()
    );
}

// ---- precedence, one level at a time ----

#[test]
fn yaml_file_overrides_every_default() {
    let s = resolve(&with_config("full.yaml"), env(&[])).unwrap();
    assert_eq!(s.region, "cn-shanghai");
    assert_eq!(s.endpoint_ram.as_deref(), Some("http://127.0.0.1:8080"));
    assert_eq!(s.endpoint_imm.as_deref(), Some("http://127.0.0.1:8080"));
    assert_eq!(s.endpoint_sts.as_deref(), Some("http://127.0.0.1:8080"));
    assert_eq!(s.owner, "team-media");
    assert_eq!(s.log_format, LogFormat::Json);
    assert_eq!(s.verbosity, 2);
    assert_eq!(s.daemon.interval, Duration::from_secs(30));
    assert_eq!(s.daemon.jitter, 0.2);
    assert_eq!(
        s.daemon.listen,
        "127.0.0.1:9191".parse::<SocketAddr>().unwrap()
    );
    assert!(s.daemon.detect_only);
    assert!(s.daemon.prune);
    assert_eq!(s.daemon.max_deletions, 10);
    assert!(!s.daemon.allow_mass_delete);
    assert_eq!(s.client.max_concurrency, 8);
    assert_eq!(s.client.request_timeout, Duration::from_secs(60));
    assert_eq!(s.client.connect_timeout, Duration::from_millis(250));
    assert_eq!(s.client.rate_limit_scale, 0.5);
    assert_eq!(s.config_file, Some(data("full.yaml")));
    assert_eq!(s.origins["interval"], Origin::File(data("full.yaml")));
}

#[test]
fn toml_file_overrides_every_default() {
    let s = resolve(&with_config("full.toml"), env(&[])).unwrap();
    assert_eq!(s.region, "cn-beijing");
    assert_eq!(s.endpoint_ram.as_deref(), Some("https://ram.aliyuncs.com"));
    assert_eq!(
        s.endpoint_imm.as_deref(),
        Some("imm.cn-beijing.aliyuncs.com")
    );
    assert_eq!(s.endpoint_sts.as_deref(), Some("sts.aliyuncs.com:443"));
    assert_eq!(s.owner, "team.toml");
    assert_eq!(s.log_format, LogFormat::Text);
    assert_eq!(s.verbosity, 1);
    assert_eq!(s.daemon.interval, Duration::from_secs(3600));
    assert_eq!(s.daemon.jitter, 0.0);
    assert_eq!(s.daemon.listen, "[::]:9090".parse::<SocketAddr>().unwrap());
    assert!(!s.daemon.detect_only);
    assert!(s.daemon.prune);
    assert_eq!(s.daemon.max_deletions, 3);
    assert!(s.daemon.allow_mass_delete);
    assert_eq!(s.client.max_concurrency, 2);
    assert_eq!(s.client.request_timeout, Duration::from_secs(45));
    assert_eq!(s.client.connect_timeout, Duration::from_secs(5));
    assert_eq!(s.client.rate_limit_scale, 2.0);
}

#[test]
fn keys_missing_from_the_file_keep_their_defaults() {
    let s = resolve(&with_config("partial.yaml"), env(&[])).unwrap();
    assert_eq!(s.daemon.interval, Duration::from_secs(600));
    assert_eq!(s.daemon.max_deletions, 5);
    assert_eq!(s.origins["max_deletions"], Origin::Default);
    assert_eq!(s.origins["owner"], Origin::File(data("partial.yaml")));
}

#[test]
fn environment_overrides_file() {
    let s = resolve(
        &with_config("partial.yaml"),
        env(&[
            ("IMMCTL_INTERVAL", "45s"),
            ("IMMCTL_PRUNE", "true"),
            ("IMMCTL_ENDPOINT_STS", "http://127.0.0.1:1"),
        ]),
    )
    .unwrap();
    assert_eq!(s.daemon.interval, Duration::from_secs(45));
    assert!(s.daemon.prune);
    assert_eq!(s.endpoint_sts.as_deref(), Some("http://127.0.0.1:1"));
    // Not set in the environment: the file still wins over the default.
    assert_eq!(s.owner, "from-file");
    assert_eq!(s.origins["interval"], Origin::Env("IMMCTL_INTERVAL".into()));
}

#[test]
fn flags_override_environment_and_file() {
    let input = SettingsInput {
        interval: Some("2m".into()),
        owner: Some("from-flag".into()),
        verbosity: Some(3),
        detect_only: Some(true),
        ..with_config("partial.yaml")
    };
    let s = resolve(
        &input,
        env(&[
            ("IMMCTL_INTERVAL", "45s"),
            ("IMMCTL_OWNER", "from-env"),
            ("IMMCTL_REGION", "cn-qingdao"),
        ]),
    )
    .unwrap();
    assert_eq!(s.daemon.interval, Duration::from_secs(120));
    assert_eq!(s.owner, "from-flag");
    assert_eq!(s.verbosity, 3);
    assert!(s.daemon.detect_only);
    // No flag for region: the environment wins over the file.
    assert_eq!(s.region, "cn-qingdao");
    assert_eq!(s.origins["owner"], Origin::Flag("--owner".into()));
    assert_eq!(s.origins["verbosity"], Origin::Flag("-v".into()));
}

#[test]
fn config_file_can_come_from_immctl_config_and_the_flag_wins() {
    let path = data("partial.yaml");
    let s = resolve(
        &SettingsInput::default(),
        env(&[("IMMCTL_CONFIG", path.to_str().unwrap())]),
    )
    .unwrap();
    assert_eq!(s.owner, "from-file");
    assert_eq!(s.config_file, Some(path.clone()));

    let s = resolve(
        &with_config("full.toml"),
        env(&[("IMMCTL_CONFIG", path.to_str().unwrap())]),
    )
    .unwrap();
    assert_eq!(s.owner, "team.toml");
}

#[test]
fn unrelated_environment_is_ignored() {
    let s = resolve(
        &SettingsInput::default(),
        env(&[
            ("PATH", "/usr/bin"),
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIexample"),
            ("REGION", "us-west-1"),
        ]),
    )
    .unwrap();
    assert_eq!(s.region, "cn-hangzhou");
    assert!(s.warnings.is_empty());
}

// ---- errors name their origin ----

#[test]
fn bad_environment_value_names_the_variable() {
    let text = error_text(&SettingsInput::default(), &[("IMMCTL_INTERVAL", "5x")]);
    assert_eq!(
        text,
        r#"invalid value "5x" for interval (from environment variable IMMCTL_INTERVAL): expected a duration of at least 1s, like 30s or 5m"#
    );
    // Under a second is refused the same way (`1ns` made a daemon tick 90 times a second).
    for short in ["1ns", "500ms", "0s"] {
        let text = error_text(&SettingsInput::default(), &[("IMMCTL_INTERVAL", short)]);
        assert!(text.contains("at least 1s"), "{short}: {text}");
    }
}

#[test]
fn bad_flag_value_names_the_flag() {
    let input = SettingsInput {
        max_deletions: Some("many".into()),
        ..SettingsInput::default()
    };
    assert_golden("bad-flag", &error_text(&input, &[]));
}

#[test]
fn bad_file_values_name_the_file_and_all_are_reported() {
    let text = error_text(&with_config("bad-values.yaml"), &[]);
    assert_eq!(text.lines().count(), 4, "{text}");
    assert_golden("bad-values-yaml", &text);
}

#[test]
fn bad_toml_value_names_the_file() {
    assert_golden(
        "bad-value-toml",
        &error_text(&with_config("bad-value.toml"), &[]),
    );
}

#[test]
fn a_good_layer_above_hides_a_bad_value_below() {
    // The file's interval is wrong, but the environment replaces it: no error for it.
    let text = error_text(
        &with_config("bad-values.yaml"),
        &[("IMMCTL_INTERVAL", "1m")],
    );
    assert!(!text.contains("interval"), "{text}");
    assert_eq!(text.lines().count(), 3, "{text}");
}

#[test]
fn errors_from_every_layer_are_reported_together() {
    let input = SettingsInput {
        log_format: Some("xml".into()),
        ..with_config("bad-value.toml")
    };
    assert_golden(
        "every-layer",
        &error_text(
            &input,
            &[("IMMCTL_RATE_LIMIT_SCALE", "0"), ("IMMCTL_JITTER", "1")],
        ),
    );
}

#[test]
fn owner_is_validated() {
    let input = SettingsInput {
        owner: Some("a".repeat(65)),
        ..SettingsInput::default()
    };
    let text = error_text(&input, &[]);
    assert!(text.contains("for owner (from flag --owner)"), "{text}");
    let text = error_text(&SettingsInput::default(), &[("IMMCTL_OWNER", "")]);
    assert!(
        text.contains(r#""" for owner (from environment variable IMMCTL_OWNER)"#),
        "{text}"
    );
}

#[test]
fn a_list_where_a_value_belongs_is_an_error_naming_the_file() {
    assert_golden(
        "nested-value",
        &error_text(&with_config("nested-value.yaml"), &[]),
    );
}

// ---- the file itself ----

#[test]
fn unknown_keys_in_a_yaml_file_are_rejected_naming_the_file() {
    let err = resolve(&with_config("unknown-keys.yaml"), env(&[])).unwrap_err();
    match &err {
        SettingsError::UnknownKeys { path, keys, .. } => {
            assert_eq!(path, &data("unknown-keys.yaml"));
            assert_eq!(keys, &["daemon".to_string(), "intervall".to_string()]);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_golden("unknown-keys-yaml", &err.to_string());
}

/// A huge max_concurrency used to pass and then panic in the client's semaphore at the
/// first apply; now it is refused with the range.
#[test]
fn max_concurrency_out_of_range_explains_the_range() {
    for bad in ["0", "1025", "18446744073709551615"] {
        let text = error_text(
            &SettingsInput::default(),
            &[("IMMCTL_MAX_CONCURRENCY", bad)],
        );
        assert!(text.contains("a whole number from 1 to 1024"), "{text}");
    }
    let s = resolve(
        &SettingsInput::default(),
        env(&[("IMMCTL_MAX_CONCURRENCY", "1024")]),
    )
    .unwrap();
    assert_eq!(s.client.max_concurrency, 1024);
}

/// A tiny rate_limit_scale used to pass, then panic (1e-300: the wait overflowed
/// `Duration`) or hang for years (1e-9); now it is refused with the range.
#[test]
fn rate_limit_scale_too_small_explains_the_range() {
    for bad in ["1e-300", "1e-9", "0.001", "0"] {
        let text = error_text(
            &SettingsInput::default(),
            &[("IMMCTL_RATE_LIMIT_SCALE", bad)],
        );
        assert!(text.contains("a number from 0.01 up"), "{bad}: {text}");
    }
    let s = resolve(
        &SettingsInput::default(),
        env(&[("IMMCTL_RATE_LIMIT_SCALE", "0.01")]),
    )
    .unwrap();
    assert_eq!(s.client.rate_limit_scale, 0.01);
}

/// `request_timeout: 0s` was refused as "expected a duration like 30s, 5m", which `0s` is:
/// the message now says why (the range).
#[test]
fn a_zero_timeout_explains_the_range() {
    for key in ["IMMCTL_REQUEST_TIMEOUT", "IMMCTL_CONNECT_TIMEOUT"] {
        let text = error_text(&SettingsInput::default(), &[(key, "0s")]);
        assert!(text.contains("expected a duration above 0"), "{text}");
    }
}

/// YAML's special floats (`.nan`, `.inf`) are refused naming the key and line; the YAML
/// reader's own message named neither ("Parsing .nan as floating point number failed").
#[test]
fn a_yaml_nan_or_infinity_names_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    for (value, key) in [
        (".nan", "jitter"),
        (".inf", "rate_limit_scale"),
        ("-.inf", "jitter"),
    ] {
        let path = dir.path().join("s.yaml");
        std::fs::write(&path, format!("region: cn-hangzhou\n{key}: {value}\n")).unwrap();
        let input = SettingsInput {
            config: Some(path.clone()),
            ..SettingsInput::default()
        };
        let text = resolve(&input, env(&[])).unwrap_err().to_string();
        assert!(
            text.contains(&format!("line 2: {key}: {value} is not a finite number")),
            "{text}"
        );
    }
}

#[test]
fn unknown_keys_in_a_toml_file_are_rejected_and_keys_are_case_sensitive() {
    assert_golden(
        "unknown-keys-toml",
        &error_text(&with_config("unknown-keys.toml"), &[]),
    );
}

#[test]
fn missing_file_names_the_file_and_where_it_was_named() {
    assert_golden(
        "missing-file-flag",
        &error_text(&with_config("does-not-exist.yaml"), &[]),
    );
    assert_golden(
        "missing-file-env",
        &error_text(
            &SettingsInput::default(),
            &[("IMMCTL_CONFIG", "tests/data/settings/nope.toml")],
        ),
    );
}

#[test]
fn unsupported_extension_is_rejected() {
    assert_golden(
        "unsupported-extension",
        &error_text(&with_config("settings.ini"), &[]),
    );
}

#[test]
fn malformed_yaml_names_the_file() {
    let text = error_text(&with_config("broken.yaml"), &[]);
    assert!(
        text.starts_with("settings file tests/data/settings/broken.yaml: "),
        "{text}"
    );
}

#[test]
fn a_file_whose_top_level_is_not_a_map_is_rejected() {
    let text = error_text(&with_config("not-a-map.yaml"), &[]);
    assert!(
        text.starts_with("settings file tests/data/settings/not-a-map.yaml: "),
        "{text}"
    );
}

#[test]
fn null_clears_an_optional_setting_but_not_one_with_a_default() {
    let text = error_text(&with_config("null-endpoint.yaml"), &[]);
    assert_eq!(
        text,
        r#"invalid value "<null>" for owner (from file tests/data/settings/null-endpoint.yaml): expected a single value: 1-64 characters of A-Z a-z 0-9 . _ -"#
    );
    assert!(!text.contains("endpoint_ram"), "{text}");
}

#[test]
fn every_setting_has_a_flag_and_an_environment_variable() {
    let input = SettingsInput {
        config: None,
        region: Some("cn-beijing".into()),
        endpoint_ram: Some("http://127.0.0.1:1".into()),
        endpoint_imm: Some("http://127.0.0.1:2".into()),
        endpoint_sts: Some("http://127.0.0.1:3".into()),
        owner: Some("o".into()),
        log_format: Some("json".into()),
        verbosity: Some(1),
        interval: Some("1s".into()),
        jitter: Some("0".into()),
        listen: Some("127.0.0.1:0".into()),
        detect_only: Some(true),
        prune: Some(true),
        max_deletions: Some("1".into()),
        allow_mass_delete: Some(true),
        max_concurrency: Some("1".into()),
        request_timeout: Some("1s".into()),
        connect_timeout: Some("1s".into()),
        rate_limit_scale: Some("3".into()),
    };
    let s = resolve(&input, env(&[])).unwrap();
    assert_eq!(s.origins.len(), 18);
    for (key, origin) in &s.origins {
        assert!(matches!(origin, Origin::Flag(_)), "{key}: {origin:?}");
    }
    let vars: Vec<(String, String)> = s
        .origins
        .keys()
        .map(|k| {
            let value = match input_value(&input, k) {
                Some(v) => v,
                None => panic!("{k}"),
            };
            (format!("IMMCTL_{}", k.to_uppercase()), value)
        })
        .collect();
    let from_env = resolve(&SettingsInput::default(), vars).unwrap();
    for (key, origin) in &from_env.origins {
        assert_eq!(
            origin,
            &Origin::Env(format!("IMMCTL_{}", key.to_uppercase()))
        );
    }
    let mut expected = s.clone();
    expected.origins = from_env.origins.clone();
    assert_eq!(from_env, expected);
}

fn input_value(input: &SettingsInput, key: &str) -> Option<String> {
    let b = |v: Option<bool>| v.map(|b| b.to_string());
    match key {
        "region" => input.region.clone(),
        "endpoint_ram" => input.endpoint_ram.clone(),
        "endpoint_imm" => input.endpoint_imm.clone(),
        "endpoint_sts" => input.endpoint_sts.clone(),
        "owner" => input.owner.clone(),
        "log_format" => input.log_format.clone(),
        "verbosity" => input.verbosity.map(|v| v.to_string()),
        "interval" => input.interval.clone(),
        "jitter" => input.jitter.clone(),
        "listen" => input.listen.clone(),
        "detect_only" => b(input.detect_only),
        "prune" => b(input.prune),
        "max_deletions" => input.max_deletions.clone(),
        "allow_mass_delete" => b(input.allow_mass_delete),
        "max_concurrency" => input.max_concurrency.clone(),
        "request_timeout" => input.request_timeout.clone(),
        "connect_timeout" => input.connect_timeout.clone(),
        "rate_limit_scale" => input.rate_limit_scale.clone(),
        _ => None,
    }
}

/// The settings shipped in `deploy/base/configmap.yaml` must resolve: a typo there would
/// crash-loop every fresh install.
#[test]
fn the_kubernetes_configmap_settings_resolve() {
    let text = std::fs::read_to_string("deploy/base/configmap.yaml").unwrap();
    let cm: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
    let config = cm["data"]["config.yaml"]
        .as_str()
        .expect("data.config.yaml");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yaml");
    std::fs::write(&path, config).unwrap();
    let input = SettingsInput {
        config: Some(path.clone()),
        ..SettingsInput::default()
    };
    let s = resolve(&input, env(&[])).unwrap();
    assert_eq!(s.daemon.listen.port(), 9090);
    assert_eq!(s.log_format, LogFormat::Json);
    // Every key in the shipped file is set there on purpose.
    assert!(
        s.origins
            .iter()
            .filter(|(_, o)| **o == Origin::File(path.clone()))
            .count()
            >= 8
    );
}

/// A settings file that does not exist is "cannot read", whatever its name (it used to be
/// called an unsupported extension when it had none), and a binary one is refused, not read
/// as no settings at all.
#[test]
fn a_missing_or_binary_settings_file_is_named_as_such() {
    let dir = tempfile::tempdir().unwrap();
    let missing = SettingsInput {
        config: Some(dir.path().join("nonexistent")),
        ..SettingsInput::default()
    };
    let text = error_text(&missing, &[]);
    assert!(text.starts_with("cannot read settings file "), "{text}");
    assert!(text.contains("nonexistent"), "{text}");

    let binary = dir.path().join("settings.yaml");
    std::fs::write(&binary, "region: cn-hangzhou\n\u{0}\u{1}\n").unwrap();
    let input = SettingsInput {
        config: Some(binary),
        ..SettingsInput::default()
    };
    let text = error_text(&input, &[]);
    assert!(
        text.contains("not a text settings file (a control character at line 2)"),
        "{text}"
    );
}
