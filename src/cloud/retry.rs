//! When and how long to wait before another attempt: capped exponential backoff with full
//! jitter, bounded in attempts and in total time. *What* is retryable is decided by
//! [`super::Error::is_retryable`] (throttling, 5xx, timeouts, dropped connections).

use std::time::Duration;

/// Retry bounds. Defaults: 6 attempts, 200 ms base (1 s for throttling), 10 s cap, 60 s
/// total.
#[derive(Debug, Clone, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = never retry).
    pub max_attempts: u32,
    /// First backoff ceiling for 5xx / transport errors.
    pub base_delay: Duration,
    /// First backoff ceiling for throttling (the service asked us to slow down).
    pub throttling_base_delay: Duration,
    /// No single wait is longer than this (a `x-acs-retry-after` included).
    pub max_delay: Duration,
    /// No retry starts once this much time has passed since the first attempt.
    pub max_elapsed: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(200),
            throttling_base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
            max_elapsed: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// Never retry.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The ceiling of the wait after failed attempt number `attempt` (1-based):
    /// `min(max_delay, base × 2^(attempt-1))`.
    pub fn ceiling(&self, attempt: u32, throttled: bool) -> Duration {
        let base = if throttled {
            self.throttling_base_delay
        } else {
            self.base_delay
        };
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
        base.saturating_mul(factor).min(self.max_delay)
    }

    /// The wait after failed attempt `attempt`: full jitter, uniform in `[0, ceiling]`, but
    /// never less than what the service asked for in `x-acs-retry-after` (capped).
    pub fn delay(&self, attempt: u32, throttled: bool, retry_after: Option<Duration>) -> Duration {
        let ceiling = self.ceiling(attempt, throttled);
        let jitter = Duration::from_secs_f64(rand::random_range(0.0..=ceiling.as_secs_f64()));
        match retry_after {
            Some(asked) => jitter.max(asked).min(self.max_delay),
            None => jitter,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_grows_exponentially_and_is_capped() {
        let p = RetryPolicy::default();
        assert_eq!(p.ceiling(1, false), Duration::from_millis(200));
        assert_eq!(p.ceiling(2, false), Duration::from_millis(400));
        assert_eq!(p.ceiling(4, false), Duration::from_millis(1600));
        assert_eq!(p.ceiling(20, false), p.max_delay);
        assert_eq!(p.ceiling(1, true), Duration::from_secs(1));
        assert_eq!(p.ceiling(u32::MAX, true), p.max_delay);
    }

    #[test]
    fn delays_are_jittered_within_bounds_and_honour_retry_after() {
        let p = RetryPolicy::default();
        let mut distinct = std::collections::BTreeSet::new();
        for attempt in 1..8 {
            for _ in 0..200 {
                let d = p.delay(attempt, false, None);
                assert!(d <= p.ceiling(attempt, false));
                distinct.insert(d.as_nanos());
            }
        }
        assert!(distinct.len() > 100, "full jitter spreads the waits");
        for _ in 0..100 {
            let d = p.delay(1, true, Some(Duration::from_secs(3)));
            assert!(d >= Duration::from_secs(3) && d <= p.max_delay);
        }
        assert_eq!(
            p.delay(1, true, Some(Duration::from_secs(3600))),
            p.max_delay
        );
    }
}
