//! [`SandboxedProcess`]: the supervisor's handle to one running environment.
//!
//! With namespaces, the process the host sees (`pid()`) is the environment's mini-init (pid 1
//! inside), and the runtime is its child; killing pid 1 makes the kernel kill the whole pid
//! namespace. The runtime's own wait status reaches us through the status pipe, so `wait()`
//! reports e.g. "killed by SIGKILL" for an OOM-killed runtime rather than the init's exit 137.
//!
//! Teardown (after the main process is reaped, by `wait`, `kill` or drop): kill stragglers in
//! the cgroup, snapshot peak memory and the OOM counter, remove the cgroup directories (with
//! retries: pitfall 6), delete the environment's `/tmp` directory.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::ExitStatus;

use super::cgroup::EnvCgroup;
use super::NetNs;

/// Host resources of one environment, released on teardown.
#[derive(Debug, Default)]
pub(super) struct Resources {
    pub cgroup: Option<Box<dyn EnvCgroup>>,
    pub tmp_dir: Option<PathBuf>,
    /// The loop device of a size-limited `/tmp`; it detaches once this and the mount are gone.
    pub loop_tmp: Option<super::tmp_image::LoopTmp>,
}

impl Resources {
    fn release(&mut self) {
        if let Some(mut cg) = self.cgroup.take() {
            let _ = cg.kill_all();
            if let Err(e) = cg.remove() {
                tracing::warn!(error = %e, "cannot remove an environment cgroup");
            }
        }
        self.loop_tmp = None;
        if let Some(dir) = self.tmp_dir.take() {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(error = %e, dir = %dir.display(), "cannot remove an environment /tmp");
            }
        }
    }
}

impl Drop for Resources {
    fn drop(&mut self) {
        self.release();
    }
}

/// A spawned environment process. Dropping it kills the environment and releases its cgroup
/// and `/tmp`.
#[derive(Debug)]
pub struct SandboxedProcess {
    pid: libc::pid_t,
    pidfd: Option<OwnedFd>,
    /// Read end of the mini-init's status pipe (namespaced only).
    status_pipe: Option<OwnedFd>,
    namespaced: bool,
    res: Resources,
    exit: Option<ExitStatus>,
    /// `ru_maxrss` of the reaped tree: the fallback for peak memory without a memory cgroup.
    max_rss: Option<u64>,
    final_peak: Option<u64>,
    final_oom: Option<u64>,
    _netns: Option<NetNs>,
}

/// Resolves when an environment's main process has exited, without reaping it: use it to
/// learn about a crash while another task owns the [`SandboxedProcess`].
#[derive(Debug)]
pub struct ExitWatcher {
    pidfd: OwnedFd,
}

impl ExitWatcher {
    /// Wait (asynchronously, on the tokio reactor) until the process has exited.
    pub async fn exited(self) -> io::Result<()> {
        // Registering panics outside a runtime; report that as an error instead.
        tokio::runtime::Handle::try_current().map_err(io::Error::other)?;
        // SAFETY: the AsyncFd takes ownership of the OwnedFd, which stays open and unchanged
        // until the AsyncFd is dropped.
        let fd = unsafe {
            tokio::io::unix::AsyncFd::register_with_interest(
                self.pidfd,
                tokio::io::Interest::READABLE,
            )
        }?;
        let _ready = fd.readable().await?;
        Ok(())
    }
}

fn wait4(pid: libc::pid_t, flags: libc::c_int) -> io::Result<Option<(libc::c_int, libc::rusage)>> {
    loop {
        let mut status = 0;
        // SAFETY: a zeroed rusage is a valid out-parameter.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: waiting for our own child with valid out-pointers.
        let r = unsafe { libc::wait4(pid, &mut status, flags, &mut usage) };
        if r > 0 {
            return Ok(Some((status, usage)));
        }
        if r == 0 {
            return Ok(None);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

impl SandboxedProcess {
    pub(super) fn new(
        pid: libc::pid_t,
        pidfd: Option<OwnedFd>,
        status_pipe: Option<OwnedFd>,
        namespaced: bool,
        res: Resources,
        netns: Option<NetNs>,
    ) -> Self {
        SandboxedProcess {
            pid,
            pidfd,
            status_pipe,
            namespaced,
            res,
            exit: None,
            max_rss: None,
            final_peak: None,
            final_oom: None,
            _netns: netns,
        }
    }

    /// The process id as the host sees it (with namespaces: the environment's init).
    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    /// A pidfd for the main process (readable once it has exited), when the kernel has them.
    pub fn pidfd(&self) -> Option<BorrowedFd<'_>> {
        self.pidfd.as_ref().map(|f| f.as_fd())
    }

    /// A watcher that resolves when the main process exits.
    pub fn exit_watcher(&self) -> io::Result<ExitWatcher> {
        let fd = self.pidfd.as_ref().ok_or(io::ErrorKind::Unsupported)?;
        Ok(ExitWatcher {
            pidfd: fd.try_clone()?,
        })
    }

    fn signal_main(&self, sig: libc::c_int) -> io::Result<()> {
        if self.exit.is_some() {
            return Ok(());
        }
        if let Some(fd) = &self.pidfd {
            // SAFETY: pidfd_send_signal on our own pidfd with a null siginfo.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    sig,
                    std::ptr::null::<u8>(),
                    0,
                )
            };
            if r == 0 {
                return Ok(());
            }
        }
        // SAFETY: the pid is our unreaped child, so it cannot have been reused.
        if unsafe { libc::kill(self.pid, sig) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Ask the environment to stop (SIGTERM, forwarded to the runtime by the mini-init).
    pub fn terminate(&self) -> io::Result<()> {
        self.signal_main(libc::SIGTERM)
    }

    /// Kill the whole process tree, reap it, and release the cgroup and `/tmp`.
    pub fn kill(&mut self) -> io::Result<()> {
        if self.exit.is_none() {
            if let Some(cg) = &self.res.cgroup {
                // Also thaws a frozen environment, or the SIGKILL would wait (pitfall 6).
                let _ = cg.kill_all();
            }
            if !self.namespaced {
                // The process group; without a pid namespace, descendants survive the leader.
                // SAFETY: kill has no memory-safety preconditions.
                unsafe { libc::kill(-self.pid, libc::SIGKILL) };
            }
            // Fails only if the process is already gone, which the wait below handles.
            let _ = self.signal_main(libc::SIGKILL);
        }
        self.wait().map(|_| ())
    }

    fn record(&mut self, status: libc::c_int, usage: &libc::rusage) -> ExitStatus {
        let mut raw = status;
        if let Some(pipe) = &self.status_pipe {
            let mut buf = [0u8; 4];
            // SAFETY: reading into a stack buffer from our own non-blocking pipe.
            let n = unsafe { libc::read(pipe.as_raw_fd(), buf.as_mut_ptr().cast(), 4) };
            if n == 4 {
                raw = i32::from_ne_bytes(buf);
            }
        }
        self.status_pipe = None;
        self.max_rss = u64::try_from(usage.ru_maxrss).ok().map(|kb| kb * 1024);
        let exit = ExitStatus::from_raw(raw);
        self.exit = Some(exit);
        self.finish();
        exit
    }

    /// After the main process is gone: snapshot accounting, then release the resources.
    fn finish(&mut self) {
        if let Some(cg) = &self.res.cgroup {
            self.final_peak = cg.peak_memory_bytes();
            self.final_oom = cg.oom_kills();
        }
        self.res.release();
    }

    /// Wait for the environment to exit; returns the runtime's exit status. Also kills any
    /// process the runtime left behind and releases the cgroup and `/tmp`.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        if let Some(exit) = self.exit {
            return Ok(exit);
        }
        match wait4(self.pid, 0)? {
            Some((status, usage)) => Ok(self.record(status, &usage)),
            None => Err(io::Error::other("wait4 returned no status")),
        }
    }

    /// Like [`wait`](Self::wait) without blocking: `None` while the process runs.
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(exit) = self.exit {
            return Ok(Some(exit));
        }
        Ok(wait4(self.pid, libc::WNOHANG)?.map(|(status, usage)| self.record(status, &usage)))
    }

    /// [`wait`](Self::wait) for async callers: waits on the pidfd through the tokio reactor
    /// (or polls every 10 ms without a pidfd).
    pub async fn wait_async(&mut self) -> io::Result<ExitStatus> {
        if let Ok(watcher) = self.exit_watcher() {
            if self.exit.is_none() {
                watcher.exited().await?;
            }
            return self.wait();
        }
        loop {
            if let Some(exit) = self.try_wait()? {
                return Ok(exit);
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Peak memory of the environment in bytes: the cgroup's high-water mark (page cache
    /// included), or `ru_maxrss` of the reaped tree when no memory cgroup measures it.
    pub fn peak_memory_bytes(&self) -> Option<u64> {
        match &self.res.cgroup {
            Some(cg) => cg.peak_memory_bytes().or(self.max_rss),
            None => self.final_peak.or(self.max_rss),
        }
    }

    /// Start a new peak-memory measurement (e.g. per invocation). v1 always; v2 from 6.12.
    pub fn reset_peak_memory(&mut self) -> io::Result<()> {
        self.res
            .cgroup
            .as_mut()
            .ok_or(io::ErrorKind::Unsupported)?
            .reset_peak_memory()
    }

    /// Whether the kernel killed the environment for exceeding its memory limit.
    pub fn oom_killed(&self) -> bool {
        let count = match &self.res.cgroup {
            Some(cg) => cg.oom_kills(),
            None => self.final_oom,
        };
        count.unwrap_or(0) > 0
    }

    /// Stop every process of the environment (cgroup freezer) until [`thaw`](Self::thaw).
    pub fn freeze(&self) -> io::Result<()> {
        self.res
            .cgroup
            .as_ref()
            .ok_or(io::ErrorKind::Unsupported)?
            .freeze()
    }

    /// Resume a frozen environment.
    pub fn thaw(&self) -> io::Result<()> {
        self.res
            .cgroup
            .as_ref()
            .ok_or(io::ErrorKind::Unsupported)?
            .thaw()
    }

    /// The environment's cgroup directories (empty without cgroups or after teardown).
    pub fn cgroup_paths(&self) -> Vec<PathBuf> {
        self.res
            .cgroup
            .as_ref()
            .map(|c| c.paths())
            .unwrap_or_default()
    }
}

impl Drop for SandboxedProcess {
    fn drop(&mut self) {
        if self.exit.is_none() {
            if let Err(e) = self.kill() {
                tracing::warn!(pid = self.pid, error = %e, "cannot kill an environment on drop");
            }
        }
    }
}
