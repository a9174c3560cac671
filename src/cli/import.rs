//! `immctl import [--out DIR] [--prefix P] [--include KINDS] [--force] [--emulator]`: write
//! manifests for the live roles, custom policies and IMM projects (of `--region`), so that
//! hand-made resources come under management with a plan that only adopts them.
//!
//! Order matters for "nothing half-written": every flag and `--out` are checked before the
//! cloud is read, the whole account is read before any file is written, and each file is
//! written atomically. The rules live in `crate::import`; this file sequences and reports.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;

use super::{GlobalArgs, common};
use crate::import::files::{self, Outcome, Stale, Step};
use crate::import::{self, Import, Kind, Selection, Skip};
use crate::live;
use crate::manifest::{self, LoadOptions};

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Directory the manifests are written to (created if needed). Resources already
    /// declared there are updated in place or left alone, never declared twice.
    #[arg(long, value_name = "DIR", default_value = manifest::DEFAULT_PATH)]
    pub out: PathBuf,
    /// Only resources whose name starts with this.
    #[arg(long, value_name = "P", default_value = "")]
    pub prefix: String,
    /// Kinds to import, comma-separated: roles, policies, projects (default: all three).
    #[arg(long, value_name = "KINDS")]
    pub include: Option<String>,
    /// Overwrite files that were edited by hand (or not written by import).
    #[arg(long)]
    pub force: bool,
    /// Run against an embedded emulator (state in .immctl/emulator-state.json).
    #[arg(long)]
    pub emulator: bool,
}

pub fn run(global: &GlobalArgs, args: ImportArgs) -> i32 {
    super::block_on(run_import(global, args))
}

async fn run_import(global: &GlobalArgs, args: ImportArgs) -> anyhow::Result<i32> {
    // 1. Everything the user typed, before any I/O.
    let kinds = match &args.include {
        Some(raw) => {
            import::parse_kinds(raw).map_err(|m| anyhow::anyhow!("--include {raw:?}: {m}"))?
        }
        None => vec![Kind::Policies, Kind::Roles, Kind::Projects],
    };
    let settings = common::resolve_settings(global, |_| {})?;
    super::logging::init(settings.log_format, settings.verbosity);
    files::check_out_dir(&args.out).map_err(anyhow::Error::msg)?;
    let sel = Selection {
        kinds,
        prefix: args.prefix.clone(),
        region: settings.region.clone(),
        owner: settings.owner.clone(),
    };

    // 2. The whole selection, read before anything is written.
    let cloud = common::connect(&settings, args.emulator).await?;
    let fetched = live::fetch_all(&cloud.client, &sel.scope()).await;
    cloud.close().await;
    let fetched = fetched.context("reading the live state")?;
    let imported = import::import(&fetched, &sel);

    // 3. Decide per file, then write.
    let dir = files::scan(&args.out, &settings.region);
    if dir.errors > 0 {
        say!(
            "warning: {} already holds manifests with {} error(s); a resource declared only in a broken file may be written a second time (run `immctl validate {}`)",
            args.out.display(),
            dir.errors,
            args.out.display()
        );
    }
    let steps = files::plan(&imported.documents, &args.out, &dir, args.force);
    check_distinct_paths(&steps)?;
    check_inside_out(&args.out, &steps)?;
    for step in steps.iter().filter(|s| s.outcome.writes()) {
        files::write_atomic(&step.path, &step.content).with_context(|| {
            format!(
                "writing {} ({}); the files listed before this one are written, each whole",
                step.path.display(),
                step.address
            )
        })?;
    }
    let stale = files::stale(&dir, &sel, &imported);
    let account = fetched.live.account_id.as_deref().unwrap_or("?");
    print_report(
        &args.out,
        account,
        &sel,
        &imported,
        &steps,
        &stale,
        args.emulator,
    )?;

    // 4. What a reconcile of the directory will see.
    let loaded = manifest::load(
        std::slice::from_ref(&args.out),
        &LoadOptions {
            default_region: settings.region.clone(),
        },
    );
    let findings = super::validate::findings(&loaded);
    let errors: Vec<_> = findings.iter().filter(|d| d.is_error()).cloned().collect();
    let warnings = findings.len() - errors.len();
    if !errors.is_empty() {
        let _ = manifest::render_diagnostics(&errors, &mut std::io::stderr());
        anyhow::bail!(
            "the manifests in {} have {} error(s) (above); the files were written, fix them before reconciling",
            args.out.display(),
            errors.len()
        );
    }
    if warnings > 0 {
        say!(
            "immctl import: {} validates with {warnings} warning(s) (`immctl validate {}` shows them)",
            args.out.display(),
            args.out.display()
        );
    }
    Ok(super::EXIT_OK)
}

/// Two resources must never share a file, even on a case-insensitive file system. The
/// naming rule makes this impossible; if it ever happens it is a bug, not a user error.
fn check_distinct_paths(steps: &[Step]) -> anyhow::Result<()> {
    let mut seen = std::collections::BTreeMap::new();
    for s in steps.iter().filter(|s| s.outcome.writes()) {
        let folded = s.path.to_string_lossy().to_lowercase();
        if let Some(other) = seen.insert(folded, &s.address) {
            anyhow::bail!(
                "internal error: {} and {other} would both be written to {}; nothing was written. Please report this bug",
                s.address,
                s.path.display()
            );
        }
    }
    Ok(())
}

/// Every file is written under `--out` itself: a symbolic link inside it (a directory such as
/// `roles -> /etc/...`, as a pull request can add) must not send a write elsewhere. The same
/// rule as reading: the loader refuses such links (`E001`). Checked before anything is written.
fn check_inside_out(out: &Path, steps: &[Step]) -> anyhow::Result<()> {
    // Nothing exists yet, so nothing can lead out.
    let Ok(root) = std::fs::canonicalize(out) else {
        return Ok(());
    };
    for s in steps.iter().filter(|s| s.outcome.writes()) {
        // The nearest directory on the way that exists decides where the file lands.
        let Some(existing) = s.path.parent().and_then(|p| {
            p.ancestors()
                .find(|a| !a.as_os_str().is_empty() && a.exists())
        }) else {
            continue;
        };
        if let Ok(c) = std::fs::canonicalize(existing)
            && !c.starts_with(&root)
        {
            anyhow::bail!(
                "{}: {} is a symbolic link out of {} (to {}); import writes only inside the \
                 output directory. Nothing was written: remove the link, or choose another --out",
                s.address,
                existing.display(),
                out.display(),
                c.display()
            );
        }
    }
    Ok(())
}

fn shown(out: &Path, path: &Path) -> String {
    path.strip_prefix(out).unwrap_or(path).display().to_string()
}

fn print_report(
    out: &Path,
    account: &str,
    sel: &Selection,
    imported: &Import,
    steps: &[Step],
    stale: &[Stale],
    emulator: bool,
) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut w = stdout.lock();
    let kinds: Vec<&str> = sel.kinds.iter().map(|k| k.as_str()).collect();
    writeln!(
        w,
        "immctl import: {} of account {account} (owner {:?}{}{}) into {}",
        kinds.join(", "),
        sel.owner,
        if sel.includes(Kind::Projects) {
            format!(", projects in {}", sel.region)
        } else {
            String::new()
        },
        if sel.prefix.is_empty() {
            String::new()
        } else {
            format!(", names starting with {:?}", sel.prefix)
        },
        out.display()
    )?;
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for s in steps {
        let p = shown(out, &s.path);
        let adopt = if s.adopt { " (adopt)" } else { "" };
        let line = match &s.outcome {
            Outcome::Created => format!("  created     {p}: {}{adopt}", s.address),
            Outcome::Updated => format!("  updated     {p}: {}{adopt}", s.address),
            Outcome::Unchanged => String::new(),
            Outcome::Overwritten => format!(
                "  overwritten {p}: {}{adopt} (--force; it had been edited by hand)",
                s.address
            ),
            Outcome::KeptEdited => format!(
                "  kept        {p}: {} was edited by hand since import wrote it; not overwritten (--force would)",
                s.address
            ),
            Outcome::KeptForeign => format!(
                "  kept        {p}: a file import did not write is there; {} not written (--force would overwrite it)",
                s.address
            ),
            Outcome::AlreadyDeclared(src) => format!(
                "  kept        {}: already declared at {src}; not written again",
                s.address
            ),
        };
        *counts
            .entry(match s.outcome {
                Outcome::Created => "created",
                Outcome::Updated => "updated",
                Outcome::Unchanged => "unchanged",
                Outcome::Overwritten => "overwritten",
                Outcome::KeptEdited | Outcome::KeptForeign => "kept (edited by hand)",
                Outcome::AlreadyDeclared(_) => "already declared",
            })
            .or_default() += 1;
        if !line.is_empty() {
            writeln!(w, "{line}")?;
        }
    }
    let mut protected = Vec::new();
    let mut others = 0;
    for (address, skip) in &imported.skipped {
        match skip {
            Skip::OtherOwner(o) => {
                others += 1;
                writeln!(
                    w,
                    "  skipped     {address}: owned by {o:?} (its {} tag); that owner's repo manages it",
                    crate::manifest::OWNER_TAG_KEY
                )?;
            }
            Skip::Protected => protected.push(address.to_string()),
        }
    }
    if !protected.is_empty() {
        writeln!(
            w,
            "  protected   {}: never written (attachments and serviceRole name them)",
            protected.join(", ")
        )?;
    }
    for s in stale {
        writeln!(
            w,
            "  stale       {}: {} but import wrote this file for it; kept. Delete the file if the resource should go (a reconcile would create it again)",
            shown(out, &s.path),
            s.address.as_str().to_owned() + ": " + &s.why,
        )?;
    }
    for n in &imported.notes {
        writeln!(w, "  note        {}: {}", n.address, n.message)?;
    }
    let adopt = steps
        .iter()
        .filter(|s| s.adopt && (s.outcome.writes() || s.outcome == Outcome::Unchanged))
        .count();
    let mut summary: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {k}")).collect();
    if others > 0 {
        summary.push(format!("{others} skipped (another owner)"));
    }
    if !protected.is_empty() {
        summary.push(format!("{} protected", protected.len()));
    }
    if !stale.is_empty() {
        summary.push(format!("{} stale", stale.len()));
    }
    writeln!(
        w,
        "Import: {} resource(s): {}.",
        steps.len(),
        if summary.is_empty() {
            "nothing to import".to_string()
        } else {
            summary.join(", ")
        }
    )?;
    if adopt > 0 {
        writeln!(
            w,
            "{adopt} of them exist without an owner tag and are marked `adopt: true`: `immctl reconcile {}{} --dry-run` should plan only their adoption (tag {}={}).",
            out.display(),
            // The command to run next must read the same account this import read.
            if emulator { " --emulator" } else { "" },
            crate::manifest::OWNER_TAG_KEY,
            sel.owner
        )?;
    }
    w.flush()?;
    Ok(())
}
