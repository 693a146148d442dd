//! Admission under concurrency limits (`lambda-compat.md` §4.3, §6).
//!
//! Concurrency is the number of invocations in flight, each holding one environment. A function
//! with reserved concurrency R runs at most R at once and never draws on the rest of the
//! account; every other function shares the unreserved pool, the account limit less everything
//! reserved. An invocation that would exceed its limit is refused at once with
//! `TooManyRequestsException` and the `Reason` naming the limit, as Lambda does for synchronous
//! calls. A [`Permit`] is held for the whole invocation and gives its slot back when dropped,
//! however the invocation ends.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use nimbus_core::{ServiceError, ThrottleReason};
use tokio::sync::Notify;

/// Counts invocations in flight against the account limit and reservations.
#[derive(Debug)]
pub(crate) struct Admission {
    limit: u32,
    state: Mutex<State>,
    /// Rung whenever a permit is given back, for callers waiting for room.
    freed: Notify,
}

#[derive(Debug, Default)]
struct State {
    /// In flight across functions without a reservation.
    unreserved: u32,
    /// In flight per function (reserved or not).
    per_function: HashMap<String, u32>,
}

/// What limits one function's invocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    /// The function's own reservation.
    Reserved(u32),
    /// The unreserved pool, given the account's total reservations.
    Unreserved {
        /// Sum of all functions' reserved concurrency.
        total_reserved: u64,
    },
}

/// One admitted invocation; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct Permit {
    admission: Arc<Admission>,
    function: String,
    unreserved: bool,
}

impl Admission {
    /// An account limit of `limit` concurrent invocations.
    pub(crate) fn new(limit: u32) -> Arc<Self> {
        Arc::new(Self {
            limit,
            state: Mutex::new(State::default()),
            freed: Notify::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Admit one invocation of `function`, or refuse it with the throttle Lambda returns.
    pub(crate) fn admit(
        self: &Arc<Self>,
        function: &str,
        limit: Limit,
    ) -> Result<Permit, ServiceError> {
        let mut state = self.lock();
        let running = state.per_function.get(function).copied().unwrap_or(0);
        let unreserved = match limit {
            Limit::Reserved(reserved) => {
                if running >= reserved {
                    return Err(ServiceError::throttled(
                        ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded,
                    ));
                }
                false
            }
            Limit::Unreserved { total_reserved } => {
                let pool = u64::from(self.limit).saturating_sub(total_reserved);
                if u64::from(state.unreserved) >= pool {
                    return Err(ServiceError::throttled(
                        ThrottleReason::ConcurrentInvocationLimitExceeded,
                    ));
                }
                state.unreserved += 1;
                true
            }
        };
        *state.per_function.entry(function.to_owned()).or_insert(0) += 1;
        Ok(Permit {
            admission: Arc::clone(self),
            function: function.to_owned(),
            unreserved,
        })
    }

    /// Like [`admit`](Self::admit), but wait up to `patience` for a slot to free up: queued
    /// (async) events wait for room instead of failing, as Lambda's async queue does.
    pub(crate) async fn admit_waiting(
        self: &Arc<Self>,
        function: &str,
        limit: Limit,
        patience: Duration,
    ) -> Result<Permit, ServiceError> {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            // Registered before trying, so a slot freed in between is not missed.
            let freed = self.freed.notified();
            match self.admit(function, limit) {
                Ok(permit) => return Ok(permit),
                Err(throttled) if tokio::time::Instant::now() >= deadline => return Err(throttled),
                Err(_) => {
                    let _ = tokio::time::timeout_at(deadline, freed).await;
                }
            }
        }
    }

    /// Invocations in flight: across the account, and of one function.
    pub(crate) fn running(&self, function: Option<&str>) -> u32 {
        let state = self.lock();
        match function {
            Some(name) => state.per_function.get(name).copied().unwrap_or(0),
            None => state.per_function.values().sum(),
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut state = self.admission.lock();
        if self.unreserved {
            state.unreserved = state.unreserved.saturating_sub(1);
        }
        if let Some(count) = state.per_function.get_mut(&self.function) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.per_function.remove(&self.function);
            }
        }
        drop(state);
        self.admission.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_waiting_caller_gets_the_next_free_slot_or_the_throttle() {
        let admission = Admission::new(1000);
        let held = admission.admit("f", Limit::Reserved(1)).expect("first");
        let waiter = {
            let admission = Arc::clone(&admission);
            tokio::spawn(async move {
                admission
                    .admit_waiting("f", Limit::Reserved(1), Duration::from_secs(5))
                    .await
                    .map(drop)
            })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        waiter
            .await
            .expect("join")
            .expect("admitted once the slot was freed");
        let _again = admission
            .admit("f", Limit::Reserved(1))
            .expect("free again");
        let impatient = admission
            .admit_waiting("f", Limit::Reserved(1), Duration::from_millis(20))
            .await;
        assert!(matches!(
            impatient,
            Err(ServiceError::TooManyRequests { .. })
        ));
    }

    fn reason(result: Result<Permit, ServiceError>) -> Option<ThrottleReason> {
        match result {
            Err(ServiceError::TooManyRequests { reason, .. }) => Some(reason),
            Err(other) => panic!("unexpected {other:?}"),
            Ok(_) => None,
        }
    }

    #[test]
    fn unreserved_functions_share_the_account_limit_less_reservations() {
        let admission = Admission::new(3);
        let pool = Limit::Unreserved { total_reserved: 1 };
        let a = admission.admit("a", pool).expect("first");
        let b = admission.admit("b", pool).expect("second");
        assert_eq!(
            reason(admission.admit("c", pool)),
            Some(ThrottleReason::ConcurrentInvocationLimitExceeded)
        );
        // The reserved function is not held back by the full unreserved pool.
        let r = admission
            .admit("r", Limit::Reserved(1))
            .expect("reserved slot");
        assert_eq!(admission.running(None), 3);
        drop(a);
        let _c = admission.admit("c", pool).expect("a slot came back");
        drop((b, r));
        assert_eq!(admission.running(Some("c")), 1);
    }

    #[test]
    fn a_reservation_caps_its_function_and_zero_disables_it() {
        let admission = Admission::new(1000);
        let first = admission.admit("f", Limit::Reserved(2)).expect("1");
        let _second = admission.admit("f", Limit::Reserved(2)).expect("2");
        assert_eq!(
            reason(admission.admit("f", Limit::Reserved(2))),
            Some(ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded)
        );
        drop(first);
        assert!(admission.admit("f", Limit::Reserved(2)).is_ok());
        assert_eq!(
            reason(admission.admit("off", Limit::Reserved(0))),
            Some(ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded)
        );
    }

    #[test]
    fn permits_from_many_threads_never_exceed_the_limit() {
        let admission = Admission::new(8);
        let peak = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (admission, peak) = (Arc::clone(&admission), Arc::clone(&peak));
                std::thread::spawn(move || {
                    for _ in 0..2000 {
                        if let Ok(permit) =
                            admission.admit("f", Limit::Unreserved { total_reserved: 0 })
                        {
                            let now = admission.running(None);
                            peak.fetch_max(now, std::sync::atomic::Ordering::Relaxed);
                            drop(permit);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        assert!(peak.load(std::sync::atomic::Ordering::Relaxed) <= 8);
        assert_eq!(admission.running(None), 0);
    }
}
