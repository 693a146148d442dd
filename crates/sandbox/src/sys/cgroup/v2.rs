//! cgroup v2: one directory per environment in the unified hierarchy.
//!
//! Files (research note §5): `memory.max` + `memory.swap.max=0` (+ `memory.oom.group=1`, so an
//! OOM kills the environment as a unit), `memory.peak` / `memory.current`, `memory.events`;
//! `cpu.weight`, `cpu.max`; `pids.max`; `cgroup.freeze` / `cgroup.events`; `cgroup.kill` (5.14+,
//! kills even frozen tasks at once). Children are created directly inside their cgroup with
//! `clone3(CLONE_INTO_CGROUP)` (no migration, no attach latency spikes: pitfall 16).
//!
//! The "no internal processes" rule: controllers can only be enabled for children of a cgroup
//! that has no processes of its own (the root excepted). When enabling fails with EBUSY, the
//! supervisor's processes are moved into a `nimbus-supervisor` leaf first, as systemd's
//! delegation model (`Delegate=yes`) expects of a service managing its own subtree.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{keyed, kill_procs, poll_until, read_u64_at, rmdir_retry, write};
use super::{CgroupBackend, CgroupFs, Controllers, EnvCgroup, Limits};
use crate::sys::probe::CgroupVersion;

const WANTED: [&str; 3] = ["memory", "cpu", "pids"];

/// The `nimbus/` directory of the unified hierarchy.
#[derive(Debug)]
pub(in crate::sys) struct V2Backend {
    base: PathBuf,
    ctrls: Controllers,
}

fn words(path: &Path) -> Vec<String> {
    fs::read_to_string(path)
        .map(|s| s.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Enable the wanted controllers that `dir` offers for its children. Returns whether any write
/// failed with EBUSY (internal processes).
fn enable(dir: &Path) -> bool {
    let available = words(&dir.join("cgroup.controllers"));
    let enabled = words(&dir.join("cgroup.subtree_control"));
    let mut busy = false;
    for c in WANTED {
        if available.iter().any(|a| a == c) && !enabled.iter().any(|e| e == c) {
            if let Err(e) = fs::write(dir.join("cgroup.subtree_control"), format!("+{c}")) {
                busy |= e.raw_os_error() == Some(libc::EBUSY);
                tracing::debug!(controller = c, dir = %dir.display(), error = %e, "cannot enable cgroup controller");
            }
        }
    }
    busy
}

impl V2Backend {
    /// `mount` is the cgroup2 mount point, `own` this process's cgroup path in it.
    pub(in crate::sys) fn detect(
        mount: &Path,
        own: &str,
        base_name: &str,
    ) -> io::Result<V2Backend> {
        let parent = mount.join(own.trim().trim_start_matches('/'));
        if enable(&parent) {
            let leaf = parent.join("nimbus-supervisor");
            match fs::create_dir(&leaf) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!("create {}: {e}", leaf.display()),
                    ))
                }
            }
            tracing::info!(leaf = %leaf.display(), "moving the supervisor's processes into a leaf cgroup to enable controllers (cgroup v2 no-internal-process rule)");
            for pid in super::procs(&parent) {
                // Processes may exit meanwhile; those writes fail harmlessly.
                let _ = fs::write(leaf.join("cgroup.procs"), pid.to_string());
            }
            enable(&parent);
        }
        let base = parent.join(base_name);
        match fs::create_dir(&base) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("create {}: {e}", base.display()),
                ))
            }
        }
        enable(&base);
        let on = words(&base.join("cgroup.subtree_control"));
        let has = |c: &str| on.iter().any(|o| o == c);
        let ctrls = Controllers {
            memory: has("memory"),
            cpu: has("cpu"),
            pids: has("pids"),
            freezer: base.join("cgroup.freeze").exists(),
        };
        super::clean_stale(&base);
        Ok(V2Backend { base, ctrls })
    }
}

impl CgroupBackend for V2Backend {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V2
    }

    fn controllers(&self) -> Controllers {
        self.ctrls
    }

    fn create(&self, name: &str, limits: &Limits) -> io::Result<Box<dyn EnvCgroup>> {
        let dir = self.base.join(name);
        fs::create_dir(&dir)
            .map_err(|e| io::Error::new(e.kind(), format!("create {}: {e}", dir.display())))?;
        match V2Cgroup::setup(dir.clone(), self.ctrls, limits) {
            Ok(cg) => Ok(Box::new(cg)),
            Err(e) => {
                let _ = fs::remove_dir(&dir);
                Err(e)
            }
        }
    }
}

/// One environment's directory.
#[derive(Debug)]
struct V2Cgroup {
    dir: PathBuf,
    ctrls: Controllers,
    /// Directory fd for `CLONE_INTO_CGROUP`.
    dir_fd: Option<OwnedFd>,
    /// `cgroup.procs`, for self-attach when `CLONE_INTO_CGROUP` is refused.
    procs: Option<File>,
    /// `memory.peak` (or `memory.current` before 5.19), kept open: it is read after every
    /// invocation, and a path lookup in cgroupfs costs more than the read. Reopened read-write
    /// for a per-fd reset (6.12+ semantics).
    peak: Option<File>,
}

impl V2Cgroup {
    fn setup(dir: PathBuf, ctrls: Controllers, limits: &Limits) -> io::Result<V2Cgroup> {
        if ctrls.memory {
            write(&dir.join("memory.max"), &limits.memory_bytes.to_string())?;
            for (file, value) in [("memory.swap.max", "0"), ("memory.oom.group", "1")] {
                if dir.join(file).exists() {
                    write(&dir.join(file), value)?;
                }
            }
        }
        if ctrls.cpu {
            let weight = ((100.0 * limits.vcpus).round() as u64).clamp(1, 10_000);
            write(&dir.join("cpu.weight"), &weight.to_string())?;
            if limits.quota {
                let quota = ((100_000.0 * limits.vcpus).round() as u64).max(1000);
                write(&dir.join("cpu.max"), &format!("{quota} 100000"))?;
            }
        }
        if ctrls.pids {
            write(&dir.join("pids.max"), &limits.pids_max.to_string())?;
        }
        let ctx = |what: &str, e: io::Error| {
            io::Error::new(e.kind(), format!("open {what} of {}: {e}", dir.display()))
        };
        let dir_fd = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY)
            .open(&dir)
            .map_err(|e| ctx("directory", e))?;
        let procs = OpenOptions::new()
            .write(true)
            .open(dir.join("cgroup.procs"))
            .map_err(|e| ctx("cgroup.procs", e))?;
        // memory.peak needs 5.19+; older kernels only offer the current usage.
        let peak = ctrls
            .memory
            .then(|| {
                File::open(dir.join("memory.peak"))
                    .or_else(|_| File::open(dir.join("memory.current")))
                    .ok()
            })
            .flatten();
        Ok(V2Cgroup {
            dir,
            ctrls,
            dir_fd: Some(dir_fd.into()),
            procs: Some(procs),
            peak,
        })
    }
}

impl EnvCgroup for V2Cgroup {
    fn attach_fds(&self) -> Vec<RawFd> {
        self.procs.iter().map(|f| f.as_raw_fd()).collect()
    }

    fn clone_into_fd(&self) -> Option<RawFd> {
        self.dir_fd.as_ref().map(|f| f.as_raw_fd())
    }

    fn release_attach_fds(&mut self) {
        self.procs = None;
        self.dir_fd = None;
    }

    fn cgroupfs(&self) -> Option<CgroupFs> {
        Some(CgroupFs::V2)
    }

    fn peak_memory_bytes(&self) -> Option<u64> {
        if !self.ctrls.memory {
            return None;
        }
        read_u64_at(self.peak.as_ref()?)
    }

    fn reset_peak_memory(&mut self) -> io::Result<()> {
        if !self.ctrls.memory {
            return Err(io::ErrorKind::Unsupported.into());
        }
        // Since 6.12 a write resets the peak as seen through the same open file.
        let path = self.dir.join("memory.peak");
        let f = OpenOptions::new().read(true).write(true).open(&path)?;
        f.write_at(b"reset", 0)
            .map_err(|e| io::Error::new(e.kind(), format!("reset {}: {e}", path.display())))?;
        self.peak = Some(f);
        Ok(())
    }

    fn oom_kills(&self) -> Option<u64> {
        if !self.ctrls.memory {
            return None;
        }
        keyed(&self.dir.join("memory.events"), "oom_kill")
    }

    fn freeze(&self) -> io::Result<()> {
        write(&self.dir.join("cgroup.freeze"), "1")?;
        let events = self.dir.join("cgroup.events");
        if poll_until(Duration::from_secs(2), || {
            keyed(&events, "frozen") == Some(1)
        }) {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("{} did not freeze", self.dir.display()),
            ))
        }
    }

    fn thaw(&self) -> io::Result<()> {
        write(&self.dir.join("cgroup.freeze"), "0")
    }

    fn kill_all(&self) -> io::Result<()> {
        let kill = self.dir.join("cgroup.kill");
        if kill.exists() {
            return write(&kill, "1");
        }
        // Before 5.14: freeze, kill the listed tasks, thaw.
        let frozen = self.freeze().is_ok();
        for _ in 0..if frozen { 1 } else { 5 } {
            if kill_procs(&self.dir) == 0 {
                break;
            }
        }
        self.thaw()
    }

    fn remove(&mut self) -> io::Result<()> {
        self.release_attach_fds();
        self.peak = None;
        rmdir_retry(&self.dir, Duration::from_secs(2))
    }

    fn paths(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The files the kernel provides in a fresh v2 cgroup, as plain files: this host mounts the
    /// resource controllers as v1, so the v2 file formats are checked here.
    fn fake_cgroup(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, contents) in files {
            fs::write(dir.path().join(name), contents).expect("write");
        }
        dir
    }

    const ALL: Controllers = Controllers {
        memory: true,
        cpu: true,
        pids: true,
        freezer: true,
    };

    fn read(dir: &Path, name: &str) -> String {
        fs::read_to_string(dir.join(name)).expect("read")
    }

    #[test]
    fn limits_are_written_in_the_v2_formats() {
        let dir = fake_cgroup(&[
            ("cgroup.procs", ""),
            ("memory.max", "max"),
            ("memory.swap.max", "max"),
            ("memory.oom.group", "0"),
            ("memory.peak", "7340032\n"),
            (
                "memory.events",
                "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\noom_group_kill 0\n",
            ),
            ("cpu.weight", "100"),
            ("cpu.max", "max 100000"),
            ("pids.max", "max"),
        ]);
        let limits = Limits::for_memory(128, true, 1024);
        let cg = V2Cgroup::setup(dir.path().to_owned(), ALL, &limits).expect("setup");
        assert_eq!(read(dir.path(), "memory.max"), "134217728");
        assert_eq!(read(dir.path(), "memory.swap.max"), "0");
        assert_eq!(
            read(dir.path(), "memory.oom.group"),
            "1",
            "an OOM kills the environment whole"
        );
        assert_eq!(read(dir.path(), "cpu.weight"), "7", "100 per vCPU");
        assert_eq!(
            read(dir.path(), "cpu.max"),
            "7236 100000",
            "quota per 100 ms period"
        );
        assert_eq!(read(dir.path(), "pids.max"), "1024");
        assert_eq!(cg.peak_memory_bytes(), Some(7 << 20));
        assert_eq!(cg.oom_kills(), Some(1));
        // The peak file stays open: a later value is read without a path lookup.
        fs::write(dir.path().join("memory.peak"), "9437184\n").expect("write");
        assert_eq!(cg.peak_memory_bytes(), Some(9 << 20));
    }

    #[test]
    fn without_a_quota_or_peak_file_the_weight_and_current_usage_serve() {
        let dir = fake_cgroup(&[
            ("cgroup.procs", ""),
            ("memory.max", "max"),
            ("memory.current", "4096\n"),
            ("cpu.weight", "100"),
            ("cpu.max", "max 100000"),
            ("pids.max", "max"),
        ]);
        let limits = Limits::for_memory(3008, false, 1024);
        let cg = V2Cgroup::setup(dir.path().to_owned(), ALL, &limits).expect("setup");
        assert_eq!(read(dir.path(), "cpu.weight"), "170");
        assert_eq!(
            read(dir.path(), "cpu.max"),
            "max 100000",
            "no hard quota by default"
        );
        assert!(
            !dir.path().join("memory.swap.max").exists(),
            "absent files are not created"
        );
        assert_eq!(
            cg.peak_memory_bytes(),
            Some(4096),
            "before 5.19: memory.current"
        );

        let none = Controllers {
            freezer: true,
            ..Controllers::default()
        };
        let bare = fake_cgroup(&[("cgroup.procs", "")]);
        let cg = V2Cgroup::setup(bare.path().to_owned(), none, &limits).expect("setup");
        assert_eq!(
            cg.peak_memory_bytes(),
            None,
            "no memory controller, no figure"
        );
        assert_eq!(cg.oom_kills(), None);
    }
}
