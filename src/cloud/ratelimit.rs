//! Client-side per-action token buckets, sized to the documented quotas
//! (reference/alibaba-api.md §1.6), so a large reconcile draws (nearly) no `Throttling` from
//! the service. One [`RateLimiter`] belongs to one client and all its clones: every task
//! working against one account draws from the same buckets.
//!
//! The service counts per (action, account) and may count in fixed one-second windows, so
//! the buckets run just below the quota: capacity = quota × `burst_fraction` (at least one
//! token), rate = quota × `headroom` but never more than quota − capacity. A window of one
//! second then sees at most capacity + rate ≤ quota calls sent, fixed or sliding, whatever
//! the class. With the defaults (0.95, 0.05) that is 95/s + 5 for reads (100/s), 19/s + 1 for
//! writes (20/s) and 9/s + 1 for attach/detach (10/s): a long reconcile runs at 95%, 95% and
//! 90% of the quotas (BENCHMARKS.md measures it; 0.8 / 0.2 left 20% of every quota unused).
//! Waiting uses `tokio::time`, so tests can pause the clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::client::Product;

/// Quota class of an action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaClass {
    /// Get*/List*: 100/s on RAM.
    Read,
    /// Create/Update/Delete/SetDefault: 20/s.
    Write,
    /// Attach/Detach/Tag/Untag: 10/s.
    Attach,
}

/// Which class an action falls in (by its name, as the quota page groups them).
pub fn quota_class(action: &str) -> QuotaClass {
    if action.starts_with("Get") || action.starts_with("List") {
        QuotaClass::Read
    } else if action.starts_with("Attach")
        || action.starts_with("Detach")
        || action == "TagResources"
        || action == "UntagResources"
    {
        QuotaClass::Attach
    } else {
        QuotaClass::Write
    }
}

/// Quotas per second (before `scale`). Defaults are the documented RAM figures; IMM's are
/// assumed (reads 100/s, writes 20/s) and STS's (100/s) too, until checked.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimits {
    pub ram_read: f64,
    pub ram_write: f64,
    pub ram_attach: f64,
    pub imm_read: f64,
    pub imm_write: f64,
    /// Every STS action; `None`: not limited.
    pub sts: Option<f64>,
    /// Per-action quota overrides (calls per second, before `scale`).
    pub per_action: HashMap<String, f64>,
    /// Multiplies every quota (the emulator's `--rate-limit-scale`, for fast tests).
    pub scale: f64,
    /// Fraction of the quota the bucket refills at (default 0.95), capped so that capacity +
    /// rate never exceed the quota.
    pub headroom: f64,
    /// Bucket capacity as a fraction of the quota (default 0.05; at least one token).
    pub burst_fraction: f64,
    /// `false` turns the buckets off.
    pub enabled: bool,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            ram_read: 100.0,
            ram_write: 20.0,
            ram_attach: 10.0,
            imm_read: 100.0,
            imm_write: 20.0,
            sts: Some(100.0),
            per_action: HashMap::new(),
            scale: 1.0,
            headroom: 0.95,
            burst_fraction: 0.05,
            enabled: true,
        }
    }
}

impl RateLimits {
    /// Quotas off (unit tests against fakes that do not throttle).
    pub fn unlimited() -> Self {
        RateLimits {
            enabled: false,
            ..RateLimits::default()
        }
    }

    /// The documented quota of an action, per second, after `scale`. `None`: unlimited.
    pub fn quota(&self, product: Product, action: &str) -> Option<f64> {
        if !self.enabled {
            return None;
        }
        let base = if let Some(q) = self.per_action.get(action) {
            Some(*q)
        } else {
            match (product, quota_class(action)) {
                (Product::Ram, QuotaClass::Read) => Some(self.ram_read),
                (Product::Ram, QuotaClass::Write) => Some(self.ram_write),
                (Product::Ram, QuotaClass::Attach) => Some(self.ram_attach),
                (Product::Imm, QuotaClass::Read) => Some(self.imm_read),
                (Product::Imm, _) => Some(self.imm_write),
                (Product::Sts, _) => self.sts,
            }
        };
        base.map(|q| q * self.scale).filter(|q| *q > 0.0)
    }
}

#[derive(Debug)]
struct Bucket {
    rate: f64,
    capacity: f64,
    /// May go negative: callers reserve a token and sleep until it has refilled.
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// Takes one token; returns how long the caller must wait before sending.
    fn reserve(&mut self, now: Instant) -> Duration {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.last = now;
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            // A rate so small that the wait overflows `Duration` waits "forever", not panics.
            Duration::try_from_secs_f64(-self.tokens / self.rate).unwrap_or(Duration::MAX)
        }
    }
}

/// Per-action buckets, shared by clones.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    limits: Arc<RateLimits>,
    buckets: Arc<Mutex<HashMap<(Product, String), Bucket>>>,
}

impl RateLimiter {
    pub fn new(limits: RateLimits) -> Self {
        RateLimiter {
            limits: Arc::new(limits),
            buckets: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn limits(&self) -> &RateLimits {
        &self.limits
    }

    /// Waits until a call of `action` may be sent. Waiters are served in arrival order.
    pub async fn acquire(&self, product: Product, action: &str) {
        let wait = self.reserve(product, action, Instant::now());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    fn reserve(&self, product: Product, action: &str, now: Instant) -> Duration {
        let Some(quota) = self.limits.quota(product, action) else {
            return Duration::ZERO;
        };
        let mut buckets = self.buckets.lock().expect("rate limiter lock poisoned");
        let bucket = buckets
            .entry((product, action.to_string()))
            .or_insert_with(|| {
                let (capacity, rate) = bucket_size(quota, &self.limits);
                Bucket {
                    rate,
                    capacity,
                    tokens: capacity,
                    last: now,
                }
            });
        bucket.reserve(now)
    }
}

/// `(capacity, rate per second)` of the bucket of an action with `quota` per second:
/// capacity + rate ≤ quota, so no one-second window sees more than the quota. (A quota under
/// two calls a second cannot keep that with a whole token of capacity; it then refills at
/// quota × headroom.)
pub fn bucket_size(quota: f64, limits: &RateLimits) -> (f64, f64) {
    let capacity = (quota * limits.burst_fraction).max(1.0);
    let wanted = quota * limits.headroom;
    let rate = if quota - capacity > 0.0 {
        wanted.min(quota - capacity)
    } else {
        wanted
    };
    (capacity, rate.max(f64::MIN_POSITIVE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_fall_in_the_documented_classes() {
        assert_eq!(quota_class("GetRole"), QuotaClass::Read);
        assert_eq!(quota_class("ListTagResources"), QuotaClass::Read);
        assert_eq!(quota_class("CreatePolicyVersion"), QuotaClass::Write);
        assert_eq!(quota_class("SetDefaultPolicyVersion"), QuotaClass::Write);
        assert_eq!(quota_class("AttachPolicyToRole"), QuotaClass::Attach);
        assert_eq!(quota_class("UntagResources"), QuotaClass::Attach);
        let l = RateLimits::default();
        assert_eq!(l.quota(Product::Ram, "GetRole"), Some(100.0));
        assert_eq!(l.quota(Product::Ram, "DeleteRole"), Some(20.0));
        assert_eq!(l.quota(Product::Ram, "DetachPolicyFromRole"), Some(10.0));
        assert_eq!(l.quota(Product::Imm, "UpdateProject"), Some(20.0));
        assert_eq!(l.quota(Product::Sts, "AssumeRole"), Some(100.0));
        let per_action = RateLimits {
            per_action: HashMap::from([("GetRole".to_string(), 7.0)]),
            scale: 2.0,
            ..RateLimits::default()
        };
        assert_eq!(per_action.quota(Product::Ram, "GetRole"), Some(14.0));
        assert_eq!(per_action.quota(Product::Ram, "ListRoles"), Some(200.0));
        let scaled = RateLimits {
            scale: 10.0,
            ..RateLimits::default()
        };
        assert_eq!(scaled.quota(Product::Ram, "ListRoles"), Some(1000.0));
        assert_eq!(RateLimits::unlimited().quota(Product::Ram, "GetRole"), None);
    }

    #[test]
    fn capacity_plus_rate_never_exceed_the_quota() {
        let l = RateLimits::default();
        // The documented classes: reads, writes, attach/detach.
        assert_eq!(bucket_size(100.0, &l), (5.0, 95.0));
        assert_eq!(bucket_size(20.0, &l), (1.0, 19.0));
        assert_eq!(bucket_size(10.0, &l), (1.0, 9.0));
        // Whatever the settings and the scale.
        for quota in [2.0, 3.0, 7.5, 10.0, 20.0, 100.0, 1000.0] {
            for (headroom, burst_fraction) in [(1.0, 0.0), (0.8, 0.2), (0.95, 0.05), (1.0, 0.5)] {
                let l = RateLimits {
                    headroom,
                    burst_fraction,
                    ..RateLimits::default()
                };
                let (c, r) = bucket_size(quota, &l);
                assert!(c >= 1.0 && r > 0.0);
                assert!(
                    c + r <= quota + 1e-9,
                    "{quota} {headroom} {burst_fraction}: {c} + {r}"
                );
            }
        }
        // Below two a second, a whole token plus any rate exceeds the quota: refill at headroom.
        assert_eq!(bucket_size(1.0, &l), (1.0, 0.95));
    }

    /// In every one-second window, no more calls start than the quota allows.
    #[tokio::test(start_paused = true)]
    async fn a_burst_never_exceeds_the_quota_in_any_second() {
        let limiter = RateLimiter::new(RateLimits::default());
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..500 {
            let l = limiter.clone();
            tasks.push(tokio::spawn(async move {
                l.acquire(Product::Ram, "AttachPolicyToRole").await;
                Instant::now()
            }));
        }
        let mut times = Vec::new();
        for t in tasks {
            times.push(t.await.unwrap().duration_since(start).as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        // Sliding one-second windows: at most the quota (10) in each.
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..].iter().take_while(|u| **u < t + 1.0).count();
            assert!(in_window <= 10, "{in_window} calls in the second after {t}");
        }
        // And the limiter does not starve: 500 calls at 9/s (after one token) take 55.4 s.
        let last = *times.last().unwrap();
        assert!((55.0..57.0).contains(&last), "last call at {last}s");
    }

    #[tokio::test(start_paused = true)]
    async fn actions_have_separate_buckets_and_clones_share_them() {
        let a = RateLimiter::new(RateLimits::default());
        let b = a.clone();
        let start = Instant::now();
        for _ in 0..20 {
            a.acquire(Product::Ram, "GetRole").await;
        }
        // The bucket of GetRole is drained; ListPoliciesForRole's is untouched.
        let before_other = Instant::now();
        b.acquire(Product::Ram, "ListPoliciesForRole").await;
        assert_eq!(Instant::now(), before_other);
        // A clone sees the drained GetRole bucket.
        let t0 = Instant::now();
        b.acquire(Product::Ram, "GetRole").await;
        assert!(Instant::now() > t0);
        assert!(Instant::now().duration_since(start) > Duration::ZERO);
    }
}
