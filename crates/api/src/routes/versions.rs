//! Versions: PublishVersion and ListVersionsByFunction. Deleting a version is DeleteFunction
//! with a qualifier (in `functions`).

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use base64::Engine as _;
use nimbus_core::{limits, CodeRef, FunctionRef, FunctionVersion, ServiceError, StoreError};

use super::extract::{PathParam, QueryPairs};
use super::functions::revision_mismatch;
use super::paging;
use crate::body::{parse_json, read_limited};
use crate::error::ApiError;
use crate::model::{FunctionConfiguration, ListVersionsResponse, PublishVersionRequest};
use crate::ApiState;

pub(crate) async fn publish(
    State(api): State<ApiState>,
    PathParam(raw): PathParam,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<FunctionConfiguration>), ApiError> {
    let r = FunctionRef::parse(&raw)?;
    let name = r.unqualified(&api.account)?.clone();
    let bytes = read_limited(&headers, body, limits::REQUEST_MAX_BYTES, "PublishVersion").await?;
    // Every member is optional, and some clients send no body at all.
    let req: PublishVersionRequest = if bytes.iter().all(u8::is_ascii_whitespace) {
        PublishVersionRequest::default()
    } else {
        parse_json(&bytes)?
    };
    if req.publish_to.is_some() {
        return Err(ServiceError::InvalidParameterValue(
            "PublishTo is not supported: Nimbus publishes numbered versions only.".to_owned(),
        )
        .into());
    }
    let description = req.description.unwrap_or_default();
    if description.chars().count() > limits::DESCRIPTION_MAX_CHARS {
        return Err(ServiceError::constraint(
            &description,
            "description",
            &format!(
                "Member must have length less than or equal to {}",
                limits::DESCRIPTION_MAX_CHARS
            ),
        )
        .into());
    }
    let expected_code = req.code_sha256.as_deref().filter(|c| !c.is_empty());
    // CodeSha256 arrives as base64; the store compares hex digests. A value that is not the
    // base64 of a SHA-256 matches no code, which the store reports like any other mismatch.
    let expected_hex = expected_code.map(|b64| {
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .ok()
            .filter(|digest| digest.len() == 32)
            .map_or_else(
                || "not a sha256".to_owned(),
                |digest| digest.iter().map(|b| format!("{b:02x}")).collect(),
            )
    });
    let published = api
        .meta
        .publish_version(
            &name,
            expected_hex.as_deref(),
            req.revision_id.as_deref(),
            &description,
        )
        .await;
    match published {
        Ok(version) => {
            tracing::info!(function = %name, version = %version.version, "version published");
            Ok((
                StatusCode::CREATED,
                Json(FunctionConfiguration::of(&version, &api.account)),
            ))
        }
        Err(StoreError::NotFound) => {
            Err(ServiceError::function_not_found(&api.account.function_arn(&name)).into())
        }
        Err(StoreError::RevisionMismatch) => Err(revision_mismatch()),
        Err(StoreError::CodeMismatch { current_sha256_hex }) => {
            let current = CodeRef {
                sha256_hex: current_sha256_hex,
                size: 0,
                unzipped_size: 0,
            }
            .sha256_base64();
            Err(ServiceError::InvalidParameterValue(format!(
                "CodeSHA256 ({}) is different from current CodeSHA256 in $LATEST ({current}). Please try again with the CodeSHA256 in $LATEST.",
                expected_code.unwrap_or_default()
            ))
            .into())
        }
        Err(err) => Err(err.into()),
    }
}

pub(crate) async fn list(
    State(api): State<ApiState>,
    PathParam(raw): PathParam,
    query: QueryPairs,
) -> Result<Json<ListVersionsResponse>, ApiError> {
    let r = FunctionRef::parse(&raw)?;
    let name = r.unqualified(&api.account)?.clone();
    let limit = paging::max_items(&query, limits::LIST_PAGE_MAX)?;
    let after = match query.get("Marker") {
        None => None,
        Some(marker) => {
            let text = paging::decode_marker(marker)?;
            if FunctionVersion::parse(&text).is_none() {
                return Err(ServiceError::InvalidParameterValue(format!(
                    "Invalid pagination marker: {marker}"
                ))
                .into());
            }
            Some(text)
        }
    };
    let page = match api.meta.list_versions(&name, after.as_deref(), limit).await {
        Ok(page) => page,
        Err(StoreError::NotFound) => {
            return Err(ServiceError::function_not_found(&api.account.function_arn(&name)).into())
        }
        Err(err) => return Err(err.into()),
    };
    let next_marker = match (page.more, page.versions.last()) {
        (true, Some(last)) => Some(paging::encode_marker(&last.version.to_string())),
        _ => None,
    };
    let versions = page
        .versions
        .iter()
        .map(|f| {
            let config = FunctionConfiguration::for_list(f, &api.account);
            // Listed among its versions, `$LATEST` carries its qualifier too.
            match f.version {
                FunctionVersion::Latest => config.named_by("$LATEST", f, &api.account),
                FunctionVersion::Published(_) => config,
            }
        })
        .collect();
    Ok(Json(ListVersionsResponse {
        versions,
        next_marker,
    }))
}
