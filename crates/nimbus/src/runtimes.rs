//! The runtime interface clients shipped inside the binary, written out where environments
//! mount them read-only (`/var/runtime`).

use std::path::Path;

use anyhow::Context;

include!(concat!(env!("OUT_DIR"), "/runtimes.rs"));

/// Write the embedded runtime files under `dir`, replacing what an older binary left there,
/// and precompile the Python client with `python` (environments see it read-only, so without
/// this every cold start would compile it again).
pub fn install(dir: &Path, python: Option<&Path>) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let staging = dir.with_extension("new");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("remove {}", staging.display()))?;
    }
    for (relative, contents) in FILES {
        let path = staging.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("create {}", parent.display()))?;
        }
        std::fs::write(&path, contents).with_context(|| format!("write {}", path.display()))?;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("set permissions of {}", path.display()))?;
    }
    // Environments must be able to read these files after dropping privileges.
    for dir_path in walk_dirs(&staging).into_iter().rev() {
        std::fs::set_permissions(&dir_path, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("set permissions of {}", dir_path.display()))?;
    }
    if let Some(python) = python.filter(|p| p.is_file()) {
        let compiled = std::process::Command::new(python)
            .args(["-m", "compileall", "-q"])
            .arg(staging.join("python"))
            .env_clear()
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
        if !compiled.is_ok_and(|s| s.success()) {
            tracing::warn!(python = %python.display(), "could not precompile the Python runtime client; cold starts will compile it");
        }
    }
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("remove {}", dir.display()))?;
    }
    std::fs::rename(&staging, dir).with_context(|| format!("install {}", dir.display()))?;
    Ok(())
}

fn walk_dirs(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![root.to_owned()];
    let mut i = 0;
    while i < out.len() {
        if let Ok(entries) = std::fs::read_dir(&out[i]) {
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    out.push(entry.path());
                }
            }
        }
        i += 1;
    }
    out
}
