//! cgroup v1: one directory per controller hierarchy (memory, cpu, pids, freezer).
//!
//! Used on v1 and hybrid hosts (such as the project's standard VM, whose cgroup2 mount carries
//! only `hugetlb`). Files (research note §5): memory `memory.limit_in_bytes` +
//! `memory.memsw.limit_in_bytes` (no swap), `memory.max_usage_in_bytes`, `memory.oom_control`;
//! cpu `cpu.shares` and `cpu.cfs_{period,quota}_us`; `pids.max`; `freezer.state`.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{keyed, kill_procs, poll_until, read_u64_at, rmdir_retry, unescape, write};
use super::{CgroupBackend, CgroupFs, Controllers, EnvCgroup, Limits};
use crate::sys::probe::CgroupVersion;

/// The `nimbus/` directory in each usable controller hierarchy.
#[derive(Debug)]
pub(in crate::sys) struct V1Backend {
    memory: Option<PathBuf>,
    cpu: Option<PathBuf>,
    pids: Option<PathBuf>,
    freezer: Option<PathBuf>,
    memsw: bool,
}

/// Where `controller`'s hierarchy holds the cgroup of this process, from mountinfo and
/// /proc/self/cgroup.
fn own_dir(mountinfo: &str, self_cgroup: &str, controller: &str) -> Option<PathBuf> {
    let (root, mountpoint) = mountinfo.lines().find_map(|line| {
        let (left, right) = line.split_once(" - ")?;
        let left: Vec<&str> = left.split(' ').collect();
        let mut right = right.split(' ');
        let (fstype, _source, opts) = (right.next()?, right.next()?, right.next()?);
        if fstype != "cgroup" || !opts.split(',').any(|o| o == controller) {
            return None;
        }
        Some((unescape(left.get(3)?), unescape(left.get(4)?)))
    })?;
    let path = self_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        ctrls.split(',').any(|c| c == controller).then_some(path)
    })?;
    // Inside a container the mount root may be a sub-cgroup; our path is relative to it.
    let rel = Path::new(path).strip_prefix(&root).unwrap_or(Path::new(""));
    Some(Path::new(&mountpoint).join(rel))
}

impl V1Backend {
    pub(in crate::sys) fn detect(
        mountinfo: &str,
        self_cgroup: &str,
        base_name: &str,
    ) -> io::Result<V1Backend> {
        let find = |ctrl: &str| -> Option<PathBuf> {
            let base = own_dir(mountinfo, self_cgroup, ctrl)?.join(base_name);
            match fs::create_dir(&base) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    tracing::debug!(controller = ctrl, path = %base.display(), error = %e, "cgroup v1 controller not writable");
                    return None;
                }
            }
            super::clean_stale(&base);
            Some(base)
        };
        // The freezer first: its clean-up thaws what a dead server left frozen, so that the
        // other hierarchies' leftovers can then be emptied and removed.
        let freezer = find("freezer");
        let backend = V1Backend {
            memory: find("memory"),
            cpu: find("cpu"),
            pids: find("pids"),
            freezer,
            memsw: false,
        };
        if backend.memory.is_none()
            && backend.cpu.is_none()
            && backend.pids.is_none()
            && backend.freezer.is_none()
        {
            return Err(io::Error::other("no writable cgroup v1 controller"));
        }
        let memsw = backend
            .memory
            .as_ref()
            .is_some_and(|m| m.join("memory.memsw.limit_in_bytes").exists());
        Ok(V1Backend { memsw, ..backend })
    }
}

impl CgroupBackend for V1Backend {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V1
    }

    fn controllers(&self) -> Controllers {
        Controllers {
            memory: self.memory.is_some(),
            cpu: self.cpu.is_some(),
            pids: self.pids.is_some(),
            freezer: self.freezer.is_some(),
        }
    }

    fn create(&self, name: &str, limits: &Limits) -> io::Result<Box<dyn EnvCgroup>> {
        let dir = |b: &Option<PathBuf>| b.as_ref().map(|b| b.join(name));
        let mut cg = V1Cgroup {
            memory: dir(&self.memory),
            cpu: dir(&self.cpu),
            pids: dir(&self.pids),
            freezer: dir(&self.freezer),
            attach: Vec::new(),
            peak: None,
        };
        // On error, remove whatever was created (the dirs are empty: nothing attached yet).
        match cg.setup(limits, self.memsw) {
            Ok(()) => Ok(Box::new(cg)),
            Err(e) => {
                let _ = cg.remove();
                Err(e)
            }
        }
    }
}

/// One environment's directories.
#[derive(Debug)]
struct V1Cgroup {
    memory: Option<PathBuf>,
    cpu: Option<PathBuf>,
    pids: Option<PathBuf>,
    freezer: Option<PathBuf>,
    attach: Vec<File>,
    /// `memory.max_usage_in_bytes`, kept open: it is read after every invocation, and the
    /// path lookup in cgroupfs costs many times the read.
    peak: Option<File>,
}

impl V1Cgroup {
    fn setup(&mut self, limits: &Limits, memsw: bool) -> io::Result<()> {
        for d in self.paths() {
            fs::create_dir(&d)
                .map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", d.display())))?;
        }
        if let Some(m) = &self.memory {
            let bytes = limits.memory_bytes.to_string();
            // limit first: memsw must never be below it.
            write(&m.join("memory.limit_in_bytes"), &bytes)?;
            if memsw {
                write(&m.join("memory.memsw.limit_in_bytes"), &bytes)?;
            }
            self.peak = File::open(m.join("memory.max_usage_in_bytes")).ok();
        }
        if let Some(c) = &self.cpu {
            let shares = ((1024.0 * limits.vcpus).round() as u64).max(2);
            write(&c.join("cpu.shares"), &shares.to_string())?;
            if limits.quota {
                let quota = ((100_000.0 * limits.vcpus).round() as u64).max(1000);
                write(&c.join("cpu.cfs_period_us"), "100000")?;
                write(&c.join("cpu.cfs_quota_us"), &quota.to_string())?;
            }
        }
        if let Some(p) = &self.pids {
            write(&p.join("pids.max"), &limits.pids_max.to_string())?;
        }
        for d in self.paths() {
            let procs = d.join("cgroup.procs");
            let f = OpenOptions::new()
                .write(true)
                .open(&procs)
                .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", procs.display())))?;
            self.attach.push(f);
        }
        Ok(())
    }
}

impl EnvCgroup for V1Cgroup {
    fn attach_fds(&self) -> Vec<RawFd> {
        self.attach.iter().map(|f| f.as_raw_fd()).collect()
    }

    fn clone_into_fd(&self) -> Option<RawFd> {
        None
    }

    fn release_attach_fds(&mut self) {
        self.attach.clear();
    }

    fn cgroupfs(&self) -> Option<CgroupFs> {
        self.memory.as_ref().map(|_| CgroupFs::V1)
    }

    fn peak_memory_bytes(&self) -> Option<u64> {
        read_u64_at(self.peak.as_ref()?)
    }

    fn reset_peak_memory(&mut self) -> io::Result<()> {
        let m = self.memory.as_ref().ok_or(io::ErrorKind::Unsupported)?;
        write(&m.join("memory.max_usage_in_bytes"), "0")
    }

    fn oom_kills(&self) -> Option<u64> {
        keyed(
            &self.memory.as_ref()?.join("memory.oom_control"),
            "oom_kill",
        )
    }

    fn freeze(&self) -> io::Result<()> {
        let f = self.freezer.as_ref().ok_or(io::ErrorKind::Unsupported)?;
        let state = f.join("freezer.state");
        write(&state, "FROZEN")?;
        // The state goes FREEZING → FROZEN once every task has stopped. A task caught in the
        // middle of fork or exit can leave the cgroup stuck in FREEZING; like runc, write
        // FROZEN again on every poll and now and then thaw and start over.
        let mut polls = 0u32;
        let frozen = poll_until(Duration::from_secs(2), || {
            if fs::read_to_string(&state).is_ok_and(|s| s.trim() == "FROZEN") {
                return true;
            }
            polls += 1;
            if polls.is_multiple_of(20) {
                let _ = fs::write(&state, "THAWED");
            }
            let _ = fs::write(&state, "FROZEN");
            false
        });
        if frozen {
            Ok(())
        } else {
            let _ = fs::write(&state, "THAWED");
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{} did not reach FROZEN", state.display()),
            ))
        }
    }

    fn thaw(&self) -> io::Result<()> {
        let f = self.freezer.as_ref().ok_or(io::ErrorKind::Unsupported)?;
        write(&f.join("freezer.state"), "THAWED")
    }

    fn kill_all(&self) -> io::Result<()> {
        // Freeze first so nothing forks between listing and killing; a SIGKILL to a frozen v1
        // task is only delivered after the thaw (pitfall 6), so thaw last.
        let frozen = self.freezer.is_some() && self.freeze().is_ok();
        let rounds = if frozen { 1 } else { 5 };
        for _ in 0..rounds {
            let killed: usize = self.paths().iter().map(|d| kill_procs(d)).sum();
            if killed == 0 {
                break;
            }
        }
        if self.freezer.is_some() {
            self.thaw()?;
        }
        Ok(())
    }

    fn remove(&mut self) -> io::Result<()> {
        self.attach.clear();
        self.peak = None;
        let mut result = Ok(());
        for d in self.paths() {
            if let Err(e) = rmdir_retry(&d, Duration::from_secs(2)) {
                result = result.and(Err(e));
            }
        }
        result
    }

    fn paths(&self) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = Vec::new();
        for d in [&self.memory, &self.cpu, &self.pids, &self.freezer]
            .into_iter()
            .flatten()
        {
            if !out.contains(d) {
                out.push(d.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::own_dir;
    use std::path::PathBuf;

    #[test]
    fn sys_v1_own_dir_from_mountinfo() {
        let mountinfo = "35 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
                         36 30 0:32 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n\
                         37 30 0:33 /docker/x /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
        let own = "4:memory:/process_api/abc\n1:cpu,cpuacct:/\n8:pids:/docker/x/inner\n";
        assert_eq!(
            own_dir(mountinfo, own, "memory"),
            Some(PathBuf::from("/sys/fs/cgroup/memory/process_api/abc"))
        );
        assert_eq!(
            own_dir(mountinfo, own, "cpu"),
            Some(PathBuf::from("/sys/fs/cgroup/cpu,cpuacct/"))
        );
        assert_eq!(
            own_dir(mountinfo, own, "pids"),
            Some(PathBuf::from("/sys/fs/cgroup/pids/inner"))
        );
        assert_eq!(own_dir(mountinfo, own, "freezer"), None);
    }
}
