//! The seccomp deny-list installed right before `execve` (research note §4, pitfall 13).
//!
//! Default allow; EPERM for the syscalls a Lambda function has no business making (mounts,
//! namespaces, modules, kexec, bpf, perf, userfaultfd, keyrings, ptrace, io_uring, clock
//! setting, odd personalities), and for `clone` whenever a `CLONE_NEW*` bit is set. `clone3`
//! answers ENOSYS: its flags live in memory BPF cannot inspect, and ENOSYS makes glibc fall back
//! to `clone`, whose flags the first filter checks. On x86_64 a third, hand-written filter
//! refuses the x32 ABI, whose syscall numbers would otherwise bypass a number-based list.
//!
//! Many of these calls already fail for an unprivileged user without capabilities; the filter
//! is defence in depth against kernel bugs in those paths. A Docker-style allow-list is the
//! stronger production option. The BPF is built once per process with `seccompiler`.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

/// The compiled filters, in installation order.
#[derive(Debug)]
pub(super) struct Filters {
    programs: Vec<Vec<libc::sock_filter>>,
}

impl Filters {
    /// The programs themselves.
    pub(super) fn raw(&self) -> &[Vec<libc::sock_filter>] {
        &self.programs
    }

    pub(super) fn programs(&'static self) -> Vec<&'static [libc::sock_filter]> {
        self.programs.iter().map(|p| p.as_slice()).collect()
    }
}

/// Syscalls answered with EPERM whatever their arguments.
fn denied() -> Vec<libc::c_long> {
    let mut v = vec![
        libc::SYS_mount,
        libc::SYS_umount2,
        libc::SYS_pivot_root,
        libc::SYS_chroot,
        libc::SYS_open_tree,
        libc::SYS_move_mount,
        libc::SYS_fsopen,
        libc::SYS_fsconfig,
        libc::SYS_fsmount,
        libc::SYS_fspick,
        libc::SYS_mount_setattr,
        libc::SYS_unshare,
        libc::SYS_setns,
        libc::SYS_init_module,
        libc::SYS_finit_module,
        libc::SYS_delete_module,
        libc::SYS_kexec_load,
        libc::SYS_kexec_file_load,
        libc::SYS_bpf,
        libc::SYS_perf_event_open,
        libc::SYS_userfaultfd,
        libc::SYS_add_key,
        libc::SYS_request_key,
        libc::SYS_keyctl,
        libc::SYS_ptrace,
        libc::SYS_process_vm_readv,
        libc::SYS_process_vm_writev,
        libc::SYS_io_uring_setup,
        libc::SYS_io_uring_enter,
        libc::SYS_io_uring_register,
        libc::SYS_settimeofday,
        libc::SYS_clock_settime,
        libc::SYS_clock_adjtime,
        libc::SYS_adjtimex,
        libc::SYS_reboot,
        libc::SYS_swapon,
        libc::SYS_swapoff,
        libc::SYS_acct,
        libc::SYS_quotactl,
        libc::SYS_open_by_handle_at,
        libc::SYS_name_to_handle_at,
        libc::SYS_syslog,
        libc::SYS_vhangup,
        libc::SYS_pidfd_getfd,
        libc::SYS_fanotify_init,
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        libc::SYS_iopl,
        libc::SYS_ioperm,
        libc::SYS_lookup_dcookie,
        libc::SYS_uselib,
    ]);
    v
}

fn cond(op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, seccompiler::BackendError> {
    SeccompCondition::new(0, SeccompCmpArgLen::Dword, op, value)
}

fn compile(filter: SeccompFilter) -> Result<Vec<libc::sock_filter>, String> {
    let prog: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())?;
    Ok(prog
        .into_iter()
        .map(|i| libc::sock_filter {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect())
}

/// Build the filters for the running architecture.
pub(super) fn build() -> Result<Filters, String> {
    let arch: TargetArch = std::env::consts::ARCH
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())?;
    let e = |e: seccompiler::BackendError| e.to_string();

    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for nr in denied() {
        // An empty rule list matches the syscall unconditionally.
        rules.insert(nr, Vec::new());
    }
    // clone with any namespace flag (rules of one syscall are OR'ed).
    let mut clone_rules = Vec::new();
    for bit in [
        libc::CLONE_NEWNS,
        libc::CLONE_NEWCGROUP,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
    ] {
        let bit = bit as u64;
        clone_rules.push(
            SeccompRule::new(vec![cond(SeccompCmpOp::MaskedEq(bit), bit).map_err(e)?])
                .map_err(e)?,
        );
    }
    rules.insert(libc::SYS_clone, clone_rules);
    // personality: only the values Docker's default profile allows (query, PER_LINUX,
    // UNAME26 variants); the conditions of one rule are AND'ed.
    let allowed_personas = [0u64, 0x8, 0x20000, 0x20008, 0xffff_ffff];
    let conds = allowed_personas
        .iter()
        .map(|p| cond(SeccompCmpOp::Ne, *p))
        .collect::<Result<Vec<_>, _>>()
        .map_err(e)?;
    rules.insert(
        libc::SYS_personality,
        vec![SeccompRule::new(conds).map_err(e)?],
    );
    let deny = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .map_err(e)?;

    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, Vec::new())]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .map_err(e)?;

    let mut programs = vec![compile(deny)?, compile(clone3)?];
    #[cfg(target_arch = "x86_64")]
    programs.push(deny_x32());
    Ok(Filters { programs })
}

/// `if arch == x86_64 && nr >= __X32_SYSCALL_BIT { return ENOSYS } else { allow }`.
#[cfg(target_arch = "x86_64")]
fn deny_x32() -> Vec<libc::sock_filter> {
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    const X32_SYSCALL_BIT: u32 = 0x4000_0000;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const RET_ERRNO: u32 = 0x0005_0000;
    let stmt = |code: u32, k: u32| libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    };
    let jump = |code: u32, k: u32, jt: u8, jf: u8| libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    };
    // seccomp_data: nr at offset 0, arch at offset 4.
    vec![
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 4),
        jump(
            libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K,
            AUDIT_ARCH_X86_64,
            0,
            2,
        ),
        stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, 0),
        jump(
            libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K,
            X32_SYSCALL_BIT,
            1,
            0,
        ),
        stmt(libc::BPF_RET | libc::BPF_K, RET_ALLOW),
        stmt(libc::BPF_RET | libc::BPF_K, RET_ERRNO | libc::ENOSYS as u32),
    ]
}
