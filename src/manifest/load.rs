//! Finding and reading manifest files, then handing their documents to `parse` and
//! `validate`; the one entry point is [`load`].
//!
//! Discovery (DESIGN.md §2): every `*.yaml` / `*.yml` under each given directory, recursively,
//! in sorted order; a file named directly is read whatever its extension (as `kubectl -f`
//! does). Hidden entries (name starting with `.`, such as `.git` or `.immctl`) are skipped, as
//! Flux and kustomize skip them. Symbolic links are followed; a directory reached twice (a
//! link cycle) is read once.
//!
//! Hostile input is refused before it is parsed: a file over [`MAX_FILE_BYTES`] is never
//! read past that size, a file with a NUL byte or invalid UTF-8 is reported as binary, and
//! more than [`MAX_FILES`] files is an error. Parsing itself is bounded by serde_yaml's
//! alias-expansion and recursion limits (see `parse`).

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::diagnostic::{Diagnostic, Severity, sort_diagnostics};
use super::model::{Desired, Source};
use super::parse;
use super::validate::{Builder, codes};

/// Where manifests are looked for when no path is given.
pub const DEFAULT_PATH: &str = "manifests";
/// Largest manifest (or `documentFile`) accepted. A RAM policy document is at most 6 KiB,
/// so a legitimate file with a hundred resources stays far below this.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Most files one run reads.
pub const MAX_FILES: usize = 10_000;

/// How to load.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Region of projects that name none.
    pub default_region: String,
}

/// The outcome of a load: the desired state (complete only when there is no error), every
/// finding of the run sorted by file and line, and the files read.
#[derive(Debug, Clone, Default)]
pub struct Loaded {
    pub desired: Desired,
    pub diagnostics: Vec<Diagnostic>,
    /// Manifest files and policy document files read, in digest order. The daemon watches them.
    pub files: Vec<PathBuf>,
    /// The paths the manifests were looked for under (the daemon watches them for new files).
    pub roots: Vec<PathBuf>,
}

impl Loaded {
    /// True when any finding is an error: nothing may be sent to the cloud then.
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Warning)
    }
}

/// A file found by discovery: the path to read and the name it has in the digest (relative
/// to the root it was found under, so the digest does not depend on how the root was spelled).
struct Found {
    path: PathBuf,
    digest_name: String,
}

/// Load every manifest under `paths` (default [`DEFAULT_PATH`]). Never panics; every problem
/// of the run is in `diagnostics`.
pub fn load(paths: &[PathBuf], opts: &LoadOptions) -> Loaded {
    let roots: Vec<PathBuf> = if paths.is_empty() {
        vec![PathBuf::from(DEFAULT_PATH)]
    } else {
        paths.iter().map(|p| tidy(p)).collect()
    };
    let mut diags = Vec::new();
    let mut found = Vec::new();
    let mut seen = BTreeSet::new();
    for root in &roots {
        discover(root, &mut found, &mut seen, &mut diags);
    }
    if found.len() > MAX_FILES {
        diags.push(Diagnostic::error(
            codes::IO,
            None,
            None,
            format!(
                "{} manifest files found; at most {MAX_FILES} are read in one run",
                found.len()
            ),
        ));
        found.truncate(MAX_FILES);
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));

    let mut builder = Builder::new(&opts.default_region);
    let mut digest_parts: Vec<(String, Vec<u8>)> = Vec::new();
    let mut files = Vec::new();
    for f in &found {
        files.push(f.path.clone());
        let bytes = match read_capped(&f.path) {
            Ok(b) => b,
            Err((code, msg)) => {
                diags.push(Diagnostic::error(code, Some(start_of(&f.path)), None, msg));
                continue;
            }
        };
        let text = match text_of(&bytes) {
            Ok(t) => t,
            Err(msg) => {
                diags.push(Diagnostic::error(
                    codes::NOT_TEXT,
                    Some(start_of(&f.path)),
                    None,
                    msg,
                ));
                continue;
            }
        };
        digest_parts.push((f.digest_name.clone(), bytes.clone()));
        let parsed = parse::parse(text);
        for e in &parsed.errors {
            let code = match e.kind {
                parse::ErrorKind::Schema => codes::SCHEMA,
                parse::ErrorKind::Syntax => codes::SYNTAX,
            };
            diags.push(Diagnostic::error(
                code,
                Some(Source {
                    file: f.path.clone(),
                    line: e.pos.line,
                    column: e.pos.column,
                }),
                None,
                e.message.clone(),
            ));
        }
        if parsed.non_empty_documents == 0 && parsed.errors.is_empty() {
            diags.push(Diagnostic::warning(
                codes::EMPTY_FILE,
                Some(start_of(&f.path)),
                None,
                "this file declares nothing",
            ));
        }
        let mut read = |p: &Path| -> Result<String, (&'static str, String)> {
            let bytes = read_capped(p)?;
            text_of(&bytes)
                .map(str::to_string)
                .map_err(|m| (codes::NOT_TEXT, m))
        };
        for doc in &parsed.documents {
            builder.document(&f.path, doc, &mut read);
        }
    }
    // Policy document files are part of what a saved plan was made from.
    for path in builder.document_files.clone() {
        if let Ok(bytes) = read_capped(&path) {
            digest_parts.push((format!("documentFile:{}", tidy(&path).display()), bytes));
            files.push(path);
        }
    }

    let nothing_found = found.is_empty();
    let resources = builder.resources;
    let (mut desired, more) = builder.finish();
    diags.extend(more);
    if nothing_found && !diags.iter().any(Diagnostic::is_error) {
        diags.push(Diagnostic::error(
            codes::NOTHING,
            None,
            None,
            format!(
                "no manifest files (*.yaml, *.yml) under {}",
                roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    } else if resources == 0 && !diags.iter().any(Diagnostic::is_error) {
        diags.push(Diagnostic::error(
            codes::NOTHING,
            None,
            None,
            "the manifests declare no resource (no Policy, Role, Project or ImmServiceRole)",
        ));
    }
    desired.digest = digest(digest_parts);
    sort_diagnostics(&mut diags);
    Loaded {
        desired,
        diagnostics: diags,
        files,
        roots,
    }
}

/// `./manifests/` -> `manifests`: the same root spelled differently reads the same way.
fn tidy(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}

fn start_of(path: &Path) -> Source {
    Source {
        file: path.to_path_buf(),
        line: 1,
        column: 1,
    }
}

fn is_manifest_name(p: &Path) -> bool {
    matches!(
        p.extension().and_then(|e| e.to_str()),
        Some("yaml") | Some("yml")
    )
}

fn is_hidden(p: &Path) -> bool {
    p.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.') && n != "." && n != "..")
}

fn discover(
    root: &Path,
    found: &mut Vec<Found>,
    seen: &mut BTreeSet<PathBuf>,
    diags: &mut Vec<Diagnostic>,
) {
    let meta = match std::fs::metadata(root) {
        Ok(m) => m,
        Err(e) => {
            diags.push(Diagnostic::error(
                codes::IO,
                None,
                None,
                format!("cannot read {}: {}", root.display(), io_reason(&e)),
            ));
            return;
        }
    };
    if meta.is_file() {
        let canonical = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        if seen.insert(canonical) {
            let name = root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            found.push(Found {
                path: root.to_path_buf(),
                digest_name: name,
            });
        }
        return;
    }
    let mut stack = vec![root.to_path_buf()];
    let mut dirs_seen = BTreeSet::new();
    while let Some(dir) = stack.pop() {
        let canonical = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
        if !dirs_seen.insert(canonical) {
            continue;
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                diags.push(Diagnostic::error(
                    codes::IO,
                    None,
                    None,
                    format!("cannot read directory {}: {}", dir.display(), io_reason(&e)),
                ));
                continue;
            }
        };
        let mut children: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
        children.sort();
        for path in children {
            if is_hidden(&path) {
                continue;
            }
            // `metadata` follows symbolic links.
            let Ok(m) = std::fs::metadata(&path) else {
                if is_manifest_name(&path) {
                    diags.push(Diagnostic::error(
                        codes::IO,
                        Some(start_of(&path)),
                        None,
                        "cannot read this file (a broken symbolic link?)",
                    ));
                }
                continue;
            };
            if m.is_dir() {
                stack.push(path);
            } else if m.is_file() && is_manifest_name(&path) {
                let canonical = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
                if seen.insert(canonical) {
                    let digest_name = path
                        .strip_prefix(root)
                        .unwrap_or(&path)
                        .to_string_lossy()
                        .into_owned();
                    found.push(Found { path, digest_name });
                }
            }
        }
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

/// Read at most [`MAX_FILE_BYTES`] (+1 to tell "too large"), never the whole of a huge file.
fn read_capped(path: &Path) -> Result<Vec<u8>, (&'static str, String)> {
    let file = std::fs::File::open(path)
        .map_err(|e| (codes::IO, format!("cannot read: {}", io_reason(&e))))?;
    if let Ok(m) = file.metadata()
        && m.len() > MAX_FILE_BYTES
    {
        return Err((codes::TOO_LARGE, too_large(m.len())));
    }
    let mut buf = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|e| (codes::IO, format!("cannot read: {}", io_reason(&e))))?;
    if buf.len() as u64 > MAX_FILE_BYTES {
        return Err((codes::TOO_LARGE, too_large(buf.len() as u64)));
    }
    Ok(buf)
}

fn too_large(n: u64) -> String {
    format!(
        "the file is larger than {} KiB ({}); manifests are limited to {} KiB, split it",
        MAX_FILE_BYTES / 1024,
        if n > MAX_FILE_BYTES + 1 {
            format!("{n} bytes")
        } else {
            "at least that".to_string()
        },
        MAX_FILE_BYTES / 1024
    )
}

/// UTF-8 text without NUL bytes (a leading byte-order mark is dropped).
fn text_of(bytes: &[u8]) -> Result<&str, String> {
    if let Some(i) = bytes.iter().position(|b| *b == 0) {
        return Err(format!(
            "this is not a text file (a NUL byte at offset {i}); manifests are UTF-8 YAML"
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line = bytes[..at].iter().filter(|b| **b == b'\n').count() + 1;
        format!("this is not UTF-8 text (invalid byte at offset {at}, line {line}); manifests are UTF-8 YAML")
    })?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// Hex SHA-256 over (name, bytes) pairs in name order; lengths are framed so that no two
/// different sets hash alike.
fn digest(mut parts: Vec<(String, Vec<u8>)>) -> String {
    parts.sort();
    let mut h = Sha256::new();
    h.update(b"immctl-manifests-v1\n");
    for (name, bytes) in &parts {
        h.update((name.len() as u64).to_be_bytes());
        h.update(name.as_bytes());
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_spelled_differently_are_the_same_root() {
        assert_eq!(tidy(Path::new("./manifests/")), PathBuf::from("manifests"));
        assert_eq!(tidy(Path::new("manifests")), PathBuf::from("manifests"));
        assert_eq!(tidy(Path::new("./")), PathBuf::from("."));
    }

    #[test]
    fn binary_and_non_utf8_text_is_refused_with_the_place() {
        assert!(text_of(b"a: 1\n\0").unwrap_err().contains("offset 5"));
        assert!(text_of(b"a: 1\nb: \xff\n").unwrap_err().contains("line 2"));
        assert_eq!(text_of("\u{feff}a: 1".as_bytes()).unwrap(), "a: 1");
    }

    #[test]
    fn the_digest_depends_on_names_and_bytes_only() {
        let a = digest(vec![
            ("x.yaml".into(), b"1".to_vec()),
            ("y.yaml".into(), b"2".to_vec()),
        ]);
        let b = digest(vec![
            ("y.yaml".into(), b"2".to_vec()),
            ("x.yaml".into(), b"1".to_vec()),
        ]);
        assert_eq!(a, b);
        assert_ne!(a, digest(vec![("x.yaml".into(), b"12".to_vec())]));
        assert_ne!(
            digest(vec![("x.yaml".into(), b"1".to_vec())]),
            digest(vec![("x.yam".into(), b"l1".to_vec())])
        );
    }
}
