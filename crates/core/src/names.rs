//! Function names and the forms in which callers refer to a function.
//!
//! A caller may name a function as `name`, `name:qualifier`, `123456789012:function:name[:q]` or
//! `arn:aws:lambda:region:account:function:name[:q]`; [`FunctionRef::parse`] accepts all of them.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::arn::AccountContext;
use crate::error::ServiceError;

const NAME_PATTERN: &str = "(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?(-iso([a-z])?)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)(:(\\$LATEST(\\.PUBLISHED)?|[a-zA-Z0-9-_]+))?";
const NAME_MAX: usize = 64;

/// A plain function name: 1–64 characters of `[a-zA-Z0-9-_]`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FunctionName(String);

impl FunctionName {
    /// Validate a plain name.
    pub fn new(name: &str) -> Result<Self, ServiceError> {
        if name.is_empty() || name.len() > NAME_MAX || !name.bytes().all(is_name_byte) {
            return Err(invalid_function_name(name));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for FunctionName {
    type Error = ServiceError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<FunctionName> for String {
    fn from(n: FunctionName) -> Self {
        n.0
    }
}

impl fmt::Display for FunctionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

fn invalid_function_name(value: &str) -> ServiceError {
    ServiceError::constraint(
        value,
        "functionName",
        &format!("Member must satisfy regular expression pattern: {NAME_PATTERN}"),
    )
}

/// Which version of a function a request means: `$LATEST`, a published version number or an alias.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Qualifier {
    /// `$LATEST`, the unpublished, editable version.
    Latest,
    /// A published version, `1`, `2`, …
    Version(u64),
    /// An alias name.
    Alias(String),
}

impl Qualifier {
    /// Parse a qualifier as it appears after `:` or in `?Qualifier=`.
    pub fn parse(s: &str) -> Result<Self, ServiceError> {
        if s == "$LATEST" {
            return Ok(Self::Latest);
        }
        let valid =
            !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| is_name_byte(b) || b == b'$');
        if !valid {
            return Err(ServiceError::constraint(
                s,
                "qualifier",
                "Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)",
            ));
        }
        if s.bytes().all(|b| b.is_ascii_digit()) {
            return s.parse().map(Self::Version).map_err(|_| {
                ServiceError::InvalidParameterValue(format!("Invalid version number: {s}"))
            });
        }
        Ok(Self::Alias(s.to_owned()))
    }
}

impl fmt::Display for Qualifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Latest => f.write_str("$LATEST"),
            Self::Version(v) => write!(f, "{v}"),
            Self::Alias(a) => f.write_str(a),
        }
    }
}

/// A function as a caller named it, with any region, account and qualifier it carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    /// The plain function name.
    pub name: FunctionName,
    /// The qualifier, if the reference carried one.
    pub qualifier: Option<Qualifier>,
    region: Option<String>,
    account_id: Option<String>,
}

impl FunctionRef {
    /// Parse any of the accepted forms of a function reference.
    pub fn parse(input: &str) -> Result<Self, ServiceError> {
        if input.is_empty() || input.len() > 256 {
            return Err(ServiceError::constraint(
                input,
                "functionName",
                "Member must have length between 1 and 256",
            ));
        }
        let bad = || invalid_function_name(input);
        let parts: Vec<&str> = input.split(':').collect();
        let (region, account_id, rest): (Option<&str>, Option<&str>, &[&str]) = match parts[..] {
            ["arn", partition, "lambda", region, account, "function", ref rest @ ..] => {
                if !partition.starts_with("aws") || !is_region(region) || !is_account(account) {
                    return Err(bad());
                }
                (Some(region), Some(account), rest)
            }
            [account, "function", ref rest @ ..] if is_account(account) => {
                (None, Some(account), rest)
            }
            ref rest => (None, None, rest),
        };
        let (name, qualifier) = match rest {
            [name] => (*name, None),
            [name, qualifier] => (*name, Some(*qualifier)),
            _ => return Err(bad()),
        };
        let name = FunctionName::new(name).map_err(|_| bad())?;
        let qualifier = qualifier.map(Qualifier::parse).transpose()?;
        Ok(Self {
            name,
            qualifier,
            region: region.map(str::to_owned),
            account_id: account_id.map(str::to_owned),
        })
    }

    /// A reference to `$LATEST` (or whatever qualifier is given) of a plain name.
    pub fn from_name(name: FunctionName) -> Self {
        Self {
            name,
            qualifier: None,
            region: None,
            account_id: None,
        }
    }

    /// The ARN this reference names on this server: qualified when it carries a qualifier.
    pub fn arn(&self, ctx: &AccountContext) -> String {
        match &self.qualifier {
            Some(q) => ctx.qualified_function_arn(&self.name, &q.to_string()),
            None => ctx.function_arn(&self.name),
        }
    }

    /// The name, if the reference means `$LATEST` of a function of this server; otherwise the
    /// `ResourceNotFoundException` Lambda answers. For callers that resolve only `$LATEST`;
    /// [`local`](Self::local) hands out versions and aliases too.
    pub fn latest(&self, ctx: &AccountContext) -> Result<&FunctionName, ServiceError> {
        if self.belongs_to(ctx) && matches!(self.qualifier, None | Some(Qualifier::Latest)) {
            Ok(&self.name)
        } else {
            Err(ServiceError::function_not_found(&self.arn(ctx)))
        }
    }

    /// The name and the qualifier (if any) when the reference names a function of this server;
    /// otherwise the `ResourceNotFoundException` Lambda answers. Whether that version or alias
    /// exists is for the caller to look up.
    pub fn local(
        &self,
        ctx: &AccountContext,
    ) -> Result<(&FunctionName, Option<&Qualifier>), ServiceError> {
        if self.belongs_to(ctx) {
            Ok((&self.name, self.qualifier.as_ref()))
        } else {
            Err(ServiceError::function_not_found(&self.arn(ctx)))
        }
    }

    /// The name, for operations on a function as a whole (publishing, aliases, reserved
    /// concurrency): a reference of another account or region names nothing here
    /// (`ResourceNotFoundException`), and a qualifier other than `$LATEST` is refused with
    /// `InvalidParameterValueException`.
    pub fn unqualified(&self, ctx: &AccountContext) -> Result<&FunctionName, ServiceError> {
        match self.local(ctx)? {
            (name, None | Some(Qualifier::Latest)) => Ok(name),
            (_, Some(_)) => Err(ServiceError::InvalidParameterValue(format!(
                "{} names a version or alias; this operation applies to the whole function, so name it without a qualifier.",
                self.arn(ctx)
            ))),
        }
    }

    /// Whether a region and account in the reference, if any, are this server's.
    pub fn belongs_to(&self, ctx: &AccountContext) -> bool {
        self.region.as_deref().is_none_or(|r| r == ctx.region)
            && self
                .account_id
                .as_deref()
                .is_none_or(|a| a == ctx.account_id)
    }

    /// Combine the qualifier inside the name with a `?Qualifier=` parameter; they must agree.
    pub fn with_qualifier_param(mut self, param: Option<&str>) -> Result<Self, ServiceError> {
        let Some(param) = param else {
            return Ok(self);
        };
        let q = Qualifier::parse(param)?;
        match &self.qualifier {
            Some(existing) if *existing != q => Err(ServiceError::InvalidParameterValue(
                "The derived qualifier from the function name does not match the specified qualifier."
                    .to_owned(),
            )),
            _ => {
                self.qualifier = Some(q);
                Ok(self)
            }
        }
    }
}

fn is_region(s: &str) -> bool {
    // `[a-z]{2}(-gov)?(-iso[a-z]?)?-[a-z]+-\d`, checked loosely: lowercase words and one digit.
    let segments: Vec<&str> = s.split('-').collect();
    segments.len() >= 3
        && segments[0].len() == 2
        && segments[..segments.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && segments[segments.len() - 1].len() == 1
        && segments[segments.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_digit())
}

fn is_account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let plain = FunctionRef::parse("my-fn").expect("plain");
        assert_eq!(plain.name.as_str(), "my-fn");
        assert_eq!(plain.qualifier, None);

        let q = FunctionRef::parse("my-fn:prod").expect("qualified");
        assert_eq!(q.qualifier, Some(Qualifier::Alias("prod".into())));

        let partial = FunctionRef::parse("123456789012:function:my-fn:7").expect("partial");
        assert_eq!(partial.qualifier, Some(Qualifier::Version(7)));
        assert!(!partial.belongs_to(&AccountContext::default()));

        let full =
            FunctionRef::parse("arn:aws:lambda:us-east-1:000000000000:function:my-fn:$LATEST")
                .expect("full");
        assert_eq!(full.qualifier, Some(Qualifier::Latest));
        assert!(full.belongs_to(&AccountContext::default()));
    }

    #[test]
    fn rejects_malformed_references() {
        for bad in [
            "",
            "has space",
            "a:b:c",
            "arn:aws:s3:us-east-1:000000000000:function:f",
            "arn:aws:lambda:useast1:000000000000:function:f",
            &"x".repeat(65),
            "../etc",
        ] {
            let err = FunctionRef::parse(bad).expect_err(bad);
            assert_eq!(err.error_type(), "ValidationException", "{bad}");
        }
    }

    #[test]
    fn only_latest_of_this_account_resolves_until_versions_exist() {
        let ctx = AccountContext::default();
        for ok in [
            "f",
            "f:$LATEST",
            "arn:aws:lambda:us-east-1:000000000000:function:f",
        ] {
            let r = FunctionRef::parse(ok).expect("parse");
            assert_eq!(r.latest(&ctx).map(FunctionName::as_str), Ok("f"), "{ok}");
        }
        let err = FunctionRef::parse("f:3")
            .expect("parse")
            .latest(&ctx)
            .expect_err("version");
        assert_eq!(
            err.message(),
            "Function not found: arn:aws:lambda:us-east-1:000000000000:function:f:3"
        );
        let other = FunctionRef::parse("111111111111:function:f").expect("parse");
        assert!(other.latest(&ctx).is_err());
    }

    #[test]
    fn local_references_carry_their_qualifier() {
        let ctx = AccountContext::default();
        let r = FunctionRef::parse("f:live").expect("parse");
        let (name, q) = r.local(&ctx).expect("local");
        assert_eq!(name.as_str(), "f");
        assert_eq!(q, Some(&Qualifier::Alias("live".into())));
        let r = FunctionRef::parse("arn:aws:lambda:us-east-1:000000000000:function:f:3")
            .expect("parse");
        assert_eq!(
            r.local(&ctx).expect("local").1,
            Some(&Qualifier::Version(3))
        );
        let other =
            FunctionRef::parse("arn:aws:lambda:eu-west-1:000000000000:function:f").expect("parse");
        assert_eq!(
            other.local(&ctx).expect_err("other region").error_type(),
            "ResourceNotFoundException"
        );

        for whole in ["f", "f:$LATEST", "000000000000:function:f"] {
            let r = FunctionRef::parse(whole).expect("parse");
            assert_eq!(r.unqualified(&ctx).map(FunctionName::as_str), Ok("f"));
        }
        for part in ["f:1", "f:live"] {
            let err = FunctionRef::parse(part)
                .expect("parse")
                .unqualified(&ctx)
                .expect_err(part);
            assert_eq!(err.error_type(), "InvalidParameterValueException", "{part}");
        }
    }

    #[test]
    fn qualifier_param_must_agree_with_name() {
        let r = FunctionRef::parse("f:1").expect("parse");
        assert!(r.clone().with_qualifier_param(Some("1")).is_ok());
        assert!(r.with_qualifier_param(Some("2")).is_err());
    }
}
