//! Unit and property tests of `import` (pure conversion) and `import::files` (names, the
//! header, hand-edit detection). The end-to-end tests through the binary and the emulator are
//! in `tests/integration/import.rs`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use proptest::collection::{btree_map, btree_set, vec};
use proptest::prelude::*;
use proptest::sample::select;

use super::files::{self, Existing};
use super::*;
use crate::live::{Fetched, Live, LivePolicyVersion};
use crate::manifest::{Desired, LoadOptions, PolicyRef, PolicyType, load_texts};
use crate::plan::testing::{allow, live_policy, live_project, live_role, owned, trust};
use crate::plan::{Action, Op, PlanSettings, diff, simulate_strict};

const OWNER: &str = "default";

fn sel() -> Selection {
    Selection {
        kinds: vec![Kind::Policies, Kind::Roles, Kind::Projects],
        prefix: String::new(),
        region: "cn-hangzhou".into(),
        owner: OWNER.into(),
    }
}

/// Load the rendered documents as one manifest set; panics on any error finding.
fn load(imported: &Import) -> Desired {
    let texts: Vec<(std::path::PathBuf, String)> = imported
        .documents
        .iter()
        .map(|d| (d.path.clone(), d.body.clone()))
        .collect();
    let loaded = load_texts(
        &texts,
        &LoadOptions {
            default_region: "cn-hangzhou".into(),
        },
    );
    let errors: Vec<_> = loaded.errors().collect();
    assert!(errors.is_empty(), "{errors:#?}");
    loaded.desired
}

fn fetched(live: Live) -> Fetched {
    Fetched {
        live,
        other_owners: BTreeMap::new(),
    }
}

// ---------------------------------------------------------------------------------------
// Names and headers.

#[test]
fn plain_names_are_their_own_file_names_and_others_get_a_stable_suffix() {
    for n in [
        "media-app",
        "svc.media.reader",
        "7days",
        "_media_lib",
        "0",
        "a.b-c",
    ] {
        assert_eq!(files::file_stem(n), n);
    }
    for (n, readable) in [
        ("MediaApp", "MediaApp~"),
        (".hidden", "_hidden~"),
        ("trailing.", "trailing_~"),
        ("con", "con~"),
        ("NUL", "NUL~"),
        ("com1.x", "com1_x~"),
        ("lpt9", "lpt9~"),
        ("Svc.Media", "Svc_Media~"),
    ] {
        let s = files::file_stem(n);
        assert!(s.starts_with(readable), "{n} -> {s}");
        assert_eq!(s.len(), readable.len() + 8, "{n} -> {s}");
        assert_eq!(s, files::file_stem(n), "deterministic");
        assert!(!s.contains('.'), "{n} -> {s}");
    }
    assert_ne!(files::file_stem("MediaApp"), files::file_stem("MEDIAAPP"));
    assert_eq!(
        files::path_for(&Address::role("MediaApp")),
        Path::new("roles").join(format!("{}.yaml", files::file_stem("MediaApp")))
    );
    assert_eq!(
        files::path_for(&Address::project(&ProjectKey {
            region: "cn-beijing".into(),
            name: "_p".into()
        })),
        Path::new("projects/cn-beijing/_p.yaml")
    );
}

proptest! {
    /// Any set of legal names maps to file names that differ even when case is ignored, are
    /// never hidden and never a Windows device name.
    #[test]
    fn file_names_never_collide_even_ignoring_case(
        names in btree_set("[A-Za-z0-9.-]{1,12}", 1..40)
    ) {
        let mut folded = BTreeSet::new();
        for n in &names {
            let stem = files::file_stem(n);
            prop_assert!(!stem.starts_with('.') && !stem.ends_with('.'), "{n} -> {stem}");
            let first = stem.split('.').next().unwrap().to_lowercase();
            prop_assert!(!["con", "prn", "aux", "nul", "com1", "lpt1"].contains(&first.as_str()));
            prop_assert!(folded.insert(stem.to_lowercase()), "{n} -> {stem} collides");
        }
    }
}

fn doc(address: Address, body: &str) -> Document {
    Document {
        kind: Kind::of(&address).unwrap(),
        path: files::path_for(&address),
        address,
        body: body.to_string(),
        adopt: false,
    }
}

#[test]
fn the_header_tells_untouched_files_from_edited_and_foreign_ones() {
    let d = doc(Address::role("r"), "apiVersion: immctl/v1\nkind: Role\n");
    let text = files::render_file(&d);
    assert_eq!(
        files::inspect(&text),
        Existing::Generated {
            address: Address::role("r"),
            edited: false
        }
    );
    // Line endings converted by git on Windows are not an edit.
    assert_eq!(
        files::inspect(&text.replace('\n', "\r\n")),
        Existing::Generated {
            address: Address::role("r"),
            edited: false
        }
    );
    // Any change to the body is.
    for edited in [
        text.replace("kind: Role", "kind: Role # reviewed"),
        format!("{text}\n"),
        text.replace("apiVersion", "# a note\napiVersion"),
    ] {
        assert_eq!(
            files::inspect(&edited),
            Existing::Generated {
                address: Address::role("r"),
                edited: true
            },
            "{edited}"
        );
    }
    // A header without its hash line can't be trusted.
    let no_hash: String = text
        .lines()
        .filter(|l| !l.starts_with(files::HASH_MARK))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(matches!(
        files::inspect(&no_hash),
        Existing::Generated { edited: true, .. }
    ));
    assert_eq!(files::inspect("apiVersion: immctl/v1\n"), Existing::Foreign);
    assert_eq!(files::inspect(""), Existing::Foreign);
}

#[test]
fn kinds_parse_strictly() {
    assert_eq!(
        parse_kinds("projects, roles,role").unwrap(),
        [Kind::Roles, Kind::Projects]
    );
    assert_eq!(parse_kinds("policy").unwrap(), [Kind::Policies]);
    assert!(parse_kinds("users").unwrap_err().contains("\"users\""));
    assert!(parse_kinds("roles,").is_err());
    assert!(parse_kinds("Roles").is_err());
}

#[test]
fn the_selection_covers_kind_prefix_and_region() {
    let mut s = sel();
    s.kinds = vec![Kind::Roles, Kind::Projects];
    s.prefix = "med".into();
    assert!(s.covers(&Address::role("media")));
    assert!(!s.covers(&Address::role("ops")));
    assert!(!s.covers(&Address::policy("media")));
    let key = |region: &str| ProjectKey {
        region: region.into(),
        name: "media".into(),
    };
    assert!(s.covers(&Address::project(&key("cn-hangzhou"))));
    assert!(!s.covers(&Address::project(&key("cn-beijing"))));
    let scope = s.scope();
    let e = scope.everything.unwrap();
    assert!(e.roles && !e.policies && e.prefix == "med");
    assert_eq!(scope.regions, BTreeSet::from(["cn-hangzhou".to_string()]));
    s.kinds = vec![Kind::Roles];
    assert!(
        s.scope().regions.is_empty(),
        "no ListProjects without projects"
    );
}

// ---------------------------------------------------------------------------------------
// Conversion rules.

#[test]
fn projects_name_only_what_differs_from_the_service_defaults() {
    let key = ProjectKey {
        region: "cn-hangzhou".into(),
        name: "p".into(),
    };
    let mut notes = Vec::new();
    let mut lp = live_project(&key, IMM_DEFAULT_ROLE, Tags::new());
    let j = desired_project(&lp, &mut notes);
    assert_eq!(j.limits, ProjectLimits::default());
    assert_eq!(j.service_role, IMM_DEFAULT_ROLE);
    assert!(j.description.is_none() && j.template_id.is_none());
    assert!(j.adopt);
    // Both documented DatasetMaxFileCount defaults are defaults.
    for v in project_defaults::DATASET_MAX_FILE_COUNT {
        lp.dataset_max_file_count = v;
        assert_eq!(
            desired_project(&lp, &mut notes)
                .limits
                .dataset_max_file_count,
            None
        );
    }
    lp.dataset_max_file_count = 5;
    lp.engine_concurrency = 7;
    lp.service_role = String::new();
    let j = desired_project(&lp, &mut notes);
    assert_eq!(j.limits.dataset_max_file_count, Some(5));
    assert_eq!(j.limits.engine_concurrency, Some(7));
    assert_eq!(j.limits.dataset_max_bind_count, None);
    assert_eq!(
        j.service_role, IMM_DEFAULT_ROLE,
        "an empty answer is the default role"
    );
    let text = render::render_project(&j);
    assert!(!text.contains("serviceRole"), "{text}");
}

#[test]
fn tags_become_user_tags_adopt_and_deletion_policy() {
    let mut notes = Vec::new();
    let mut tags = Tags::from([
        ("team".to_string(), "media".to_string()),
        ("acs:rm:rgId".to_string(), "rg-1".to_string()),
        ("aliyun-internal".to_string(), "x".to_string()),
        ("https://example.com/k".to_string(), "x".to_string()),
        (RETAIN_TAG_KEY.to_string(), RETAIN_TAG_VALUE.to_string()),
    ]);
    let r = desired_role(&live_role("r", tags.clone()), &mut notes);
    assert_eq!(
        r.tags,
        Tags::from([("team".to_string(), "media".to_string())])
    );
    assert_eq!(r.deletion_policy, DeletionPolicy::Retain);
    assert!(r.adopt);
    assert!(notes.is_empty());
    tags.insert(OWNER_TAG_KEY.into(), OWNER.into());
    tags.insert(RETAIN_TAG_KEY.into(), "later".into());
    let r = desired_role(&live_role("r", tags), &mut notes);
    assert!(!r.adopt);
    assert_eq!(r.deletion_policy, DeletionPolicy::Delete);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(notes[0].message.contains("\"later\""));
}

#[test]
fn protected_and_other_owners_are_never_written() {
    let mut live = Live::default();
    let mut linked = live_role("svc-linked", Tags::new());
    linked.service_linked = true;
    let mut other = live_role("theirs", owned("other"));
    other.attachments.insert(PolicyRef {
        policy_type: PolicyType::System,
        name: "ReadOnlyAccess".into(),
    });
    let mut mine = live_role("mine", Tags::new());
    mine.attachments.insert(PolicyRef {
        policy_type: PolicyType::System,
        name: "AliyunOSSReadOnlyAccess".into(),
    });
    for r in [linked, other, mine] {
        live.role_names.insert(r.name.clone());
        live.roles.insert(r.name.clone(), r);
    }
    // Listed only: an Aliyun role, and a role the fetch did not read (listed as
    // service-linked).
    live.role_names.insert("AliyunIMMDefaultRole".into());
    live.role_names.insert("listed-linked".into());
    let mut f = fetched(live);
    f.other_owners
        .insert(Address::policy("their-policy"), "other".into());
    let imported = import(&f, &sel());
    let addresses: Vec<&str> = imported
        .documents
        .iter()
        .map(|d| d.address.as_str())
        .collect();
    assert_eq!(addresses, ["ram_role.mine"]);
    assert!(imported.documents[0].body.contains("type: System"));
    assert_eq!(
        imported.skipped,
        BTreeMap::from([
            (
                Address::policy("their-policy"),
                Skip::OtherOwner("other".into())
            ),
            (Address::role("AliyunIMMDefaultRole"), Skip::Protected),
            (Address::role("listed-linked"), Skip::Protected),
            (Address::role("svc-linked"), Skip::Protected),
            (Address::role("theirs"), Skip::OtherOwner("other".into())),
        ])
    );
}

// ---------------------------------------------------------------------------------------
// The invariant: the plan of the imported manifests is adoption only, then nothing.

const POLICY_NAMES: &[&str] = &["p-a", "MixedCase", "0", "con"];
const ROLE_NAMES: &[&str] = &["r-a", "Svc.Media", ".dot", "a", "nul"];
const PROJECT_NAMES: &[&str] = &["_p", "Media_2", "x-y"];
const DESCRIPTIONS: &[&str] = &["", "one", "yes", "null", "策略 🎬", "a: b # c", "'q'"];
const SYSTEM: &[&str] = &["AliyunOSSReadOnlyAccess", "AliyunMNSFullAccess"];

fn owner_tag() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![Just(None), Just(Some(OWNER)), Just(Some("other"))]
}

fn live_tags() -> impl Strategy<Value = Tags> {
    (
        btree_map(
            select(&["team", "env", "acs:rm:rgId", "yes", RETAIN_TAG_KEY][..]),
            select(&["a", "0042", "媒体", RETAIN_TAG_VALUE, "no"][..]),
            0..4,
        ),
        owner_tag(),
    )
        .prop_map(|(t, owner)| {
            let mut tags: Tags = t
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            if let Some(o) = owner {
                tags.insert(OWNER_TAG_KEY.into(), o.into());
            }
            tags
        })
}

fn limit(default: i64) -> impl Strategy<Value = i64> {
    prop_oneof![Just(default), 1..=5i64]
}

prop_compose! {
    fn a_live()(
        policies in btree_map(select(POLICY_NAMES), (select(DESCRIPTIONS), live_tags(), 1..=5usize, 0..5usize, select(&["oss:GetObject", "mns:*"][..])), 0..4),
        roles in btree_map(select(ROLE_NAMES), (select(DESCRIPTIONS), live_tags(), select(&[3600u32, 7200, 43200][..]), select(&["imm.aliyuncs.com", "ecs.aliyuncs.com"][..]), btree_set(0..6usize, 0..3)), 0..5),
        projects in btree_map(select(PROJECT_NAMES), (select(DESCRIPTIONS), live_tags(), vec(limit(10), 3), 0..3usize), 0..3),
    ) -> Live {
        let mut live = Live::default();
        let mut custom = Vec::new();
        for (name, (d, tags, nversions, default, action)) in policies {
            let mut lp = live_policy(name, allow(action, "acs:oss:*:*:b/*"), tags);
            lp.description = d.to_string();
            lp.versions = (1..=nversions)
                .map(|k| LivePolicyVersion {
                    version_id: format!("v{k}"),
                    is_default: k == 1 + default % nversions,
                    create_date: String::new(),
                })
                .collect();
            live.policy_names.insert(PolicyRef { policy_type: PolicyType::Custom, name: name.into() });
            live.policies.insert(name.into(), lp);
            custom.push(name);
        }
        for s in SYSTEM {
            live.policy_names.insert(PolicyRef { policy_type: PolicyType::System, name: (*s).into() });
        }
        let mut role_names = Vec::new();
        for (name, (d, tags, session, principal, attach)) in roles {
            let mut lr = live_role(name, tags);
            lr.description = d.to_string();
            lr.max_session_duration = session;
            lr.trust_policy = trust(principal);
            for a in attach {
                let r = if a < SYSTEM.len() {
                    PolicyRef { policy_type: PolicyType::System, name: SYSTEM[a].into() }
                } else if let Some(c) = custom.get(a - SYSTEM.len()) {
                    PolicyRef { policy_type: PolicyType::Custom, name: (*c).into() }
                } else {
                    continue;
                };
                lr.attachments.insert(r);
            }
            live.role_names.insert(name.into());
            live.roles.insert(name.into(), lr);
            role_names.push(name);
        }
        for (name, (d, tags, limits, role)) in projects {
            let key = ProjectKey { region: "cn-hangzhou".into(), name: name.into() };
            let service_role = role_names.get(role).copied().unwrap_or(IMM_DEFAULT_ROLE);
            let mut lp = live_project(&key, service_role, tags);
            lp.description = d.to_string();
            lp.dataset_max_bind_count = limits[0];
            if limits[1] != 10 { lp.engine_concurrency = limits[1]; }
            if limits[2] != 10 { lp.template_id = "Official:ImageManagement".into(); }
            live.projects.insert(key, lp);
        }
        live
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// For any account: the imported manifests load without error, and planning them against
    /// that account adopts exactly the unowned resources, each with one tag operation that
    /// adds the owner tag and nothing else; after that plan, the next one is empty.
    #[test]
    fn the_imported_manifests_plan_only_adoption_then_nothing(live in a_live()) {
        let imported = import(&fetched(live.clone()), &sel());
        let desired = load(&imported);
        let settings = PlanSettings { owner: OWNER.into(), ..PlanSettings::default() };
        let plan = diff(&desired, &live, &settings);
        let unowned: BTreeSet<Address> = imported
            .documents
            .iter()
            .filter(|d| d.adopt)
            .map(|d| d.address.clone())
            .collect();
        // immctl's own Retain key with a value that is not immctl's marker cannot be written
        // as a user tag; the plan removes it, and import says so in a note.
        let noted: BTreeSet<&Address> = imported.notes.iter().map(|n| &n.address).collect();
        let changed: BTreeSet<&Address> = plan.changes.iter().map(|c| &c.address).collect();
        let expected: BTreeSet<&Address> = unowned.iter().chain(noted.iter().copied()).collect();
        prop_assert_eq!(&changed, &expected);
        for c in &plan.changes {
            let odd_retain = noted.contains(&c.address);
            if !odd_retain || unowned.contains(&c.address) {
                prop_assert_eq!(c.action, Action::Adopt);
            }
            match c.ops.as_slice() {
                [Op::UntagResources { keys, .. }] => {
                    prop_assert!(odd_retain && !unowned.contains(&c.address));
                    prop_assert_eq!(keys, &vec![RETAIN_TAG_KEY.to_string()]);
                }
                [Op::TagResources { tags, .. }] => {
                    prop_assert_eq!(tags, &owned(OWNER));
                    prop_assert!(!odd_retain);
                }
                [Op::TagResources { tags, .. }, Op::UntagResources { keys, .. }] => {
                    prop_assert_eq!(tags, &owned(OWNER));
                    prop_assert_eq!(keys, &vec![RETAIN_TAG_KEY.to_string()]);
                    prop_assert!(odd_retain, "{:?}", c);
                }
                [Op::UpdateProject { service_role, description, template_id, limits, tags, .. }] => {
                    prop_assert!(service_role.is_none() && description.is_none() && template_id.is_none());
                    prop_assert_eq!(limits, &ProjectLimits::default());
                    let key = c.address.as_str().trim_start_matches("imm_project.");
                    let (region, name) = key.split_once('/').unwrap();
                    let mut want = live.projects[&ProjectKey { region: region.into(), name: name.into() }].tags.clone();
                    prop_assert!(unowned.contains(&c.address) || odd_retain);
                    want.insert(OWNER_TAG_KEY.into(), OWNER.into());
                    if odd_retain {
                        want.remove(RETAIN_TAG_KEY);
                    }
                    prop_assert_eq!(tags.as_ref(), Some(&want));
                }
                other => prop_assert!(false, "unexpected ops {:?}", other),
            }
        }
        // Nobody else's resource is written; every resource is in one place only.
        for d in &imported.documents {
            prop_assert!(!imported.skipped.contains_key(&d.address));
        }
        let paths: BTreeSet<String> = imported
            .documents
            .iter()
            .map(|d| d.path.to_string_lossy().to_lowercase())
            .collect();
        prop_assert_eq!(paths.len(), imported.documents.len());
        let after = simulate_strict(&plan, &live).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let again = diff(&desired, &after, &settings);
        prop_assert!(again.changes.is_empty(), "{:?}", again.changes);
        // Importing the adopted account drops `adopt` and still plans nothing.
        let reimported = import(&fetched(after.clone()), &sel());
        prop_assert!(reimported.documents.iter().all(|d| !d.adopt));
        let desired2 = load(&reimported);
        prop_assert!(diff(&desired2, &after, &settings).changes.is_empty());
    }
}
