//! The background thread that keeps a pool of prepared resources full.
//!
//! Network namespaces, cgroups and `/tmp` images are each made ahead of need by one such
//! thread. It runs at the weakest priority (nice 19), so that it never delays an invocation on
//! a busy host, and waits [`REFILL_DELAY`] after each request, so that the cold start that took
//! from the pool finishes before the refill competes with it for the CPUs.

use std::sync::{mpsc, Mutex, PoisonError};
use std::time::Duration;

/// How long the refill waits after a request.
const REFILL_DELAY: Duration = Duration::from_millis(50);

/// The refill thread of one pool, started on first use.
#[derive(Debug)]
pub(super) struct Refill<R> {
    sender: Mutex<Option<mpsc::Sender<R>>>,
}

impl<R: Send + 'static> Refill<R> {
    pub(super) const fn new() -> Self {
        Refill {
            sender: Mutex::new(None),
        }
    }

    /// Ask for a refill described by `request`. The first call starts the thread `name`, which
    /// runs `top_up` for each request until it returns `false`. If the thread cannot start,
    /// nothing is refilled and the pool's users make what they need on demand.
    pub(super) fn request(
        &self,
        name: &str,
        request: R,
        mut top_up: impl FnMut(R) -> bool + Send + 'static,
    ) {
        let mut sender = self.sender.lock().unwrap_or_else(PoisonError::into_inner);
        if sender.is_none() {
            let (tx, rx) = mpsc::channel::<R>();
            let started = std::thread::Builder::new()
                .name(name.to_owned())
                .spawn(move || {
                    let _ = lower_thread_priority();
                    while let Ok(request) = rx.recv() {
                        std::thread::sleep(REFILL_DELAY);
                        if !top_up(request) {
                            return;
                        }
                    }
                });
            if started.is_err() {
                return;
            }
            *sender = Some(tx);
        }
        if let Some(tx) = sender.as_ref() {
            let _ = tx.send(request);
        }
    }
}

/// Give the calling thread the weakest scheduling priority (nice 19). Threads it spawns
/// afterwards (the network namespace helpers) inherit it.
fn lower_thread_priority() -> std::io::Result<()> {
    rustix::process::setpriority_process(Some(rustix::thread::gettid()), 19)?;
    Ok(())
}
