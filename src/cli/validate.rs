//! `immctl validate [PATH...] [--expand] [--strict]`: offline checks of the manifests.
//!
//! Findings (each with its code, `file:line:column`, the resource address, the source line
//! and a caret) and a one-line summary go to stderr; with `--expand` the manifests that
//! `ImmServiceRole` documents stand for go to stdout, as YAML a user could paste. Exit 0 when
//! there is no error, 1 otherwise; `--strict` makes warnings fail too.
//!
//! Lints (the IMM least-privilege rules) are plan findings from the `lint` module; they join
//! the manifest findings through [`lint_diagnostics`], and run only when the manifests load
//! without error (lints about a half-read manifest would only add noise).

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::GlobalArgs;
use crate::manifest::{self, Address, Desired, Diagnostic, LoadOptions, Loaded, Source};
use crate::plan;
use crate::settings::{self, SettingsInput};

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
    let input = SettingsInput {
        config: global.config.clone(),
        region: global.region.clone(),
        owner: global.owner.clone(),
        log_format: global.log_format.clone(),
        ..SettingsInput::default()
    };
    let settings = match settings::resolve(&input, std::env::vars()) {
        Ok(s) => s,
        Err(e) => {
            super::report_error(&anyhow::Error::new(e));
            return super::EXIT_ERROR;
        }
    };
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

/// Load, lint and decide. Pure apart from reading the manifest files.
pub fn validate(paths: &[PathBuf], opts: &LoadOptions, strict: bool) -> Outcome {
    let loaded = manifest::load(paths, opts);
    let mut diagnostics = loaded.diagnostics.clone();
    if !loaded.has_errors() {
        // TODO-lint: the `lint` module (another branch) plugs in here with
        // `lint::lint_desired(&loaded.desired, None)`; nothing else changes.
        let lints: Vec<plan::Finding> = Vec::new();
        diagnostics.extend(lint_diagnostics(lints, &loaded.desired));
    }
    manifest::sort_diagnostics(&mut diagnostics);
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let failed = errors > 0 || (strict && warnings > 0);
    let summary = summary(&loaded, errors, warnings, strict, failed);
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

fn summary(loaded: &Loaded, errors: usize, warnings: usize, strict: bool, failed: bool) -> String {
    let d = &loaded.desired;
    let expanded = d
        .roles
        .values()
        .filter(|r| r.expanded_from.is_some())
        .count();
    let resources = format!(
        "{}, {}, {}{}",
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
    );
    let counts = format!(
        "{}, {}",
        plural(errors, "error", "errors"),
        plural(warnings, "warning", "warnings")
    );
    let files = plural(loaded.files.len(), "file", "files");
    if !failed {
        format!("ok: {files}: {resources}; {counts}")
    } else if errors == 0 && strict {
        format!("failed (--strict): {counts} in {files}")
    } else {
        format!("failed: {counts} in {files}")
    }
}

/// Plan findings (lints) as manifest findings, placed at the resource's manifest.
pub fn lint_diagnostics(findings: Vec<plan::Finding>, desired: &Desired) -> Vec<Diagnostic> {
    findings
        .into_iter()
        .map(|f| {
            let source = source_of(&f.address, desired);
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

/// Where the resource at `addr` is written, if it is declared.
fn source_of(addr: &Address, desired: &Desired) -> Option<Source> {
    let a = addr.as_str();
    if let Some(name) = a.strip_prefix("ram_policy.") {
        return desired.policies.get(name).map(|p| p.source.clone());
    }
    if let Some(name) = a.strip_prefix("ram_role.") {
        return desired.roles.get(name).map(|r| r.source.clone());
    }
    if let Some(rest) = a.strip_prefix("ram_role_policy.") {
        let role = rest.split('/').next()?;
        return desired.roles.get(role).map(|r| r.source.clone());
    }
    if let Some(rest) = a.strip_prefix("imm_project.") {
        let (region, name) = rest.split_once('/')?;
        return desired
            .projects
            .iter()
            .find(|(k, _)| k.region == region && k.name == name)
            .map(|(_, p)| p.source.clone());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::DesiredRole;
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
