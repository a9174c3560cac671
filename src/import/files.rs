//! `immctl import` on disk: file names, the header that records what import wrote, hand-edit
//! detection, atomic writes, and files whose resource is gone. The only I/O of `import`.
//!
//! # Layout and names
//!
//! One file per resource: `roles/<stem>.yaml`, `policies/<stem>.yaml`,
//! `projects/<region>/<stem>.yaml`. One file per resource keeps a hand edit (and its
//! protection from being overwritten) to that resource, and gives one small diff per
//! resource in review. The stem is the resource name itself when that is safe everywhere:
//! lower case (names that differ only in case would collide on macOS and Windows), no leading
//! or trailing `.` (hidden files are skipped by the manifest loader; Windows drops trailing
//! dots), and not a Windows device name (`con`, `nul`, `com1`...). Any other name becomes its
//! characters with `.` as `_`, then `~` and 8 hex digits of the SHA-256 of the exact name
//! (`MediaApp` -> `MediaApp~1b4f0e98`). `~` is legal in no RAM or IMM name, so a suffixed stem
//! never equals a plain one; the mapping depends on the name alone, so it never changes when
//! other resources come or go.
//!
//! # The header
//!
//! ```text
//! # immctl-import: ram_role.media-app
//! # Written by `immctl import`. Edit freely: import never overwrites a file that differs
//! # from what it wrote (unless --force). Remove these lines to make the file your own.
//! # immctl-import-sha256: <hex SHA-256 of everything below this line>
//! ```
//!
//! A file is *unmodified* when its body (after the hash line, `\r\n` read as `\n`) still
//! hashes to the recorded value; only unmodified files are rewritten. A file without the
//! header is the user's own.
//!
//! # Where a resource goes
//!
//! The output directory is read first (as the manifest loader reads it). A resource already
//! declared there by a file import wrote is updated *in that file*, wherever the user moved
//! it; one declared by a file of the user's own is never written again (that would declare it
//! twice); otherwise it goes to its default path. Files import wrote for resources that are no
//! longer imported (deleted, now another owner's) are reported and kept, never deleted.
//!
//! Every file is written atomically (a temporary file in the same directory, fsync, rename).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::{Document, Import, Selection, Skip};
use crate::manifest::{self, Address, LoadOptions, Source};

/// First header line: the address the file declares.
pub const MARK: &str = "# immctl-import: ";
/// Last header line: the hash of the body as import wrote it.
pub const HASH_MARK: &str = "# immctl-import-sha256: ";

/// Windows device names, reserved whatever the extension.
const DEVICES: &[&str] = &[
    "con", "prn", "aux", "nul", "com0", "com1", "com2", "com3", "com4", "com5", "com6", "com7",
    "com8", "com9", "lpt0", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The file stem for a resource name (see the module docs).
pub fn file_stem(name: &str) -> String {
    let first = name.split('.').next().unwrap_or(name);
    let plain = !name.is_empty()
        && name.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
        })
        && !name.starts_with('.')
        && !name.ends_with('.')
        && !DEVICES.contains(&first);
    if plain {
        return name.to_string();
    }
    let readable: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{readable}~{}", &sha256_hex(name.as_bytes())[..8])
}

/// Where the resource at `address` goes, relative to the output directory.
pub fn path_for(address: &Address) -> PathBuf {
    let a = address.as_str();
    let file = |dir: &str, name: &str| PathBuf::from(dir).join(format!("{}.yaml", file_stem(name)));
    if let Some(name) = a.strip_prefix("ram_role.") {
        file("roles", name)
    } else if let Some(name) = a.strip_prefix("ram_policy.") {
        file("policies", name)
    } else if let Some((region, name)) = a
        .strip_prefix("imm_project.")
        .and_then(|r| r.split_once('/'))
    {
        PathBuf::from("projects").join(file(region, name))
    } else {
        // Addresses come from `Address::{role, policy, project}` only.
        PathBuf::from("other").join(format!("{}.yaml", file_stem(a)))
    }
}

fn normalize(body: &str) -> String {
    body.replace("\r\n", "\n")
}

/// The whole file import writes for `doc`: header, then the document.
pub fn render_file(doc: &Document) -> String {
    let body = &doc.body;
    format!(
        "{MARK}{}\n\
         # Written by `immctl import`. Edit freely: import never overwrites a file that differs\n\
         # from what it wrote (unless --force). Remove these lines to make the file your own.\n\
         {HASH_MARK}{}\n{body}",
        doc.address,
        sha256_hex(normalize(body).as_bytes())
    )
}

/// What an existing file is, as far as import is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    /// Written by import for `address`; `edited` when the body no longer matches its hash.
    Generated { address: Address, edited: bool },
    /// No import header: the user's own file.
    Foreign,
}

/// Read the header of a file's text.
pub fn inspect(text: &str) -> Existing {
    let Some(address) = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix(MARK))
        .map(|a| Address(a.trim().to_string()))
    else {
        return Existing::Foreign;
    };
    // The hash line is the last of the leading comment lines.
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if !line.starts_with('#') {
            break;
        }
        offset += line.len();
        if let Some(recorded) = line.strip_prefix(HASH_MARK) {
            let body = &text[offset..];
            let edited = sha256_hex(normalize(body).as_bytes()) != recorded.trim();
            return Existing::Generated { address, edited };
        }
    }
    Existing::Generated {
        address,
        edited: true,
    }
}

/// What the output directory holds before the import writes anything.
#[derive(Debug, Clone, Default)]
pub struct OutDir {
    /// Files import wrote, by path: what they declare and whether they were edited since.
    pub generated: BTreeMap<PathBuf, Existing>,
    /// Every resource the manifests there declare, with where (as the loader reads them).
    pub declared: BTreeMap<Address, Source>,
    /// Errors the loader found there (resources in broken files are not in `declared`).
    pub errors: usize,
}

/// Read `out` (absent: empty) with the manifest loader, and the header of every file in it.
pub fn scan(out: &Path, default_region: &str) -> OutDir {
    let mut dir = OutDir::default();
    if !out.is_dir() {
        return dir;
    }
    let loaded = manifest::load(
        &[out.to_path_buf()],
        &LoadOptions {
            default_region: default_region.to_string(),
        },
    );
    // "Nothing declared" (an empty directory, or only the emulator's seed) is no error for the
    // loader (at most warning W001), so every error counted here is a real one.
    dir.errors = loaded.errors().count();
    let d = &loaded.desired;
    for p in d.policies.values() {
        dir.declared
            .insert(Address::policy(&p.name), p.source.clone());
    }
    for r in d.roles.values() {
        dir.declared
            .insert(Address::role(&r.name), r.source.clone());
    }
    for j in d.projects.values() {
        dir.declared
            .insert(Address::project(&j.key()), j.source.clone());
    }
    for f in &loaded.files {
        if let Ok(text) = std::fs::read_to_string(f)
            && let e @ Existing::Generated { .. } = inspect(&text)
        {
            dir.generated.insert(f.clone(), e);
        }
    }
    dir
}

/// What import does with one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A new file.
    Created,
    /// An unmodified generated file, rewritten with new content.
    Updated,
    /// Already exactly this.
    Unchanged,
    /// `--force` over a file edited by hand (or not written by import).
    Overwritten,
    /// Not written: the file there was edited by hand since import wrote it.
    KeptEdited,
    /// Not written: a file of the user's own is at that path.
    KeptForeign,
    /// Not written: a file of the user's own already declares the resource (at this place).
    AlreadyDeclared(Source),
}

impl Outcome {
    /// True when the file is (re)written.
    pub fn writes(&self) -> bool {
        matches!(
            self,
            Outcome::Created | Outcome::Updated | Outcome::Overwritten
        )
    }
}

/// One document's fate.
#[derive(Debug, Clone)]
pub struct Step {
    pub address: Address,
    /// The file (under the output directory).
    pub path: PathBuf,
    pub outcome: Outcome,
    pub content: String,
    pub adopt: bool,
}

/// A file import wrote earlier whose resource this import did not produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    pub path: PathBuf,
    pub address: Address,
    /// Why the resource was not imported this time.
    pub why: String,
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Decide where each document goes and what happens to the file there. Reads the target
/// files; writes nothing.
pub fn plan(docs: &[Document], out: &Path, dir: &OutDir, force: bool) -> Vec<Step> {
    let generated_at: BTreeMap<&Address, &PathBuf> = dir
        .generated
        .iter()
        .filter_map(|(path, e)| match e {
            Existing::Generated { address, .. } => Some((address, path)),
            Existing::Foreign => None,
        })
        .collect();
    docs.iter()
        .map(|doc| {
            let content = render_file(doc);
            let default_path = out.join(&doc.path);
            let step = |path: PathBuf, outcome| Step {
                address: doc.address.clone(),
                path,
                outcome,
                content: content.clone(),
                adopt: doc.adopt,
            };
            // A file import wrote for this resource, wherever the user moved it.
            let path = match generated_at.get(&doc.address) {
                Some(p) => (*p).clone(),
                None => match dir.declared.get(&doc.address) {
                    Some(src) if !same_file(&src.file, &default_path) => {
                        return step(src.file.clone(), Outcome::AlreadyDeclared(src.clone()));
                    }
                    _ => default_path,
                },
            };
            let outcome = match std::fs::read(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Outcome::Created,
                Err(_) => {
                    if force {
                        Outcome::Overwritten
                    } else {
                        Outcome::KeptForeign
                    }
                }
                Ok(bytes) => {
                    let text = String::from_utf8_lossy(&bytes);
                    match inspect(&text) {
                        Existing::Generated { address, edited }
                            if address == doc.address && !edited =>
                        {
                            if bytes == content.as_bytes() {
                                Outcome::Unchanged
                            } else {
                                Outcome::Updated
                            }
                        }
                        _ if force => Outcome::Overwritten,
                        Existing::Generated { .. } => Outcome::KeptEdited,
                        Existing::Foreign => Outcome::KeptForeign,
                    }
                }
            };
            step(path, outcome)
        })
        .collect()
}

/// Files import wrote for resources of this selection that it did not produce this time.
pub fn stale(dir: &OutDir, sel: &Selection, import: &Import) -> Vec<Stale> {
    let produced: std::collections::BTreeSet<&Address> =
        import.documents.iter().map(|d| &d.address).collect();
    dir.generated
        .iter()
        .filter_map(|(path, e)| match e {
            Existing::Generated { address, .. }
                if sel.covers(address) && !produced.contains(address) =>
            {
                let why = match import.skipped.get(address) {
                    Some(Skip::OtherOwner(o)) => format!("it is now owned by {o:?}"),
                    Some(Skip::Protected) => "it is a protected role now".to_string(),
                    None => "it no longer exists in the account".to_string(),
                };
                Some(Stale {
                    path: path.clone(),
                    address: address.clone(),
                    why,
                })
            }
            _ => None,
        })
        .collect()
}

/// Write `content` to `path` atomically: a hidden temporary file in the same directory
/// (which the manifest loader never reads, should one be left behind), fsync, rename. An
/// existing file keeps its permissions; a new one is `0644`.
pub fn write_atomic(path: &Path, content: &str) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".immctl-import-")
        .suffix(".tmp")
        .tempfile_in(&dir)?;
    tmp.write_all(content.as_bytes())?;
    tmp.as_file().sync_all()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let perms = match std::fs::metadata(path) {
            Ok(m) => m.permissions(),
            Err(_) => std::fs::Permissions::from_mode(0o644),
        };
        tmp.as_file().set_permissions(perms)?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = std::fs::File::open(&dir) {
        // Make the rename durable; not every platform can fsync a directory.
        let _ = d.sync_all();
    }
    Ok(())
}

/// Not there (or a path through a file, which the walk up then finds).
fn missing(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    )
}

/// Check `--out` before anything is read from the cloud: a directory we can write in, or a
/// path that can be created as one. Creates nothing. `Err` is the message (naming `--out`).
pub fn check_out_dir(out: &Path) -> Result<(), String> {
    let shown = out.display();
    let probe = |dir: &Path| {
        tempfile::Builder::new()
            .prefix(".immctl-import-")
            .tempfile_in(dir)
    };
    match std::fs::metadata(out) {
        Ok(m) if !m.is_dir() => Err(format!("--out {shown}: is a file, not a directory")),
        Ok(_) => probe(out)
            .map(drop)
            .map_err(|e| format!("--out {shown}: cannot write in this directory: {e}")),
        Err(e) if missing(&e) => {
            let mut ancestor = out.parent();
            while let Some(a) = ancestor {
                let a = if a.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    a
                };
                match std::fs::metadata(a) {
                    Ok(m) if !m.is_dir() => {
                        return Err(format!(
                            "--out {shown}: {} is a file, not a directory",
                            a.display()
                        ));
                    }
                    Ok(_) => {
                        return probe(a).map(drop).map_err(|e| {
                            format!("--out {shown}: cannot create it in {}: {e}", a.display())
                        });
                    }
                    Err(e) if missing(&e) && a != Path::new(".") => {
                        ancestor = a.parent();
                    }
                    Err(e) => return Err(format!("--out {shown}: {}: {e}", a.display())),
                }
            }
            Err(format!("--out {shown}: no existing parent directory"))
        }
        Err(e) => Err(format!("--out {shown}: {e}")),
    }
}
