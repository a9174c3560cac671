//! The binary as a user runs it: `immctl reconcile --emulator` on a copy of the example
//! manifests (and the demo account they are seeded from), in a temporary directory.
//!
//! These prove the main job end to end: a first dry run shows the demo account's drift, an
//! apply converges, and the next plan is empty; a saved plan goes stale when the account
//! changes; exit codes follow DESIGN.md §4; no secret reaches stdout or stderr.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SECRET: &str = "emulator-secret";

/// A temporary working directory holding a copy of `manifests/`.
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(Path::new("manifests"), &dir.path().join("manifests"));
    dir
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

/// `immctl` run in `dir` with no settings file, no colour, and no real credentials to pick
/// up by accident (HOME is `dir`; the access-key variables are removed).
fn command(dir: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_immctl"));
    c.current_dir(dir)
        .env_remove("IMMCTL_CONFIG")
        .env("NO_COLOR", "1")
        .env("HOME", dir)
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET");
    c
}

fn immctl(dir: &Path, args: &[&str]) -> Output {
    let out = command(dir).args(args).output().expect("run immctl");
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !all.contains(SECRET),
        "a secret reached the output of {args:?}:\n{all}"
    );
    out
}

/// Assert that the process printed `needle` on stdout (showing both streams if not).
fn assert_stdout_has(o: &Output, needle: &str) {
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(needle),
        "stdout lacks {needle:?}\n{}",
        text(o)
    );
}

/// `reconcile --emulator --dry-run EXTRA... --out OUT` in `d`, which must succeed.
fn save_plan(d: &Path, extra: &[&str], out: &str) {
    let mut args = vec!["reconcile", "--emulator", "--dry-run"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--out", out]);
    let saved = immctl(d, &args);
    assert_eq!(saved.status.code(), Some(0), "{}", text(&saved));
}

/// A JSON file (a saved plan, the emulator's state) as a value.
fn read_json(path: impl AsRef<Path>) -> serde_json::Value {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Assert that the process printed `needle` on stderr (showing both streams if not).
fn assert_stderr_has(o: &Output, needle: &str) {
    assert!(
        String::from_utf8_lossy(&o.stderr).contains(needle),
        "stderr lacks {needle:?}\n{}",
        text(o)
    );
}

fn text(o: &Output) -> String {
    format!(
        "--- stdout\n{}\n--- stderr\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn first_run_plans_the_demo_drift_then_apply_converges_and_replans_empty() {
    let dir = workdir();
    let d = dir.path();

    let plan = immctl(
        d,
        &[
            "reconcile",
            "--emulator",
            "--dry-run",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(plan.status.code(), Some(2), "{}", text(&plan));
    let out = String::from_utf8_lossy(&plan.stdout).to_string();
    // The drift the demo account was seeded with, each at its address.
    for needle in [
        "ram_policy.media-app-imm-query",
        "imm:DeleteFile",
        "ram_role_policy.media-app/System/AliyunOSSFullAccess",
        "imm_project.cn-hangzhou/media-library",
        "ram_role.imm-media-role",
        "ram_policy.old-thumbnailer",
    ] {
        assert!(
            out.contains(needle),
            "plan lacks {needle}:\n{}",
            text(&plan)
        );
    }
    assert!(
        d.join(".immctl/emulator-state.json").exists(),
        "the emulator state persists between runs"
    );

    // A dry run changed nothing: the same plan again.
    let again = immctl(d, &["reconcile", "--emulator", "--dry-run"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(again.stdout, plan.stdout);

    // Apply (adopting the hand-made role), then nothing is left to do.
    let apply = immctl(d, &["reconcile", "--emulator", "--adopt"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let after = immctl(
        d,
        &[
            "reconcile",
            "--emulator",
            "--dry-run",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(after.status.code(), Some(0), "{}", text(&after));
    assert_stdout_has(&after, "No changes");

    // The emulator's state shows the manifests' intent.
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.join(".immctl/emulator-state.json")).unwrap(),
    )
    .unwrap();
    let project = &state["projects"]["cn-hangzhou"]["media-library"];
    assert_eq!(project["serviceRole"], "imm-media-role");
    let role = &state["roles"]["imm-media-role"];
    assert_eq!(role["tags"]["immctl-owner"], "default");
    let attached: Vec<&str> = state["roles"]["media-app"]["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(!attached.contains(&"AliyunOSSFullAccess"), "{attached:?}");
    assert!(
        state["policies"]["old-thumbnailer"].is_object(),
        "not pruned without --prune"
    );
}

#[test]
fn a_saved_plan_applies_once_and_is_refused_when_the_account_changed() {
    let dir = workdir();
    let d = dir.path();
    let plan_file: PathBuf = d.join("plan.json");
    let p = plan_file.to_str().unwrap();

    save_plan(d, &["--adopt"], p);
    let json: serde_json::Value = read_json(&plan_file);
    assert_eq!(json["format_version"], 2);
    assert!(
        json["manifest_digest"]
            .as_str()
            .is_some_and(|s| s.len() == 64)
    );

    // Someone changes a resource the plan touches: apply must refuse, naming it.
    let mut state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(d.join(".immctl/emulator-state.json")).unwrap(),
    )
    .unwrap();
    // The plan updates this policy's document; someone edits its description meanwhile.
    state["policies"]["media-app-imm-query"]["description"] = "edited in the console".into();
    std::fs::write(
        d.join(".immctl/emulator-state.json"),
        serde_json::to_string_pretty(&state).unwrap(),
    )
    .unwrap();
    let refused = immctl(d, &["apply", p, "--emulator"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("ram_policy.media-app-imm-query"),
        "{}",
        text(&refused)
    );
    assert!(err.contains("stale"), "{}", text(&refused));

    // A fresh plan applies, and applying it a second time is refused as stale.
    save_plan(d, &["--adopt"], p);
    let applied = immctl(d, &["apply", p, "--emulator"]);
    assert_eq!(applied.status.code(), Some(0), "{}", text(&applied));
    let twice = immctl(d, &["apply", p, "--emulator"]);
    assert_eq!(twice.status.code(), Some(1), "{}", text(&twice));

    // Changed manifests make a saved plan stale too.
    save_plan(d, &[], p);
    let projects = d.join("manifests/projects.yaml");
    let edited = std::fs::read_to_string(&projects)
        .unwrap()
        .replace("datasetMaxBindCount: 5", "datasetMaxBindCount: 6");
    std::fs::write(&projects, edited).unwrap();
    let refused = immctl(d, &["apply", p, "--emulator"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    // The refusal names the file that changed.
    assert_stderr_has(
        &refused,
        "error: stale plan: manifests: changed since the plan was made: projects.yaml (changed)",
    );
}

/// Two manifest paths that each hold a file of the same name (`team-a/policies.yaml`,
/// `team-b/policies.yaml`): an edit to either makes a saved plan stale. The first one's
/// edit used to leave the manifest digest unchanged (the last file of a name replaced the
/// others in it), and apply refused the plan as "edited by hand?" instead.
#[test]
fn an_edit_under_either_of_two_paths_with_the_same_file_name_makes_a_plan_stale() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for (team, policy) in [("team-a", "pol-a"), ("team-b", "pol-b")] {
        std::fs::create_dir(d.join(team)).unwrap();
        std::fs::write(
            d.join(team).join("policies.yaml"),
            format!(
                "apiVersion: immctl/v1\nkind: Policy\nmetadata:\n  name: {policy}\nspec:\n  \
                 description: first\n  document: {{Version: \"1\", Statement: [{{Effect: Allow, \
                 Action: \"imm:Get*\", Resource: \"*\"}}]}}\n"
            ),
        )
        .unwrap();
    }
    let saved = immctl(
        d,
        &[
            "reconcile",
            "--emulator",
            "--dry-run",
            "--out",
            "plan.json",
            "team-a",
            "team-b",
        ],
    );
    assert_eq!(saved.status.code(), Some(0), "{}", text(&saved));
    let first = d.join("team-a/policies.yaml");
    let edited = std::fs::read_to_string(&first)
        .unwrap()
        .replace("first", "second");
    std::fs::write(&first, edited).unwrap();
    let refused = immctl(d, &["apply", "plan.json", "team-a", "team-b", "--emulator"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert_stderr_has(
        &refused,
        "error: stale plan: manifests: changed since the plan was made: policies.yaml (changed)",
    );
}

/// `--out` replaces an earlier plan, never another file: `--out manifests/roles.yaml` used to
/// overwrite that manifest with the plan's JSON, and `--out .immctl/emulator-state.json` the
/// emulator's whole account (the next run could not start it).
#[test]
fn out_refuses_to_overwrite_a_file_that_is_not_a_plan() {
    let dir = workdir();
    let d = dir.path();
    let roles = std::fs::read_to_string(d.join("manifests/roles.yaml")).unwrap();
    let clobber = immctl(
        d,
        &[
            "reconcile",
            "--emulator",
            "--dry-run",
            "--out",
            "manifests/roles.yaml",
        ],
    );
    assert_eq!(clobber.status.code(), Some(1), "{}", text(&clobber));
    assert_stderr_has(
        &clobber,
        "--out manifests/roles.yaml: exists and is not an immctl plan; refusing to overwrite it",
    );
    assert_eq!(
        std::fs::read_to_string(d.join("manifests/roles.yaml")).unwrap(),
        roles
    );

    // The same for the emulator's state, made by a first run.
    let first = immctl(d, &["reconcile", "--emulator", "--dry-run"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let state = std::fs::read_to_string(d.join(".immctl/emulator-state.json")).unwrap();
    let clobber = immctl(
        d,
        &[
            "reconcile",
            "--emulator",
            "--out",
            ".immctl/emulator-state.json",
        ],
    );
    assert_eq!(clobber.status.code(), Some(1), "{}", text(&clobber));
    assert_stderr_has(&clobber, "refusing to overwrite it");
    assert_eq!(
        std::fs::read_to_string(d.join(".immctl/emulator-state.json")).unwrap(),
        state,
        "nothing was applied and the state file is untouched"
    );

    // An earlier plan is replaced as before.
    for _ in 0..2 {
        save_plan(d, &[], "plan.json");
    }

    // A new file in a directory that is not there is refused before anything is read (it
    // used to fail after the whole live state was read, naming a temporary file).
    let fresh = workdir();
    let f = fresh.path();
    let out = immctl(
        f,
        &[
            "reconcile",
            "--emulator",
            "--dry-run",
            "--out",
            "nodir/p.json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_stderr_has(
        &out,
        "--out nodir/p.json: no directory nodir to write it in (immctl does not create one)",
    );
    assert!(!text(&out).contains(".tmp"), "{}", text(&out));
    assert!(!f.join(".immctl").exists(), "nothing was read or started");
}

#[test]
fn invalid_manifests_exit_1_and_nothing_is_contacted() {
    let dir = workdir();
    let d = dir.path();
    std::fs::write(
        d.join("manifests/broken.yaml"),
        "apiVersion: immctl/v1\nkind: Role\nmetadata:\n  name: x\nspec:\n  bogus: 1\n",
    )
    .unwrap();
    let out = immctl(d, &["reconcile", "--emulator", "--dry-run"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_stderr_has(&out, "broken.yaml:6:");
    assert!(
        !d.join(".immctl").exists(),
        "the emulator was started although the manifests are invalid"
    );
}

#[test]
fn bad_flags_name_the_flag() {
    let dir = workdir();
    let out = immctl(
        dir.path(),
        &[
            "reconcile",
            "--emulator",
            "--dry-run",
            "--target",
            "media-app",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_stderr_has(&out, "--target \"media-app\"");
}

/// A child process killed (and reaped) when dropped, however the test ends: a failed
/// assertion must not leave an emulator or a daemon running.
pub(crate) struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// An `immctl emulator` process on a free loopback port with `state` (persisted in
/// `dir/account.yaml`) and `extra` flags; returns it (killed when dropped) and its URL.
pub(crate) fn emulator_process(dir: &Path, state: &str, extra: &[&str]) -> (KillOnDrop, String) {
    use std::io::BufRead;
    let state_file = dir.join("account.yaml");
    std::fs::write(&state_file, state).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_immctl"))
        .args(["emulator", "--listen", "127.0.0.1:0", "--state"])
        .arg(&state_file)
        .args(extra)
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start the emulator");
    let stderr = child.stderr.take().unwrap();
    let mut lines = std::io::BufReader::new(stderr).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the emulator says where it listens")
            .unwrap();
        if let Some(i) = line.find("http://") {
            break line[i..].trim().to_string();
        }
    };
    // Keep draining its stderr so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (KillOnDrop(child), url)
}

/// Issue 8 point 3: before apply, preflight asks who the caller is and whether it may pass
/// the project's service role to IMM; a caller without `ram:PassRole` is refused before any
/// write, with the rule explained, and the secret never shows.
#[test]
fn preflight_refuses_a_caller_without_pass_role_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (emulator, url) = emulator_process(
        d,
        r#"
accountId: "1234567890123456"
users:
  dev: {policies: [{type: Custom, name: dev-access}]}
accessKeys:
  - {id: dev-key, secret: dev-secret-value, user: dev}
policies:
  dev-access:
    document:
      Version: "1"
      Statement:
        - {Effect: Allow, Action: ["imm:*", "ram:Get*", "ram:List*", "ram:TagResources", "sts:GetCallerIdentity"], Resource: "*"}
  media-oss:
    document: {Version: "1", Statement: [{Effect: Allow, Action: "oss:Get*", Resource: "acs:oss:*:*:media/*"}]}
    tags: {immctl-owner: default}
roles:
  media-imm:
    assumeRolePolicyDocument: {Version: "1", Statement: [{Effect: Allow, Action: "sts:AssumeRole", Principal: {Service: [imm.aliyuncs.com]}}]}
    tags: {immctl-owner: default}
    policies: [{type: Custom, name: media-oss}]
"#,
        &[],
    );
    std::fs::create_dir_all(d.join("manifests")).unwrap();
    std::fs::write(
        d.join("manifests/project.yaml"),
        "apiVersion: immctl/v1\nkind: Project\nmetadata:\n  name: media\nspec:\n  serviceRole: media-imm\n",
    )
    .unwrap();
    let out = command(d)
        .args(["reconcile", "--endpoint-ram", &url, "--endpoint-imm", &url])
        .args(["--endpoint-sts", &url])
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", "dev-key")
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "dev-secret-value")
        .output()
        .unwrap();
    drop(emulator);
    // The emulator persists every change before it answers.
    let state: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(d.join("account.yaml")).unwrap()).unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        !all.contains("dev-secret-value"),
        "the secret leaked:\n{all}"
    );
    assert!(all.contains("PF001"), "{all}");
    assert!(all.contains("ram:PassRole"), "{all}");
    assert!(all.contains("nothing was applied"), "{all}");
    assert!(
        state["projects"]["cn-hangzhou"].get("media").is_none(),
        "the project was created although preflight refused: {state:?}"
    );
}

/// A refused prune drops the deletions, so the plan shows "No changes." — but it was
/// refused (P004 / P005 are errors): `reconcile` without `--dry-run` must exit 1, as
/// `immctl apply` and the daemon (a `blocked` tick) do, not 0. A CI job that runs
/// `immctl reconcile --prune` on a mistyped path must not go green.
#[test]
fn a_refused_prune_is_a_failure_even_when_nothing_else_changes() {
    let dir = workdir();
    let d = dir.path();
    let apply = immctl(d, &["reconcile", "--emulator", "--adopt"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));

    // P004: the manifest set is empty.
    std::fs::create_dir(d.join("empty")).unwrap();
    let out = immctl(d, &["reconcile", "--emulator", "--prune", "empty"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("P004"), "{}", text(&out));
    assert!(text(&out).contains("nothing was applied"), "{}", text(&out));

    // P005: more deletions than --max-deletions.
    let out = immctl(
        d,
        &["reconcile", "--emulator", "--prune", "--max-deletions", "0"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("P005"), "{}", text(&out));

    // The dry run still only reports (exit 0), and nothing was deleted.
    let out = immctl(
        d,
        &[
            "reconcile",
            "--emulator",
            "--dry-run",
            "--prune",
            "--allow-mass-delete",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_stdout_has(&out, "- ram_policy.old-thumbnailer");
}

/// Nobody reads stderr any more (`immctl reconcile 2>&1 >plan.txt | head -1`, a log
/// collector gone): the apply still finishes, exits 0 and leaves the account converged. It
/// used to panic at the first progress line (`eprintln!` on a closed pipe: exit 101) and
/// abandon the changes in flight.
#[test]
fn a_closed_stderr_does_not_abandon_an_apply() {
    let dir = workdir();
    let d = dir.path();
    let mut child = command(d)
        .args(["reconcile", "--emulator", "--adopt"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run immctl");
    // Close the read end at once: every write to stderr fails with EPIPE.
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let after = immctl(
        d,
        &[
            "reconcile",
            "--emulator",
            "--dry-run",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(after.status.code(), Some(0), "{}", text(&after));
    assert_stdout_has(&after, "No changes");
}

/// A saved plan is applied only if it is what immctl plans from the same manifests and live
/// state with the flags the file records: an operation added by hand, or a blocking finding
/// deleted from the file, is refused with nothing applied (both used to be applied as edited).
#[test]
fn a_plan_file_edited_by_hand_is_refused_and_nothing_is_applied() {
    let dir = workdir();
    let d = dir.path();
    // --prune with --max-deletions 0: the prune is refused by an error finding (P005).
    save_plan(
        d,
        &["--adopt", "--prune", "--max-deletions", "0"],
        "plan.json",
    );
    let original: serde_json::Value = read_json(d.join("plan.json"));
    assert_eq!(original["settings"]["prune"], true);
    assert_eq!(original["settings"]["max_deletions"], 0);
    assert!(
        original["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["severity"] == "error"),
        "{original:#}"
    );
    let state_before = std::fs::read_to_string(d.join(".immctl/emulator-state.json")).unwrap();
    let refuse = |edited: &serde_json::Value, naming: &str| {
        std::fs::write(
            d.join("edited.json"),
            serde_json::to_string_pretty(edited).unwrap(),
        )
        .unwrap();
        let out = immctl(d, &["apply", "--emulator", "edited.json"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error: edited plan: "), "{}", text(&out));
        assert!(err.contains(naming), "{}", text(&out));
        assert!(err.contains("nothing was applied"), "{}", text(&out));
        let state = std::fs::read_to_string(d.join(".immctl/emulator-state.json")).unwrap();
        assert_eq!(state, state_before, "an edited plan changed the account");
    };

    // 1. The blocking finding deleted, so that the plan would pass the findings check.
    let mut edited = original.clone();
    edited["findings"] = serde_json::json!([]);
    refuse(&edited, "findings differ");

    // 2. A reviewed policy widened in the file: the document the plan would create grants
    //    every action on every resource (the file is still consistent in itself).
    let mut edited = original.clone();
    let changes = edited["changes"].as_array_mut().unwrap();
    let create = changes
        .iter_mut()
        .find(|c| c["address"] == "ram_policy.imm-media-role-policy")
        .expect("the demo plan creates imm-media-role-policy");
    create["ops"][0]["document"] =
        r#"{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#.into();
    edited["findings"] = serde_json::json!([]);
    refuse(
        &edited,
        "ram_policy.imm-media-role-policy: the plan file's change differs",
    );

    // 3. The recorded flags changed (--max-deletions raised): planning again now prunes,
    //    which the file does not.
    let mut edited = original.clone();
    edited["settings"]["max_deletions"] = 5.into();
    edited["findings"] = serde_json::json!([]);
    refuse(
        &edited,
        "planning again changes it, but the plan file does not",
    );

    // 4. A field this immctl does not know, added to a change (here one a reader might take
    //    for a switch): refused by name, with its line, before anything is contacted.
    let mut edited = original.clone();
    edited["changes"][0]["skip_read_back"] = true.into();
    std::fs::write(
        d.join("edited.json"),
        serde_json::to_string_pretty(&edited).unwrap(),
    )
    .unwrap();
    let out = immctl(d, &["apply", "--emulator", "edited.json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_stderr_has(&out, "edited.json: not a valid immctl plan");
    assert_stderr_has(&out, "unknown field `skip_read_back`");
    assert_stderr_has(&out, " at line ");
    let state = std::fs::read_to_string(d.join(".immctl/emulator-state.json")).unwrap();
    assert_eq!(state, state_before, "an edited plan changed the account");

    // The file as saved is still refused for its finding, and applies with --force.
    let out = immctl(d, &["apply", "--emulator", "plan.json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    // Naming the file and each blocking finding (it said only "the saved plan has error
    // findings", with neither: found by a trial run).
    assert_stderr_has(&out, "plan.json: the saved plan has error findings (above)");
    assert_stderr_has(&out, "error[P005] prune: prune would delete 1 resources");
    let out = immctl(d, &["apply", "--emulator", "--force", "plan.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// An unreachable endpoint is reported once, with its root cause: the line used to repeat
/// the action and stop at reqwest's "error sending request", with "Connection refused" three
/// `Caused by:` lines further down.
#[test]
fn an_unreachable_endpoint_names_its_root_cause_once() {
    let dir = workdir();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let out = command(dir.path())
        .args(["reconcile", "--dry-run"])
        .args(["--endpoint-ram", &endpoint])
        .args(["--endpoint-imm", &endpoint])
        .args(["--endpoint-sts", &endpoint])
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", "test-id")
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains(SECRET), "{err}");
    assert_eq!(err.matches("Connection refused").count(), 1, "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("Connection refused"))
        .unwrap();
    assert!(line.contains(": transport error: "), "{err}");
    // The action is named once, before the address; not again after it.
    let action = line.split_whitespace().next().unwrap();
    assert_eq!(line.matches(action).count(), 1, "{err}");
}

/// Ctrl-C during an apply, as in Terraform: the API calls in flight finish, nothing more
/// starts, the report says what was left, exit 1; the next run finishes the job. It used to
/// kill the process at once (exit 130, no message, the calls in flight abandoned).
#[cfg(unix)]
#[test]
fn ctrl_c_during_an_apply_finishes_the_calls_in_flight_and_the_next_run_converges() {
    use std::io::Read;
    let dir = workdir();
    let d = dir.path();
    // The demo account, answering slowly enough to interrupt an apply in the middle.
    let account = std::fs::read_to_string("manifests/demo-live-state.yaml").unwrap();
    let (emulator, url) = emulator_process(d, &account, &["--latency", "300ms"]);
    let run = |extra: &[&str]| {
        let mut c = command(d);
        c.args(["reconcile", "--adopt"])
            .args([
                "--endpoint-ram",
                &url,
                "--endpoint-imm",
                &url,
                "--endpoint-sts",
                &url,
            ])
            .args(extra)
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", "emulator-admin")
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET);
        c
    };
    let mut child = run(&[])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Interrupt at the first change started (the handler is in place before any starts).
    let mut stderr = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&seen).contains("...") {
        let n = stderr.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "no change started:\n{}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    // SAFETY: kill(2) on our own child's pid.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    stderr.read_to_end(&mut seen).unwrap();
    let status = child.wait().unwrap();
    let err = String::from_utf8_lossy(&seen).to_string();
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("immctl: interrupted: letting the API calls in flight finish"),
        "{err}"
    );
    assert!(err.contains("interrupted ("), "{err}");
    // What was left is listed by address (the last project change cannot have started).
    assert!(
        err.contains("not started: imm_project.cn-hangzhou/media-archive (create)"),
        "{err}"
    );
    assert!(
        err.contains("The next run picks up where this one stopped."),
        "{err}"
    );
    assert!(!err.contains(SECRET), "{err}");

    // The next run finishes the job, and the one after plans nothing.
    let out = run(&[]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = run(&["--dry-run", "--detailed-exitcode"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_stdout_has(&out, "No changes");
    drop(emulator);
}

/// An endpoint given with `--emulator` cannot be used: it is named in a warning instead of
/// being silently ignored.
#[test]
fn an_endpoint_given_with_emulator_is_named_as_ignored() {
    let dir = workdir();
    let out = command(dir.path())
        .args(["reconcile", "--emulator", "--dry-run", "--adopt"])
        .args(["--endpoint-imm", "imm.example.com"])
        .env("IMMCTL_ENDPOINT_RAM", "ram.example.com")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_stderr_has(
        &out,
        "warning: endpoint_imm (from flag --endpoint-imm) is ignored with --emulator",
    );
    assert_stderr_has(
        &out,
        "warning: endpoint_ram (from environment variable IMMCTL_ENDPOINT_RAM) is ignored",
    );
    assert!(!text(&out).contains("endpoint_sts"), "{}", text(&out));
}

/// `immctl reconcile --dry-run | head -1`: a reader that stops early is not an error; the dry
/// run still saves `--out` and exits with its code (2: changes). It used to print "error:
/// writing the plan to stdout ... Broken pipe" and exit 1.
/// In every format: `--format json` still failed so (found by trial6), its write error
/// having lost its kind on the way out of serde_json.
#[test]
fn a_dry_run_whose_reader_stops_early_is_not_an_error() {
    let dir = workdir();
    let d = dir.path();
    for format in ["text", "json", "markdown"] {
        let _ = std::fs::remove_file(d.join("plan.json"));
        let mut child = command(d)
            .args(["reconcile", "--emulator", "--dry-run", "--adopt"])
            .args(["--detailed-exitcode", "--out", "plan.json"])
            .args(["--format", format])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end before anything is written: every write to stdout fails (EPIPE).
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{format}: {err}");
        assert!(!err.contains("Broken pipe"), "{format}: {err}");
        assert!(d.join("plan.json").is_file(), "{format}: {err}");
    }
}

/// A plan file cut short (a truncated CI artifact, a full disk) is named as such, with the
/// line and column where the JSON stops; it used to be called "not an immctl plan (no
/// format_version)", although its first line is the format_version.
#[test]
fn a_truncated_plan_file_is_reported_as_truncated_json() {
    let dir = workdir();
    let d = dir.path();
    save_plan(d, &["--adopt"], "plan.json");
    let full = std::fs::read_to_string(d.join("plan.json")).unwrap();
    std::fs::write(d.join("cut.json"), &full[..full.len() / 2]).unwrap();
    let out = immctl(d, &["apply", "--emulator", "cut.json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cut.json: not valid JSON"), "{}", text(&out));
    assert!(err.contains("line "), "{}", text(&out));
    assert!(err.contains("cut short"), "{}", text(&out));
    // Valid JSON without a format_version is still "not an immctl plan".
    std::fs::write(d.join("other.json"), "{\"changes\": []}").unwrap();
    let out = immctl(d, &["apply", "--emulator", "other.json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_stderr_has(&out, "no format_version");
    // A format_version that is there but not a version this immctl reads is named as such
    // (it used to be "no format_version" unless it was a whole number).
    for (v, shown) in [
        ("\"2\"", "\"2\""),
        ("99999999999999999999", "1e+20"),
        ("-1", "-1"),
    ] {
        std::fs::write(
            d.join("other.json"),
            format!("{{\"format_version\": {v}, \"changes\": []}}"),
        )
        .unwrap();
        let out = immctl(d, &["apply", "--emulator", "other.json"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert_stderr_has(
            &out,
            &format!("other.json: plan format_version {shown}, this immctl reads 2"),
        );
    }
}

/// A plan whose changes break the plan's invariants (here one change twice) is refused with
/// the reasons as text; they used to be printed as a Rust list (`["...: address appears
/// more than once"]`).
#[test]
fn an_inconsistent_plan_file_is_refused_naming_the_reason() {
    let dir = workdir();
    let d = dir.path();
    save_plan(d, &[], "plan.json");
    let mut plan: serde_json::Value = read_json(d.join("plan.json"));
    let changes = plan["changes"].as_array_mut().unwrap();
    let first = changes[0].clone();
    let address = first["address"].as_str().unwrap().to_string();
    changes.push(first);
    std::fs::write(d.join("twice.json"), plan.to_string()).unwrap();
    let out = immctl(d, &["apply", "--emulator", "twice.json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_stderr_has(
        &out,
        &format!(
            "error: twice.json: the plan is inconsistent: {address}: address appears more than \
             once; save a plan with `immctl reconcile --out`"
        ),
    );
}

/// Two processes with `--emulator` in one directory would each keep the account in memory
/// and rewrite the whole state file: a `reconcile --prune` next to `immctl run --emulator`
/// was silently undone at the daemon's next write. The second one is now refused, naming
/// the way to share one emulator, and works again once the first has stopped.
#[test]
fn a_second_embedded_emulator_on_the_same_state_is_refused() {
    use std::io::BufRead;
    let dir = workdir();
    let d = dir.path();
    let mut daemon = command(d)
        .args([
            "run",
            "--emulator",
            "--adopt",
            "--interval",
            "1h",
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start immctl run");
    let stderr = daemon.stderr.take().unwrap();
    let daemon = KillOnDrop(daemon);
    let mut lines = std::io::BufReader::new(stderr).lines();
    loop {
        let line = lines
            .next()
            .expect("the daemon logs its first tick")
            .unwrap();
        if line.contains("tick finished") || line.contains("tick failed") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});

    let out = immctl(d, &["reconcile", "--emulator", "--prune"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another immctl process"), "{}", text(&out));
    assert!(err.contains("immctl emulator --state"), "{}", text(&out));

    drop(daemon);
    let out = immctl(d, &["reconcile", "--emulator", "--prune"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let out = immctl(
        d,
        &[
            "reconcile",
            "--emulator",
            "--dry-run",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// A usage error (unknown flag, bad value) exits 1 like every other error: clap's default
/// of 2 is what `--detailed-exitcode` means by "the plan has changes", so a CI job with a
/// mistyped flag read as "changes pending" instead of failing. `--help` and `--version`
/// still exit 0.
#[test]
fn usage_errors_exit_1_not_the_changes_code() {
    let dir = workdir();
    let d = dir.path();
    for args in [
        &[
            "reconcile",
            "--emulator",
            "--dry-run",
            "--detailed-exitcode",
            "--fromat",
            "markdown",
        ][..],
        &[
            "reconcile",
            "--dry-run",
            "--detailed-exitcode",
            "--format",
            "xml",
        ],
        &["reconcile", "--dry-run", "--max-deletions", "-1"],
        &["bogus-command"],
        &[],
    ] {
        let out = immctl(d, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(!out.stderr.is_empty(), "{args:?}: {}", text(&out));
    }
    for args in [&["--help"][..], &["reconcile", "--help"], &["--version"]] {
        let out = immctl(d, args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        assert!(!out.stdout.is_empty(), "{args:?}: {}", text(&out));
    }
    // Every option has a description: the endpoint flags used to show none.
    for sub in [
        "reconcile",
        "emulator",
        "import",
        "run",
        "apply",
        "validate",
    ] {
        let out = immctl(d, &[sub, "--help"]);
        let help = String::from_utf8_lossy(&out.stdout);
        for flag in ["--endpoint-ram", "--endpoint-imm", "--endpoint-sts"] {
            let line = help.lines().find(|l| l.contains(flag)).unwrap();
            let after = line.split_once('>').map_or("", |(_, r)| r.trim());
            let next = help
                .lines()
                .skip_while(|l| !l.contains(flag))
                .nth(1)
                .unwrap_or("");
            assert!(
                after.contains("endpoint") || next.contains("endpoint"),
                "{sub} --help: {flag} has no description:\n{help}"
            );
        }
    }
    assert!(!d.join(".immctl").exists(), "nothing ran");
}

/// A mistyped `--target` used to select nothing and print "No changes. The live state
/// matches the manifests." (exit 0) while the account had drift: now it is an error that
/// names the target and nearby addresses, and a correct target still plans.
#[test]
fn a_target_that_names_nothing_is_an_error() {
    let dir = workdir();
    let d = dir.path();
    let out = immctl(
        d,
        &[
            "reconcile",
            "--emulator",
            "--dry-run",
            "--target",
            "ram_role.media-ap",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--target \"ram_role.media-ap\""),
        "{}",
        text(&out)
    );
    assert!(err.contains("ram_role.media-app"), "{}", text(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains("No changes"));

    let out = immctl(
        d,
        &[
            "reconcile",
            "--emulator",
            "--dry-run",
            "--target",
            "ram_role.media-app",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("- ram_role_policy.media-app/System/AliyunOSSFullAccess"),
        "{}",
        text(&out)
    );
}

/// The environment may hold variables that are not UTF-8 (a Latin-1 `LANG`, a stray byte):
/// immctl must not panic on them. One of its own (`IMMCTL_*`) is an error naming the
/// variable; anyone else's is ignored; an `ALIBABA_CLOUD_*` one does not crash the chain.
#[cfg(unix)]
#[test]
fn environment_variables_that_are_not_utf8_do_not_panic() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let dir = workdir();
    let d = dir.path();
    let bad = OsStr::from_bytes(b"caf\xe9");
    let run = |extra: &[(&str, &OsStr)], args: &[&str]| {
        let mut cmd = command(d);
        cmd.args(args)
            .env("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true");
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.output().expect("run immctl")
    };

    let other = run(&[("SOME_LATIN1_VAR", bad)], &["validate"]);
    assert_eq!(other.status.code(), Some(0), "{}", text(&other));

    let ours = run(&[("IMMCTL_OWNER", bad)], &["validate"]);
    assert_eq!(ours.status.code(), Some(1), "{}", text(&ours));
    let err = String::from_utf8_lossy(&ours.stderr);
    assert!(err.contains("IMMCTL_OWNER"), "{}", text(&ours));
    assert!(err.contains("UTF-8"), "{}", text(&ours));
    assert!(!err.contains("panicked"), "{}", text(&ours));

    let creds = run(
        &[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", OsStr::new("key-id")),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", bad),
        ],
        &[
            "reconcile",
            "--dry-run",
            "--endpoint-ram",
            "http://127.0.0.1:9",
            "--endpoint-imm",
            "http://127.0.0.1:9",
            "--endpoint-sts",
            "http://127.0.0.1:9",
        ],
    );
    assert_eq!(creds.status.code(), Some(1), "{}", text(&creds));
    assert!(
        !String::from_utf8_lossy(&creds.stderr).contains("panicked"),
        "{}",
        text(&creds)
    );
}

/// A resource the plan reads but does not change can still decide what it does: the detach
/// of a System policy from `media-app` relies on that role carrying our owner tag. When
/// someone gives the role to another owner after the plan was saved, apply must refuse the
/// plan as stale and name the role, not call the untouched file "edited by hand".
#[test]
fn a_plan_made_stale_by_a_resource_it_only_reads_is_refused_as_stale_naming_it() {
    let dir = workdir();
    let d = dir.path();
    let p = d.join("plan.json");
    let p = p.to_str().unwrap();
    save_plan(d, &["--adopt"], p);
    let state_file = d.join(".immctl/emulator-state.json");
    let mut state: serde_json::Value = read_json(&state_file);
    state["roles"]["media-app"]["tags"]["immctl-owner"] = "another-repo".into();
    let before = serde_json::to_string_pretty(&state).unwrap();
    std::fs::write(&state_file, &before).unwrap();

    let refused = immctl(d, &["apply", p, "--emulator"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("error: stale plan: ram_role.media-app: changed live since the plan was made"),
        "{}",
        text(&refused)
    );
    assert!(!err.contains("edited"), "{}", text(&refused));
    // Nothing was applied.
    let after: serde_json::Value = read_json(&state_file);
    assert_eq!(
        after["roles"]["media-app"]["policies"],
        state["roles"]["media-app"]["policies"]
    );
    assert_eq!(after["policies"], state["policies"]);
}

/// A plan saved under one `region` setting and applied under another, with a project that
/// names no region: refused as a different region. It used to be refused as a stale plan
/// whose project "no longer exists", which sent the user looking at the account.
#[test]
fn apply_under_another_region_is_refused_naming_the_regions() {
    let dir = workdir();
    let d = dir.path();
    let projects = d.join("manifests/projects.yaml");
    let yaml = std::fs::read_to_string(&projects).unwrap();
    std::fs::write(&projects, yaml.replace("  region: cn-hangzhou\n", "")).unwrap();
    save_plan(d, &["--adopt"], "plan.json");
    let out = immctl(
        d,
        &["apply", "plan.json", "--emulator", "--region", "cn-beijing"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"the plan was made with region "cn-hangzhou""#)
            && err.contains(r#"these settings say "cn-beijing""#),
        "{err}"
    );
    assert!(!err.contains("no longer exists"), "{err}");
}

/// `manifests/demo-live-state.yaml` comes with the checkout, as the manifests do, so the
/// embedded emulator reads it under the manifests' link rule (E001): a link from it out of
/// `manifests/` or into a hidden path is refused and the target is never read, even when
/// the manifests planned are elsewhere (so the walk never sees the link). Without the rule,
/// the seed's parse error quoted the target's text ("invalid type: string \"...\"").
#[cfg(unix)]
#[test]
fn an_emulator_seed_that_links_out_of_manifests_is_refused_unread() {
    let secret_dir = tempfile::tempdir().unwrap();
    let secret = secret_dir.path().join("token");
    // Read as a seed, this gives "roles: invalid type: string \"SEEKRIT-TOKEN\", ...".
    std::fs::write(&secret, "roles: SEEKRIT-TOKEN\n").unwrap();

    for (what, target) in [
        ("out of", secret.clone()),
        ("into a hidden path of", PathBuf::from(".git/token")),
    ] {
        let dir = workdir();
        let d = dir.path();
        std::fs::create_dir_all(d.join("manifests/.git")).unwrap();
        std::fs::copy(&secret, d.join("manifests/.git/token")).unwrap();
        let seed = d.join("manifests/demo-live-state.yaml");
        std::fs::remove_file(&seed).unwrap();
        std::os::unix::fs::symlink(&target, &seed).unwrap();
        // Plan a copy of the manifests elsewhere, so only the seed is at stake.
        copy_dir(&d.join("manifests"), &d.join("elsewhere"));
        std::fs::remove_file(d.join("elsewhere/demo-live-state.yaml")).ok();
        std::fs::remove_dir_all(d.join("elsewhere/.git")).unwrap();

        let out = immctl(d, &["reconcile", "--emulator", "--dry-run", "elsewhere"]);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out));
        assert_stderr_has(
            &out,
            &format!(
                "the emulator seed manifests/demo-live-state.yaml is a link {what} the \
                 directory given (manifests); immctl does not read it"
            ),
        );
        assert!(!text(&out).contains("SEEKRIT"), "{what}: {}", text(&out));
        assert!(
            !d.join(".immctl/emulator-state.json").exists(),
            "{what}: no emulator state is made from a refused seed"
        );
    }

    // A ConfigMap volume's layout (`x -> ..data/x`, `..data -> ..<timestamp>`) is not
    // hidden, for the seed as for manifests: it is read.
    let dir = workdir();
    let d = dir.path();
    let m = d.join("manifests");
    std::fs::create_dir_all(m.join("..2026_12_04")).unwrap();
    std::fs::rename(
        m.join("demo-live-state.yaml"),
        m.join("..2026_12_04/demo-live-state.yaml"),
    )
    .unwrap();
    std::os::unix::fs::symlink("..2026_12_04", m.join("..data")).unwrap();
    std::os::unix::fs::symlink(
        "..data/demo-live-state.yaml",
        m.join("demo-live-state.yaml"),
    )
    .unwrap();
    let out = immctl(d, &["reconcile", "--emulator", "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert_stderr_has(&out, "seeded from manifests/demo-live-state.yaml");
}

/// A saved plan records the account it was made from; `immctl apply` with credentials (or
/// endpoints) that reach another account refuses it, naming both, before anything is
/// applied. Without the record, a plan that only creates would pass every fingerprint check
/// there (what is absent in one account is absent in the other).
#[test]
fn a_plan_is_refused_against_another_account() {
    let dir = workdir();
    let d = dir.path();
    save_plan(d, &["--adopt"], "plan.json");
    let plan = read_json(d.join("plan.json"));
    let state_file = d.join(".immctl/emulator-state.json");
    let mut state = read_json(&state_file);
    let account = state["accountId"].as_str().unwrap().to_string();
    assert_eq!(plan["account_id"], account.as_str());

    state["accountId"] = "1111222233334444".into();
    let before = serde_json::to_string_pretty(&state).unwrap();
    std::fs::write(&state_file, &before).unwrap();
    let out = immctl(d, &["apply", "plan.json", "--emulator"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_stderr_has(
        &out,
        &format!(
            "plan.json: the plan was made for account {account}, these credentials reach \
             account 1111222233334444; nothing was applied"
        ),
    );
    let after = read_json(&state_file);
    assert_eq!(after["roles"], state["roles"], "nothing was applied");
    assert_eq!(after["projects"], state["projects"], "nothing was applied");
}

/// A plan file whose `account_id` (or `default_region`) was deleted is refused, not applied
/// unchecked: found by a trial run that removed `account_id` from a create-only plan
/// (`--target ram_policy.media-archive-role-policy`), changed the emulator's `accountId` and
/// saw `immctl apply` create the policy in the other account.
#[test]
fn a_plan_without_its_account_or_region_is_refused() {
    for field in ["account_id", "default_region"] {
        let dir = workdir();
        let d = dir.path();
        save_plan(
            d,
            &["--target", "ram_policy.media-archive-role-policy"],
            "plan.json",
        );
        let mut plan = read_json(d.join("plan.json"));
        assert!(plan.as_object_mut().unwrap().remove(field).is_some());
        std::fs::write(d.join("plan.json"), plan.to_string()).unwrap();
        let state_file = d.join(".immctl/emulator-state.json");
        let mut state = read_json(&state_file);
        state["accountId"] = "1111222233334444".into();
        std::fs::write(&state_file, serde_json::to_string_pretty(&state).unwrap()).unwrap();

        let out = immctl(d, &["apply", "plan.json", "--emulator"]);
        assert_eq!(out.status.code(), Some(1), "{field}: {}", text(&out));
        assert_stderr_has(
            &out,
            &format!(
                "plan.json: the plan records no {field} (edited, or saved by an older immctl)"
            ),
        );
        assert_eq!(
            read_json(&state_file)["policies"],
            state["policies"],
            "{field}: nothing was applied"
        );
    }
}

/// `--detailed-exitcode` on an applying `reconcile` reports whether there were changes, as
/// the README says: 2 for a run that applied them (successfully), 0 for the run after it.
#[test]
fn detailed_exitcode_of_an_apply_says_whether_it_changed_anything() {
    let dir = workdir();
    let d = dir.path();
    let args = ["reconcile", "--emulator", "--adopt", "--detailed-exitcode"];
    let applied = immctl(d, &args);
    assert_eq!(applied.status.code(), Some(2), "{}", text(&applied));
    assert!(
        text(&applied).contains("Apply: 10 done, 0 failed"),
        "{}",
        text(&applied)
    );
    let again = immctl(d, &args);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
}

/// An empty `.immctl/emulator-state.json` (0 bytes, or only whitespace) is refused naming
/// the file and how to start over; found by a tester: it was used silently as a bare account
/// (no "seeded from" notice, no demo seed).
#[test]
fn an_empty_embedded_state_file_is_refused_not_used_as_an_empty_account() {
    for content in ["", " \n\t\n"] {
        let dir = workdir();
        let d = dir.path();
        std::fs::create_dir_all(d.join(".immctl")).unwrap();
        std::fs::write(d.join(".immctl/emulator-state.json"), content).unwrap();
        let out = immctl(d, &["reconcile", "--emulator", "--dry-run"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert_stderr_has(
            &out,
            "the embedded emulator's state file .immctl/emulator-state.json is empty",
        );
        assert_stderr_has(
            &out,
            "Delete it to start over from the seed manifests/demo-live-state.yaml",
        );
        // Left as it was.
        assert_eq!(
            std::fs::read_to_string(d.join(".immctl/emulator-state.json")).unwrap(),
            content
        );
        // Deleted, the next run is seeded again.
        std::fs::remove_file(d.join(".immctl/emulator-state.json")).unwrap();
        let out = immctl(d, &["reconcile", "--emulator", "--dry-run"]);
        assert_stderr_has(&out, "seeded from manifests/demo-live-state.yaml");
    }
}
