//! The spawn path: the dedicated spawner thread, `clone3`, and the error-pipe protocol.
//!
//! Why a dedicated thread (pitfall 3): `PR_SET_PDEATHSIG` fires when the *thread* that created
//! the child exits, not the process. Tokio's blocking-pool threads exit when idle, which would
//! SIGKILL every environment they had started. So every clone happens on one thread that lives
//! as long as the process; callers hand it a job over a channel and block on the reply. The
//! spawner thread blocks all signals, so children start with every signal blocked and none of
//! the supervisor's handlers can run in them before they reset their dispositions.
//!
//! Only the clone itself runs on the spawner; preparing the plan and waiting for the error
//! pipe's EOF happen on the calling thread, so slow setups do not serialize.

use std::cell::Cell;
use std::ffi::c_int;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use super::cgroup::{CgroupBackend, Limits};
use super::plan::{self, fd_above, Inputs, TmpSource};
use super::probe::Host;
use super::process::{Resources, SandboxedProcess};
use super::seccomp::Filters;
use super::{child, CpuPolicy, Isolation, SpawnSpec, TmpBacking};

type Job = Box<dyn FnOnce() + Send>;

static SPAWNER: OnceLock<mpsc::Sender<Job>> = OnceLock::new();

thread_local! {
    static ON_SPAWNER: Cell<bool> = const { Cell::new(false) };
}

/// Run `f` on the spawner thread and return its result.
fn on_spawner<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> io::Result<R> {
    if ON_SPAWNER.with(Cell::get) {
        return Ok(f());
    }
    let tx = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let started = std::thread::Builder::new()
            .name("nimbus-spawner".into())
            .spawn(move || {
                ON_SPAWNER.with(|c| c.set(true));
                // SAFETY: a zeroed sigset filled by sigfillset is valid; blocking signals in this
                // thread only affects which thread receives process-directed signals.
                unsafe {
                    let mut all: libc::sigset_t = std::mem::zeroed();
                    libc::sigfillset(&mut all);
                    libc::pthread_sigmask(libc::SIG_BLOCK, &all, std::ptr::null_mut());
                }
                for job in rx {
                    job();
                }
            });
        if let Err(e) = started {
            // The receiver is gone, so every send below fails with a clear error.
            tracing::error!(error = %e, "cannot start the sandbox spawner thread");
        }
        tx
    });
    let (reply_tx, reply_rx) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        if let Ok(r) = catch_unwind(AssertUnwindSafe(f)) {
            let _ = reply_tx.send(r);
        }
    });
    tx.send(job)
        .map_err(|_| io::Error::other("the sandbox spawner thread is not running"))?;
    reply_rx
        .recv()
        .map_err(|_| io::Error::other("a job on the sandbox spawner thread panicked"))
}

/// `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_PIDFD: u64 = 0x1000;
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// Fork-like `clone3` (no new stack): returns the child's pid and pidfd in the parent; in the
/// child runs `child`, which must not return (it is followed by `_exit(127)` regardless).
///
/// # Safety
/// `child` runs in a copy of this process with only the calling thread; it must follow the
/// rules of [`child::run`] (no allocation, no locks).
unsafe fn clone_process(
    flags: u64,
    cgroup_fd: Option<RawFd>,
    child: impl FnOnce(),
) -> io::Result<(libc::pid_t, Option<OwnedFd>)> {
    let mut pidfd: c_int = -1;
    let mut args = CloneArgs {
        flags: flags | CLONE_PIDFD,
        pidfd: (&raw mut pidfd) as u64,
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(fd) = cgroup_fd {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd as u64;
    }
    // SAFETY: clone3 with a valid, fully initialised clone_args of the size we pass; without a
    // stack it behaves like fork. The child only runs `child` and `_exit`s.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &raw mut args,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    let (ret, pidfd) = if ret < 0
        && io::Error::last_os_error().raw_os_error() == Some(libc::ENOSYS)
        && cgroup_fd.is_none()
    {
        // Kernels before 5.3: legacy clone without a pidfd.
        // SAFETY: as above; the legacy argument order does not matter with null pointers.
        (
            unsafe { libc::syscall(libc::SYS_clone, flags | libc::SIGCHLD as u64, 0, 0, 0, 0) },
            -1,
        )
    } else {
        (ret, pidfd)
    };
    match ret {
        0 => {
            child();
            // SAFETY: `_exit` is always safe.
            unsafe { libc::_exit(127) }
        }
        r if r < 0 => Err(io::Error::last_os_error()),
        // SAFETY: a pidfd returned by clone3 is a new fd owned by us.
        pid => Ok((
            pid as libc::pid_t,
            (pidfd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(pidfd) }),
        )),
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: pipe2 fills a two-element array with new fds that we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both fds are fresh and owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Set once a `CLONE_INTO_CGROUP` clone was refused, so later spawns go straight to
/// self-attach.
pub(super) static INTO_CGROUP_BROKEN: AtomicBool = AtomicBool::new(false);
static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Start `spec` under `isolation`, limited by a cgroup of `cgroups` when given.
pub(super) fn spawn(
    host: &'static Host,
    spec: SpawnSpec,
    isolation: Isolation,
    cgroups: Option<&dyn CgroupBackend>,
) -> io::Result<SandboxedProcess> {
    let namespaced = isolation == Isolation::Namespaces && host.caps.namespaces;
    let name = format!(
        "{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    );
    let limits = Limits::for_memory(
        spec.memory_mb,
        spec.cpu == CpuPolicy::Quota,
        host.config.pids_max,
    );
    // Owned by `res` from here on: dropped on any error below, which removes them again.
    let mut res = Resources::default();
    if let Some(backend) = cgroups {
        res.cgroup = Some(backend.create(&name, &limits)?);
    }
    let image = match &host.tmp_images {
        Some(images) if namespaced => match images.attach(spec.tmp_mb) {
            Ok(image) => Some(image),
            Err(e) => {
                tracing::warn!(error = %e, "no /tmp image for this environment; its /tmp size is not enforced");
                None
            }
        },
        _ => None,
    };
    let tmp = match (&host.rootfs, host.config.tmp, image) {
        (_, _, Some(image)) => {
            let source = match &image.mount {
                Some(mount) => TmpSource::Detached(mount.as_raw_fd()),
                None => TmpSource::Device(image.device.clone()),
            };
            // Owns the device and the detached mount until the environment ends.
            res.loop_tmp = Some(image);
            source
        }
        (Some(rootfs), TmpBacking::Disk, None) if namespaced => {
            let dir = rootfs.create_tmp(&name, host.config.uid, host.config.gid)?;
            res.tmp_dir = Some(dir.clone());
            TmpSource::Dir(dir)
        }
        _ => TmpSource::Tmpfs(spec.tmp_mb),
    };
    let stdin = File::options().read(true).write(true).open("/dev/null")?;
    let inputs = Inputs {
        program: &spec.program,
        args: &spec.args,
        env: &spec.env,
        code_dir: &spec.code_dir,
        runtime_dir: spec.runtime_dir.as_deref(),
        opt_dir: spec.opt_dir.as_deref(),
        tmp,
        attach_fds: res
            .cgroup
            .as_ref()
            .map(|c| c.attach_fds())
            .unwrap_or_default(),
        cgroupfs: res.cgroup.as_ref().and_then(|c| c.cgroupfs()),
        netns_fd: spec.netns.as_ref().map(|n| n.fd.as_raw_fd()),
        runtime_api_connection: spec.runtime_api_connection,
        stdin: stdin.into(),
        stdout: spec.stdout,
        stderr: spec.stderr,
    };
    let mut plan = if namespaced {
        plan::namespaced(host, inputs)?
    } else {
        plan::plain(inputs)?
    };
    let labels = std::mem::take(&mut plan.labels);

    let (err_r, err_w) = pipe()?;
    // The runtime's last ops must not replace the error pipe with its Runtime API connection.
    let err_w = fd_above(err_w, super::RUNTIME_API_FD)?;
    let (status_r, status_w) = if namespaced {
        let (r, w) = pipe()?;
        // SAFETY: setting O_NONBLOCK on our own fd.
        unsafe { libc::fcntl(r.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) };
        (Some(r), Some(fd_above(w, super::RUNTIME_API_FD)?))
    } else {
        (None, None)
    };
    let flags = if namespaced {
        (libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS) as u64
    } else {
        0
    };
    let into = res
        .cgroup
        .as_ref()
        .and_then(|c| c.clone_into_fd())
        .filter(|_| !INTO_CGROUP_BROKEN.load(Ordering::Relaxed));

    let cloned = on_spawner(move || {
        let (ew, sw) = (
            err_w.as_raw_fd(),
            status_w.as_ref().map_or(-1, |f| f.as_raw_fd()),
        );
        // SAFETY: the child closure only calls `child::run`, which follows the no-allocation
        // rules; all fds it uses are open (owned by `plan`, `err_w`, `status_w`, or by the
        // cgroup and NetNs that the blocked caller keeps alive).
        let mut r = into.map(|fd| unsafe {
            clone_process(flags, Some(fd), || child::run(&plan, ew, sw, true))
        });
        if let Some(Err(e)) = &r {
            tracing::debug!(error = %e, "clone3(CLONE_INTO_CGROUP) refused; falling back to self-attach");
            INTO_CGROUP_BROKEN.store(true, Ordering::Relaxed);
            r = None;
        }
        // SAFETY: as above.
        let r = r.unwrap_or_else(|| unsafe {
            clone_process(flags, None, || child::run(&plan, ew, sw, false))
        });
        // Close our copies of the write ends now, before any later clone could inherit them.
        drop((plan, err_w, status_w));
        r
    })?;
    let (pid, pidfd) = cloned.map_err(|e| io::Error::new(e.kind(), format!("clone3: {e}")))?;
    if let Some(cg) = res.cgroup.as_mut() {
        cg.release_attach_fds();
    }
    let proc = SandboxedProcess::new(pid, pidfd, status_r, namespaced, res, spec.netns);

    // EOF without a record means execve succeeded; a record is (op index, errno).
    let record = match read_error_pipe(err_r, SETUP_DEADLINE) {
        Ok(r) => r,
        Err(e) => {
            drop(proc); // kills, reaps and cleans up
            return Err(e);
        }
    };
    if record.len() >= 8 {
        let index = u32::from_ne_bytes([record[0], record[1], record[2], record[3]]) as usize;
        let errno = i32::from_ne_bytes([record[4], record[5], record[6], record[7]]);
        let os = io::Error::from_raw_os_error(errno);
        let step = labels.get(index).map_or("sandbox setup", String::as_str);
        drop(proc); // kills, reaps and cleans up
        return Err(io::Error::new(os.kind(), format!("{step}: {os}")));
    }
    Ok(proc)
}

/// How long a child may take from clone to execve before it is killed. Setup normally takes
/// about a millisecond; this only guards against a child that hangs (it must never block the
/// caller forever).
const SETUP_DEADLINE: Duration = Duration::from_secs(10);

/// Read the error pipe until EOF (exec succeeded) or a record, within `deadline`.
fn read_error_pipe(pipe: OwnedFd, deadline: Duration) -> io::Result<Vec<u8>> {
    let start = Instant::now();
    let mut file = File::from(pipe);
    let mut record = Vec::with_capacity(8);
    loop {
        let left = deadline.saturating_sub(start.elapsed());
        let mut pfd = libc::pollfd {
            fd: file.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(i32::MAX as u128) as c_int) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("sandbox setup did not reach execve within {deadline:?}"),
            ));
        }
        let mut buf = [0u8; 8];
        match file.read(&mut buf)? {
            0 => return Ok(record),
            k => record.extend_from_slice(&buf[..k]),
        }
        if record.len() >= 8 {
            return Ok(record);
        }
    }
}

/// Result of the namespace probe.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct NsProbe {
    pub namespaces: bool,
    pub cgroup_namespace: bool,
    pub seccomp: bool,
    pub pidfd: bool,
}

/// Clone a throw-away child into new mount/pid/ipc/uts namespaces that makes its mounts
/// private, creates a cgroup namespace and installs the seccomp filter; its exit code says
/// which of these worked.
pub(super) fn probe_namespaces(filters: Option<&Filters>) -> NsProbe {
    let program: Option<Vec<libc::sock_filter>> = filters.map(|f| f.program().to_vec());
    let flags =
        (libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC | libc::CLONE_NEWUTS) as u64;
    let result = on_spawner(move || {
        // SAFETY: the child only makes raw syscalls on data prepared before the clone.
        unsafe {
            clone_process(flags, None, || {
                let mut code = 0;
                if libc::mount(
                    std::ptr::null(),
                    c"/".as_ptr(),
                    std::ptr::null(),
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
                {
                    libc::_exit(1);
                }
                if libc::unshare(libc::CLONE_NEWCGROUP) != 0 {
                    code |= 2;
                }
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
                if let Some(p) = &program {
                    let prog = libc::sock_fprog {
                        len: p.len() as u16,
                        filter: p.as_ptr().cast_mut(),
                    };
                    if libc::syscall(libc::SYS_seccomp, 1 as libc::c_ulong, 0, &prog) != 0 {
                        code |= 4;
                    }
                }
                libc::_exit(code);
            })
        }
    });
    let (pid, pidfd) = match result {
        Ok(Ok(r)) => r,
        Ok(Err(e)) | Err(e) => {
            tracing::debug!(error = %e, "namespaces unavailable");
            return NsProbe::default();
        }
    };
    let mut status = 0;
    // SAFETY: waiting for our own child.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0
        && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted
    {}
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        1
    };
    NsProbe {
        namespaces: code & 1 == 0,
        cgroup_namespace: code & 1 == 0 && code & 2 == 0,
        seccomp: code & 1 == 0 && code & 4 == 0 && filters.is_some(),
        pidfd: pidfd.is_some(),
    }
}
