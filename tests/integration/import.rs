//! `immctl import` as a user runs it (the binary, `--emulator` on a seeded state file, in a
//! temporary directory), against a varied brownfield account: 56 roles, 56 custom policies
//! with up to five versions (the default not always the newest), 12 projects (plus two in
//! another region), odd but legal names, Unicode and YAML-hostile descriptions, conditions,
//! System attachments, cloud-managed tags, resources owned by us and by another repo.
//!
//! What it proves (issue 10):
//! - import, then `reconcile --dry-run` plans exactly the adoption of the unowned resources,
//!   each one tag change and nothing else (asserted change by change); after
//!   `reconcile --adopt` a second dry run plans nothing; `validate` passes;
//! - protected roles and other owners' resources are never written;
//! - re-import is byte-identical; a hand-edited file is kept (and `--force` overwrites it);
//!   a file whose resource vanished is reported and kept;
//! - bad flags exit 1 with a message naming the flag, and nothing is written or started.
//!
//! `IMMCTL_BLESS=1 cargo test --test integration import` rewrites the golden error texts in
//! `tests/data/import/`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{Value, json};

const OWNER: &str = "default";
const OTHER: &str = "other-repo";
const SECRET: &str = "emulator-secret";

fn immctl(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_immctl"))
        .args(args)
        .current_dir(dir)
        .env_remove("IMMCTL_CONFIG")
        .env_remove("IMMCTL_REGION")
        .env_remove("IMMCTL_OWNER")
        .env_remove("IMMCTL_BLESS")
        .env("NO_COLOR", "1")
        .env("HOME", dir)
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_ID")
        .env_remove("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
        .output()
        .expect("run immctl");
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        !all.contains(SECRET),
        "a secret reached the output of {args:?}"
    );
    out
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}
fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}
fn text(o: &Output) -> String {
    format!("--- stdout\n{}\n--- stderr\n{}", stdout(o), stderr(o))
}

// ---------------------------------------------------------------------------------------
// The account.

/// The seeded account and what import must make of it.
struct Account {
    state: Value,
    /// Addresses that exist without any owner tag: written with `adopt: true`.
    unowned: BTreeSet<String>,
    /// Addresses already ours: written, no adoption.
    owned: BTreeSet<String>,
    /// Addresses tagged by another owner, and protected roles: never written.
    not_written: BTreeSet<String>,
    /// Live tags of every project (the adoption of a project sends its whole tag set).
    project_tags: BTreeMap<String, BTreeMap<String, String>>,
}

/// Descriptions a YAML writer must quote or escape to round-trip.
const TRICKY: &[&str] = &[
    "策略：只读访问 — «媒体» 🎬",
    "yes",
    "null",
    "1e3",
    "- starts like a list item",
    "key: value # not a comment",
    "'single' and \"double\" quotes",
    "trailing space ",
    "Ωmega \\ backslash\ttab",
    "0x1F",
    "~",
    "@at and `backtick`",
];

const SESSIONS: [u32; 3] = [3600, 7200, 43200];

const ACTIONS: &[&str] = &[
    "oss:GetObject",
    "oss:PutObject",
    "oss:ListObjects",
    "mns:SendMessage",
    "imm:SimpleQuery",
    "oss:Get*",
];

const SYSTEM: &[&[&str]] = &[
    &[],
    &["AliyunOSSReadOnlyAccess"],
    &["AliyunMNSFullAccess", "AliyunIMMReadOnlyAccess"],
    &["ReadOnlyAccess"],
];

fn policy_name(i: usize) -> String {
    match i {
        0 => format!("p{}", "x".repeat(127)),
        1 => "3rd-party-read".into(),
        2 => "MediaReadOnly".into(),
        3 => "mediareadonly".into(),
        4 => "con".into(),
        5 => "0".into(),
        _ => format!("pol-{i:02}"),
    }
}

fn role_name(i: usize) -> String {
    match i {
        0 => format!("role-{}", "a".repeat(59)),
        1 => "svc.media.reader".into(),
        2 => "7days-role".into(),
        3 => "MediaApp".into(),
        4 => "mediaapp".into(),
        5 => ".dotfirst".into(),
        6 => "dotlast.".into(),
        7 => "nul".into(),
        8 => "CON.backup".into(),
        9 => "a".into(),
        _ => format!("role-{i:02}"),
    }
}

fn project_name(i: usize) -> String {
    match i {
        0 => "_media_lib".into(),
        1 => "media_2024".into(),
        2 => format!("P{}", "x".repeat(127)),
        3 => "Photos-Archive".into(),
        4 => "photos-archive".into(),
        5 => "_".into(),
        _ => format!("proj-{i:02}"),
    }
}

fn permission_doc(i: usize, version: usize) -> Value {
    let mut first = json!({
        "Effect": "Allow",
        "Action": ACTIONS[(i + version) % ACTIONS.len()],
        "Resource": format!("acs:oss:*:*:bucket-{i}-v{version}/*"),
    });
    let mut stmts = Vec::new();
    match i % 6 {
        0 => {
            first["Condition"] =
                json!({"IpAddress": {"acs:SourceIp": ["10.0.0.0/8", "192.168.0.0/16"]}})
        }
        1 => stmts.push(json!({
            "Effect": "Deny",
            "NotAction": ["oss:Get*", "oss:List*"],
            "Resource": "*",
            "Condition": {"Bool": {"acs:SecureTransport": "false"}},
        })),
        2 => stmts.push(json!({
            "Effect": "Allow",
            "Action": "ram:PassRole",
            "Resource": "*",
            "Condition": {"StringEquals": {"acs:Service": "imm.aliyuncs.com"}},
        })),
        3 => {
            first["Condition"] =
                json!({"DateLessThan": {"acs:CurrentTime": "2030-01-01T00:00:00+08:00"}})
        }
        4 => {
            first["Action"] = json!(["oss:PutObject", "oss:GetObject", "oss:DeleteObject"]);
            first["Resource"] = json!([
                format!("acs:oss:*:*:bucket-{i}"),
                format!("acs:oss:*:*:bucket-{i}/*")
            ]);
        }
        _ => stmts.push(json!({
            "Effect": "Allow",
            "NotAction": "ram:*",
            "NotResource": ["acs:oss:*:*:secret-*"],
        })),
    }
    stmts.insert(0, first);
    json!({"Version": "1", "Statement": stmts})
}

fn trust_doc(i: usize) -> Value {
    match i % 3 {
        0 => {
            json!({"Version": "1", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": "imm.aliyuncs.com"}}]})
        }
        1 => {
            json!({"Version": "1", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": ["fc.aliyuncs.com", "ecs.aliyuncs.com"]}}]})
        }
        _ => json!({"Version": "1", "Statement": [{
            "Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"RAM": [format!("acs:ram::{}:root", 1_000_000_000_000_000u64 + i as u64)]},
            "Condition": {"StringEquals": {"sts:ExternalId": format!("ext-{i}")}},
        }]}),
    }
}

/// Tags by index; returns the tags and who owns the resource (`None`: nobody).
fn tags(i: usize) -> (BTreeMap<String, String>, Option<&'static str>) {
    let mut t = BTreeMap::new();
    let owner = if i.is_multiple_of(10) {
        Some(OWNER)
    } else if i % 17 == 16 {
        Some(OTHER)
    } else {
        None
    };
    if let Some(o) = owner {
        t.insert("immctl-owner".to_string(), o.to_string());
    }
    if i.is_multiple_of(3) {
        // Cloud-managed: the planner ignores it, import must not write it.
        t.insert("acs:rm:rgId".into(), "rg-acfm2pz25js2abc".into());
    }
    match i % 4 {
        2 => {
            t.insert("team".into(), "媒体".into());
            t.insert("cost-center".into(), "0042".into());
            t.insert("yes".into(), "no".into());
        }
        3 => {
            t.insert("env".into(), "prod".into());
        }
        _ => {}
    }
    if i == 7 {
        t.insert("immctl-deletion-policy".into(), "Retain".into());
    }
    (t, owner)
}

fn description(i: usize) -> String {
    match i % 4 {
        1 => String::new(),
        3 if i == 3 => "é".repeat(1024),
        _ => TRICKY[i % TRICKY.len()].to_string(),
    }
}

fn varied_account() -> Account {
    let mut unowned = BTreeSet::new();
    let mut owned = BTreeSet::new();
    let mut not_written = BTreeSet::new();
    let mut classify = |addr: String, owner: Option<&str>| match owner {
        None => {
            unowned.insert(addr);
        }
        Some(OWNER) => {
            owned.insert(addr);
        }
        Some(_) => {
            not_written.insert(addr);
        }
    };

    let mut policies = serde_json::Map::new();
    for i in 0..56 {
        let name = policy_name(i);
        let n = 1 + i % 5;
        // Version numbers with gaps for some (numbers are never reused after a delete).
        let ids: Vec<usize> = (1..=n)
            .map(|k| if i % 7 == 0 { 2 * k } else { k })
            .collect();
        let default = ids[(i * 3) % n];
        let versions: Vec<Value> = ids
            .iter()
            .map(|&k| json!({"id": format!("v{k}"), "document": permission_doc(i, k)}))
            .collect();
        let (t, owner) = tags(i);
        classify(format!("ram_policy.{name}"), owner);
        policies.insert(
            name,
            json!({
                "description": description(i),
                "defaultVersion": format!("v{default}"),
                "lastVersionNumber": ids.last().unwrap(),
                "versions": versions,
                "tags": t,
            }),
        );
    }

    let mut roles = serde_json::Map::new();
    for i in 0..56 {
        let name = role_name(i);
        let mut attached: Vec<Value> = Vec::new();
        for j in [(i * 7) % 56, (i * 11 + 3) % 56] {
            let p = json!({"type": "Custom", "name": policy_name(j)});
            if !attached.contains(&p) {
                attached.push(p);
            }
        }
        attached.truncate(i % 3);
        for s in SYSTEM[i % SYSTEM.len()] {
            attached.push(json!({"type": "System", "name": s}));
        }
        let (t, owner) = tags(i);
        classify(format!("ram_role.{name}"), owner);
        roles.insert(
            name,
            json!({
                "description": description(i + 1),
                "assumeRolePolicyDocument": trust_doc(i),
                "maxSessionDuration": SESSIONS[(i / 3) % 3],
                "tags": t,
                "policies": attached,
            }),
        );
    }
    // A protected role made by a cloud service.
    roles.insert(
        "AliyunServiceRoleForIMM".into(),
        json!({"description": "IMM service-linked role", "assumeRolePolicyDocument": trust_doc(0)}),
    );
    classify("ram_role.AliyunServiceRoleForIMM".into(), Some("protected"));
    classify("ram_role.AliyunIMMDefaultRole".into(), Some("protected"));

    // Service roles for projects: roles that trust IMM and that import writes.
    let service_roles: Vec<String> = (0..56)
        .filter(|i| i % 3 == 0 && tags(*i).1 != Some(OTHER))
        .map(role_name)
        .collect();
    let mut hangzhou = serde_json::Map::new();
    let mut project_tags = BTreeMap::new();
    for i in 0..12 {
        let name = project_name(i);
        let mut p = json!({"description": TRICKY[(i + 3) % TRICKY.len()]});
        if i % 4 != 0 {
            p["serviceRole"] = json!(service_roles[i % service_roles.len()]);
        }
        if i % 2 == 0 {
            p["templateId"] = json!("Official:ImageManagement");
        }
        if i.is_multiple_of(3) {
            p["datasetMaxBindCount"] = json!(5);
            p["projectQueriesPerSecond"] = json!(50);
        }
        if i % 5 == 1 {
            p["engineConcurrency"] = json!(200);
            // The other documented default: not written.
            p["datasetMaxFileCount"] = json!(10_000_000_000i64);
        }
        if i == 2 {
            p["datasetMaxTotalFileSize"] = json!(1_000_000_000_000i64);
            p["datasetMaxEntityCount"] = json!(123);
            p["datasetMaxRelationCount"] = json!(456);
            p["projectMaxDatasetCount"] = json!(7);
        }
        let mut t = BTreeMap::new();
        let owner = if i % 4 == 1 {
            Some(OWNER)
        } else if i == 10 {
            Some(OTHER)
        } else {
            None
        };
        if let Some(o) = owner {
            t.insert("immctl-owner".to_string(), o.to_string());
        }
        if i % 3 == 2 {
            t.insert("team".into(), "媒体".into());
        }
        let addr = format!("imm_project.cn-hangzhou/{name}");
        classify(addr.clone(), owner);
        project_tags.insert(addr, t.clone());
        p["tags"] = json!(t);
        hangzhou.insert(name, p);
    }
    // Another region: not imported without --region cn-beijing.
    let beijing = json!({
        "beijing-only": {"description": "elsewhere"},
        "_bj_2": {"serviceRole": service_roles[0]},
    });

    let state = json!({
        "accountId": "1234567890123456",
        "users": {"admin": {"policies": [{"type": "System", "name": "AdministratorAccess"}]}},
        "accessKeys": [{"id": "emulator-admin", "secret": SECRET, "user": "admin"}],
        "immDefaultRoleAuthorized": true,
        "policies": policies,
        "roles": roles,
        "projects": {"cn-hangzhou": hangzhou, "cn-beijing": beijing},
    });
    Account {
        state,
        unowned,
        owned,
        not_written,
        project_tags,
    }
}

/// A working directory whose embedded emulator (`--emulator`) starts from `state`.
fn workdir(state: &Value) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join(".immctl")).unwrap();
    std::fs::write(
        dir.path().join(".immctl/emulator-state.json"),
        serde_json::to_string_pretty(state).unwrap(),
    )
    .unwrap();
    dir
}

/// Every file under `root` (relative path -> bytes).
fn tree(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out
}

/// The address each file declares (from its header).
fn declared(files: &BTreeMap<PathBuf, Vec<u8>>) -> BTreeMap<String, PathBuf> {
    files
        .iter()
        .map(|(p, bytes)| {
            let text = String::from_utf8(bytes.clone()).unwrap();
            let first = text.lines().next().unwrap();
            let addr = first
                .strip_prefix("# immctl-import: ")
                .unwrap_or_else(|| panic!("{} has no import header", p.display()));
            (addr.to_string(), p.clone())
        })
        .collect()
}

fn plan_json(d: &Path, args: &[&str]) -> Value {
    let mut all = vec![
        "reconcile",
        "imported",
        "--emulator",
        "--dry-run",
        "--format",
        "json",
    ];
    all.extend_from_slice(args);
    let out = immctl(d, &all);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)))
}

#[test]
fn import_then_reconcile_plans_only_adoption_then_nothing() {
    let account = varied_account();
    assert!(account.unowned.len() + account.owned.len() >= 100);
    let dir = workdir(&account.state);
    let d = dir.path();

    let out = immctl(d, &["import", "--emulator", "--out", "imported"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let files = tree(&d.join("imported"));
    let written = declared(&files);

    // Exactly the unowned and owned resources of cn-hangzhou; nothing protected, nobody
    // else's, nothing from cn-beijing.
    let expected: BTreeSet<String> = account.unowned.union(&account.owned).cloned().collect();
    assert_eq!(
        written.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "{}",
        text(&out)
    );
    let count = |prefix: &str| written.keys().filter(|a| a.starts_with(prefix)).count();
    assert!(count("ram_role.") >= 50, "{written:?}");
    assert!(count("ram_policy.") >= 50, "{written:?}");
    assert!(count("imm_project.") >= 10, "{written:?}");
    for a in &account.not_written {
        assert!(!written.contains_key(a), "{a} was written");
    }
    assert!(written.keys().all(|a| !a.contains("cn-beijing")));
    // Names that differ only in case get files that differ in more than case; no file is
    // hidden, none is a Windows device name.
    let lower: BTreeSet<String> = files
        .keys()
        .map(|p| p.to_string_lossy().to_lowercase())
        .collect();
    assert_eq!(lower.len(), files.len(), "{:?}", files.keys());
    for p in files.keys() {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        assert!(!name.starts_with('.'), "{name}");
        let first = name.split('.').next().unwrap().to_lowercase();
        assert!(
            !["con", "nul", "prn", "aux"].contains(&first.as_str()),
            "{name}"
        );
    }
    assert!(written.contains_key("ram_role..dotfirst"));
    // Adoption is written exactly where there is no owner tag.
    for (addr, path) in &written {
        let body = String::from_utf8(files[path].clone()).unwrap();
        assert_eq!(
            body.contains("\n  adopt: true\n"),
            account.unowned.contains(addr),
            "{addr}: {body}"
        );
        assert!(!body.contains("acs:rm:rgId"), "{addr}: cloud tag written");
        assert!(!body.contains("immctl-owner"), "{addr}: owner tag written");
    }
    // Policy documents are maps, not JSON strings; conditions survive.
    let p0 = String::from_utf8(files[&written["ram_policy.pol-06"]].clone()).unwrap();
    assert!(p0.contains("  document:\n    Statement:\n"), "{p0}");
    assert!(p0.contains("acs:SourceIp:"), "{p0}");
    // The Retain marker becomes deletionPolicy.
    let retained = String::from_utf8(files[&written["ram_policy.pol-07"]].clone()).unwrap();
    assert!(retained.contains("deletionPolicy: Retain"), "{retained}");
    // Projects name only what differs from the service defaults.
    let j =
        String::from_utf8(files[&written["imm_project.cn-hangzhou/media_2024"]].clone()).unwrap();
    assert!(j.contains("engineConcurrency: 200"), "{j}");
    assert!(!j.contains("datasetMaxFileCount"), "{j}");
    assert!(!j.contains("projectMaxDatasetCount"), "{j}");
    assert!(!j.contains("templateId"), "{j}");
    let j0 =
        String::from_utf8(files[&written["imm_project.cn-hangzhou/_media_lib"]].clone()).unwrap();
    assert!(
        !j0.contains("serviceRole"),
        "default role is not written: {j0}"
    );
    assert!(j0.contains("templateId: Official:ImageManagement"), "{j0}");
    assert!(j0.contains("datasetMaxBindCount: 5"), "{j0}");
    // Other owners are reported, not written.
    let report = stdout(&out);
    assert!(
        report.contains(&format!("owned by \"{OTHER}\"")),
        "{report}"
    );

    // validate: no error.
    let v = immctl(d, &["validate", "imported"]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
    assert!(!stderr(&v).contains("error"), "{}", text(&v));

    // The dry run plans the adoption of the unowned resources and nothing else.
    let plan = plan_json(d, &[]);
    let changes = plan["changes"].as_array().unwrap();
    let addresses: BTreeSet<String> = changes
        .iter()
        .map(|c| c["address"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(addresses, account.unowned, "{plan:#}");
    assert_eq!(changes.len(), account.unowned.len());
    for c in changes {
        let addr = c["address"].as_str().unwrap();
        assert_eq!(c["action"], "adopt", "{c:#}");
        let reasons: Vec<&str> = c["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["code"].as_str().unwrap())
            .collect();
        assert_eq!(reasons, ["adopt", "tags"], "{c:#}");
        let ops = c["ops"].as_array().unwrap();
        assert_eq!(ops.len(), 1, "{c:#}");
        let op = &ops[0];
        if addr.starts_with("imm_project.") {
            // IMM's Tag replaces the set: the live tags plus ours, and no other field.
            let mut want = account.project_tags[addr].clone();
            want.insert("immctl-owner".into(), OWNER.into());
            assert_eq!(op["op"], "UpdateProject", "{c:#}");
            assert_eq!(op["tags"], json!(want), "{c:#}");
            for field in ["service_role", "description", "template_id"] {
                assert!(op[field].is_null(), "{field} in {c:#}");
            }
            assert!(
                op["limits"]
                    .as_object()
                    .unwrap()
                    .values()
                    .all(Value::is_null),
                "{c:#}"
            );
        } else {
            assert_eq!(op["op"], "TagResources", "{c:#}");
            assert_eq!(op["tags"], json!({"immctl-owner": OWNER}), "{c:#}");
        }
    }
    let errors: Vec<&Value> = plan["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == "error")
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");

    // Adopt, then nothing is left to do.
    let apply = immctl(d, &["reconcile", "imported", "--emulator", "--adopt"]);
    assert_eq!(apply.status.code(), Some(0), "{}", text(&apply));
    let after = plan_json(d, &[]);
    assert_eq!(after["changes"], json!([]), "{after:#}");

    // A re-import now writes the adopted resources without `adopt: true`, and only them.
    let again = immctl(d, &["import", "--emulator", "--out", "imported"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    let files2 = tree(&d.join("imported"));
    assert_eq!(
        files2.keys().collect::<Vec<_>>(),
        files.keys().collect::<Vec<_>>()
    );
    for (addr, path) in &written {
        let changed = files[path] != files2[path];
        assert_eq!(changed, account.unowned.contains(addr), "{addr}");
        assert!(!String::from_utf8_lossy(&files2[path]).contains("adopt: true"));
    }
    let after = plan_json(d, &[]);
    assert_eq!(after["changes"], json!([]), "{after:#}");
}

#[test]
fn reimport_is_byte_identical_and_keeps_hand_edits_and_stale_files() {
    let account = varied_account();
    let dir = workdir(&account.state);
    let d = dir.path();
    let first = immctl(d, &["import", "--emulator", "--out", "imported"]);
    assert_eq!(first.status.code(), Some(0), "{}", text(&first));
    let before = tree(&d.join("imported"));
    let second = immctl(d, &["import", "--emulator", "--out", "imported"]);
    assert_eq!(second.status.code(), Some(0), "{}", text(&second));
    assert_eq!(tree(&d.join("imported")), before, "re-import changed files");
    assert!(
        stdout(&second).contains(&format!("{} unchanged", before.len())),
        "{}",
        text(&second)
    );

    // A hand edit (even one that keeps the file valid) is never overwritten...
    let written = declared(&before);
    let edited = d
        .join("imported")
        .join(&written["ram_role.svc.media.reader"]);
    let text_before = std::fs::read_to_string(&edited).unwrap();
    let hand = text_before.replace(
        "maxSessionDuration:",
        "# reviewed by ops\n  maxSessionDuration:",
    );
    assert_ne!(hand, text_before);
    std::fs::write(&edited, &hand).unwrap();
    // ...nor is a file the user wrote at an import path.
    let foreign = d
        .join("imported")
        .join(&written["ram_policy.3rd-party-read"]);
    let mine = String::from_utf8(before[&written["ram_policy.3rd-party-read"]].clone())
        .unwrap()
        .lines()
        .skip(4)
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&foreign, &mine).unwrap();
    // A resource changes in the account, and one disappears from it.
    let mut state: Value = serde_json::from_str(
        &std::fs::read_to_string(d.join(".immctl/emulator-state.json")).unwrap(),
    )
    .unwrap();
    state["roles"]["svc.media.reader"]["maxSessionDuration"] = json!(10800);
    state["roles"]["7days-role"]["description"] = json!("changed in the console");
    state["roles"].as_object_mut().unwrap().remove("role-11");
    std::fs::write(
        d.join(".immctl/emulator-state.json"),
        serde_json::to_string(&state).unwrap(),
    )
    .unwrap();

    let third = immctl(d, &["import", "--emulator", "--out", "imported"]);
    assert_eq!(third.status.code(), Some(0), "{}", text(&third));
    let report = stdout(&third);
    assert_eq!(
        std::fs::read_to_string(&edited).unwrap(),
        hand,
        "hand edit lost"
    );
    assert_eq!(
        std::fs::read_to_string(&foreign).unwrap(),
        mine,
        "user file lost"
    );
    assert!(
        report.contains("ram_role.svc.media.reader was edited by hand"),
        "{report}"
    );
    assert!(
        report.contains("a file import did not write is there"),
        "{report}"
    );
    // The unmodified file of a changed resource is updated.
    let seven = d.join("imported").join(&written["ram_role.7days-role"]);
    assert!(
        std::fs::read_to_string(&seven)
            .unwrap()
            .contains("changed in the console")
    );
    assert!(
        report.contains("updated     roles/7days-role.yaml"),
        "{report}"
    );
    // The vanished resource's file is reported and kept.
    let gone = d.join("imported").join(&written["ram_role.role-11"]);
    assert!(gone.exists(), "a stale file was deleted");
    assert!(
        report.contains("stale       roles/role-11.yaml: ram_role.role-11: it no longer exists"),
        "{report}"
    );
    // No temporary file is left behind.
    assert!(
        tree(&d.join("imported"))
            .keys()
            .all(|p| !p.to_string_lossy().contains(".immctl-import-")),
        "temporary files left"
    );

    // --force overwrites both with what the account holds.
    let forced = immctl(d, &["import", "--emulator", "--out", "imported", "--force"]);
    assert_eq!(forced.status.code(), Some(0), "{}", text(&forced));
    let now = std::fs::read_to_string(&edited).unwrap();
    assert!(now.contains("maxSessionDuration: 10800"), "{now}");
    assert!(!now.contains("reviewed by ops"));
    assert!(
        std::fs::read_to_string(&foreign)
            .unwrap()
            .starts_with("# immctl-import: ram_policy.3rd-party-read\n")
    );
    // Still kept, even with --force: deleting files is never import's call.
    assert!(gone.exists());
}

#[test]
fn a_moved_file_is_updated_where_it_is_and_declared_resources_are_not_written_twice() {
    let account = varied_account();
    let dir = workdir(&account.state);
    let d = dir.path();
    let out = immctl(
        d,
        &[
            "import",
            "--emulator",
            "--out",
            "imported",
            "--include",
            "roles",
            "--prefix",
            "role-1",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let files = tree(&d.join("imported"));
    let written = declared(&files);
    // --prefix and --include select.
    assert!(
        written.keys().all(|a| a.starts_with("ram_role.role-1")),
        "{written:?}"
    );
    assert!(written.contains_key("ram_role.role-12"));
    // The user files a generated manifest elsewhere and writes one of their own.
    let moved = d.join("imported/team-a/role-12.yaml");
    std::fs::create_dir_all(moved.parent().unwrap()).unwrap();
    std::fs::rename(
        d.join("imported").join(&written["ram_role.role-12"]),
        &moved,
    )
    .unwrap();
    let own = d.join("imported").join(&written["ram_role.role-13"]);
    let own_text = String::from_utf8(files[&written["ram_role.role-13"]].clone())
        .unwrap()
        .lines()
        .skip(4)
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::remove_file(&own).unwrap();
    std::fs::write(d.join("imported/mine.yaml"), &own_text).unwrap();

    let mut state: Value = serde_json::from_str(
        &std::fs::read_to_string(d.join(".immctl/emulator-state.json")).unwrap(),
    )
    .unwrap();
    state["roles"]["role-12"]["description"] = json!("moved and changed");
    std::fs::write(
        d.join(".immctl/emulator-state.json"),
        serde_json::to_string(&state).unwrap(),
    )
    .unwrap();
    let again = immctl(
        d,
        &[
            "import",
            "--emulator",
            "--out",
            "imported",
            "--include",
            "roles",
            "--prefix",
            "role-1",
        ],
    );
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert!(
        std::fs::read_to_string(&moved)
            .unwrap()
            .contains("moved and changed")
    );
    assert!(
        !d.join("imported")
            .join(&written["ram_role.role-12"])
            .exists()
    );
    assert!(!own.exists(), "role-13 declared twice");
    assert!(
        stdout(&again).contains("ram_role.role-13: already declared at imported/mine.yaml"),
        "{}",
        text(&again)
    );
    let v = immctl(d, &["validate", "imported"]);
    assert_eq!(v.status.code(), Some(0), "{}", text(&v));
}

// ---------------------------------------------------------------------------------------
// Bad input: a clear error naming the flag, exit 1, nothing written, nothing started.

fn golden(name: &str, actual: &str) {
    let path = Path::new("tests/data/import").join(name);
    if std::env::var_os("IMMCTL_BLESS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing (IMMCTL_BLESS=1 to create)", path.display()));
    assert_eq!(
        actual,
        expected,
        "{} differs (IMMCTL_BLESS=1 to accept)",
        path.display()
    );
}

fn refused(d: &Path, args: &[&str], flag: &str) -> String {
    let out = immctl(d, args);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains(flag), "{flag} not named: {err}");
    assert!(stdout(&out).is_empty(), "{}", text(&out));
    assert!(!d.join(".immctl").exists(), "the emulator was started");
    err
}

#[test]
fn bad_flags_name_the_flag_exit_1_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();

    let err = refused(
        d,
        &[
            "import",
            "--emulator",
            "--out",
            "out",
            "--include",
            "roles,users",
        ],
        "--include",
    );
    golden("unknown-kind.stderr", &err);
    let err = refused(
        d,
        &["import", "--emulator", "--out", "out", "--include", ""],
        "--include",
    );
    golden("empty-kind.stderr", &err);
    let err = refused(
        d,
        &[
            "import",
            "--emulator",
            "--out",
            "out",
            "--region",
            "hangzhou",
        ],
        "--region",
    );
    golden("region-not-an-id.stderr", &err);
    refused(
        d,
        &[
            "import",
            "--emulator",
            "--out",
            "out",
            "--region",
            "CN-Hangzhou",
        ],
        "--region",
    );

    std::fs::write(d.join("a-file"), "not a directory").unwrap();
    let err = refused(d, &["import", "--emulator", "--out", "a-file"], "--out");
    golden("out-is-a-file.stderr", &err);
    let err = refused(d, &["import", "--emulator", "--out", "a-file/sub"], "--out");
    golden("out-under-a-file.stderr", &err);
    assert_eq!(
        std::fs::read_to_string(d.join("a-file")).unwrap(),
        "not a directory"
    );

    // Unwritable: a directory without write permission (root ignores that, so the check is
    // skipped when it can write there anyway), and a place no one can create files in.
    let ro = d.join("read-only");
    std::fs::create_dir(&ro).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
        let root_like = std::fs::write(ro.join("probe"), "x").is_ok();
        if root_like {
            std::fs::remove_file(ro.join("probe")).unwrap();
        } else {
            let err = refused(d, &["import", "--emulator", "--out", "read-only"], "--out");
            assert!(err.contains("cannot write in this directory"), "{err}");
            let err = refused(
                d,
                &["import", "--emulator", "--out", "read-only/new"],
                "--out",
            );
            assert!(err.contains("cannot create it in read-only"), "{err}");
        }
        std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let err = refused(
        d,
        &["import", "--emulator", "--out", "/proc/immctl-import-test"],
        "--out",
    );
    assert!(err.contains("cannot create it in /proc"), "{err}");

    // Nothing was created by any of them.
    let left: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(left, ["a-file", "read-only"]);
    assert!(tree(&ro).is_empty());
}

// ---------------------------------------------------------------------------------------
// The fetch behind import: every selected resource read once, nothing more, within quotas.

fn selection(kinds: &[immctl::import::Kind], prefix: &str) -> immctl::import::Selection {
    immctl::import::Selection {
        kinds: kinds.to_vec(),
        prefix: prefix.to_string(),
        region: "cn-hangzhou".to_string(),
        owner: OWNER.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_import_fetch_reads_each_selected_resource_once_within_the_quotas() {
    use immctl::import::Kind;
    let account = varied_account();
    let state = immctl::emulator::State::from_text(&account.state.to_string()).unwrap();
    // The documented quotas, on both sides.
    let rig = crate::cloud_support::Rig::start(immctl::emulator::EmulatorOptions {
        state: Some(state),
        rate_limit_scale: 1.0,
        ..Default::default()
    })
    .await;
    let calls = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    };
    let other = |prefix: &str| {
        account
            .not_written
            .iter()
            .filter(|a| a.starts_with(prefix) && !a.contains("Aliyun"))
            .count() as u64
    };
    let roles = 56 - other("ram_role.");
    let policies = 56 - other("ram_policy.");

    let sel = selection(&[Kind::Policies, Kind::Roles, Kind::Projects], "");
    let f = immctl::live::fetch_all(&rig.client, &sel.scope())
        .await
        .unwrap();
    let stats = rig.emu.stats();
    assert_eq!(
        stats.calls,
        calls(&[
            ("GetRole", roles),
            ("ListPolicies", 1),
            ("ListPoliciesForRole", roles),
            ("ListPolicyVersions", policies),
            ("ListProjects", 1),
            ("ListRoles", 1),
        ])
    );
    assert_eq!(stats.throttled, 0);
    assert!(stats.errors.is_empty(), "{:?}", stats.errors);
    // Other owners come from the list answers, not from reads.
    let others: BTreeSet<String> = f.other_owners.keys().map(|a| a.to_string()).collect();
    let expected: BTreeSet<String> = account
        .not_written
        .iter()
        .filter(|a| !a.contains("Aliyun") && !a.starts_with("imm_project."))
        .cloned()
        .collect();
    assert_eq!(others, expected);
    // The default version, not the newest: pol-08 has v1..v4 with v(1 + 24 % 4) = v1 default.
    let p = &f.live.policies["pol-08"];
    assert_eq!(p.default_version, "v1");
    assert_eq!(p.versions.len(), 4);
    assert_eq!(
        p.document.canonical()["Statement"][0]["Resource"],
        json!(["acs:oss:*:*:bucket-8-v1/*"])
    );

    // --include roles --prefix role-1: ten names, one another owner's.
    rig.emu.reset_stats();
    let sel = selection(&[Kind::Roles], "role-1");
    immctl::live::fetch_all(&rig.client, &sel.scope())
        .await
        .unwrap();
    assert_eq!(
        rig.emu.stats().calls,
        calls(&[
            ("GetRole", 9),
            ("ListPolicies", 1),
            ("ListPoliciesForRole", 9),
            ("ListRoles", 1),
        ])
    );
}

// ---------------------------------------------------------------------------------------
// Failures after the flags: a failed read writes nothing; a live document immctl refuses is
// written and reported, exit 1.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_read_writes_nothing_and_keeps_the_apis_words() {
    let account = varied_account();
    let state = immctl::emulator::State::from_text(&account.state.to_string()).unwrap();
    let emu = immctl::emulator::spawn(immctl::emulator::EmulatorOptions {
        state: Some(state),
        ..Default::default()
    })
    .await
    .unwrap();
    emu.set_faults(immctl::emulator::Faults {
        fail_next: Some(vec![immctl::emulator::FailNext {
            action: "ListPolicyVersions".into(),
            code: "NoPermission".into(),
            count: 1,
            status: Some(403),
            message: Some("You are not authorized to do this action.".into()),
        }]),
        ..Default::default()
    });
    let endpoint = emu.endpoint();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_path_buf();
    let out = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_immctl"))
            .args([
                "import",
                "--out",
                "imported",
                "--endpoint-ram",
                &endpoint,
                "--endpoint-imm",
                &endpoint,
                "--endpoint-sts",
                &endpoint,
            ])
            .current_dir(&d)
            .env("HOME", &d)
            .env_remove("IMMCTL_CONFIG")
            .env_remove("IMMCTL_BLESS")
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", "emulator-admin")
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", SECRET)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    emu.shutdown().await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(!format!("{}{err}", stdout(&out)).contains(SECRET));
    for needle in [
        "reading the live state",
        "ListPolicyVersions ram_policy.",
        "403 NoPermission",
        "RequestId",
    ] {
        assert!(err.contains(needle), "{needle}: {}", text(&out));
    }
    assert!(
        !dir.path().join("imported").exists(),
        "files were written after a failed read"
    );
}

#[test]
fn a_live_document_immctl_refuses_is_written_and_reported_with_exit_1() {
    // The console accepted it (the emulator's state is not checked), immctl's grammar does
    // not: an unknown condition operator never matches, so validate refuses it.
    let state = json!({
        "accessKeys": [{"id": "emulator-admin", "secret": SECRET, "user": "admin"}],
        "users": {"admin": {"policies": [{"type": "System", "name": "AdministratorAccess"}]}},
        "policies": {"odd": {"document": {"Version": "1", "Statement": [{
            "Effect": "Allow", "Action": "oss:GetObject", "Resource": "*",
            "Condition": {"StringEqual": {"acs:SourceVpc": "vpc-1"}}}]}}},
    });
    let dir = workdir(&state);
    let d = dir.path();
    let out = immctl(d, &["import", "--emulator", "--out", "imported"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let err = stderr(&out);
    assert!(err.contains("policies/odd.yaml:"), "{err}");
    assert!(err.contains("StringEqual"), "{err}");
    assert!(err.contains("the files were written"), "{err}");
    assert!(d.join("imported/policies/odd.yaml").exists());
}

// ---------------------------------------------------------------------------------------
// What the user sees, golden: the report and every file, for a small account.

#[test]
fn a_small_account_imports_as_the_golden_files_show() {
    let trust = |svc: &str| json!({"Version": "1", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"Service": [svc]}}]});
    let state = json!({
        "accessKeys": [{"id": "emulator-admin", "secret": SECRET, "user": "admin"}],
        "users": {"admin": {"policies": [{"type": "System", "name": "AdministratorAccess"}]}},
        "immDefaultRoleAuthorized": true,
        "policies": {
            "media-read": {
                "description": "Read the media bucket",
                "defaultVersion": "v2",
                "versions": [
                    {"id": "v1", "document": {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:media/*"}]}},
                    {"id": "v2", "document": {"Version": "1", "Statement": [
                        {"Effect": "Allow", "Action": ["oss:ListObjects", "oss:GetObject"], "Resource": ["acs:oss:*:*:media", "acs:oss:*:*:media/*"],
                         "Condition": {"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}}}]}},
                    {"id": "v3", "document": {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:*", "Resource": "*"}]}}
                ],
                "tags": {"team": "media", "acs:rm:rgId": "rg-1"}
            },
            "theirs-policy": {"document": {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "mns:*", "Resource": "*"}]}, "tags": {"immctl-owner": OTHER}}
        },
        "roles": {
            "media-app": {
                "description": "Media web application — 媒体",
                "assumeRolePolicyDocument": trust("ecs.aliyuncs.com"),
                "maxSessionDuration": 7200,
                "policies": [{"type": "Custom", "name": "media-read"}, {"type": "System", "name": "AliyunIMMReadOnlyAccess"}],
                "tags": {"team": "media"}
            },
            "Imm.Service": {
                "assumeRolePolicyDocument": trust("imm.aliyuncs.com"),
                "policies": [{"type": "System", "name": "AliyunOSSReadOnlyAccess"}, {"type": "System", "name": "AliyunMNSFullAccess"}],
                "tags": {"immctl-owner": OWNER, "immctl-deletion-policy": "Retain"}
            },
            "theirs": {"assumeRolePolicyDocument": trust("ecs.aliyuncs.com"), "tags": {"immctl-owner": OTHER}}
        },
        "projects": {"cn-hangzhou": {
            "media_lib": {"serviceRole": "Imm.Service", "description": "yes", "datasetMaxBindCount": 5, "tags": {"team": "media"}},
            "plain": {}
        }}
    });
    let dir = workdir(&state);
    let d = dir.path();
    let out = immctl(d, &["import", "--emulator", "--out", "imported"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let mut shown = format!(
        "$ immctl import --emulator --out imported\n{}",
        stdout(&out)
    );
    for (path, bytes) in tree(&d.join("imported")) {
        shown.push_str(&format!(
            "\n==> imported/{} <==\n{}",
            path.display(),
            String::from_utf8(bytes).unwrap()
        ));
    }
    golden("small-account.txt", &shown);
    let plan = plan_json(d, &[]);
    let adopted: Vec<&str> = plan["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["address"].as_str().unwrap())
        .collect();
    assert_eq!(
        adopted,
        [
            "ram_policy.media-read",
            "ram_role.media-app",
            "imm_project.cn-hangzhou/media_lib",
            "imm_project.cn-hangzhou/plain"
        ]
    );
}

/// A directory link inside `--out` that leads out of it (`roles -> ../elsewhere`) used to
/// make import write the role manifests into the link's target. Now nothing is written.
#[cfg(unix)]
#[test]
fn import_does_not_write_through_a_link_out_of_the_output_directory() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("manifests")).unwrap();
    std::fs::copy(
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/manifests/demo-live-state.yaml"
        ),
        d.join("manifests/demo-live-state.yaml"),
    )
    .unwrap();
    std::fs::create_dir_all(d.join("out")).unwrap();
    std::fs::create_dir_all(d.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink("../elsewhere", d.join("out/roles")).unwrap();
    let out = immctl(d, &["import", "--emulator", "--out", "out"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("a symbolic link out of out"),
        "{}",
        text(&out)
    );
    assert_eq!(
        std::fs::read_dir(d.join("elsewhere")).unwrap().count(),
        0,
        "import wrote through the link"
    );
    assert!(!d.join("out/policies").exists(), "nothing is written");
}
