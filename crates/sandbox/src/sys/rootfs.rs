//! Host-side files behind an environment's root: the state directory, the generated minimal
//! `/etc`, the mount staging point, and per-environment `/tmp` directories.
//!
//! Layout under `state_dir` (mode 0700, owned by the supervisor):
//! - `etc/`: generated once per process (passwd/group with the sandbox user, hosts,
//!   nsswitch.conf, a copy of resolv.conf, ld.so.cache and openssl.cnf, and an empty `ssl/certs`
//!   onto which the host's certificate directory is bind-mounted). Shown read-only at `/etc`.
//! - `root/`: an empty directory each child mounts its private tmpfs root on (in its own mount
//!   namespace, so children never see each other's mounts).
//! - `tmp/<env>/`: an environment's `/tmp` with [`TmpBacking::Disk`](super::TmpBacking::Disk).

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::SandboxConfig;

/// A top-level entry of the host root that the sandbox root reproduces.
#[derive(Debug, Clone)]
pub(super) enum TopEntry {
    /// A merged-/usr symlink such as `bin -> usr/bin`: recreated as the same symlink.
    Link { name: &'static str, target: PathBuf },
    /// A real directory on a non-merged host: bind-mounted read-only.
    Bind { name: &'static str },
}

/// The prepared host-side files.
#[derive(Debug)]
pub(super) struct Rootfs {
    /// Generated `/etc`.
    pub etc_dir: PathBuf,
    /// Mount point for the child's tmpfs root.
    pub staging: PathBuf,
    /// Parent of per-environment `/tmp` directories.
    pub tmp_root: PathBuf,
    /// The host's CA certificate directory, bound at `/etc/ssl/certs` when present.
    pub ssl_certs: Option<PathBuf>,
    /// `bin`, `lib`, `lib64`, `sbin`, ... as they exist on the host.
    pub top: Vec<TopEntry>,
    /// Device nodes of the host `/dev` that get bind-mounted into the sandbox `/dev`.
    pub devices: Vec<&'static str>,
}

const TOP_NAMES: [&str; 6] = ["bin", "sbin", "lib", "lib64", "lib32", "libx32"];
const DEVICES: [&str; 6] = ["null", "zero", "full", "random", "urandom", "tty"];

fn ctx(what: &str, path: &Path, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Create `dir` (and parents) with mode 0700, and refuse a directory that is a symlink or
/// belongs to another user: the supervisor bind-mounts from here as root.
fn private_dir(dir: &Path) -> io::Result<()> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| ctx("create", dir, e))?;
    let meta = fs::symlink_metadata(dir).map_err(|e| ctx("stat", dir, e))?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if !meta.is_dir() || meta.uid() != euid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!("{} is not a directory owned by uid {euid}", dir.display()),
        ));
    }
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(|e| ctx("chmod", dir, e))
}

impl Rootfs {
    /// Create the state directory and generate `/etc`. Idempotent: files are rewritten with
    /// the same content, so several supervisors sharing a state dir do not conflict.
    pub(super) fn prepare(config: &SandboxConfig) -> io::Result<Rootfs> {
        let state = &config.state_dir;
        private_dir(state)?;
        let etc_dir = state.join("etc");
        let staging = state.join("root");
        let tmp_root = state.join("tmp");
        for dir in [&staging, &tmp_root] {
            private_dir(dir)?;
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(etc_dir.join("ssl/certs"))
            .map_err(|e| ctx("create", &etc_dir, e))?;
        // The generated etc is world-readable: the sandbox user reads passwd, hosts, certs.
        for dir in [&etc_dir, &etc_dir.join("ssl"), &etc_dir.join("ssl/certs")] {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
                .map_err(|e| ctx("chmod", dir, e))?;
        }
        generate_etc(&etc_dir, config)?;
        remove_stale_tmp(&tmp_root);

        let ssl_certs = Some(PathBuf::from("/etc/ssl/certs")).filter(|p| p.is_dir());
        let mut top = Vec::new();
        for name in TOP_NAMES {
            let host = Path::new("/").join(name);
            match fs::symlink_metadata(&host) {
                Ok(m) if m.file_type().is_symlink() => {
                    let target = fs::read_link(&host).map_err(|e| ctx("readlink", &host, e))?;
                    top.push(TopEntry::Link { name, target });
                }
                Ok(m) if m.is_dir() => top.push(TopEntry::Bind { name }),
                _ => {}
            }
        }
        let devices = DEVICES
            .into_iter()
            .filter(|d| Path::new("/dev").join(d).exists())
            .collect();
        Ok(Rootfs {
            etc_dir,
            staging,
            tmp_root,
            ssl_certs,
            top,
            devices,
        })
    }

    /// Create an environment's disk-backed `/tmp`, owned by the sandbox user.
    pub(super) fn create_tmp(&self, name: &str, uid: u32, gid: u32) -> io::Result<PathBuf> {
        let dir = self.tmp_root.join(name);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| ctx("create", &dir, e))?;
        std::os::unix::fs::chown(&dir, Some(uid), Some(gid)).map_err(|e| ctx("chown", &dir, e))?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o1777))
            .map_err(|e| ctx("chmod", &dir, e))?;
        Ok(dir)
    }
}

/// Delete `/tmp` directories of environments whose supervisor (the pid in the name
/// `<pid>-<n>`) no longer runs. Best effort.
fn remove_stale_tmp(tmp_root: &Path) {
    for entry in super::orphaned_entries(tmp_root) {
        let _ = fs::remove_dir_all(entry.path());
    }
}

fn generate_etc(etc: &Path, config: &SandboxConfig) -> io::Result<()> {
    let (uid, gid, host) = (config.uid, config.gid, &config.hostname);
    // Lambda's sandbox user is called sbx_user1051; runtimes only need uid → name lookups to
    // succeed (Python's getpass, Node's os.userInfo).
    let passwd = format!(
        "root:x:0:0:root:/root:/usr/sbin/nologin\n\
         sbx_user1051:x:{uid}:{gid}::/tmp:/usr/sbin/nologin\n\
         nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
    );
    let group = format!("root:x:0:\nsbx_user1051:x:{gid}:\nnogroup:x:65534:\n");
    let hosts = format!(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t{host}\n"
    );
    let nsswitch = "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n\
                    networks: files\nprotocols: files\nservices: files\n";
    let files: [(&str, &[u8]); 4] = [
        ("passwd", passwd.as_bytes()),
        ("group", group.as_bytes()),
        ("hosts", hosts.as_bytes()),
        ("nsswitch.conf", nsswitch.as_bytes()),
    ];
    for (name, content) in files {
        write_public(&etc.join(name), content)?;
    }
    // Copies of host files; each is optional (a missing one only loses a convenience:
    // resolv.conf → DNS, ld.so.cache → faster library lookup, openssl.cnf → OpenSSL defaults).
    for (src, dst) in [
        ("/etc/resolv.conf", "resolv.conf"),
        ("/etc/ld.so.cache", "ld.so.cache"),
        ("/etc/ssl/openssl.cnf", "ssl/openssl.cnf"),
    ] {
        if let Ok(content) = fs::read(src) {
            write_public(&etc.join(dst), &content)?;
        }
    }
    Ok(())
}

fn write_public(path: &Path, content: &[u8]) -> io::Result<()> {
    if fs::read(path).is_ok_and(|old| old == content) {
        return Ok(());
    }
    // Write a sibling and rename, so a concurrently starting environment never reads a
    // half-written file.
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, content).map_err(|e| ctx("write", &tmp, e))?;
    fs::set_permissions(&tmp, fs::Permissions::from_mode(0o644))
        .map_err(|e| ctx("chmod", &tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| ctx("rename", path, e))
}
