//! Shared rig for the `live` and `apply` emulator tests: an emulator on 127.0.0.1:0, a real
//! signed `cloud::Client` against it (fast retries; client quotas scaled like the emulator's,
//! off when the emulator's are), and fetch -> diff -> check -> execute in one call.

use std::time::Duration;

use immctl::apply::{ApplyReport, CloudOpRunner, Event, ExecuteOptions, execute};
use immctl::cloud::{
    Client, ClientConfig, CredentialsProvider, Endpoints, RateLimits, RetryPolicy,
};
use immctl::emulator::{self, EmulatorHandle, EmulatorOptions};
use immctl::live::{self, Live, Scope};
use immctl::manifest::Desired;
use immctl::plan::{self, Plan, PlanSettings, testing};

pub const REGION: &str = testing::REGION;

/// `quota_scale`: the emulator's `rate_limit_scale`; 0 turns the client's own buckets off.
pub fn client(endpoint: &str, quota_scale: f64) -> Client {
    client_as(endpoint, quota_scale, "emulator-admin", "emulator-secret")
}

/// [`client`] signing with another access key (a RAM user of the emulator's state).
pub fn client_as(endpoint: &str, quota_scale: f64, key_id: &str, secret: &str) -> Client {
    let mut c = ClientConfig::new(CredentialsProvider::static_ak(key_id, secret));
    c.endpoints = Endpoints::single(endpoint);
    c.region = REGION.to_string();
    c.rate_limits = if quota_scale > 0.0 {
        RateLimits {
            scale: quota_scale,
            ..RateLimits::default()
        }
    } else {
        RateLimits::unlimited()
    };
    c.retry = RetryPolicy {
        max_attempts: 8,
        base_delay: Duration::from_millis(5),
        throttling_base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        max_elapsed: Duration::from_secs(20),
    };
    c.max_concurrency = 16;
    Client::new(c).expect("client builds")
}

pub fn exec_opts() -> ExecuteOptions {
    ExecuteOptions {
        max_concurrency: 8,
        consistency_timeout: Duration::from_secs(10),
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(250),
        transient_retries: 5,
        ..ExecuteOptions::default()
    }
}

pub struct Rig {
    pub emu: EmulatorHandle,
    pub client: Client,
    pub runner: CloudOpRunner,
}

impl Rig {
    pub async fn start(opts: EmulatorOptions) -> Rig {
        let scale = opts.rate_limit_scale;
        let emu = emulator::spawn(opts).await.expect("emulator starts");
        let client = client(&emu.endpoint(), scale);
        let runner = CloudOpRunner::new(client.clone());
        Rig {
            emu,
            client,
            runner,
        }
    }

    pub async fn empty() -> Rig {
        Rig::start(EmulatorOptions::default()).await
    }

    pub async fn fetch(&self, desired: &Desired, owner: &str) -> Live {
        let scope = Scope::from_desired(desired, owner, REGION);
        live::fetch(&self.client, &scope)
            .await
            .unwrap_or_else(|e| panic!("fetch: {e}"))
    }

    /// fetch -> diff -> check.
    pub async fn plan(&self, desired: &Desired, settings: &PlanSettings) -> Plan {
        let live = self.fetch(desired, &settings.owner).await;
        let plan = plan::diff(desired, &live, settings);
        if let Err(errs) = plan::check(&plan) {
            panic!("plan::check: {errs:#?}");
        }
        plan
    }

    pub async fn apply(&self, plan: &Plan) -> (ApplyReport, Vec<Event>) {
        self.apply_with(plan, &exec_opts()).await
    }

    pub async fn apply_with(
        &self,
        plan: &Plan,
        opts: &ExecuteOptions,
    ) -> (ApplyReport, Vec<Event>) {
        let mut events = Vec::new();
        let report = execute(plan, &self.runner, opts, &mut |e| events.push(e)).await;
        (report, events)
    }

    /// Plan and apply once.
    pub async fn reconcile(
        &self,
        desired: &Desired,
        settings: &PlanSettings,
    ) -> (Plan, ApplyReport) {
        let plan = self.plan(desired, settings).await;
        let (report, _) = self.apply(&plan).await;
        (plan, report)
    }

    /// Plan, apply (which must succeed), then assert a second plan is empty.
    pub async fn converge(&self, desired: &Desired, settings: &PlanSettings) -> Plan {
        let (plan, report) = self.reconcile(desired, settings).await;
        assert!(
            report.is_success(),
            "apply failed: {}\n{:#?}",
            report.summary(),
            report.failures
        );
        self.assert_no_changes(desired, settings).await;
        plan
    }

    pub async fn assert_no_changes(&self, desired: &Desired, settings: &PlanSettings) {
        let again = self.plan(desired, settings).await;
        assert!(
            again.is_empty(),
            "second plan is not empty: {:#?}",
            again
                .changes
                .iter()
                .map(|c| (c.address.to_string(), c.reasons.clone()))
                .collect::<Vec<_>>()
        );
    }
}

/// Every op name in the plan, in order, as `Action target`.
pub fn op_names(plan: &Plan) -> Vec<String> {
    plan.changes
        .iter()
        .flat_map(|c| {
            c.ops
                .iter()
                .map(move |o| format!("{} {}", immctl::apply::op_name(o), c.address))
        })
        .collect()
}
