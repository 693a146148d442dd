//! Builds, in the parent, the list of steps ([`Op`]s) a child runs before `execve`.
//!
//! Two plans exist: [`namespaced`] follows the research note's §4 sequence (private mounts,
//! tmpfs root with read-only binds, pivot_root, privilege drop, mini-init, seccomp), and
//! [`plain`] is level 0 of the degradation ladder (clean env, own process group, rlimits).
//! Everything that needs memory (paths, argv, envp) is prepared here, because the child must not
//! allocate.

use std::ffi::{c_char, CString};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::cgroup::CgroupFs;
use super::child::{Op, Plan, Rlimit, RuntimeStack};
use super::probe::Host;
use super::rootfs::TopEntry;

/// Where an environment's `/tmp` comes from.
#[derive(Debug)]
pub(super) enum TmpSource {
    /// Bind this host directory read-write.
    Dir(PathBuf),
    /// A tmpfs of this many MB.
    Tmpfs(u32),
    /// An ext4 image on this loop device.
    Device(PathBuf),
    /// An ext4 image already mounted, attached nowhere: this `fsmount` fd, open in the child.
    Detached(RawFd),
}

/// What a plan is built from.
#[derive(Debug)]
pub(super) struct Inputs<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    pub code_dir: &'a Path,
    pub runtime_dir: Option<&'a Path>,
    pub opt_dir: Option<&'a Path>,
    pub tmp: TmpSource,
    /// Pre-opened `cgroup.procs` files to self-attach through.
    pub attach_fds: Vec<RawFd>,
    /// How to show the environment's cgroup inside it, if at all.
    pub cgroupfs: Option<CgroupFs>,
    pub netns_fd: Option<RawFd>,
    /// Where to open the connection the runtime gets as [`super::RUNTIME_API_FD`].
    pub runtime_api_connection: Option<std::net::SocketAddrV4>,
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

pub(super) fn cstr(bytes: &[u8]) -> io::Result<CString> {
    CString::new(bytes).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{:?} contains a NUL byte", String::from_utf8_lossy(bytes)),
        )
    })
}

fn cpath(p: &Path) -> io::Result<CString> {
    cstr(p.as_os_str().as_bytes())
}

/// Move an fd to a number of at least 3 (close-on-exec), so the child's `dup2` onto 0..=2
/// never clobbers another fd it still needs.
pub(super) fn high_fd(fd: OwnedFd) -> io::Result<OwnedFd> {
    fd_above(fd, 2)
}

/// Move an fd to a number above `floor` (close-on-exec), unless it already is.
pub(super) fn fd_above(fd: OwnedFd, floor: RawFd) -> io::Result<OwnedFd> {
    if fd.as_raw_fd() > floor {
        return Ok(fd);
    }
    // SAFETY: F_DUPFD_CLOEXEC on a valid fd returns a new fd that we own exclusively.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, floor + 1) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a freshly created fd nobody else owns.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(new) })
}

struct Builder {
    plan: Plan,
}

impl Builder {
    fn new() -> Self {
        Builder {
            plan: Plan {
                ops: Vec::new(),
                labels: Vec::new(),
                strings: Vec::new(),
                fds: Vec::new(),
            },
        }
    }

    fn push(&mut self, label: impl Into<String>, op: Op) {
        self.plan.ops.push(op);
        self.plan.labels.push(label.into());
    }

    fn mount(
        &mut self,
        label: String,
        src: Option<&[u8]>,
        target: &Path,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
    ) -> io::Result<()> {
        let op = Op::Mount {
            src: src.map(cstr).transpose()?,
            target: cpath(target)?,
            fstype: fstype.map(|s| cstr(s.as_bytes())).transpose()?,
            flags,
            data: data.map(|s| cstr(s.as_bytes())).transpose()?,
        };
        self.push(label, op);
        Ok(())
    }

    /// A bind mount made read-only (nosuid, nodev) by the second remount call that bind mounts
    /// need (pitfall 15).
    fn ro_bind(&mut self, src: &Path, target: &Path, shown_as: &str) -> io::Result<()> {
        self.mount(
            format!("bind {shown_as}"),
            Some(src.as_os_str().as_bytes()),
            target,
            None,
            libc::MS_BIND,
            None,
        )?;
        let flags =
            libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV;
        self.mount(
            format!("remount {shown_as} read-only"),
            None,
            target,
            None,
            flags,
            None,
        )
    }

    fn mkdir(&mut self, path: &Path, shown_as: &str) -> io::Result<()> {
        self.push(format!("mkdir {shown_as}"), Op::Mkdir(cpath(path)?));
        Ok(())
    }

    /// Stdio onto 0..=2; the sources stay owned by the plan until after the clone.
    fn stdio(&mut self, fds: [OwnedFd; 3]) -> io::Result<()> {
        for (to, fd) in fds.into_iter().enumerate() {
            let fd = high_fd(fd)?;
            self.push(
                format!("dup2 onto fd {to}"),
                Op::Dup2 {
                    from: fd.as_raw_fd(),
                    to: to as RawFd,
                },
            );
            self.plan.fds.push(fd);
        }
        Ok(())
    }

    fn exec(
        &mut self,
        program: &Path,
        args: &[String],
        env: &[(String, String)],
    ) -> io::Result<()> {
        let path = cpath(program)?;
        let mut strings = vec![path.clone()];
        for a in args {
            strings.push(cstr(a.as_bytes())?);
        }
        let argc = strings.len();
        for (k, v) in env {
            strings.push(cstr(format!("{k}={v}").as_bytes())?);
        }
        let ptrs = |s: &[CString]| -> Vec<*const c_char> {
            s.iter()
                .map(|c| c.as_ptr())
                .chain(std::iter::once(std::ptr::null()))
                .collect()
        };
        let argv = ptrs(&strings[..argc]);
        let envp = ptrs(&strings[argc..]);
        self.push(
            format!("execve {}", program.display()),
            Op::Exec { path, argv, envp },
        );
        // The CStrings' heap buffers do not move when the Vec moves into the plan.
        self.plan.strings = strings;
        Ok(())
    }
}

fn attach(b: &mut Builder, fds: &[RawFd]) {
    for fd in fds {
        b.push("attach to cgroup", Op::AttachCgroup(*fd));
    }
}

/// In the runtime process, after every inherited fd was marked close-on-exec: the connection
/// it keeps across `execve`.
fn runtime_api_connection(b: &mut Builder, to: Option<std::net::SocketAddrV4>) {
    if let Some(addr) = to {
        b.push(
            format!("connect to the Runtime API at {addr}"),
            Op::Connect {
                ip: u32::from(*addr.ip()),
                port: addr.port(),
                fd: super::RUNTIME_API_FD,
            },
        );
    }
}

/// NOFILE 1024 (as Lambda) and no core dumps. Limits can only be lowered here: the hard limit
/// cannot be raised without CAP_SYS_RESOURCE, which some hosts' bounding sets lack.
fn rlimits(b: &mut Builder) {
    let mut cur = libc::rlimit {
        rlim_cur: 0,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: getrlimit fills a properly sized struct; on failure `cur` keeps its defaults.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut cur) };
    b.push(
        "setrlimit NOFILE",
        Op::SetRlimit {
            which: Rlimit::Nofile,
            value: cur.rlim_max.min(1024),
        },
    );
    b.push(
        "setrlimit CORE",
        Op::SetRlimit {
            which: Rlimit::Core,
            value: 0,
        },
    );
}

/// Level 0: a plain process in its own process group with a clean environment. The program
/// path is used as given, except that `/var/task/...` and `/var/runtime/...` are mapped onto the
/// host directories (so the same spec works with and without namespaces).
pub(super) fn plain(inp: Inputs<'_>) -> io::Result<Plan> {
    let mut b = Builder::new();
    attach(&mut b, &inp.attach_fds);
    b.push("setpgid", Op::SetPgid);
    if let Some(fd) = inp.netns_fd {
        b.push(
            "join network namespace",
            Op::SetNs {
                fd,
                nstype: libc::CLONE_NEWNET,
            },
        );
    }
    b.stdio([inp.stdin, inp.stdout, inp.stderr])?;
    b.push("reset signal handlers", Op::ResetSignals);
    rlimits(&mut b);
    b.push("set parent-death signal", Op::DeathSignal(libc::SIGKILL));
    b.push(
        format!("chdir {}", inp.code_dir.display()),
        Op::Chdir(cpath(inp.code_dir)?),
    );
    b.push("mark fds close-on-exec", Op::CloexecFrom(3));
    runtime_api_connection(&mut b, inp.runtime_api_connection);
    b.push("unblock signals", Op::UnblockSignals);
    let program = host_path(inp.program, inp.code_dir, inp.runtime_dir);
    b.exec(&program, inp.args, inp.env)?;
    Ok(b.plan)
}

fn host_path(program: &Path, code_dir: &Path, runtime_dir: Option<&Path>) -> PathBuf {
    if let Ok(rest) = program.strip_prefix("/var/task") {
        return code_dir.join(rest);
    }
    match (program.strip_prefix("/var/runtime"), runtime_dir) {
        (Ok(rest), Some(dir)) => dir.join(rest),
        _ => program.to_path_buf(),
    }
}

/// Levels 1 and 2: the research note's §4 child sequence.
pub(super) fn namespaced(host: &'static Host, inp: Inputs<'_>) -> io::Result<Plan> {
    let rootfs = host
        .rootfs
        .as_ref()
        .ok_or_else(|| io::Error::other("sandbox root files are not prepared"))?;
    let cfg = &host.config;
    let root = &rootfs.staging;
    let r = |p: &str| root.join(p);
    let mut b = Builder::new();

    // 1. Self-attach before anything else, so every later allocation is charged and limited.
    attach(&mut b, &inp.attach_fds);
    b.stdio([inp.stdin, inp.stdout, inp.stderr])?;
    b.push("reset signal handlers", Op::ResetSignals);
    // 3. A cgroup namespace makes the environment's cgroup its `/` (needed for cgroupfs).
    let cgroupfs = inp
        .cgroupfs
        .filter(|_| host.caps.cgroup_namespace && cfg.mount_cgroupfs);
    if cgroupfs.is_some() {
        b.push(
            "unshare cgroup namespace",
            Op::Unshare(libc::CLONE_NEWCGROUP),
        );
    }
    // 4. Join the network namespace that holds this environment's Runtime API listener.
    if let Some(fd) = inp.netns_fd {
        b.push(
            "join network namespace",
            Op::SetNs {
                fd,
                nstype: libc::CLONE_NEWNET,
            },
        );
    }
    // 5. Nothing we mount may propagate back to the host.
    b.mount(
        "make mounts private".into(),
        None,
        Path::new("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    )?;
    // 6. The new root: a small tmpfs, read-only at the end.
    b.mount(
        "mount root tmpfs".into(),
        Some(b"tmpfs"),
        root,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some("size=1m,mode=0755"),
    )?;
    let mut dirs = vec![
        "usr",
        "etc",
        "var",
        "var/task",
        "var/runtime",
        "opt",
        "tmp",
        "proc",
        "dev",
    ];
    match &cgroupfs {
        Some(CgroupFs::V1) => {
            dirs.extend(["sys", "sys/fs", "sys/fs/cgroup", "sys/fs/cgroup/memory"])
        }
        Some(CgroupFs::V2) => dirs.extend(["sys", "sys/fs", "sys/fs/cgroup"]),
        None => {}
    }
    for d in &dirs {
        b.mkdir(&r(d), &format!("/{d}"))?;
    }
    for entry in &rootfs.top {
        match entry {
            TopEntry::Link { name, target } => b.push(
                format!("symlink /{name}"),
                Op::Symlink {
                    target: cpath(target)?,
                    link: cpath(&r(name))?,
                },
            ),
            TopEntry::Bind { name } => {
                b.mkdir(&r(name), &format!("/{name}"))?;
                b.ro_bind(&Path::new("/").join(name), &r(name), &format!("/{name}"))?;
            }
        }
    }
    // 7. /dev: host device nodes bound onto empty files (mknod would need init-ns CAP_MKNOD;
    // the binds must not be nodev), /proc/self/fd symlinks, and a /dev/shm for multiprocessing.
    b.mount(
        "mount /dev".into(),
        Some(b"tmpfs"),
        &r("dev"),
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some("size=64k,mode=0755"),
    )?;
    for dev in &rootfs.devices {
        let target = r("dev").join(dev);
        b.push(format!("create /dev/{dev}"), Op::Touch(cpath(&target)?));
        b.mount(
            format!("bind /dev/{dev}"),
            Some(format!("/dev/{dev}").as_bytes()),
            &target,
            None,
            libc::MS_BIND,
            None,
        )?;
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        b.push(
            format!("symlink /dev/{name}"),
            Op::Symlink {
                target: cstr(target.as_bytes())?,
                link: cpath(&r("dev").join(name))?,
            },
        );
    }
    b.mkdir(&r("dev/shm"), "/dev/shm")?;
    b.mount(
        "mount /dev/shm".into(),
        Some(b"tmpfs"),
        &r("dev/shm"),
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        Some("size=64m,mode=1777"),
    )?;
    // 8. Read-only binds.
    b.ro_bind(Path::new("/usr"), &r("usr"), "/usr")?;
    b.ro_bind(&rootfs.etc_dir, &r("etc"), "/etc")?;
    if let Some(certs) = &rootfs.ssl_certs {
        b.ro_bind(certs, &r("etc/ssl/certs"), "/etc/ssl/certs")?;
    }
    b.ro_bind(inp.code_dir, &r("var/task"), "/var/task")?;
    if let Some(dir) = inp.runtime_dir {
        b.ro_bind(dir, &r("var/runtime"), "/var/runtime")?;
    }
    if let Some(dir) = inp.opt_dir {
        b.ro_bind(dir, &r("opt"), "/opt")?;
    }
    // 9. /tmp (see TmpBacking for why disk is the default).
    match &inp.tmp {
        TmpSource::Dir(dir) => {
            b.mount(
                "bind /tmp".into(),
                Some(dir.as_os_str().as_bytes()),
                &r("tmp"),
                None,
                libc::MS_BIND,
                None,
            )?;
            let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_NOSUID | libc::MS_NODEV;
            b.mount(
                "remount /tmp nosuid".into(),
                None,
                &r("tmp"),
                None,
                flags,
                None,
            )?;
        }
        TmpSource::Detached(fd) => {
            b.push(
                "move the /tmp mount in",
                Op::MoveMount {
                    fd: *fd,
                    target: cstr(r("tmp").as_os_str().as_bytes())?,
                },
            );
        }
        TmpSource::Device(device) => {
            b.mount(
                "mount /tmp".into(),
                Some(device.as_os_str().as_bytes()),
                &r("tmp"),
                Some("ext4"),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOATIME,
                None,
            )?;
        }
        TmpSource::Tmpfs(mb) => {
            let data = format!("size={}m,mode=1777", (*mb).max(1));
            b.mount(
                "mount /tmp".into(),
                Some(b"tmpfs"),
                &r("tmp"),
                Some("tmpfs"),
                libc::MS_NOSUID | libc::MS_NODEV,
                Some(&data),
            )?;
        }
    }
    // 11. A fresh /proc of the new pid namespace; hidepid=2 ("invisible") hides other users.
    b.mount(
        "mount /proc".into(),
        Some(b"proc"),
        &r("proc"),
        Some("proc"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        Some("hidepid=2"),
    )?;
    // 12. The environment's own cgroup, read-only, so runtimes can read their limits.
    let ro = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    match cgroupfs {
        Some(CgroupFs::V1) => b.mount(
            "mount /sys/fs/cgroup/memory".into(),
            Some(b"cgroup"),
            &r("sys/fs/cgroup/memory"),
            Some("cgroup"),
            ro,
            Some("memory"),
        )?,
        Some(CgroupFs::V2) => b.mount(
            "mount /sys/fs/cgroup".into(),
            Some(b"cgroup2"),
            &r("sys/fs/cgroup"),
            Some("cgroup2"),
            ro,
            None,
        )?,
        None => {}
    }
    // 13. Switch to the new root and make it read-only.
    b.push("pivot_root", Op::PivotRoot(cpath(root)?));
    b.mount(
        "remount / read-only".into(),
        None,
        Path::new("/"),
        None,
        libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV,
        None,
    )?;
    // 14.
    b.push(
        "sethostname",
        Op::SetHostname(cstr(cfg.hostname.as_bytes())?),
    );
    rlimits(&mut b);
    // 15. Privilege drop. The bounding set first (needs CAP_SETPCAP), then groups and ids.
    b.push(
        "drop bounding capabilities",
        Op::DropBoundingSet {
            last: host.last_cap,
        },
    );
    b.push("setgroups", Op::ClearGroups);
    b.push(format!("setresgid {}", cfg.gid), Op::SetResGid(cfg.gid));
    b.push(format!("setresuid {}", cfg.uid), Op::SetResUid(cfg.uid));
    b.push("clear capabilities", Op::ClearCaps);
    // 16. PDEATHSIG is cleared by credential changes, so it comes after them (pitfall 3).
    b.push("set no_new_privs", Op::NoNewPrivs);
    b.push("set parent-death signal", Op::DeathSignal(libc::SIGKILL));
    // 17. pid 1 = mini-init, the runtime = pid 2.
    b.push(
        "start the runtime under a mini-init",
        Op::MiniInit(RuntimeStack::new()),
    );
    // 18.
    b.push("chdir /var/task", Op::Chdir(cstr(b"/var/task")?));
    b.push("mark fds close-on-exec", Op::CloexecFrom(3));
    runtime_api_connection(&mut b, inp.runtime_api_connection);
    if let Some(filters) = &host.seccomp {
        b.push("install the seccomp filter", Op::Seccomp(filters.program()));
    }
    b.push("unblock signals", Op::UnblockSignals);
    b.exec(inp.program, inp.args, inp.env)?;
    Ok(b.plan)
}
