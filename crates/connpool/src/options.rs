//! The pool options both builders share: their defaults, the rules that validate
//! them, and the decisions they drive (when a connection has expired, when it needs a
//! health check, how often the janitor runs, how long the dial backoff waits).
//!
//! One place decides what each option means, so the async pool and the blocking pool
//! cannot drift apart: the async builder's `Config` is this [`Options`], and the
//! blocking builder stores one next to its own extras. The async builder keeps its
//! own validation (its error type) for now; the blocking builder uses
//! [`Options::validate`].
//!
//! Validation is stricter than "non-zero": sizes are bounded by [`MAX_SIZE_LIMIT`],
//! durations by [`MAX_DURATION`] (so no deadline computed from them can overflow the
//! clock), retries by [`MAX_HEALTH_RETRIES`].
#![cfg_attr(not(feature = "blocking"), allow(dead_code))]

use crate::WaitPolicy;
use std::time::{Duration, Instant};

/// The largest `max_size` accepted (2^32 − 1), the async pool's bound.
pub(crate) const MAX_SIZE_LIMIT: usize = u32::MAX as usize;
/// The longest duration any setting accepts (one year). "Wait forever" is
/// [`WaitPolicy::Queue`], not a huge timeout.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// The most health-check retries one `get` may make.
pub(crate) const MAX_HEALTH_RETRIES: u32 = 1_000;
/// The shortest janitor period accepted: a shorter one only burns a core.
pub(crate) const MIN_JANITOR_INTERVAL: Duration = Duration::from_millis(1);
/// The derived janitor period's bounds (see [`Options::janitor_period`]).
const JANITOR_PERIOD: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(30));

/// The options every connection pool builder has, with the async pool's defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Options {
    pub(crate) max_size: usize,
    pub(crate) min_idle: usize,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) max_idle_time: Option<Duration>,
    pub(crate) health_check_after: Duration,
    pub(crate) max_health_retries: u32,
    pub(crate) connect_timeout: Duration,
    pub(crate) wait: WaitPolicy,
    pub(crate) janitor_interval: Option<Duration>,
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    /// Failed dials one `get` retries (within the connect timeout); `u32::MAX`
    /// means no count limit.
    pub(crate) connect_retries: u32,
}

impl Default for Options {
    /// Max 10, no min idle, no lifetimes, checks after 500 ms unused, 3 health
    /// retries, 30 s connect timeout (failed dials retried within it, no count
    /// limit), wait in line at most 30 s, dial backoff 10 ms → 500 ms.
    fn default() -> Self {
        Options {
            max_size: 10,
            min_idle: 0,
            max_lifetime: None,
            max_idle_time: None,
            health_check_after: Duration::from_millis(500),
            max_health_retries: 3,
            connect_timeout: Duration::from_secs(30),
            wait: WaitPolicy::default(),
            janitor_interval: None,
            backoff_min: Duration::from_millis(10),
            backoff_max: Duration::from_millis(500),
            connect_retries: u32::MAX,
        }
    }
}

/// Which time limit a connection has passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    Lifetime,
    Idle,
}

/// Why a set of options was refused; each builder maps it onto its public error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OptionError {
    ZeroMaxSize,
    MaxSizeTooLarge {
        max_size: usize,
        limit: usize,
    },
    MinIdleAboveMaxSize {
        min_idle: usize,
        max_size: usize,
    },
    ZeroDuration {
        setting: &'static str,
    },
    DurationTooLong {
        setting: &'static str,
        limit: Duration,
    },
    /// A setting below its smallest accepted value (other than zero).
    OutOfRange {
        setting: &'static str,
    },
    TooManyHealthRetries {
        retries: u32,
        limit: u32,
    },
    BackoffRange {
        min: Duration,
        max: Duration,
    },
    IdleTimeAboveLifetime,
}

impl Options {
    /// Whether a connection created at `created` and last used at `last_used` is past
    /// its lifetime (checked first) or idle limit at `now`. Saturating: a stamp
    /// taken after `now` by another thread counts as no time at all.
    pub(crate) fn expired(
        &self,
        created: Instant,
        last_used: Instant,
        now: Instant,
    ) -> Option<Expiry> {
        if self.max_lifetime.is_some_and(|l| now.saturating_duration_since(created) >= l) {
            Some(Expiry::Lifetime)
        } else if self.max_idle_time.is_some_and(|l| now.saturating_duration_since(last_used) >= l)
        {
            Some(Expiry::Idle)
        } else {
            None
        }
    }

    /// Whether a connection last used at `last_used` skips the checkout health check.
    pub(crate) fn recently_used(&self, last_used: Instant, now: Instant) -> bool {
        now.saturating_duration_since(last_used) < self.health_check_after
    }

    /// Whether any time limit applies (only then does a return need the clock).
    pub(crate) fn has_time_limits(&self) -> bool {
        self.max_lifetime.is_some() || self.max_idle_time.is_some()
    }

    /// How often the janitor wakes: `janitor_interval` if set, else a quarter of the
    /// shortest connection time limit clamped to [100 ms, 30 s], so an expired
    /// connection lives at most ~25 % past its limit (checkout and return catch it
    /// sooner).
    pub(crate) fn janitor_period(&self) -> Duration {
        if let Some(every) = self.janitor_interval {
            return every;
        }
        let shortest = [self.max_lifetime, self.max_idle_time].into_iter().flatten().min();
        match shortest {
            Some(limit) => (limit / 4).clamp(JANITOR_PERIOD.0, JANITOR_PERIOD.1),
            None => JANITOR_PERIOD.1,
        }
    }

    /// Whether the pool needs a janitor at all.
    pub(crate) fn needs_janitor(&self) -> bool {
        self.min_idle > 0 || self.has_time_limits()
    }

    /// The dial backoff's delay after `failures` consecutive failed dials (≥ 1):
    /// `backoff_min · 2^(failures − 1)` capped at `backoff_max`, then drawn from its
    /// upper half by `random` (any `u64`, uniformly distributed), so callers of many
    /// pools do not retry in step. Never overflows.
    pub(crate) fn backoff_delay(&self, failures: u32, random: u64) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        let ceiling = self
            .backoff_min
            .checked_mul(1u32 << doublings)
            .unwrap_or(self.backoff_max)
            .min(self.backoff_max);
        let fraction = (random >> 11) as f64 / (1u64 << 53) as f64;
        Duration::try_from_secs_f64(ceiling.as_secs_f64() * (0.5 + fraction / 2.0))
            .map_or(ceiling, |d| d.min(ceiling))
    }

    /// Checks every option (the first problem found wins).
    pub(crate) fn validate(&self) -> Result<(), OptionError> {
        check_size(self.max_size, self.min_idle)?;
        if self.max_health_retries > MAX_HEALTH_RETRIES {
            return Err(OptionError::TooManyHealthRetries {
                retries: self.max_health_retries,
                limit: MAX_HEALTH_RETRIES,
            });
        }
        let wait = match self.wait {
            WaitPolicy::Timeout(d) => Some(d),
            _ => None,
        };
        // Settings where zero would be meaningless.
        let positive = [
            ("max_lifetime", self.max_lifetime),
            ("max_idle_time", self.max_idle_time),
            ("connect_timeout", Some(self.connect_timeout)),
            ("janitor_interval", self.janitor_interval),
            ("wait timeout", wait),
            ("dial backoff min", Some(self.backoff_min)),
        ];
        if let Some((setting, _)) = positive.iter().find(|(_, d)| *d == Some(Duration::ZERO)) {
            return Err(OptionError::ZeroDuration { setting });
        }
        let bounded = positive.into_iter().chain([
            ("health_check_after", Some(self.health_check_after)),
            ("dial backoff max", Some(self.backoff_max)),
        ]);
        for (setting, d) in bounded {
            if d.is_some_and(|d| d > MAX_DURATION) {
                return Err(OptionError::DurationTooLong { setting, limit: MAX_DURATION });
            }
        }
        if self.janitor_interval.is_some_and(|every| every < MIN_JANITOR_INTERVAL) {
            return Err(OptionError::OutOfRange { setting: "janitor_interval" });
        }
        if self.backoff_min > self.backoff_max {
            return Err(OptionError::BackoffRange { min: self.backoff_min, max: self.backoff_max });
        }
        if let (Some(idle), Some(life)) = (self.max_idle_time, self.max_lifetime) {
            if idle > life {
                return Err(OptionError::IdleTimeAboveLifetime);
            }
        }
        Ok(())
    }
}

/// The size rules shared by the builders and `resize`.
pub(crate) fn check_size(max_size: usize, min_idle: usize) -> Result<(), OptionError> {
    if max_size == 0 {
        return Err(OptionError::ZeroMaxSize);
    }
    if max_size > MAX_SIZE_LIMIT {
        return Err(OptionError::MaxSizeTooLarge { max_size, limit: MAX_SIZE_LIMIT });
    }
    if min_idle > max_size {
        return Err(OptionError::MinIdleAboveMaxSize { min_idle, max_size });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn the_defaults_are_valid_and_match_the_async_builder() {
        let o = Options::default();
        assert_eq!(o.validate(), Ok(()));
        assert_eq!(o.wait, WaitPolicy::Timeout(Duration::from_secs(30)));
        assert_eq!((o.backoff_min, o.backoff_max), (ms(10), ms(500)));
    }

    #[test]
    fn expiry_checks_the_lifetime_first_and_saturates() {
        let o = Options {
            max_lifetime: Some(ms(100)),
            max_idle_time: Some(ms(50)),
            ..Options::default()
        };
        let t0 = Instant::now();
        assert_eq!(o.expired(t0, t0, t0 + ms(49)), None);
        assert_eq!(o.expired(t0, t0, t0 + ms(50)), Some(Expiry::Idle));
        assert_eq!(o.expired(t0, t0 + ms(90), t0 + ms(100)), Some(Expiry::Lifetime));
        // A stamp from the future (another thread's clock read) is no time at all.
        assert_eq!(o.expired(t0 + ms(500), t0 + ms(500), t0), None);
        assert!(o.recently_used(t0 + ms(1), t0));
    }

    #[test]
    fn the_janitor_period_is_a_quarter_of_the_shortest_limit_clamped() {
        let mut o = Options::default();
        assert_eq!(o.janitor_period(), Duration::from_secs(30));
        o.max_idle_time = Some(Duration::from_secs(8));
        assert_eq!(o.janitor_period(), Duration::from_secs(2));
        o.max_lifetime = Some(ms(40));
        o.max_idle_time = None;
        assert_eq!(o.janitor_period(), ms(100));
        o.janitor_interval = Some(ms(5));
        assert_eq!(o.janitor_period(), ms(5));
    }

    #[test]
    fn the_backoff_doubles_to_its_cap_in_the_upper_half_and_never_overflows() {
        let o = Options { backoff_min: ms(10), backoff_max: ms(100), ..Options::default() };
        for random in [0, u64::MAX / 3, u64::MAX] {
            for (failures, ceiling) in
                [(1, 10), (2, 20), (3, 40), (4, 80), (5, 100), (u32::MAX, 100)]
            {
                let d = o.backoff_delay(failures, random);
                assert!(d >= ms(ceiling) / 2 && d <= ms(ceiling), "{failures}: {d:?}");
            }
        }
        let huge = Options { backoff_min: MAX_DURATION, backoff_max: MAX_DURATION, ..o };
        assert!(huge.backoff_delay(u32::MAX, u64::MAX) <= MAX_DURATION);
    }

    #[test]
    fn every_bad_value_is_a_typed_error() {
        let ok = Options::default();
        let bad = |o: Options| o.validate().unwrap_err();
        assert_eq!(bad(Options { max_size: 0, ..ok }), OptionError::ZeroMaxSize);
        assert!(matches!(
            bad(Options { max_size: usize::MAX, ..ok }),
            OptionError::MaxSizeTooLarge { .. }
        ));
        assert!(matches!(
            bad(Options { min_idle: 11, ..ok }),
            OptionError::MinIdleAboveMaxSize { .. }
        ));
        assert!(matches!(
            bad(Options { max_health_retries: u32::MAX, ..ok }),
            OptionError::TooManyHealthRetries { .. }
        ));
        assert_eq!(
            bad(Options { connect_timeout: Duration::ZERO, ..ok }),
            OptionError::ZeroDuration { setting: "connect_timeout" }
        );
        assert!(matches!(
            bad(Options { health_check_after: Duration::MAX, ..ok }),
            OptionError::DurationTooLong { setting: "health_check_after", .. }
        ));
        assert_eq!(
            bad(Options { janitor_interval: Some(Duration::from_micros(10)), ..ok }),
            OptionError::OutOfRange { setting: "janitor_interval" }
        );
        assert_eq!(
            bad(Options { backoff_min: ms(9), backoff_max: ms(8), ..ok }),
            OptionError::BackoffRange { min: ms(9), max: ms(8) }
        );
        assert_eq!(
            bad(Options { max_lifetime: Some(ms(1)), max_idle_time: Some(ms(2)), ..ok }),
            OptionError::IdleTimeAboveLifetime
        );
        assert_eq!(Options { health_check_after: Duration::ZERO, ..ok }.validate(), Ok(()));
    }
}
