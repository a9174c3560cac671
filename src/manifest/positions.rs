//! Where each field of a YAML (or JSON) text was written, so that semantic findings can
//! point at `file:line:column`.
//!
//! serde gives positions only for the errors it finds itself; for the checks we make after
//! deserializing we walk the YAML event stream once (yaml-rust2, which hands out a marker
//! with every event) and record, per document, the position of every node under a path such
//! as `spec.policies[2].name`. Duplicate mapping keys are found here too: serde_yaml lets a
//! later key silently win inside an untyped map (a policy document), which would hide an edit.
//!
//! This never expands aliases (an alias is recorded where it is written), so an alias bomb
//! costs nothing here. yaml-rust2 refuses deep nesting on its own; on any scan error the index
//! keeps what it has and lookups fall back to the nearest known ancestor.

use std::collections::{HashMap, HashSet};

use yaml_rust2::parser::{Event, Parser};
use yaml_rust2::scanner::Marker;

/// A 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub const START: Pos = Pos { line: 1, column: 1 };

    fn from_marker(m: Marker) -> Pos {
        // yaml-rust2 markers: 1-based line, 0-based column (in characters).
        Pos {
            line: m.line().max(1),
            column: m.col() + 1,
        }
    }
}

/// Position of one node: its key (when it is a mapping value) and its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub key: Option<Pos>,
    pub value: Pos,
}

/// All positions of one YAML document.
#[derive(Debug, Clone)]
pub struct DocIndex {
    pub start: Pos,
    entries: HashMap<String, Entry>,
    /// `(path, position of the repeated key)` for every key written twice in one mapping.
    pub duplicate_keys: Vec<(String, Pos)>,
}

impl Default for DocIndex {
    /// An index that knows nothing: every lookup answers the start of the file.
    fn default() -> Self {
        DocIndex {
            start: Pos::START,
            entries: HashMap::new(),
            duplicate_keys: Vec::new(),
        }
    }
}

impl DocIndex {
    /// The value's position at `path`, else the nearest ancestor's, else the document start.
    pub fn value(&self, path: &str) -> Pos {
        self.lookup(path).map(|e| e.value).unwrap_or(self.start)
    }

    /// The key's position at `path` (falls back like [`DocIndex::value`]).
    pub fn key(&self, path: &str) -> Pos {
        self.lookup(path)
            .map(|e| e.key.unwrap_or(e.value))
            .unwrap_or(self.start)
    }

    /// Whether `path` was written in the text.
    pub fn has(&self, path: &str) -> bool {
        self.entries.contains_key(path)
    }

    fn lookup(&self, path: &str) -> Option<Entry> {
        let mut p = path;
        loop {
            if let Some(e) = self.entries.get(p) {
                return Some(*e);
            }
            p = parent_path(p)?;
        }
    }
}

/// `a.b[2].c` -> `a.b[2]` -> `a.b` -> `a` -> `` -> None.
fn parent_path(p: &str) -> Option<&str> {
    if p.is_empty() {
        return None;
    }
    if p.ends_with(']')
        && let Some(i) = p.rfind('[')
    {
        return Some(&p[..i]);
    }
    match p.rfind('.') {
        Some(i) => Some(&p[..i]),
        None => Some(""),
    }
}

/// Join a mapping key onto a path.
pub fn join_key(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_string()
    } else {
        format!("{parent}.{key}")
    }
}

enum Frame {
    Map {
        path: String,
        expect_key: bool,
        pending: Option<(String, Pos)>,
        keys: HashSet<String>,
        first_key_seen: bool,
    },
    Seq {
        path: String,
        next: usize,
    },
    /// Inside a complex (collection) mapping key: ignored.
    Skip,
}

/// Index every document of `text`. Never fails; see the module docs.
pub fn index(text: &str) -> Vec<DocIndex> {
    let mut docs: Vec<DocIndex> = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    let mut parser = Parser::new_from_str(text);
    // A scan error ends the walk: the index keeps what it has (see the module docs).
    while let Ok((ev, mark)) = parser.next_token() {
        let pos = Pos::from_marker(mark);
        match ev {
            Event::StreamEnd => break,
            Event::DocumentStart => {
                stack.clear();
                docs.push(DocIndex {
                    start: pos,
                    ..DocIndex::default()
                });
            }
            Event::DocumentEnd | Event::StreamStart | Event::Nothing => {}
            Event::Scalar(text, ..) => {
                let Some(doc) = docs.last_mut() else { continue };
                node(doc, &mut stack, pos, Some(text), None);
            }
            Event::Alias(_) => {
                let Some(doc) = docs.last_mut() else { continue };
                node(doc, &mut stack, pos, None, None);
            }
            Event::MappingStart(..) => {
                let Some(doc) = docs.last_mut() else { continue };
                node(doc, &mut stack, pos, None, Some(true));
            }
            Event::SequenceStart(..) => {
                let Some(doc) = docs.last_mut() else { continue };
                node(doc, &mut stack, pos, None, Some(false));
            }
            Event::MappingEnd | Event::SequenceEnd => {
                let was_skip = matches!(stack.pop(), Some(Frame::Skip));
                if was_skip {
                    // A complex key ended: the mapping now expects its value.
                    if let Some(Frame::Map {
                        expect_key,
                        pending,
                        ..
                    }) = stack.last_mut()
                        && *expect_key
                    {
                        *expect_key = false;
                        *pending = Some(("?".to_string(), pos));
                    }
                }
            }
        }
    }
    // yaml-rust2 marks an implicit document's start after its first token; the root node's
    // position (its first key, for a mapping) is where a reader looks.
    for d in &mut docs {
        if let Some(root) = d.entries.get("") {
            d.start = root.value;
        }
    }
    docs
}

/// A node starts: a scalar/alias (`collection` None) or a mapping (`Some(true)`) or a sequence.
fn node(
    doc: &mut DocIndex,
    stack: &mut Vec<Frame>,
    pos: Pos,
    scalar: Option<String>,
    collection: Option<bool>,
) {
    let (path, key_pos) = match stack.last_mut() {
        None => (String::new(), None),
        Some(Frame::Skip) => {
            if collection.is_some() {
                stack.push(Frame::Skip);
            }
            return;
        }
        Some(Frame::Seq { path, next }) => {
            let p = format!("{path}[{next}]");
            *next += 1;
            (p, None)
        }
        Some(Frame::Map {
            path,
            expect_key,
            pending,
            keys,
            first_key_seen,
        }) => {
            if *expect_key {
                // This node is a key.
                if !*first_key_seen {
                    *first_key_seen = true;
                    // A block mapping's start marker sits after its first key: use the key.
                    if let Some(e) = doc.entries.get_mut(path.as_str())
                        && pos < e.value
                    {
                        e.value = pos;
                    }
                }
                match (scalar, collection) {
                    (Some(k), None) => {
                        if !keys.insert(k.clone()) {
                            doc.duplicate_keys.push((join_key(path, &k), pos));
                        }
                        *pending = Some((k, pos));
                        *expect_key = false;
                    }
                    (None, None) => {
                        // An alias used as a key.
                        *pending = Some(("*".to_string(), pos));
                        *expect_key = false;
                    }
                    (_, Some(_)) => stack.push(Frame::Skip),
                }
                return;
            }
            *expect_key = true;
            let (k, kp) = pending.take().unwrap_or_else(|| ("?".to_string(), pos));
            (join_key(path, &k), Some(kp))
        }
    };
    doc.entries.entry(path.clone()).or_insert(Entry {
        key: key_pos,
        value: pos,
    });
    match collection {
        Some(true) => stack.push(Frame::Map {
            path,
            expect_key: true,
            pending: None,
            keys: HashSet::new(),
            first_key_seen: false,
        }),
        Some(false) => stack.push(Frame::Seq { path, next: 0 }),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
apiVersion: immctl/v1
kind: Role
metadata:
  name: deployer
spec:
  policies:
    - name: a
    - {name: b, type: System}
---
kind: Policy
spec:
  document: {\"Version\": \"1\"}
";

    fn p(line: usize, column: usize) -> Pos {
        Pos { line, column }
    }

    #[test]
    fn paths_map_to_values_and_keys() {
        let docs = index(TEXT);
        assert_eq!(docs.len(), 2);
        let d = &docs[0];
        assert_eq!(d.value("kind"), p(2, 7));
        assert_eq!(d.key("kind"), p(2, 1));
        assert_eq!(d.value("metadata.name"), p(4, 9));
        assert_eq!(d.value("spec.policies[0].name"), p(7, 13));
        assert_eq!(d.value("spec.policies[1].type"), p(8, 23));
        assert_eq!(d.value("spec.policies[1]"), p(8, 7));
        // A block mapping value points at its first key.
        assert_eq!(d.value("metadata"), p(4, 3));
        assert_eq!(docs[1].value("kind"), p(10, 7));
        assert_eq!(docs[1].value("spec.document.Version"), p(12, 25));
    }

    #[test]
    fn unknown_paths_fall_back_to_the_nearest_ancestor() {
        let docs = index(TEXT);
        assert_eq!(docs[0].value("spec.policies[0].type"), p(7, 7));
        assert_eq!(docs[0].value("nothing.here"), docs[0].start);
    }

    #[test]
    fn duplicate_keys_are_reported_with_their_position() {
        let docs = index("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n");
        let mut dups = docs[0].duplicate_keys.clone();
        dups.sort();
        assert_eq!(
            dups,
            vec![("a".to_string(), p(5, 1)), ("b.c".to_string(), p(4, 3))]
        );
    }

    #[test]
    fn json_text_is_indexed_too() {
        let docs = index("{\n\t\"Statement\": [\n\t\t{\"Effect\": \"Allow\"}\n\t]\n}\n");
        assert_eq!(docs[0].value("Statement[0].Effect"), p(3, 14));
    }

    #[test]
    fn garbage_never_panics() {
        for t in [
            "",
            "{",
            "a: [",
            "? [a, b]\n: c\n",
            "*x",
            "- &a [*a]\n",
            "\u{0}\u{1}",
        ] {
            let _ = index(t);
        }
    }
}
