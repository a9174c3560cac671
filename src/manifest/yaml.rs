//! YAML text -> a tree of positioned nodes, and a serde `Deserializer` over that tree.
//!
//! Why not `serde_yaml::from_str` straight into the manifest types: serde_yaml reports a
//! position only for the first error it meets, loses positions for everything we check after
//! deserializing (a bad action deep in a policy document), places a duplicate key at the start
//! of the document, and expands aliases with a budget that still lets a quadratic alias bomb
//! through. Here one parser (yaml-rust2's event stream) builds one tree in which every node
//! knows its `line:column`; the typed manifest structs are then deserialized from that tree
//! (no untyped intermediate that forgets where things were), and later checks look positions
//! up in the same tree by path.
//!
//! Hostile input is refused while the tree is built, before anything else sees it:
//! - nesting deeper than [`MAX_DEPTH`] (the parser's own limit applies to flow collections
//!   only; block nesting would otherwise be unbounded);
//! - more than [`MAX_NODES`] nodes in one file, counting every alias as the size of what it
//!   repeats (this is what stops "billion laughs": the expansion is priced before it is made);
//! - an alias to a node that contains it;
//! - tags other than the core `!!str` / `!!int` / ... ones;
//! - tabs used for indentation (yaml-rust2 tolerates one at the very start of a line);
//! - a key written twice in one mapping (reported; the first one wins).
//!
//! Scalars follow the YAML 1.2 core schema (`yes` is a string, `1` an integer, `~` null).
//! A plain scalar is accepted where a string is expected (`team: 1` is the tag value "1").
//!
//! Must not: read files (the caller hands in text) or know anything about manifest kinds.

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// Nesting deeper than this is refused. The deepest legitimate path in a manifest is about
/// ten levels (`spec.document.Statement[0].Condition.StringEquals.key[0]`).
pub const MAX_DEPTH: usize = 64;
/// More nodes than this in one file (aliases counted at the size of what they repeat) are
/// refused: a 1 MiB manifest of ordinary YAML has well under 100 000.
pub const MAX_NODES: usize = 200_000;

/// A 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub const START: Pos = Pos { line: 1, column: 1 };

    fn from_marker(m: &Marker) -> Pos {
        // yaml-rust2 markers: 1-based line, 0-based column (in characters).
        Pos {
            line: m.line().max(1),
            column: m.col() + 1,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// One node of a document.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the node starts (a block mapping: its first key).
    pub pos: Pos,
    pub value: NodeValue,
}

#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    /// `plain` is false for quoted and block scalars (and `!!str`): those are always strings.
    Scalar {
        text: String,
        plain: bool,
    },
    Seq(Vec<Node>),
    /// Keys in the order written; duplicates already removed (and reported).
    Map(Vec<(Node, Node)>),
}

/// A plain scalar resolved by the YAML 1.2 core schema.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolved<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    Str(&'a str),
}

/// One step of a path into a node tree.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

impl From<&str> for Seg {
    fn from(s: &str) -> Seg {
        Seg::Key(s.to_string())
    }
}
impl From<usize> for Seg {
    fn from(i: usize) -> Seg {
        Seg::Index(i)
    }
}

/// `spec.policies[2].name`
pub fn path_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => {
                s.push_str(&format!("[{i}]"));
            }
        }
    }
    s
}

impl Node {
    /// The resolved value of a scalar; `None` for collections.
    pub fn resolved(&self) -> Option<Resolved<'_>> {
        match &self.value {
            NodeValue::Scalar { text, plain: true } => Some(resolve_plain(text)),
            NodeValue::Scalar { text, plain: false } => Some(Resolved::Str(text)),
            _ => None,
        }
    }

    /// The text of a scalar that is not null (any scalar can serve as a string).
    pub fn as_str(&self) -> Option<&str> {
        match (&self.value, self.resolved()) {
            (_, Some(Resolved::Null)) => None,
            (NodeValue::Scalar { text, .. }, _) => Some(text),
            _ => None,
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self.resolved(), Some(Resolved::Null))
    }

    /// The value under `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            NodeValue::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The key node of `key` in a mapping (where the key itself is written).
    pub fn key_node(&self, key: &str) -> Option<&Node> {
        match &self.value {
            NodeValue::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(k, _)| k),
            _ => None,
        }
    }

    fn step(&self, seg: &Seg) -> Option<&Node> {
        match (seg, &self.value) {
            (Seg::Key(k), _) => self.get(k),
            (Seg::Index(i), NodeValue::Seq(items)) => items.get(*i),
            _ => None,
        }
    }

    /// The node at `path`, if it was written.
    pub fn at(&self, path: &[Seg]) -> Option<&Node> {
        let mut n = self;
        for seg in path {
            n = n.step(seg)?;
        }
        Some(n)
    }

    /// Position of the node at `path`, else of the deepest ancestor that was written.
    pub fn pos_at(&self, path: &[Seg]) -> Pos {
        let mut n = self;
        for seg in path {
            match n.step(seg) {
                Some(next) => n = next,
                None => break,
            }
        }
        n.pos
    }

    /// Position of the key of the last segment of `path` (when it is a mapping key that was
    /// written), else like [`Node::pos_at`]. Used for "unknown element" findings.
    pub fn key_pos_at(&self, path: &[Seg]) -> Pos {
        if let Some((Seg::Key(k), parent)) = path.split_last()
            && let Some(p) = self.at(parent)
            && let Some(key) = p.key_node(k)
        {
            return key.pos;
        }
        self.pos_at(path)
    }
}

impl Node {
    /// Remove the node at `path` (a mapping entry or a list item). Used to go on checking a
    /// document after a schema error, so that one run reports every unknown field.
    pub fn remove(&mut self, path: &[Seg]) -> bool {
        let Some((last, parent)) = path.split_last() else {
            return false;
        };
        let mut n = self;
        for seg in parent {
            let next = match (seg, &mut n.value) {
                (Seg::Key(k), NodeValue::Map(entries)) => entries
                    .iter_mut()
                    .find(|(key, _)| key.as_str() == Some(k))
                    .map(|(_, v)| v),
                (Seg::Index(i), NodeValue::Seq(items)) => items.get_mut(*i),
                _ => None,
            };
            match next {
                Some(x) => n = x,
                None => return false,
            }
        }
        match (last, &mut n.value) {
            (Seg::Key(k), NodeValue::Map(entries)) => {
                let before = entries.len();
                entries.retain(|(key, _)| key.as_str() != Some(k));
                entries.len() != before
            }
            (Seg::Index(i), NodeValue::Seq(items)) if *i < items.len() => {
                items.remove(*i);
                true
            }
            _ => false,
        }
    }
}

/// YAML 1.2 core schema resolution of a plain scalar.
pub fn resolve_plain(text: &str) -> Resolved<'_> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Resolved::Null,
        "true" | "True" | "TRUE" => return Resolved::Bool(true),
        "false" | "False" | "FALSE" => return Resolved::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Resolved::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Resolved::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Resolved::Float(f64::NAN),
        _ => {}
    }
    let digits = |s: &str, radix: u32| !s.is_empty() && s.chars().all(|c| c.is_digit(radix));
    if let Some(hex) = text.strip_prefix("0x") {
        if digits(hex, 16) {
            return match i64::from_str_radix(hex, 16) {
                Ok(v) => Resolved::Int(v),
                Err(_) => match u64::from_str_radix(hex, 16) {
                    Ok(v) => Resolved::UInt(v),
                    Err(_) => Resolved::Str(text),
                },
            };
        }
        return Resolved::Str(text);
    }
    if let Some(oct) = text.strip_prefix("0o") {
        if digits(oct, 8) {
            return match i64::from_str_radix(oct, 8) {
                Ok(v) => Resolved::Int(v),
                Err(_) => Resolved::Str(text),
            };
        }
        return Resolved::Str(text);
    }
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    if digits(unsigned, 10) {
        if let Ok(v) = text.parse::<i64>() {
            return Resolved::Int(v);
        }
        if let Ok(v) = text.trim_start_matches('+').parse::<u64>() {
            return Resolved::UInt(v);
        }
        // Too large for 64 bits: a float, as YAML 1.2 implementations do.
        return text
            .parse::<f64>()
            .map(Resolved::Float)
            .unwrap_or(Resolved::Str(text));
    }
    if is_float(unsigned)
        && let Ok(v) = text.parse::<f64>()
    {
        return Resolved::Float(v);
    }
    Resolved::Str(text)
}

/// `[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?` or `\.[0-9]+([eE][-+]?[0-9]+)?` (sign stripped).
fn is_float(s: &str) -> bool {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let mantissa_ok = match mantissa.split_once('.') {
        Some((int, frac)) => {
            (!int.is_empty() || !frac.is_empty())
                && int.chars().all(|c| c.is_ascii_digit())
                && frac.chars().all(|c| c.is_ascii_digit())
        }
        None => !mantissa.is_empty() && mantissa.chars().all(|c| c.is_ascii_digit()),
    };
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
    });
    // A plain integer is not a float here (handled before); `1.` and `.5` are.
    mantissa_ok && exp_ok && (s.contains('.') || exp.is_some())
}

/// What went wrong while building the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProblemKind {
    /// The text is not YAML (the parser's message).
    Syntax,
    /// Nesting deeper than [`MAX_DEPTH`].
    TooDeep,
    /// More than [`MAX_NODES`] nodes, aliases counted at their expanded size.
    TooManyNodes,
    /// An alias inside the node it names.
    RecursiveAlias,
    /// A tag we do not support (anything but the core `!!` tags).
    UnsupportedTag,
    /// A tab in the indentation of a line.
    Tab,
    /// A key written twice in one mapping (not fatal: the first one is kept).
    DuplicateKey,
    /// A mapping key that is not a scalar (`? [a, b]`).
    ComplexKey,
}

/// One problem, at the place it was found.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub pos: Pos,
    pub message: String,
    /// The parse stopped here: nothing after it was read.
    pub fatal: bool,
}

/// One document of a file.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Where the document starts.
    pub start: Pos,
    pub root: Node,
}

impl Document {
    /// `---` with nothing after it (or only comments).
    pub fn is_empty(&self) -> bool {
        self.root.is_null()
    }
}

/// The result of parsing one text: the documents that were complete, and every problem. When
/// a fatal problem stops the parse, the documents before it are still returned.
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub documents: Vec<Document>,
    pub problems: Vec<Problem>,
}

enum Frame {
    Seq {
        pos: Pos,
        items: Vec<Node>,
        anchor: usize,
        flow: bool,
    },
    Map {
        pos: Option<Pos>,
        entries: Vec<(Node, Node)>,
        pending_key: Option<Node>,
        /// The key being skipped because it repeats an earlier one.
        skip_value: bool,
        keys: HashSet<String>,
        anchor: usize,
        flow: bool,
        start: Pos,
    },
}

struct Builder<'t> {
    lines: Vec<&'t str>,
    stack: Vec<Frame>,
    /// anchor id -> (node, its size in nodes, its height)
    anchors: HashMap<usize, (Node, usize, usize)>,
    /// Anchors whose node is still open (an alias to one of them is recursive).
    open_anchors: HashSet<usize>,
    nodes: usize,
    aliases_seen: bool,
    problems: Vec<Problem>,
    tab_lines: HashSet<usize>,
}

/// Parse `text` into documents. Never panics on any input; see the module docs for what is
/// refused.
pub fn parse(text: &str) -> Parsed {
    let mut b = Builder {
        lines: super::diagnostic::split_lines(text),
        stack: Vec::new(),
        anchors: HashMap::new(),
        open_anchors: HashSet::new(),
        nodes: 0,
        aliases_seen: false,
        problems: Vec::new(),
        tab_lines: HashSet::new(),
    };
    let mut out = Parsed::default();
    let mut parser = Parser::new_from_str(text);
    let mut doc_start = Pos::START;
    let mut doc_root: Option<Node> = None;
    loop {
        let (event, mark) = match parser.next_token() {
            Ok(x) => x,
            Err(e) => {
                let pos = Pos::from_marker(e.marker());
                let (kind, pos, message) = syntax_problem(e.info(), &b, pos);
                b.fatal(kind, pos, message);
                break;
            }
        };
        let pos = Pos::from_marker(&mark);
        let result = match event {
            Event::StreamEnd => break,
            Event::StreamStart | Event::Nothing => Ok(None),
            Event::DocumentStart => {
                b.stack.clear();
                b.anchors.clear();
                b.open_anchors.clear();
                doc_start = pos;
                doc_root = None;
                Ok(None)
            }
            Event::DocumentEnd => {
                let root = doc_root.take().unwrap_or(Node {
                    pos: doc_start,
                    value: NodeValue::Scalar {
                        text: String::new(),
                        plain: true,
                    },
                });
                out.documents.push(Document {
                    start: doc_start,
                    root,
                });
                Ok(None)
            }
            Event::Scalar(text, style, anchor, tag) => b.scalar(pos, text, style, anchor, tag),
            Event::Alias(id) => b.alias(pos, id),
            Event::SequenceStart(anchor, tag) => b.start(pos, anchor, tag, false).map(|_| None),
            Event::MappingStart(anchor, tag) => b.start(pos, anchor, tag, true).map(|_| None),
            Event::SequenceEnd | Event::MappingEnd => b.end(),
        };
        match result {
            Ok(Some(node)) => {
                // A complete node with no open parent is the document root.
                doc_root = Some(node);
            }
            Ok(None) => {}
            Err(()) => break,
        }
    }
    b.problems.sort_by_key(|p| p.pos);
    out.problems = b.problems;
    out
}

/// The parser's complaint in our terms: a tab makes it a tab problem (pointed at the tab),
/// the parser's own nesting limit (flow collections) a depth problem, and the end of the text
/// is said out loud (there is no line to show there).
fn syntax_problem(info: &str, b: &Builder<'_>, pos: Pos) -> (ProblemKind, Pos, String) {
    if info.contains("recursion limit") {
        return (
            ProblemKind::TooDeep,
            pos,
            "YAML nested too deeply (the parser's limit for [ ] and { } collections)".into(),
        );
    }
    let mut msg = info.to_string();
    if let Some(tab) = b.tab_near(pos, info.contains("tab")) {
        msg.push_str("; a tab here: YAML indentation must use spaces");
        return (ProblemKind::Tab, tab, msg);
    }
    let last_line = b.lines.len();
    if pos.line > last_line {
        msg.push_str(" (at the end of the file: look for an unclosed bracket or quote above)");
    }
    (ProblemKind::Syntax, pos, msg)
}

impl Builder<'_> {
    fn line(&self, n: usize) -> Option<&str> {
        self.lines.get(n.checked_sub(1)?).copied()
    }

    /// The tab a syntax error is most likely about: one on the error's line, or (when the
    /// parser names a tab) the first one on the next lines, where it stopped a scalar.
    fn tab_near(&self, pos: Pos, named: bool) -> Option<Pos> {
        let on_line = |n: usize| {
            self.line(n)?.chars().position(|c| c == '\t').map(|i| Pos {
                line: n,
                column: i + 1,
            })
        };
        if let Some(p) = on_line(pos.line) {
            return Some(p);
        }
        if named {
            return (pos.line + 1..=pos.line + 3).find_map(on_line);
        }
        None
    }

    fn fatal(&mut self, kind: ProblemKind, pos: Pos, message: String) {
        self.problems.push(Problem {
            kind,
            pos,
            message,
            fatal: true,
        });
    }

    fn depth(&self) -> usize {
        self.stack.len()
    }

    /// Count `n` more nodes; refuse past the budget.
    fn spend(&mut self, n: usize, pos: Pos, alias: bool) -> Result<(), ()> {
        self.nodes = self.nodes.saturating_add(n);
        self.aliases_seen |= alias;
        if self.nodes > MAX_NODES {
            let message = if self.aliases_seen {
                format!(
                    "the file expands past {MAX_NODES} YAML nodes, counting each alias as \
                     the size of what it repeats (a YAML alias bomb?)"
                )
            } else {
                format!("more than {MAX_NODES} YAML nodes in one file; split the file")
            };
            self.fatal(ProblemKind::TooManyNodes, pos, message);
            return Err(());
        }
        Ok(())
    }

    fn in_flow(&self) -> bool {
        match self.stack.last() {
            Some(Frame::Seq { flow, .. }) | Some(Frame::Map { flow, .. }) => *flow,
            None => false,
        }
    }

    /// A node in block context whose line is indented with a tab.
    fn check_tab(&mut self, pos: Pos) {
        if self.in_flow() || self.tab_lines.contains(&pos.line) {
            return;
        }
        let Some(line) = self.line(pos.line) else {
            return;
        };
        let indent: Vec<char> = line
            .chars()
            .take(pos.column.saturating_sub(1))
            .take_while(|c| matches!(c, ' ' | '\t' | '-' | '?' | ':'))
            .collect();
        if let Some(i) = indent.iter().position(|c| *c == '\t') {
            self.tab_lines.insert(pos.line);
            self.problems.push(Problem {
                kind: ProblemKind::Tab,
                pos: Pos {
                    line: pos.line,
                    column: i + 1,
                },
                message: "tab in indentation: YAML indentation must use spaces".into(),
                fatal: false,
            });
        }
    }

    fn check_tag(&mut self, tag: &Option<Tag>, pos: Pos) -> Result<Option<&'static str>, ()> {
        let Some(tag) = tag else { return Ok(None) };
        if tag.handle == "tag:yaml.org,2002:" {
            let core = match tag.suffix.as_str() {
                "str" => "str",
                "int" => "int",
                "float" => "float",
                "bool" => "bool",
                "null" => "null",
                "map" => "map",
                "seq" => "seq",
                _ => "",
            };
            if !core.is_empty() {
                return Ok(Some(core));
            }
        }
        self.problems.push(Problem {
            kind: ProblemKind::UnsupportedTag,
            pos,
            message: format!(
                "unsupported YAML tag `{}{}`: manifests use plain YAML (only the core `!!str`, \
                 `!!int`, ... tags)",
                if tag.handle == "tag:yaml.org,2002:" {
                    "!!"
                } else {
                    &tag.handle
                },
                tag.suffix
            ),
            fatal: true,
        });
        Err(())
    }

    fn scalar(
        &mut self,
        pos: Pos,
        text: String,
        style: TScalarStyle,
        anchor: usize,
        tag: Option<Tag>,
    ) -> Result<Option<Node>, ()> {
        self.check_tab(pos);
        let core = self.check_tag(&tag, pos)?;
        self.spend(1, pos, false)?;
        let plain = matches!(style, TScalarStyle::Plain) && core != Some("str");
        let node = Node {
            pos,
            value: NodeValue::Scalar { text, plain },
        };
        if anchor > 0 {
            self.spend(1, pos, false)?;
            self.anchors.insert(anchor, (node.clone(), 1, 0));
        }
        self.add(node)
    }

    fn alias(&mut self, pos: Pos, id: usize) -> Result<Option<Node>, ()> {
        self.check_tab(pos);
        if self.open_anchors.contains(&id) {
            self.fatal(
                ProblemKind::RecursiveAlias,
                pos,
                "this alias refers to a node that contains it".into(),
            );
            return Err(());
        }
        let Some((node, size, height)) = self.anchors.get(&id).cloned() else {
            // The parser refuses unknown anchors itself; be safe anyway.
            self.fatal(
                ProblemKind::Syntax,
                pos,
                "alias to an unknown anchor".into(),
            );
            return Err(());
        };
        if self.depth() + height >= MAX_DEPTH {
            self.fatal(
                ProblemKind::TooDeep,
                pos,
                format!("this alias nests the document deeper than {MAX_DEPTH} levels"),
            );
            return Err(());
        }
        self.spend(size, pos, true)?;
        self.add(node)
    }

    fn start(&mut self, pos: Pos, anchor: usize, tag: Option<Tag>, map: bool) -> Result<(), ()> {
        // Inside a flow collection everything is flow; only a collection opened in block
        // context needs a look at its first character (at most a few per line, so looking
        // up the column stays linear even on a 1 MiB line).
        let flow = self.in_flow()
            || self
                .line(pos.line)
                .and_then(|l| l.chars().nth(pos.column.saturating_sub(1)))
                .is_some_and(|c| c == '[' || c == '{');
        if flow || !map {
            self.check_tab(pos);
        }
        self.check_tag(&tag, pos)?;
        if self.depth() >= MAX_DEPTH {
            self.fatal(
                ProblemKind::TooDeep,
                pos,
                format!("YAML nested deeper than {MAX_DEPTH} levels"),
            );
            return Err(());
        }
        self.spend(1, pos, false)?;
        if anchor > 0 {
            self.open_anchors.insert(anchor);
        }
        self.stack.push(if map {
            Frame::Map {
                // A block mapping's marker sits after its first key; use that key's position.
                pos: flow.then_some(pos),
                entries: Vec::new(),
                pending_key: None,
                skip_value: false,
                keys: HashSet::new(),
                anchor,
                flow,
                start: pos,
            }
        } else {
            Frame::Seq {
                pos,
                items: Vec::new(),
                anchor,
                flow,
            }
        });
        Ok(())
    }

    fn end(&mut self) -> Result<Option<Node>, ()> {
        let Some(frame) = self.stack.pop() else {
            return Ok(None);
        };
        let (node, anchor) = match frame {
            Frame::Seq {
                pos, items, anchor, ..
            } => (
                Node {
                    pos,
                    value: NodeValue::Seq(items),
                },
                anchor,
            ),
            Frame::Map {
                pos,
                entries,
                anchor,
                start,
                ..
            } => (
                Node {
                    pos: pos.unwrap_or(start),
                    value: NodeValue::Map(entries),
                },
                anchor,
            ),
        };
        if anchor > 0 {
            self.open_anchors.remove(&anchor);
            let (size, height) = measure(&node);
            // Keeping a copy for later aliases costs as much as the node itself.
            self.spend(size, node.pos, false)?;
            self.anchors.insert(anchor, (node.clone(), size, height));
        }
        self.add(node)
    }

    /// Attach a complete node to its parent; return it when it is a document root.
    fn add(&mut self, node: Node) -> Result<Option<Node>, ()> {
        let mut problem = None;
        let root = match self.stack.last_mut() {
            None => Some(node),
            Some(Frame::Seq { items, .. }) => {
                items.push(node);
                None
            }
            Some(Frame::Map {
                pos,
                entries,
                pending_key,
                skip_value,
                keys,
                ..
            }) => {
                match pending_key.take() {
                    None => {
                        // This node is a key.
                        if pos.is_none() {
                            *pos = Some(node.pos);
                        }
                        match &node.value {
                            NodeValue::Scalar { text, .. } => {
                                if !keys.insert(text.clone()) {
                                    problem = Some(Problem {
                                        kind: ProblemKind::DuplicateKey,
                                        pos: node.pos,
                                        message: format!(
                                            "key `{text}` is written twice in this mapping \
                                             (the first one is used)"
                                        ),
                                        fatal: false,
                                    });
                                    *skip_value = true;
                                }
                            }
                            _ => {
                                problem = Some(Problem {
                                    kind: ProblemKind::ComplexKey,
                                    pos: node.pos,
                                    message: "mapping keys must be scalars".into(),
                                    fatal: false,
                                });
                                *skip_value = true;
                            }
                        }
                        *pending_key = Some(node);
                    }
                    Some(key) => {
                        if std::mem::take(skip_value) {
                            // The repeated key's value is dropped.
                        } else {
                            entries.push((key, node));
                        }
                    }
                }
                None
            }
        };
        if let Some(p) = problem {
            self.problems.push(p);
        }
        Ok(root)
    }
}

/// (number of nodes, height) of a tree. Iterative: heights are bounded, but this is cheap.
fn measure(node: &Node) -> (usize, usize) {
    let mut size = 0;
    let mut height = 0;
    let mut stack = vec![(node, 0usize)];
    while let Some((n, d)) = stack.pop() {
        size += 1;
        height = height.max(d);
        match &n.value {
            NodeValue::Scalar { .. } => {}
            NodeValue::Seq(items) => stack.extend(items.iter().map(|i| (i, d + 1))),
            NodeValue::Map(entries) => {
                for (k, v) in entries {
                    stack.push((k, d + 1));
                    stack.push((v, d + 1));
                }
            }
        }
    }
    (size, height)
}

// ------------------------------------------------------------------ serde over the tree

/// What kind of mistake a deserialization error is (mapped to finding codes by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeErrorKind {
    UnknownField,
    MissingField,
    /// Wrong type, bad value, unknown variant, wrong length.
    Invalid,
    DuplicateField,
    Other,
}

/// A deserialization error with the position and path of the node it is about.
#[derive(Debug, Clone, PartialEq)]
pub struct DeError {
    pub kind: DeErrorKind,
    pub message: String,
    pub pos: Option<Pos>,
    /// Path of the offending node (for an unknown field: the field itself).
    pub path: Option<Vec<Seg>>,
    /// The field named by an unknown-field or missing-field error.
    pub field: Option<String>,
}

impl DeError {
    fn new(kind: DeErrorKind, message: String) -> Self {
        DeError {
            kind,
            message,
            pos: None,
            path: None,
            field: None,
        }
    }

    /// Fill in the place when an inner node has not already.
    fn at(mut self, pos: Pos, path: &[Seg]) -> Self {
        if self.pos.is_none() {
            self.pos = Some(pos);
            self.path = Some(path.to_vec());
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

/// What serde expected, in the manifest author's words: its primitive types name
/// themselves by their Rust names (`expected u32`, `expected i64`), which mean nothing to
/// someone writing YAML.
fn expected_in_words(exp: &dyn de::Expected) -> String {
    let text = exp.to_string();
    match integer_range(&text) {
        Some((min, max)) => format!("a whole number from {min} to {max}"),
        None if text == "f32" || text == "f64" => "a number".into(),
        None => text,
    }
}

/// The range of serde's integer type `name` (`u32`, `i64` ...), as text.
fn integer_range(name: &str) -> Option<(String, String)> {
    Some(match name {
        "u8" => ("0".into(), u8::MAX.to_string()),
        "u16" => ("0".into(), u16::MAX.to_string()),
        "u32" => ("0".into(), u32::MAX.to_string()),
        "u64" | "usize" => ("0".into(), u64::MAX.to_string()),
        "u128" => ("0".into(), u128::MAX.to_string()),
        "i8" => (i8::MIN.to_string(), i8::MAX.to_string()),
        "i16" => (i16::MIN.to_string(), i16::MAX.to_string()),
        "i32" => (i32::MIN.to_string(), i32::MAX.to_string()),
        "i64" | "isize" => (i64::MIN.to_string(), i64::MAX.to_string()),
        "i128" => (i128::MIN.to_string(), i128::MAX.to_string()),
        _ => return None,
    })
}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError::new(DeErrorKind::Other, msg.to_string())
    }
    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        // A whole number too large for any integer reaches serde as a float: say it is out
        // of range rather than "invalid type: floating point `1e23`".
        if let de::Unexpected::Float(f) = unexp
            && f.fract() == 0.0
            && integer_range(&exp.to_string()).is_some()
        {
            return DeError::new(
                DeErrorKind::Invalid,
                format!("out of range: expected {}", expected_in_words(exp)),
            );
        }
        DeError::new(
            DeErrorKind::Invalid,
            format!("invalid type: {unexp}, expected {}", expected_in_words(exp)),
        )
    }
    fn invalid_value(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        DeError::new(
            DeErrorKind::Invalid,
            format!(
                "invalid value: {unexp}, expected {}",
                expected_in_words(exp)
            ),
        )
    }
    fn invalid_length(len: usize, exp: &dyn de::Expected) -> Self {
        DeError::new(
            DeErrorKind::Invalid,
            format!("invalid length {len}, expected {exp}"),
        )
    }
    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        DeError::new(
            DeErrorKind::Invalid,
            format!("unknown value `{variant}`, expected {}", one_of(expected)),
        )
    }
    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        DeError {
            field: Some(field.to_string()),
            ..DeError::new(
                DeErrorKind::UnknownField,
                format!("unknown field `{field}`, expected {}", one_of(expected)),
            )
        }
    }
    fn missing_field(field: &'static str) -> Self {
        DeError {
            field: Some(field.to_string()),
            ..DeError::new(
                DeErrorKind::MissingField,
                format!("missing field `{field}`"),
            )
        }
    }
    fn duplicate_field(field: &'static str) -> Self {
        DeError::new(
            DeErrorKind::DuplicateField,
            format!("field `{field}` is written twice"),
        )
    }
}

fn one_of(names: &[&str]) -> String {
    match names {
        [] => "nothing here".into(),
        [one] => format!("`{one}`"),
        [a, b] => format!("`{a}` or `{b}`"),
        _ => format!(
            "one of {}",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Deserialize `T` from `node`; the error carries the position and path of the offending
/// node (`base` is the path of `node` itself).
pub fn from_node<'de, T: de::Deserialize<'de>>(
    node: &'de Node,
    base: &[Seg],
) -> Result<T, DeError> {
    T::deserialize(NodeDe {
        node,
        path: base.to_vec(),
    })
}

struct NodeDe<'de> {
    node: &'de Node,
    path: Vec<Seg>,
}

impl<'de> NodeDe<'de> {
    fn unexpected(&self) -> de::Unexpected<'de> {
        match &self.node.value {
            NodeValue::Seq(_) => de::Unexpected::Seq,
            NodeValue::Map(_) => de::Unexpected::Map,
            NodeValue::Scalar { text, .. } => match self.node.resolved() {
                Some(Resolved::Null) => de::Unexpected::Unit,
                Some(Resolved::Bool(b)) => de::Unexpected::Bool(b),
                Some(Resolved::Int(i)) => de::Unexpected::Signed(i),
                Some(Resolved::UInt(u)) => de::Unexpected::Unsigned(u),
                Some(Resolved::Float(f)) => de::Unexpected::Float(f),
                _ => de::Unexpected::Str(text),
            },
        }
    }

    fn wrap<T>(&self, r: Result<T, DeError>) -> Result<T, DeError> {
        r.map_err(|e| e.at(self.node.pos, &self.path))
    }

    fn child_key(&self, key: &str) -> Vec<Seg> {
        let mut p = self.path.clone();
        p.push(Seg::Key(key.to_string()));
        p
    }
}

macro_rules! via_any {
    ($($name:ident)*) => {
        $(fn $name<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
            self.deserialize_any(visitor)
        })*
    };
}

impl<'de> de::Deserializer<'de> for NodeDe<'de> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            NodeValue::Seq(items) => visitor.visit_seq(Seq {
                items: items.iter(),
                index: 0,
                path: &self.path,
            }),
            NodeValue::Map(entries) => visitor.visit_map(Map {
                entries: entries.iter(),
                value: None,
                parent: &self,
            }),
            NodeValue::Scalar { text, .. } => match self.node.resolved() {
                Some(Resolved::Null) => visitor.visit_unit(),
                Some(Resolved::Bool(b)) => visitor.visit_bool(b),
                Some(Resolved::Int(i)) => visitor.visit_i64(i),
                Some(Resolved::UInt(u)) => visitor.visit_u64(u),
                Some(Resolved::Float(f)) => visitor.visit_f64(f),
                _ => visitor.visit_borrowed_str(text),
            },
        };
        self.wrap(r)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match self.node.resolved() {
            Some(Resolved::Bool(b)) => visitor.visit_bool(b),
            _ => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        };
        self.wrap(r)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match self.node.resolved() {
            Some(Resolved::Int(i)) => visitor.visit_i64(i),
            Some(Resolved::UInt(u)) => visitor.visit_u64(u),
            _ => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        };
        self.wrap(r)
    }

    fn deserialize_i8<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_i64(v)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_i64(v)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_i64(v)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_i64(v)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_i64(v)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_i64(v)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_i64(v)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match self.node.resolved() {
            Some(Resolved::Int(i)) => visitor.visit_f64(i as f64),
            Some(Resolved::UInt(u)) => visitor.visit_f64(u as f64),
            Some(Resolved::Float(f)) => visitor.visit_f64(f),
            _ => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        };
        self.wrap(r)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(v)
    }

    /// Any non-null scalar serves as a string: `team: 1` is the tag value `"1"`.
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match (&self.node.value, self.node.resolved()) {
            (_, Some(Resolved::Null)) | (NodeValue::Seq(_) | NodeValue::Map(_), _) => {
                Err(de::Error::invalid_type(self.unexpected(), &visitor))
            }
            (NodeValue::Scalar { text, .. }, _) => visitor.visit_borrowed_str(text),
        };
        self.wrap(r)
    }
    fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }
    fn deserialize_char<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, DeError> {
        self.deserialize_str(v)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.node.is_null() {
            let r = visitor.visit_none();
            self.wrap(r)
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = if self.node.is_null() {
            visitor.visit_unit()
        } else {
            Err(de::Error::invalid_type(self.unexpected(), &visitor))
        };
        self.wrap(r)
    }
    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(v)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            NodeValue::Seq(items) => visitor.visit_seq(Seq {
                items: items.iter(),
                index: 0,
                path: &self.path,
            }),
            _ => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        };
        self.wrap(r)
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, v: V) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_seq(v)
    }

    /// A null (`spec:` with nothing after it) is an empty mapping.
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let r = match &self.node.value {
            NodeValue::Map(entries) => visitor.visit_map(Map {
                entries: entries.iter(),
                value: None,
                parent: &self,
            }),
            _ if self.node.is_null() => visitor.visit_map(Map {
                entries: [].iter(),
                value: None,
                parent: &self,
            }),
            _ => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        };
        self.wrap(r)
    }
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        v: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_map(v)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let r = match (&self.node.value, self.node.resolved()) {
            (NodeValue::Scalar { text, .. }, Some(r)) if r != Resolved::Null => {
                visitor.visit_enum(text.as_str().into_deserializer())
            }
            _ => Err(de::Error::invalid_type(self.unexpected(), &visitor)),
        };
        self.wrap(r)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }

    via_any!(deserialize_bytes deserialize_byte_buf);
}

struct Seq<'a, 'de> {
    items: std::slice::Iter<'de, Node>,
    index: usize,
    path: &'a [Seg],
}

impl<'de> SeqAccess<'de> for Seq<'_, 'de> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let Some(node) = self.items.next() else {
            return Ok(None);
        };
        let mut path = self.path.to_vec();
        path.push(Seg::Index(self.index));
        self.index += 1;
        seed.deserialize(NodeDe { node, path }).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct Map<'a, 'de> {
    entries: std::slice::Iter<'de, (Node, Node)>,
    value: Option<(&'de Node, Vec<Seg>)>,
    parent: &'a NodeDe<'de>,
}

impl<'de> MapAccess<'de> for Map<'_, 'de> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        let path = self.parent.child_key(key.as_str().unwrap_or("?"));
        self.value = Some((value, path.clone()));
        seed.deserialize(NodeDe { node: key, path }).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some((node, path)) => seed.deserialize(NodeDe { node, path }),
            None => Err(de::Error::custom("a mapping value without its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.entries.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    fn p(line: usize, column: usize) -> Pos {
        Pos { line, column }
    }

    fn one(text: &str) -> Node {
        let parsed = parse(text);
        assert!(parsed.problems.is_empty(), "{:?}", parsed.problems);
        assert_eq!(parsed.documents.len(), 1);
        parsed.documents.into_iter().next().unwrap().root
    }

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

    #[test]
    fn positions_of_values_keys_and_block_mappings() {
        let parsed = parse(TEXT);
        assert!(parsed.problems.is_empty());
        let d = &parsed.documents[0].root;
        let at = |path: &[Seg]| d.pos_at(path);
        assert_eq!(at(&["kind".into()]), p(2, 7));
        assert_eq!(d.key_pos_at(&["kind".into()]), p(2, 1));
        assert_eq!(at(&["metadata".into(), "name".into()]), p(4, 9));
        assert_eq!(
            at(&["metadata".into()]),
            p(4, 3),
            "a block mapping starts at its first key"
        );
        assert_eq!(
            at(&["spec".into(), "policies".into(), 0.into(), "name".into()]),
            p(7, 13)
        );
        assert_eq!(
            at(&["spec".into(), "policies".into(), 1.into(), "type".into()]),
            p(8, 23)
        );
        assert_eq!(at(&["spec".into(), "policies".into(), 1.into()]), p(8, 7));
        let d2 = &parsed.documents[1].root;
        assert_eq!(
            d2.pos_at(&["spec".into(), "document".into(), "Version".into()]),
            p(12, 25)
        );
        // Unknown paths fall back to the deepest ancestor that exists.
        assert_eq!(
            at(&["spec".into(), "policies".into(), 0.into(), "type".into()]),
            p(7, 7)
        );
    }

    #[test]
    fn documents_empty_and_comment_only_streams() {
        assert_eq!(parse("").documents.len(), 0);
        assert_eq!(parse("# nothing\n").documents.len(), 0);
        let d = parse("---\n");
        assert_eq!(d.documents.len(), 1);
        assert!(d.documents[0].is_empty());
        let d = parse("a: 1\n---\n---\nb: 2\n");
        assert_eq!(d.documents.len(), 3);
        assert!(d.documents[1].is_empty());
    }

    #[test]
    fn scalars_resolve_by_the_core_schema() {
        for (t, want) in [
            ("~", Resolved::Null),
            ("", Resolved::Null),
            ("true", Resolved::Bool(true)),
            ("yes", Resolved::Str("yes")),
            ("12", Resolved::Int(12)),
            ("-3", Resolved::Int(-3)),
            ("0x1f", Resolved::Int(31)),
            ("0o17", Resolved::Int(15)),
            ("1.5", Resolved::Float(1.5)),
            ("1e3", Resolved::Float(1000.0)),
            ("18446744073709551615", Resolved::UInt(u64::MAX)),
            ("1.2.3", Resolved::Str("1.2.3")),
            ("0x", Resolved::Str("0x")),
            ("v1", Resolved::Str("v1")),
        ] {
            assert_eq!(resolve_plain(t), want, "{t}");
        }
        assert!(matches!(resolve_plain(".nan"), Resolved::Float(f) if f.is_nan()));
    }

    #[test]
    fn duplicate_keys_are_reported_and_the_first_wins() {
        let parsed = parse("a: 1\nb:\n  c: 1\n  c: 2\na: 3\n");
        let dups: Vec<Pos> = parsed
            .problems
            .iter()
            .filter(|p| p.kind == ProblemKind::DuplicateKey)
            .map(|p| p.pos)
            .collect();
        assert_eq!(dups, vec![p(4, 3), p(5, 1)]);
        let root = &parsed.documents[0].root;
        assert_eq!(root.get("a").and_then(Node::as_str), Some("1"));
        assert_eq!(
            root.at(&["b".into(), "c".into()]).and_then(Node::as_str),
            Some("1")
        );
    }

    #[test]
    fn tabs_in_indentation_are_refused() {
        for text in [
            "\tkind: a\n",
            "a:\n\tb: 1\n",
            "\t- a\n",
            "a:\n  - b\n\t- c\n",
        ] {
            let parsed = parse(text);
            assert!(
                parsed
                    .problems
                    .iter()
                    .any(|p| matches!(p.kind, ProblemKind::Tab | ProblemKind::Syntax)
                        && p.message.contains("tab")),
                "{text:?}: {:?}",
                parsed.problems
            );
        }
        // Tabs inside flow collections and inside scalars are fine.
        assert!(parse("a: [1,\n\t2]\n").problems.is_empty());
        assert!(parse("a: \"x\ty\"\n").problems.is_empty());
    }

    #[test]
    fn alias_bombs_are_refused_before_expansion() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = i - 1;
            text.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, \
                 *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let start = std::time::Instant::now();
        let parsed = parse(&text);
        assert!(start.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(parsed.problems.len(), 1, "{:?}", parsed.problems);
        assert_eq!(parsed.problems[0].kind, ProblemKind::TooManyNodes);
        assert!(parsed.problems[0].message.contains("alias"));

        // The quadratic form: one big anchor, repeated many times.
        let mut text = String::from("big: &b [");
        text.push_str(&"1,".repeat(5000));
        text.push_str("1]\nrefs: [");
        text.push_str(&"*b,".repeat(5000));
        text.push_str("*b]\n");
        let parsed = parse(&text);
        assert_eq!(parsed.problems[0].kind, ProblemKind::TooManyNodes);
    }

    #[test]
    fn small_aliases_expand() {
        let root = one("base: &s [a, b]\nuse: *s\n");
        assert_eq!(root.get("use"), root.get("base"));
    }

    #[test]
    fn recursive_aliases_and_deep_nesting_are_refused() {
        let parsed = parse("a: &x [1, *x]\n");
        assert_eq!(parsed.problems[0].kind, ProblemKind::RecursiveAlias);
        let deep_block: String = (0..200)
            .map(|i| format!("{}k:\n", "  ".repeat(i)))
            .collect();
        let parsed = parse(&deep_block);
        assert_eq!(parsed.problems[0].kind, ProblemKind::TooDeep);
        let deep_flow = "[".repeat(100_000);
        let parsed = parse(&deep_flow);
        assert!(matches!(
            parsed.problems[0].kind,
            ProblemKind::TooDeep | ProblemKind::Syntax
        ));
    }

    #[test]
    fn custom_tags_are_refused_core_str_forces_a_string() {
        let parsed = parse("a: !foo x\n");
        assert_eq!(parsed.problems[0].kind, ProblemKind::UnsupportedTag);
        let root = one("a: !!str 12\n");
        assert_eq!(root.get("a").unwrap().resolved(), Some(Resolved::Str("12")));
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
            "a: b: c",
            "- - - - -",
            "&a &b x",
            "!!",
            "%YAML 9.9\n---\n",
            "--- |\n  \t\n",
            "{a: 1, a: 2}",
        ] {
            let _ = parse(t);
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Any text made of YAML's punctuation parses (or is refused) without a panic, and
        /// so does deserializing whatever documents come out.
        #[test]
        fn random_yaml_never_panics(tokens in proptest::collection::vec(
            proptest::sample::select(&[
                " ", "  ", "\n", "\t", "- ", ":", ": ", "[", "]", "{", "}", ",", "&a ", "*a",
                "!!str ", "!x ", "'", "\"", "a", "1", "#", "? ", "|", ">", "---\n", "...\n",
                "~", "%YAML 1.2\n", "\\", "\u{feff}", "é",
            ][..]),
            0..120,
        )) {
            let text: String = tokens.concat();
            let parsed = parse(&text);
            for d in &parsed.documents {
                let _ = from_node::<Thing>(&d.root, &[]);
                let _ = from_node::<serde_json::Value>(&d.root, &[]);
            }
        }
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, rename_all = "camelCase")]
    struct Thing {
        name: String,
        count: Option<u32>,
        items: Option<Vec<Item>>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Item {
        id: String,
    }

    fn de(text: &str) -> Result<Thing, DeError> {
        let parsed = parse(text);
        from_node(&parsed.documents[0].root, &["spec".into()])
    }

    #[test]
    fn typed_deserialization_reports_the_offending_node() {
        assert_eq!(
            de("name: x\ncount: 3\nitems:\n  - id: a\n").unwrap(),
            Thing {
                name: "x".into(),
                count: Some(3),
                items: Some(vec![Item { id: "a".into() }])
            }
        );
        let e = de("name: x\nitems:\n  - id: a\n  - idd: b\n").unwrap_err();
        assert_eq!(e.kind, DeErrorKind::UnknownField);
        assert_eq!(e.pos, Some(p(4, 5)));
        assert_eq!(path_string(&e.path.unwrap()), "spec.items[1].idd");
        assert_eq!(e.message, "unknown field `idd`, expected `id`");

        let e = de("name: x\ncount: many\n").unwrap_err();
        assert_eq!(e.kind, DeErrorKind::Invalid);
        assert_eq!(e.pos, Some(p(2, 8)));
        assert_eq!(
            e.message,
            "invalid type: string \"many\", expected a whole number from 0 to 4294967295"
        );

        let e = de("name: x\ncount: -1\n").unwrap_err();
        assert_eq!(e.pos, Some(p(2, 8)));
        assert!(e.message.ends_with("from 0 to 4294967295"), "{}", e.message);

        // Too large for any integer type, YAML reads it as a float: named as out of range.
        let e = de("name: x\ncount: 99999999999999999999999\n").unwrap_err();
        assert_eq!(e.pos, Some(p(2, 8)));
        assert_eq!(
            e.message,
            "out of range: expected a whole number from 0 to 4294967295"
        );
        // A fraction is still a wrong type.
        let e = de("name: x\ncount: 1.5\n").unwrap_err();
        assert!(
            e.message.starts_with("invalid type: floating point"),
            "{}",
            e.message
        );

        let e = de("count: 1\n").unwrap_err();
        assert_eq!(e.kind, DeErrorKind::MissingField);
        assert_eq!(e.pos, Some(p(1, 1)));

        // Any non-null scalar is a string; null is not.
        assert_eq!(de("name: 12\n").unwrap().name, "12");
        assert_eq!(de("name:\n").unwrap_err().kind, DeErrorKind::Invalid);
    }
}
