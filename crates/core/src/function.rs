//! A function as Nimbus stores it: its settings, its code and its bookkeeping.

use std::collections::BTreeMap;

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
    /// Layer version ARNs, in extraction order.
    pub layers: Vec<String>,
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

/// A function's `$LATEST` version as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Function {
    /// The function's name.
    pub name: FunctionName,
    /// Its settings.
    pub settings: FunctionSettings,
    /// Its code.
    pub code: CodeRef,
    /// Lifecycle state.
    pub state: FunctionState,
    /// Changes on every mutation; callers pass it back for optimistic concurrency.
    pub revision_id: String,
    /// When the function was last changed.
    pub last_modified: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

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
