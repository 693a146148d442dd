//! The seccomp deny-list installed right before `execve` (research note §4, pitfall 13).
//!
//! Default allow; EPERM for the syscalls a Lambda function has no business making (mounts,
//! namespaces, modules, kexec, bpf, perf, userfaultfd, keyrings, ptrace, io_uring, clock
//! setting, odd personalities), and for `clone` whenever a `CLONE_NEW*` bit is set. `clone3`
//! answers ENOSYS: its flags live in memory BPF cannot inspect, and ENOSYS makes glibc fall back
//! to `clone`, whose flags the filter checks. On x86_64 the x32 ABI answers ENOSYS too, as its
//! syscall numbers would otherwise bypass a number-based list; a foreign architecture (i386
//! via `int 0x80`) kills the process.
//!
//! Many of these calls already fail for an unprivileged user without capabilities; the filter
//! is defence in depth against kernel bugs in those paths. A Docker-style allow-list is the
//! stronger production option.
//!
//! The program is one classic-BPF binary search over the syscall number, built once per
//! process. Why by hand rather than with a filter compiler: attaching a filter makes the kernel
//! run it for every syscall number to precompute its allow cache, so the cost of each cold start
//! grows with the filter's path length. A linear chain of ~50 comparisons cost ~250 µs per
//! environment; a search takes at most 13 instructions per number.

/// The compiled filter.
#[derive(Debug)]
pub(super) struct Filters {
    program: Vec<libc::sock_filter>,
}

impl Filters {
    /// The BPF program.
    pub(super) fn program(&self) -> &[libc::sock_filter] {
        &self.program
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

/// `CLONE_NEW*` bits: a `clone` with any of them set is refused.
const CLONE_NAMESPACE_BITS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET) as u32;

/// `personality` values Docker's default profile allows (query, PER_LINUX, UNAME26 variants).
const ALLOWED_PERSONAS: [u32; 5] = [0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: Option<u32> = Some(0xc000_003e);
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: Option<u32> = Some(0xc000_00b7);
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const AUDIT_ARCH: Option<u32> = None;

/// x32 syscalls on x86_64 carry this bit in their number.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const RET_KILL_PROCESS: u32 = 0x8000_0000;
const RET_ERRNO: u32 = 0x0005_0000;
const RET_ALLOW: u32 = 0x7fff_0000;

/// `struct seccomp_data`: the syscall number, the audit arch, then the arguments.
const DATA_NR: u32 = 0;
const DATA_ARCH: u32 = 4;
/// The low 32 bits of the first argument.
#[cfg(target_endian = "little")]
const DATA_ARG0_LOW: u32 = 16;
#[cfg(target_endian = "big")]
const DATA_ARG0_LOW: u32 = 20;

/// What the filter does with one syscall number it singles out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Deny,
    NoSuchCall,
    /// `clone`: deny when a namespace bit is set.
    CloneFlags,
    /// `personality`: deny unless the persona is one of [`ALLOWED_PERSONAS`].
    Persona,
}

/// Where a jump goes: the next instruction or a label placed later.
#[derive(Debug, Clone, Copy)]
enum Target {
    Next,
    Label(usize),
}

#[derive(Debug, Clone, Copy)]
struct Insn {
    code: u32,
    k: u32,
    jt: Target,
    jf: Target,
}

/// Classic-BPF assembler with forward labels.
#[derive(Default)]
struct Assembler {
    code: Vec<Insn>,
    labels: Vec<Option<usize>>,
}

impl Assembler {
    fn label(&mut self) -> usize {
        self.labels.push(None);
        self.labels.len() - 1
    }

    fn place(&mut self, label: usize) {
        self.labels[label] = Some(self.code.len());
    }

    fn stmt(&mut self, code: u32, k: u32) {
        self.code.push(Insn {
            code,
            k,
            jt: Target::Next,
            jf: Target::Next,
        });
    }

    fn jump(&mut self, op: u32, k: u32, jt: Target, jf: Target) {
        self.code.push(Insn {
            code: libc::BPF_JMP | op | libc::BPF_K,
            k,
            jt,
            jf,
        });
    }

    fn load(&mut self, offset: u32) {
        self.stmt(libc::BPF_LD | libc::BPF_W | libc::BPF_ABS, offset);
    }

    fn ret(&mut self, value: u32) {
        self.stmt(libc::BPF_RET | libc::BPF_K, value);
    }

    /// Resolve labels into the relative offsets classic BPF wants (forward only, at most 255).
    fn finish(self) -> Result<Vec<libc::sock_filter>, String> {
        let resolve = |at: usize, target: Target| -> Result<u8, String> {
            match target {
                Target::Next => Ok(0),
                Target::Label(l) => {
                    let to = self.labels[l].ok_or("a seccomp label was never placed")?;
                    to.checked_sub(at + 1)
                        .and_then(|d| u8::try_from(d).ok())
                        .ok_or_else(|| "a seccomp jump is out of range".to_owned())
                }
            }
        };
        self.code
            .iter()
            .enumerate()
            .map(|(at, i)| {
                Ok(libc::sock_filter {
                    code: u16::try_from(i.code).map_err(|e| e.to_string())?,
                    jt: resolve(at, i.jt)?,
                    jf: resolve(at, i.jf)?,
                    k: i.k,
                })
            })
            .collect()
    }
}

/// Every syscall number the filter singles out, sorted.
fn singled_out() -> Vec<(u32, Verdict)> {
    let mut v: Vec<(u32, Verdict)> = denied()
        .into_iter()
        .map(|nr| (nr as u32, Verdict::Deny))
        .collect();
    v.push((libc::SYS_clone as u32, Verdict::CloneFlags));
    v.push((libc::SYS_clone3 as u32, Verdict::NoSuchCall));
    v.push((libc::SYS_personality as u32, Verdict::Persona));
    // Stable, so that a number also listed as denied stays denied (its entry comes first).
    v.sort_by_key(|(nr, _)| *nr);
    v.dedup_by_key(|(nr, _)| *nr);
    v
}

/// Comparisons per number at the leaves of the search.
const LEAF: usize = 3;

/// Emit a search over `entries` (sorted by number) with the number in the accumulator.
fn search(a: &mut Assembler, entries: &[(u32, Verdict)], exits: &Exits) {
    if entries.len() <= LEAF {
        for (nr, verdict) in entries {
            a.jump(
                libc::BPF_JEQ,
                *nr,
                Target::Label(exits.of(*verdict)),
                Target::Next,
            );
        }
        a.ret(RET_ALLOW);
        return;
    }
    let mid = entries.len() / 2;
    let upper = a.label();
    a.jump(
        libc::BPF_JGE,
        entries[mid].0,
        Target::Label(upper),
        Target::Next,
    );
    search(a, &entries[..mid], exits);
    a.place(upper);
    search(a, &entries[mid..], exits);
}

/// The labels of the shared tails.
struct Exits {
    deny: usize,
    no_such_call: usize,
    clone_flags: usize,
    persona: usize,
}

impl Exits {
    fn of(&self, verdict: Verdict) -> usize {
        match verdict {
            Verdict::Deny => self.deny,
            Verdict::NoSuchCall => self.no_such_call,
            Verdict::CloneFlags => self.clone_flags,
            Verdict::Persona => self.persona,
        }
    }
}

/// Build the filter for the running architecture.
pub(super) fn build() -> Result<Filters, String> {
    let arch = AUDIT_ARCH.ok_or_else(|| {
        format!(
            "no seccomp filter for the {} architecture",
            std::env::consts::ARCH
        )
    })?;
    let mut a = Assembler::default();
    let exits = Exits {
        deny: a.label(),
        no_such_call: a.label(),
        clone_flags: a.label(),
        persona: a.label(),
    };
    let kill = a.label();
    a.load(DATA_ARCH);
    a.jump(libc::BPF_JEQ, arch, Target::Next, Target::Label(kill));
    a.load(DATA_NR);
    if cfg!(target_arch = "x86_64") {
        a.jump(
            libc::BPF_JGE,
            X32_SYSCALL_BIT,
            Target::Label(exits.no_such_call),
            Target::Next,
        );
    }
    search(&mut a, &singled_out(), &exits);

    a.place(exits.clone_flags);
    a.load(DATA_ARG0_LOW);
    a.jump(
        libc::BPF_JSET,
        CLONE_NAMESPACE_BITS,
        Target::Label(exits.deny),
        Target::Next,
    );
    a.ret(RET_ALLOW);

    a.place(exits.persona);
    a.load(DATA_ARG0_LOW);
    let allowed = a.label();
    for (i, persona) in ALLOWED_PERSONAS.iter().enumerate() {
        let otherwise = if i + 1 == ALLOWED_PERSONAS.len() {
            Target::Label(exits.deny)
        } else {
            Target::Next
        };
        a.jump(libc::BPF_JEQ, *persona, Target::Label(allowed), otherwise);
    }
    a.place(allowed);
    a.ret(RET_ALLOW);

    a.place(exits.deny);
    a.ret(RET_ERRNO | libc::EPERM as u32);
    a.place(exits.no_such_call);
    a.ret(RET_ERRNO | libc::ENOSYS as u32);
    a.place(kill);
    a.ret(RET_KILL_PROCESS);
    Ok(Filters {
        program: a.finish()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A classic-BPF interpreter for the instructions the filter uses.
    fn run(program: &[libc::sock_filter], nr: u32, arch: u32, arg0: u64) -> u32 {
        run_counting(program, nr, arch, arg0).0
    }

    /// [`run`], also returning how many instructions were executed.
    fn run_counting(program: &[libc::sock_filter], nr: u32, arch: u32, arg0: u64) -> (u32, usize) {
        let mut data = [0u8; 64];
        data[0..4].copy_from_slice(&nr.to_ne_bytes());
        data[4..8].copy_from_slice(&arch.to_ne_bytes());
        data[16..24].copy_from_slice(&arg0.to_ne_bytes());
        let (mut pc, mut acc) = (0usize, 0u32);
        for steps in 1.. {
            let i = program[pc];
            let code = u32::from(i.code);
            pc += 1;
            match code {
                c if c == libc::BPF_LD | libc::BPF_W | libc::BPF_ABS => {
                    let at = i.k as usize;
                    acc = u32::from_ne_bytes(data[at..at + 4].try_into().expect("4 bytes"));
                }
                c if c == libc::BPF_RET | libc::BPF_K => return (i.k, steps),
                c => {
                    let taken = match c & !(libc::BPF_JMP | libc::BPF_K) {
                        op if op == libc::BPF_JEQ => acc == i.k,
                        op if op == libc::BPF_JGE => acc >= i.k,
                        op if op == libc::BPF_JSET => acc & i.k != 0,
                        op => panic!("unexpected BPF op {op:#x}"),
                    };
                    pc += usize::from(if taken { i.jt } else { i.jf });
                }
            }
        }
        unreachable!("a BPF program always ends in a return")
    }

    #[test]
    fn every_syscall_number_gets_the_listed_verdict() {
        let Some(arch) = AUDIT_ARCH else { return };
        let filters = build().expect("filter");
        let program = filters.program();
        assert!(program.len() < 256, "{} instructions", program.len());
        let deny = RET_ERRNO | libc::EPERM as u32;
        let nosys = RET_ERRNO | libc::ENOSYS as u32;
        let denied: Vec<u32> = denied().into_iter().map(|nr| nr as u32).collect();
        for nr in 0..1024u32 {
            let verdict = run(program, nr, arch, 0);
            let expected = if denied.contains(&nr) {
                deny
            } else if nr == libc::SYS_clone3 as u32 {
                nosys
            } else {
                RET_ALLOW
            };
            assert_eq!(verdict, expected, "syscall {nr}");
        }
        // clone: any namespace bit refuses it, thread and fork flags do not.
        let clone = libc::SYS_clone as u32;
        let thread = (libc::CLONE_VM | libc::CLONE_THREAD | libc::CLONE_SIGHAND) as u64;
        assert_eq!(run(program, clone, arch, thread), RET_ALLOW);
        assert_eq!(run(program, clone, arch, libc::SIGCHLD as u64), RET_ALLOW);
        for bit in [
            libc::CLONE_NEWNS,
            libc::CLONE_NEWCGROUP,
            libc::CLONE_NEWUTS,
            libc::CLONE_NEWIPC,
            libc::CLONE_NEWUSER,
            libc::CLONE_NEWPID,
            libc::CLONE_NEWNET,
        ] {
            assert_eq!(run(program, clone, arch, thread | bit as u64), deny);
        }
        // personality: the allowed personas only.
        let personality = libc::SYS_personality as u32;
        for persona in ALLOWED_PERSONAS {
            assert_eq!(
                run(program, personality, arch, u64::from(persona)),
                RET_ALLOW
            );
        }
        // READ_IMPLIES_EXEC and ADDR_NO_RANDOMIZE are not.
        assert_eq!(run(program, personality, arch, 0x0040_0000), deny);
        assert_eq!(run(program, personality, arch, 0x0004_0000), deny);
        // Another architecture's numbering is not trusted at all.
        assert_eq!(run(program, 0, 0x4000_0003, 0), RET_KILL_PROCESS);
        if cfg!(target_arch = "x86_64") {
            assert_eq!(run(program, X32_SYSCALL_BIT | 39, arch, 0), nosys);
        }
    }

    #[test]
    fn a_syscall_takes_few_comparisons() {
        let Some(arch) = AUDIT_ARCH else { return };
        let filters = build().expect("filter");
        // The whole list, searched: far shorter than a comparison per listed syscall.
        assert!(filters.program().len() < 2 * singled_out().len() + 24);
        // What the kernel pays when it fills its allow cache at attach: the path per number.
        let longest = (0..1024u32)
            .map(|nr| run_counting(filters.program(), nr, arch, 0).1)
            .max()
            .expect("some numbers");
        // A linear chain would take one per listed syscall (~55); the search ~log2 of that.
        assert!(longest <= 16, "{longest} instructions on the longest path");
    }
}
