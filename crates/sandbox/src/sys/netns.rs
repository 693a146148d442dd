//! Per-environment network namespaces holding the Runtime API listener (pitfall 11).
//!
//! In the host network namespace every environment could reach every other environment's
//! Runtime API port and all host loopback services. Instead, a short-lived helper thread
//! `unshare(CLONE_NEWNET)`s (which only moves that thread), brings `lo` up, binds
//! `127.0.0.1:9001` inside the new namespace and opens `/proc/thread-self/ns/net`. The thread
//! then exits; the listener keeps working from any thread of the supervisor (a socket stays in
//! the namespace it was created in), and the fd keeps the namespace alive until the
//! environment's child `setns`es into it. The environment has loopback only: no route out.
//!
//! That costs about a millisecond (a thread, `unshare`, bringing `lo` up), so a background
//! thread keeps [`POOL_SIZE`] fresh namespaces with their listener ready, and a cold start
//! takes one instead of waiting. Each is used by exactly one environment.

use std::fs::File;
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Mutex, PoisonError};

use super::refill::Refill;

/// Namespaces (with their listener) kept ready.
const POOL_SIZE: usize = 2;

/// Ready namespaces, and the thread that keeps them ready.
struct Pool {
    ready: Mutex<Vec<(TcpListener, OwnedFd)>>,
    refill: Refill<()>,
}

static POOL: Pool = Pool {
    ready: Mutex::new(Vec::new()),
    refill: Refill::new(),
};

/// A listener on `127.0.0.1:`[`super::RUNTIME_API_PORT`] in a network namespace of its own,
/// never used before, and the fd that keeps the namespace alive: a ready one if there is.
pub(super) fn runtime_api_listener() -> io::Result<(TcpListener, OwnedFd)> {
    let ready = POOL
        .ready
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop();
    let taken = match ready {
        Some(ready) => ready,
        None => listener_in_new_netns(super::RUNTIME_API_PORT)?,
    };
    request_refill();
    Ok(taken)
}

fn request_refill() {
    POOL.refill.request("nimbus-netns-pool", (), |()| {
        top_up();
        true
    });
}

fn top_up() {
    let have = || {
        POOL.ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    };
    while have() < POOL_SIZE {
        match listener_in_new_netns(super::RUNTIME_API_PORT) {
            Ok(ready) => POOL
                .ready
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(ready),
            Err(error) => {
                tracing::debug!(%error, "could not prepare a network namespace");
                return;
            }
        }
    }
}

/// `struct ifreq` reduced to the name and the flags member of its union (40 bytes on 64-bit).
#[repr(C)]
struct IfReqFlags {
    name: [libc::c_char; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

/// Set `IFF_UP` on `lo` of the calling thread's network namespace.
fn loopback_up() -> io::Result<()> {
    // SAFETY: plain socket creation; the fd is wrapped immediately so it is closed on return.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new socket nobody else owns.
    let sock = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
    let mut req = IfReqFlags {
        name: [0; libc::IFNAMSIZ],
        flags: 0,
        _pad: [0; 22],
    };
    for (dst, src) in req.name.iter_mut().zip(b"lo") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write a `struct ifreq`, which `IfReqFlags`
    // matches in layout and size for the name and flags fields.
    unsafe {
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) < 0 {
            return Err(io::Error::last_os_error());
        }
        req.flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &req) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

fn in_new_netns<T: Send + 'static>(
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> io::Result<(T, OwnedFd)> {
    let thread = std::thread::Builder::new()
        .name("nimbus-netns".into())
        .spawn(move || {
            // SAFETY: unshare only changes this thread's network namespace; this thread exits
            // right after, so no other code runs in the new namespace by accident.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } < 0 {
                let e = io::Error::last_os_error();
                return Err(io::Error::new(
                    e.kind(),
                    format!("unshare network namespace: {e}"),
                ));
            }
            loopback_up().map_err(|e| io::Error::new(e.kind(), format!("bring up lo: {e}")))?;
            let value = f()?;
            let ns = File::open("/proc/thread-self/ns/net").map_err(|e| {
                io::Error::new(e.kind(), format!("open /proc/thread-self/ns/net: {e}"))
            })?;
            Ok((value, OwnedFd::from(ns)))
        })?;
    thread
        .join()
        .map_err(|_| io::Error::other("network namespace helper thread panicked"))?
}

/// A new network namespace with a listener on `127.0.0.1:<port>` inside it.
pub(super) fn listener_in_new_netns(port: u16) -> io::Result<(TcpListener, OwnedFd)> {
    in_new_netns(move || {
        TcpListener::bind(("127.0.0.1", port)).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("bind 127.0.0.1:{port} in network namespace: {e}"),
            )
        })
    })
}

/// Whether network namespaces can be created here.
pub(super) fn probe() -> bool {
    match in_new_netns(|| Ok(())) {
        Ok(_) => true,
        Err(e) => {
            tracing::debug!(error = %e, "network namespaces unavailable");
            false
        }
    }
}
