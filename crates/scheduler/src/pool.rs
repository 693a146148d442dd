//! Warm environments, per function version, tied to the revision they were started for.
//!
//! An environment runs one invocation at a time: it is taken out of the pool while busy and put
//! back when it finishes. Reuse is most-recently-used first, which keeps the set of warm
//! environments small and their caches hot, and lets the least recently used ones age out.
//! Environments of an older revision (`$LATEST` changed) are never handed out again and are
//! returned to the caller for shutdown.
//!
//! Idle environments are frozen after a short grace period, so they use no CPU, and reaped
//! after the idle timeout, so an unused function scales to zero. The pool only picks them;
//! the scheduler's housekeeping freezes and shuts them down outside the lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nimbus_core::sandbox::Environment;

pub(crate) type Env = Arc<dyn Environment>;

/// The revision of a drained pool: matches no function's.
const RETIRED: &str = "";

/// Which environments can serve an invocation: one function version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PoolKey {
    /// The function's name.
    pub(crate) function: String,
    /// `$LATEST` or a version number.
    pub(crate) version: String,
}

struct Idle {
    env: Env,
    since: Instant,
    frozen: bool,
}

#[derive(Default)]
struct VersionPool {
    revision: String,
    /// Oldest first; reuse pops the most recently used from the end.
    idle: Vec<Idle>,
}

/// An idle environment on its way to being frozen, and what to put it back under.
pub(crate) struct FreezeCandidate {
    pub(crate) key: PoolKey,
    pub(crate) revision: String,
    pub(crate) env: Env,
    since: Instant,
}

/// Idle environments of every function version.
#[derive(Default)]
pub(crate) struct Pool {
    versions: Mutex<HashMap<PoolKey, VersionPool>>,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, HashMap<PoolKey, VersionPool>> {
        self.versions.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A warm environment of `key` at `revision`, if one is idle, and the environments of
    /// older revisions, which the caller must shut down.
    pub(crate) fn take(&self, key: &PoolKey, revision: &str) -> (Option<Env>, Vec<Env>) {
        let mut map = self.lock();
        let pool = map.entry(key.clone()).or_default();
        let stale = if pool.revision == revision {
            Vec::new()
        } else {
            pool.revision = revision.to_owned();
            std::mem::take(&mut pool.idle)
                .into_iter()
                .map(|idle| idle.env)
                .collect()
        };
        (pool.idle.pop().map(|idle| idle.env), stale)
    }

    /// Return an environment after its invocation; hands it back if its revision is outdated.
    pub(crate) fn put_back(&self, key: &PoolKey, revision: &str, env: Env) -> Option<Env> {
        self.insert(key, revision, env, Instant::now(), false)
    }

    fn insert(
        &self,
        key: &PoolKey,
        revision: &str,
        env: Env,
        since: Instant,
        frozen: bool,
    ) -> Option<Env> {
        let mut map = self.lock();
        // A pool reaped while all its environments were busy is simply recreated.
        let pool = map.entry(key.clone()).or_insert_with(|| VersionPool {
            revision: revision.to_owned(),
            idle: Vec::new(),
        });
        if pool.revision != revision {
            return Some(env);
        }
        // Keep the list ordered by last use: a frozen one returns to its old place.
        let at = pool.idle.partition_point(|idle| idle.since <= since);
        pool.idle.insert(at, Idle { env, since, frozen });
        None
    }

    /// Take out the idle environments that have been idle for `grace` and are not frozen yet;
    /// each goes back through [`put_back_frozen`](Self::put_back_frozen).
    pub(crate) fn freeze_candidates(&self, now: Instant, grace: Duration) -> Vec<FreezeCandidate> {
        let mut map = self.lock();
        let mut out = Vec::new();
        for (key, pool) in map.iter_mut() {
            let (ready, keep): (Vec<Idle>, Vec<Idle>) = std::mem::take(&mut pool.idle)
                .into_iter()
                .partition(|idle| {
                    !idle.frozen && now.saturating_duration_since(idle.since) >= grace
                });
            pool.idle = keep;
            out.extend(ready.into_iter().map(|idle| FreezeCandidate {
                key: key.clone(),
                revision: pool.revision.clone(),
                env: idle.env,
                since: idle.since,
            }));
        }
        out
    }

    /// Return a candidate after the freeze attempt (`frozen` = it succeeded). Hands it back if
    /// its revision went out of date meanwhile.
    pub(crate) fn put_back_frozen(&self, candidate: FreezeCandidate, frozen: bool) -> Option<Env> {
        // A failed freeze is not retried at every tick: it counts as done.
        let _ = frozen;
        self.insert(
            &candidate.key,
            &candidate.revision,
            candidate.env,
            candidate.since,
            true,
        )
    }

    /// Remove the environments idle for at least `timeout`, for shutdown; drops version pools
    /// left empty, so a function nobody calls leaves nothing behind.
    pub(crate) fn expired(&self, now: Instant, timeout: Duration) -> Vec<Env> {
        let mut map = self.lock();
        let mut out = Vec::new();
        map.retain(|_, pool| {
            let (old, keep): (Vec<Idle>, Vec<Idle>) = std::mem::take(&mut pool.idle)
                .into_iter()
                .partition(|idle| now.saturating_duration_since(idle.since) >= timeout);
            pool.idle = keep;
            out.extend(old.into_iter().map(|idle| idle.env));
            !pool.idle.is_empty() || pool.revision == RETIRED
        });
        out
    }

    /// Remove every idle environment (of one function's versions, or of all), for shutdown,
    /// and retire their revisions: environments still busy are handed back for shutdown when
    /// they finish instead of rejoining the pool.
    pub(crate) fn drain(&self, function: Option<&str>) -> Vec<Env> {
        let mut map = self.lock();
        let mut out = Vec::new();
        for (key, pool) in map.iter_mut() {
            if function.is_some_and(|name| name != key.function) {
                continue;
            }
            pool.revision = RETIRED.to_owned();
            out.extend(
                std::mem::take(&mut pool.idle)
                    .into_iter()
                    .map(|idle| idle.env),
            );
        }
        out
    }

    /// Idle environments, and how many of them are frozen.
    pub(crate) fn idle_counts(&self) -> (usize, usize) {
        let map = self.lock();
        map.values()
            .flat_map(|pool| pool.idle.iter())
            .fold((0, 0), |(idle, frozen), e| {
                (idle + 1, frozen + usize::from(e.frozen))
            })
    }
}
