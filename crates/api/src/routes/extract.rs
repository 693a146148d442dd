//! Extractors whose rejections are Lambda errors rather than axum's plain-text ones.

use axum::extract::{FromRequestParts, Path, Query};
use axum::http::request::Parts;
use nimbus_core::ServiceError;

use crate::error::ApiError;

/// One path parameter, percent-decoded.
pub(crate) struct PathParam(pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathParam {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(p)| Self(p))
            .map_err(|err| ApiError(ServiceError::InvalidRequestContent(err.body_text())))
    }
}

/// The query string as ordered pairs (a key may repeat, as `tagKeys` does).
pub(crate) struct QueryPairs(pub Vec<(String, String)>);

impl QueryPairs {
    /// The first value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key`.
    pub(crate) fn all(&self, key: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| Self(q))
            .map_err(|err| ApiError(ServiceError::InvalidRequestContent(err.body_text())))
    }
}

/// Two path parameters (a function and a sub-resource, as in `.../aliases/{Name}`),
/// percent-decoded.
pub(crate) struct PathPair(pub String, pub String);

impl<S: Send + Sync> FromRequestParts<S> for PathPair {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map(|Path((a, b))| Self(a, b))
            .map_err(|err| ApiError(ServiceError::InvalidRequestContent(err.body_text())))
    }
}
