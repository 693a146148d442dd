//! cgroup limits and accounting for environments, behind a [`CgroupBackend`] trait with a v1
//! and a v2 implementation (research note §5).
//!
//! Detection: `statfs("/sys/fs/cgroup")` reporting `CGROUP2_SUPER_MAGIC` means a unified v2
//! host; otherwise (v1 or hybrid) every controller mounted as a v1 hierarchy is used, and a
//! cgroup2 mount at `/sys/fs/cgroup/unified` is ignored. Nimbus owns one subtree, `nimbus/`,
//! under the supervisor's own cgroup (the supervisor is not necessarily at the root), with one
//! child per environment named `<supervisor pid>-<counter>` (or `<supervisor pid>-pool<n>` when
//! [`CgroupPool`] made it ahead of need). Directories left behind by a dead supervisor
//! (matched by that pid) are cleaned up when the backend starts.

mod pool;
mod v1;
mod v2;

pub(super) use pool::CgroupPool;

#[cfg(test)]
pub(super) use v2::V2Backend;

use std::fmt;
use std::fs::{self, File};
use std::io;
use std::os::fd::RawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::probe::CgroupVersion;

/// What one environment is allowed.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Limits {
    pub memory_bytes: u64,
    /// Share of one vCPU (memory / 1769 MB, as Lambda).
    pub vcpus: f64,
    /// Enforce `vcpus` as a hard CFS quota, not only as a weight.
    pub quota: bool,
    pub pids_max: u32,
}

impl Limits {
    /// An environment of `memory_mb`: as on Lambda, 1769 MB is one full vCPU.
    pub(super) fn for_memory(memory_mb: u32, quota: bool, pids_max: u32) -> Limits {
        Limits {
            memory_bytes: u64::from(memory_mb) << 20,
            vcpus: f64::from(memory_mb) / 1769.0,
            quota,
            pids_max,
        }
    }
}

/// Which controllers a backend can use.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Controllers {
    pub memory: bool,
    pub cpu: bool,
    pub pids: bool,
    pub freezer: bool,
}

/// How an environment's cgroup is shown inside it (read-only, with a cgroup namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CgroupFs {
    /// The v1 memory hierarchy at `/sys/fs/cgroup/memory`.
    V1,
    /// The v2 hierarchy at `/sys/fs/cgroup`.
    V2,
}

/// A cgroup hierarchy Nimbus can create environment cgroups in.
pub(super) trait CgroupBackend: Send + Sync + fmt::Debug {
    fn version(&self) -> CgroupVersion;
    fn controllers(&self) -> Controllers;
    /// Create `nimbus/<name>` with `limits` applied.
    fn create(&self, name: &str, limits: &Limits) -> io::Result<Box<dyn EnvCgroup>>;
}

/// One environment's cgroup (one directory per v1 controller, or one v2 directory).
pub(super) trait EnvCgroup: Send + Sync + fmt::Debug {
    /// Open `cgroup.procs` files the child writes "0" to (self-attach, §4 step 1).
    fn attach_fds(&self) -> Vec<RawFd>;
    /// A directory fd for `clone3(CLONE_INTO_CGROUP)` (v2 only).
    fn clone_into_fd(&self) -> Option<RawFd>;
    /// Close the attach fds once the child is running.
    fn release_attach_fds(&mut self);
    /// How to show the cgroup inside the environment, if the memory controller is there.
    fn cgroupfs(&self) -> Option<CgroupFs>;
    /// Highest memory use (v1 `memory.max_usage_in_bytes`, v2 `memory.peak` or
    /// `memory.current`), page cache included.
    fn peak_memory_bytes(&self) -> Option<u64>;
    /// Start a new peak measurement (v1 always; v2 needs kernel 6.12+).
    fn reset_peak_memory(&mut self) -> io::Result<()>;
    /// The kernel's OOM-kill counter for this cgroup (pitfall 9: not `failcnt`).
    fn oom_kills(&self) -> Option<u64>;
    fn freeze(&self) -> io::Result<()>;
    fn thaw(&self) -> io::Result<()>;
    /// SIGKILL every process in the cgroup, also when it is frozen (pitfall 6). Returns after
    /// signalling; reaping is the process owner's job.
    fn kill_all(&self) -> io::Result<()>;
    /// Remove the directories, retrying while the last processes finish exiting.
    fn remove(&mut self) -> io::Result<()>;
    /// The directories (for diagnostics and tests).
    fn paths(&self) -> Vec<PathBuf>;
}

/// `CGROUP2_SUPER_MAGIC`.
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// Pick the backend for this host, or `None` (with the reason logged at debug level).
pub(super) fn detect() -> Option<Box<dyn CgroupBackend>> {
    let result: io::Result<Box<dyn CgroupBackend>> = (|| {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
        let own = fs::read_to_string("/proc/self/cgroup")?;
        if statfs_type("/sys/fs/cgroup")? == CGROUP2_SUPER_MAGIC {
            let own_path = own
                .lines()
                .find_map(|l| l.strip_prefix("0::"))
                .ok_or_else(|| io::Error::other("no cgroup2 entry in /proc/self/cgroup"))?;
            let backend = v2::V2Backend::detect(Path::new("/sys/fs/cgroup"), own_path, "nimbus")?;
            Ok(Box::new(backend) as Box<dyn CgroupBackend>)
        } else {
            Ok(Box::new(v1::V1Backend::detect(&mountinfo, &own, "nimbus")?)
                as Box<dyn CgroupBackend>)
        }
    })();
    match result {
        Ok(b) => Some(b),
        Err(e) => {
            tracing::debug!(error = %e, "no usable cgroup hierarchy");
            None
        }
    }
}

/// Make moving a process into a cgroup cheap, where the host allows it: on a v1 (hybrid) host
/// every environment's cgroup attach otherwise waits for an RCU grace period in the kernel's
/// global threadgroup lock, about 7 ms measured here (sandbox.md pitfall 16), straight on the
/// cold-start path. The cgroup2 option `favordynmods` (Linux 6.0+) trades a little fork and exit
/// cost for cheap migrations; the lock is global, so setting it on the unified hierarchy also
/// speeds up the v1 controllers (measured: 7 ms to 0.3 ms). The superblock is reconfigured
/// with its current options plus this one, so nothing else changes. Returns the mount point
/// changed, or `None` when the option was already set.
pub(super) fn favor_dynamic_modifications() -> io::Result<Option<PathBuf>> {
    let mountinfo = fs::read_to_string("/proc/self/mountinfo")?;
    let (mount_point, options) = cgroup2_mount(&mountinfo)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no cgroup2 mount"))?;
    if options.iter().any(|o| o == "favordynmods") {
        return Ok(None);
    }
    let dir = File::open(&mount_point)?;
    let flags =
        rustix::mount::FsPickFlags::FSPICK_CLOEXEC | rustix::mount::FsPickFlags::FSPICK_EMPTY_PATH;
    let fs = rustix::mount::fspick(&dir, "", flags)?;
    for option in options.iter().filter(|o| *o != "rw" && *o != "ro") {
        match option.split_once('=') {
            Some((key, value)) => rustix::mount::fsconfig_set_string(&fs, key, value)?,
            None => rustix::mount::fsconfig_set_flag(&fs, option.as_str())?,
        }
    }
    rustix::mount::fsconfig_set_flag(&fs, "favordynmods")?;
    rustix::mount::fsconfig_reconfigure(&fs)?;
    Ok(Some(mount_point))
}

/// The first cgroup2 mount in `mountinfo`: its mount point and superblock options.
fn cgroup2_mount(mountinfo: &str) -> Option<(PathBuf, Vec<String>)> {
    mountinfo.lines().find_map(|line| {
        let (mount, fs) = line.split_once(" - ")?;
        let mut fs = fs.split(' ');
        if fs.next()? != "cgroup2" {
            return None;
        }
        let options = fs.nth(1)?.split(',').map(str::to_owned).collect();
        let mount_point = unescape(mount.split(' ').nth(4)?);
        Some((PathBuf::from(mount_point), options))
    })
}

fn statfs_type(path: &str) -> io::Result<i64> {
    let c = std::ffi::CString::new(path).map_err(io::Error::other)?;
    // SAFETY: statfs writes into a zeroed, properly sized struct; the path is NUL-terminated.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: see above.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } < 0 {
        return Err(io::Error::last_os_error());
    }
    #[allow(clippy::unnecessary_cast)]
    Ok(st.f_type as i64)
}

#[cfg(test)]
pub(super) fn statfs_type_for_tests(path: &Path) -> Option<i64> {
    statfs_type(path.to_str()?).ok()
}

/// Write a control file; the error names the file.
pub(super) fn write(path: &Path, value: &str) -> io::Result<()> {
    fs::write(path, value).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("write {value:?} to {}: {e}", path.display()),
        )
    })
}

/// A number from a cgroup file held open: re-read from offset 0 without a path lookup.
pub(super) fn read_u64_at(file: &File) -> Option<u64> {
    let mut buf = [0u8; 32];
    let n = file.read_at(&mut buf, 0).ok()?;
    std::str::from_utf8(&buf[..n]).ok()?.trim().parse().ok()
}

/// The value of `key` in a flat-keyed file such as `memory.events` ("oom_kill 3").
pub(super) fn keyed(path: &Path, key: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

/// Pids listed in a `cgroup.procs`.
pub(super) fn procs(dir: &Path) -> Vec<libc::pid_t> {
    fs::read_to_string(dir.join("cgroup.procs"))
        .map(|s| s.lines().filter_map(|l| l.trim().parse().ok()).collect())
        .unwrap_or_default()
}

pub(super) fn kill_procs(dir: &Path) -> usize {
    let pids = procs(dir);
    for pid in &pids {
        // SAFETY: kill has no memory-safety preconditions. A pid listed in our own cgroup can
        // only be reused by a process of the same cgroup while we are not reaping.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    pids.len()
}

/// Poll `done` until it holds, for at most `limit`.
pub(super) fn poll_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    let mut pause = Duration::from_micros(20);
    loop {
        if done() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// `rmdir` a cgroup, retrying while it is busy (tasks or unreaped zombies: pitfall 6) and
/// re-killing stragglers in between. A missing directory counts as removed.
pub(super) fn rmdir_retry(dir: &Path, limit: Duration) -> io::Result<()> {
    let mut last = None;
    let ok = poll_until(limit, || match fs::remove_dir(dir) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::NotFound => true,
        Err(e) => {
            kill_procs(dir);
            last = Some(e);
            false
        }
    });
    if ok {
        Ok(())
    } else {
        let e = last.unwrap_or_else(|| io::Error::other("timeout"));
        Err(io::Error::new(
            e.kind(),
            format!("rmdir {}: {e}", dir.display()),
        ))
    }
}

/// Remove child cgroups of `base` left by supervisors that no longer run: names are
/// `<pid>-<n>`; a dead pid means PDEATHSIG already killed that supervisor's environments, so
/// only stragglers are killed and the directories removed. Best effort.
pub(super) fn clean_stale(base: &Path) {
    for entry in super::orphaned_entries(base) {
        if entry.path().is_dir() {
            kill_procs(&entry.path());
            // An environment that was idle when its server died is still frozen, and a frozen
            // task only acts on its SIGKILL (PDEATHSIG's, or ours) once thawed.
            let _ = fs::write(entry.path().join("freezer.state"), "THAWED");
            let _ = fs::write(entry.path().join("cgroup.freeze"), "0");
            let _ = rmdir_retry(&entry.path(), Duration::from_millis(200));
        }
    }
}

/// Mountinfo lines escape spaces and friends as `\ooo`.
pub(super) fn unescape(field: &str) -> String {
    let mut out = Vec::with_capacity(field.len());
    let b = field.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            let digit = |k: usize| u32::from(b[i + k] - b'0');
            out.push((digit(1) * 64 + digit(2) * 8 + digit(3)) as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cgroup2_mount_and_its_options_are_found() {
        let mountinfo = "\
30 1 0:27 / / rw,relatime - ext4 /dev/vda rw
35 30 0:30 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 30 0:31 / /sys/fs/cgroup/uni\\040fied rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";
        let (point, options) = cgroup2_mount(mountinfo).expect("found");
        assert_eq!(point, PathBuf::from("/sys/fs/cgroup/uni fied"));
        assert_eq!(options, ["rw", "nsdelegate", "memory_recursiveprot"]);
        assert!(cgroup2_mount("30 1 0:27 / / rw - ext4 /dev/vda rw\n").is_none());
    }
}
