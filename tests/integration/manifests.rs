//! Manifests: the bad-manifest corpus (every case refused with its recorded message), the
//! example manifests (clean), the digest, `--expand`, and `immctl validate` as a user runs it
//! (exit codes 0 / 1, `--strict`).
//!
//! Corpus: each `tests/manifests/bad/<case>/` holds the files of one broken manifest set and
//! `expected.txt`, the findings exactly as `immctl validate` prints them plus the summary
//! line. `IMMCTL_BLESS=1` (or `UPDATE_GOLDEN=1`) rewrites them; review the diff like code.
//! A case may hold `args` (`--strict`) and `GENERATE` (`<file> <bytes> lines|flow|flowline`: a file
//! too large to commit, written before the case runs and ignored by git).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use immctl::cli::validate::validate;
use immctl::manifest::{self, LoadOptions, PolicyType};

const BAD: &str = "tests/manifests/bad";

/// `immctl validate PATH` as a user runs it: its exit code, and stdout then stderr.
fn immctl_validate(path: &Path) -> (Option<i32>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_immctl"))
        .arg("validate")
        .arg(path)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

fn opts() -> LoadOptions {
    LoadOptions {
        default_region: "cn-hangzhou".into(),
    }
}

fn bless() -> bool {
    ["IMMCTL_BLESS", "UPDATE_GOLDEN"]
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|x| x == "1"))
}

/// Compare with the golden file, or rewrite it when blessing. A mismatch message otherwise.
fn check_golden(path: &Path, actual: &str) -> Option<String> {
    if bless() {
        std::fs::write(path, actual).unwrap();
        return None;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_default();
    if expected == actual {
        return None;
    }
    let diff = similar::TextDiff::from_lines(&expected, actual)
        .unified_diff()
        .header("expected", "actual")
        .to_string();
    Some(format!(
        "{} differs (IMMCTL_BLESS=1 to accept):\n{diff}",
        path.display()
    ))
}

fn generate(case: &Path) {
    let Ok(spec) = std::fs::read_to_string(case.join("GENERATE")) else {
        return;
    };
    let parts: Vec<&str> = spec.split_whitespace().collect();
    let [file, bytes, pattern] = parts[..] else {
        panic!(
            "{}: GENERATE wants `<file> <bytes> lines|flow`",
            case.display()
        );
    };
    let path = case.join(file);
    let size: usize = bytes.parse().unwrap();
    if std::fs::metadata(&path).is_ok_and(|m| m.len() as usize == size) {
        return;
    }
    let mut text = match pattern {
        "lines" => "apiVersion: immctl/v1\n".repeat(size / 22 + 1),
        "flow" => format!("[{}", "1,".repeat(size / 2)),
        // Many small collections on one line: looking up columns must stay linear.
        "flowline" => format!("a: [{}", "[1],".repeat(size / 4)),
        other => panic!("unknown GENERATE pattern {other}"),
    };
    text.truncate(size - 2);
    text.push_str(if pattern == "lines" { "\n\n" } else { "]\n" });
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
}

fn cases() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(BAD)
        .expect(BAD)
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// What `immctl validate <case>` prints on stderr.
fn render(diags: &[manifest::Diagnostic], summary: &str) -> String {
    let mut out = Vec::new();
    manifest::render_diagnostics(diags, &mut out).unwrap();
    format!("{}{summary}\n", String::from_utf8(out).unwrap())
}

#[test]
fn every_bad_manifest_is_refused_quickly_with_its_recorded_message() {
    let cases = cases();
    assert!(cases.len() >= 30, "the corpus has {} cases", cases.len());
    let mut failures = Vec::new();
    for case in &cases {
        generate(case);
        let strict =
            std::fs::read_to_string(case.join("args")).is_ok_and(|a| a.contains("--strict"));
        let start = Instant::now();
        let outcome = validate(std::slice::from_ref(case), &opts(), strict);
        let elapsed = start.elapsed();
        // Generous for a debug build on a shared 2-core machine; a release build takes a
        // few milliseconds per case.
        assert!(
            elapsed < Duration::from_secs(3),
            "{}: took {elapsed:?}",
            case.display()
        );
        assert_eq!(outcome.exit_code, 1, "{}: not refused", case.display());
        assert!(
            !outcome.diagnostics.is_empty(),
            "{}: refused without a finding",
            case.display()
        );
        // Manifest codes must be in the catalog with their severity (lint codes, IMM..., are
        // the lint module's).
        for d in outcome
            .diagnostics
            .iter()
            .filter(|d| !d.code.starts_with("IMM"))
        {
            assert!(
                manifest::codes::severity(&d.code) == Some(d.severity),
                "{}: {} is not in the code catalog with that severity",
                case.display(),
                d.code
            );
        }
        let text = render(&outcome.diagnostics, &outcome.summary);
        if let Some(m) = check_golden(&case.join("expected.txt"), &text) {
            failures.push(m);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn findings_of_a_run_are_sorted_by_file_then_line() {
    let outcome = validate(
        &[PathBuf::from(BAD).join("duplicate-names-across-files")],
        &opts(),
        false,
    );
    let places: Vec<(String, usize, usize)> = outcome
        .diagnostics
        .iter()
        .filter_map(|d| d.source.as_ref())
        .map(|s| (s.file.display().to_string(), s.line, s.column))
        .collect();
    let mut sorted = places.clone();
    sorted.sort();
    assert_eq!(places, sorted);
    assert!(places.len() >= 3);
}

#[test]
fn a_duplicate_name_across_files_names_both_places() {
    let outcome = validate(
        &[PathBuf::from(BAD).join("duplicate-names-across-files")],
        &opts(),
        false,
    );
    let d = outcome
        .diagnostics
        .iter()
        .find(|d| d.code == "E501" && d.address.as_ref().is_some_and(|a| a.0 == "ram_role.app"))
        .expect("a duplicate role finding");
    let here = d.source.as_ref().unwrap();
    assert!(here.file.ends_with("b-more/roles.yaml"), "{here}");
    assert!(
        d.message
            .contains("tests/manifests/bad/duplicate-names-across-files/a-roles.yaml:4:9"),
        "{}",
        d.message
    );
}

#[test]
fn the_example_manifests_validate_clean() {
    let outcome = validate(&[], &opts(), true);
    assert_eq!(
        outcome.diagnostics,
        vec![],
        "{}",
        render(&outcome.diagnostics, &outcome.summary)
    );
    assert_eq!(outcome.exit_code, 0);
    let d = &outcome.loaded.desired;
    // What the CLI tests and the demo account rely on.
    let q = &d.policies["media-app-imm-query"];
    let actions = q.document.0["Statement"][0]["Action"].clone();
    assert!(!actions.to_string().contains("imm:DeleteFile"));
    assert!(actions.to_string().contains("imm:SemanticQuery"));
    let app = &d.roles["media-app"];
    assert_eq!(app.tags.get("team").map(String::as_str), Some("media"));
    assert!(
        app.trust_policy.0.to_string().contains("ecs.aliyuncs.com"),
        "{:?}",
        app.trust_policy
    );
    let attached: Vec<(PolicyType, &str)> = app
        .policies
        .iter()
        .map(|p| (p.policy_type, p.name.as_str()))
        .collect();
    assert_eq!(
        attached,
        vec![
            (PolicyType::Custom, "media-app-imm-query"),
            (PolicyType::System, "AliyunIMMReadOnlyAccess")
        ]
    );
    // The service role written out in full equals what an ImmServiceRole would generate.
    let svc = &d.roles["imm-media-role"];
    assert_eq!(svc.trust_policy, immctl::policy::imm::trust_policy());
    assert_eq!(svc.expanded_from, None);
    let svc_policy = &d.policies["imm-media-role-policy"];
    assert_eq!(
        svc_policy.document,
        immctl::policy::imm::service_role_policy(&["media-library-assets".into()], &[])
    );
    let archive = &d.roles["media-archive-role"];
    assert_eq!(archive.expanded_from.as_deref(), Some("media-archive-role"));
    let project = d
        .projects
        .values()
        .find(|p| p.name == "media-library")
        .unwrap();
    assert_eq!(
        (
            project.region.as_str(),
            project.name.as_str(),
            project.service_role.as_str()
        ),
        ("cn-hangzhou", "media-library", "imm-media-role")
    );
    assert_eq!(project.buckets, vec!["media-library-assets".to_string()]);
    assert_eq!(project.limits.dataset_max_bind_count, Some(5));
    let text = std::fs::read_to_string("manifests/projects.yaml").unwrap();
    assert!(text.contains("datasetMaxBindCount: 5"));
}

#[test]
fn the_digest_does_not_depend_on_how_the_directory_is_spelled() {
    let digest = |paths: &[&str]| {
        let p: Vec<PathBuf> = paths.iter().map(PathBuf::from).collect();
        manifest::load(&p, &opts()).desired.digest
    };
    let d = digest(&[]);
    assert_eq!(d.len(), 64);
    for spelling in ["manifests", "manifests/", "./manifests", "manifests/."] {
        assert_eq!(digest(&[spelling]), d, "{spelling}");
    }
    let abs = std::fs::canonicalize("manifests").unwrap();
    assert_eq!(digest(&[abs.to_str().unwrap()]), d);
}

#[test]
fn the_digest_changes_with_any_manifest_byte_and_with_document_files() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("manifests");
    std::fs::create_dir_all(m.join("docs")).unwrap();
    std::fs::write(
        m.join("p.yaml"),
        "apiVersion: immctl/v1\nkind: Policy\nmetadata:\n  name: p\nspec:\n  documentFile: docs/p.json\n",
    )
    .unwrap();
    let doc = r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:GetObject","Resource":"*"}]}"#;
    std::fs::write(m.join("docs/p.json"), doc).unwrap();
    let load = || manifest::load(std::slice::from_ref(&m), &opts());
    let first = load();
    assert!(!first.has_errors(), "{:?}", first.diagnostics);
    std::fs::write(m.join("docs/p.json"), doc.replace("GetObject", "PutObject")).unwrap();
    let second = load();
    assert_ne!(first.desired.digest, second.desired.digest);
    assert_ne!(
        first.desired.policies["p"].document,
        second.desired.policies["p"].document
    );
}

/// A `documentFile` may only name a regular file under the directory its manifest was found
/// in (like kustomize's load restrictor): findings quote the lines of the file they point at,
/// and plans are posted on pull requests, so a manifest must not make immctl read and print
/// the CLI credentials file of the machine running it. Each way out is refused with E107 at
/// the manifest's `documentFile` line; the secret never reaches a finding.
#[test]
fn a_document_file_outside_the_manifest_directory_is_refused_and_never_quoted() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "SuperSecretValue-documentFile";
    let outside = dir.path().join("config.json");
    std::fs::write(
        &outside,
        format!(
            "{{\n  \"profiles\": [\n    {{\n      \"access_key_secret\": \"{secret}\"\n    }}\n  ]\n}}\n"
        ),
    )
    .unwrap();
    let m = dir.path().join("m");
    std::fs::create_dir_all(m.join("sub")).unwrap();
    let doc = r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:GetObject","Resource":"*"}]}"#;
    std::fs::write(m.join("ok.json"), doc).unwrap();
    let policy = |name: &str, file: &str| {
        format!(
            "---\napiVersion: immctl/v1\nkind: Policy\nmetadata:\n  name: {name}\nspec:\n  documentFile: {file}\n"
        )
    };
    // A hidden file inside the directory (`.git/config` holds CI's token) is not one either.
    std::fs::create_dir_all(m.join(".git")).unwrap();
    std::fs::write(
        m.join(".git/config"),
        format!("[http]\n\tsecret = {secret}\n"),
    )
    .unwrap();
    let mut text = policy("up", "../config.json");
    text += &policy("hidden", ".git/config");
    text += &policy("absolute", outside.to_str().unwrap());
    text += &policy("a-directory", "sub");
    // Inside the directory, through a subdirectory and back: allowed.
    text += &policy("fine", "sub/../ok.json");
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(&outside, m.join("link.json")).unwrap();
        text += &policy("via-link", "link.json");
        std::os::unix::fs::symlink("/dev/zero", m.join("zero.json")).unwrap();
        text += &policy("device", "zero.json");
    }
    std::fs::write(m.join("p.yaml"), &text).unwrap();

    let loaded = manifest::load(std::slice::from_ref(&m), &opts());
    let mut refused: Vec<(String, usize, String)> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == manifest::Severity::Error)
        .map(|d| {
            assert_eq!(d.code, "E107", "{d:?}");
            let at = d.source.as_ref().expect("a place");
            assert_eq!(at.file, m.join("p.yaml"), "{d:?}");
            let name = d.address.as_ref().unwrap().to_string();
            (name, at.line, d.message.clone())
        })
        .collect();
    refused.sort();
    let names: Vec<&str> = refused.iter().map(|(n, _, _)| n.as_str()).collect();
    let mut expected = vec![
        "ram_policy.a-directory",
        "ram_policy.absolute",
        "ram_policy.hidden",
        "ram_policy.up",
    ];
    if cfg!(unix) {
        expected.extend(["ram_policy.device", "ram_policy.via-link"]);
        expected.sort();
    }
    assert_eq!(names, expected, "{refused:#?}");
    for (name, line, message) in &refused {
        // Each finding points at the documentFile line of its own document (7 lines each).
        assert_eq!((line - 7) % 7, 0, "{name} at line {line}");
        let why = match name.as_str() {
            "ram_policy.absolute" => "an absolute path",
            "ram_policy.a-directory" => "is not a regular file",
            "ram_policy.hidden" => "resolves into a hidden path",
            _ => "resolves to a file outside",
        };
        assert!(message.contains(why), "{name}: {message}");
    }
    assert!(loaded.desired.policies.contains_key("fine"));

    // Nothing of the outside file in what `immctl validate` prints.
    let (code, text) = immctl_validate(&m);
    assert_eq!(code, Some(1));
    assert!(text.contains("E107"), "{text}");
    assert!(!text.contains(secret), "{text}");
    assert!(!text.contains("access_key_secret"), "{text}");
}

/// A symbolic link under a manifest directory is followed only while it stays inside it: a
/// link to a token or a credentials file elsewhere (which a pull request can add: git stores
/// links) is refused with E001 and never read, so no finding quotes its lines. Links inside
/// the tree still work, and the link's target given as a path of its own is read.
#[cfg(unix)]
#[test]
fn a_symbolic_link_out_of_the_manifest_directory_is_refused_and_never_read() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "eyJhbGciOi.SECRET-TOKEN.SIG";
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("token"), format!("{secret}\n")).unwrap();
    std::fs::write(
        outside.join("more.yaml"),
        format!("not: [a manifest {secret}\n"),
    )
    .unwrap();
    let m = dir.path().join("m");
    std::fs::create_dir_all(m.join("team")).unwrap();
    let policy = "apiVersion: immctl/v1\nkind: Policy\nmetadata:\n  name: p\nspec:\n  document:\n    Version: \"1\"\n    Statement: [{Effect: Allow, Action: \"oss:GetObject\", Resource: \"*\"}]\n";
    std::fs::write(m.join("team/p.yaml"), policy).unwrap();
    std::os::unix::fs::symlink(outside.join("token"), m.join("tok.yaml")).unwrap();
    std::os::unix::fs::symlink(&outside, m.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(m.join("team/p.yaml"), m.join("inside.yaml")).unwrap();
    // A link out that is not a manifest name is not read, and not an error either.
    std::os::unix::fs::symlink(outside.join("token"), m.join("notes.txt")).unwrap();

    let loaded = manifest::load(std::slice::from_ref(&m), &opts());
    let errors: Vec<&manifest::Diagnostic> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == manifest::Severity::Error)
        .collect();
    let mut named: Vec<String> = errors
        .iter()
        .map(|d| {
            assert_eq!(d.code, "E001", "{d:?}");
            assert!(d.message.contains("a symbolic link out of"), "{d:?}");
            d.message.split(':').next().unwrap().to_string()
        })
        .collect();
    named.sort();
    let expected = [m.join("elsewhere"), m.join("tok.yaml")].map(|p| p.display().to_string());
    assert_eq!(named, expected);
    // The inside link is the same file as team/p.yaml: read once, no error.
    assert!(loaded.desired.policies.contains_key("p"));

    let (code, text) = immctl_validate(&m);
    assert_eq!(code, Some(1));
    assert!(!text.contains(secret), "{text}");

    // Given as a path of its own, the link's target is read (and its error quoted).
    let loaded = manifest::load(&[m.clone(), outside.clone()], &opts());
    assert!(
        loaded.diagnostics.iter().any(|d| d
            .source
            .as_ref()
            .is_some_and(|s| s.file == outside.join("more.yaml"))),
        "{:?}",
        loaded.diagnostics
    );
}

/// A link into a hidden part of the tree (`x.yaml -> .git/config`, where CI checkouts keep a
/// token) is refused like a link out: the walk skips hidden entries, and a link must not
/// reach one. The `..data` / `..<timestamp>` directories of a ConfigMap volume are not
/// hidden in that sense: a ConfigMap mount still loads.
#[cfg(unix)]
#[test]
fn a_link_into_a_hidden_path_is_refused_and_a_configmap_volume_still_loads() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "AUTHORIZATION: basic c2VjcmV0LXRva2Vu";
    let m = dir.path().join("m");
    std::fs::create_dir_all(m.join(".git")).unwrap();
    std::fs::write(
        m.join(".git/config"),
        format!("[http]\n\textraheader = {secret}\n"),
    )
    .unwrap();
    std::os::unix::fs::symlink(".git/config", m.join("git.yaml")).unwrap();
    // A ConfigMap volume: cm.yaml -> ..data/cm.yaml, ..data -> ..2026_12_04_00_00_00.1
    let stamp = m.join("..2026_12_04_00_00_00.1");
    std::fs::create_dir_all(&stamp).unwrap();
    let policy = "apiVersion: immctl/v1\nkind: Policy\nmetadata:\n  name: cm\nspec:\n  document:\n    Version: \"1\"\n    Statement: [{Effect: Allow, Action: \"oss:GetObject\", Resource: \"*\"}]\n";
    std::fs::write(stamp.join("cm.yaml"), policy).unwrap();
    std::os::unix::fs::symlink("..2026_12_04_00_00_00.1", m.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/cm.yaml", m.join("cm.yaml")).unwrap();

    let loaded = manifest::load(std::slice::from_ref(&m), &opts());
    let errors: Vec<&manifest::Diagnostic> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == manifest::Severity::Error)
        .collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    assert_eq!(errors[0].code, "E001");
    assert!(
        errors[0].message.starts_with(&format!(
            "{}: a symbolic link into a hidden path",
            m.join("git.yaml").display()
        )),
        "{}",
        errors[0].message
    );
    assert!(!errors[0].message.contains(secret));
    assert!(
        loaded.desired.policies.contains_key("cm"),
        "{:?}",
        loaded.diagnostics
    );
}

#[test]
fn discovery_skips_hidden_entries_follows_links_and_reads_a_file_once() {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("m");
    std::fs::create_dir_all(m.join(".git")).unwrap();
    std::fs::create_dir_all(m.join("team/b")).unwrap();
    let policy = |name: &str| {
        format!(
            "apiVersion: immctl/v1\nkind: Policy\nmetadata:\n  name: {name}\nspec:\n  document:\n    Version: \"1\"\n    Statement: [{{Effect: Allow, Action: \"oss:GetObject\", Resource: \"*\"}}]\n"
        )
    };
    std::fs::write(m.join(".git/x.yaml"), "not: a manifest\n").unwrap();
    std::fs::write(m.join(".hidden.yaml"), "not: a manifest\n").unwrap();
    std::fs::write(m.join("notes.txt"), "not yaml\n").unwrap();
    std::fs::write(m.join("team/b/one.yml"), policy("one")).unwrap();
    std::fs::write(m.join("a.yaml"), policy("a")).unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(m.join("team"), m.join("linked-team")).unwrap();
        std::os::unix::fs::symlink(&m, m.join("team/loop")).unwrap();
    }
    let loaded = manifest::load(std::slice::from_ref(&m), &opts());
    let files: Vec<String> = loaded
        .files
        .iter()
        .map(|f| f.strip_prefix(&m).unwrap().display().to_string())
        .collect();
    // Sorted by relative path; the link to `team` reaches one.yml again: read once.
    assert_eq!(files, vec!["a.yaml", "linked-team/b/one.yml"]);
    assert_eq!(loaded.desired.policies.len(), 2);
    #[cfg(unix)]
    {
        let loops: Vec<&manifest::Diagnostic> = loaded
            .diagnostics
            .iter()
            .filter(|d| d.code == "E001")
            .collect();
        assert!(
            loops
                .iter()
                .all(|d| d.message.contains("symbolic link loop"))
                && !loops.is_empty(),
            "{:?}",
            loaded.diagnostics
        );
    }
    // A hidden file named explicitly is read.
    let explicit = manifest::load(&[m.join(".hidden.yaml")], &opts());
    assert!(explicit.diagnostics.iter().any(|d| d.code == "E101"));
}

#[test]
fn a_missing_path_and_an_empty_directory_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let loaded = manifest::load(&[dir.path().join("nope")], &opts());
    assert_eq!(loaded.diagnostics.len(), 1);
    assert_eq!(loaded.diagnostics[0].code, "E001");
    assert!(
        loaded.diagnostics[0]
            .message
            .contains("no such file or directory")
    );
    let empty = manifest::load(&[dir.path().to_path_buf()], &opts());
    assert_eq!(empty.diagnostics.len(), 1);
    assert_eq!(empty.diagnostics[0].code, "W001");
    assert!(!empty.has_errors());
}

#[test]
fn expand_prints_manifests_that_load_back_to_the_same_resources() {
    let outcome = validate(&[], &opts(), false);
    let yaml = manifest::expand::render_expansion(&outcome.loaded.desired);
    assert!(yaml.contains("kind: Role") && yaml.contains("kind: Policy"));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("expanded.yaml");
    std::fs::write(&file, &yaml).unwrap();
    let again = manifest::load(std::slice::from_ref(&file), &opts());
    assert!(!again.has_errors(), "{:?}", again.diagnostics);
    let before = &outcome.loaded.desired;
    for (name, role) in &again.desired.roles {
        let orig = &before.roles[name];
        assert_eq!(role.trust_policy, orig.trust_policy);
        assert_eq!(role.policies, orig.policies);
        assert_eq!(role.description, orig.description);
        assert_eq!(role.tags, orig.tags);
        assert_eq!(role.expanded_from, None);
    }
    for (name, policy) in &again.desired.policies {
        let orig = &before.policies[name];
        assert_eq!(policy.document, orig.document);
        assert_eq!(policy.description, orig.description);
    }
    assert_eq!(again.desired.roles.len(), 1);
    assert_eq!(again.desired.policies.len(), 1);
}

// ---- the real binary ----

fn immctl(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_immctl"))
        .args(args)
        .current_dir(dir)
        .env_remove("IMMCTL_CONFIG")
        .env_remove("IMMCTL_REGION")
        // Blessing goldens must not reach the binary (an unknown IMMCTL_* draws a warning).
        .env_remove("IMMCTL_BLESS")
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("run immctl")
}

fn show(o: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn validate_exits_0_on_the_examples_and_1_on_errors() {
    let root = std::env::current_dir().unwrap();
    let ok = immctl(&root, &["validate"]);
    assert_eq!(ok.status.code(), Some(0), "{}", show(&ok));
    let err = String::from_utf8_lossy(&ok.stderr);
    assert!(
        err.starts_with("validate: ") && err.trim_end().ends_with(": valid"),
        "{}",
        show(&ok)
    );
    assert!(!err.contains("warning["), "{}", show(&ok));
    assert!(ok.stdout.is_empty(), "{}", show(&ok));

    let bad = immctl(&root, &["validate", "tests/manifests/bad/wrong-type"]);
    assert_eq!(bad.status.code(), Some(1), "{}", show(&bad));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("error[E105]: tests/manifests/bad/wrong-type/main.yaml:"),
        "{}",
        show(&bad)
    );
    assert!(
        err.contains("errors, 0 warnings in 1 file;"),
        "{}",
        show(&bad)
    );
}

#[test]
fn warnings_pass_unless_strict() {
    let root = std::env::current_dir().unwrap();
    let case = "tests/manifests/bad/dangling-references";
    let lenient = immctl(&root, &["validate", case]);
    assert_eq!(lenient.status.code(), Some(0), "{}", show(&lenient));
    assert!(String::from_utf8_lossy(&lenient.stderr).contains("warning[W401]"));
    let strict = immctl(&root, &["validate", "--strict", case]);
    assert_eq!(strict.status.code(), Some(1), "{}", show(&strict));
    assert!(String::from_utf8_lossy(&strict.stderr).contains("which fail under --strict"));
}

#[test]
fn a_directory_given_twice_is_not_reported_empty() {
    // Found by trial6: `validate --strict manifests ./manifests` failed on the example
    // manifests with W001 "no .yaml or .yml file in this directory" for the second path,
    // whose files had all been read already under the first.
    let root = std::env::current_dir().unwrap();
    let abs = root.join("manifests");
    for args in [
        vec!["validate", "--strict", "manifests", "./manifests"],
        vec!["validate", "--strict", "manifests", abs.to_str().unwrap()],
        vec!["validate", "--strict", "manifests/", "manifests/roles.yaml"],
    ] {
        let o = immctl(&root, &args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", show(&o));
        assert!(
            !String::from_utf8_lossy(&o.stderr).contains("W001"),
            "{args:?}: {}",
            show(&o)
        );
    }
}

#[test]
fn validate_expand_prints_the_expansion_on_stdout() {
    let root = std::env::current_dir().unwrap();
    let out = immctl(&root, &["validate", "--expand", "manifests/"]);
    assert_eq!(out.status.code(), Some(0), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("# ram_role.media-archive-role (generated from ImmServiceRole media-archive-role at manifests/archive.yaml:"),
        "{}",
        show(&out)
    );
    assert!(
        stdout.contains("name: media-archive-role-policy"),
        "{}",
        show(&out)
    );
    assert!(
        stdout.contains("acs:oss:*:*:media-archive-cold/*"),
        "{}",
        show(&out)
    );
}

#[test]
fn a_hostile_file_is_refused_by_the_binary_without_a_crash() {
    let root = std::env::current_dir().unwrap();
    for case in [
        "alias-bomb",
        "deep-nesting-flow",
        "binary-file",
        "recursive-alias",
    ] {
        let path = format!("{BAD}/{case}");
        let start = Instant::now();
        let out = immctl(&root, &["validate", &path]);
        assert_eq!(out.status.code(), Some(1), "{case}: {}", show(&out));
        assert!(start.elapsed() < Duration::from_secs(5), "{case}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{case}: {}", show(&out));
    }
}

#[test]
fn every_finding_code_is_documented() {
    let doc = std::fs::read_to_string("docs/manifests.md").unwrap();
    for (code, severity, _) in manifest::codes::CATALOG {
        let row = format!("| `{code}` | {severity} |");
        assert!(
            doc.contains(&row),
            "docs/manifests.md lacks the row for {code}"
        );
    }
}
