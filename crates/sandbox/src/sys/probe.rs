//! Capability detection, run once per process, and the process-wide sandbox state.
//!
//! The degradation ladder (research note §8(a)): every protection is probed by actually using
//! it (a throw-away child tries the namespace mounts and the seccomp filter, a helper thread
//! creates a network namespace, the cgroup backend creates its subtree). A missing protection is
//! switched off, and the first namespaced spawn logs one warning per missing protection.

use std::fmt;
use std::sync::{Once, OnceLock};

use super::cgroup::{self, CgroupBackend};
use super::rootfs::Rootfs;
use super::seccomp::Filters;
use super::tmp_image::TmpImages;
use super::{netns, spawn, SandboxConfig};

/// Which cgroup hierarchy limits environments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    /// Per-controller v1 hierarchies (also hybrid hosts, whose v2 mount is ignored).
    V1,
    /// The unified v2 hierarchy.
    V2,
}

/// What this host lets the sandbox do. Obtain it with [`capabilities`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// Mount, pid, ipc and uts namespaces with a private read-only root work.
    pub namespaces: bool,
    /// A cgroup namespace can be created (the environment then sees its own cgroup as `/`).
    pub cgroup_namespace: bool,
    /// Seccomp filters can be installed.
    pub seccomp: bool,
    /// Network namespaces can be created (private Runtime API listener per environment).
    pub netns: bool,
    /// `clone3` with `CLONE_PIDFD` works (race-free kill and wait).
    pub pidfd: bool,
    /// The cgroup hierarchy in use, if any is writable.
    pub cgroups: Option<CgroupVersion>,
    /// Memory limits are enforced.
    pub memory_limit: bool,
    /// CPU weights / quotas are enforced.
    pub cpu_limit: bool,
    /// Process-count limits are enforced.
    pub pids_limit: bool,
    /// Environments can be frozen and thawed.
    pub freezer: bool,
    /// The size of `/tmp` is enforced (a loop-mounted image, or a tmpfs when configured).
    pub tmp_size_limit: bool,
}

impl fmt::Display for Capabilities {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let on = |b: bool| if b { "on" } else { "off" };
        let cg = match self.cgroups {
            Some(CgroupVersion::V1) => "v1",
            Some(CgroupVersion::V2) => "v2",
            None => "off",
        };
        write!(
            f,
            "namespaces: {}, cgroup namespace: {}, seccomp: {}, network namespaces: {}, \
             pidfd: {}, cgroups: {cg} (memory: {}, cpu: {}, pids: {}, freezer: {}), \
             /tmp size limit: {}",
            on(self.namespaces),
            on(self.cgroup_namespace),
            on(self.seccomp),
            on(self.netns),
            on(self.pidfd),
            on(self.memory_limit),
            on(self.cpu_limit),
            on(self.pids_limit),
            on(self.freezer),
            on(self.tmp_size_limit),
        )
    }
}

/// Process-wide state shared by all spawns.
pub(super) struct Host {
    pub config: SandboxConfig,
    pub caps: Capabilities,
    pub cgroups: Option<Box<dyn CgroupBackend>>,
    /// Generated `/etc` and staging dirs; `None` when namespaces are off.
    pub rootfs: Option<Rootfs>,
    /// Size-limited `/tmp` images; `None` without namespaces, loop devices or `mkfs.ext4`.
    pub tmp_images: Option<TmpImages>,
    pub seccomp: Option<Filters>,
    /// Highest capability number (`/proc/sys/kernel/cap_last_cap`).
    pub last_cap: i32,
}

static CONFIG: OnceLock<SandboxConfig> = OnceLock::new();
static HOST: OnceLock<Host> = OnceLock::new();

/// Set the process-wide sandbox configuration. Call it once at startup, before the first
/// spawn or [`capabilities`] call. Calling it again with the same configuration is a no-op;
/// with a different one it fails with `AlreadyExists`.
pub fn configure(config: SandboxConfig) -> std::io::Result<()> {
    let stored = CONFIG.get_or_init(|| config.clone());
    if *stored == config {
        Ok(())
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "the sandbox is already configured differently (configure must run before first use)",
        ))
    }
}

/// What this host supports, probed on first use.
pub fn capabilities() -> &'static Capabilities {
    &host().caps
}

pub(super) fn host() -> &'static Host {
    HOST.get_or_init(|| Host::probe(CONFIG.get_or_init(SandboxConfig::default).clone()))
}

/// Log one warning per protection that `Isolation::Namespaces` wanted but this host lacks.
pub(super) fn warn_missing_once() {
    static WARNED: Once = Once::new();
    WARNED.call_once(|| {
        let host = host();
        let caps = &host.caps;
        tracing::info!(capabilities = %caps, "sandbox capabilities");
        if !caps.namespaces {
            tracing::warn!(
                "namespaces unavailable: environments run as plain processes and can see the \
                 host filesystem and processes"
            );
        }
        if caps.namespaces && !caps.seccomp && host.config.seccomp {
            tracing::warn!("seccomp unavailable: dangerous syscalls are not filtered");
        }
        if caps.namespaces && !caps.tmp_size_limit {
            tracing::warn!(
                "loop devices or mkfs.ext4 unavailable: /tmp is a plain directory and its size \
                 (EphemeralStorage) is not enforced"
            );
        }
        if !caps.netns {
            tracing::warn!(
                "network namespaces unavailable: Runtime API listeners share the host loopback, \
                 so environments can reach each other's endpoints"
            );
        }
        if caps.cgroups.is_none() {
            tracing::warn!("cgroups unavailable: memory, CPU and process limits are not enforced");
        } else {
            if !caps.memory_limit {
                tracing::warn!(
                    "cgroup memory controller unavailable: memory limits are not enforced"
                );
            }
            if !caps.cpu_limit {
                tracing::warn!("cgroup cpu controller unavailable: CPU shares are not enforced");
            }
            if !caps.pids_limit {
                tracing::warn!(
                    "cgroup pids controller unavailable: process counts are not limited"
                );
            }
            if !caps.freezer {
                tracing::warn!("cgroup freezer unavailable: idle environments cannot be frozen");
            }
        }
        if caps.namespaces && !caps.cgroup_namespace && host.config.mount_cgroupfs {
            tracing::warn!(
                "cgroup namespaces unavailable: runtimes cannot see their memory limit and may \
                 size their heap from host RAM"
            );
        }
    });
}

impl Host {
    fn probe(config: SandboxConfig) -> Host {
        let last_cap = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(63);
        let seccomp = if config.seccomp {
            match super::seccomp::build() {
                Ok(f) => Some(f),
                Err(e) => {
                    tracing::debug!(error = %e, "seccomp filter could not be built");
                    None
                }
            }
        } else {
            None
        };
        let ns = spawn::probe_namespaces(seccomp.as_ref());
        let rootfs = if ns.namespaces {
            match Rootfs::prepare(&config) {
                Ok(r) => Some(r),
                Err(e) => {
                    tracing::error!(error = %e, "cannot prepare the sandbox root files");
                    None
                }
            }
        } else {
            None
        };
        let tmp_images = match (&rootfs, config.tmp) {
            (Some(_), super::TmpBacking::Disk) => {
                TmpImages::probe(&config.state_dir.join("tmp-images"), config.uid, config.gid)
            }
            _ => None,
        };
        let cgroups = cgroup::detect()
            .map(|backend| Box::new(cgroup::CgroupPool::new(backend)) as Box<dyn CgroupBackend>);
        let v1 = cgroups.as_ref().map(|c| c.version()) == Some(CgroupVersion::V1);
        if v1 && config.favor_cgroup_changes {
            match cgroup::favor_dynamic_modifications() {
                Ok(Some(mount)) => tracing::info!(
                    mount = %mount.display(),
                    "set the cgroup option favordynmods, which makes attaching environments to their cgroups cheap (host-wide; keeps after exit)"
                ),
                Ok(None) => {}
                Err(error) => {
                    tracing::debug!(%error, "could not set the cgroup option favordynmods; cgroup attach stays slow")
                }
            }
        }
        let netns = netns::probe();
        let seccomp_ok = ns.seccomp && seccomp.is_some();
        let caps = Capabilities {
            namespaces: rootfs.is_some(),
            cgroup_namespace: ns.cgroup_namespace,
            seccomp: seccomp_ok,
            netns,
            pidfd: ns.pidfd,
            cgroups: cgroups.as_ref().map(|c| c.version()),
            memory_limit: cgroups.as_ref().is_some_and(|c| c.controllers().memory),
            cpu_limit: cgroups.as_ref().is_some_and(|c| c.controllers().cpu),
            pids_limit: cgroups.as_ref().is_some_and(|c| c.controllers().pids),
            freezer: cgroups.as_ref().is_some_and(|c| c.controllers().freezer),
            tmp_size_limit: tmp_images.is_some() || config.tmp == super::TmpBacking::Tmpfs,
        };
        Host {
            config,
            caps,
            cgroups,
            rootfs,
            tmp_images,
            seccomp: if seccomp_ok { seccomp } else { None },
            last_cap,
        }
    }
}
