//! Plan renderers: text, JSON (versioned), Markdown. Each takes `&Plan` and a writer and
//! never fetches anything; the shared field-by-field view of a change lives in `fields`.
//! Adding a renderer never touches `plan::diff`.

mod fields;
pub mod json;
pub mod markdown;
pub mod text;

pub use json::render_json;
pub use markdown::render_markdown;
pub use text::{render_findings, render_text};

#[cfg(test)]
mod tests;
