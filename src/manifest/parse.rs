//! YAML text -> typed manifest documents, with a position for every problem.
//!
//! Each document is deserialized straight into typed structs (`deny_unknown_fields`, no
//! untyped intermediate, no `#[serde(flatten)]`), so serde_yaml's own errors (unknown field,
//! wrong type, missing field) carry the line and column where they occurred. The `spec` is
//! typed by `kind`: a hand-written visitor reads the header keys first and deserializes `spec`
//! with the right type as soon as it meets it. (A document that writes `spec` before `kind`
//! still works; its spec is buffered and typed afterwards, and errors inside it then point at
//! `spec` rather than at the exact field.)
//!
//! serde_yaml refuses alias bombs ("repetition limit exceeded") and deep nesting ("recursion
//! limit exceeded") on its own; both are tested. A syntax error ends the file: serde_yaml
//! would otherwise yield the same error for every following "document" forever.
//!
//! No semantic rules here (names, limits, grammar): see `validate`.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};

use super::model::{DeletionPolicy, PolicyType};
use super::positions::{self, DocIndex, Pos};

/// The only API version there is.
pub const API_VERSION: &str = "immctl/v1";

/// Kinds a manifest may declare, in the order error messages list them.
pub const KINDS: &[&str] = &["Policy", "Role", "Project", "ImmServiceRole"];

/// The embedded emulator's seed (`manifests/demo-live-state.yaml`) sits beside the manifests;
/// documents of this kind are skipped, not errors.
pub const SKIPPED_KIND: &str = "EmulatorState";

/// Most documents one file may hold.
pub const MAX_DOCUMENTS_PER_FILE: usize = 1000;

/// `metadata`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metadata {
    pub name: String,
}

/// `{name, type}` in a role's `policies`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPolicyRef {
    pub name: String,
    #[serde(default, rename = "type")]
    pub policy_type: PolicyType,
}

pub type RawTags = BTreeMap<String, String>;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicySpec {
    pub description: Option<String>,
    pub document: Option<serde_json::Value>,
    pub document_file: Option<String>,
    #[serde(default)]
    pub tags: RawTags,
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    #[serde(default)]
    pub adopt: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RoleSpec {
    pub description: Option<String>,
    pub max_session_duration: Option<u32>,
    pub trust_policy: serde_json::Value,
    #[serde(default)]
    pub policies: Vec<RawPolicyRef>,
    #[serde(default)]
    pub tags: RawTags,
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    #[serde(default)]
    pub adopt: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ProjectSpec {
    pub region: Option<String>,
    pub service_role: Option<String>,
    pub description: Option<String>,
    pub template_id: Option<String>,
    pub project_queries_per_second: Option<i64>,
    pub engine_concurrency: Option<i64>,
    pub project_max_dataset_count: Option<i64>,
    pub dataset_max_bind_count: Option<i64>,
    pub dataset_max_file_count: Option<i64>,
    pub dataset_max_entity_count: Option<i64>,
    pub dataset_max_relation_count: Option<i64>,
    pub dataset_max_total_file_size: Option<i64>,
    #[serde(default)]
    pub tags: RawTags,
    #[serde(default)]
    pub buckets: Vec<String>,
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    #[serde(default)]
    pub adopt: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImmServiceRoleSpec {
    pub buckets: Vec<String>,
    pub description: Option<String>,
    #[serde(default)]
    pub extra_statements: Vec<serde_json::Value>,
    pub max_session_duration: Option<u32>,
    #[serde(default)]
    pub tags: RawTags,
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
    #[serde(default)]
    pub adopt: bool,
}

/// A typed `spec`.
#[derive(Debug, Clone)]
pub enum Spec {
    Policy(PolicySpec),
    Role(RoleSpec),
    Project(ProjectSpec),
    ImmServiceRole(ImmServiceRoleSpec),
    /// `EmulatorState` (not a manifest) or a kind we could not type.
    Ignored,
}

/// One document as written: header fields (each may be missing) and the typed spec.
#[derive(Debug, Clone, Default)]
pub struct RawDocument {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub metadata: Option<Metadata>,
    pub spec: Option<Spec>,
}

/// What kind of problem a parse error is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The text is not YAML (or is hostile: alias bomb, deep nesting, too many documents).
    Syntax,
    /// The YAML does not fit the manifest schema (unknown field, wrong type, missing field,
    /// duplicate key).
    Schema,
}

/// A problem found while parsing, with its position when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub pos: Pos,
    pub kind: ErrorKind,
    pub message: String,
}

/// serde's own error phrases (serde::de::Error's provided constructors): the YAML was read,
/// but does not fit the types. Everything else serde_yaml reports comes from its scanner,
/// parser or limits.
const SCHEMA_PHRASES: &[&str] = &[
    "unknown field",
    "invalid type",
    "missing field",
    "invalid value",
    "unknown variant",
    "duplicate field",
    "invalid length",
];

fn kind_of(message: &str) -> ErrorKind {
    if SCHEMA_PHRASES.iter().any(|p| message.contains(p)) {
        ErrorKind::Schema
    } else {
        ErrorKind::Syntax
    }
}

/// One document of a file: its position index and what parsed (`None` for an empty
/// document or one whose structure could not be read; its error is in `errors`).
#[derive(Debug, Clone)]
pub struct ParsedDocument {
    pub index: DocIndex,
    pub doc: Option<RawDocument>,
}

/// Everything one file yielded.
#[derive(Debug, Clone, Default)]
pub struct ParsedFile {
    pub documents: Vec<ParsedDocument>,
    pub errors: Vec<ParseError>,
    /// Number of YAML documents that held anything (`---` separators alone don't count).
    pub non_empty_documents: usize,
}

/// Parse every document of `text`.
pub fn parse(text: &str) -> ParsedFile {
    let indexes = positions::index(text);
    let mut out = ParsedFile::default();
    for (i, de) in serde_yaml::Deserializer::from_str(text).enumerate() {
        let index = indexes.get(i).cloned().unwrap_or_default();
        if i >= MAX_DOCUMENTS_PER_FILE {
            out.errors.push(ParseError {
                pos: index.start,
                kind: ErrorKind::Syntax,
                message: format!(
                    "more than {MAX_DOCUMENTS_PER_FILE} documents in one file; split it"
                ),
            });
            break;
        }
        // Keys written twice: reported from the position index, which knows where the second
        // one is (serde only says "duplicate field" at the start of the map, and an untyped
        // map such as a policy document would let the later key win silently).
        let duplicates = !index.duplicate_keys.is_empty();
        for (path, pos) in &index.duplicate_keys {
            out.errors.push(ParseError {
                pos: *pos,
                kind: ErrorKind::Schema,
                message: format!("key `{path}` is written twice; remove one"),
            });
        }
        match Option::<RawDocument>::deserialize(de) {
            Ok(Some(doc)) => {
                out.non_empty_documents += 1;
                out.documents.push(ParsedDocument {
                    index,
                    doc: Some(doc),
                });
            }
            Ok(None) => {}
            Err(e) => {
                let pos = e.location().map(|l| Pos {
                    line: l.line(),
                    column: l.column(),
                });
                let message = clean_message(&e.to_string());
                let kind = kind_of(&message);
                out.non_empty_documents += 1;
                if !(duplicates && message.contains("duplicate field")) {
                    let pos = pos.unwrap_or(index.start);
                    out.errors.push(ParseError {
                        kind,
                        message: explain(text, pos, message),
                        pos,
                    });
                }
                out.documents.push(ParsedDocument { index, doc: None });
                // serde_yaml cannot resume after a syntax error: it would report it (or its
                // consequences) for every following "document", forever.
                if kind == ErrorKind::Syntax {
                    break;
                }
            }
        }
    }
    out
}

/// serde_yaml writes " at line L column C" into its messages; the finding puts the position
/// first instead, so the words are removed (wherever they are: a scanner error continues
/// after them with ", while scanning ...").
fn clean_message(m: &str) -> String {
    const AT: &str = " at line ";
    let mut from = 0;
    while let Some(i) = m[from..].find(AT).map(|i| i + from) {
        let rest = &m[i + AT.len()..];
        let line_digits = rest.chars().take_while(char::is_ascii_digit).count();
        let after_line = &rest[line_digits..];
        if line_digits > 0
            && let Some(col) = after_line.strip_prefix(" column ")
        {
            let col_digits = col.chars().take_while(char::is_ascii_digit).count();
            if col_digits > 0 {
                return format!("{}{}", &m[..i], &col[col_digits..]);
            }
        }
        from = i + AT.len();
    }
    m.to_string()
}

/// Add a hint where serde_yaml's words alone would puzzle a newcomer.
fn explain(text: &str, pos: Pos, message: String) -> String {
    let line = text.lines().nth(pos.line.saturating_sub(1)).unwrap_or("");
    let before: String = line
        .chars()
        .take(pos.column.saturating_sub(1) + 1)
        .collect();
    if message.contains("cannot start any token") && before.contains('\t') {
        return format!("{message}: YAML does not allow tabs for indentation; use spaces");
    }
    if message.contains("repetition limit exceeded") {
        return format!(
            "{message}: the aliases (`*name`) expand to too much data; write the values out"
        );
    }
    if message.contains("recursion limit exceeded") {
        return format!("{message}: the document nests too deeply");
    }
    message
}

// ---------------------------------------------------------------------------------------
// The document visitor: header first, then `spec` typed by `kind`.

impl<'de> Deserialize<'de> for RawDocument {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(DocumentVisitor)
    }
}

const DOCUMENT_FIELDS: &[&str] = &["apiVersion", "kind", "metadata", "spec"];

struct DocumentVisitor;

impl<'de> Visitor<'de> for DocumentVisitor {
    type Value = RawDocument;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a manifest (a map with apiVersion, kind, metadata and spec)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RawDocument, A::Error> {
        let mut doc = RawDocument::default();
        let mut buffered_spec: Option<serde_yaml::Value> = None;
        let mut seen_spec = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "apiVersion" => {
                    if doc.api_version.is_some() {
                        return Err(de::Error::duplicate_field("apiVersion"));
                    }
                    doc.api_version = Some(map.next_value()?);
                }
                "kind" => {
                    if doc.kind.is_some() {
                        return Err(de::Error::duplicate_field("kind"));
                    }
                    doc.kind = Some(map.next_value()?);
                }
                "metadata" => {
                    if doc.metadata.is_some() {
                        return Err(de::Error::duplicate_field("metadata"));
                    }
                    doc.metadata = Some(map.next_value()?);
                }
                "spec" => {
                    if seen_spec {
                        return Err(de::Error::duplicate_field("spec"));
                    }
                    seen_spec = true;
                    match doc.kind.as_deref() {
                        Some(kind) => doc.spec = Some(map.next_value_seed(SpecSeed(kind))?),
                        None => buffered_spec = Some(map.next_value()?),
                    }
                }
                other => {
                    // Read the value so the error points at the key, not past it.
                    let _: IgnoredAny = map.next_value()?;
                    return Err(de::Error::unknown_field(other, DOCUMENT_FIELDS));
                }
            }
        }
        if let Some(v) = buffered_spec {
            let kind = doc.kind.as_deref().unwrap_or("");
            doc.spec = Some(SpecSeed(kind).deserialize(v).map_err(|e| {
                de::Error::custom(format!("spec: {}", clean_message(&e.to_string())))
            })?);
        }
        Ok(doc)
    }
}

/// Deserializes `spec` as the type `kind` names; unknown kinds are read and ignored (the
/// unknown kind itself is reported by validation, at `kind`).
struct SpecSeed<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for SpecSeed<'_> {
    type Value = Spec;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Spec, D::Error> {
        Ok(match self.0 {
            "Policy" => Spec::Policy(PolicySpec::deserialize(d)?),
            "Role" => Spec::Role(RoleSpec::deserialize(d)?),
            "Project" => Spec::Project(ProjectSpec::deserialize(d)?),
            "ImmServiceRole" => Spec::ImmServiceRole(ImmServiceRoleSpec::deserialize(d)?),
            _ => {
                IgnoredAny::deserialize(d)?;
                Spec::Ignored
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: usize, column: usize) -> Pos {
        Pos { line, column }
    }

    #[test]
    fn a_typed_spec_per_kind_and_several_documents() {
        let f = parse(
            "apiVersion: immctl/v1\nkind: Policy\nmetadata: {name: a}\nspec:\n  document: {Version: \"1\"}\n---\n---\nkind: Role\nspec:\n  trustPolicy: {}\n  policies: [{name: x, type: System}]\n",
        );
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        assert_eq!(f.documents.len(), 2);
        assert!(matches!(
            f.documents[0].doc.as_ref().unwrap().spec,
            Some(Spec::Policy(_))
        ));
        let Some(Spec::Role(r)) = &f.documents[1].doc.as_ref().unwrap().spec else {
            panic!("not a role");
        };
        assert_eq!(r.policies[0].policy_type, PolicyType::System);
        // The index of the second non-empty document is the third YAML document's.
        assert_eq!(f.documents[1].index.value("kind"), p(8, 7));
    }

    #[test]
    fn unknown_fields_and_wrong_types_point_at_the_field() {
        let f =
            parse("apiVersion: immctl/v1\nkind: Role\nmetadata:\n  name: x\nspec:\n  bogus: 1\n");
        assert_eq!(f.errors.len(), 1, "{:?}", f.errors);
        assert_eq!(f.errors[0].pos.line, 6);
        assert!(
            f.errors[0].message.contains("unknown field `bogus`"),
            "{}",
            f.errors[0].message
        );
        assert_eq!(f.errors[0].kind, ErrorKind::Schema);
        assert!(
            !f.errors[0].message.contains("at line"),
            "{}",
            f.errors[0].message
        );

        let f = parse("kind: Role\nspec:\n  maxSessionDuration: long\n  trustPolicy: {}\n");
        assert_eq!(f.errors[0].pos.line, 3);
        assert!(
            f.errors[0].message.contains("invalid type"),
            "{}",
            f.errors[0].message
        );
    }

    #[test]
    fn spec_before_kind_is_still_typed() {
        let f = parse("spec:\n  trustPolicy: {}\nkind: Role\n");
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        assert!(matches!(
            f.documents[0].doc.as_ref().unwrap().spec,
            Some(Spec::Role(_))
        ));
        let f = parse("spec:\n  nope: 1\nkind: Role\n");
        assert_eq!(f.errors.len(), 1);
        assert!(
            f.errors[0].message.contains("spec: unknown field `nope`"),
            "{:?}",
            f.errors
        );
    }

    #[test]
    fn a_syntax_error_is_reported_once_and_ends_the_file() {
        let f = parse("kind: Policy\n---\nkind: x: y\n---\nkind: Role\n");
        assert_eq!(f.errors.len(), 1, "{:?}", f.errors);
        assert_eq!(f.errors[0].kind, ErrorKind::Syntax);
        assert_eq!(f.errors[0].pos.line, 3);
        assert_eq!(
            f.documents.len(),
            2,
            "the document before the error is kept"
        );
        let f = parse("a:\n\tb: 1\n");
        assert_eq!(f.errors.len(), 1, "{:?}", f.errors);
        assert!(
            f.errors[0].message.contains("tabs"),
            "{}",
            f.errors[0].message
        );
        assert_eq!(f.errors[0].kind, ErrorKind::Syntax);
        assert_eq!(f.errors[0].pos, p(2, 1));
    }

    #[test]
    fn duplicate_keys_are_reported_where_the_second_one_is() {
        let f = parse("kind: Policy\nkind: Role\n");
        assert_eq!(f.errors.len(), 1, "{:?}", f.errors);
        assert_eq!(f.errors[0].pos, p(2, 1));
        let f = parse("kind: Policy\nspec:\n  document:\n    Version: \"1\"\n    Version: \"2\"\n");
        assert_eq!(f.errors.len(), 1, "{:?}", f.errors);
        assert_eq!(f.errors[0].pos, p(5, 5));
        assert!(f.errors[0].message.contains("spec.document.Version"));
    }

    #[test]
    fn empty_documents_and_comments_yield_nothing() {
        for t in ["", "---\n", "# c\n", "---\n---\n"] {
            let f = parse(t);
            assert!(
                f.errors.is_empty() && f.documents.is_empty(),
                "{t:?}: {f:?}"
            );
            assert_eq!(f.non_empty_documents, 0);
        }
    }

    #[test]
    fn alias_bombs_and_deep_nesting_are_refused() {
        let mut bomb =
            String::from("kind: Policy\nspec:\n  document:\n    a: &a [x,x,x,x,x,x,x,x,x]\n");
        let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        for w in names.windows(2) {
            let refs = vec![format!("*{}", w[0]); 9].join(",");
            bomb.push_str(&format!("    {}: &{} [{refs}]\n", w[1], w[1]));
        }
        let f = parse(&bomb);
        assert_eq!(f.errors.len(), 1, "{:?}", f.errors);
        assert!(
            f.errors[0].message.contains("repetition limit"),
            "{}",
            f.errors[0].message
        );

        let deep = format!("kind: Policy\nspec:\n  document: {}\n", "[".repeat(10_000));
        let f = parse(&deep);
        assert_eq!(f.errors.len(), 1, "{:?}", f.errors);
        assert!(
            f.errors[0].message.contains("recursion limit"),
            "{}",
            f.errors[0].message
        );
    }

    #[test]
    fn messages_lose_the_trailing_position_only() {
        assert_eq!(clean_message("x at line 3 column 4"), "x");
        assert_eq!(
            clean_message("found x at line 2 column 1, while scanning"),
            "found x, while scanning"
        );
        assert_eq!(clean_message("what at line noon"), "what at line noon");
    }
}
