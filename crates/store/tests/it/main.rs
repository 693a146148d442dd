//! Integration tests of `nimbus-store`, built as one test binary.
//!
//! - [`contract`]: the `MetadataStore` contract, run against the in-memory reference fake and
//!   against SQLite, so both provably behave the same.
//! - [`sqlite`]: what only a database on disk can show: reopening, concurrency, migrations.
//! - [`blobs`]: the file-system blob store.

mod blobs;
mod contract;
mod sqlite;

use nimbus_core::{Function, FunctionName, Runtime};

/// A valid function named `name` whose code is the blob `sha` of `size` bytes.
pub(crate) fn function(name: &str, sha: &str, size: u64) -> Function {
    // Non-default settings, so a round trip through the store has something to lose.
    let mut f = nimbus_core::fake::function(name, sha);
    f.settings.runtime = Runtime::parse("python3.12").expect("python3.12 is supported");
    f.settings.handler = "app.handler".to_owned();
    f.settings.role = "arn:aws:iam::123456789012:role/test".to_owned();
    f.settings.description = format!("test function {name}");
    f.settings.environment = [("GREETING".to_owned(), "hello".to_owned())].into();
    f.code.size = size;
    f.code.unzipped_size = size * 2;
    f.revision_id = uuid::Uuid::new_v4().to_string();
    f
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
