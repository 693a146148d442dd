//! Code packages (zip archives) from untrusted callers: inspection before anything is stored, and
//! the one routine allowed to turn a package into files.
//!
//! [`inspect`] proves a package is safe without writing anything: every entry stays inside the
//! package, nothing is listed twice, symlinks point inside, and the archive really decompresses
//! (CRCs included) to at most [`UNZIPPED_MAX_BYTES`]. Headers are never trusted on their own.
//!
//! [`unpack`] is deliberately the only file I/O in this crate: it is the single audited extraction
//! routine, and every later caller that materialises a package (execution environments) must use
//! it rather than a general-purpose unzipper. It re-runs every check of [`inspect`] before writing.

use std::collections::HashSet;
use std::fmt::Display;
use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::io::{self, Cursor, Write};
use std::path::{Path, PathBuf};

use thiserror::Error;
use zip::read::ZipFile;
use zip::{CompressionMethod, ZipArchive};

use crate::error::ServiceError;
use crate::limits::{
    UNZIPPED_MAX_BYTES, ZIP_MAX_BYTES, ZIP_MAX_ENTRIES, ZIP_MAX_RATIO, ZIP_RATIO_MIN_BYTES,
};

const PREFIX: &str = "Could not unzip uploaded file. ";
const UNREADABLE: &str =
    "Could not unzip uploaded file. Please check your file, then try to upload again.";
/// Linux's PATH_MAX: a longer symlink target or entry name cannot be used anyway.
const PATH_MAX_BYTES: usize = 4096;
/// Linux's NAME_MAX.
const COMPONENT_MAX_BYTES: usize = 255;
const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFREG: u32 = 0o100_000;
const S_IFLNK: u32 = 0o120_000;
/// Hash of the package root in the path hashes of [`child_hash`].
const ROOT_HASH: u64 = 0;

/// What inspection learned about a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackageInfo {
    /// Number of entries: files, directories and symlinks.
    pub entries: usize,
    /// Bytes of regular-file content after decompression (measured, not taken from headers).
    pub unzipped_size: u64,
}

/// Why [`unpack`] failed.
#[derive(Debug, Error)]
pub enum UnpackError {
    /// The package breaks a rule of [`inspect`]; nothing was written.
    #[error(transparent)]
    Invalid(#[from] ServiceError),
    /// Writing failed (disk full, `dest` missing or not empty, ...); `dest` may hold part of
    /// the package and should be discarded.
    #[error("could not unpack the package: {0}")]
    Io(#[from] io::Error),
}

/// Check a zip from an untrusted caller without writing anything anywhere.
///
/// Every failure is an `InvalidParameterValueException` whose message starts the way AWS's does,
/// except a zip over [`ZIP_MAX_BYTES`], which is `RequestEntityTooLargeException`.
pub fn inspect(zip: &[u8]) -> Result<PackageInfo, ServiceError> {
    inspect_with_limits(zip, &Limits::REAL)
}

/// Unpack a package that passed [`inspect`] into `dest` (an existing empty directory), never
/// writing outside it.
///
/// Re-checks everything [`inspect`] checks (it never trusts that `inspect` was called), so an
/// invalid package leaves `dest` untouched. Regular files keep their permission bits without
/// setuid, setgid and sticky; directories get default permissions so that a read-only directory
/// cannot lock extraction out; symlinks are created last, and only with targets inside `dest`.
pub fn unpack(zip: &[u8], dest: &Path) -> Result<PackageInfo, UnpackError> {
    unpack_with_limits(zip, dest, &Limits::REAL)
}

/// The quotas applied, separate from the constants so tests can exercise them cheaply.
#[derive(Debug, Clone, Copy)]
struct Limits {
    zipped: u64,
    unzipped: u64,
    entries: usize,
    ratio: u64,
    ratio_min_size: u64,
}

impl Limits {
    const REAL: Self = Self {
        zipped: ZIP_MAX_BYTES,
        unzipped: UNZIPPED_MAX_BYTES,
        entries: ZIP_MAX_ENTRIES,
        ratio: ZIP_MAX_RATIO,
        ratio_min_size: ZIP_RATIO_MIN_BYTES,
    };
}

type Archive<'a> = ZipArchive<Cursor<&'a [u8]>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Dir,
    File { mode: u32 },
    Symlink,
}

#[derive(Debug)]
struct Entry {
    index: usize,
    /// Normalized relative path: components joined by '/', no '.', '..' or empty components
    /// ("" only for a directory entry naming the root itself, such as "./").
    path: String,
    kind: Kind,
    /// Uncompressed size from the central directory; the real content must match it exactly.
    size: u64,
}

/// A package that passed every check, with what extraction needs.
struct Checked<'a> {
    archive: Archive<'a>,
    entries: Vec<Entry>,
    /// Path hashes of the symlink entries.
    links: HashSet<u64>,
    info: PackageInfo,
}

fn invalid(reason: impl Display) -> ServiceError {
    ServiceError::InvalidParameterValue(format!("{PREFIX}{reason}"))
}

/// Returns an `InvalidParameterValue` error with the AWS prefix and a formatted reason.
macro_rules! reject {
    ($($reason:tt)*) => { return Err(invalid(format_args!($($reason)*))) };
}

fn unreadable() -> ServiceError {
    ServiceError::InvalidParameterValue(UNREADABLE.to_owned())
}

fn too_big(limits: &Limits) -> ServiceError {
    invalid(format_args!(
        "Unzipped size must be smaller than {} bytes",
        limits.unzipped
    ))
}

/// A name from the archive as it may appear in a message: quoted, escaped and cut short. Lazy,
/// so that checking an entry costs nothing until it fails.
struct Shown<'a>(&'a str);

impl Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const MAX_CHARS: usize = 200;
        let mut escaped = self.0.escape_debug();
        let head: String = escaped.by_ref().take(MAX_CHARS).collect();
        let more = if escaped.next().is_some() { "…" } else { "" };
        write!(f, "'{head}{more}'")
    }
}

fn is_absolute(name: &str) -> bool {
    name.starts_with(['/', '\\'])
        || matches!(name.as_bytes(), [d, b':', ..] if d.is_ascii_alphabetic())
}

fn inspect_with_limits(zip: &[u8], limits: &Limits) -> Result<PackageInfo, ServiceError> {
    check(zip, limits).map(|checked| checked.info)
}

/// Runs every check: headers first (cheap, and enough to refuse most bad packages before any
/// decompression), then the real content of every entry.
fn check<'a>(zip: &'a [u8], limits: &Limits) -> Result<Checked<'a>, ServiceError> {
    if u64::try_from(zip.len()).map_or(true, |len| len > limits.zipped) {
        let max = limits.zipped;
        return Err(ServiceError::RequestTooLarge(format!(
            "{PREFIX}Zipped size must be smaller than {max} bytes"
        )));
    }
    let mut archive = ZipArchive::new(Cursor::new(zip)).map_err(|_| unreadable())?;
    let records = central_records(zip, archive.central_directory_start());
    if records.count.max(archive.len()) > limits.entries {
        reject!(
            "The package must contain at most {} entries",
            limits.entries
        );
    }
    if let Some(name) = records.duplicate {
        reject!("Entry {} appears more than once", Shown(&name));
    }
    // The zip crate keys entries by decoded name and silently drops repeats; a record it does not
    // surface would be content nobody checked.
    if records.count != archive.len() {
        return Err(unreadable());
    }

    let mut entries = Vec::with_capacity(archive.len());
    let mut declared: u64 = 0;
    for index in 0..archive.len() {
        let file = archive.by_index_raw(index).map_err(|_| unreadable())?;
        let entry = describe(&file, index, limits)?;
        declared = declared.saturating_add(entry.size);
        if declared > limits.unzipped {
            return Err(too_big(limits));
        }
        entries.push(entry);
    }
    if !entries.iter().any(|e| matches!(e.kind, Kind::File { .. })) {
        reject!("The package contains no files; a function needs code to run");
    }
    check_layout(&entries)?;
    let links = entries
        .iter()
        .filter(|e| e.kind == Kind::Symlink)
        .map(|e| path_hash(&e.path))
        .collect();

    let unzipped_size =
        extract(&mut archive, &entries, &links, None, limits).map_err(|err| match err {
            UnpackError::Invalid(err) => err,
            // Without a destination only reading can fail.
            UnpackError::Io(_) => unreadable(),
        })?;
    let info = PackageInfo {
        entries: entries.len(),
        unzipped_size,
    };
    Ok(Checked {
        archive,
        entries,
        links,
        info,
    })
}

/// The central directory as written: how many records it holds, and the first raw name repeated.
struct CentralRecords {
    count: usize,
    duplicate: Option<String>,
}

fn central_records(zip: &[u8], start: u64) -> CentralRecords {
    const FIXED_LEN: usize = 46;
    let mut records = CentralRecords {
        count: 0,
        duplicate: None,
    };
    let mut names = HashSet::new();
    let mut pos = usize::try_from(start).unwrap_or(usize::MAX);
    let u16_at =
        |header: &[u8], at: usize| usize::from(u16::from_le_bytes([header[at], header[at + 1]]));
    while let Some(header) = zip.get(pos..pos.saturating_add(FIXED_LEN)) {
        if !header.starts_with(b"PK\x01\x02") {
            break;
        }
        let name_start = pos + FIXED_LEN;
        let Some(name) = zip.get(name_start..name_start + u16_at(header, 28)) else {
            break;
        };
        if !names.insert(name) && records.duplicate.is_none() {
            records.duplicate = Some(String::from_utf8_lossy(name).into_owned());
        }
        records.count += 1;
        pos = name_start + name.len() + u16_at(header, 30) + u16_at(header, 32);
    }
    records
}

/// Checks one entry's header (no decompression) and classifies it.
fn describe(
    file: &ZipFile<'_, Cursor<&[u8]>>,
    index: usize,
    limits: &Limits,
) -> Result<Entry, ServiceError> {
    let name = file.name();
    let path = normalize(name, file.name_raw())?;
    let who = Shown(name);
    if file.encrypted() {
        reject!("Entry {who} is encrypted; encrypted entries are not supported");
    }
    let method = file.compression();
    if !matches!(
        method,
        CompressionMethod::Stored | CompressionMethod::Deflated
    ) {
        reject!("Entry {who} uses an unsupported compression method ({method}); use deflate");
    }
    let mode = file.unix_mode().unwrap_or(0);
    let dir_name = name.ends_with(['/', '\\']);
    let kind = match mode & S_IFMT {
        S_IFLNK if !dir_name => Kind::Symlink,
        S_IFDIR => Kind::Dir,
        0 | S_IFREG if dir_name => Kind::Dir,
        // No permission bits at all means the archiver recorded none, not "no access".
        0 | S_IFREG => Kind::File {
            mode: Some(mode & 0o777).filter(|&m| m != 0).unwrap_or(0o644),
        },
        _ => reject!("Entry {who} is not a regular file, directory or symlink"),
    };
    if path.is_empty() && kind != Kind::Dir {
        reject!("Entry {who} has no file name");
    }
    let (size, packed) = (file.size(), file.compressed_size());
    if kind == Kind::Dir && size > 0 {
        reject!("Directory entry {who} has content");
    }
    if kind == Kind::Symlink && size > PATH_MAX_BYTES as u64 {
        reject!("Symlink {who} has a target longer than {PATH_MAX_BYTES} bytes");
    }
    // Small entries cannot exhaust anything, and a few-MB file of zeros is a legitimate
    // (if odd) thing to ship; the ratio rule is for entries big enough to matter.
    if size > limits.ratio_min_size && size > packed.saturating_mul(limits.ratio) {
        let ratio = limits.ratio;
        reject!("Entry {who} expands more than {ratio}:1 ({size} from {packed} bytes): a zip bomb");
    }
    Ok(Entry {
        index,
        path,
        kind,
        size,
    })
}

/// Turns an entry name into a relative path that cannot leave the package root.
fn normalize(name: &str, raw: &[u8]) -> Result<String, ServiceError> {
    let who = Shown(name);
    if raw.is_empty() {
        reject!("An entry has an empty name");
    }
    if raw.contains(&0) || name.contains('\0') {
        reject!("Entry {who} has a NUL byte in its name");
    }
    if name.len() > PATH_MAX_BYTES {
        reject!("Entry {who} has a name longer than {PATH_MAX_BYTES} bytes");
    }
    if is_absolute(name) {
        reject!("Entry {who} has an absolute path");
    }
    let mut path = String::with_capacity(name.len());
    // Backslashes are separators too: Windows archivers write them, and "..\\x" must not mean
    // one thing here and another to some other unzipper.
    for part in name
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
    {
        if part == ".." {
            reject!("Entry {who} has a '..' component that leaves the package");
        }
        if part.len() > COMPONENT_MAX_BYTES {
            reject!("Entry {who} has a path component longer than {COMPONENT_MAX_BYTES} bytes");
        }
        if !path.is_empty() {
            path.push('/');
        }
        path.push_str(part);
    }
    Ok(path)
}

/// Rejects duplicate paths and entries placed inside a file or symlink.
///
/// Sorting with '/' mapped to NUL (which names never contain) puts every path directly before its
/// own descendants, so comparing neighbours finds both problems without building every prefix of
/// every path (quadratic in the depth for hostile names).
fn check_layout(entries: &[Entry]) -> Result<(), ServiceError> {
    let mut keys: Vec<(String, usize)> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.path.replace('/', "\0"), i))
        .collect();
    keys.sort_unstable();
    for pair in keys.windows(2) {
        let [(a, first), (b, second)] = pair else {
            continue;
        };
        let (first, second) = (&entries[*first], &entries[*second]);
        if a == b {
            reject!("Entry {} appears more than once", Shown(&first.path));
        }
        if first.kind != Kind::Dir
            && b.starts_with(a.as_str())
            && b.as_bytes().get(a.len()) == Some(&0)
        {
            reject!(
                "Entry {} is inside {}, which is not a directory",
                Shown(&second.path),
                Shown(&first.path)
            );
        }
    }
    Ok(())
}

fn child_hash(parent: u64, part: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    (parent, part).hash(&mut hasher);
    hasher.finish()
}

fn path_hash(path: &str) -> u64 {
    path.split('/').fold(ROOT_HASH, child_hash)
}

/// Checks a symlink's target and returns it with '/' separators, as it is to be created.
///
/// The target is resolved lexically from the link's directory. That is only sound if the walk
/// never steps through another symlink ("d/up/../.." escapes when d/up -> ".."), so doing so is
/// refused; ending on a symlink is fine, as that link is checked itself. Symlinks are recognised
/// by path hash: a collision can only refuse a package, never admit one.
fn link_target(path: &str, raw: &[u8], links: &HashSet<u64>) -> Result<String, ServiceError> {
    let who = Shown(path);
    let Ok(target) = std::str::from_utf8(raw) else {
        reject!("Symlink {who} has a target that is not UTF-8");
    };
    if target.is_empty() || target.contains('\0') {
        reject!("Symlink {who} has an empty or malformed target");
    }
    let shown_target = Shown(target);
    if is_absolute(target) {
        reject!("Symlink {who} points to an absolute path ({shown_target})");
    }
    // Path hashes of the directories between the root (excluded) and the current position.
    let mut stack: Vec<u64> = Vec::new();
    let parent = path.rsplit_once('/').map_or("", |(parent, _)| parent);
    for part in parent.split('/').filter(|p| !p.is_empty()) {
        stack.push(child_hash(stack.last().copied().unwrap_or(ROOT_HASH), part));
    }
    let mut normalized = String::with_capacity(target.len());
    // As in entry names, a backslash separates: the kernel would read "..\\x" as one odd name,
    // but the target is rewritten with '/' below, so the check must see what gets created.
    for part in target
        .split(['/', '\\'])
        .filter(|p| !p.is_empty() && *p != ".")
    {
        let here = stack.last().copied().unwrap_or(ROOT_HASH);
        if links.contains(&here) {
            reject!("Symlink {who} resolves through another symlink ({shown_target})");
        }
        if part != ".." {
            stack.push(child_hash(here, part));
        } else if stack.pop().is_none() {
            reject!("Symlink {who} points outside the package ({shown_target})");
        }
        if !normalized.is_empty() {
            normalized.push('/');
        }
        normalized.push_str(part);
    }
    if normalized.is_empty() {
        normalized.push('.');
    }
    Ok(normalized)
}

/// Which limit a [`Limited`] writer hit.
#[derive(Debug, Clone, Copy)]
enum Exceeded {
    Entry,
    Archive,
}

/// A writer that counts what passes through and refuses to go past the entry's declared size or
/// the archive's remaining budget, so a lying header costs at most the limit in CPU and nothing
/// in memory.
struct Limited<'b, W> {
    inner: W,
    written: u64,
    entry_max: u64,
    budget: &'b mut u64,
    exceeded: Option<Exceeded>,
    inner_failed: bool,
}

impl<W: Write> Write for Limited<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let len = buf.len() as u64;
        if self.written.saturating_add(len) > self.entry_max {
            self.exceeded = Some(Exceeded::Entry);
        } else if len > *self.budget {
            self.exceeded = Some(Exceeded::Archive);
        }
        if self.exceeded.is_some() {
            return Err(io::Error::other("package limit exceeded"));
        }
        let n = self
            .inner
            .write(buf)
            .inspect_err(|_| self.inner_failed = true)?;
        self.written += n as u64;
        *self.budget = self.budget.saturating_sub(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().inspect_err(|_| self.inner_failed = true)
    }
}

/// Decompresses one entry into `out`, verifying its CRC and that its real size is the declared
/// one; returns the bytes written.
fn copy_entry<W: Write>(
    archive: &mut Archive<'_>,
    entry: &Entry,
    out: W,
    budget: &mut u64,
    limits: &Limits,
) -> Result<u64, UnpackError> {
    let who = Shown(&entry.path);
    let corrupt = |reason: &dyn Display| invalid(format_args!("Entry {who} is corrupt: {reason}"));
    let mut reader = archive.by_index(entry.index).map_err(|e| corrupt(&e))?;
    let mut sink = Limited {
        inner: out,
        written: 0,
        entry_max: entry.size,
        budget,
        exceeded: None,
        inner_failed: false,
    };
    if let Err(err) = io::copy(&mut reader, &mut sink).and_then(|_| sink.flush()) {
        return Err(match sink.exceeded {
            Some(Exceeded::Entry) => invalid(format_args!(
                "Entry {who} is larger than its header says ({} bytes): corrupt or a zip bomb",
                entry.size
            )),
            Some(Exceeded::Archive) => too_big(limits),
            None if sink.inner_failed => return Err(UnpackError::Io(err)),
            None => corrupt(&err),
        }
        .into());
    }
    if sink.written != entry.size {
        let reason = format!(
            "{} bytes of content where its header says {}",
            sink.written, entry.size
        );
        return Err(corrupt(&reason).into());
    }
    Ok(sink.written)
}

fn unpack_with_limits(
    zip: &[u8],
    dest: &Path,
    limits: &Limits,
) -> Result<PackageInfo, UnpackError> {
    let Checked {
        mut archive,
        entries,
        links,
        info,
    } = check(zip, limits)?;
    // Only an empty dest guarantees that every symlink below it is one this function made.
    if fs::read_dir(dest)?.next().is_some() {
        return Err(io::Error::new(
            io::ErrorKind::DirectoryNotEmpty,
            "unpack needs an empty directory",
        )
        .into());
    }
    extract(&mut archive, &entries, &links, Some(dest), limits)?;
    Ok(info)
}

/// Decompresses every entry, holding its real content to its header and the limits, and writes
/// it under `dest` if given; returns the bytes of regular-file content.
fn extract(
    archive: &mut Archive<'_>,
    entries: &[Entry],
    links: &HashSet<u64>,
    dest: Option<&Path>,
    limits: &Limits,
) -> Result<u64, UnpackError> {
    let mut budget = limits.unzipped;
    let mut unzipped_size = 0;
    // Symlinks come last so that no other write can be redirected through one; `real_dir` still
    // refuses to pass through any, in case the file system sees two names as one.
    let (symlinks, others): (Vec<&Entry>, Vec<&Entry>) =
        entries.iter().partition(|e| e.kind == Kind::Symlink);
    for entry in others.into_iter().chain(symlinks) {
        let (parent, name) = entry.path.rsplit_once('/').unwrap_or(("", &entry.path));
        let dir = match dest {
            Some(dest) if entry.kind == Kind::Dir => Some(real_dir(dest, &entry.path)?),
            Some(dest) => Some(real_dir(dest, parent)?),
            None => None,
        };
        match (entry.kind, dir) {
            (Kind::File { mode }, Some(dir)) => {
                // create_new neither follows nor replaces anything already at the path.
                let mut file = fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(dir.join(name))?;
                unzipped_size += copy_entry(archive, entry, &mut file, &mut budget, limits)?;
                set_mode(&file, mode)?;
            }
            (Kind::Symlink, dir) => {
                let mut raw = Vec::new();
                copy_entry(archive, entry, &mut raw, &mut budget, limits)?;
                let target = link_target(&entry.path, &raw, links)?;
                if let Some(dir) = dir {
                    make_symlink(&target, &dir.join(name))?;
                }
            }
            (Kind::File { .. }, None) => {
                unzipped_size += copy_entry(archive, entry, io::sink(), &mut budget, limits)?
            }
            // Directory content must be empty; reading it proves the header tells the truth.
            (Kind::Dir, _) => {
                copy_entry(archive, entry, io::sink(), &mut budget, limits)?;
            }
        }
    }
    Ok(unzipped_size)
}

/// Creates `rel` under `dest` one component at a time, refusing to pass through anything that is
/// not a real directory.
fn real_dir(dest: &Path, rel: &str) -> io::Result<PathBuf> {
    let mut dir = dest.to_path_buf();
    for part in rel.split('/').filter(|p| !p.is_empty()) {
        dir.push(part);
        match fs::symlink_metadata(&dir) {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => {
                let message = format!("{} exists and is not a directory", dir.display());
                return Err(io::Error::new(io::ErrorKind::NotADirectory, message));
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => fs::create_dir(&dir)?,
            Err(err) => return Err(err),
        }
    }
    Ok(dir)
}

#[cfg(unix)]
fn set_mode(file: &fs::File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(fs::Permissions::from_mode(mode & 0o777))
}

#[cfg(not(unix))]
fn set_mode(_file: &fs::File, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn make_symlink(target: &str, path: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, path)
}

#[cfg(not(unix))]
fn make_symlink(_target: &str, _path: &Path) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "packages with symlinks unpack only on unix",
    ))
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::atomic::{AtomicU64, Ordering};

    use zip::write::SimpleFileOptions;
    use zip::ZipWriter;

    use super::*;

    type Writer = ZipWriter<Cursor<Vec<u8>>>;
    type Added = zip::result::ZipResult<()>;

    fn build(add: impl FnOnce(&mut Writer) -> Added) -> Vec<u8> {
        let mut writer = ZipWriter::new(Cursor::new(Vec::new()));
        add(&mut writer).expect("the writer accepts the entries");
        writer.finish().expect("archive finishes").into_inner()
    }

    fn file_mode(w: &mut Writer, name: &str, content: &[u8], mode: u32) -> Added {
        let options = SimpleFileOptions::default().compression_method(CompressionMethod::Deflated);
        w.start_file(name, options.unix_permissions(mode))?;
        Ok(w.write_all(content)?)
    }

    fn file(w: &mut Writer, name: &str, content: &[u8]) -> Added {
        file_mode(w, name, content, 0o644)
    }

    fn link(w: &mut Writer, name: &str, target: &str) -> Added {
        w.add_symlink(name, target, SimpleFileOptions::default())
    }

    /// Offsets of entry `index`'s local header and central-directory record, for patching.
    fn headers(zip: &[u8], index: usize) -> (usize, usize) {
        let mut archive = ZipArchive::new(Cursor::new(zip)).expect("test archive opens");
        let entry = archive.by_index_raw(index).expect("entry exists");
        let offset = |at: u64| usize::try_from(at).expect("offset fits");
        (
            offset(entry.header_start()),
            offset(entry.central_header_start()),
        )
    }

    fn put_u32(zip: &mut [u8], at: usize, value: u32) {
        zip[at..at + 4].copy_from_slice(&value.to_le_bytes());
    }

    /// A fresh tree root/x/y/dest under the temp dir, removed on drop; `dest` sits deep enough
    /// that escapes like "../../x" would land inside root, where they are seen.
    struct Scratch {
        root: PathBuf,
        dest: PathBuf,
    }

    impl Scratch {
        fn new() -> Self {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let unique = format!(
                "nimbus-package-{}-{}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            );
            let root = std::env::temp_dir().join(unique);
            let dest = root.join("x/y/dest");
            fs::create_dir_all(&dest).expect("scratch dir is created");
            Self { root, dest }
        }

        fn names(dir: &Path) -> Vec<String> {
            let entries = fs::read_dir(dir).expect("scratch dir is readable");
            entries
                .map(|e| {
                    e.expect("dir entry")
                        .file_name()
                        .to_string_lossy()
                        .into_owned()
                })
                .collect()
        }

        fn nothing_outside_dest(&self) -> bool {
            Self::names(&self.root) == ["x"]
                && Self::names(&self.root.join("x")) == ["y"]
                && Self::names(&self.root.join("x/y")) == ["dest"]
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.root);
        }
    }

    /// Asserts that both functions refuse `zip` with a message containing `needle`, and that
    /// `unpack` wrote nothing at all.
    fn assert_rejected(zip: &[u8], needle: &str) {
        let err = inspect(zip).expect_err("package must be rejected");
        let ServiceError::InvalidParameterValue(message) = &err else {
            panic!("wrong error type: {err:?}")
        };
        assert!(
            message.starts_with(PREFIX) && message.contains(needle),
            "{message:?} lacks {needle:?}"
        );
        let scratch = Scratch::new();
        match unpack(zip, &scratch.dest) {
            Err(UnpackError::Invalid(again)) => assert_eq!(again, err),
            other => panic!("unpack must refuse too, got {other:?}"),
        }
        assert!(scratch.nothing_outside_dest() && Scratch::names(&scratch.dest).is_empty());
    }

    #[test]
    fn valid_package_is_inspected_and_unpacked() {
        let mut zip = build(|w| {
            w.add_directory("bin/", SimpleFileOptions::default())?;
            file_mode(w, "bootstrap", b"#!/bin/sh\necho hi\n", 0o755)?;
            file(
                w,
                "lib/node/index.js",
                b"exports.handler = async () => 1;\n",
            )?;
            file(w, "./lib//node/util.js", b"module.exports = {};\n")?;
            link(w, "bin/run", "../bootstrap")?;
            link(w, "lib/current", "node")
        });
        // setuid and sticky bits must not survive extraction.
        let (_, central) = headers(&zip, 1);
        put_u32(&mut zip, central + 38, (S_IFREG | 0o5755) << 16);

        let info = inspect(&zip).expect("valid package");
        assert_eq!(
            info,
            PackageInfo {
                entries: 6,
                unzipped_size: 18 + 33 + 21
            }
        );
        let scratch = Scratch::new();
        assert_eq!(unpack(&zip, &scratch.dest).expect("unpacks"), info);
        assert!(scratch.nothing_outside_dest());
        let dest = &scratch.dest;
        let read = |p: &str| fs::read_to_string(dest.join(p)).expect("file is there");
        assert_eq!(read("bin/run"), "#!/bin/sh\necho hi\n");
        assert_eq!(read("lib/current/util.js"), "module.exports = {};\n");
        assert_eq!(
            fs::read_link(dest.join("bin/run")).expect("link"),
            Path::new("../bootstrap")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &str| {
                fs::metadata(dest.join(p))
                    .expect("exists")
                    .permissions()
                    .mode()
                    & 0o7777
            };
            assert_eq!(
                (mode("bootstrap"), mode("lib/node/index.js")),
                (0o755, 0o644)
            );
        }
        // A destination that is not empty is refused before anything is written.
        assert!(matches!(unpack(&zip, dest), Err(UnpackError::Io(_))));
    }

    #[test]
    fn names_that_leave_the_package_are_rejected() {
        for name in ["../evil", "a/../../evil", "..\\evil", "a/.."] {
            assert_rejected(&build(|w| file(w, name, b"x")), "'..' component");
        }
        for name in ["/etc/evil", "\\evil", "C:\\evil"] {
            assert_rejected(&build(|w| file(w, name, b"x")), "absolute path");
        }
    }

    #[test]
    fn symlinks_must_stay_inside() {
        let with_link = |name, target| {
            build(|w| file(w, "index.js", b"1").and_then(|()| link(w, name, target)))
        };
        assert_rejected(&with_link("passwd", "/etc/passwd"), "absolute path");
        assert_rejected(&with_link("a/out", "../../outside"), "outside the package");
        assert_rejected(&with_link("out", "..\\outside"), "outside the package");
        assert_rejected(&with_link("empty", ""), "empty or malformed target");
        inspect(&with_link("a/b/ok", "../../index.js")).expect("inner link is fine");
        inspect(&with_link("root", ".")).expect("a link to the root is fine");

        // d/up is the root itself, so "d/up/../.." is the root's parent.
        let chained = build(|w| {
            file(w, "index.js", b"1")?;
            link(w, "d/up", "..")?;
            link(w, "top", "d/up/../..")
        });
        assert_rejected(&chained, "through another symlink");
        let under_link = build(|w| link(w, "l", "d").and_then(|()| file(w, "l/evil", b"x")));
        assert_rejected(&under_link, "which is not a directory");
    }

    #[test]
    fn duplicates_are_rejected() {
        for (a, b) in [("a/b", "./a/b"), ("a/b", "a//b"), ("a\\b", "a/b")] {
            let zip = build(|w| file(w, a, b"1").and_then(|()| file(w, b, b"2")));
            assert_rejected(&zip, "'a/b' appears more than once");
        }
        let dir = SimpleFileOptions::default();
        assert_rejected(
            &build(|w| file(w, "a", b"1").and_then(|()| w.add_directory("a/", dir))),
            "more than once",
        );
        assert_rejected(
            &build(|w| file(w, "a", b"1").and_then(|()| file(w, "a/b", b"2"))),
            "not a directory",
        );

        // Byte-identical names, which the zip crate itself would silently merge into one.
        let mut zip = build(|w| file(w, "a/b", b"1").and_then(|()| file(w, "a/c", b"2")));
        let (local, central) = headers(&zip, 1);
        zip[local + 30 + 2] = b'b';
        zip[central + 46 + 2] = b'b';
        assert_rejected(&zip, "'a/b' appears more than once");
    }

    #[test]
    fn unreadable_and_empty_archives_are_rejected() {
        for body in [&b""[..], b"not a zip at all", b"PK\x03\x04garbage"] {
            assert_eq!(inspect(body), Err(unreadable()));
        }
        let mut zip = build(|w| file(w, "index.js", &[b'x'; 1000]));
        let (local, _) = headers(&zip, 0);
        zip[local + 40] ^= 0xff; // inside the compressed data
        assert_rejected(&zip, "'index.js' is corrupt");

        assert_rejected(&build(|_| Ok(())), "contains no files");
        assert_rejected(
            &build(|w| w.add_directory("d/", SimpleFileOptions::default())),
            "contains no files",
        );
    }

    #[test]
    fn encrypted_and_foreign_entries_are_rejected() {
        let zip = build(|w| file(w, "index.js", b"1"));
        let (local, central) = headers(&zip, 0);
        let patched = |patch: &dyn Fn(&mut Vec<u8>)| {
            let mut zip = zip.clone();
            patch(&mut zip);
            zip
        };
        let encrypted =
            patched(&|z| (z[local + 6], z[central + 8]) = (z[local + 6] | 1, z[central + 8] | 1));
        assert_rejected(&encrypted, "encrypted entries are not supported");
        let bzip2 = patched(&|z| (z[local + 8], z[central + 10]) = (12, 12));
        assert_rejected(&bzip2, "unsupported compression method");
        let fifo = patched(&|z| put_u32(z, central + 38, 0o010_644 << 16));
        assert_rejected(&fifo, "not a regular file");
    }

    #[test]
    fn bombs_are_rejected() {
        let mut zip = build(|w| {
            w.start_file("zeros", SimpleFileOptions::default())?;
            let megabyte = vec![0; 1 << 20];
            (0..300).try_for_each(|_| w.write_all(&megabyte))?;
            Ok(())
        });
        let err = inspect(&zip).expect_err("a 300 MB bomb");
        assert!(
            err.message().contains("zip bomb") || err.message().contains("Unzipped size"),
            "{err}"
        );

        // The same bomb with headers that claim 1000 bytes: caught after 1000 bytes of output.
        let (local, central) = headers(&zip, 0);
        put_u32(&mut zip, local + 22, 1000);
        put_u32(&mut zip, central + 24, 1000);
        let started = std::time::Instant::now();
        assert_rejected(&zip, "'zeros' is larger than its header says");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn content_must_match_its_header() {
        let content: Vec<u8> = (0..1 << 16)
            .map(|i: u32| b"0123456789abcdef"[(i.wrapping_mul(i) >> 7) as usize % 16])
            .collect();
        let mut zip = build(|w| file(w, "big.txt", &content));
        let (local, central) = headers(&zip, 0);
        let size = (1 << 16) + 1;
        put_u32(&mut zip, local + 22, size);
        put_u32(&mut zip, central + 24, size);
        assert_rejected(&zip, "65536 bytes of content where its header says 65537");
    }

    #[test]
    fn a_few_megabytes_of_zeros_is_not_a_bomb() {
        let zeros = vec![0u8; 4 << 20];
        let zip = build(|w| file(w, "data/blank.img", &zeros));
        let info = inspect(&zip).expect("a small, highly compressible file is fine");
        assert_eq!(info.unzipped_size, 4 << 20);
    }

    #[test]
    fn limits_apply() {
        let tight = Limits {
            zipped: 1 << 20,
            unzipped: 1000,
            entries: 3,
            ratio: 10,
            ratio_min_size: 0,
        };
        let message = |zip: &[u8]| {
            inspect_with_limits(zip, &tight)
                .expect_err("over a limit")
                .to_string()
        };
        let many = build(|w| (0..4).try_for_each(|i| file(w, &format!("f{i}"), b"x")));
        assert!(message(&many).contains("at most 3 entries"));
        let noise: Vec<u8> = (0u32..600)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        let two = build(|w| file(w, "a", &noise).and_then(|()| file(w, "b", &noise)));
        assert!(message(&two).contains("Unzipped size must be smaller than 1000 bytes"));
        assert!(message(&build(|w| file(w, "a", &[b'z'; 900]))).contains("zip bomb"));
        let too_big = inspect_with_limits(&vec![0; 2 << 20], &tight);
        assert!(matches!(too_big, Err(ServiceError::RequestTooLarge(_))));
    }
}
