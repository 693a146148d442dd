//! Function URLs (a function's own HTTPS endpoint on AWS) and HTTP routes (API-Gateway-HTTP-API
//! style routes of the Nimbus gateway): the records the metadata store keeps for the gateway.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ServiceError;
use crate::names::FunctionName;

/// The qualifier under which an unqualified function URL is stored (`$LATEST`).
pub const LATEST: &str = "$LATEST";

/// Cross-origin resource sharing settings of a function URL, field for field as Lambda's `Cors`
/// shape (which is also how they are stored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Cors {
    /// `Access-Control-Allow-Credentials`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
    /// `Access-Control-Allow-Headers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_headers: Option<Vec<String>>,
    /// `Access-Control-Allow-Methods`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_methods: Option<Vec<String>>,
    /// Origins allowed (`*` for any).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_origins: Option<Vec<String>>,
    /// `Access-Control-Expose-Headers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expose_headers: Option<Vec<String>>,
    /// `Access-Control-Max-Age`, seconds (0–86400).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<i64>,
}

impl Cors {
    /// Lambda's model constraints: at most 100 entries per list, header names and methods of
    /// at most 1024 and 6 characters, origins of 1–253 characters, MaxAge 0–86400.
    pub fn validate(&self) -> Result<(), ServiceError> {
        let lists: [(&str, &Option<Vec<String>>, usize, usize); 4] = [
            ("cors.allowHeaders", &self.allow_headers, 0, 1024),
            ("cors.allowMethods", &self.allow_methods, 0, 6),
            ("cors.allowOrigins", &self.allow_origins, 1, 253),
            ("cors.exposeHeaders", &self.expose_headers, 0, 1024),
        ];
        for (field, list, min, max) in lists {
            let Some(list) = list else { continue };
            if list.len() > 100 {
                return Err(ServiceError::constraint(
                    format!("{list:?}"),
                    field,
                    "Member must have length less than or equal to 100",
                ));
            }
            for item in list {
                if item.len() < min || item.len() > max {
                    return Err(ServiceError::constraint(
                        item,
                        &format!("{field}.member"),
                        &format!("Member must have length between {min} and {max}"),
                    ));
                }
            }
        }
        if let Some(age) = self.max_age {
            if !(0..=86_400).contains(&age) {
                return Err(ServiceError::constraint(
                    age,
                    "cors.maxAge",
                    "Member must have value between 0 and 86400",
                ));
            }
        }
        Ok(())
    }
}

/// How a function URL returns the function's response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvokeMode {
    /// The whole response at once (`Invoke`), up to 6 MB.
    #[default]
    #[serde(rename = "BUFFERED")]
    Buffered,
    /// The response as the function streams it (`InvokeWithResponseStream`).
    #[serde(rename = "RESPONSE_STREAM")]
    ResponseStream,
}

impl InvokeMode {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Buffered => "BUFFERED",
            Self::ResponseStream => "RESPONSE_STREAM",
        }
    }

    /// Parse the wire name; `ValidationException` with the model's enum otherwise.
    pub fn parse(s: &str) -> Result<Self, ServiceError> {
        match s {
            "BUFFERED" => Ok(Self::Buffered),
            "RESPONSE_STREAM" => Ok(Self::ResponseStream),
            other => Err(ServiceError::constraint(
                other,
                "invokeMode",
                "Member must satisfy enum value set: [RESPONSE_STREAM, BUFFERED]",
            )),
        }
    }
}

/// A function URL: the endpoint `<url_id>.lambda-url.<region>.…` that invokes
/// `function:qualifier`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionUrlConfig {
    /// 32 lower-case alphanumerics, the first label of the URL's host name.
    pub url_id: String,
    /// The function it invokes.
    pub function: FunctionName,
    /// [`LATEST`] for the unqualified function, else an alias name.
    pub qualifier: String,
    /// `NONE` (the only auth type Nimbus serves today).
    pub auth_type: String,
    /// CORS settings, if any.
    pub cors: Option<Cors>,
    /// Buffered or streamed responses.
    pub invoke_mode: InvokeMode,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// When it was last changed.
    pub last_modified: DateTime<Utc>,
}

impl FunctionUrlConfig {
    /// A fresh random URL id, as AWS's: 32 characters from `[a-z0-9]`.
    pub fn new_url_id() -> String {
        uuid::Uuid::new_v4().simple().to_string()
    }

    /// Whether `id` could be a URL id (so host names that cannot be one are not looked up).
    pub fn is_url_id(id: &str) -> bool {
        id.len() == 32
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    }

    /// The alias the URL invokes, or `None` for `$LATEST`.
    pub fn alias(&self) -> Option<&str> {
        (self.qualifier != LATEST).then_some(self.qualifier.as_str())
    }
}

/// One page of a function's URL configs, in qualifier order.
#[derive(Debug, Clone, Default)]
pub struct FunctionUrlPage {
    /// The configs on this page.
    pub urls: Vec<FunctionUrlConfig>,
    /// Whether more follow.
    pub more: bool,
}

/// An HTTP route of the Nimbus gateway: requests matching `route_key` invoke `target`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HttpRoute {
    /// `$default` or `METHOD /path`, as the gateway's route parser accepts it.
    pub route_key: String,
    /// A function name or ARN, optionally with `:alias` (a `FunctionRef`).
    pub target: String,
    /// When it was last set.
    pub updated: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_ids_are_32_lowercase_alphanumerics() {
        let id = FunctionUrlConfig::new_url_id();
        assert!(FunctionUrlConfig::is_url_id(&id), "{id}");
        assert!(!FunctionUrlConfig::is_url_id("ABC"));
        assert!(!FunctionUrlConfig::is_url_id(&"A".repeat(32)));
    }

    #[test]
    fn cors_limits_are_checked() {
        let ok = Cors {
            allow_origins: Some(vec!["*".into()]),
            max_age: Some(86_400),
            ..Cors::default()
        };
        assert!(ok.validate().is_ok());
        let bad = Cors {
            max_age: Some(86_401),
            ..Cors::default()
        };
        assert!(matches!(bad.validate(), Err(ServiceError::Validation(_))));
        let bad = Cors {
            allow_methods: Some(vec!["TOOLONGMETHOD".into()]),
            ..Cors::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn invoke_modes_round_trip() {
        assert_eq!(
            InvokeMode::parse("BUFFERED").expect("valid"),
            InvokeMode::Buffered
        );
        assert_eq!(
            InvokeMode::parse("RESPONSE_STREAM")
                .expect("valid")
                .as_str(),
            "RESPONSE_STREAM"
        );
        assert!(InvokeMode::parse("STREAM").is_err());
    }
}
