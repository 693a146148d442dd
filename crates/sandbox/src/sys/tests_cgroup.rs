//! Tests of cgroup limits, accounting and teardown against the real kernel (root, as in CI).
//! Each returns early with a note when the host lacks the controller it needs.

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::tests::{code_dir, field, namespaces_or_skip, run, spec, PY};
use super::*;

#[test]
fn sys_memory_hog_is_oom_killed() {
    if !capabilities().memory_limit {
        eprintln!("skipping: no memory cgroup ({})", capabilities());
        return;
    }
    let code = code_dir();
    for isolation in [Isolation::Namespaces, Isolation::None] {
        let hog = "b = b'x' * (300 * 1024 * 1024); print('survived', len(b))";
        let (out, status, proc) = run(isolation, code.path(), PY, &["-c", hog], 128, None);
        assert_eq!(
            status.signal(),
            Some(libc::SIGKILL),
            "{isolation:?}: {status:?} {out}"
        );
        assert!(proc.oom_killed(), "{isolation:?}");
        let peak = proc.peak_memory_bytes().expect("peak");
        assert!(
            peak > 100 << 20 && peak <= 129 << 20,
            "{isolation:?}: peak {peak}"
        );
        assert!(proc.cgroup_paths().is_empty(), "released after wait");
    }
    // A process within its limit is not reported as OOM-killed.
    let (_, status, proc) = run(
        Isolation::Namespaces,
        code.path(),
        PY,
        &["-c", "b = b'x' * (20 << 20)"],
        128,
        None,
    );
    assert!(status.success() && !proc.oom_killed());
    let peak = proc.peak_memory_bytes().expect("peak");
    assert!(peak > 20 << 20 && peak < 128 << 20, "peak {peak}");
}

#[test]
fn sys_kill_tears_down_the_environment() {
    if !namespaces_or_skip() {
        return;
    }
    let code = code_dir();
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let mut proc = spawn(
        spec(
            code.path(),
            "/bin/sh",
            &["-c", "sleep 60 & sleep 60"],
            128,
            writer.into(),
            None,
        ),
        Isolation::Namespaces,
    )
    .expect("spawn");
    let paths = proc.cgroup_paths();
    assert_eq!(paths.is_empty(), capabilities().cgroups.is_none());
    let tmp_dirs = std::fs::read_dir(
        probe::host()
            .rootfs
            .as_ref()
            .expect("rootfs")
            .tmp_root
            .clone(),
    )
    .expect("tmp root")
    .count();
    // Without loop devices /tmp is a directory under the state dir.
    assert!(tmp_dirs >= 1 || capabilities().tmp_size_limit);
    if capabilities().freezer {
        proc.freeze().expect("freeze");
        let state = paths
            .iter()
            .find(|p| p.join("freezer.state").exists())
            .map(|p| p.join("freezer.state"));
        if let Some(state) = state {
            assert_eq!(
                std::fs::read_to_string(state).expect("read").trim(),
                "FROZEN"
            );
        }
        // Killing a frozen environment must still work (pitfall 6).
    }
    let start = Instant::now();
    proc.kill().expect("kill");
    assert!(start.elapsed() < Duration::from_secs(2));
    assert_eq!(proc.wait().expect("wait").signal(), Some(libc::SIGKILL));
    for p in &paths {
        assert!(!p.exists(), "{} removed", p.display());
    }
    assert!(proc.cgroup_paths().is_empty());
    // SAFETY: signal 0 only probes for existence.
    assert_eq!(
        unsafe { libc::kill(proc.pid() as i32, 0) },
        -1,
        "init is gone"
    );
}

#[test]
fn sys_freeze_and_thaw() {
    if !namespaces_or_skip() || !capabilities().freezer {
        return;
    }
    let code = code_dir();
    let (mut reader, writer) = std::io::pipe().expect("pipe");
    let ticker = "while :; do echo tick; sleep 0.02; done";
    let mut proc = spawn(
        spec(
            code.path(),
            "/bin/sh",
            &["-c", ticker],
            128,
            writer.into(),
            None,
        ),
        Isolation::Namespaces,
    )
    .expect("spawn");
    let mut buf = [0u8; 5];
    reader.read_exact(&mut buf).expect("first tick");
    proc.freeze().expect("freeze");
    // Drain what was written before the freeze, then expect silence.
    // SAFETY: setting O_NONBLOCK on our own pipe fd.
    unsafe {
        libc::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&reader),
            libc::F_SETFL,
            libc::O_NONBLOCK,
        )
    };
    let mut sink = [0u8; 4096];
    while reader.read(&mut sink).is_ok_and(|n| n > 0) {}
    std::thread::sleep(Duration::from_millis(150));
    assert_eq!(
        reader.read(&mut sink).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::WouldBlock),
        "no output while frozen"
    );
    proc.thaw().expect("thaw");
    std::thread::sleep(Duration::from_millis(150));
    assert!(
        reader.read(&mut sink).is_ok_and(|n| n > 0),
        "ticks again after thaw"
    );
    assert!(proc.try_wait().expect("try_wait").is_none());
    proc.kill().expect("kill");
}

#[test]
fn sys_cgroup_files_carry_the_limits() {
    if capabilities().cgroups != Some(CgroupVersion::V1)
        || !capabilities().cpu_limit
        || !capabilities().memory_limit
    {
        return;
    }
    let code = code_dir();
    let (_r, w) = std::io::pipe().expect("pipe");
    let mut s = spec(code.path(), "/bin/sleep", &["5"], 128, w.into(), None);
    s.cpu = CpuPolicy::Quota;
    let mut proc = spawn(s, Isolation::Namespaces).expect("spawn");
    let read = |file: &str| {
        let p = proc
            .cgroup_paths()
            .into_iter()
            .map(|d| d.join(file))
            .find(|p| p.exists())
            .expect(file);
        std::fs::read_to_string(p).expect("read").trim().to_owned()
    };
    assert_eq!(read("memory.limit_in_bytes"), (128u64 << 20).to_string());
    assert_eq!(read("cpu.shares"), "74"); // 1024 × 128 / 1769
    assert_eq!(read("cpu.cfs_quota_us"), "7236"); // 100 ms × 128 / 1769
    assert_eq!(read("pids.max"), "1024");
    assert!(
        read("cgroup.procs").lines().count() >= 2,
        "init and runtime attached before exec"
    );
    proc.kill().expect("kill");
}

#[test]
fn sys_v2_backend_on_the_unified_mount() {
    // On hybrid hosts the cgroup2 mount has no resource controllers, but cgroup.kill, freezing
    // and CLONE_INTO_CGROUP work there, which exercises the v2 backend's process handling.
    let unified = Path::new("/sys/fs/cgroup/unified");
    if !namespaces_or_skip() || cgroup::statfs_type_for_tests(unified) != Some(0x6367_7270) {
        return;
    }
    let own = std::fs::read_to_string("/proc/self/cgroup").expect("read");
    let own = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("v2 line")
        .to_owned();
    let Ok(backend) = cgroup::V2Backend::detect(unified, &own, "nimbus-test") else {
        eprintln!("skipping: unified hierarchy not writable");
        return;
    };
    let code = code_dir();
    let (_r, w) = std::io::pipe().expect("pipe");
    let spec = spec(code.path(), "/bin/sleep", &["5"], 128, w.into(), None);
    let mut proc =
        spawn::spawn(probe::host(), spec, Isolation::Namespaces, Some(&backend)).expect("spawn");
    let dir = proc.cgroup_paths().pop().expect("dir");
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).expect("procs");
    assert!(
        procs.lines().any(|p| p == proc.pid().to_string()),
        "{procs}"
    );
    proc.freeze().expect("freeze");
    proc.thaw().expect("thaw");
    proc.freeze().expect("freeze again");
    proc.kill().expect("kill (cgroup.kill) while frozen");
    assert_eq!(proc.wait().expect("wait").signal(), Some(libc::SIGKILL));
    assert!(!dir.exists());
    assert!(
        !spawn::INTO_CGROUP_BROKEN.load(std::sync::atomic::Ordering::Relaxed),
        "the child was created in its cgroup by clone3(CLONE_INTO_CGROUP)"
    );
    let _ = std::fs::remove_dir(dir.parent().expect("base"));
}

#[test]
fn sys_node_sees_its_memory_limit() {
    if !namespaces_or_skip()
        || !capabilities().memory_limit
        || !capabilities().cgroup_namespace
        || !Path::new("/usr/bin/node").exists()
    {
        return;
    }
    let code = code_dir();
    let (out, status, _) = run(
        Isolation::Namespaces,
        code.path(),
        "/usr/bin/node",
        &["-e", "console.log('limit=' + process.constrainedMemory())"],
        256,
        None,
    );
    assert!(status.success(), "{out}");
    assert_eq!(field(&out, "limit"), (256u64 << 20).to_string());
}

/// Spawn → exec latency of /bin/true, medians of 50 interleaved samples per variant:
/// `cargo test -p nimbus-sandbox --lib sys_spawn_latency -- --ignored --nocapture`.
#[test]
#[ignore]
fn sys_spawn_latency() {
    let code = code_dir();
    let host = probe::host();
    let variants: [(&str, Option<Isolation>, bool); 5] = [
        ("std::process::Command", None, false),
        ("None, no cgroup", Some(Isolation::None), false),
        ("None + cgroup", Some(Isolation::None), true),
        ("Namespaces, no cgroup", Some(Isolation::Namespaces), false),
        ("Namespaces + cgroup", Some(Isolation::Namespaces), true),
    ];
    let mut samples = vec![Vec::new(); variants.len()];
    for _round in 0..10 {
        for (i, (_, isolation, cg)) in variants.iter().enumerate() {
            for _ in 0..5 {
                let (_r, w) = std::io::pipe().expect("pipe");
                let start = Instant::now();
                let Some(isolation) = isolation else {
                    // std's posix_spawn also returns once exec has succeeded.
                    let mut c = std::process::Command::new("/bin/true")
                        .env_clear()
                        .spawn()
                        .expect("spawn");
                    samples[i].push(start.elapsed());
                    c.wait().expect("wait");
                    continue;
                };
                let backend = if *cg { host.cgroups.as_deref() } else { None };
                let sp = spec(code.path(), "/bin/true", &[], 1769, w.into(), None);
                let mut p = spawn::spawn(host, sp, *isolation, backend).expect("spawn");
                samples[i].push(start.elapsed());
                p.wait().expect("wait");
            }
        }
    }
    for ((name, _, _), mut s) in variants.iter().zip(samples) {
        s.sort();
        eprintln!(
            "{name}: spawn→exec median {:?}, p90 {:?}",
            s[s.len() / 2],
            s[s.len() * 9 / 10]
        );
    }
}

/// `/tmp` is disk of the configured size: a 128 MB environment writes 300 MB there without
/// being OOM-killed, cannot write beyond its 512 MB, and its loop device is gone afterwards.
#[test]
fn sys_tmp_is_disk_of_the_configured_size() {
    if !namespaces_or_skip() {
        return;
    }
    if !capabilities().tmp_size_limit {
        eprintln!(
            "skipping: /tmp size cannot be enforced here ({})",
            capabilities()
        );
        return;
    }
    let code = code_dir();
    let (mut reader, writer) = std::io::pipe().expect("pipe");
    let script = "\
        grep ' /tmp ' /proc/self/mountinfo | sed 's/.* - [a-z0-9]* \\([^ ]*\\) .*/device=\\1/'; \
        grep ' /tmp ' /proc/self/mountinfo | cut -d' ' -f6 | sed 's/^/options=/'; \
        ls -A /tmp | wc -l | sed 's/^/entries=/'; \
        dd if=/dev/zero of=/tmp/a bs=1M count=300 2>/dev/null && echo first=ok; \
        dd if=/dev/zero of=/tmp/b bs=1M count=300 2>&1 | grep -c 'No space left' | sed 's/^/full=/'; \
        echo total=$(( $(du -sm /tmp | cut -f1) ))";
    let mut s = spec(
        code.path(),
        "/bin/sh",
        &["-c", script],
        128,
        writer.into(),
        None,
    );
    s.tmp_mb = 512;
    let mut proc = spawn(s, Isolation::Namespaces).expect("spawn");
    let mut out = String::new();
    reader.read_to_string(&mut out).expect("read output");
    let status = proc.wait().expect("wait");
    assert!(status.success() && !proc.oom_killed(), "{status:?}\n{out}");
    assert_eq!(field(&out, "entries"), "0", "{out}");
    let options: Vec<&str> = field(&out, "options").split(',').collect();
    for flag in ["rw", "nosuid", "nodev", "noatime"] {
        assert!(options.contains(&flag), "{out}");
    }
    assert_eq!(field(&out, "first"), "ok", "{out}");
    assert_eq!(field(&out, "full"), "1", "{out}");
    let total: u64 = field(&out, "total").parse().expect("total");
    assert!((512..=530).contains(&total), "{out}");
    let device = field(&out, "device").trim_start_matches("/dev/").to_owned();
    assert!(device.starts_with("loop"), "{out}");
    drop(proc);
    // The device detaches itself once the mount and our descriptor are gone.
    let backing = Path::new("/sys/block")
        .join(&device)
        .join("loop/backing_file");
    let started = Instant::now();
    while backing.exists() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{device} still attached"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn sys_cgroups_are_prepared_with_the_limits_last_asked_for() {
    let Some(backend) = cgroup::detect() else {
        eprintln!("skipping: no cgroups ({})", capabilities());
        return;
    };
    use cgroup::CgroupBackend as _;
    let pool = cgroup::CgroupPool::new(backend);
    let limits = |mb: u32| cgroup::Limits::for_memory(mb, false, 1024);
    let ready_within = |n: usize, limits: &cgroup::Limits| {
        let deadline = Instant::now() + Duration::from_secs(5);
        while pool.ready_for(limits) != n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        pool.ready_for(limits)
    };
    let is_pooled = |cg: &dyn cgroup::EnvCgroup| {
        cg.paths().iter().all(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().contains("-pool"))
        })
    };
    let mut first = pool
        .create(&format!("{}-t1", std::process::id()), &limits(128))
        .expect("create");
    assert!(!is_pooled(first.as_ref()), "nothing was ready yet");
    assert_eq!(
        ready_within(2, &limits(128)),
        2,
        "the pool fills in the background"
    );
    let mut second = pool
        .create(&format!("{}-t2", std::process::id()), &limits(128))
        .expect("create");
    assert!(is_pooled(second.as_ref()), "{:?}", second.paths());
    if capabilities().memory_limit && capabilities().cgroups == Some(CgroupVersion::V1) {
        let memory = second
            .paths()
            .into_iter()
            .map(|d| d.join("memory.limit_in_bytes"))
            .find(|p| p.exists())
            .expect("memory dir");
        let limit = std::fs::read_to_string(memory).expect("read");
        assert_eq!(limit.trim(), (128u64 << 20).to_string());
    }
    // Other limits: made on demand, and the pool turns over to them.
    let mut third = pool
        .create(&format!("{}-t3", std::process::id()), &limits(512))
        .expect("create");
    assert!(!is_pooled(third.as_ref()));
    assert_eq!(ready_within(2, &limits(512)), 2);
    let mut fourth = pool
        .create(&format!("{}-t4", std::process::id()), &limits(512))
        .expect("create");
    assert!(is_pooled(fourth.as_ref()));
    for cg in [&mut first, &mut second, &mut third, &mut fourth] {
        let paths = cg.paths();
        cg.remove().expect("remove");
        assert!(paths.iter().all(|p| !p.exists()));
    }
    drop(pool);
}

#[test]
fn sys_the_mini_init_keeps_none_of_the_supervisors_memory() {
    if !namespaces_or_skip() {
        return;
    }
    // Give the supervisor a heap worth keeping, as a long-running server has.
    let ballast: Vec<Vec<u8>> =
        std::hint::black_box((0..64).map(|i| vec![i as u8; 64 << 10]).collect());
    let code = code_dir();
    let (_r, w) = std::io::pipe().expect("pipe");
    let s = spec(code.path(), "/bin/sleep", &["5"], 128, w.into(), None);
    let mut proc = spawn(s, Isolation::Namespaces).expect("spawn");
    // Anonymous memory only: the binary's text is shared page cache, not the init's own.
    let anon_kib = |pid: u32| -> Option<u64> {
        let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
        rollup
            .lines()
            .find_map(|l| l.strip_prefix("Pss_Anon:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    let Some(ours) = anon_kib(std::process::id()) else {
        eprintln!("skipping: no Pss_Anon in smaps_rollup on this kernel");
        return;
    };
    // The init releases its copy right after the runtime's exec, which spawn waited for.
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut init = anon_kib(proc.pid());
    while init.is_none_or(|kib| kib > 128) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        init = anon_kib(proc.pid());
    }
    let init = init.expect("init pss");
    assert!(
        init <= 128,
        "init anonymous PSS {init} KiB (supervisor: {ours} KiB)"
    );
    drop(ballast);
    proc.kill().expect("kill");
}
