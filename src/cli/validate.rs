//! `immctl validate [PATH...] [--expand] [--strict]`: offline checks of the manifests
//! (schema, RAM / IMM rules, references) and the IMM lints, with no cloud call at all.
//!
//! Findings (each with its code, `file:line:column`, the resource address, the source line
//! and a caret, and the fix when there is one) and a one-line summary go to stderr; with
//! `--expand` the manifests that `ImmServiceRole` documents stand for go to stdout, as YAML a
//! user could paste. Exit 0 when there is no error, 1 otherwise; `--strict` makes warnings
//! fail too.
//!
//! Lints (the IMM least-privilege rules, `lint::lint_desired`) are plan findings; they join the
//! manifest findings at the manifest that declares their resource, and run only when the
//! manifests load without error (lints about a half-read manifest would only add noise).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::{GlobalArgs, common};
use crate::lint;
use crate::manifest::{self, Desired, Diagnostic, LoadOptions, Loaded};
use crate::plan;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Manifest files or directories (default: manifests/).
    pub paths: Vec<PathBuf>,
    /// Also print the manifests each ImmServiceRole expands into (a Role and a Policy).
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
    let opts = LoadOptions {
        default_region: settings.region.clone(),
    };
    let outcome = validate(&args.paths, &opts, args.strict);
    let mut stderr = std::io::stderr().lock();
    let _ = manifest::render_diagnostics(&outcome.diagnostics, &mut stderr);
    let _ = writeln!(stderr, "{}", outcome.summary);
    if args.expand && outcome.loaded.has_errors() {
        let _ = writeln!(
            stderr,
            "(--expand: nothing printed while the manifests have errors)"
        );
    } else if args.expand {
        let text = manifest::expand::render_expansion(&outcome.loaded.desired);
        let mut stdout = std::io::stdout().lock();
        if text.is_empty() {
            let _ = writeln!(stderr, "(no ImmServiceRole to expand)");
        } else if stdout.write_all(text.as_bytes()).is_err() {
            // A closed pipe (`| head`) is not an error worth a message.
            return outcome.exit_code;
        }
    }
    outcome.exit_code
}

/// What `validate` found and how it ends; the printing is left to [`run`].
#[derive(Debug)]
pub struct Outcome {
    pub loaded: Loaded,
    /// Manifest findings and lints, sorted for display.
    pub diagnostics: Vec<Diagnostic>,
    pub summary: String,
    pub exit_code: i32,
}

/// The manifest findings and, when the manifests load cleanly, the offline lints, as one
/// sorted list (what `validate` prints).
pub fn findings(loaded: &Loaded) -> Vec<Diagnostic> {
    let mut all = loaded.diagnostics.clone();
    if !loaded.has_errors() {
        all.extend(lint_diagnostics(
            lint::lint_desired(&loaded.desired, None),
            &loaded.desired,
        ));
    }
    manifest::sort_diagnostics(&mut all);
    all
}

/// Load, lint and decide. Pure apart from reading the manifest files.
pub fn validate(paths: &[PathBuf], opts: &LoadOptions, strict: bool) -> Outcome {
    let loaded = manifest::load(paths, opts);
    let diagnostics = findings(&loaded);
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let failed = errors > 0 || (strict && warnings > 0);
    let summary = summary(&loaded, errors, warnings, failed);
    Outcome {
        loaded,
        diagnostics,
        summary,
        exit_code: if failed {
            super::EXIT_ERROR
        } else {
            super::EXIT_OK
        },
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn summary(loaded: &Loaded, errors: usize, warnings: usize, failed: bool) -> String {
    let d = &loaded.desired;
    let files = plural(loaded.files.len(), "file", "files");
    if errors > 0 {
        return format!(
            "validate: {}, {} in {files}; nothing is valid until the errors are fixed",
            plural(errors, "error", "errors"),
            plural(warnings, "warning", "warnings")
        );
    }
    if failed {
        return format!(
            "validate: {} in {files}, which fail under --strict",
            plural(warnings, "warning", "warnings")
        );
    }
    let expanded = d
        .roles
        .values()
        .filter(|r| r.expanded_from.is_some())
        .count();
    format!(
        "validate: {}, {}, {}{} in {files}: {}",
        plural(d.policies.len(), "policy", "policies"),
        plural(d.roles.len(), "role", "roles"),
        plural(d.projects.len(), "project", "projects"),
        if expanded > 0 {
            format!(
                " ({} from ImmServiceRole)",
                plural(expanded, "role", "roles")
            )
        } else {
            String::new()
        },
        if warnings == 0 {
            "valid".to_string()
        } else {
            format!("valid, {}", plural(warnings, "warning", "warnings"))
        }
    )
}

/// Plan findings (lints) as manifest findings, placed at the resource's manifest.
pub fn lint_diagnostics(findings: Vec<plan::Finding>, desired: &Desired) -> Vec<Diagnostic> {
    findings
        .into_iter()
        .map(|f| {
            let source = desired.source_of(&f.address).cloned();
            let mut d = match f.severity {
                plan::Severity::Error => {
                    Diagnostic::error(&f.code, source, Some(f.address.clone()), f.message)
                }
                plan::Severity::Warning | plan::Severity::Info => {
                    Diagnostic::warning(&f.code, source, Some(f.address.clone()), f.message)
                }
            };
            d.help = f.fix;
            d
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{Address, DesiredRole, Source};
    use crate::policy::PolicyDocument;

    #[test]
    fn lint_findings_land_at_the_resource_manifest_with_their_fix() {
        let mut desired = Desired::default();
        let source = Source {
            file: "manifests/roles.yaml".into(),
            line: 7,
            column: 9,
        };
        desired.roles.insert(
            "svc".into(),
            DesiredRole {
                name: "svc".into(),
                description: None,
                max_session_duration: 3600,
                trust_policy: PolicyDocument(serde_json::json!({})),
                policies: Default::default(),
                tags: Default::default(),
                deletion_policy: Default::default(),
                adopt: false,
                source: source.clone(),
                expanded_from: None,
            },
        );
        let findings = vec![
            plan::Finding {
                code: "IMM002".into(),
                severity: plan::Severity::Warning,
                address: Address("ram_role_policy.svc/Custom/p".into()),
                message: "m".into(),
                fix: Some("do this".into()),
            },
            plan::Finding {
                code: "IMM009".into(),
                severity: plan::Severity::Error,
                address: Address("ram_policy.unknown".into()),
                message: "n".into(),
                fix: None,
            },
        ];
        let d = lint_diagnostics(findings, &desired);
        assert_eq!(d[0].source, Some(source));
        assert_eq!(d[0].help.as_deref(), Some("do this"));
        assert!(!d[0].is_error());
        assert_eq!(d[1].source, None);
        assert!(d[1].is_error());
    }
}
