//! Plan renderers: text, JSON (versioned), Markdown. Each takes `&Plan` and a writer and
//! never fetches anything.
