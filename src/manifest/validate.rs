//! The RAM / IMM / OSS rules for single values (reference/alibaba-api.md §3.1 and §4): names,
//! lengths, ranges, tags, bucket names. Each check returns the message of what is wrong, or
//! `None`; the loader adds the code, the place and the address.
//!
//! Pure functions, no I/O. Policy documents are checked by `policy::grammar`.

use std::collections::BTreeMap;

/// Role names: 1-64 characters of letters, digits, `.` and `-` (current RAM docs; the legacy
/// `@` is not accepted).
pub fn role_name(name: &str) -> Option<String> {
    let n = name.chars().count();
    if !(1..=64).contains(&n) {
        return Some(format!(
            "role name `{name}` is {n} characters; RAM allows 1 to 64"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '.' || *c == '-'))
    {
        return Some(format!(
            "role name `{name}` contains {}; RAM allows letters, digits, '.' and '-'",
            describe_char(c)
        ));
    }
    None
}

/// Roles named `Aliyun*` (any case) belong to Alibaba Cloud: service roles such as
/// `AliyunIMMDefaultRole` and service-linked roles (`AliyunServiceRoleFor...`). immctl never
/// creates or changes them.
pub fn is_protected_role(name: &str) -> bool {
    name.get(..6)
        .is_some_and(|p| p.eq_ignore_ascii_case("aliyun"))
}

/// Policy names: 1-128 characters of letters, digits and `-`.
pub fn policy_name(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("policy name is empty; RAM allows 1 to 128 characters".to_string());
    }
    let n = name.chars().count();
    if !(1..=128).contains(&n) {
        return Some(format!(
            "policy name `{name}` is {n} characters; RAM allows 1 to 128"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Some(format!(
            "policy name `{name}` contains {}; RAM allows letters, digits and '-'",
            describe_char(c)
        ));
    }
    None
}

/// IMM project names: 1-128 characters of letters, digits, `_` and `-`, starting with a
/// letter or `_`.
pub fn project_name(name: &str) -> Option<String> {
    let n = name.chars().count();
    if !(1..=128).contains(&n) {
        return Some(format!(
            "project name `{name}` is {n} characters; IMM allows 1 to 128"
        ));
    }
    let first = name.chars().next().unwrap_or('-');
    if !(first.is_ascii_alphabetic() || first == '_') {
        return Some(format!(
            "project name `{name}` starts with {}; IMM wants a letter or '_' first",
            describe_char(first)
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '-'))
    {
        return Some(format!(
            "project name `{name}` contains {}; IMM allows letters, digits, '_' and '-'",
            describe_char(c)
        ));
    }
    None
}

/// A description of at most `max` characters, not empty (RAM and IMM refuse an empty one;
/// leave the field out to keep whatever is live).
pub fn description(text: &str, max: usize) -> Option<String> {
    let n = text.chars().count();
    if n == 0 {
        return Some(
            "description is empty; the cloud wants 1 or more characters (leave the field \
             out to keep whatever is live)"
                .into(),
        );
    }
    (n > max).then(|| format!("description is {n} characters; the limit is {max}"))
}

pub const MAX_RAM_DESCRIPTION: usize = 1024;
pub const MAX_IMM_DESCRIPTION: usize = 256;

/// `maxSessionDuration`: 3600..=43200 seconds.
pub fn session_duration(secs: u32) -> Option<String> {
    (!(3600..=43200).contains(&secs)).then(|| {
        format!("maxSessionDuration is {secs}; RAM allows 3600 to 43200 seconds (1 to 12 hours)")
    })
}

/// A region id such as `cn-hangzhou` or `ap-southeast-1`: two or more `-`-separated parts of
/// lower-case letters and digits, the first all letters.
pub fn region(r: &str) -> Option<String> {
    let parts: Vec<&str> = r.split('-').collect();
    let ok = r.len() <= 64
        && parts.len() >= 2
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
        && parts[0].chars().all(|c| c.is_ascii_lowercase());
    (!ok).then(|| format!("`{r}` is not a region id (for example cn-hangzhou)"))
}

/// Whether `r` is a region id (the boolean form of [`region`], for callers outside the
/// loader).
pub fn valid_region(r: &str) -> bool {
    region(r).is_none()
}

/// OSS bucket names: 3-63 characters of lower-case letters, digits and `-`, starting and
/// ending with a letter or digit.
pub fn bucket(name: &str) -> Option<String> {
    let n = name.len();
    let ok = (3..=63).contains(&n)
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    (!ok).then(|| {
        format!(
            "`{name}` is not an OSS bucket name (3-63 lower-case letters, digits and '-', \
             starting and ending with a letter or digit)"
        )
    })
}

/// Tag keys immctl sets itself (owner, retain marker).
pub const RESERVED_TAG_KEYS: &[&str] = &["immctl-owner", "immctl-deletion-policy"];
/// Prefixes the cloud reserves (and the planner ignores, so they could never converge).
pub const RESERVED_TAG_PREFIXES: &[&str] = &["aliyun", "acs:", "http://", "https://"];
/// One TagResources call takes 20 tags; immctl adds up to two of its own.
pub const MAX_USER_TAGS: usize = 18;

/// Every problem of a tag map: `(key or None for the whole map, message)`.
pub fn tags(tags: &BTreeMap<String, String>) -> Vec<(Option<String>, String)> {
    let mut out = Vec::new();
    if tags.len() > MAX_USER_TAGS {
        out.push((
            None,
            format!(
                "{} tags; at most {MAX_USER_TAGS} (one tagging call takes 20, and immctl adds \
                 its owner and retain tags)",
                tags.len()
            ),
        ));
    }
    for (k, v) in tags {
        let lower = k.to_ascii_lowercase();
        let msg = if k.is_empty() {
            Some("empty tag key".to_string())
        } else if k.chars().count() > 128 {
            Some(format!(
                "tag key `{k:.40}...` is longer than 128 characters"
            ))
        } else if RESERVED_TAG_KEYS.contains(&lower.as_str()) {
            Some(format!(
                "tag `{k}` is set by immctl itself (from the owner setting and deletionPolicy)"
            ))
        } else if let Some(p) = RESERVED_TAG_PREFIXES.iter().find(|p| lower.starts_with(*p)) {
            Some(format!(
                "tag key `{k}` starts with `{p}`, which the cloud reserves"
            ))
        } else if v.chars().count() > 256 {
            Some(format!(
                "the value of tag `{k}` is longer than 256 characters"
            ))
        } else {
            None
        };
        if let Some(m) = msg {
            out.push((Some(k.clone()), m));
        }
    }
    out
}

/// The range of each IMM project limit (reference/alibaba-api.md §4.2; the upper bounds are
/// the ones the emulator enforces).
pub const PROJECT_LIMITS: &[(&str, i64, i64)] = &[
    ("projectQueriesPerSecond", 1, 10_000),
    ("engineConcurrency", 1, 10_000),
    ("projectMaxDatasetCount", 1, 1_000_000_000),
    ("datasetMaxBindCount", 1, 10),
    ("datasetMaxFileCount", 1, 10_000_000_000),
    ("datasetMaxEntityCount", 1, 10_000_000_000),
    ("datasetMaxRelationCount", 1, 100_000_000_000),
    ("datasetMaxTotalFileSize", 1, 90_000_000_000_000_000),
];

pub fn project_limit(field: &str, value: i64) -> Option<String> {
    let (_, min, max) = PROJECT_LIMITS.iter().find(|(f, ..)| *f == field)?;
    (!(*min..=*max).contains(&value))
        .then(|| format!("{field} is {value}; IMM allows {min} to {max}"))
}

/// A template id such as `Official:ImageManagement`.
pub fn template_id(t: &str) -> Option<String> {
    let n = t.chars().count();
    (n == 0 || n > 256).then(|| {
        format!(
            "templateId must be 1 to 256 characters (for example Official:ImageManagement), not {n}"
        )
    })
}

fn describe_char(c: char) -> String {
    match c {
        ' ' => "a space".into(),
        '\t' => "a tab".into(),
        c if c.is_control() => format!("the control character U+{:04X}", c as u32),
        c => format!("'{c}'"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_cloud_rules() {
        assert_eq!(role_name("imm-media.role-1"), None);
        assert!(role_name("").is_some());
        assert!(role_name(&"r".repeat(65)).is_some());
        assert_eq!(role_name(&"r".repeat(64)), None);
        assert!(role_name("a@b").unwrap().contains("'@'"));
        assert!(role_name("a b").unwrap().contains("a space"));
        assert_eq!(policy_name("media-app-imm-query"), None);
        assert!(policy_name("a.b").unwrap().contains("'.'"));
        assert!(policy_name(&"p".repeat(129)).is_some());
        assert_eq!(project_name("_media-library_2"), None);
        assert!(project_name("2media").unwrap().contains("starts with"));
        assert!(project_name("media.lib").is_some());
    }

    #[test]
    fn protected_roles_are_aliyun_in_any_case() {
        assert!(is_protected_role("AliyunIMMDefaultRole"));
        assert!(is_protected_role("aliyunservicerolefor-x"));
        assert!(!is_protected_role("Aliyu"));
        assert!(!is_protected_role("my-aliyun-role"));
    }

    #[test]
    fn regions_are_ids() {
        for ok in ["cn-hangzhou", "ap-southeast-1", "us-west-1"] {
            assert_eq!(region(ok), None, "{ok}");
        }
        for bad in [
            "hangzhou",
            "CN-Hangzhou",
            "cn_hangzhou",
            "cn-",
            "-cn",
            "1cn-x",
            "",
        ] {
            assert!(region(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn ranges_and_lengths() {
        assert_eq!(session_duration(3600), None);
        assert_eq!(session_duration(43200), None);
        assert!(session_duration(3599).is_some());
        assert!(session_duration(43201).is_some());
        assert!(description("", 1024).is_some());
        assert_eq!(
            description(&"é".repeat(256), 256),
            None,
            "characters, not bytes"
        );
        assert!(description(&"x".repeat(257), 256).is_some());
        assert_eq!(project_limit("datasetMaxBindCount", 10), None);
        assert!(project_limit("datasetMaxBindCount", 11).is_some());
        assert!(project_limit("engineConcurrency", 0).is_some());
        assert_eq!(bucket("media-bucket-01"), None);
        for bad in ["ab", "Media", "-x-", "a_b", &"b".repeat(64)] {
            assert!(bucket(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn tags_refuse_reserved_keys_and_too_many() {
        let t: BTreeMap<String, String> = [
            ("team", "media"),
            ("immctl-owner", "x"),
            ("Aliyun:x", "y"),
            ("acs:y", "z"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let keys: Vec<Option<String>> = tags(&t).into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            vec![
                Some("Aliyun:x".into()),
                Some("acs:y".into()),
                Some("immctl-owner".into())
            ]
        );
        let many: BTreeMap<String, String> = (0..19)
            .map(|i| (format!("k{i}"), "v".to_string()))
            .collect();
        assert_eq!(tags(&many).len(), 1);
    }
}
