//! Restart strategies: whether and when a failed job runs again from its latest checkpoint.
//! Every strategy is bounded, so a record that always fails ends the job with its error
//! instead of restarting forever.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// How a failed job is restarted (Flink's `restart-strategy.type` and its options).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "strategy", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RestartStrategy {
    /// Fail the job at the first failure.
    None,
    /// Restart up to `attempts` times, waiting `delay_ms` each time.
    FixedDelay {
        /// Restarts allowed.
        attempts: u32,
        /// Wait before each restart, in milliseconds.
        delay_ms: u64,
    },
    /// Restart with a delay growing by `multiplier` from `initial_delay_ms` to `max_delay_ms`;
    /// after `reset_after_ms` without failure the delay and the count start over.
    ExponentialDelay {
        /// Restarts allowed (in a row, without a reset).
        attempts: u32,
        /// First wait, in milliseconds.
        initial_delay_ms: u64,
        /// Longest wait, in milliseconds.
        max_delay_ms: u64,
        /// Growth of the wait per failure.
        multiplier: f64,
        /// Quiet time after which the backoff resets, in milliseconds.
        reset_after_ms: u64,
    },
    /// Restart while fewer than `max_failures` happened in the last `interval_ms`.
    FailureRate {
        /// Failures allowed within the interval.
        max_failures: u32,
        /// The sliding interval, in milliseconds.
        interval_ms: u64,
        /// Wait before each restart, in milliseconds.
        delay_ms: u64,
    },
}

impl RestartStrategy {
    /// Flink's default when checkpointing is on: exponential delay, here bounded to 10
    /// attempts in a row.
    pub fn default_with_checkpointing() -> Self {
        RestartStrategy::ExponentialDelay {
            attempts: 10,
            initial_delay_ms: 1_000,
            max_delay_ms: 60_000,
            multiplier: 1.5,
            reset_after_ms: 3_600_000,
        }
    }

    /// Checks that the settings make sense.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            RestartStrategy::ExponentialDelay {
                multiplier,
                initial_delay_ms,
                max_delay_ms,
                ..
            } if *multiplier < 1.0 || initial_delay_ms > max_delay_ms => {
                Err("restart: exponential-delay needs multiplier >= 1 and initial_delay_ms <= \
                     max_delay_ms"
                    .into())
            }
            RestartStrategy::FailureRate { max_failures: 0, .. } => {
                Err("restart: failure-rate needs max_failures >= 1".into())
            }
            _ => Ok(()),
        }
    }
}

/// Applies a [`RestartStrategy`] to the failures of one job.
#[derive(Debug)]
pub struct RestartTracker {
    strategy: RestartStrategy,
    /// Restarts counted against the bound (exponential: since the last reset).
    restarts: u32,
    next_delay: Duration,
    last_failure: Option<Instant>,
    recent: VecDeque<Instant>,
}

/// What to do about a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartDecision {
    /// Restart after this wait.
    Restart(Duration),
    /// Give up: the strategy's bound is reached.
    Fail,
}

impl RestartTracker {
    /// Tracks failures under `strategy`.
    pub fn new(strategy: RestartStrategy) -> Self {
        let next_delay = match &strategy {
            RestartStrategy::ExponentialDelay { initial_delay_ms, .. } => {
                Duration::from_millis(*initial_delay_ms)
            }
            _ => Duration::ZERO,
        };
        RestartTracker {
            strategy,
            restarts: 0,
            next_delay,
            last_failure: None,
            recent: VecDeque::new(),
        }
    }

    /// A failure happened at `now`: restart (after how long) or fail.
    pub fn on_failure(&mut self, now: Instant) -> RestartDecision {
        let decision = match &self.strategy {
            RestartStrategy::None => RestartDecision::Fail,
            RestartStrategy::FixedDelay { attempts, delay_ms } => {
                self.bounded(*attempts, Duration::from_millis(*delay_ms))
            }
            RestartStrategy::ExponentialDelay {
                attempts,
                initial_delay_ms,
                max_delay_ms,
                multiplier,
                reset_after_ms,
            } => {
                let quiet = self.last_failure.map(|last| now.duration_since(last));
                if quiet.is_some_and(|quiet| quiet >= Duration::from_millis(*reset_after_ms)) {
                    self.restarts = 0;
                    self.next_delay = Duration::from_millis(*initial_delay_ms);
                }
                let delay = self.next_delay;
                self.next_delay =
                    delay.mul_f64(*multiplier).min(Duration::from_millis(*max_delay_ms));
                self.bounded(*attempts, delay)
            }
            RestartStrategy::FailureRate { max_failures, interval_ms, delay_ms } => {
                let interval = Duration::from_millis(*interval_ms);
                while self.recent.front().is_some_and(|&t| now.duration_since(t) > interval) {
                    self.recent.pop_front();
                }
                self.recent.push_back(now);
                if self.recent.len() > *max_failures as usize {
                    RestartDecision::Fail
                } else {
                    RestartDecision::Restart(Duration::from_millis(*delay_ms))
                }
            }
        };
        self.last_failure = Some(now);
        decision
    }

    fn bounded(&mut self, attempts: u32, delay: Duration) -> RestartDecision {
        if self.restarts >= attempts {
            return RestartDecision::Fail;
        }
        self.restarts += 1;
        RestartDecision::Restart(delay)
    }

    /// Restarts made so far (counted against the bound).
    pub fn restarts(&self) -> u32 {
        self.restarts
    }

    /// Restarts the strategy still allows (failure rate: within the current interval).
    pub fn remaining(&self) -> u32 {
        match &self.strategy {
            RestartStrategy::None => 0,
            RestartStrategy::FixedDelay { attempts, .. }
            | RestartStrategy::ExponentialDelay { attempts, .. } => {
                attempts.saturating_sub(self.restarts)
            }
            RestartStrategy::FailureRate { max_failures, .. } => {
                max_failures.saturating_sub(self.recent.len() as u32)
            }
        }
    }

    /// The strategy in force.
    pub fn strategy(&self) -> &RestartStrategy {
        &self.strategy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decisions(strategy: RestartStrategy, gaps_ms: &[u64]) -> Vec<RestartDecision> {
        let mut tracker = RestartTracker::new(strategy);
        let mut now = Instant::now();
        gaps_ms
            .iter()
            .map(|gap| {
                now += Duration::from_millis(*gap);
                tracker.on_failure(now)
            })
            .collect()
    }

    use RestartDecision::{Fail, Restart};

    fn ms(ms: u64) -> RestartDecision {
        Restart(Duration::from_millis(ms))
    }

    #[test]
    fn none_fails_at_once() {
        assert_eq!(decisions(RestartStrategy::None, &[0]), [Fail]);
    }

    #[test]
    fn fixed_delay_is_bounded_by_attempts() {
        let strategy = RestartStrategy::FixedDelay { attempts: 2, delay_ms: 50 };
        assert_eq!(decisions(strategy.clone(), &[0, 10, 10]), [ms(50), ms(50), Fail]);
        let mut tracker = RestartTracker::new(strategy);
        assert_eq!(tracker.remaining(), 2);
        tracker.on_failure(Instant::now());
        assert_eq!(tracker.remaining(), 1);
    }

    #[test]
    fn exponential_delay_grows_caps_and_resets_after_quiet_time() {
        let strategy = RestartStrategy::ExponentialDelay {
            attempts: 4,
            initial_delay_ms: 100,
            max_delay_ms: 300,
            multiplier: 2.0,
            reset_after_ms: 10_000,
        };
        assert_eq!(
            decisions(strategy.clone(), &[0, 1, 1, 1, 1]),
            [ms(100), ms(200), ms(300), ms(300), Fail]
        );
        assert_eq!(decisions(strategy, &[0, 1, 20_000]), [ms(100), ms(200), ms(100)]);
    }

    #[test]
    fn failure_rate_counts_failures_in_the_sliding_interval() {
        let strategy =
            RestartStrategy::FailureRate { max_failures: 2, interval_ms: 1_000, delay_ms: 5 };
        assert_eq!(decisions(strategy.clone(), &[0, 100, 100]), [ms(5), ms(5), Fail]);
        assert_eq!(decisions(strategy, &[0, 100, 2_000, 100]), [ms(5), ms(5), ms(5), ms(5)]);
    }

    #[test]
    fn validation_names_the_rule() {
        let bad = RestartStrategy::ExponentialDelay {
            attempts: 1,
            initial_delay_ms: 10,
            max_delay_ms: 5,
            multiplier: 2.0,
            reset_after_ms: 1,
        };
        assert!(bad.validate().unwrap_err().contains("initial_delay_ms"));
    }
}
