//! Warm environments, per function, tied to the function revision they were started for.
//!
//! An environment runs one invocation at a time: it is taken out of the pool while busy and put
//! back when it finishes. Reuse is most-recently-used first, which keeps the set of warm
//! environments small and their caches hot. Environments of an older revision (the function's
//! code or settings changed) are never handed out again and are returned to the caller for
//! shutdown. Limits, freezing and reaping of idle environments build on this.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use nimbus_core::sandbox::Environment;

type Env = Arc<dyn Environment>;

#[derive(Default)]
struct FunctionPool {
    revision: String,
    idle: Vec<Env>,
}

/// Idle environments of every function.
#[derive(Default)]
pub(crate) struct Pool {
    functions: Mutex<HashMap<String, FunctionPool>>,
}

impl Pool {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, FunctionPool>> {
        self.functions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// A warm environment of `function` at `revision`, if one is idle, and the environments of
    /// older revisions, which the caller must shut down.
    pub(crate) fn take(&self, function: &str, revision: &str) -> (Option<Env>, Vec<Env>) {
        let mut map = self.lock();
        let pool = map.entry(function.to_owned()).or_default();
        let stale = if pool.revision == revision {
            Vec::new()
        } else {
            pool.revision = revision.to_owned();
            std::mem::take(&mut pool.idle)
        };
        (pool.idle.pop(), stale)
    }

    /// Return an environment after its invocation; hands it back if its revision is outdated.
    pub(crate) fn put_back(&self, function: &str, revision: &str, env: Env) -> Option<Env> {
        let mut map = self.lock();
        let pool = map.entry(function.to_owned()).or_default();
        if pool.revision != revision {
            return Some(env);
        }
        pool.idle.push(env);
        None
    }

    /// Remove every idle environment (of one function, or of all), for shutdown.
    pub(crate) fn drain(&self, function: Option<&str>) -> Vec<Env> {
        let mut map = self.lock();
        match function {
            Some(name) => map.remove(name).map(|p| p.idle).unwrap_or_default(),
            None => map.drain().flat_map(|(_, p)| p.idle).collect(),
        }
    }
}
