//! TagResource, UntagResource and ListTags on function ARNs.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use nimbus_core::{limits, validate, FunctionName, FunctionRef, ServiceError, StoreError};

use super::extract::{PathParam, QueryPairs};
use crate::body::read_json;
use crate::error::ApiError;
use crate::model::{ListTagsResponse, TagResourceRequest};
use crate::ApiState;

/// Tags belong to a function, named by its full unqualified ARN.
fn function_of(api: &ApiState, arn: &str) -> Result<FunctionName, ApiError> {
    let invalid = || {
        ApiError(ServiceError::InvalidParameterValue(format!(
            "Resource {arn} is not a valid function ARN; tags take an unqualified function ARN."
        )))
    };
    if !arn.starts_with("arn:") {
        return Err(invalid());
    }
    let r = FunctionRef::parse(arn).map_err(|_| invalid())?;
    if r.qualifier.is_some() {
        return Err(invalid());
    }
    if !r.belongs_to(&api.account) {
        return Err(ServiceError::function_not_found(arn).into());
    }
    Ok(r.name)
}

fn not_found(api: &ApiState, name: &FunctionName) -> ApiError {
    ServiceError::function_not_found(&api.account.function_arn(name)).into()
}

pub(crate) async fn list(
    State(api): State<ApiState>,
    PathParam(arn): PathParam,
) -> Result<Json<ListTagsResponse>, ApiError> {
    let name = function_of(&api, &arn)?;
    match api.meta.get_tags(&name).await {
        Ok(tags) => Ok(Json(ListTagsResponse { tags })),
        Err(StoreError::NotFound) => Err(not_found(&api, &name)),
        Err(err) => Err(err.into()),
    }
}

pub(crate) async fn tag(
    State(api): State<ApiState>,
    PathParam(arn): PathParam,
    headers: HeaderMap,
    body: Body,
) -> Result<StatusCode, ApiError> {
    let name = function_of(&api, &arn)?;
    let req: TagResourceRequest =
        read_json(&headers, body, limits::REQUEST_MAX_BYTES, "TagResource").await?;
    let mut merged = match api.meta.get_tags(&name).await {
        Ok(tags) => tags,
        Err(StoreError::NotFound) => return Err(not_found(&api, &name)),
        Err(err) => return Err(err.into()),
    };
    merged.extend(req.tags.clone());
    validate::validate_tags(&merged)?;
    match api.meta.update_tags(&name, &req.tags, &[]).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::NotFound) => Err(not_found(&api, &name)),
        Err(err) => Err(err.into()),
    }
}

pub(crate) async fn untag(
    State(api): State<ApiState>,
    PathParam(arn): PathParam,
    query: QueryPairs,
) -> Result<StatusCode, ApiError> {
    let name = function_of(&api, &arn)?;
    let keys = query.all("tagKeys");
    if keys.is_empty() {
        return Err(ServiceError::constraint("null", "tagKeys", "Member must not be null").into());
    }
    match api
        .meta
        .update_tags(&name, &Default::default(), &keys)
        .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::NotFound) => Err(not_found(&api, &name)),
        Err(err) => Err(err.into()),
    }
}
