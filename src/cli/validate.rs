//! `immctl validate [PATH...] [--expand] [--strict]`: offline checks of the manifests
//! (schema, RAM / IMM rules, references) and the IMM lints, with no cloud call at all.
//!
//! Findings go to stderr, rustc-style (headline, source line, caret, help); `--expand` prints
//! the `ImmServiceRole` expansion as manifests on stdout. Exit 0 without errors, 1 with errors
//! (or, with `--strict`, with warnings).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::{GlobalArgs, common};
use crate::lint;
use crate::manifest::{self, Diagnostic, LoadOptions, Loaded, Severity, expand};
use crate::plan::{self, Finding};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Manifest files or directories (default: manifests/).
    pub paths: Vec<PathBuf>,
    /// Print what `ImmServiceRole` manifests expand into (as manifests, on stdout).
    #[arg(long)]
    pub expand: bool,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    pub strict: bool,
}

pub fn run(global: &GlobalArgs, args: ValidateArgs) -> i32 {
    let settings = match common::resolve_settings(global, |_| {}) {
        Ok(s) => s,
        Err(e) => {
            super::report_error(&e);
            return super::EXIT_ERROR;
        }
    };
    super::logging::init(settings.log_format, settings.verbosity);
    let loaded = manifest::load(
        &args.paths,
        &LoadOptions {
            default_region: settings.region.clone(),
        },
    );
    let findings = findings(&loaded);
    let mut err = std::io::stderr().lock();
    let _ = manifest::render_diagnostics(&findings, &mut err);
    let errors = findings.iter().filter(|d| d.is_error()).count();
    let warnings = findings.len() - errors;
    let _ = writeln!(err, "{}", summary(&loaded, errors, warnings));
    drop(err);
    if args.expand && errors == 0 {
        let text = expand::render_expanded(&loaded.desired);
        let mut out = std::io::stdout().lock();
        let written = if text.is_empty() {
            writeln!(
                out,
                "# No ImmServiceRole in these manifests: nothing to expand."
            )
        } else {
            out.write_all(text.as_bytes())
        };
        if let Err(e) = written.and_then(|()| out.flush())
            && e.kind() != std::io::ErrorKind::BrokenPipe
        {
            eprintln!("error: writing the expansion to stdout: {e}");
            return super::EXIT_ERROR;
        }
    }
    if errors > 0 || (args.strict && warnings > 0) {
        super::EXIT_ERROR
    } else {
        super::EXIT_OK
    }
}

/// The manifest findings and, when the manifests load cleanly, the offline lints, as one
/// sorted list. Lint findings are placed at the manifest that declares their resource.
pub fn findings(loaded: &Loaded) -> Vec<Diagnostic> {
    let mut all = loaded.diagnostics.clone();
    if !loaded.has_errors() {
        all.extend(
            lint::lint_desired(&loaded.desired, None)
                .into_iter()
                .map(|f| lint_diagnostic(loaded, f)),
        );
    }
    manifest::sort_diagnostics(&mut all);
    all
}

fn lint_diagnostic(loaded: &Loaded, f: Finding) -> Diagnostic {
    let source = loaded.desired.source_of(&f.address).cloned();
    let severity = match f.severity {
        plan::Severity::Error => Severity::Error,
        plan::Severity::Warning | plan::Severity::Info => Severity::Warning,
    };
    let mut d = match severity {
        Severity::Error => Diagnostic::error(&f.code, source, Some(f.address), f.message),
        Severity::Warning => Diagnostic::warning(&f.code, source, Some(f.address), f.message),
    };
    d.help = f.fix;
    d
}

fn summary(loaded: &Loaded, errors: usize, warnings: usize) -> String {
    let d = &loaded.desired;
    let files = loaded.files.len();
    if errors > 0 {
        format!(
            "validate: {errors} error(s), {warnings} warning(s) in {files} file(s); nothing is valid until the errors are fixed"
        )
    } else {
        format!(
            "validate: {} polic{}, {} role(s), {} project(s) in {files} file(s): {}",
            d.policies.len(),
            if d.policies.len() == 1 { "y" } else { "ies" },
            d.roles.len(),
            d.projects.len(),
            if warnings == 0 {
                "valid".to_string()
            } else {
                format!("valid, {warnings} warning(s)")
            }
        )
    }
}
