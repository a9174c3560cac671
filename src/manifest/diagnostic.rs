//! Findings about manifests (errors and warnings), each with a stable code, the place it was
//! written (`file:line:column`) and the resource address, and their rendering in the style of
//! rustc / cargo: a headline, then the source line with a caret under the column.
//!
//! The renderer reads the source file again to show the line; it never fails because of that
//! (an unreadable, huge or binary file just renders without the excerpt).

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::model::{Address, Source};

/// Error (blocks everything) or warning (reported; fails only `validate --strict`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Severity {
    Error,
    Warning,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One finding. `code` is stable (`E…` errors, `W…` warnings); see `docs/manifests.md` for the
/// list. Messages name the offending value; positions point at the offending field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnostic {
    pub code: String,
    pub severity: Severity,
    /// Where: `None` for findings about the run itself (for example "no manifests found").
    pub source: Option<Source>,
    /// Which resource, when known.
    pub address: Option<Address>,
    pub message: String,
    /// One line on how to fix it, when there is more to say than the message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn error(
        code: &str,
        source: Option<Source>,
        address: Option<Address>,
        msg: impl Into<String>,
    ) -> Self {
        Diagnostic {
            code: code.to_string(),
            severity: Severity::Error,
            source,
            address,
            message: msg.into(),
            help: None,
        }
    }

    pub fn warning(
        code: &str,
        source: Option<Source>,
        address: Option<Address>,
        msg: impl Into<String>,
    ) -> Self {
        Diagnostic {
            code: code.to_string(),
            severity: Severity::Warning,
            source,
            address,
            message: msg.into(),
            help: None,
        }
    }

    /// Add a one-line fix.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Ordering for output: findings without a place first, then by file, line, column, code.
    pub(crate) fn sort_key(&self) -> (Option<(String, usize, usize)>, String, String) {
        (
            self.source
                .as_ref()
                .map(|s| (s.file.to_string_lossy().into_owned(), s.line, s.column)),
            self.code.clone(),
            self.message.clone(),
        )
    }
}

impl fmt::Display for Diagnostic {
    /// The headline: `error[E104]: manifests/roles.yaml:14:5: ram_role.deployer: message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}[{}]: ", self.severity, self.code)?;
        if let Some(src) = &self.source {
            write!(f, "{src}: ")?;
        }
        if let Some(addr) = &self.address {
            write!(f, "{addr}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Sort findings the way they are printed: by file, then line and column.
pub fn sort_diagnostics(diags: &mut [Diagnostic]) {
    diags.sort_by_key(|d| d.sort_key());
}

/// Files larger than this are not read again to show an excerpt (the manifest size cap).
const EXCERPT_FILE_LIMIT: u64 = super::discover::MAX_FILE_BYTES;
/// Excerpt lines are cut to this many characters around the column.
const EXCERPT_WIDTH: usize = 100;

/// Write every finding: the headline, then (when the file is readable text) the source line
/// and a caret under the column, then a blank line.
pub fn render_diagnostics(diags: &[Diagnostic], out: &mut impl Write) -> io::Result<()> {
    // Each file is read and split into lines once, however many findings point into it.
    let mut files: HashMap<PathBuf, Option<SourceLines>> = HashMap::new();
    for d in diags {
        writeln!(out, "{d}")?;
        if let Some(src) = &d.source {
            let lines = files
                .entry(src.file.clone())
                .or_insert_with(|| read_small_text(&src.file).map(SourceLines::new));
            if let Some(line) = lines.as_ref().and_then(|l| l.line(src.line)) {
                write_excerpt(out, src.line, src.column, line)?;
            }
        }
        if let Some(help) = &d.help {
            writeln!(out, "  = help: {help}")?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// The lines of `text` without their breaks, as YAML counts them (and so the parser's line
/// numbers): `\r\n`, a lone `\r` and `\n` each end a line. A final break starts no line.
pub(crate) fn split_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find(['\r', '\n']) {
        lines.push(&rest[..i]);
        let width = if rest[i..].starts_with("\r\n") { 2 } else { 1 };
        rest = &rest[i + width..];
    }
    if !rest.is_empty() {
        lines.push(rest);
    }
    lines
}

/// A file's text and where each line is.
struct SourceLines {
    text: String,
    /// Byte range of each line, without its break.
    ranges: Vec<(usize, usize)>,
}

impl SourceLines {
    fn new(text: String) -> Self {
        let base = text.as_ptr() as usize;
        let ranges = split_lines(&text)
            .into_iter()
            .map(|l| {
                let start = l.as_ptr() as usize - base;
                (start, start + l.len())
            })
            .collect();
        SourceLines { text, ranges }
    }

    /// Line `n` (1-based) without its line break.
    fn line(&self, n: usize) -> Option<&str> {
        let (start, end) = *self.ranges.get(n.checked_sub(1)?)?;
        Some(&self.text[start..end])
    }
}

fn read_small_text(path: &std::path::Path) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    file.take(EXCERPT_FILE_LIMIT + 1)
        .read_to_end(&mut buf)
        .ok()?;
    if buf.len() as u64 > EXCERPT_FILE_LIMIT || buf.contains(&0) {
        return None;
    }
    let text = String::from_utf8(buf).ok()?;
    // The loader drops a byte-order mark too, so columns agree.
    Some(
        text.strip_prefix('\u{feff}')
            .map(str::to_string)
            .unwrap_or(text),
    )
}

/// ```text
///    |
/// 14 |     name: Aliyun-deployer
///    |           ^
/// ```
fn write_excerpt(
    out: &mut impl Write,
    line_no: usize,
    column: usize,
    line: &str,
) -> io::Result<()> {
    // Tabs are shown as four spaces so that the caret lines up whatever the terminal does.
    let chars: Vec<char> = line.trim_end_matches('\r').chars().collect();
    let col0 = column.saturating_sub(1).min(chars.len());
    // Long lines (minified JSON) are cut to a window around the column.
    let start = if chars.len() > EXCERPT_WIDTH {
        col0.saturating_sub(EXCERPT_WIDTH / 2)
    } else {
        0
    };
    let end = (start + EXCERPT_WIDTH).min(chars.len());
    let mut shown = String::new();
    let mut caret_pad = 0;
    if start > 0 {
        shown.push_str("...");
    }
    for (i, c) in chars[start..end].iter().enumerate() {
        if start + i == col0 {
            caret_pad = shown.chars().count();
        }
        if *c == '\t' {
            shown.push_str("    ");
        } else {
            shown.push(*c);
        }
    }
    if col0 >= end {
        caret_pad = shown.chars().count();
    }
    if end < chars.len() {
        shown.push_str("...");
    }
    let num = line_no.to_string();
    let gutter = " ".repeat(num.len());
    writeln!(out, "{gutter} |")?;
    writeln!(out, "{num} | {}", shown.trim_end())?;
    writeln!(out, "{gutter} | {}^", " ".repeat(caret_pad))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn excerpt(col: usize, line: &str) -> String {
        let mut out = Vec::new();
        write_excerpt(&mut out, 7, col, line).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn lines_end_at_crlf_cr_and_lf_as_yaml_counts_them() {
        assert_eq!(split_lines("a\r\nb\rc\nd"), ["a", "b", "c", "d"]);
        assert_eq!(split_lines("a\n\nb\n"), ["a", "", "b"]);
        assert_eq!(split_lines("\r\r"), ["", ""]);
        assert!(split_lines("").is_empty());
        let lines = SourceLines::new("x: 1\ry: 2\r\nz: 3".into());
        assert_eq!(lines.line(2), Some("y: 2"));
        assert_eq!(lines.line(3), Some("z: 3"));
        assert_eq!(lines.line(4), None);
    }

    #[test]
    fn caret_sits_under_the_column() {
        assert_eq!(excerpt(3, "a: bad"), "  |\n7 | a: bad\n  |   ^\n");
    }

    #[test]
    fn tabs_before_the_column_widen_the_caret_offset() {
        assert_eq!(excerpt(2, "\tx: 1"), "  |\n7 |     x: 1\n  |     ^\n");
    }

    #[test]
    fn long_lines_are_cut_around_the_column() {
        let line = "x".repeat(300);
        let text = excerpt(200, &line);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[1].starts_with("7 | ...x"));
        assert!(lines[1].ends_with("x..."));
        let caret = lines[2].find('^').unwrap();
        assert_eq!(caret, "7 | ...".len() + 50);
    }

    #[test]
    fn headline_names_place_and_address() {
        let d = Diagnostic::error(
            "E104",
            Some(Source {
                file: "manifests/roles.yaml".into(),
                line: 14,
                column: 5,
            }),
            Some(Address::role("deployer")),
            "boom",
        );
        assert_eq!(
            d.to_string(),
            "error[E104]: manifests/roles.yaml:14:5: ram_role.deployer: boom"
        );
    }
}
