//! A function as Nimbus stores it: its settings, its code and its bookkeeping, for `$LATEST` and
//! for each published version.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::names::FunctionName;
use crate::runtime::Runtime;

/// Instruction set a function is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Architecture {
    /// `x86_64`.
    #[serde(rename = "x86_64")]
    X86_64,
    /// `arm64`.
    #[serde(rename = "arm64")]
    Arm64,
}

impl Architecture {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::X86_64 => "x86_64",
            Self::Arm64 => "arm64",
        }
    }
}

/// X-Ray tracing mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TracingMode {
    /// `PassThrough` (the default).
    PassThrough,
    /// `Active`.
    Active,
}

impl TracingMode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PassThrough => "PassThrough",
            Self::Active => "Active",
        }
    }
}

/// Where and how a function's logs are written (`LoggingConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoggingConfig {
    /// `Text` or `JSON`.
    pub log_format: String,
    /// Application log level (JSON format only).
    pub application_log_level: Option<String>,
    /// System log level (JSON format only).
    pub system_log_level: Option<String>,
    /// Log group name; `/aws/lambda/<name>` by default.
    pub log_group: String,
}

impl LoggingConfig {
    /// The default configuration for a function.
    pub fn default_for(name: &FunctionName) -> Self {
        Self {
            log_format: "Text".to_owned(),
            application_log_level: None,
            system_log_level: None,
            log_group: format!("/aws/lambda/{name}"),
        }
    }
}

/// Everything about a function its owner sets, already validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionSettings {
    /// Runtime name.
    pub runtime: Runtime,
    /// Handler string, e.g. `app.handler`.
    pub handler: String,
    /// Execution role ARN.
    pub role: String,
    /// Free text, at most 256 characters.
    pub description: String,
    /// Timeout in seconds.
    pub timeout_s: u32,
    /// Memory in MB.
    pub memory_mb: u32,
    /// Size of `/tmp` in MB.
    pub ephemeral_storage_mb: u32,
    /// Environment variables set by the owner.
    pub environment: BTreeMap<String, String>,
    /// Instruction set.
    pub architecture: Architecture,
    /// X-Ray mode.
    pub tracing_mode: TracingMode,
    /// Dead-letter queue or topic ARN for failed async events.
    pub dead_letter_target: Option<String>,
    /// Logging configuration.
    pub logging: LoggingConfig,
    /// Layers, in extraction order (later ones win), as they were when configured.
    pub layers: Vec<crate::layer::LayerRef>,
}

/// The code package of a function: a zip in the blob store, addressed by its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeRef {
    /// Lower-case hex SHA-256 of the zip; the blob's address.
    pub sha256_hex: String,
    /// Size of the zip in bytes.
    pub size: u64,
    /// Total unpacked size of the package's files in bytes.
    pub unzipped_size: u64,
}

impl CodeRef {
    /// `CodeSha256` as Lambda reports it: base64 of the digest, not hex.
    pub fn sha256_base64(&self) -> String {
        use base64::Engine as _;
        let digest: Vec<u8> = (0..self.sha256_hex.len() / 2)
            .filter_map(|i| u8::from_str_radix(&self.sha256_hex[2 * i..2 * i + 2], 16).ok())
            .collect();
        base64::engine::general_purpose::STANDARD.encode(digest)
    }
}

/// Lifecycle state of a function (`State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FunctionState {
    /// Being created.
    Pending,
    /// Ready to invoke.
    Active,
    /// Could not be made ready.
    Failed,
}

impl FunctionState {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "Pending",
            Self::Active => "Active",
            Self::Failed => "Failed",
        }
    }
}

/// Which version of a function a [`Function`] record is.
///
/// Stored and shown as Lambda writes it: `$LATEST` or the decimal version number.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(try_from = "String", into = "String")]
pub enum FunctionVersion {
    /// The unpublished, editable version.
    #[default]
    Latest,
    /// An immutable published version, numbered from 1.
    Published(u64),
}

impl FunctionVersion {
    /// `$LATEST` or a version number; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        if text == "$LATEST" {
            return Some(Self::Latest);
        }
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok().map(Self::Published)
    }

    /// The number of a published version.
    pub fn number(self) -> Option<u64> {
        match self {
            Self::Latest => None,
            Self::Published(n) => Some(n),
        }
    }
}

impl fmt::Display for FunctionVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Latest => f.write_str("$LATEST"),
            Self::Published(n) => write!(f, "{n}"),
        }
    }
}

impl TryFrom<String> for FunctionVersion {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s).ok_or_else(|| format!("{s:?} is neither $LATEST nor a version number"))
    }
}

impl From<FunctionVersion> for String {
    fn from(v: FunctionVersion) -> Self {
        v.to_string()
    }
}

/// A function version as stored: `$LATEST`, which its owner edits, or a published version, an
/// immutable snapshot of `$LATEST`'s code and settings taken by PublishVersion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function {
    /// The function's name.
    pub name: FunctionName,
    /// Which version this is. Records written before versions existed are `$LATEST`.
    #[serde(default)]
    pub version: FunctionVersion,
    /// Its settings.
    pub settings: FunctionSettings,
    /// Its code.
    pub code: CodeRef,
    /// Lifecycle state.
    pub state: FunctionState,
    /// Changes on every mutation; callers pass it back for optimistic concurrency.
    pub revision_id: String,
    /// When the function was last changed (for a published version: when it was published).
    pub last_modified: DateTime<Utc>,
}

impl Function {
    /// A digest of what a published version copies from `$LATEST`: the code and every setting.
    /// Two records with the same fingerprint would run identically, which is how PublishVersion
    /// recognises that nothing changed since the last version.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut hasher = Sha256::new();
        hasher.update(self.code.sha256_hex.as_bytes());
        hasher.update([0]);
        // Serialising plain structs and BTreeMaps is deterministic and cannot fail.
        let settings = serde_json::to_vec(&self.settings).unwrap_or_default();
        hasher.update(&settings);
        hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(name: &str) -> Function {
        let name = FunctionName::new(name).expect("valid name");
        let settings = crate::validate::SettingsInput {
            runtime: Some("python3.12".into()),
            handler: Some("app.handler".into()),
            role: Some("arn:aws:iam::000000000000:role/r".into()),
            ..Default::default()
        }
        .for_create(&name)
        .expect("valid settings");
        Function {
            name,
            version: FunctionVersion::Latest,
            settings,
            code: CodeRef {
                sha256_hex: "a".repeat(64),
                size: 1,
                unzipped_size: 1,
            },
            state: FunctionState::Active,
            revision_id: "r1".into(),
            last_modified: Utc::now(),
        }
    }

    #[test]
    fn versions_read_and_print_as_lambda_writes_them() {
        assert_eq!(
            FunctionVersion::parse("$LATEST"),
            Some(FunctionVersion::Latest)
        );
        assert_eq!(
            FunctionVersion::parse("12"),
            Some(FunctionVersion::Published(12))
        );
        for bad in ["", "latest", "-1", "1.0", "+3", "99999999999999999999999"] {
            assert_eq!(FunctionVersion::parse(bad), None, "{bad}");
        }
        assert_eq!(FunctionVersion::Published(3).to_string(), "3");
        assert_eq!(FunctionVersion::Latest.to_string(), "$LATEST");
        assert!(FunctionVersion::Latest < FunctionVersion::Published(1));
    }

    #[test]
    fn records_from_before_versions_decode_as_latest() {
        let f = sample("old");
        let mut json = serde_json::to_value(&f).expect("encode");
        assert_eq!(json["version"], "$LATEST");
        json.as_object_mut().expect("object").remove("version");
        let back: Function = serde_json::from_value(json).expect("decode");
        assert_eq!(back, f);
        let mut v = f.clone();
        v.version = FunctionVersion::Published(7);
        let json = serde_json::to_string(&v).expect("encode");
        assert!(json.contains(r#""version":"7""#), "{json}");
        assert_eq!(serde_json::from_str::<Function>(&json).expect("decode"), v);
    }

    #[test]
    fn fingerprint_follows_code_and_settings_only() {
        let f = sample("f");
        let mut same = f.clone();
        same.revision_id = "other".into();
        same.version = FunctionVersion::Published(2);
        same.last_modified = chrono::Utc::now() + chrono::Duration::seconds(5);
        assert_eq!(f.fingerprint(), same.fingerprint());
        let mut code = f.clone();
        code.code.sha256_hex = "b".repeat(64);
        assert_ne!(f.fingerprint(), code.fingerprint());
        let mut memory = f.clone();
        memory.settings.memory_mb += 1;
        assert_ne!(f.fingerprint(), memory.fingerprint());
    }

    #[test]
    fn code_sha_is_reported_as_base64() {
        let code = CodeRef {
            sha256_hex: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into(),
            size: 0,
            unzipped_size: 0,
        };
        assert_eq!(
            code.sha256_base64(),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }
}
