//! Issue 6: the apply process killed (SIGKILL, no chance to clean up) at 20 points during
//! an apply; each time the next run converges, nothing declared is lost, and nothing
//! immctl does not own is touched.
//!
//! The emulator runs as its own process with a state file and some latency, so an apply
//! takes long enough to be interrupted anywhere: between calls, with calls in flight, between
//! the ops of one change (CreatePolicy done, TagResources not yet; a version created but the
//! old one not deleted). The manifests alternate between two fleets that differ in every way
//! the planner knows (creates, document updates at the version limit, attachments moved,
//! project fields, prunes), so every iteration has real work to interrupt.
//!
//! The kill points are spread over the expected apply time by a fixed sequence, so a
//! failure reproduces.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::cli::emulator_process;

const KEY_ID: &str = "emulator-admin";
const SECRET: &str = "emulator-secret";

/// The account: our fleet is created by the test; these are someone else's and must come
/// through every crash unchanged.
const ACCOUNT: &str = r#"
accountId: "1234567890123456"
users:
  admin: {policies: [{type: System, name: AdministratorAccess}]}
accessKeys:
  - {id: emulator-admin, secret: emulator-secret, user: admin}
immDefaultRoleAuthorized: true
policies:
  hand-made:
    description: made in the console
    document: {Version: "1", Statement: [{Effect: Allow, Action: "oss:GetObject", Resource: "acs:oss:*:*:x/*"}]}
  other-team:
    document: {Version: "1", Statement: [{Effect: Allow, Action: "mns:*", Resource: "*"}]}
    tags: {immctl-owner: other-team}
roles:
  ops-admin:
    description: break glass
    assumeRolePolicyDocument: {Version: "1", Statement: [{Effect: Allow, Action: "sts:AssumeRole", Principal: {RAM: ["acs:ram::1234567890123456:root"]}}]}
    policies: [{type: System, name: AdministratorAccess}, {type: Custom, name: hand-made}]
  other-team-role:
    assumeRolePolicyDocument: {Version: "1", Statement: [{Effect: Allow, Action: "sts:AssumeRole", Principal: {Service: [imm.aliyuncs.com]}}]}
    policies: [{type: Custom, name: other-team}]
    tags: {immctl-owner: other-team}
projects:
  cn-hangzhou:
    legacy: {serviceRole: AliyunIMMDefaultRole, description: not ours}
"#;

/// Fleet `variant` (0 or 1): `n` service roles with their policies and projects. Variant 1
/// changes every document, moves attachments, changes project limits, and drops the last
/// unit (pruned), while variant 0 brings it back.
fn fleet(variant: usize, n: usize) -> String {
    let mut out = String::new();
    let units = if variant == 0 { n } else { n - 1 };
    for i in 0..units {
        let bucket = format!("crash-bucket-{i}");
        let extra = if variant == 1 {
            format!(
                "\n  extraStatements:\n    - {{Effect: Allow, Action: \"oss:GetObjectMeta\", Resource: \"acs:oss:*:*:{bucket}-v1/*\"}}"
            )
        } else {
            String::new()
        };
        out.push_str(&format!(
            "---\napiVersion: immctl/v1\nkind: ImmServiceRole\nmetadata:\n  name: crash-svc-{i}\nspec:\n  buckets: [{bucket}]{extra}\n"
        ));
        out.push_str(&format!(
            "---\napiVersion: immctl/v1\nkind: Policy\nmetadata:\n  name: crash-read-{i}\nspec:\n  description: v{variant}\n  document:\n    Version: \"1\"\n    Statement:\n      - {{Effect: Allow, Action: \"oss:GetObject\", Resource: \"acs:oss:*:*:{bucket}/v{variant}/*\"}}\n"
        ));
        let attached = if variant == 0 {
            format!("[{{name: crash-read-{i}}}]")
        } else {
            format!("[{{name: crash-read-{i}}}, {{name: AliyunIMMReadOnlyAccess, type: System}}]")
        };
        out.push_str(&format!(
            "---\napiVersion: immctl/v1\nkind: Role\nmetadata:\n  name: crash-app-{i}\nspec:\n  trustPolicy:\n    Version: \"1\"\n    Statement:\n      - {{Effect: Allow, Action: sts:AssumeRole, Principal: {{Service: [ecs.aliyuncs.com]}}}}\n  policies: {attached}\n"
        ));
        out.push_str(&format!(
            "---\napiVersion: immctl/v1\nkind: Project\nmetadata:\n  name: crash-project-{i}\nspec:\n  serviceRole: crash-svc-{i}\n  buckets: [{bucket}]\n  datasetMaxBindCount: {}\n",
            5 + variant
        ));
    }
    out
}

fn immctl(dir: &Path, url: &str, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_immctl"));
    c.args(args)
        .args([
            "--endpoint-ram",
            url,
            "--endpoint-imm",
            url,
            "--endpoint-sts",
            url,
        ])
        .current_dir(dir)
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .env_remove("IMMCTL_CONFIG")
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", KEY_ID)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET);
    c
}

fn text(o: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The account's state as the emulator last persisted it.
fn state(dir: &Path) -> serde_yaml::Value {
    serde_yaml::from_str(&std::fs::read_to_string(dir.join("account.yaml")).unwrap()).unwrap()
}

/// What of the state belongs to others: must never change.
fn foreign(s: &serde_yaml::Value) -> String {
    let pick = |kind: &str, name: &str| {
        let mut v = s[kind][name].clone();
        // Dates the emulator fills in on load are stable; ids too. Drop nothing else.
        if let Some(m) = v.as_mapping_mut() {
            m.remove("attachDate");
        }
        serde_yaml::to_string(&v).unwrap()
    };
    [
        pick("policies", "hand-made"),
        pick("policies", "other-team"),
        pick("roles", "ops-admin"),
        pick("roles", "other-team-role"),
        serde_yaml::to_string(&s["projects"]["cn-hangzhou"]["legacy"]).unwrap(),
    ]
    .join("\n")
}

#[test]
fn an_apply_killed_at_twenty_points_always_converges_on_the_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (emulator, url) = emulator_process(
        d,
        ACCOUNT,
        &["--latency", "15ms", "--rate-limit-scale", "0"],
    );
    std::fs::create_dir_all(d.join("manifests")).unwrap();
    let before = foreign(&state(d));
    let n = 6;

    std::fs::write(d.join("manifests/fleet.yaml"), fleet(0, n)).unwrap();
    let first = immctl(d, &url, &["reconcile", "--prune"]).output().unwrap();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    // How long the applies that get killed take here (a switch from one variant to the
    // other, shorter than the first apply from empty), to spread the kill points over one.
    std::fs::write(d.join("manifests/fleet.yaml"), fleet(1, n)).unwrap();
    let t = Instant::now();
    let switch = immctl(d, &url, &["reconcile", "--prune"]).output().unwrap();
    assert_eq!(switch.status.code(), Some(0), "{}", text(&switch));
    let full = t.elapsed().max(Duration::from_millis(200));

    let mut interrupted = 0;
    let mut resumed = 0;
    for i in 0..20usize {
        let variant = i % 2;
        std::fs::write(d.join("manifests/fleet.yaml"), fleet(variant, n)).unwrap();
        // Kill points from 5% to 100% of such an apply, in a fixed scattered order.
        let frac = ((i * 7) % 20 + 1) as f64 / 20.0;
        let mut child = immctl(d, &url, &["reconcile", "--prune"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(full.mul_f64(frac));
        if child.try_wait().unwrap().is_none() {
            interrupted += 1;
        }
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();

        let next = immctl(d, &url, &["reconcile", "--prune"]).output().unwrap();
        assert_eq!(
            next.status.code(),
            Some(0),
            "iteration {i} (killed at {frac:.2} of an apply): the next run failed\n{}",
            text(&next)
        );
        if !String::from_utf8_lossy(&next.stdout).contains("No changes") {
            resumed += 1;
        }
        let check = immctl(
            d,
            &url,
            &["reconcile", "--prune", "--dry-run", "--detailed-exitcode"],
        )
        .output()
        .unwrap();
        assert_eq!(
            check.status.code(),
            Some(0),
            "iteration {i}: not converged after the next run\n{}",
            text(&check)
        );
        assert_eq!(
            foreign(&state(d)),
            before,
            "iteration {i}: a resource immctl does not own was changed"
        );
    }
    drop(emulator);
    eprintln!(
        "crash: an apply took {full:?}; {interrupted} of 20 kills hit a running apply, {resumed} next runs had work left"
    );
    // Most kill points must have landed inside an apply, or the test proves little.
    assert!(
        interrupted >= 10 && resumed >= 10,
        "only {interrupted} kills hit a running apply and {resumed} next runs had work left (an apply took {full:?})"
    );
}
