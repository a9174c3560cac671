//! The daemon's Prometheus metrics, rendered in the text exposition format 0.0.4 (what
//! `promtool check metrics` and every Prometheus server read).
//!
//! Built on the `prometheus` crate (tikv/rust-prometheus, no protobuf): its `TextEncoder`
//! writes the classic text format with HELP and TYPE for every family. (The official
//! `prometheus-client` crate writes OpenMetrics, whose counters are declared without their
//! `_total` suffix; `promtool check metrics` rejects that text, so it did not fit.)
//!
//! API call counters live in the cloud client ([`crate::cloud::MetricsSnapshot`]); they are
//! copied into `immctl_api_calls_total` at scrape time, so a scrape shows calls made by a
//! tick still running.
//!
//! Must not: label anything with unbounded values (resource names, messages, request ids).
//! Labels are closed sets: tick results, plan actions, finding severities, API action names
//! and error codes.

use std::sync::Mutex;

use prometheus::{
    Encoder, Gauge, Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::cloud::MetricsSnapshot;
use crate::plan::{Action, Severity};

use super::TickResult;

/// `Content-Type` of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const ACTIONS: [Action; 4] = [
    Action::Create,
    Action::Update,
    Action::Adopt,
    Action::Delete,
];
const SEVERITIES: [Severity; 3] = [Severity::Error, Severity::Warning, Severity::Info];

/// Every metric the daemon exports (docs/daemon.md lists them).
pub(crate) struct Metrics {
    registry: Registry,
    pub ticks: IntCounterVec,
    pub tick_duration: Histogram,
    pub drifted: IntGaugeVec,
    pub applied: IntCounterVec,
    pub change_failures: IntCounterVec,
    api_calls: IntCounterVec,
    pub last_success: Gauge,
    pub last_tick: Gauge,
    pub manifests_valid: IntGauge,
    pub findings: IntGaugeVec,
    pub consecutive_failures: IntGauge,
    pub ready: IntGauge,
    /// Serializes the copy of the client's counters, so two scrapes never add a delta twice.
    api_sync: Mutex<()>,
}

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let registry = Registry::new();
        let counter_vec = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(c.clone()))
                .expect("metric registered once");
            c
        };
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("metric registered once");
            g
        };
        let int_gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("metric registered once");
            g
        };
        let gauge = |name: &str, help: &str| {
            let g = Gauge::new(name, help).expect("valid metric");
            registry
                .register(Box::new(g.clone()))
                .expect("metric registered once");
            g
        };

        let ticks = counter_vec(
            "immctl_ticks_total",
            "Reconcile ticks, by how they ended (success, invalid_manifests, blocked, read_error, preflight_error, apply_error, interrupted).",
            &["result"],
        );
        let tick_duration = Histogram::with_opts(
            HistogramOpts::new(
                "immctl_tick_duration_seconds",
                "Duration of a reconcile tick (load, read, plan, apply), in seconds.",
            )
            .buckets(vec![
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
            ]),
        )
        .expect("valid metric");
        registry
            .register(Box::new(tick_duration.clone()))
            .expect("metric registered once");
        let drifted = gauge_vec(
            "immctl_drifted_resources",
            "Resources whose live state differed from the manifests at the last plan, by the planned action.",
            &["action"],
        );
        let applied = counter_vec(
            "immctl_changes_applied_total",
            "Changes applied successfully, by action.",
            &["action"],
        );
        let change_failures = counter_vec(
            "immctl_change_failures_total",
            "Changes that failed on their own account (not the dependents skipped because of them), by action.",
            &["action"],
        );
        let api_calls = counter_vec(
            "immctl_api_calls_total",
            "RAM / IMM / STS API requests (retries included), by API action and outcome: Success, the API error Code, or a client-side class (Transport, Timeout, Decode, Credentials, ...).",
            &["action", "code"],
        );
        let last_success = gauge(
            "immctl_last_success_timestamp_seconds",
            "Unix time at which the last successful tick ended; 0 before the first.",
        );
        let last_tick = gauge(
            "immctl_last_tick_timestamp_seconds",
            "Unix time at which the last tick ended, whatever its result; 0 before the first.",
        );
        let manifests_valid = int_gauge(
            "immctl_manifests_valid",
            "1 when the last load of the manifests had no error, else 0 (nothing is applied or pruned then).",
        );
        let findings = gauge_vec(
            "immctl_plan_findings",
            "Lint, planner and preflight findings of the last plan, by severity (error findings block apply).",
            &["severity"],
        );
        let consecutive_failures = int_gauge(
            "immctl_consecutive_failed_ticks",
            "Ticks that failed in a row since the last success (drives the retry backoff).",
        );
        let ready = int_gauge(
            "immctl_ready",
            "1 when /readyz answers 200: a tick succeeded within the last three intervals and the manifests are valid.",
        );
        let build_info = gauge_vec(
            "immctl_build_info",
            "Always 1; the version label names the running immctl.",
            &["version"],
        );
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);

        // Known label values start at 0, so rates and alerts work from the first scrape.
        for r in TickResult::ALL {
            ticks.with_label_values(&[r.as_str()]);
        }
        for a in ACTIONS {
            drifted.with_label_values(&[a.as_str()]);
            applied.with_label_values(&[a.as_str()]);
            change_failures.with_label_values(&[a.as_str()]);
        }
        for s in SEVERITIES {
            findings.with_label_values(&[s.as_str()]);
        }

        Metrics {
            registry,
            ticks,
            tick_duration,
            drifted,
            applied,
            change_failures,
            api_calls,
            last_success,
            last_tick,
            manifests_valid,
            findings,
            consecutive_failures,
            ready,
            api_sync: Mutex::new(()),
        }
    }

    /// Set the drift and findings gauges from a plan's counts (every action and severity,
    /// zeros included, so a resolved drift reads 0 rather than its old value).
    pub(crate) fn set_plan(
        &self,
        by_action: &[(Action, usize)],
        by_severity: &[(Severity, usize)],
    ) {
        for a in ACTIONS {
            let n = by_action
                .iter()
                .find(|(x, _)| *x == a)
                .map_or(0, |(_, n)| *n);
            self.drifted.with_label_values(&[a.as_str()]).set(n as i64);
        }
        for s in SEVERITIES {
            let n = by_severity
                .iter()
                .find(|(x, _)| *x == s)
                .map_or(0, |(_, n)| *n);
            self.findings.with_label_values(&[s.as_str()]).set(n as i64);
        }
    }

    /// Copy the client's per-attempt outcome counters (monotonic) into `immctl_api_calls_total`.
    fn sync_api_calls(&self, snapshot: &MetricsSnapshot) {
        let _guard = self.api_sync.lock().unwrap_or_else(|p| p.into_inner());
        for (action, m) in &snapshot.actions {
            for (code, n) in &m.responses {
                let c = self
                    .api_calls
                    .with_label_values(&[action.as_str(), code.as_str()]);
                let seen = c.get();
                if *n > seen {
                    c.inc_by(n - seen);
                }
            }
        }
    }

    /// The text exposition of every metric, with the client's API counters as of now.
    pub(crate) fn render(&self, api: &MetricsSnapshot, ready: bool) -> String {
        self.sync_api_calls(api);
        self.ready.set(i64::from(ready));
        let mut buf = Vec::new();
        // Encoding into a Vec cannot fail on I/O; a family the encoder rejects would be our
        // bug, and the families it did write are still worth serving.
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut buf) {
            tracing::error!(error = %e, "bug: a metric could not be encoded; please report it");
        }
        String::from_utf8_lossy(&buf).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::ActionMetrics;

    fn snapshot(n: u64) -> MetricsSnapshot {
        let mut m = ActionMetrics::default();
        m.responses.insert("Success".into(), n);
        m.responses.insert("Throttling.User".into(), 1);
        let mut s = MetricsSnapshot::default();
        s.actions.insert("ListRoles".into(), m);
        s
    }

    #[test]
    fn every_family_has_help_and_type_and_counters_end_in_total() {
        let m = Metrics::new();
        let text = m.render(&snapshot(3), true);
        let mut families = 0;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                families += 1;
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(name.starts_with("immctl_"), "{name}");
                assert!(
                    text.contains(&format!("# HELP {name} ")),
                    "{name} has no HELP"
                );
                assert_eq!(kind == "counter", name.ends_with("_total"), "{name} {kind}");
            }
        }
        assert_eq!(families, 13, "{text}");
        assert!(text.contains("immctl_ticks_total{result=\"invalid_manifests\"} 0"));
        assert!(text.contains("immctl_drifted_resources{action=\"delete\"} 0"));
        assert!(text.contains("immctl_ready 1"));
        assert!(text.contains("immctl_build_info{version=\""));
    }

    #[test]
    fn api_calls_follow_the_client_counters_without_double_counting() {
        let m = Metrics::new();
        m.render(&snapshot(3), false);
        m.render(&snapshot(3), false);
        let text = m.render(&snapshot(5), false);
        assert!(
            text.contains("immctl_api_calls_total{action=\"ListRoles\",code=\"Success\"} 5"),
            "{text}"
        );
        assert!(
            text.contains(
                "immctl_api_calls_total{action=\"ListRoles\",code=\"Throttling.User\"} 1"
            ),
            "{text}"
        );
    }

    #[test]
    fn plan_gauges_reset_actions_that_no_longer_drift() {
        let m = Metrics::new();
        m.set_plan(
            &[(Action::Create, 2), (Action::Delete, 1)],
            &[(Severity::Warning, 3)],
        );
        let t = m.render(&MetricsSnapshot::default(), false);
        assert!(t.contains("immctl_drifted_resources{action=\"create\"} 2"));
        assert!(t.contains("immctl_plan_findings{severity=\"warning\"} 3"));
        m.set_plan(&[], &[]);
        let t = m.render(&MetricsSnapshot::default(), false);
        assert!(t.contains("immctl_drifted_resources{action=\"create\"} 0"));
        assert!(t.contains("immctl_drifted_resources{action=\"delete\"} 0"));
        assert!(t.contains("immctl_plan_findings{severity=\"warning\"} 0"));
    }
}
