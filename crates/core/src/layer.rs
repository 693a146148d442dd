//! Lambda layers: zip archives published once as numbered, immutable versions and extracted
//! under `/opt` of every function that lists them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::arn::AccountContext;
use crate::error::ServiceError;
use crate::function::CodeRef;

/// Most layers one function may use.
pub const MAX_LAYERS_PER_FUNCTION: usize = 5;

/// One published version of a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerVersion {
    /// Layer name (`[a-zA-Z0-9-_]+`, at most 64 characters).
    pub name: String,
    /// Version number, from 1; numbers are never reused, not even after a delete.
    pub version: u64,
    /// Free text, at most 256 characters.
    pub description: String,
    /// License text or SPDX identifier, at most 512 characters.
    pub license_info: Option<String>,
    /// Runtimes the layer declares itself compatible with (informational, up to 15).
    pub compatible_runtimes: Vec<String>,
    /// Architectures the layer declares (informational, up to 2).
    pub compatible_architectures: Vec<String>,
    /// When it was published.
    pub created: DateTime<Utc>,
    /// The archive in the blob store.
    pub content: CodeRef,
}

/// A layer version as a function references it: a snapshot of what it needs to run and to
/// report, so a later `DeleteLayerVersion` does not break the function (as on Lambda).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerRef {
    /// The layer version ARN.
    pub arn: String,
    /// The archive (digest, size, unzipped size).
    pub content: CodeRef,
}

impl AccountContext {
    /// `arn:aws:lambda:<region>:<account>:layer:<name>`.
    pub fn layer_arn(&self, name: &str) -> String {
        format!(
            "arn:aws:lambda:{}:{}:layer:{name}",
            self.region, self.account_id
        )
    }

    /// `arn:aws:lambda:<region>:<account>:layer:<name>:<version>`.
    pub fn layer_version_arn(&self, name: &str, version: u64) -> String {
        format!("{}:{version}", self.layer_arn(name))
    }
}

/// Whether `name` is a valid layer name: 1–64 of `[a-zA-Z0-9-_]`.
pub fn valid_layer_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The layer name in a `LayerName` path parameter: a name or a layer ARN of this account.
pub fn layer_name_of(raw: &str, account: &AccountContext) -> Result<String, ServiceError> {
    let name = match raw.strip_prefix("arn:") {
        None => raw,
        Some(_) => match raw.split(':').collect::<Vec<_>>()[..] {
            ["arn", _, "lambda", region, account_id, "layer", name]
                if region == account.region && account_id == account.account_id =>
            {
                name
            }
            _ => return Err(invalid_layer_name(raw)),
        },
    };
    if !valid_layer_name(name) {
        return Err(invalid_layer_name(raw));
    }
    Ok(name.to_owned())
}

fn invalid_layer_name(raw: &str) -> ServiceError {
    ServiceError::constraint(
        raw,
        "layerName",
        "Member must satisfy regular expression pattern: (arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+",
    )
}

/// The name and version in a layer version ARN of this account; `None` if it is not one.
pub fn parse_layer_version_arn(arn: &str, account: &AccountContext) -> Option<(String, u64)> {
    match arn.split(':').collect::<Vec<_>>()[..] {
        ["arn", "aws", "lambda", region, account_id, "layer", name, version]
            if region == account.region
                && account_id == account.account_id
                && valid_layer_name(name) =>
        {
            let version = version.parse::<u64>().ok().filter(|v| *v > 0)?;
            Some((name.to_owned(), version))
        }
        _ => None,
    }
}

/// Whether a function's code and layers fit Lambda's unzipped limit; the error AWS gives if not.
pub fn check_unzipped_total(code: &CodeRef, layers: &[LayerRef]) -> Result<(), ServiceError> {
    let total = layers.iter().fold(code.unzipped_size, |sum, l| {
        sum.saturating_add(l.content.unzipped_size)
    });
    if total > crate::limits::UNZIPPED_MAX_BYTES {
        return Err(ServiceError::InvalidParameterValue(format!(
            "Function code combined with layers exceeds the maximum allowed size of {} bytes. \
             The actual size is {total} bytes.",
            crate::limits::UNZIPPED_MAX_BYTES
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(unzipped_size: u64) -> CodeRef {
        CodeRef {
            sha256_hex: "ab".repeat(32),
            size: 10,
            unzipped_size,
        }
    }

    #[test]
    fn names_and_arns() {
        let account = AccountContext::default();
        assert_eq!(
            account.layer_version_arn("deps", 3),
            "arn:aws:lambda:us-east-1:000000000000:layer:deps:3"
        );
        assert_eq!(
            parse_layer_version_arn(
                "arn:aws:lambda:us-east-1:000000000000:layer:deps:3",
                &account
            ),
            Some(("deps".to_owned(), 3))
        );
        for bad in [
            "arn:aws:lambda:us-east-1:000000000000:layer:deps",
            "arn:aws:lambda:us-east-1:000000000000:layer:deps:0",
            "arn:aws:lambda:us-east-1:000000000000:layer:deps:x",
            "arn:aws:lambda:eu-west-1:000000000000:layer:deps:1",
            "arn:aws:lambda:us-east-1:000000000000:layer:d/e:1",
            "deps:1",
        ] {
            assert_eq!(parse_layer_version_arn(bad, &account), None, "{bad}");
        }
        assert_eq!(
            layer_name_of("deps_2-x", &account).ok().as_deref(),
            Some("deps_2-x")
        );
        assert_eq!(
            layer_name_of("arn:aws:lambda:us-east-1:000000000000:layer:deps", &account)
                .ok()
                .as_deref(),
            Some("deps")
        );
        for bad in ["", "a b", "../x", &"x".repeat(65), "arn:aws:s3:::bucket"] {
            let err = layer_name_of(bad, &account).expect_err(bad);
            assert_eq!(err.error_type(), "ValidationException", "{bad}");
        }
    }

    #[test]
    fn code_and_layers_share_the_unzipped_limit() {
        let layer = |size| LayerRef {
            arn: "arn:aws:lambda:us-east-1:000000000000:layer:l:1".into(),
            content: code(size),
        };
        let max = crate::limits::UNZIPPED_MAX_BYTES;
        assert!(check_unzipped_total(&code(max - 200), &[layer(100), layer(100)]).is_ok());
        let err = check_unzipped_total(&code(max - 200), &[layer(100), layer(101)])
            .expect_err("one byte over");
        assert_eq!(
            err.message(),
            "Function code combined with layers exceeds the maximum allowed size of 262144000 \
             bytes. The actual size is 262144001 bytes."
        );
        assert!(check_unzipped_total(&code(1), &[layer(u64::MAX), layer(1)]).is_err());
    }
}
