//! Terraform-like text: one block per change in apply order (`+` create, `~` update or
//! adopt, `-` delete), documents as unified diffs, then findings and a summary line.
//! Colour (ANSI) only when the caller asks; the CLI decides (TTY and `NO_COLOR`).

use std::io::{self, Write};

use super::fields::{FieldLine, calls, field_lines, symbol, verb};
use crate::plan::{Action, Finding, Plan, Severity};

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const RED: &str = "\x1b[31m";
const CYAN: &str = "\x1b[36m";
const DIM: &str = "\x1b[2m";

struct Painter {
    color: bool,
}

impl Painter {
    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("{code}{text}{RESET}")
        } else {
            text.to_string()
        }
    }
    fn for_action(&self, action: Action) -> &'static str {
        match action {
            Action::Create => GREEN,
            Action::Update | Action::Adopt => YELLOW,
            Action::Delete => RED,
        }
    }
    fn for_diff_line(&self, line: &str) -> &'static str {
        if line.starts_with("+++") || line.starts_with("---") {
            BOLD
        } else if line.starts_with('+') {
            GREEN
        } else if line.starts_with('-') {
            RED
        } else if line.starts_with("@@") {
            CYAN
        } else {
            ""
        }
    }
}

/// Render `plan` as text.
pub fn render_text(plan: &Plan, w: &mut impl Write, color: bool) -> io::Result<()> {
    let p = Painter { color };
    if plan.changes.is_empty() {
        writeln!(
            w,
            "{} The live state matches the manifests.",
            p.paint(BOLD, "No changes.")
        )?;
    } else {
        writeln!(
            w,
            "immctl will perform the following actions, in this order:"
        )?;
        for c in &plan.changes {
            writeln!(w)?;
            writeln!(
                w,
                "  {}",
                p.paint(BOLD, &format!("# {} {}", c.address, verb(c.action)))
            )?;
            if let Some(from) = plan.expanded_from.get(&c.address) {
                writeln!(w, "  {}", p.paint(DIM, &format!("#   (from {from})")))?;
            }
            for r in &c.reasons {
                writeln!(
                    w,
                    "  {}",
                    p.paint(DIM, &format!("#   {}: {}", r.code, r.message))
                )?;
            }
            writeln!(
                w,
                "  {}",
                p.paint(DIM, &format!("#   calls: {}", calls(c).join(", ")))
            )?;
            let sym = symbol(c.action).to_string();
            writeln!(
                w,
                "  {} {}",
                p.paint(p.for_action(c.action), &sym),
                c.address
            )?;
            for line in field_lines(c) {
                write_field(w, &p, &line)?;
            }
        }
    }
    if !plan.findings.is_empty() {
        writeln!(w)?;
        render_findings(&plan.findings, w, color)?;
    }
    if !plan.changes.is_empty() {
        writeln!(w)?;
        writeln!(w, "{}", p.paint(BOLD, &plan.summary().to_string()))?;
    }
    let errors = crate::lint::blocking_count(&plan.findings);
    if errors > 0 {
        writeln!(
            w,
            "{}",
            p.paint(
                RED,
                &format!(
                    "{errors} error finding(s): apply refuses this plan until they are fixed."
                )
            )
        )?;
    }
    Ok(())
}

/// The `Findings:` block of a text plan, on its own: what `immctl validate` prints for the
/// lints (no plan there). One line per finding, its fix indented below.
pub fn render_findings(findings: &[Finding], w: &mut impl Write, color: bool) -> io::Result<()> {
    let p = Painter { color };
    writeln!(w, "Findings:")?;
    for f in findings {
        let sev = match f.severity {
            Severity::Error => p.paint(RED, "error"),
            Severity::Warning => p.paint(YELLOW, "warning"),
            Severity::Info => p.paint(CYAN, "info"),
        };
        writeln!(w, "  {sev}[{}] {}: {}", f.code, f.address, f.message)?;
        if let Some(fix) = &f.fix {
            writeln!(w, "      fix: {fix}")?;
        }
    }
    Ok(())
}

fn write_field(w: &mut impl Write, p: &Painter, line: &FieldLine) -> io::Result<()> {
    match line {
        FieldLine::Added { key, value } => {
            writeln!(w, "      {} {key} = {value}", p.paint(GREEN, "+"))
        }
        FieldLine::Changed { key, before, after } => writeln!(
            w,
            "      {} {key} = {before} -> {after}",
            p.paint(YELLOW, "~")
        ),
        FieldLine::Removed { key, value } => {
            writeln!(w, "      {} {key} = {value}", p.paint(RED, "-"))
        }
        FieldLine::NewDocument { key, pretty } => {
            writeln!(w, "      {} {key} =", p.paint(GREEN, "+"))?;
            for l in pretty.lines() {
                writeln!(w, "          {l}")?;
            }
            Ok(())
        }
        FieldLine::DocumentDiff { key, diff } => {
            writeln!(w, "      {} {key}:", p.paint(YELLOW, "~"))?;
            for l in diff.lines() {
                writeln!(w, "          {}", p.paint(p.for_diff_line(l), l).trim_end())?;
            }
            Ok(())
        }
    }
}
