//! A size-limited, disk-backed `/tmp` per environment: an ext4 image on a loop device.
//!
//! Lambda's `/tmp` is disk of the configured `EphemeralStorage` size, not RAM: a tmpfs would be
//! charged to the memory cgroup (pitfall 7), a plain directory has no size. So each size gets
//! one template image, made once with `mkfs.ext4` (its reserved blocks set so that the
//! unprivileged function user can write just the configured size, no `lost+found`, mode 1777),
//! and each environment gets a sparse copy of it on a loop device (`LOOP_CONFIGURE` with
//! `LO_FLAGS_AUTOCLEAR`). The copy is unlinked as soon as the device holds it: the device
//! detaches itself when its last user (the environment's mount, our descriptor) is gone, and
//! the kernel frees the file then. Nothing is left behind, not even by a crashed server.
//!
//! Copying, attaching and mounting take a few milliseconds, so a background thread keeps a few
//! images of each size in use ready ([`POOL_PER_SIZE`]), attached and mounted as detached
//! mounts (`fsmount`, in no mount table): a cold start only moves one to its `/tmp`.

use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, PoisonError};

use super::refill::Refill;

/// `LOOP_CTL_GET_FREE` (linux/loop.h).
const LOOP_CTL_GET_FREE: libc::c_ulong = 0x4C82;
/// `LOOP_CONFIGURE` (5.8+).
const LOOP_CONFIGURE: libc::c_ulong = 0x4C0A;
/// `LOOP_SET_FD`, `LOOP_SET_STATUS64`, `LOOP_CLR_FD`: the pre-5.8 way.
const LOOP_SET_FD: libc::c_ulong = 0x4C00;
const LOOP_SET_STATUS64: libc::c_ulong = 0x4C04;
const LOOP_CLR_FD: libc::c_ulong = 0x4C01;
/// `LO_FLAGS_AUTOCLEAR`: detach when the last reference goes.
const LO_FLAGS_AUTOCLEAR: u32 = 4;
/// ext4 keeps up to this many blocks back for its own metadata beyond the reserved count.
const EXT4_SLACK_BLOCKS: u64 = 4096;
/// Attached images kept ready per size once that size has been used.
const POOL_PER_SIZE: usize = 2;

/// `struct loop_info64`.
#[repr(C)]
struct LoopInfo64 {
    lo_device: u64,
    lo_inode: u64,
    lo_rdevice: u64,
    lo_offset: u64,
    lo_sizelimit: u64,
    lo_number: u32,
    lo_encrypt_type: u32,
    lo_encrypt_key_size: u32,
    lo_flags: u32,
    lo_file_name: [u8; 64],
    lo_crypt_name: [u8; 64],
    lo_encrypt_key: [u8; 32],
    lo_init: [u64; 2],
}

/// `struct loop_config`.
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

fn autoclear_info() -> LoopInfo64 {
    LoopInfo64 {
        lo_device: 0,
        lo_inode: 0,
        lo_rdevice: 0,
        lo_offset: 0,
        lo_sizelimit: 0,
        lo_number: 0,
        lo_encrypt_type: 0,
        lo_encrypt_key_size: 0,
        lo_flags: LO_FLAGS_AUTOCLEAR,
        lo_file_name: [0; 64],
        lo_crypt_name: [0; 64],
        lo_encrypt_key: [0; 32],
        lo_init: [0; 2],
    }
}

/// An attached loop device holding one environment's `/tmp` image. Dropping it closes our
/// reference; the device detaches once the environment's mount is gone too.
#[derive(Debug)]
pub(super) struct LoopTmp {
    /// `/dev/loopN`, to mount in the environment's mount namespace.
    pub device: PathBuf,
    _fd: OwnedFd,
    /// The filesystem already mounted, but attached nowhere (`fsmount`): the environment moves
    /// it to its `/tmp` (`move_mount`, microseconds) instead of mounting the device on its cold
    /// start (about a millisecond). `None` where the new mount API is missing.
    pub mount: Option<OwnedFd>,
}

impl LoopTmp {
    /// Mount the image where no one sees it yet; see [`LoopTmp::mount`].
    fn premount(&mut self) {
        use rustix::mount::{
            fsconfig_create, fsconfig_set_string, fsmount, fsopen, FsMountFlags, FsOpenFlags,
            MountAttrFlags,
        };
        let mounted = (|| -> io::Result<OwnedFd> {
            let fs = fsopen("ext4", FsOpenFlags::FSOPEN_CLOEXEC)?;
            fsconfig_set_string(&fs, "source", &self.device)?;
            fsconfig_create(&fs)?;
            let attributes = MountAttrFlags::MOUNT_ATTR_NOSUID
                | MountAttrFlags::MOUNT_ATTR_NODEV
                | MountAttrFlags::MOUNT_ATTR_NOATIME;
            Ok(fsmount(&fs, FsMountFlags::FSMOUNT_CLOEXEC, attributes)?)
        })();
        match mounted {
            Ok(fd) => self.mount = Some(fd),
            Err(error) => {
                tracing::debug!(%error, "no detached mount for a /tmp image; it is mounted at spawn")
            }
        }
    }
}

/// Template images per size, and the directory per-environment copies are made in.
#[derive(Debug)]
pub(super) struct TmpImages {
    dir: PathBuf,
    uid: u32,
    gid: u32,
    templates: Mutex<HashMap<u32, Arc<Mutex<Option<PathBuf>>>>>,
    /// Attached images ready to hand out, by size.
    ready: Mutex<HashMap<u32, Vec<LoopTmp>>>,
    /// Tops up the size it is sent.
    refill: Refill<u32>,
    /// Names the copies.
    counter: std::sync::atomic::AtomicU64,
}

impl TmpImages {
    /// Images under `root/<pid>-images` (several servers may share a state directory);
    /// `None` when this host cannot attach loop devices or lacks `mkfs.ext4` (the caller
    /// falls back to an unlimited directory and says so).
    pub(super) fn probe(root: &Path, uid: u32, gid: u32) -> Option<TmpImages> {
        let usable = Path::new("/dev/loop-control").exists()
            && ["mkfs.ext4", "dumpe2fs", "tune2fs", "debugfs"]
                .iter()
                .all(|tool| find_tool(tool).is_some());
        if !usable {
            return None;
        }
        // What servers that are gone left behind (templates, a copy caught mid-attach).
        for entry in super::orphaned_entries(root) {
            let _ = fs::remove_dir_all(entry.path());
        }
        let dir = root.join(format!("{}-images", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::DirBuilder::new()
            .mode(0o700)
            .recursive(true)
            .create(&dir)
            .ok()?;
        let images = TmpImages {
            dir,
            uid,
            gid,
            templates: Mutex::new(HashMap::new()),
            ready: Mutex::new(HashMap::new()),
            refill: Refill::new(),
            counter: std::sync::atomic::AtomicU64::new(0),
        };
        // One real attach proves the whole path (loop devices may exist but be refused).
        match images.attach_new(1) {
            Ok(_) => Some(images),
            Err(e) => {
                tracing::debug!(error = %e, "loop-mounted /tmp images unavailable");
                None
            }
        }
    }

    /// A fresh `/tmp` image of `mb` MB on a loop device: a ready one if there is, and the
    /// pool of that size is topped up in the background.
    pub(super) fn attach(&'static self, mb: u32) -> io::Result<LoopTmp> {
        let ready = self
            .ready
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_mut(&mb)
            .and_then(Vec::pop);
        let image = match ready {
            Some(image) => image,
            None => self.attach_new(mb)?,
        };
        self.request_refill(mb);
        Ok(image)
    }

    fn request_refill(&'static self, mb: u32) {
        self.refill.request("nimbus-tmp-images", mb, |mb| {
            self.top_up(mb);
            true
        });
    }

    fn top_up(&self, mb: u32) {
        loop {
            let have = self
                .ready
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get(&mb)
                .map_or(0, Vec::len);
            if have >= POOL_PER_SIZE {
                return;
            }
            match self.attach_new(mb) {
                Ok(image) => self
                    .ready
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .entry(mb)
                    .or_default()
                    .push(image),
                Err(e) => {
                    tracing::warn!(error = %e, mb, "could not prepare a /tmp image");
                    return;
                }
            }
        }
    }

    /// Copy the template of `mb` and attach the copy.
    fn attach_new(&self, mb: u32) -> io::Result<LoopTmp> {
        let template = self.template(mb)?;
        let n = self
            .counter
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let copy = self.dir.join(format!("image-{n}.img"));
        let attached = sparse_copy(&template, &copy).and_then(|()| {
            let image = OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_CLOEXEC)
                .open(&copy)?;
            let mut attached = attach_loop(&image)?;
            attached.premount();
            Ok(attached)
        });
        // The device holds the file open from here on; the name is not needed any more.
        let _ = fs::remove_file(&copy);
        attached
    }

    /// The template for `mb`, made on first use (concurrent first uses wait for one maker).
    fn template(&self, mb: u32) -> io::Result<PathBuf> {
        let slot = {
            let mut map = self
                .templates
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            Arc::clone(map.entry(mb).or_default())
        };
        let mut slot = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(path) = slot.as_ref() {
            return Ok(path.clone());
        }
        let path = self.dir.join(format!("template-{mb}.img"));
        let staging = self.dir.join(format!("template-{mb}.img.tmp"));
        let made = make_template(&staging, mb, self.uid, self.gid)
            .and_then(|()| fs::rename(&staging, &path));
        if let Err(e) = made {
            let _ = fs::remove_file(&staging);
            return Err(e);
        }
        *slot = Some(path.clone());
        Ok(path)
    }
}

/// `mkfs.ext4` an image big enough that, after ext4's own overhead, `mb` MB are writable by
/// the (unprivileged) function user, and reserve the rest for root.
fn make_template(path: &Path, mb: u32, uid: u32, gid: u32) -> io::Result<()> {
    let mb = u64::from(mb);
    let size_mb = mb + mb / 16 + 24;
    File::create(path)?.set_len(size_mb << 20)?;
    run(Command::new(tool("mkfs.ext4")?)
        .args(["-q", "-F", "-m", "0", "-b", "4096"])
        .args(["-O", "^has_journal,^resize_inode"])
        .arg("-E")
        .arg(format!("lazy_itable_init=1,root_owner={uid}:{gid}"))
        .arg(path))?;
    let header = run(Command::new(tool("dumpe2fs")?).arg("-h").arg(path))?;
    let free: u64 = header
        .lines()
        .find_map(|line| line.strip_prefix("Free blocks:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or_else(|| io::Error::other("dumpe2fs did not report the free blocks"))?;
    let reserved = free.saturating_sub(mb * 256 + EXT4_SLACK_BLOCKS);
    run(Command::new(tool("tune2fs")?)
        .arg("-r")
        .arg(reserved.to_string())
        .arg(path))?;
    // Lambda's /tmp starts empty and is writable by the function.
    run(Command::new(tool("debugfs")?)
        .args(["-w", "-R", "rmdir lost+found"])
        .arg(path))?;
    run(Command::new(tool("debugfs")?)
        .args(["-w", "-R", "sif / mode 041777"])
        .arg(path))?;
    Ok(())
}

fn find_tool(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
}

fn tool(name: &str) -> io::Result<PathBuf> {
    find_tool(name)
        .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{name} not found")))
}

/// Run a tool to completion; its stdout, or an error with its stderr.
fn run(command: &mut Command) -> io::Result<String> {
    let output = command.env_clear().output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "{:?} failed: {}",
            command.get_program(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Copy only the data extents of `from` (a mostly empty image) into a new sparse file.
fn sparse_copy(from: &Path, to: &Path) -> io::Result<()> {
    let source = File::open(from)?;
    let target = OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(to)?;
    let len = source.metadata()?.len();
    target.set_len(len)?;
    let (src, dst) = (source.as_raw_fd(), target.as_raw_fd());
    let mut offset: libc::off_t = 0;
    let end = libc::off_t::try_from(len).map_err(io::Error::other)?;
    while offset < end {
        // SAFETY: plain lseek on an fd we own.
        let data = unsafe { libc::lseek(src, offset, libc::SEEK_DATA) };
        if data < 0 {
            let err = io::Error::last_os_error();
            if err.raw_os_error() == Some(libc::ENXIO) {
                break; // only a hole remains
            }
            return Err(err);
        }
        // SAFETY: as above.
        let hole = unsafe { libc::lseek(src, data, libc::SEEK_HOLE) };
        if hole < 0 {
            return Err(io::Error::last_os_error());
        }
        let (mut from_off, mut to_off) = (data, data);
        while from_off < hole {
            let chunk = usize::try_from(hole - from_off).map_err(io::Error::other)?;
            // SAFETY: copy_file_range between two fds we own, with offsets we own.
            let copied =
                unsafe { libc::copy_file_range(src, &mut from_off, dst, &mut to_off, chunk, 0) };
            if copied < 0 {
                return Err(io::Error::last_os_error());
            }
            if copied == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "image shrank while copied",
                ));
            }
        }
        offset = hole;
    }
    Ok(())
}

/// Attach `image` to a free loop device that detaches itself when no longer used.
fn attach_loop(image: &File) -> io::Result<LoopTmp> {
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open("/dev/loop-control")?;
    // Another process can take the free device between the two calls: try again then.
    for _ in 0..16 {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number.
        let n = unsafe { libc::ioctl(control.as_raw_fd(), LOOP_CTL_GET_FREE as _) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let device = PathBuf::from(format!("/dev/loop{n}"));
        let dev = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&device)?;
        let config = LoopConfig {
            fd: u32::try_from(image.as_raw_fd()).map_err(io::Error::other)?,
            block_size: 0,
            info: autoclear_info(),
            reserved: [0; 8],
        };
        // SAFETY: LOOP_CONFIGURE reads a `struct loop_config` that lives across the call.
        let r = unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_CONFIGURE as _, &config) };
        if r == 0 {
            return Ok(LoopTmp {
                device,
                _fd: dev.into(),
                mount: None,
            });
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EBUSY) => continue,
            Some(libc::EINVAL) | Some(libc::ENOTTY) => {
                return legacy_attach(dev, device, image);
            }
            _ => return Err(err),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::ResourceBusy,
        "no free loop device",
    ))
}

/// Kernels before 5.8: `LOOP_SET_FD`, then the flags with `LOOP_SET_STATUS64`.
fn legacy_attach(dev: File, device: PathBuf, image: &File) -> io::Result<LoopTmp> {
    // SAFETY: LOOP_SET_FD takes the backing file's fd by value.
    if unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_SET_FD as _, image.as_raw_fd()) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let info = autoclear_info();
    // SAFETY: LOOP_SET_STATUS64 reads a `struct loop_info64` that lives across the call.
    if unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_SET_STATUS64 as _, &info) } < 0 {
        let err = io::Error::last_os_error();
        // SAFETY: undo the attach on our own device fd.
        unsafe { libc::ioctl(dev.as_raw_fd(), LOOP_CLR_FD as _, 0) };
        return Err(err);
    }
    // SAFETY: `dev` is an open file we own; its fd moves into the OwnedFd.
    let fd = unsafe { OwnedFd::from_raw_fd(std::os::fd::IntoRawFd::into_raw_fd(dev)) };
    Ok(LoopTmp {
        device,
        _fd: fd,
        mount: None,
    })
}
