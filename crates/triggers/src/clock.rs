//! Where the runner's time comes from: [`SystemClock`] in the server, [`ManualClock`] in tests,
//! which only moves when told to, so schedule tests never sleep for real.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tokio::sync::watch;

/// The current time, and a way to wait for a later one.
#[async_trait]
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> DateTime<Utc>;

    /// Return once [`now`](Self::now) is at or past `t` (at once if it already is).
    async fn sleep_until(&self, t: DateTime<Utc>);
}

/// The longest a [`SystemClock`] sleeps before looking at the wall clock again.
const WALL_CLOCK_RECHECK: Duration = Duration::from_secs(30);

/// The wall clock.
///
/// Tokio's timers run on the monotonic clock, which does not follow wall-clock steps (NTP
/// corrections, a suspended laptop resuming). So a long wait is taken in steps of at most 30
/// seconds, each ending with a fresh look at the wall clock: a fire is late by at most that
/// much after such a step, never early.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    async fn sleep_until(&self, t: DateTime<Utc>) {
        loop {
            let left = t.signed_duration_since(Utc::now());
            let Ok(left) = left.to_std() else {
                return; // `t` has passed.
            };
            if left.is_zero() {
                return;
            }
            tokio::time::sleep(left.min(WALL_CLOCK_RECHECK)).await;
        }
    }
}

/// A clock that stands still until [`set`](Self::set) or [`advance`](Self::advance) moves it;
/// sleepers wake as soon as it reaches their instant.
#[derive(Debug)]
pub struct ManualClock {
    now: watch::Sender<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock showing `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            now: watch::Sender::new(start),
        }
    }

    /// Jump to `t` (forwards or, to simulate a clock set back, backwards).
    pub fn set(&self, t: DateTime<Utc>) {
        self.now.send_replace(t);
    }

    /// Move forward by `by`.
    pub fn advance(&self, by: chrono::TimeDelta) {
        self.now.send_modify(|now| *now += by);
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.borrow()
    }

    async fn sleep_until(&self, t: DateTime<Utc>) {
        let mut now = self.now.subscribe();
        // The sender lives as long as `self`, so this only ends by reaching `t`.
        let _ = now.wait_for(|now| *now >= t).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use std::sync::Arc;

    #[tokio::test]
    async fn manual_clock_wakes_sleepers_when_it_reaches_them() {
        let start = Utc::now();
        let clock = Arc::new(ManualClock::new(start));
        let sleeper = {
            let clock = Arc::clone(&clock);
            tokio::spawn(async move { clock.sleep_until(start + TimeDelta::minutes(5)).await })
        };
        clock.advance(TimeDelta::minutes(4));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(TimeDelta::minutes(1));
        tokio::time::timeout(Duration::from_secs(5), sleeper)
            .await
            .expect("woken")
            .expect("task");
        // A time already reached returns at once.
        clock.sleep_until(start).await;
        assert_eq!(clock.now(), start + TimeDelta::minutes(5));
    }

    #[tokio::test]
    async fn system_clock_returns_at_once_for_the_past() {
        SystemClock
            .sleep_until(Utc::now() - TimeDelta::hours(1))
            .await;
        let target = Utc::now() + TimeDelta::milliseconds(20);
        SystemClock.sleep_until(target).await;
        assert!(Utc::now() >= target);
    }
}
