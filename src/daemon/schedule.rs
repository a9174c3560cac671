//! When the next tick comes: the interval with jitter after a good tick, a capped exponential
//! backoff after a failed one.
//!
//! Pure: the random draw is an argument, so the schedule is unit-tested without a clock.
//!
//! The backoff starts at `min(interval, 5s)` and doubles per consecutive failure up to the
//! interval itself: a transient failure is retried soon, and a lasting one (a cloud outage,
//! invalid manifests) is retried no more often than a healthy daemon ticks anyway, so a
//! failing daemon never hammers the API harder than a working one.

use std::time::Duration;

/// First retry delay, unless the interval is shorter.
pub const BACKOFF_INITIAL: Duration = Duration::from_secs(5);

/// The tick schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Time between ticks after a good one (before jitter).
    pub interval: Duration,
    /// Each wait is `base * (1 ± jitter)`; a fraction in `[0, 1)`.
    pub jitter: f64,
    /// Wait after the first failed tick in a row (before jitter).
    pub backoff_initial: Duration,
    /// Longest wait after failed ticks (before jitter).
    pub backoff_max: Duration,
}

impl Schedule {
    /// The default schedule for `interval`: backoff from `min(interval, 5s)` up to `interval`.
    pub fn new(interval: Duration, jitter: f64) -> Schedule {
        Schedule {
            interval,
            jitter,
            backoff_initial: interval.min(BACKOFF_INITIAL),
            backoff_max: interval,
        }
    }

    /// The wait before the next tick, without jitter, after `failures` failed ticks in a row
    /// (0: the last tick succeeded).
    pub fn base_delay(&self, failures: u32) -> Duration {
        if failures == 0 {
            return self.interval;
        }
        let max = self.backoff_max.max(self.backoff_initial);
        // 2^(failures-1), saturating long before it could overflow a Duration.
        let factor = 1u32 << (failures - 1).min(20);
        self.backoff_initial.saturating_mul(factor).min(max)
    }

    /// The wait before the next tick; `draw` is uniform in `[0, 1)`.
    pub fn delay(&self, failures: u32, draw: f64) -> Duration {
        jittered(self.base_delay(failures), self.jitter, draw)
    }
}

/// `base * (1 - jitter + 2 * jitter * draw)`: uniform in `base * [1 - jitter, 1 + jitter)`.
pub fn jittered(base: Duration, jitter: f64, draw: f64) -> Duration {
    let jitter = jitter.clamp(0.0, 0.999);
    let draw = draw.clamp(0.0, 1.0);
    base.mul_f64(1.0 - jitter + 2.0 * jitter * draw)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn after_a_success_the_wait_is_the_interval_within_the_jitter() {
        let s = Schedule::new(300 * S, 0.1);
        assert_eq!(s.delay(0, 0.5), 300 * S);
        assert_eq!(s.delay(0, 0.0), 270 * S);
        assert!(s.delay(0, 0.999_999) < 330 * S);
        assert!(s.delay(0, 0.999_999) > 329 * S);
        for i in 0..100 {
            let d = s.delay(0, f64::from(i) / 100.0);
            assert!(d >= 270 * S && d < 330 * S, "{d:?}");
        }
    }

    #[test]
    fn failures_back_off_exponentially_from_five_seconds_capped_at_the_interval() {
        let s = Schedule::new(300 * S, 0.0);
        let waits: Vec<u64> = (1..=9).map(|f| s.delay(f, 0.3).as_secs()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(s.delay(u32::MAX, 0.3), 300 * S);
    }

    #[test]
    fn a_short_interval_backs_off_from_the_interval_itself() {
        let s = Schedule::new(Duration::from_millis(200), 0.0);
        for f in [1, 2, 10] {
            assert_eq!(s.delay(f, 0.7), Duration::from_millis(200));
        }
    }

    #[test]
    fn a_custom_backoff_grows_and_stops_at_its_cap() {
        let s = Schedule {
            interval: 60 * S,
            jitter: 0.0,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_millis(350),
        };
        let waits: Vec<u128> = (1..=4).map(|f| s.delay(f, 0.0).as_millis()).collect();
        assert_eq!(waits, [100, 200, 350, 350]);
    }

    #[test]
    fn zero_jitter_is_exact_and_absurd_draws_are_clamped() {
        assert_eq!(jittered(10 * S, 0.0, 0.9), 10 * S);
        assert_eq!(jittered(10 * S, 0.5, -3.0), 5 * S);
        assert_eq!(jittered(10 * S, 0.5, 7.0), 15 * S);
    }
}
