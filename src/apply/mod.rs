//! The executor: walks a `Plan` in its order, runs independent changes concurrently, emits
//! events (started, done, failed, skipped). It makes no decisions of its own.
