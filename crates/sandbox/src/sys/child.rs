//! Code that runs in the cloned child between `clone3` and `execve`, and the mini-init.
//!
//! The parent may be multi-threaded (tokio): another thread may have held the allocator's lock
//! at the moment of the clone, and that lock stays held forever in the child. So nothing here
//! allocates or takes locks (pitfall 14): the parent prepares every path as a `CString` and every
//! pointer array in a [`Plan`]; the child walks the plan's [`Op`]s with raw `libc` calls only.
//! On the first failure it writes `(op index, errno)` to the `O_CLOEXEC` error pipe and exits
//! 127; the parent maps the index back to a label such as `mount /var/task`. EOF on the pipe
//! without a record means `execve` succeeded.
//!
//! glibc wrappers are fine where they are plain syscalls (mount, chdir, prctl, ...), but not
//! where glibc coordinates threads: the set*id calls go through raw `syscall` (see
//! `ClearGroups`), because glibc's bookkeeping still lists the supervisor's threads.

use std::ffi::{c_char, c_int, CString};
use std::os::fd::{OwnedFd, RawFd};

/// `CLOSE_RANGE_CLOEXEC` (linux/close_range.h).
const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
/// `_LINUX_CAPABILITY_VERSION_3`.
const CAP_VERSION_3: u32 = 0x2008_0522;
/// `MOVE_MOUNT_F_EMPTY_PATH` (linux/mount.h): the source is the fd itself.
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x0000_0004;
/// `SECCOMP_SET_MODE_FILTER`.
const SECCOMP_SET_MODE_FILTER: libc::c_ulong = 1;

/// Which resource limit to set (the libc type of the resource argument differs by libc).
#[derive(Debug, Clone, Copy)]
pub(super) enum Rlimit {
    Nofile,
    Core,
}

/// One setup step of the child.
#[derive(Debug)]
pub(super) enum Op {
    /// Write `"0"` to a pre-opened `cgroup.procs`: moves the writer itself into the cgroup.
    /// Skipped when the child was created directly in its cgroup (`CLONE_INTO_CGROUP`).
    AttachCgroup(RawFd),
    Dup2 {
        from: RawFd,
        to: RawFd,
    },
    /// Reset every signal disposition to the default (handlers inherited from the supervisor
    /// must not run here, and ignored signals such as SIGPIPE must not leak into the runtime).
    ResetSignals,
    SetPgid,
    Unshare(c_int),
    SetNs {
        fd: RawFd,
        nstype: c_int,
    },
    Mount {
        src: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: libc::c_ulong,
        data: Option<CString>,
    },
    /// `move_mount` a detached mount (an `fsmount` fd) onto `target`.
    MoveMount {
        fd: RawFd,
        target: CString,
    },
    Mkdir(CString),
    Symlink {
        target: CString,
        link: CString,
    },
    /// Create an empty file (a mount point for a device node bind).
    Touch(CString),
    /// `chdir(root)`, `pivot_root(".", ".")`, detach the old root, `chdir("/")`.
    PivotRoot(CString),
    SetHostname(CString),
    SetRlimit {
        which: Rlimit,
        value: u64,
    },
    /// Drop capabilities `0..=last` from the bounding set (EINVAL for unknown caps is fine).
    DropBoundingSet {
        last: c_int,
    },
    ClearGroups,
    SetResGid(libc::gid_t),
    SetResUid(libc::uid_t),
    /// Clear effective, permitted, inheritable and ambient capabilities.
    ClearCaps,
    NoNewPrivs,
    DeathSignal(c_int),
    /// Start the runtime: the caller becomes the namespace's pid 1 (reaps zombies, forwards
    /// signals, exits with the runtime's status); the new process goes on with the remaining
    /// ops. It shares the caller's memory until its `execve` (`CLONE_VM | CLONE_VFORK`, on its
    /// own stack): copying the supervisor's whole address space for a process that is about to
    /// exec cost ~0.7 ms of every cold start.
    MiniInit(RuntimeStack),
    Chdir(CString),
    /// Mark every fd from this number up close-on-exec, so nothing the supervisor opened without
    /// `O_CLOEXEC` leaks into the runtime.
    CloexecFrom(libc::c_uint),
    /// Open a TCP connection to `ip:port` (host byte order) as fd `fd`, kept across `execve`.
    Connect {
        ip: u32,
        port: u16,
        fd: RawFd,
    },
    /// Install a seccomp filter (points into the process-wide filters, which live forever).
    Seccomp(&'static [libc::sock_filter]),
    UnblockSignals,
    Exec {
        path: CString,
        argv: Vec<*const c_char>,
        envp: Vec<*const c_char>,
    },
}

/// Memory the runtime process runs on between its clone and its `execve` (the ops after
/// [`Op::MiniInit`] need little; this is generous).
#[derive(Debug)]
pub(super) struct RuntimeStack {
    base: *mut u8,
    len: usize,
}

impl RuntimeStack {
    const SIZE: usize = 256 * 1024;

    pub(super) fn new() -> Self {
        let memory = vec![0u8; Self::SIZE].into_boxed_slice();
        let len = memory.len();
        Self {
            base: Box::into_raw(memory).cast(),
            len,
        }
    }

    /// The initial stack pointer: the top, 16-byte aligned (the stack grows down).
    fn top(&self) -> *mut libc::c_void {
        ((self.base as usize + self.len) & !15) as *mut libc::c_void
    }
}

impl Drop for RuntimeStack {
    fn drop(&mut self) {
        // SAFETY: `base` and `len` came from `Box::into_raw` of a boxed slice in `new`.
        drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(self.base, self.len)) });
    }
}

/// Everything the child needs, prepared by the parent.
#[derive(Debug)]
pub(super) struct Plan {
    pub ops: Vec<Op>,
    /// Human-readable name of each op, for error messages (parent side only).
    pub labels: Vec<String>,
    /// Strings that `Exec`'s pointer arrays point into.
    pub strings: Vec<CString>,
    /// Fds the ops refer to by number; kept open until the clone has happened.
    pub fds: Vec<OwnedFd>,
}

// SAFETY: the raw pointers in `Op::Exec` point into heap buffers of `CString`s owned by the same
// `Plan` (`strings`); moving the `Plan` to another thread moves ownership of those buffers along
// without moving them, and nothing mutates them.
unsafe impl Send for Plan {}

fn errno() -> c_int {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}

/// Turn a libc-style return value into `Err(errno)` when it is negative.
fn check<T: Into<i64>>(ret: T) -> Result<(), c_int> {
    if ret.into() < 0 {
        Err(errno())
    } else {
        Ok(())
    }
}

/// Run the plan in the freshly cloned child. Never returns.
///
/// # Safety
/// Must only be called in a child created by `clone3`/`clone` without `CLONE_VM`, right after
/// the clone, with `err_fd` the write end of the error pipe and `status_fd` the write end of the
/// status pipe (or -1).
pub(super) unsafe fn run(plan: &Plan, err_fd: RawFd, status_fd: RawFd, skip_attach: bool) -> ! {
    // SAFETY: caller contract.
    unsafe { run_from(plan, 0, err_fd, status_fd, skip_attach) }
}

/// Run the ops from `from` on. Never returns.
///
/// # Safety
/// As [`run`].
unsafe fn run_from(
    plan: &Plan,
    from: usize,
    err_fd: RawFd,
    status_fd: RawFd,
    skip_attach: bool,
) -> ! {
    for (index, op) in plan.ops.iter().enumerate().skip(from) {
        if skip_attach && matches!(op, Op::AttachCgroup(_)) {
            continue;
        }
        if let Op::MiniInit(stack) = op {
            // SAFETY: caller contract; `stack` belongs to `plan`, which outlives both processes'
            // use of it.
            unsafe { start_runtime(plan, index, stack, err_fd, status_fd) }
        }
        // SAFETY: we are in the child (caller contract); `run_op` only makes raw syscalls on
        // pointers owned by `plan`.
        if let Err(e) = unsafe { run_op(op) } {
            fail(index, e, err_fd);
        }
    }
    // The plan always ends with `Exec`, which only returns on failure (handled above).
    // SAFETY: `_exit` is always safe to call.
    unsafe { libc::_exit(127) }
}

/// Report that op `index` failed with `errno`, and exit.
fn fail(index: usize, errno: c_int, err_fd: RawFd) -> ! {
    let mut record = [0u8; 8];
    record[..4].copy_from_slice(&(index as u32).to_ne_bytes());
    record[4..].copy_from_slice(&errno.to_ne_bytes());
    // SAFETY: writing a stack buffer to an fd; `_exit` never returns.
    unsafe {
        libc::write(err_fd, record.as_ptr().cast(), record.len());
        libc::_exit(127)
    }
}

/// Where the runtime process goes on in the plan.
struct RuntimeStart<'a> {
    plan: &'a Plan,
    from: usize,
    err_fd: RawFd,
    status_fd: RawFd,
}

/// Start the runtime process (ops after `index`, on `stack`) and become its mini-init.
///
/// # Safety
/// As [`run`].
unsafe fn start_runtime(
    plan: &Plan,
    index: usize,
    stack: &RuntimeStack,
    err_fd: RawFd,
    status_fd: RawFd,
) -> ! {
    let start = RuntimeStart {
        plan,
        from: index + 1,
        err_fd,
        status_fd,
    };
    // SAFETY: `CLONE_VFORK` suspends this process until the new one has exec'd or exited, so
    // `start` (on this stack) stays valid and untouched while it is read, and nothing else runs
    // in the shared memory meanwhile. The new process runs only on `stack`, which no one else
    // uses. Without `CLONE_FILES`/`CLONE_SIGHAND` it gets its own fd table and signal handlers.
    let pid = unsafe {
        libc::clone(
            runtime_entry,
            stack.top(),
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (&raw const start).cast_mut().cast(),
        )
    };
    if pid < 0 {
        fail(index, errno(), err_fd);
    }
    // SAFETY: we are the namespace's first process; the runtime is `pid`.
    unsafe { mini_init(pid, err_fd, status_fd) }
}

/// The runtime process's first function (see [`start_runtime`]).
extern "C" fn runtime_entry(arg: *mut libc::c_void) -> c_int {
    // SAFETY: `arg` is the `RuntimeStart` of the suspended parent (see `start_runtime`).
    let start = unsafe { &*arg.cast::<RuntimeStart<'_>>() };
    // SAFETY: a child of the namespace's init; the remaining ops end in `execve` or `_exit`.
    unsafe { run_from(start.plan, start.from, start.err_fd, start.status_fd, false) }
}

fn opt_ptr(s: &Option<CString>) -> *const c_char {
    s.as_ref().map_or(std::ptr::null(), |s| s.as_ptr())
}

/// Execute one op.
///
/// # Safety
/// Child-only (see [`run`]).
unsafe fn run_op(op: &Op) -> Result<(), c_int> {
    // SAFETY (whole body): each call is a raw syscall wrapper whose pointer arguments are
    // NUL-terminated strings or arrays owned by the plan, or stack buffers; no call allocates.
    unsafe {
        match op {
            Op::AttachCgroup(fd) => check(libc::write(*fd, b"0".as_ptr().cast(), 1) as i64),
            Op::Dup2 { from, to } => check(libc::dup2(*from, *to)),
            Op::ResetSignals => {
                for sig in 1..=libc::SIGRTMAX() {
                    if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                        // glibc refuses its two internal signals with EINVAL; that is fine.
                        libc::signal(sig, libc::SIG_DFL);
                    }
                }
                Ok(())
            }
            Op::SetPgid => check(libc::setpgid(0, 0)),
            Op::Unshare(flags) => check(libc::unshare(*flags)),
            Op::SetNs { fd, nstype } => check(libc::setns(*fd, *nstype)),
            Op::Mount {
                src,
                target,
                fstype,
                flags,
                data,
            } => check(libc::mount(
                opt_ptr(src),
                target.as_ptr(),
                opt_ptr(fstype),
                *flags,
                opt_ptr(data).cast(),
            )),
            Op::MoveMount { fd, target } => check(libc::syscall(
                libc::SYS_move_mount,
                *fd,
                c"".as_ptr(),
                libc::AT_FDCWD,
                target.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            )),
            Op::Mkdir(path) => match check(libc::mkdir(path.as_ptr(), 0o755)) {
                Err(libc::EEXIST) => Ok(()),
                r => r,
            },
            Op::Symlink { target, link } => check(libc::symlink(target.as_ptr(), link.as_ptr())),
            Op::Touch(path) => {
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                    0o644,
                );
                check(fd)?;
                libc::close(fd);
                Ok(())
            }
            Op::PivotRoot(root) => {
                check(libc::chdir(root.as_ptr()))?;
                let dot = c".".as_ptr();
                check(libc::syscall(libc::SYS_pivot_root, dot, dot))?;
                check(libc::umount2(dot, libc::MNT_DETACH))?;
                check(libc::chdir(c"/".as_ptr()))
            }
            Op::SetHostname(name) => check(libc::sethostname(name.as_ptr(), name.as_bytes().len())),
            Op::SetRlimit { which, value } => {
                let lim = libc::rlimit {
                    rlim_cur: *value,
                    rlim_max: *value,
                };
                let res = match which {
                    Rlimit::Nofile => libc::RLIMIT_NOFILE,
                    Rlimit::Core => libc::RLIMIT_CORE,
                };
                check(libc::setrlimit(res, &lim))
            }
            Op::DropBoundingSet { last } => {
                for cap in 0..=*last {
                    if libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) < 0 {
                        let e = errno();
                        if e != libc::EINVAL {
                            return Err(e);
                        }
                    }
                }
                Ok(())
            }
            // Raw syscalls, not the glibc wrappers: those broadcast the change to every thread in
            // glibc's thread list (SIGSETXID), a list copied from the supervisor that names
            // threads this child does not have, and hang if one was mid-creation at clone time.
            // The raw calls change the calling thread only, which here is the whole process.
            Op::ClearGroups => check(libc::syscall(
                libc::SYS_setgroups,
                0,
                std::ptr::null::<libc::gid_t>(),
            )),
            Op::SetResGid(g) => check(libc::syscall(libc::SYS_setresgid, *g, *g, *g)),
            Op::SetResUid(u) => check(libc::syscall(libc::SYS_setresuid, *u, *u, *u)),
            Op::ClearCaps => {
                // Ambient caps are cleared by the uid change already; EINVAL on old kernels.
                libc::prctl(
                    libc::PR_CAP_AMBIENT,
                    libc::PR_CAP_AMBIENT_CLEAR_ALL,
                    0,
                    0,
                    0,
                );
                #[repr(C)]
                struct Header {
                    version: u32,
                    pid: c_int,
                }
                #[repr(C)]
                struct Data {
                    effective: u32,
                    permitted: u32,
                    inheritable: u32,
                }
                let header = Header {
                    version: CAP_VERSION_3,
                    pid: 0,
                };
                let data = [
                    Data {
                        effective: 0,
                        permitted: 0,
                        inheritable: 0,
                    },
                    Data {
                        effective: 0,
                        permitted: 0,
                        inheritable: 0,
                    },
                ];
                check(libc::syscall(libc::SYS_capset, &header, data.as_ptr()))
            }
            Op::NoNewPrivs => check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)),
            Op::DeathSignal(sig) => check(libc::prctl(
                libc::PR_SET_PDEATHSIG,
                *sig as libc::c_ulong,
                0,
                0,
                0,
            )),
            // Handled by `run_from`, which never gets here with it.
            Op::MiniInit(_) => Ok(()),
            Op::Chdir(path) => check(libc::chdir(path.as_ptr())),
            Op::CloexecFrom(first) => {
                let r = libc::syscall(
                    libc::SYS_close_range,
                    *first,
                    libc::c_uint::MAX,
                    CLOSE_RANGE_CLOEXEC,
                );
                if r < 0 {
                    // Kernels before 5.11: mark a generous range one by one.
                    for fd in *first as c_int..4096 {
                        libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC);
                    }
                }
                Ok(())
            }
            Op::Connect { ip, port, fd } => {
                let addr = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: port.to_be(),
                    sin_addr: libc::in_addr { s_addr: ip.to_be() },
                    sin_zero: [0; 8],
                };
                let s = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
                if s < 0 {
                    return Err(errno());
                }
                // The runtime writes whole requests; Nagle would only delay the last segment.
                let one: c_int = 1;
                libc::setsockopt(
                    s,
                    libc::IPPROTO_TCP,
                    libc::TCP_NODELAY,
                    (&raw const one).cast(),
                    std::mem::size_of::<c_int>() as libc::socklen_t,
                );
                let connected = libc::connect(
                    s,
                    (&raw const addr).cast(),
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                );
                // dup2 leaves the new fd without close-on-exec; the original goes at exec.
                let moved = if s == *fd {
                    libc::fcntl(s, libc::F_SETFD, 0)
                } else {
                    libc::dup2(s, *fd)
                };
                let result = check(connected).and_then(|()| check(moved));
                if s != *fd {
                    libc::close(s);
                }
                result
            }
            Op::Seccomp(filter) => {
                let prog = libc::sock_fprog {
                    len: filter.len() as u16,
                    filter: filter.as_ptr().cast_mut(),
                };
                check(libc::syscall(
                    libc::SYS_seccomp,
                    SECCOMP_SET_MODE_FILTER,
                    0,
                    &prog,
                ))
            }
            Op::UnblockSignals => {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                check(libc::pthread_sigmask(
                    libc::SIG_SETMASK,
                    &set,
                    std::ptr::null_mut(),
                ))
            }
            Op::Exec { path, argv, envp } => {
                libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr());
                Err(errno())
            }
        }
    }
}

/// Signals the mini-init passes on to the runtime.
const FORWARDED: [c_int; 6] = [
    libc::SIGTERM,
    libc::SIGINT,
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
];

/// Give back the mini-init's copy of the supervisor's memory: its heap, its other threads'
/// stacks, the writable data of its binary and libraries. The mini-init is a fork of the
/// supervisor that from here on only runs this file's loop on its own stack, so it needs none
/// of it. Without this each idle environment kept ~0.7-1.2 MB of the supervisor's pages alive
/// (its PSS grew with the supervisor's heap), and every page the supervisor wrote afterwards
/// was copied for it first. `MADV_DONTNEED` keeps the mappings (reads would see zeroes or the
/// file's contents); only the mapping that holds the current stack, with this thread's TLS at
/// its top, is kept. Best effort: any failure leaves the memory as it was.
///
/// # Safety
/// Child-only, in the mini-init after the runtime's `execve` (the runtime shares this memory
/// until then); nothing may touch the heap or another thread's data afterwards.
unsafe fn release_inherited_memory() {
    let marker = 0u8;
    let sp = (&raw const marker) as usize;
    // SAFETY (whole body): raw syscalls on stack buffers; `madvise` only on ranges the kernel
    // listed as this process's private writable mappings, never the current stack's.
    unsafe {
        let fd = libc::open(
            c"/proc/self/maps".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return;
        }
        let mut chunk = [0u8; 4096];
        // Only a line's start is needed ("start-end perms ..."); longer lines are cut.
        let mut line = [0u8; 128];
        let mut len = 0;
        loop {
            let n = libc::read(fd, chunk.as_mut_ptr().cast(), chunk.len());
            if n <= 0 {
                break;
            }
            for &byte in &chunk[..n as usize] {
                if byte == b'\n' {
                    if let Some((start, end)) = private_writable_range(&line[..len]) {
                        if !(start..end).contains(&sp) {
                            libc::madvise(
                                start as *mut libc::c_void,
                                end - start,
                                libc::MADV_DONTNEED,
                            );
                        }
                    }
                    len = 0;
                } else if len < line.len() {
                    line[len] = byte;
                    len += 1;
                }
            }
        }
        libc::close(fd);
    }
}

/// The address range of a `/proc/self/maps` line whose permissions are `?w?p`.
fn private_writable_range(line: &[u8]) -> Option<(usize, usize)> {
    fn hex(digits: &[u8]) -> Option<usize> {
        if digits.is_empty() || digits.len() > 16 {
            return None;
        }
        digits.iter().try_fold(0usize, |acc, d| {
            let v = (*d as char).to_digit(16)?;
            Some(acc << 4 | v as usize)
        })
    }
    let mut fields = line.split(|b| *b == b' ');
    let range = fields.next()?;
    let perms = fields.next()?;
    let dash = range.iter().position(|b| *b == b'-')?;
    let (start, end) = (hex(&range[..dash])?, hex(&range[dash + 1..])?);
    (perms.len() == 4 && perms[1] == b'w' && perms[3] == b'p' && start < end)
        .then_some((start, end))
}

/// Pid 1 of the environment's pid namespace (pitfall 4): the runtime as pid 1 would leave
/// orphaned grandchildren as zombies and would ignore SIGTERM. Loops on `sigwaitinfo` (all
/// signals are blocked since the clone), reaps every child, forwards termination signals to the
/// runtime, and when the runtime exits writes its raw wait status to `status_fd` (so the
/// supervisor sees the runtime's real status, e.g. "killed by SIGKILL") and exits with the
/// shell-style equivalent. When pid 1 exits the kernel kills the rest of the namespace.
///
/// # Safety
/// Child-only (see [`run`]).
unsafe fn mini_init(runtime: libc::pid_t, err_fd: RawFd, status_fd: RawFd) -> ! {
    // SAFETY: raw syscalls on stack data; no allocation.
    unsafe {
        // Hold no fd the runtime's exec or exit should close: the error pipe (its EOF tells the
        // supervisor that exec succeeded), stdio, the supervisor's leftovers.
        libc::close(err_fd);
        if status_fd > 0 {
            libc::syscall(libc::SYS_close_range, 0, status_fd as libc::c_uint - 1, 0);
        }
        libc::syscall(
            libc::SYS_close_range,
            status_fd as libc::c_uint + 1,
            libc::c_uint::MAX,
            0,
        );

        release_inherited_memory();

        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        for sig in FORWARDED {
            libc::sigaddset(&mut set, sig);
        }
        loop {
            let sig = libc::sigwaitinfo(&set, std::ptr::null_mut());
            if sig < 0 {
                continue;
            }
            if sig != libc::SIGCHLD {
                libc::kill(runtime, sig);
                continue;
            }
            loop {
                let mut status: c_int = 0;
                let pid = libc::waitpid(-1, &mut status, libc::WNOHANG);
                if pid <= 0 {
                    break;
                }
                if pid == runtime {
                    if status_fd >= 0 {
                        libc::write(status_fd, (&raw const status).cast(), 4);
                    }
                    let code = if libc::WIFEXITED(status) {
                        libc::WEXITSTATUS(status)
                    } else {
                        128 + libc::WTERMSIG(status)
                    };
                    libc::_exit(code);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::private_writable_range;

    #[test]
    fn maps_lines_yield_their_private_writable_ranges() {
        let heap =
            b"55d0c0a00000-55d0c0a21000 rw-p 00000000 00:00 0                          [heap]";
        assert_eq!(
            private_writable_range(heap),
            Some((0x55d0_c0a0_0000, 0x55d0_c0a2_1000))
        );
        let split = b"7f77 10c87000-7f7710ddd000 rw-p 00026000 fe:00 326279 /usr/lib/libc.so.6";
        assert_eq!(private_writable_range(split), None);
        let code = b"7f7710c87000-7f7710ddd000 r-xp 00026000 fe:00 326279 /usr/lib/libc.so.6";
        assert_eq!(private_writable_range(code), None);
        let shared = b"7f7710c87000-7f7710ddd000 rw-s 00000000 00:05 1 /memfd:x (deleted)";
        assert_eq!(private_writable_range(shared), None);
        // Cut lines (only a prefix is kept) still parse; garbage does not.
        assert_eq!(
            private_writable_range(b"1000-2000 rw-p"),
            Some((0x1000, 0x2000))
        );
        assert_eq!(private_writable_range(b"zz-2000 rw-p"), None);
        assert_eq!(private_writable_range(b""), None);
    }
}
