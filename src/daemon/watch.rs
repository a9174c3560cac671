//! Early ticks: notice that the manifest files changed without waiting for the interval.
//!
//! A cheap poll, not inotify. Every `poll` (250 ms by default) a blocking task stats every
//! non-hidden file under the manifest roots, whatever its extension (so a policy
//! `documentFile` next to its manifest counts), following symbolic links as the loader does,
//! plus the manifest files the last load found, and compares size, modification and change
//! times, inode and device with the last look. (A `documentFile` lies inside the directory
//! its manifest was found in, so under a root; only that of a manifest given as a single file
//! is beside it, not under a root, and not watched: a change to one is picked up at the
//! next interval.) After
//! a change it waits until the files are quiet for `quiet` (debounce: an editor's save, a
//! `git checkout` or git-sync's swap is one tick, not ten), at most `max_wait`, then wakes the
//! tick loop.
//!
//! Why a poll: the shipped Deployment reads `/manifests/repo/manifests`, where `repo` is a
//! symbolic link that git-sync swaps atomically to a new worktree, and ConfigMap volumes swap
//! a `..data` link the same way. inotify watches inodes, so a watch on the old tree sees
//! nothing when the link moves (the classic "config reload never fires in Kubernetes" bug);
//! getting it right means watching every parent and re-arming on each swap. Statting a
//! manifest repository (tens of small files) four times a second costs microseconds, works
//! the same on every file system (overlayfs, NFS, emptyDir), and needs no new dependency.
//! The price, a few hundred milliseconds of latency, is well inside the two seconds promised.
//!
//! Must not: read file contents, parse anything, or decide what a tick does; it only says
//! "look again".

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How the watcher polls.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchOptions {
    /// Time between looks at the files.
    pub poll: Duration,
    /// After a change, the files must stay unchanged this long before a tick is triggered.
    pub quiet: Duration,
    /// A tick is triggered at the latest this long after the first change, quiet or not.
    pub max_wait: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            poll: Duration::from_millis(250),
            quiet: Duration::from_millis(250),
            max_wait: Duration::from_secs(5),
        }
    }
}

/// Most files one look stats (the loader reads at most 10,000).
const MAX_ENTRIES: usize = 20_000;

/// What identifies one version of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
    /// (inode, device, ctime seconds, ctime nanoseconds) on Unix: a rename over the file or
    /// a swapped symbolic link changes the inode even when size and mtime are equal.
    unix: (u64, u64, i64, i64),
}

impl Stamp {
    fn of(meta: &std::fs::Metadata) -> Stamp {
        #[cfg(unix)]
        let unix = {
            use std::os::unix::fs::MetadataExt;
            (meta.ino(), meta.dev(), meta.ctime(), meta.ctime_nsec())
        };
        #[cfg(not(unix))]
        let unix = (0, 0, 0, 0);
        Stamp {
            len: meta.len(),
            modified: meta.modified().ok(),
            unix,
        }
    }
}

/// One look at the watched files. `None`: the path does not exist (or cannot be read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Fingerprint {
    /// Every non-hidden file under the roots (and the roots themselves when missing).
    walked: BTreeMap<PathBuf, Option<Stamp>>,
    /// The manifest files the last load found.
    loaded: BTreeMap<PathBuf, Option<Stamp>>,
}

impl Fingerprint {
    /// Whether `self` shows a change since `before`. The walk is compared whole (a file added
    /// or removed under a root is a change); the loaded files only where both looks have them,
    /// since that list is replaced after every load.
    fn changed_since(&self, before: &Fingerprint) -> bool {
        self.walked != before.walked
            || self
                .loaded
                .iter()
                .any(|(p, s)| before.loaded.get(p).is_some_and(|b| b != s))
    }
}

struct Inner {
    roots: Vec<PathBuf>,
    loaded: Mutex<Vec<PathBuf>>,
    changed: Notify,
}

/// The polling task and the signal it raises. Dropping the watcher stops the task.
pub(crate) struct Watcher {
    inner: Arc<Inner>,
    task: JoinHandle<()>,
}

impl Watcher {
    /// Take a first look (so that any change from now on is noticed) and start polling.
    pub(crate) async fn start(roots: Vec<PathBuf>, opts: WatchOptions) -> Watcher {
        let inner = Arc::new(Inner {
            roots,
            loaded: Mutex::new(Vec::new()),
            changed: Notify::new(),
        });
        let first = look(&inner).await;
        let task = tokio::spawn(poll_loop(inner.clone(), opts, first));
        Watcher { inner, task }
    }

    /// The manifest files the last load found (the roots are walked whatever this says).
    pub(crate) fn set_loaded(&self, files: &[PathBuf]) {
        let mut l = self.inner.loaded.lock().unwrap_or_else(|p| p.into_inner());
        if l.as_slice() != files {
            *l = files.to_vec();
        }
    }

    /// Resolves once the files changed (and settled) since the last call returned. A change
    /// seen while nobody waits is kept, so one that happens during a tick is not lost.
    pub(crate) async fn changed(&self) {
        self.inner.changed.notified().await;
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn poll_loop(inner: Arc<Inner>, opts: WatchOptions, mut base: Fingerprint) {
    loop {
        tokio::time::sleep(opts.poll).await;
        let now = look(&inner).await;
        if !now.changed_since(&base) {
            base = now;
            continue;
        }
        // Debounce: wait until a look shows nothing new for `quiet`, at most `max_wait`.
        let first_change = Instant::now();
        let mut last = now;
        loop {
            tokio::time::sleep(opts.quiet).await;
            let again = look(&inner).await;
            let settled = !again.changed_since(&last);
            last = again;
            if settled || first_change.elapsed() >= opts.max_wait {
                break;
            }
        }
        base = last;
        tracing::info!("manifest files changed; ticking early");
        inner.changed.notify_one();
    }
}

/// Stat everything, off the async threads.
async fn look(inner: &Arc<Inner>) -> Fingerprint {
    let roots = inner.roots.clone();
    let loaded = inner
        .loaded
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    tokio::task::spawn_blocking(move || fingerprint(&roots, &loaded))
        .await
        .unwrap_or_default()
}

fn stamp(path: &Path) -> Option<Stamp> {
    std::fs::metadata(path).ok().map(|m| Stamp::of(&m))
}

fn fingerprint(roots: &[PathBuf], loaded: &[PathBuf]) -> Fingerprint {
    let mut fp = Fingerprint::default();
    let mut seen_dirs = BTreeSet::new();
    for root in roots {
        walk(root, &mut fp.walked, &mut seen_dirs);
    }
    for f in loaded {
        fp.loaded.insert(f.clone(), stamp(f));
    }
    fp
}

fn hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

/// Record `path` (file) or everything under it (directory), following symbolic links; a
/// directory reached twice (a link cycle) is walked once.
fn walk(path: &Path, out: &mut BTreeMap<PathBuf, Option<Stamp>>, seen: &mut BTreeSet<PathBuf>) {
    if out.len() >= MAX_ENTRIES {
        return;
    }
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(_) => {
            out.insert(path.to_path_buf(), None);
            return;
        }
    };
    if !meta.is_dir() {
        out.insert(path.to_path_buf(), Some(Stamp::of(&meta)));
        return;
    }
    let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if !seen.insert(canonical) {
        return;
    }
    let Ok(entries) = std::fs::read_dir(path) else {
        out.insert(path.to_path_buf(), None);
        return;
    };
    let mut children: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| !hidden(p))
        .collect();
    children.sort();
    for child in children {
        walk(&child, out, seen);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(p: &Path, text: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    #[test]
    fn the_fingerprint_sees_edits_additions_removals_and_renames_but_not_hidden_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("manifests");
        write(&root.join("a.yaml"), "a: 1\n");
        write(&root.join("sub/b.yaml"), "b: 1\n");
        let roots = vec![root.clone()];
        let base = fingerprint(&roots, &[]);
        assert_eq!(base.walked.len(), 2);
        assert!(!fingerprint(&roots, &[]).changed_since(&base));

        // Hidden files and directories (.git, editor swap files) are not looked at.
        write(&root.join(".git/HEAD"), "ref\n");
        write(&root.join(".a.yaml.swp"), "x");
        assert!(!fingerprint(&roots, &[]).changed_since(&base));

        write(&root.join("sub/b.yaml"), "b: 22\n");
        let edited = fingerprint(&roots, &[]);
        assert!(edited.changed_since(&base));

        write(&root.join("c.yml"), "c: 1\n");
        let added = fingerprint(&roots, &[]);
        assert!(added.changed_since(&edited));

        std::fs::remove_file(root.join("a.yaml")).unwrap();
        let removed = fingerprint(&roots, &[]);
        assert!(removed.changed_since(&added));

        // Same size, same content, replaced by a rename (an atomic save): a new inode.
        write(&dir.path().join("tmp.yaml"), "c: 1\n");
        std::fs::rename(dir.path().join("tmp.yaml"), root.join("c.yml")).unwrap();
        assert!(fingerprint(&roots, &[]).changed_since(&removed));
    }

    #[cfg(unix)]
    #[test]
    fn a_swapped_symbolic_link_is_a_change_as_git_sync_makes_it() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("wt1/manifests/a.yaml"), "a: 1\n");
        write(&dir.path().join("wt2/manifests/a.yaml"), "a: 1\n");
        std::os::unix::fs::symlink(dir.path().join("wt1"), dir.path().join("repo")).unwrap();
        let roots = vec![dir.path().join("repo/manifests")];
        let base = fingerprint(&roots, &[]);
        assert!(!fingerprint(&roots, &[]).changed_since(&base));
        // Atomic swap: a new link renamed over the old one.
        std::os::unix::fs::symlink(dir.path().join("wt2"), dir.path().join("repo.new")).unwrap();
        std::fs::rename(dir.path().join("repo.new"), dir.path().join("repo")).unwrap();
        assert!(fingerprint(&roots, &[]).changed_since(&base));
    }

    #[test]
    fn a_missing_root_appearing_is_a_change_and_loaded_files_outside_the_roots_count() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("manifests");
        let doc = dir.path().join("docs/policy.json");
        write(&doc, "{}");
        let base = fingerprint(std::slice::from_ref(&root), std::slice::from_ref(&doc));
        assert_eq!(base.walked.get(&root), Some(&None));
        write(&root.join("a.yaml"), "a: 1\n");
        let created = fingerprint(std::slice::from_ref(&root), std::slice::from_ref(&doc));
        assert!(created.changed_since(&base));

        write(&doc, "{\"Version\": \"1\"}");
        let edited = fingerprint(std::slice::from_ref(&root), std::slice::from_ref(&doc));
        assert!(edited.changed_since(&created));

        // A new list of loaded files is not a change by itself.
        let other = dir.path().join("docs/other.json");
        write(&other, "{}");
        let relisted = fingerprint(std::slice::from_ref(&root), &[doc.clone(), other]);
        assert!(!relisted.changed_since(&edited));
    }

    #[tokio::test]
    async fn the_watcher_wakes_once_per_burst_of_writes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("m");
        write(&root.join("a.yaml"), "a: 1\n");
        let opts = WatchOptions {
            poll: Duration::from_millis(20),
            quiet: Duration::from_millis(200),
            max_wait: Duration::from_secs(5),
        };
        let w = Watcher::start(vec![root.clone()], opts).await;
        // Nothing changes: no wake-up.
        let quiet = tokio::time::timeout(Duration::from_millis(200), w.changed()).await;
        assert!(quiet.is_err(), "woke up without a change");

        for i in 0..5 {
            write(&root.join("a.yaml"), &format!("a: {i}{i}\n"));
        }
        tokio::time::timeout(Duration::from_secs(20), w.changed())
            .await
            .expect("a change wakes the watcher");
        // The burst was one change: no second wake-up once it settled.
        let again = tokio::time::timeout(Duration::from_millis(300), w.changed()).await;
        assert!(again.is_err(), "one burst woke the loop twice");
    }
}
