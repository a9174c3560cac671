//! Markdown for a pull-request comment: title, summary table, deletions called out first,
//! findings, then one folded `<details>` block per change with its diff.

use std::io::{self, Write};

use super::fields::{FieldLine, calls, field_lines, symbol};
use crate::plan::{Action, Plan};

/// Escape text for a table cell or inline use.
/// Text for a table cell or a list item: one line, with Markdown's inline syntax and HTML
/// escaped, so policy text such as `acs:oss:*:*:bucket/*` or `oss:Get*` shows as written
/// instead of turning into emphasis, and a `|` never splits a table cell. (Not for text
/// inside code spans, where backslashes would show.)
fn cell(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '|' | '~' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

/// Render `plan` as Markdown.
pub fn render_markdown(plan: &Plan, w: &mut impl Write) -> io::Result<()> {
    writeln!(w, "## immctl plan (owner `{}`)", plan.owner())?;
    writeln!(w)?;
    let s = plan.summary();
    if plan.changes.is_empty() {
        writeln!(w, "**No changes.** The live state matches the manifests.")?;
    } else {
        writeln!(w, "**{s}**")?;
        writeln!(w)?;
        writeln!(w, "| Action | Count |")?;
        writeln!(w, "|---|---:|")?;
        writeln!(w, "| create | {} |", s.create)?;
        writeln!(w, "| update | {} |", s.update)?;
        writeln!(w, "| adopt | {} |", s.adopt)?;
        writeln!(w, "| delete | {} |", s.delete)?;
    }

    let deletes: Vec<_> = plan
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .collect();
    if !deletes.is_empty() {
        writeln!(w)?;
        writeln!(w, "### Deletions ({})", deletes.len())?;
        writeln!(w)?;
        for c in deletes {
            let why: Vec<String> = c
                .reasons
                .iter()
                .map(|r| format!("{}: {}", r.code, r.message))
                .collect();
            writeln!(w, "- **`{}`**: {}", c.address, cell(&why.join("; ")))?;
        }
    }

    if !plan.findings.is_empty() {
        writeln!(w)?;
        writeln!(w, "### Findings ({})", plan.findings.len())?;
        writeln!(w)?;
        writeln!(w, "| Severity | Code | Address | Message | Fix |")?;
        writeln!(w, "|---|---|---|---|---|")?;
        for f in &plan.findings {
            writeln!(
                w,
                "| {} | {} | `{}` | {} | {} |",
                f.severity,
                cell(&f.code),
                f.address,
                cell(&f.message),
                cell(f.fix.as_deref().unwrap_or(""))
            )?;
        }
        // As the text form says it: a reviewer of "No changes." with an error finding (a
        // refused prune) must see that the apply after merge will fail.
        let errors = crate::lint::blocking_count(&plan.findings);
        if errors > 0 {
            writeln!(w)?;
            writeln!(
                w,
                "**{errors} error finding(s): apply refuses this plan until they are fixed.**"
            )?;
        }
    }

    if !plan.changes.is_empty() {
        writeln!(w)?;
        writeln!(w, "### Changes, in apply order")?;
        for c in &plan.changes {
            writeln!(w)?;
            writeln!(
                w,
                "<details><summary><code>{} {}</code> {}</summary>",
                symbol(c.action),
                c.address,
                c.action
            )?;
            writeln!(w)?;
            if let Some(from) = plan.expanded_from.get(&c.address) {
                writeln!(
                    w,
                    "- from {} `{}` (`{}`)",
                    from.kind, from.name, from.source
                )?;
            }
            for r in &c.reasons {
                writeln!(w, "- `{}`: {}", r.code, cell(&r.message))?;
            }
            writeln!(w, "- calls: {}", calls(c).join(", "))?;
            let lines = field_lines(c);
            if !lines.is_empty() {
                writeln!(w)?;
                writeln!(w, "```diff")?;
                for line in &lines {
                    write_field(w, line)?;
                }
                writeln!(w, "```")?;
            }
            writeln!(w)?;
            writeln!(w, "</details>")?;
        }
    }
    Ok(())
}

fn write_field(w: &mut impl Write, line: &FieldLine) -> io::Result<()> {
    match line {
        FieldLine::Added { key, value } => writeln!(w, "+ {key} = {value}"),
        FieldLine::Changed { key, before, after } => {
            writeln!(w, "- {key} = {before}")?;
            writeln!(w, "+ {key} = {after}")
        }
        FieldLine::Removed { key, value } => writeln!(w, "- {key} = {value}"),
        FieldLine::NewDocument { key, pretty } => {
            writeln!(w, "+ {key} =")?;
            for l in pretty.lines() {
                writeln!(w, "+   {l}")?;
            }
            Ok(())
        }
        FieldLine::DocumentDiff { key, diff } => {
            writeln!(w, "  {key}:")?;
            // Hunk lines keep their +/-/space marker in column 0 so GitHub colours them.
            for l in diff.lines() {
                if l.starts_with("---") || l.starts_with("+++") {
                    continue;
                }
                writeln!(w, "{l}")?;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::cell;

    #[test]
    fn cells_show_policy_text_as_written() {
        assert_eq!(
            cell("oss:Get* on acs:oss:*:*:b/*"),
            r"oss:Get\* on acs:oss:\*:\*:b/\*"
        );
        assert_eq!(cell("a|b\nc"), r"a\|b c");
        assert_eq!(cell("<script>&"), "&lt;script&gt;&amp;");
        assert_eq!(cell("my_role [x] `y`"), r"my\_role \[x\] \`y\`");
    }
}
