//! JSON: the serde form of [`Plan`], pretty-printed, with `format_version` first. Struct
//! fields keep their declared order and maps are sorted, so the output is stable. This is
//! also the saved-plan format `immctl apply PLAN.json` reads back.

use std::io::{self, Write};

use crate::plan::Plan;

/// Render `plan` as JSON (one document, trailing newline).
pub fn render_json(plan: &Plan, w: &mut impl Write) -> io::Result<()> {
    // `io::Error::from` hands back serde_json's underlying write error as it was, kind
    // included: `io::Error::other` turned a closed stdout (`BrokenPipe`) into `Other`, so a
    // `--format json` dry run read by `head` failed instead of finishing (saving `--out`).
    serde_json::to_writer_pretty(&mut *w, plan).map_err(io::Error::from)?;
    writeln!(w)
}
