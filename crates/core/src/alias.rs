//! Aliases: named pointers at a function version, optionally splitting traffic with a second
//! version (`lambda-compat.md` §5, CreateAlias).
//!
//! [`Alias::validate`] applies the rules that need nothing but the alias itself, with the error
//! type and wording Lambda uses for each; that the versions it names exist is for the store to
//! check, in the same transaction that writes the alias.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::ServiceError;
use crate::function::FunctionVersion;
use crate::limits::DESCRIPTION_MAX_CHARS;
use crate::names::FunctionName;

/// The model's pattern for alias names: not all digits (that would read as a version number).
pub const ALIAS_NAME_PATTERN: &str = "(?!^[0-9]+$)([a-zA-Z0-9-_]+)";
/// Longest alias name.
pub const ALIAS_NAME_MAX: usize = 128;
/// The pattern an alias's `FunctionVersion` must match.
const VERSION_PATTERN: &str = "(\\$LATEST|[0-9]+)";
/// Longest version string the model accepts.
const VERSION_MAX: usize = 1024;
/// Lambda routes to at most one version besides the alias's own.
pub const ADDITIONAL_VERSIONS_MAX: usize = 1;

/// An alias of a function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alias {
    /// The alias name: 1–128 of `[a-zA-Z0-9-_]`, not all digits.
    pub name: String,
    /// The function it belongs to.
    pub function: FunctionName,
    /// The version it points at: `$LATEST` or a published version number.
    pub function_version: String,
    /// Free text, at most 256 characters.
    pub description: String,
    /// `AdditionalVersionWeights`: another published version and the share of invocations
    /// (0.0–1.0) routed to it instead of `function_version`. Empty without a routing config.
    pub routing: BTreeMap<String, f64>,
    /// Changes on every update; callers pass it back for optimistic concurrency.
    pub revision_id: String,
}

impl Alias {
    /// Check everything that does not depend on other records: the name, the version strings,
    /// the description and the routing rules. Model constraints are `ValidationException`,
    /// Lambda's own rules `InvalidParameterValueException`, in the order Lambda applies them.
    pub fn validate(&self) -> Result<(), ServiceError> {
        validate_alias_name(&self.name)?;
        validate_version(&self.function_version, "functionVersion")?;
        if self.description.chars().count() > DESCRIPTION_MAX_CHARS {
            return Err(ServiceError::constraint(
                &self.description,
                "description",
                &format!("Member must have length less than or equal to {DESCRIPTION_MAX_CHARS}"),
            ));
        }
        validate_routing(&self.function_version, &self.routing)
    }

    /// The version the alias points at, if it is a well-formed version string.
    pub fn primary(&self) -> Option<FunctionVersion> {
        FunctionVersion::parse(&self.function_version)
    }

    /// The published version numbers the alias routes to: its own and any additional one.
    pub fn published_versions(&self) -> Vec<u64> {
        let mut out: Vec<u64> = std::iter::once(self.function_version.as_str())
            .chain(self.routing.keys().map(String::as_str))
            .filter_map(FunctionVersion::parse)
            .filter_map(FunctionVersion::number)
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Whether the alias routes any invocations to published version `version`.
    pub fn references(&self, version: u64) -> bool {
        self.published_versions().contains(&version)
    }
}

/// An alias name as the model allows it (`ValidationException` otherwise).
pub fn validate_alias_name(name: &str) -> Result<(), ServiceError> {
    if name.is_empty() {
        return Err(ServiceError::constraint(
            name,
            "name",
            "Member must have length greater than or equal to 1",
        ));
    }
    if name.len() > ALIAS_NAME_MAX {
        return Err(ServiceError::constraint(
            name,
            "name",
            &format!("Member must have length less than or equal to {ALIAS_NAME_MAX}"),
        ));
    }
    let allowed = name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !allowed || name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ServiceError::constraint(
            name,
            "name",
            &format!("Member must satisfy regular expression pattern: {ALIAS_NAME_PATTERN}"),
        ));
    }
    Ok(())
}

/// A version string (`$LATEST` or a number) as the model allows it in `field`.
pub fn validate_version(version: &str, field: &str) -> Result<FunctionVersion, ServiceError> {
    if version.is_empty() || version.len() > VERSION_MAX {
        return Err(ServiceError::constraint(
            version,
            field,
            &format!("Member must have length between 1 and {VERSION_MAX}"),
        ));
    }
    FunctionVersion::parse(version).ok_or_else(|| {
        ServiceError::constraint(
            version,
            field,
            &format!("Member must satisfy regular expression pattern: {VERSION_PATTERN}"),
        )
    })
}

/// Lambda's rules for `RoutingConfig.AdditionalVersionWeights` of an alias pointing at
/// `primary`: at most one entry, a weight between 0.0 and 1.0, a published version number
/// other than the primary, and a primary that is itself published.
pub fn validate_routing(
    primary: &str,
    routing: &BTreeMap<String, f64>,
) -> Result<(), ServiceError> {
    if routing.len() > ADDITIONAL_VERSIONS_MAX {
        return Err(ServiceError::InvalidParameterValue(format!(
            "Number of items in AdditionalVersionWeights cannot be greater than {ADDITIONAL_VERSIONS_MAX}"
        )));
    }
    for (version, weight) in routing {
        let entry = format!("{{{version}={weight:?}}}");
        if !(0.0..=1.0).contains(weight) {
            return Err(ServiceError::constraint(
                entry,
                "routingConfig.additionalVersionWeights",
                "Map value must satisfy constraint: [Member must have value less than or equal to 1.0, Member must have value greater than or equal to 0.0, Member must not be null]",
            ));
        }
        if version == primary {
            return Err(ServiceError::InvalidParameterValue(format!(
                "Invalid function version {primary}. Function version {primary} is already included in routing configuration."
            )));
        }
        if primary == "$LATEST" {
            return Err(ServiceError::InvalidParameterValue(
                "$LATEST is not supported for an alias pointing to more than 1 version".to_owned(),
            ));
        }
        let numeric = !version.is_empty()
            && version.len() <= VERSION_MAX
            && version.bytes().all(|b| b.is_ascii_digit());
        if !numeric || FunctionVersion::parse(version).is_none() {
            return Err(ServiceError::constraint(
                entry,
                "routingConfig.additionalVersionWeights",
                "Map keys must satisfy constraint: [Member must have length less than or equal to 1024, Member must have length greater than or equal to 1, Member must satisfy regular expression pattern: [0-9]+, Member must not be null]",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alias(name: &str, version: &str, routing: &[(&str, f64)]) -> Alias {
        Alias {
            name: name.to_owned(),
            function: FunctionName::new("f").expect("valid"),
            function_version: version.to_owned(),
            description: String::new(),
            routing: routing.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect(),
            revision_id: "r".to_owned(),
        }
    }

    fn kind(result: Result<(), ServiceError>) -> &'static str {
        result.map_or_else(|e| e.error_type(), |()| "ok")
    }

    #[test]
    fn names_follow_the_model() {
        for ok in ["live", "prod-2", "v_1", "1a", &"a".repeat(128)] {
            assert!(validate_alias_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "123", "has space", "a:b", "$LATEST", &"a".repeat(129)] {
            let err = validate_alias_name(bad).expect_err(bad);
            assert_eq!(err.error_type(), "ValidationException", "{bad}");
        }
        let err = validate_alias_name("42").expect_err("digits");
        assert!(
            err.message().contains(ALIAS_NAME_PATTERN),
            "{}",
            err.message()
        );
    }

    #[test]
    fn routing_rules_have_lambdas_error_types() {
        let ok = |a: Alias| kind(a.validate());
        assert_eq!(ok(alias("live", "1", &[])), "ok");
        assert_eq!(ok(alias("live", "$LATEST", &[])), "ok");
        assert_eq!(ok(alias("live", "1", &[("2", 0.25)])), "ok");
        assert_eq!(ok(alias("live", "1", &[("2", 0.0)])), "ok");
        assert_eq!(ok(alias("live", "1", &[("2", 1.0)])), "ok");
        assert_eq!(
            ok(alias("live", "1", &[("2", 0.1), ("3", 0.1)])),
            "InvalidParameterValueException"
        );
        assert_eq!(ok(alias("live", "1", &[("2", 1.5)])), "ValidationException");
        assert_eq!(
            ok(alias("live", "1", &[("2", -0.1)])),
            "ValidationException"
        );
        assert_eq!(
            ok(alias("live", "1", &[("1", 0.5)])),
            "InvalidParameterValueException"
        );
        assert_eq!(
            ok(alias("live", "$LATEST", &[("2", 0.5)])),
            "InvalidParameterValueException"
        );
        assert_eq!(
            ok(alias("live", "1", &[("$LATEST", 0.5)])),
            "ValidationException"
        );
        assert_eq!(ok(alias("live", "one", &[])), "ValidationException");
        assert_eq!(ok(alias("7", "1", &[])), "ValidationException");

        let err = alias("live", "1", &[("1", 0.5)])
            .validate()
            .expect_err("primary in routing");
        assert_eq!(
            err.message(),
            "Invalid function version 1. Function version 1 is already included in routing configuration."
        );
        let err = alias("live", "1", &[("2", 2.0)])
            .validate()
            .expect_err("weight");
        assert!(err.message().starts_with("1 validation error detected: Value '{2=2.0}' at 'routingConfig.additionalVersionWeights'"), "{}", err.message());
    }

    #[test]
    fn published_versions_include_the_routing_target() {
        assert_eq!(
            alias("a", "$LATEST", &[]).published_versions(),
            Vec::<u64>::new()
        );
        let a = alias("a", "3", &[("5", 0.5)]);
        assert_eq!(a.published_versions(), [3, 5]);
        assert!(a.references(5) && a.references(3) && !a.references(4));
        assert_eq!(a.primary(), Some(FunctionVersion::Published(3)));
    }
}
