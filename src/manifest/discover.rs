//! Which files are manifests, reading them safely, and the digest of what was read.
//!
//! Discovery, as a Terraform / Flux user expects it:
//! - a directory is walked recursively; files ending in `.yaml` or `.yml` are manifests;
//!   within each given path the order is the sorted relative path, so runs are
//!   deterministic whatever order the file system lists entries in;
//! - names starting with `.` (files and directories: `.git`, `.github`, editor swap files,
//!   `.immctl`) are skipped while walking, as Terraform skips hidden files and kustomize the
//!   `.git` directory; a path given explicitly is always read, whatever its name;
//! - symbolic links are followed (to files and to directories) while they stay inside the
//!   given directory (ConfigMap volumes and git-sync worktrees are built from such links);
//!   a link out of it is an error (`E001`) and is not read, since findings quote the lines
//!   of the files they are about and manifests come from pull requests: a link to
//!   `/var/run/secrets/...` must not print a token into a PR comment (kustomize refuses
//!   such links too). A tree assembled from links elsewhere is given as several paths. A
//!   link loop is an error (`E001`), a broken link with a manifest name is an error, and a
//!   file reached twice (a link and its target) is read once;
//! - a missing path is an error; a directory without manifests is a warning (`W001`).
//!
//! Reading: a file over [`MAX_FILE_BYTES`] (1 MiB) is refused without reading it (a real
//! manifest file is a few kilobytes; RAM caps a policy document at 6 KiB). The read itself is
//! capped too (the file may grow meanwhile). Text must be UTF-8; a NUL byte means binary.
//!
//! The digest ([`digest_of`] the [`file_digests`]) covers the relative path (under the given
//! root) and bytes of every file read, sorted, so `manifests`, `manifests/` and
//! `./manifests` give the same digest. Each file is hashed once.
//!
//! Must not: parse YAML (see `yaml.rs`).

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::codes;
use super::diagnostic::Diagnostic;
use super::model::Source;

/// The largest manifest (or `documentFile`) immctl reads: 1 MiB.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// The directory read when no path is given.
pub const DEFAULT_DIR: &str = "manifests";

/// Most manifest files one run reads (a path pointing at `/` by mistake must not read the
/// whole disk).
pub const MAX_FILES: usize = 10_000;

/// A manifest file to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    /// The path as shown in findings: the given path joined with the relative one.
    pub path: PathBuf,
    /// Relative to the given root, `/`-separated (the file name for a file given directly).
    pub rel: String,
}

impl ManifestFile {
    /// The directory this file was found under: the given directory, or for a file given by
    /// itself its parent (`.` when that is empty). A `documentFile` must stay inside it.
    pub fn root(&self) -> PathBuf {
        let depth = self.rel.split('/').filter(|c| !c.is_empty()).count();
        let mut root = self.path.as_path();
        for _ in 0..depth.max(1) {
            root = root.parent().unwrap_or(Path::new(""));
        }
        if root.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            root.to_path_buf()
        }
    }
}

/// Every manifest file under `roots` (empty: [`DEFAULT_DIR`]), and the problems met.
pub fn discover(roots: &[PathBuf], diags: &mut Vec<Diagnostic>) -> Vec<ManifestFile> {
    let default = [PathBuf::from(DEFAULT_DIR)];
    let roots: &[PathBuf] = if roots.is_empty() { &default } else { roots };
    let mut seen: HashSet<PathBuf> = HashSet::new();
    let mut out = Vec::new();
    for root in roots {
        let meta = match std::fs::metadata(root) {
            Ok(m) => m,
            Err(e) => {
                diags.push(Diagnostic::error(
                    codes::UNREADABLE,
                    None,
                    None,
                    format!("{}: {}", root.display(), io_reason(&e)),
                ));
                continue;
            }
        };
        if meta.is_file() {
            let name = root
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| root.display().to_string());
            push_unique(&mut out, &mut seen, root.clone(), name);
            continue;
        }
        if !meta.is_dir() {
            diags.push(Diagnostic::error(
                codes::UNREADABLE,
                None,
                None,
                format!("{}: not a file or a directory", root.display()),
            ));
            continue;
        }
        let mut found: Vec<(Vec<String>, PathBuf)> = Vec::new();
        let mut ancestors = Vec::new();
        if let Ok(c) = std::fs::canonicalize(root) {
            ancestors.push(c);
        }
        let inside = ancestors.first().cloned();
        walk(
            root,
            inside.as_deref(),
            &mut Vec::new(),
            &mut ancestors,
            &mut found,
            diags,
        );
        found.sort();
        // W001 is about the directory, not about what is new in it: a directory given twice
        // (`manifests ./manifests`) or under another given path holds manifests that were
        // all read already, and is not empty.
        let empty = found.is_empty();
        for (rel, path) in found {
            push_unique(&mut out, &mut seen, path, rel.join("/"));
        }
        if empty {
            diags.push(Diagnostic::warning(
                codes::NO_MANIFESTS,
                None,
                None,
                format!(
                    "{}: no .yaml or .yml file in this directory",
                    root.display()
                ),
            ));
        }
    }
    if out.len() > MAX_FILES {
        diags.push(Diagnostic::error(
            codes::TOO_MANY_FILES,
            None,
            None,
            format!(
                "{} manifest files found; at most {MAX_FILES} are read in one run (is the path \
                 right?)",
                out.len()
            ),
        ));
        out.truncate(MAX_FILES);
    }
    out
}

fn push_unique(
    out: &mut Vec<ManifestFile>,
    seen: &mut HashSet<PathBuf>,
    path: PathBuf,
    rel: String,
) {
    let key = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
    if seen.insert(key) {
        out.push(ManifestFile { path, rel });
    }
}

/// Where `path` resolves when that is somewhere immctl does not read: out of `root` (a
/// canonical directory), or into a hidden path of it. `None`: inside, readable. A path that
/// does not resolve counts as out. The rule for links in the walk, and for the embedded
/// emulator's seed.
pub(crate) fn link_escape(root: &Path, path: &Path) -> Option<&'static str> {
    let target = std::fs::canonicalize(path).ok();
    match target.as_deref().and_then(|c| c.strip_prefix(root).ok()) {
        None => Some("out of the directory given"),
        Some(rel) if rel.components().any(|c| is_hidden(c.as_os_str())) => {
            Some("into a hidden path of the directory given")
        }
        Some(_) => None,
    }
}

/// A hidden entry the walk skips (`.git`, `.github`). Not the `..data` and `..<timestamp>`
/// directories a Kubernetes ConfigMap volume is made of: its files are links into them.
pub(crate) fn is_hidden(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with('.') && !name.starts_with("..")
}

fn is_manifest_name(name: &str) -> bool {
    name.ends_with(".yaml") || name.ends_with(".yml")
}

fn walk(
    dir: &Path,
    inside: Option<&Path>,
    rel: &mut Vec<String>,
    ancestors: &mut Vec<PathBuf>,
    found: &mut Vec<(Vec<String>, PathBuf)>,
    diags: &mut Vec<Diagnostic>,
) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => {
            diags.push(Diagnostic::error(
                codes::UNREADABLE,
                None,
                None,
                format!("{}: {}", dir.display(), io_reason(&e)),
            ));
            return;
        }
    };
    // The entry's own type comes with the listing (no extra stat): is it a link?
    let mut names: Vec<(String, PathBuf, bool)> = entries
        .filter_map(Result::ok)
        .map(|e| {
            let is_link = e.file_type().is_ok_and(|t| t.is_symlink());
            (
                e.file_name().to_string_lossy().into_owned(),
                e.path(),
                is_link,
            )
        })
        .collect();
    names.sort();
    for (name, path, is_link) in names {
        if name.starts_with('.') {
            continue;
        }
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                // A dangling link (or a file that vanished): an error only when it would have
                // been a manifest.
                if is_manifest_name(&name) {
                    diags.push(Diagnostic::error(
                        codes::UNREADABLE,
                        None,
                        None,
                        format!("{}: {}", path.display(), io_reason(&e)),
                    ));
                }
                continue;
            }
        };
        // Only a link can lead out of the tree, or into a hidden part of it that the walk
        // skips (`x.yaml -> .git/config`, where CI keeps a token): check where each resolves.
        if is_link
            && let Some(root) = inside
            && (meta.is_dir() || is_manifest_name(&name))
            && let Some(why) = link_escape(root, &path)
        {
            diags.push(Diagnostic::error(
                codes::UNREADABLE,
                None,
                None,
                format!(
                    "{}: a symbolic link {why} ({}); it was not read. immctl reads only what \
                     lies inside the paths it is given, hidden entries excepted: pass the \
                     link's target as another path",
                    path.display(),
                    root.display()
                ),
            ));
            continue;
        }
        if meta.is_dir() {
            let canon = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
            if ancestors.contains(&canon) {
                diags.push(Diagnostic::error(
                    codes::UNREADABLE,
                    None,
                    None,
                    format!(
                        "{}: symbolic link loop (it leads back to {})",
                        path.display(),
                        canon.display()
                    ),
                ));
                continue;
            }
            ancestors.push(canon);
            rel.push(name);
            walk(&path, inside, rel, ancestors, found, diags);
            rel.pop();
            ancestors.pop();
        } else if meta.is_file() && is_manifest_name(&name) {
            let mut r = rel.clone();
            r.push(name);
            found.push((r, path));
        }
    }
}

/// Why a file could not be read, in words.
pub fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Why a file's bytes are not manifest text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    Io(String),
    /// Larger than [`MAX_FILE_BYTES`]; the size in bytes (as far as it was read).
    TooLarge(u64),
    /// Not UTF-8 text: where the first bad byte is, and whether the bytes hold a NUL (binary).
    NotText {
        line: usize,
        column: usize,
        nul: bool,
    },
}

/// Read a file with the size cap and the text checks. A UTF-8 byte-order mark is dropped.
pub fn read_text(path: &Path) -> Result<(String, Vec<u8>), ReadError> {
    let file = std::fs::File::open(path).map_err(|e| ReadError::Io(io_reason(&e)))?;
    if let Ok(meta) = file.metadata()
        && meta.len() > MAX_FILE_BYTES
    {
        return Err(ReadError::TooLarge(meta.len()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ReadError::Io(io_reason(&e)))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadError::TooLarge(bytes.len() as u64));
    }
    let text = text_of(&bytes)?;
    Ok((text, bytes))
}

/// Bytes -> text, refusing NUL bytes and invalid UTF-8 with the place of the first bad byte.
pub fn text_of(bytes: &[u8]) -> Result<String, ReadError> {
    let body = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first_nul = body.iter().position(|b| *b == 0);
    let bad_utf8 = match std::str::from_utf8(body) {
        Ok(s) if first_nul.is_none() => return Ok(s.to_string()),
        Ok(_) => usize::MAX,
        Err(e) => e.valid_up_to(),
    };
    // Like git: a NUL anywhere means binary; point at the first byte that is not text.
    let first = first_nul.map_or(bad_utf8, |n| n.min(bad_utf8));
    let prefix = String::from_utf8_lossy(&body[..first]);
    let line = prefix.matches('\n').count() + 1;
    let column = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Err(ReadError::NotText {
        line,
        column,
        nul: first_nul.is_some(),
    })
}

/// The finding for a [`ReadError`] of the manifest (or document) file `path`.
pub fn read_error_diagnostic(path: &Path, e: &ReadError) -> Diagnostic {
    let at = |line, column| {
        Some(Source {
            file: path.to_path_buf(),
            line,
            column,
        })
    };
    match e {
        ReadError::Io(reason) => Diagnostic::error(
            codes::UNREADABLE,
            None,
            None,
            format!("{}: {reason}", path.display()),
        ),
        ReadError::TooLarge(n) => Diagnostic::error(
            codes::TOO_LARGE,
            at(1, 1),
            None,
            format!(
                "file is {} bytes; manifest files are limited to {MAX_FILE_BYTES} bytes (1 MiB): \
                 split it into several files",
                n
            ),
        ),
        ReadError::NotText { line, column, nul } => Diagnostic::error(
            codes::NOT_TEXT,
            at(*line, *column),
            None,
            if *nul {
                "binary file (it holds NUL bytes; the first byte that is not text is here): \
                 manifests are UTF-8 YAML text"
                    .to_string()
            } else {
                "not valid UTF-8 from here: save the file as UTF-8".to_string()
            },
        ),
    }
}

/// Hex SHA-256 of each entry's bytes, by key. Each file is hashed once; the digest of the
/// whole set is made from these ([`digest_of`]).
///
/// Files under different given paths can share a key (`immctl reconcile team-a team-b`,
/// each with a `roles.yaml`; or two non-UTF-8 names that read alike): such a key holds the
/// SHA-256 of their digests in load order, so each of them still counts. (The last one
/// used to replace the others: an edit to `team-a/roles.yaml` left the digest as it was, and
/// a saved plan was refused as "edited by hand?" instead of as stale.)
pub fn file_digests(entries: &[(String, Vec<u8>)]) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::<String, String>::new();
    for (key, bytes) in entries {
        let file = hex::encode(Sha256::digest(bytes));
        let value = match out.remove(key) {
            None => file,
            Some(earlier) => {
                let mut h = Sha256::new();
                h.update(earlier.as_bytes());
                h.update(file.as_bytes());
                hex::encode(h.finalize())
            }
        };
        out.insert(key.clone(), value);
    }
    out
}

/// Hex SHA-256 over per-file digests in key order, each key length-prefixed so that no two
/// different sets hash alike (the file digests have a fixed length).
pub fn digest_of(files: &std::collections::BTreeMap<String, String>) -> String {
    let mut h = Sha256::new();
    for (key, file) in files {
        h.update((key.len() as u64).to_be_bytes());
        h.update(key.as_bytes());
        h.update(file.as_bytes());
    }
    hex::encode(h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_checks_name_the_first_bad_byte() {
        assert_eq!(text_of(b"a: 1\n").unwrap(), "a: 1\n");
        assert_eq!(text_of(b"\xEF\xBB\xBFa: 1\n").unwrap(), "a: 1\n");
        assert_eq!(
            text_of(b"a: 1\nbb\x00c"),
            Err(ReadError::NotText {
                line: 2,
                column: 3,
                nul: true
            })
        );
        assert_eq!(
            text_of(b"a: 1\n\xff"),
            Err(ReadError::NotText {
                line: 2,
                column: 1,
                nul: false
            })
        );
        // A NUL after the first bad byte still says binary.
        assert_eq!(
            text_of(b"\x89PNG\x00"),
            Err(ReadError::NotText {
                line: 1,
                column: 1,
                nul: true
            })
        );
        assert_eq!(
            text_of(b"\x00\xff"),
            Err(ReadError::NotText {
                line: 1,
                column: 1,
                nul: true
            })
        );
    }

    #[test]
    fn digest_ignores_entry_order_but_not_content_or_names() {
        let digest = |entries: &[(String, Vec<u8>)]| digest_of(&file_digests(entries));
        let a = ("a.yaml".to_string(), b"x".to_vec());
        let b = ("b.yaml".to_string(), b"y".to_vec());
        assert_eq!(
            digest(&[a.clone(), b.clone()]),
            digest(&[b.clone(), a.clone()])
        );
        assert_ne!(
            digest(std::slice::from_ref(&a)),
            digest(&[("a.yaml".into(), b"y".to_vec())])
        );
        assert_ne!(
            digest(std::slice::from_ref(&a)),
            digest(&[("c.yaml".into(), b"x".to_vec())])
        );
        // Length prefixes: moving a byte from the name to the content changes the digest.
        assert_ne!(
            digest(&[("ab".into(), b"c".to_vec())]),
            digest(&[("a".into(), b"bc".to_vec())])
        );
        assert_eq!(digest(&[]).len(), 64);
    }

    #[test]
    fn files_sharing_a_key_each_count_in_the_digest() {
        let digest = |entries: &[(String, Vec<u8>)]| digest_of(&file_digests(entries));
        let entry = |bytes: &[u8]| ("roles.yaml".to_string(), bytes.to_vec());
        let before = digest(&[entry(b"team-a"), entry(b"team-b")]);
        assert_ne!(before, digest(&[entry(b"team-a edited"), entry(b"team-b")]));
        assert_ne!(before, digest(&[entry(b"team-a"), entry(b"team-b edited")]));
        assert_ne!(before, digest(&[entry(b"team-b")]));
        // One file per key: the key's value is the file's own SHA-256, as before.
        assert_eq!(
            file_digests(&[entry(b"x")])["roles.yaml"],
            hex::encode(Sha256::digest(b"x"))
        );
    }
}
