//! `nimbus deploy PATH --name NAME`: package a folder (or take a zip) and create the function, or
//! update its code and the settings given on the command line.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Cursor, IsTerminal};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, DateTime, ZipWriter};

use super::client::{
    Answer, ApiError, ClientArgs, CreateFunctionRequest, Environment, FunctionConfiguration,
    FunctionSettings, LambdaClient, ZipCode,
};
use super::functions::configuration_fields;
use super::output::{human_size, print_json, render_fields, write_stdout, OutputFormat, Style};

/// The role new functions get unless `--role` says otherwise (Nimbus does not check roles).
pub const DEFAULT_ROLE: &str = "arn:aws:iam::000000000000:role/nimbus-function";
/// How long to wait for a function to leave `Pending` / `InProgress`.
const READY_TIMEOUT: Duration = Duration::from_secs(300);

/// Arguments of `nimbus deploy`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// A folder to zip (recursively, reproducibly) or a .zip file to upload as is.
    pub path: PathBuf,
    /// Function name.
    #[arg(long, short = 'n')]
    pub name: String,
    /// Runtime, e.g. python3.12, nodejs22.x, provided.al2023 (required to create).
    #[arg(long)]
    pub runtime: Option<String>,
    /// Handler, e.g. app.handler (required to create).
    #[arg(long)]
    pub handler: Option<String>,
    /// Memory in MB.
    #[arg(long, value_name = "MB")]
    pub memory: Option<u32>,
    /// Timeout in seconds.
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u32>,
    /// An environment variable; repeat for more. On update, replaces all of the function's variables.
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE", value_parser = parse_env_pair)]
    pub env: Vec<(String, String)>,
    /// Execution role ARN [default when creating: arn:aws:iam::000000000000:role/nimbus-function].
    #[arg(long, value_name = "ARN")]
    pub role: Option<String>,
    /// Description.
    #[arg(long)]
    pub description: Option<String>,
    /// A layer version ARN (see `nimbus layers`); repeat for more, in order (later ones win).
    /// On update, replaces the function's layers.
    #[arg(long = "layer", value_name = "ARN")]
    pub layers: Vec<String>,
    #[command(flatten)]
    pub client: ClientArgs,
}

/// A zip built from a folder.
#[derive(Debug)]
pub struct Package {
    /// The archive.
    pub zip: Vec<u8>,
    /// What was left out (symlinks leaving the folder, sockets, …), one sentence each.
    pub warnings: Vec<String>,
}

impl DeployArgs {
    /// Packages, uploads, creates or updates, then prints the function.
    pub async fn run(self) -> Result<()> {
        let mut settings = FunctionSettings {
            runtime: self.runtime,
            handler: self.handler,
            role: self.role,
            memory_size: self.memory,
            timeout: self.timeout,
            environment: collect_env(&self.env)?.map(|variables| Environment { variables }),
            description: self.description,
            layers: (!self.layers.is_empty()).then_some(self.layers),
        };
        let progress = Progress(io::stderr().is_terminal());
        let zip = load_code(&self.path, progress.0)?;
        let client = self.client.client()?;
        let name = &self.name;
        let exists = match client.get_function(name).await {
            Ok(_) => true,
            Err(err) if ApiError::find(&err).is_some_and(ApiError::is_not_found) => false,
            Err(err) => return Err(err),
        };
        let uploading = format!("uploading {}…", human_size(zip.len() as u64));
        let function = if exists {
            progress.step(&uploading);
            let answer = client.update_function_code(name, &zip).await?;
            let mut answer = wait_until_ready(&client, name, answer, &progress).await?;
            if !settings.is_empty() {
                answer = client
                    .update_function_configuration(name, &settings)
                    .await?;
                answer = wait_until_ready(&client, name, answer, &progress).await?;
            }
            progress.step(&format!("updated {name}"));
            answer
        } else {
            if settings.runtime.is_none() || settings.handler.is_none() {
                bail!(
                    "function {name} does not exist yet: pass --runtime and --handler to create it"
                );
            }
            settings.role.get_or_insert_with(|| DEFAULT_ROLE.to_owned());
            progress.step(&uploading);
            let request = CreateFunctionRequest {
                function_name: name.clone(),
                code: ZipCode::new(&zip),
                settings,
            };
            let answer = client.create_function(&request).await?;
            let answer = wait_until_ready(&client, name, answer, &progress).await?;
            progress.step(&format!("created {name}"));
            answer
        };
        match self.client.output {
            OutputFormat::Json => print_json(&function.json),
            OutputFormat::Table => {
                let fields = configuration_fields(&function.typed);
                write_stdout(&render_fields(&fields, Style::for_stdout()))
            }
        }
    }
}

/// Steps on stderr, only for a person watching a terminal.
struct Progress(bool);

impl Progress {
    fn step(&self, message: &str) {
        if self.0 {
            eprintln!("{message}");
        }
    }
}

/// The zip to upload: a folder packaged in memory, or a zip file's bytes. With `progress`
/// (a person watching a terminal), says what it packs.
pub(crate) fn load_code(path: &Path, progress: bool) -> Result<Vec<u8>> {
    let progress = Progress(progress);
    let shown = path.display();
    let metadata = fs::metadata(path).with_context(|| format!("read {shown}"))?;
    if !metadata.is_dir() {
        let bytes = fs::read(path).with_context(|| format!("read {shown}"))?;
        if !(bytes.starts_with(b"PK\x03\x04") || bytes.starts_with(b"PK\x05\x06")) {
            bail!("{shown} is not a zip archive: pass a folder or a .zip file");
        }
        return Ok(bytes);
    }
    let (entries, warnings) = collect_entries(path)?;
    for warning in &warnings {
        eprintln!("warning: {warning}");
    }
    let (files, bytes) = entries
        .iter()
        .fold((0, 0), |(files, bytes), entry| match entry.kind {
            Kind::File { size } => (files + 1, bytes + size),
            _ => (files, bytes),
        });
    if files == 0 {
        bail!("nothing to deploy: {shown} contains no files");
    }
    progress.step(&format!("packaging {files} files ({})…", human_size(bytes)));
    write_zip(&entries).with_context(|| format!("zip {shown}"))
}

/// Waits while the function is `Pending` or its last update `InProgress`; fails if it ends `Failed`.
async fn wait_until_ready(
    client: &LambdaClient,
    name: &str,
    mut answer: Answer<FunctionConfiguration>,
    progress: &Progress,
) -> Result<Answer<FunctionConfiguration>> {
    let started = tokio::time::Instant::now();
    let mut delay = Duration::from_millis(200);
    loop {
        let config = &answer.typed;
        let state = config.state.as_deref();
        let update = config.last_update_status.as_deref();
        if state == Some("Failed") || update == Some("Failed") {
            let reason = (config.state_reason.as_deref())
                .or(config.last_update_status_reason.as_deref())
                .unwrap_or("no reason given");
            bail!("function {name} failed: {reason}");
        }
        if state != Some("Pending") && update != Some("InProgress") {
            return Ok(answer);
        }
        if started.elapsed() > READY_TIMEOUT {
            bail!(
                "function {name} was not ready after {} s",
                READY_TIMEOUT.as_secs()
            );
        }
        if delay == Duration::from_millis(200) {
            progress.step(&format!("waiting for {name} to be ready…"));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
        let function = client.get_function(name).await?;
        answer = Answer {
            typed: function.typed.configuration,
            json: function
                .json
                .get("Configuration")
                .cloned()
                .unwrap_or_default(),
        };
    }
}

/// Parses `KEY=VALUE` (the value may contain `=` or be empty; the key may not be empty).
pub fn parse_env_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some(("", _)) => Err(format!("{text:?} has an empty variable name")),
        Some((key, value)) => Ok((key.to_owned(), value.to_owned())),
        None => Err(format!("{text:?} is not KEY=VALUE (no '=')")),
    }
}

/// The variables to set, or `None` if no `--env` was given; a name given twice is an error.
fn collect_env(pairs: &[(String, String)]) -> Result<Option<BTreeMap<String, String>>> {
    if pairs.is_empty() {
        return Ok(None);
    }
    let mut variables = BTreeMap::new();
    for (key, value) in pairs {
        if variables.insert(key.clone(), value.clone()).is_some() {
            bail!("--env {key} is given more than once");
        }
    }
    Ok(Some(variables))
}

/// Zips a folder: entries in sorted order, paths relative with `/`, unix permission bits kept,
/// timestamps fixed, so the same tree always gives the same bytes (and CodeSha256).
pub fn zip_directory(dir: &Path) -> Result<Package> {
    let (entries, warnings) = collect_entries(dir)?;
    let zip = write_zip(&entries).with_context(|| format!("zip {}", dir.display()))?;
    Ok(Package { zip, warnings })
}

#[derive(Debug)]
struct Entry {
    path: PathBuf,
    /// Relative, `/`-separated; directories end in `/`.
    name: String,
    mode: u32,
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    Dir,
    File { size: u64 },
    Symlink { target: String },
}

fn collect_entries(root: &Path) -> Result<(Vec<Entry>, Vec<String>)> {
    let mut entries = Vec::new();
    let mut warnings = Vec::new();
    walk(root, "", &mut entries, &mut warnings)?;
    Ok((entries, warnings))
}

fn walk(
    dir: &Path,
    prefix: &str,
    entries: &mut Vec<Entry>,
    warnings: &mut Vec<String>,
) -> Result<()> {
    let read = |err| anyhow::Error::new(err).context(format!("read folder {}", dir.display()));
    let mut children = fs::read_dir(dir)
        .map_err(read)?
        .collect::<io::Result<Vec<_>>>()
        .map_err(read)?;
    children.sort_by_key(fs::DirEntry::file_name);
    for child in children {
        let path = child.path();
        let Some(file_name) = child.file_name().to_str().map(str::to_owned) else {
            bail!("file name is not valid UTF-8: {}", path.display());
        };
        let name = format!("{prefix}{file_name}");
        let metadata =
            fs::symlink_metadata(&path).with_context(|| format!("read {}", path.display()))?;
        let mode = permissions(&metadata);
        let file_type = metadata.file_type();
        if file_type.is_symlink() {
            let target =
                fs::read_link(&path).with_context(|| format!("read link {}", path.display()))?;
            match target.to_str().filter(|_| stays_inside(prefix, &target)) {
                Some(target) => entries.push(Entry {
                    path,
                    name,
                    mode,
                    kind: Kind::Symlink {
                        target: target.replace('\\', "/"),
                    },
                }),
                None => warnings.push(format!(
                    "skipping symlink {name} -> {}: it points outside the folder",
                    target.display()
                )),
            }
        } else if file_type.is_dir() {
            let dir_name = format!("{name}/");
            entries.push(Entry {
                path: path.clone(),
                name: dir_name.clone(),
                mode,
                kind: Kind::Dir,
            });
            walk(&path, &dir_name, entries, warnings)?;
        } else if file_type.is_file() {
            entries.push(Entry {
                path,
                name,
                mode,
                kind: Kind::File {
                    size: metadata.len(),
                },
            });
        } else {
            warnings.push(format!("skipping {name}: not a file, folder or symlink"));
        }
    }
    Ok(())
}

/// Whether a symlink in folder `prefix` (relative, `/`-terminated) pointing at `target` resolves,
/// lexically, to a path inside the packaged folder.
fn stays_inside(prefix: &str, target: &Path) -> bool {
    let mut depth = prefix.split('/').filter(|part| !part.is_empty()).count();
    for component in target.components() {
        match component {
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            Component::ParentDir if depth > 0 => depth -= 1,
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => return false,
        }
    }
    true
}

#[cfg(unix)]
fn permissions(metadata: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    metadata.permissions().mode() & 0o777
}

#[cfg(not(unix))]
fn permissions(metadata: &fs::Metadata) -> u32 {
    if metadata.is_dir() {
        0o755
    } else {
        0o644
    }
}

fn write_zip(entries: &[Entry]) -> Result<Vec<u8>> {
    let mut zip = ZipWriter::new(Cursor::new(Vec::new()));
    let options = SimpleFileOptions::default()
        .compression_method(CompressionMethod::Deflated)
        .last_modified_time(DateTime::default());
    for entry in entries {
        let options = options.unix_permissions(entry.mode);
        match &entry.kind {
            Kind::Dir => zip.add_directory(entry.name.as_str(), options)?,
            Kind::Symlink { target } => zip.add_symlink(&entry.name, target, options)?,
            Kind::File { size } => {
                zip.start_file(
                    &entry.name,
                    options.large_file(*size >= u64::from(u32::MAX)),
                )?;
                let mut file = File::open(&entry.path)
                    .with_context(|| format!("open {}", entry.path.display()))?;
                io::copy(&mut file, &mut zip)
                    .with_context(|| format!("read {}", entry.path.display()))?;
            }
        }
    }
    Ok(zip.finish()?.into_inner())
}

#[cfg(all(test, unix))]
mod tests {
    use std::io::Read;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use std::time::SystemTime;

    use clap::{CommandFactory, Parser};
    use zip::ZipArchive;

    use super::*;

    /// Writes a small function tree; `mtime` differs between calls to prove it is ignored.
    fn make_tree(root: &Path, mtime: SystemTime) -> Result<()> {
        fs::create_dir_all(root.join("lib/deep"))?;
        fs::create_dir_all(root.join("empty"))?;
        let files = [
            ("bootstrap", "#!/bin/sh\nexec ./lib/run\n", 0o755),
            (
                "handler.py",
                "def handler(event, context):\n    return event\n",
                0o644,
            ),
            ("lib/deep/data.json", "{\"a\": 1}\n", 0o600),
            (".hidden", "kept\n", 0o644),
        ];
        for (name, content, mode) in files {
            let path = root.join(name);
            fs::write(&path, content)?;
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))?;
            File::options()
                .write(true)
                .open(&path)?
                .set_modified(mtime)?;
        }
        for dir in ["lib", "lib/deep", "empty"] {
            fs::set_permissions(root.join(dir), fs::Permissions::from_mode(0o755))?;
        }
        Ok(())
    }

    fn modes(zip: &[u8]) -> Result<Vec<(String, u32)>> {
        let mut archive = ZipArchive::new(Cursor::new(zip))?;
        let mut out = Vec::new();
        for i in 0..archive.len() {
            let file = archive.by_index(i)?;
            out.push((file.name().to_owned(), file.unix_mode().unwrap_or(0)));
        }
        Ok(out)
    }

    #[test]
    fn same_tree_gives_same_bytes_whatever_the_timestamps() -> Result<()> {
        let (one, two) = (tempfile::tempdir()?, tempfile::tempdir()?);
        make_tree(
            one.path(),
            SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000),
        )?;
        make_tree(two.path(), SystemTime::now())?;
        let first = zip_directory(one.path())?;
        assert_eq!(first.zip, zip_directory(one.path())?.zip);
        assert_eq!(first.zip, zip_directory(two.path())?.zip);
        assert!(first.warnings.is_empty());
        Ok(())
    }

    #[test]
    fn entries_are_sorted_relative_and_keep_permissions() -> Result<()> {
        let dir = tempfile::tempdir()?;
        make_tree(dir.path(), SystemTime::now())?;
        let zip = zip_directory(dir.path())?.zip;
        let entries = modes(&zip)?;
        let names: Vec<&str> = entries.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                ".hidden",
                "bootstrap",
                "empty/",
                "handler.py",
                "lib/",
                "lib/deep/",
                "lib/deep/data.json"
            ]
        );
        let mode = |name: &str| entries.iter().find(|(n, _)| n == name).map(|(_, m)| *m);
        assert_eq!(mode("bootstrap"), Some(0o100755));
        assert_eq!(mode("handler.py"), Some(0o100644));
        assert_eq!(mode("lib/deep/data.json"), Some(0o100600));
        assert_eq!(mode("lib/"), Some(0o40755));

        let mut archive = ZipArchive::new(Cursor::new(zip))?;
        let mut content = String::new();
        archive
            .by_name("lib/deep/data.json")?
            .read_to_string(&mut content)?;
        assert_eq!(content, "{\"a\": 1}\n");
        Ok(())
    }

    #[test]
    fn symlinks_inside_are_kept_and_outside_skipped() -> Result<()> {
        let dir = tempfile::tempdir()?;
        make_tree(dir.path(), SystemTime::now())?;
        symlink("deep/data.json", dir.path().join("lib/data"))?;
        symlink("../handler.py", dir.path().join("lib/handler"))?;
        symlink("../../etc/passwd", dir.path().join("lib/escape"))?;
        symlink("/etc/passwd", dir.path().join("absolute"))?;
        let package = zip_directory(dir.path())?;
        assert_eq!(package.warnings.len(), 2, "{:?}", package.warnings);
        assert!(package.warnings[0].starts_with("skipping symlink absolute -> /etc/passwd"));
        assert!(package.warnings[1].starts_with("skipping symlink lib/escape"));

        let entries = modes(&package.zip)?;
        let link = entries.iter().find(|(name, _)| name == "lib/data");
        assert_eq!(link.map(|(_, mode)| mode & 0o170000), Some(0o120000));
        let mut archive = ZipArchive::new(Cursor::new(package.zip))?;
        let mut target = String::new();
        archive
            .by_name("lib/handler")?
            .read_to_string(&mut target)?;
        assert_eq!(target, "../handler.py");
        Ok(())
    }

    #[test]
    fn zip_files_are_sent_as_is_and_other_files_refused() -> Result<()> {
        let dir = tempfile::tempdir()?;
        make_tree(&dir.path().join("tree"), SystemTime::now())?;
        let zip = zip_directory(&dir.path().join("tree"))?.zip;
        fs::write(dir.path().join("code.zip"), &zip)?;
        let quiet = false;
        assert_eq!(load_code(&dir.path().join("code.zip"), quiet)?, zip);
        let err = load_code(&dir.path().join("tree/handler.py"), quiet);
        assert!(err.is_err_and(|e| e.to_string().contains("is not a zip archive")));
        fs::create_dir(dir.path().join("hollow"))?;
        let err = load_code(&dir.path().join("hollow"), quiet);
        assert!(err.is_err_and(|e| e.to_string().contains("contains no files")));
        Ok(())
    }

    #[test]
    fn env_pairs_parse_strictly() -> Result<()> {
        assert_eq!(parse_env_pair("A=1"), Ok(("A".to_owned(), "1".to_owned())));
        assert_eq!(
            parse_env_pair("URL=a=b"),
            Ok(("URL".to_owned(), "a=b".to_owned()))
        );
        assert_eq!(
            parse_env_pair("EMPTY="),
            Ok(("EMPTY".to_owned(), String::new()))
        );
        assert!(parse_env_pair("NOVALUE").is_err());
        assert!(parse_env_pair("=1").is_err());

        assert_eq!(collect_env(&[])?, None);
        let pairs = [
            ("B".to_owned(), "2".to_owned()),
            ("A".to_owned(), "1".to_owned()),
        ];
        let expected = BTreeMap::from([
            ("A".to_owned(), "1".to_owned()),
            ("B".to_owned(), "2".to_owned()),
        ]);
        assert_eq!(collect_env(&pairs)?, Some(expected));
        let twice = [
            ("A".to_owned(), "1".to_owned()),
            ("A".to_owned(), "2".to_owned()),
        ];
        assert!(collect_env(&twice).is_err());
        Ok(())
    }

    #[derive(Debug, Parser)]
    struct Deploy {
        #[command(flatten)]
        args: DeployArgs,
    }

    #[test]
    fn command_line_parses() -> Result<()> {
        Deploy::command().debug_assert();
        let parsed = Deploy::try_parse_from([
            "deploy",
            "./fn",
            "--name",
            "f",
            "--env",
            "A=1",
            "-e",
            "B=x=y",
            "--memory",
            "256",
            "--endpoint",
            "http://localhost:1",
            "--output",
            "json",
        ])?;
        assert_eq!(parsed.args.env.len(), 2);
        assert_eq!(parsed.args.memory, Some(256));
        assert_eq!(parsed.args.client.output, OutputFormat::Json);
        assert!(Deploy::try_parse_from(["deploy", "./fn", "--name", "f", "--env", "A"]).is_err());
        Ok(())
    }
}
