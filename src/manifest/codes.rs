//! Every finding code the manifest loader emits: stable, documented in `docs/manifests.md`
//! (a test checks that every code here appears there), never reused for another meaning.
//!
//! Numbering: `E0xx`/`W0xx` files and YAML, `E1xx` the document envelope and schema,
//! `E2xx` names and field values, `E3xx` policy documents, `E4xx`/`W4xx` roles and
//! references, `E5xx` duplicates and expansion, `E9xx` bugs.

use super::diagnostic::Severity;

macro_rules! codes {
    ($($name:ident = $code:literal, $sev:ident, $summary:literal;)*) => {
        $(#[doc = $summary] pub const $name: &str = $code;)*
        /// `(code, severity, one-line summary)` of every code.
        pub const CATALOG: &[(&str, Severity, &str)] = &[$(($code, Severity::$sev, $summary)),*];
    };
}

codes! {
    UNREADABLE = "E001", Error, "a path cannot be read (missing, permission denied, broken symlink, symlink loop)";
    TOO_LARGE = "E002", Error, "a manifest file is larger than the 1 MiB cap";
    NOT_TEXT = "E003", Error, "a manifest file is not UTF-8 text (binary, or another encoding)";
    YAML_SYNTAX = "E004", Error, "YAML syntax error";
    YAML_TOO_DEEP = "E005", Error, "YAML nested deeper than 64 levels";
    YAML_TOO_MANY_NODES = "E006", Error, "more than 200000 YAML nodes in one file, aliases counted expanded (alias bomb)";
    YAML_TAB = "E007", Error, "a tab in the indentation of a line";
    DUPLICATE_KEY = "E008", Error, "a key written twice in one mapping";
    YAML_UNSUPPORTED = "E009", Error, "unsupported YAML: a custom tag, a non-scalar key, a recursive alias";
    EMPTY_FILE = "E010", Error, "a manifest file holds no document (empty, or only comments)";
    TOO_MANY_FINDINGS = "E011", Error, "more than 100 findings in one file: the rest are summed up in one finding";
    TOO_MANY_FILES = "E012", Error, "more than 10000 manifest files under the given paths";
    NO_MANIFESTS = "W001", Warning, "a directory holds no manifest file";
    TOO_MANY_WARNINGS = "W002", Warning, "more than 100 findings in one file, the rest all warnings: summed up in one finding";
    API_VERSION = "E101", Error, "apiVersion missing or not immctl/v1";
    KIND = "E102", Error, "kind missing or unknown";
    UNKNOWN_FIELD = "E103", Error, "unknown field";
    MISSING_FIELD = "E104", Error, "missing required field";
    WRONG_TYPE = "E105", Error, "wrong type or invalid value";
    DOCUMENT_SOURCE = "E106", Error, "a Policy needs exactly one of document and documentFile";
    DOCUMENT_FILE = "E107", Error, "documentFile cannot be read or is not a JSON object";
    NOT_A_MAPPING = "E108", Error, "a document is not a mapping";
    ROLE_NAME = "E201", Error, "invalid role name (1-64 of letters, digits, '.', '-')";
    POLICY_NAME = "E202", Error, "invalid policy name (1-128 of letters, digits, '-')";
    PROJECT_NAME = "E203", Error, "invalid project name (1-128 of letters, digits, '_', '-'; starts with a letter or '_')";
    PROTECTED_NAME = "E204", Error, "a role named Aliyun*: reserved for Alibaba Cloud, never managed by immctl";
    DESCRIPTION = "E205", Error, "description empty or too long (roles and policies 1024, projects 256 characters)";
    SESSION_DURATION = "E206", Error, "maxSessionDuration outside 3600..43200";
    REGION = "E207", Error, "invalid region id";
    TAG = "E208", Error, "invalid tag (reserved key, too long, too many)";
    PROJECT_LIMIT = "E209", Error, "an IMM project limit outside its range";
    BUCKET = "E210", Error, "invalid OSS bucket name, or an ImmServiceRole without buckets";
    TEMPLATE_ID = "E211", Error, "templateId empty or too long";
    POLICY_VERSION = "E301", Error, "policy Version missing or not \"1\"";
    POLICY_STATEMENT = "E302", Error, "policy Statement missing, empty or malformed";
    POLICY_EFFECT = "E303", Error, "statement Effect missing or not Allow/Deny";
    POLICY_ACTION = "E304", Error, "statement Action/NotAction missing or malformed";
    POLICY_RESOURCE = "E305", Error, "statement Resource/NotResource missing or malformed";
    POLICY_PRINCIPAL = "E306", Error, "Principal in a permission policy";
    TRUST_PRINCIPAL = "E307", Error, "trust policy statement without a valid Principal";
    POLICY_CONDITION = "E308", Error, "Condition block malformed, unknown operator or bad value";
    POLICY_ELEMENT = "E309", Error, "unknown policy or statement element";
    POLICY_SIZE = "E310", Error, "policy document larger than RAM's limit (6144 characters; trust policies 4096)";
    TOO_MANY_CUSTOM = "E401", Error, "more than 10 Custom policies attached to one role";
    TOO_MANY_SYSTEM = "E402", Error, "more than 20 System policies attached to one role";
    ATTACHMENT_TYPE = "E403", Error, "a role attaches as System a policy the manifests declare as Custom";
    UNDECLARED_POLICY = "W401", Warning, "a role attaches a Custom policy no manifest declares: it must exist live";
    REPEATED_ATTACHMENT = "W402", Warning, "a role lists the same policy twice";
    UNDECLARED_SERVICE_ROLE = "W403", Warning, "a project's service role is not declared: it must exist live";
    DUPLICATE_NAME = "E501", Error, "two documents declare the same resource";
    EXPANSION_CLASH = "E502", Error, "a name generated by an ImmServiceRole is declared elsewhere too";
    INTERNAL = "E901", Error, "a bug in immctl (please report it)";
}

/// The severity a code is documented with.
pub fn severity(code: &str) -> Option<Severity> {
    CATALOG
        .iter()
        .find(|(c, ..)| *c == code)
        .map(|(_, s, _)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_their_letter_matches_their_severity() {
        let mut seen = std::collections::BTreeSet::new();
        for (code, sev, _) in CATALOG {
            assert!(seen.insert(*code), "{code} twice");
            let letter = match sev {
                Severity::Error => 'E',
                Severity::Warning => 'W',
            };
            assert!(code.starts_with(letter), "{code} is a {sev}");
        }
    }
}
