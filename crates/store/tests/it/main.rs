//! Integration tests of `nimbus-store`, built as one test binary.
//!
//! - [`contract`]: the `MetadataStore` contract, run against the in-memory reference fake and
//!   against SQLite, so both provably behave the same.
//! - [`sqlite`]: what only a database on disk can show: reopening, concurrency, migrations.
//! - [`blobs`]: the file-system blob store.

mod blobs;
mod contract;
mod sqlite;

use nimbus_core::{
    Architecture, CodeRef, Function, FunctionName, FunctionSettings, FunctionState, LoggingConfig,
    Runtime, TracingMode,
};

/// A valid function named `name` whose code is the blob `sha` of `size` bytes.
pub(crate) fn function(name: &str, sha: &str, size: u64) -> Function {
    let name = FunctionName::new(name).expect("test function names are valid");
    Function {
        settings: FunctionSettings {
            runtime: Runtime::parse("python3.12").expect("python3.12 is supported"),
            handler: "app.handler".to_owned(),
            role: "arn:aws:iam::123456789012:role/test".to_owned(),
            description: format!("test function {name}"),
            timeout_s: 3,
            memory_mb: 128,
            ephemeral_storage_mb: 512,
            environment: [("GREETING".to_owned(), "hello".to_owned())].into(),
            architecture: Architecture::X86_64,
            tracing_mode: TracingMode::PassThrough,
            dead_letter_target: None,
            logging: LoggingConfig::default_for(&name),
            layers: Vec::new(),
        },
        name,
        code: CodeRef {
            sha256_hex: sha.to_owned(),
            size,
            unzipped_size: size * 2,
        },
        state: FunctionState::Active,
        revision_id: uuid::Uuid::new_v4().to_string(),
        last_modified: chrono::Utc::now(),
    }
}

/// A 64-hex-digit digest made of one repeated digit, for functions whose code bytes don't matter.
pub(crate) fn sha(digit: char) -> String {
    std::iter::repeat_n(digit, 64).collect()
}

/// Parse a name the test knows is valid.
pub(crate) fn name(name: &str) -> FunctionName {
    FunctionName::new(name).expect("test function names are valid")
}

/// Tags from literal pairs.
pub(crate) fn tags(pairs: &[(&str, &str)]) -> std::collections::BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}
