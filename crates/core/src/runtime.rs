//! Runtime identifiers: the ones Nimbus runs, and the ones AWS knows of.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ServiceError;

/// Every runtime name in the Lambda API model; a name outside this list is a `ValidationException`,
/// a name inside it that Nimbus does not run is an `InvalidParameterValueException`.
const AWS_RUNTIMES: &[&str] = &[
    "dotnet10",
    "dotnet6",
    "dotnet8",
    "dotnetcore1.0",
    "dotnetcore2.0",
    "dotnetcore2.1",
    "dotnetcore3.1",
    "go1.x",
    "java11",
    "java11.al2023",
    "java17",
    "java17.al2023",
    "java21",
    "java25",
    "java8",
    "java8.al2",
    "java8.al2023",
    "nodejs",
    "nodejs10.x",
    "nodejs12.x",
    "nodejs14.x",
    "nodejs16.x",
    "nodejs18.x",
    "nodejs20.x",
    "nodejs22.x",
    "nodejs24.x",
    "nodejs26.x",
    "nodejs4.3",
    "nodejs4.3-edge",
    "nodejs6.10",
    "nodejs8.10",
    "provided",
    "provided.al2",
    "provided.al2023",
    "python2.7",
    "python3.10",
    "python3.11",
    "python3.12",
    "python3.13",
    "python3.14",
    "python3.15",
    "python3.6",
    "python3.7",
    "python3.8",
    "python3.9",
    "ruby2.5",
    "ruby2.7",
    "ruby3.2",
    "ruby3.3",
    "ruby3.4",
    "ruby4.0",
];

/// The runtimes Nimbus runs, by their Lambda names.
pub const SUPPORTED: &[&str] = &[
    "python3.9",
    "python3.10",
    "python3.11",
    "python3.12",
    "python3.13",
    "python3.14",
    "nodejs18.x",
    "nodejs20.x",
    "nodejs22.x",
    "nodejs24.x",
    "provided",
    "provided.al2",
    "provided.al2023",
];

/// The family of a runtime decides how an environment starts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeFamily {
    /// Python, through the runtime interface client in `runtimes/python`.
    Python,
    /// Node.js, through the runtime interface client in `runtimes/node`.
    Node,
    /// An OS-only runtime: the package's own `bootstrap` executable.
    Provided,
}

/// A runtime Nimbus runs, e.g. `python3.12`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Runtime(String);

impl Runtime {
    /// Parse a runtime name from a request.
    pub fn parse(name: &str) -> Result<Self, ServiceError> {
        if SUPPORTED.contains(&name) {
            return Ok(Self(name.to_owned()));
        }
        if AWS_RUNTIMES.contains(&name) {
            return Err(ServiceError::InvalidParameterValue(format!(
                "The runtime parameter of {name} is not supported by Nimbus. Supported runtimes: {}",
                SUPPORTED.join(", ")
            )));
        }
        Err(ServiceError::constraint(
            name,
            "runtime",
            &format!(
                "Member must satisfy enum value set: [{}]",
                AWS_RUNTIMES.join(", ")
            ),
        ))
    }

    /// The Lambda name of the runtime.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Which family the runtime belongs to.
    pub fn family(&self) -> RuntimeFamily {
        if self.0.starts_with("python") {
            RuntimeFamily::Python
        } else if self.0.starts_with("nodejs") {
            RuntimeFamily::Node
        } else {
            RuntimeFamily::Provided
        }
    }
}

impl TryFrom<String> for Runtime {
    type Error = ServiceError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::parse(&s)
    }
}

impl From<Runtime> for String {
    fn from(r: Runtime) -> Self {
        r.0
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn supported_unsupported_and_unknown_runtimes_differ() {
        assert_eq!(
            Runtime::parse("python3.12").map(|r| r.family()),
            Ok(RuntimeFamily::Python)
        );
        assert_eq!(
            Runtime::parse("provided.al2023").map(|r| r.family()),
            Ok(RuntimeFamily::Provided)
        );
        let unsupported = Runtime::parse("java21").expect_err("java is not run");
        assert_eq!(unsupported.error_type(), "InvalidParameterValueException");
        let unknown = Runtime::parse("cobol85").expect_err("unknown");
        assert_eq!(unknown.error_type(), "ValidationException");
        assert!(SUPPORTED.iter().all(|r| AWS_RUNTIMES.contains(r)));
    }
}
