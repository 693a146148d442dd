//! Everything Linux-specific: spawning a runtime process tree in its own namespaces and cgroup.
//!
//! This file is the interface the rest of the crate codes against, plus the dispatch between
//! isolation levels. The pieces behind it:
//!
//! - [`probe`]: detects once which protections this host supports ([`capabilities`]) and holds
//!   the process-wide sandbox state (configuration, cgroup backend, generated `/etc`).
//! - `spawn`: the long-lived spawner thread, `clone3`, and the error pipe protocol.
//! - `plan` builds, in the parent, the list of steps the child runs; `child` runs them
//!   between `clone3` and `execve` without allocating, and holds the mini-init.
//! - `rootfs`: the state directory, the generated `/etc`, per-environment `/tmp`.
//! - `cgroup`: a `CgroupBackend` trait with cgroup v1 and v2 implementations.
//! - `netns`: per-environment network namespaces holding the Runtime API listener.
//! - `seccomp`: the syscall deny-list.
//! - `process`: [`SandboxedProcess`], the handle to a running environment.
//!
//! Design notes and measurements: `shared/docs/research/sandbox.md` (§4 child sequence, §5
//! cgroups, §8(a) degradation ladder, §9 pitfalls).

// The workspace denies `unsafe_code`. This module is the one place allowed to use it: namespaces,
// mounts, clone3, cgroups and seccomp have no safe std API. Every unsafe block states why it is
// sound in a `// SAFETY:` comment.
#![allow(unsafe_code)]

mod cgroup;
mod child;
mod netns;
mod plan;
mod probe;
mod process;
mod refill;
mod rootfs;
mod seccomp;
mod spawn;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_cgroup;
mod tmp_image;

use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;

pub use probe::{capabilities, configure, Capabilities, CgroupVersion};
pub use process::{ExitWatcher, SandboxedProcess};

/// How strongly environments are confined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// A plain child process with a clean environment (for hosts without namespaces).
    None,
    /// Linux namespaces, a read-only root, cgroup limits.
    Namespaces,
}

/// How CPU is shared between environments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuPolicy {
    /// A weight proportional to memory (1 vCPU's worth at 1769 MB); idle CPU stays usable.
    Weight,
    /// A hard quota proportional to memory, as Lambda enforces.
    Quota,
}

/// What backs an environment's `/tmp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TmpBacking {
    /// Disk of exactly the configured size: a per-environment ext4 image on a loop device
    /// (see `tmp_image.rs`). Like Lambda's `/tmp` it does not count against the memory limit
    /// (tmpfs pages would, and a 128 MB function writing 200 MB to a tmpfs `/tmp` gets
    /// OOM-killed: pitfall 7). Where loop devices or `mkfs.ext4` are unavailable, a
    /// per-environment directory of unlimited size instead (said once at startup).
    Disk,
    /// A tmpfs of `tmp_mb`. Size-limited, but its pages are charged to the memory cgroup.
    Tmpfs,
}

/// Process-wide sandbox settings; pass them to [`configure`] once at startup, before the first
/// spawn. Without a call, [`SandboxConfig::default`] is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxConfig {
    /// Private directory for the generated `/etc`, the mount staging point and per-environment
    /// `/tmp` directories (e.g. `<data-dir>/sandbox`). It should be on a disk filesystem, not a
    /// tmpfs, because `/tmp` directories live here (see [`TmpBacking::Disk`]).
    pub state_dir: PathBuf,
    /// The unprivileged uid the runtime runs as (Lambda: 993).
    pub uid: u32,
    /// The unprivileged gid the runtime runs as (Lambda: 990).
    pub gid: u32,
    /// Hostname inside environments.
    pub hostname: String,
    /// `pids.max` of each environment's cgroup.
    pub pids_max: u32,
    /// What backs `/tmp`.
    pub tmp: TmpBacking,
    /// Install the seccomp deny-list (when the host supports it).
    pub seccomp: bool,
    /// Mount the environment's own cgroup read-only at `/sys/fs/cgroup` (with a cgroup
    /// namespace), so runtimes such as Node size their heap from the limit (pitfall 10).
    pub mount_cgroupfs: bool,
    /// On a v1 (hybrid) host, set the kernel's `favordynmods` cgroup option (see
    /// `cgroup::favor_dynamic_modifications`), which takes about 7 ms off every cold start. It
    /// is a host-wide setting and stays after Nimbus exits; it is logged when made.
    pub favor_cgroup_changes: bool,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            // The system temp dir is disk-backed on the machines Nimbus targets; the server
            // should pass a directory under its data dir instead.
            state_dir: std::env::temp_dir().join("nimbus-sandbox"),
            uid: 993,
            gid: 990,
            hostname: "sandbox".to_owned(),
            pids_max: 1024,
            tmp: TmpBacking::Disk,
            seccomp: true,
            mount_cgroupfs: true,
            favor_cgroup_changes: true,
        }
    }
}

/// What to start and how to confine it.
#[derive(Debug)]
pub struct SpawnSpec {
    /// The program, as a path inside the environment (e.g. `/var/task/bootstrap`).
    pub program: PathBuf,
    /// Arguments after the program name.
    pub args: Vec<String>,
    /// The complete environment of the process; nothing is inherited from the host.
    pub env: Vec<(String, String)>,
    /// Host directory shown read-only at `/var/task`; also the working directory. With
    /// namespaces the runtime runs as [`SandboxConfig::uid`], so the tree must be readable by
    /// that user (world-readable directories, e.g. mode 0755 / 0644).
    pub code_dir: PathBuf,
    /// Host directory shown read-only at `/var/runtime` (the runtime interface clients).
    pub runtime_dir: Option<PathBuf>,
    /// Host directory shown read-only at `/opt` (the function's merged layers).
    pub opt_dir: Option<PathBuf>,
    /// Size of the private `/tmp`, in MB.
    pub tmp_mb: u32,
    /// Memory limit, in MB.
    pub memory_mb: u32,
    /// CPU policy.
    pub cpu: CpuPolicy,
    /// Where stdout goes.
    pub stdout: OwnedFd,
    /// Where stderr goes.
    pub stderr: OwnedFd,
    /// The network namespace to join (the one holding the Runtime API listener), if any.
    pub netns: Option<NetNs>,
    /// Open a TCP connection to this address (the Runtime API, as seen from inside the
    /// environment) and hand it to the runtime as fd [`RUNTIME_API_FD`]: a client that uses it
    /// need not load a networking stack before its first `/next`.
    pub runtime_api_connection: Option<std::net::SocketAddrV4>,
}

/// The fd of the Runtime API connection opened for the runtime
/// ([`SpawnSpec::runtime_api_connection`]).
pub const RUNTIME_API_FD: std::os::fd::RawFd = 3;

/// A network namespace of one environment, kept alive by an open fd.
#[derive(Debug)]
pub struct NetNs {
    fd: OwnedFd,
}

/// The Runtime API's port inside an environment's own network namespace.
const RUNTIME_API_PORT: u16 = 9001;

/// Bind the environment's Runtime API listener. With namespaces it is bound at
/// `127.0.0.1:9001` inside a new network namespace that only this environment will join, so no
/// other environment can reach it; without (or when the host cannot create network namespaces),
/// on an ephemeral host loopback port. The listener is non-blocking, ready for
/// `tokio::net::TcpListener::from_std`.
pub fn bind_runtime_api_listener(
    isolation: Isolation,
) -> io::Result<(std::net::TcpListener, Option<NetNs>)> {
    if isolation == Isolation::Namespaces {
        probe::warn_missing_once();
        if capabilities().netns {
            let (listener, fd) = netns::runtime_api_listener()?;
            listener.set_nonblocking(true)?;
            return Ok((listener, Some(NetNs { fd })));
        }
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    Ok((listener, None))
}

/// Start a process as `spec` says. Blocks for the setup time (about a millisecond with
/// namespaces) until the runtime has been exec'd; a failure names the setup step that failed,
/// e.g. `mount /var/task: Operation not permitted (os error 1)`.
pub fn spawn(spec: SpawnSpec, isolation: Isolation) -> io::Result<SandboxedProcess> {
    let host = probe::host();
    if isolation == Isolation::Namespaces {
        probe::warn_missing_once();
    }
    spawn::spawn(host, spec, isolation, host.cgroups.as_deref())
}

/// Entries of `dir` named `<pid>-<n>` whose supervisor pid no longer runs: what a crashed or
/// killed Nimbus left behind (cgroups, `/tmp` directories). Its environments are already gone,
/// killed by PDEATHSIG or their namespace's init.
fn orphaned_entries(dir: &std::path::Path) -> Vec<std::fs::DirEntry> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter(|entry| {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.split_once('-'))
                .and_then(|(p, _)| p.parse::<libc::pid_t>().ok())
            else {
                return false;
            };
            // SAFETY: signal 0 delivers nothing; it only asks whether the pid exists.
            let signalled = unsafe { libc::kill(pid, 0) };
            signalled < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
        })
        .collect()
}
