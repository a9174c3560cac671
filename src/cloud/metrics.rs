//! Call counters per action, shared by a client and its clones. The daemon exports them as
//! Prometheus `immctl_api_calls_total{action,code}` (from [`ActionMetrics::responses`]).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

/// Label of a successful answer in [`ActionMetrics::responses`].
pub const SUCCESS: &str = "Success";

/// Counters of one action.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionMetrics {
    /// Logical calls (one per operation method call, however many attempts it took).
    pub calls: u64,
    /// HTTP attempts sent.
    pub attempts: u64,
    /// Attempts that were retries (`attempts - calls` when every call ended).
    pub retries: u64,
    /// Every attempt's outcome: `Success`, the API `Code`, or `Transport` / `Timeout` / ...
    pub responses: BTreeMap<String, u64>,
    /// Errors returned to the caller (after retries), by code.
    pub errors: BTreeMap<String, u64>,
}

/// A point-in-time copy of every action's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    pub actions: BTreeMap<String, ActionMetrics>,
}

impl MetricsSnapshot {
    pub fn action(&self, action: &str) -> ActionMetrics {
        self.actions.get(action).cloned().unwrap_or_default()
    }
    pub fn total_retries(&self) -> u64 {
        self.actions.values().map(|a| a.retries).sum()
    }
    pub fn total_calls(&self) -> u64 {
        self.actions.values().map(|a| a.calls).sum()
    }
    /// Attempts answered with `code`, over all actions.
    pub fn responses_with_code(&self, code: &str) -> u64 {
        self.actions
            .values()
            .map(|a| a.responses.get(code).copied().unwrap_or(0))
            .sum()
    }
    /// Errors with `code` returned to callers, over all actions.
    pub fn errors_with_code(&self, code: &str) -> u64 {
        self.actions
            .values()
            .map(|a| a.errors.get(code).copied().unwrap_or(0))
            .sum()
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Metrics {
    inner: Arc<Mutex<BTreeMap<String, ActionMetrics>>>,
}

impl Metrics {
    fn with(&self, action: &str, f: impl FnOnce(&mut ActionMetrics)) {
        let mut map = self.inner.lock().expect("metrics lock poisoned");
        f(map.entry(action.to_string()).or_default());
    }
    pub(crate) fn call(&self, action: &str) {
        self.with(action, |m| m.calls += 1);
    }
    pub(crate) fn attempt(&self, action: &str, outcome: &str, retry: bool) {
        self.with(action, |m| {
            m.attempts += 1;
            if retry {
                m.retries += 1;
            }
            *m.responses.entry(outcome.to_string()).or_default() += 1;
        });
    }
    pub(crate) fn error(&self, action: &str, code: &str) {
        self.with(action, |m| {
            *m.errors.entry(code.to_string()).or_default() += 1
        });
    }
    pub(crate) fn snapshot(&self) -> MetricsSnapshot {
        MetricsSnapshot {
            actions: self.inner.lock().expect("metrics lock poisoned").clone(),
        }
    }
}
