//! Environment cgroups made ahead of need.
//!
//! Creating an environment's cgroup (a directory per v1 controller, the limits written, the
//! `cgroup.procs` files opened) took ~0.35 ms of every cold start. [`CgroupPool`] keeps
//! [`POOL_SIZE`] empty cgroups with the limits last asked for, made by a background thread at
//! idle priority, and hands one out when the limits match; otherwise it creates one as before.
//! Pooled cgroups are named `<server pid>-pool<n>`, so a restarted server removes those a dead
//! one left behind like any other.

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use super::{CgroupBackend, Controllers, EnvCgroup, Limits};
use crate::sys::probe::CgroupVersion;
use crate::sys::refill::Refill;

/// Cgroups kept ready.
const POOL_SIZE: usize = 2;

/// A [`CgroupBackend`] that serves creations from cgroups made in advance.
pub(in crate::sys) struct CgroupPool {
    shared: Arc<Shared>,
}

struct Shared {
    backend: Box<dyn CgroupBackend>,
    ready: Mutex<Vec<(Limits, Box<dyn EnvCgroup>)>>,
    /// Prepares cgroups with the limits it is sent.
    refill: Refill<Limits>,
    counter: AtomicU64,
}

impl fmt::Debug for CgroupPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CgroupPool")
            .field("backend", &self.shared.backend)
            .finish_non_exhaustive()
    }
}

impl CgroupPool {
    pub(in crate::sys) fn new(backend: Box<dyn CgroupBackend>) -> Self {
        CgroupPool {
            shared: Arc::new(Shared {
                backend,
                ready: Mutex::new(Vec::new()),
                refill: Refill::new(),
                counter: AtomicU64::new(0),
            }),
        }
    }

    /// How many cgroups with `limits` are ready (for tests).
    #[cfg(test)]
    pub(in crate::sys) fn ready_for(&self, limits: &Limits) -> usize {
        self.shared
            .ready()
            .iter()
            .filter(|(l, _)| l == limits)
            .count()
    }
}

impl Shared {
    fn ready(&self) -> std::sync::MutexGuard<'_, Vec<(Limits, Box<dyn EnvCgroup>)>> {
        self.ready.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn request_refill(self: &Arc<Self>, limits: &Limits) {
        // The thread holds the pool only weakly: it ends with the pool.
        let shared = Arc::downgrade(self);
        self.refill
            .request("nimbus-cgroup-pool", limits.clone(), move |limits| {
                shared.upgrade().map(|s| s.top_up(&limits)).is_some()
            });
    }

    /// Keep [`POOL_SIZE`] cgroups with `limits`; ready ones with other limits are removed.
    fn top_up(&self, limits: &Limits) {
        let stale: Vec<_> = {
            let mut ready = self.ready();
            let (keep, stale) = std::mem::take(&mut *ready)
                .into_iter()
                .partition(|(l, _)| l == limits);
            *ready = keep;
            stale
        };
        for (_, mut cgroup) in stale {
            let _ = cgroup.remove();
        }
        while self.ready().len() < POOL_SIZE {
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            let name = format!("{}-pool{n}", std::process::id());
            match self.backend.create(&name, limits) {
                Ok(cgroup) => self.ready().push((limits.clone(), cgroup)),
                Err(error) => {
                    tracing::debug!(%error, "could not prepare an environment cgroup");
                    return;
                }
            }
        }
    }
}

impl CgroupBackend for CgroupPool {
    fn version(&self) -> CgroupVersion {
        self.shared.backend.version()
    }

    fn controllers(&self) -> Controllers {
        self.shared.backend.controllers()
    }

    fn create(&self, name: &str, limits: &Limits) -> io::Result<Box<dyn EnvCgroup>> {
        let ready = {
            let mut ready = self.shared.ready();
            ready
                .iter()
                .position(|(l, _)| l == limits)
                .map(|i| ready.swap_remove(i).1)
        };
        let cgroup = match ready {
            Some(cgroup) => cgroup,
            None => self.shared.backend.create(name, limits)?,
        };
        self.shared.request_refill(limits);
        Ok(cgroup)
    }
}

/// The refill thread may hold the pool for a moment longer than its owner: what is still
/// ready is removed when the last of them lets go.
impl Drop for Shared {
    fn drop(&mut self) {
        let ready = self.ready.get_mut().unwrap_or_else(PoisonError::into_inner);
        for (_, mut cgroup) in ready.drain(..) {
            let _ = cgroup.remove();
        }
    }
}
