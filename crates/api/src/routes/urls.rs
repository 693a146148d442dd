//! Function URLs: CreateFunctionUrlConfig, GetFunctionUrlConfig, UpdateFunctionUrlConfig,
//! DeleteFunctionUrlConfig and ListFunctionUrlConfigs (`/2021-10-31/functions/{name}/url[s]`).
//!
//! A URL belongs to the unqualified function (`$LATEST`) or to an alias. Lambda refuses
//! `$LATEST` spelled out and version numbers as URL qualifiers with a ValidationException (the
//! model's pattern); the messages below are Lambda's as recorded by LocalStack's AWS-validated
//! snapshots.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use nimbus_core::url::{Cors, FunctionUrlConfig, InvokeMode, LATEST};
use nimbus_core::{limits, FunctionName, FunctionRef, Qualifier, ServiceError, StoreError};
use serde::{Deserialize, Serialize};

use super::extract::{PathParam, QueryPairs};
use super::paging;
use crate::body::read_json;
use crate::error::ApiError;
use crate::ApiState;

/// Largest `MaxItems` of ListFunctionUrlConfigs (the model's `MaxItems` shape: 1–50).
const LIST_MAX: usize = 50;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UrlConfigRequest {
    auth_type: Option<String>,
    cors: Option<Cors>,
    invoke_mode: Option<String>,
}

/// FunctionUrlConfig as the responses carry it; CreateFunctionUrlConfig omits
/// `LastModifiedTime`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct UrlConfigResponse {
    function_url: String,
    function_arn: String,
    auth_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    cors: Option<Cors>,
    creation_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_modified_time: Option<String>,
    invoke_mode: &'static str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListUrlConfigsResponse {
    function_url_configs: Vec<UrlConfigResponse>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_marker: Option<String>,
}

fn describe(api: &ApiState, url: &FunctionUrlConfig, with_modified: bool) -> UrlConfigResponse {
    let function_arn = match url.alias() {
        Some(alias) => api.account.qualified_function_arn(&url.function, alias),
        None => api.account.function_arn(&url.function),
    };
    UrlConfigResponse {
        function_url: format!(
            "http://{}.lambda-url.{}.{}/",
            url.url_id, api.account.region, api.gateway_host
        ),
        function_arn,
        auth_type: url.auth_type.clone(),
        cors: url.cors.clone(),
        creation_time: nimbus_core::time::last_modified(url.created),
        last_modified_time: with_modified
            .then(|| nimbus_core::time::last_modified(url.last_modified)),
        invoke_mode: url.invoke_mode.as_str(),
    }
}

/// The function and URL qualifier (`$LATEST` when none) a request names.
fn target(
    api: &ApiState,
    raw: &str,
    query: &QueryPairs,
) -> Result<(FunctionName, String), ApiError> {
    let function = FunctionRef::parse(raw)?.with_qualifier_param(query.get("Qualifier"))?;
    let (name, qualifier) = function.local(&api.account)?;
    let qualifier = match qualifier {
        None => LATEST.to_owned(),
        Some(Qualifier::Latest) => {
            return Err(ServiceError::constraint(
                "$LATEST",
                "qualifier",
                r"Member must satisfy regular expression pattern: ((?!^\d+$)^[0-9a-zA-Z-_]+$)",
            )
            .into())
        }
        Some(Qualifier::Version(v)) => {
            return Err(ServiceError::constraint(
                v,
                "qualifier",
                r"Member must satisfy regular expression pattern: (^\$LATEST$)|((?!^[0-9]+$)([a-zA-Z0-9-_]+))",
            )
            .into())
        }
        Some(Qualifier::Alias(alias)) => alias.clone(),
    };
    Ok((name.clone(), qualifier))
}

fn function_does_not_exist() -> ApiError {
    ServiceError::ResourceNotFound("Function does not exist".to_owned()).into()
}

fn url_does_not_exist() -> ApiError {
    ServiceError::ResourceNotFound("The resource you requested does not exist.".to_owned()).into()
}

/// `AuthType`: `NONE` is served; `AWS_IAM` is refused until Nimbus verifies signatures, rather
/// than accepted and silently left open.
fn auth_type(value: &str) -> Result<String, ApiError> {
    match value {
        "NONE" => Ok(value.to_owned()),
        "AWS_IAM" => Err(ServiceError::InvalidParameterValue(
            "AuthType AWS_IAM is not supported by Nimbus yet: function URLs are served without authentication. Use AuthType NONE.".to_owned(),
        )
        .into()),
        other => Err(ServiceError::constraint(
            other,
            "authType",
            "Member must satisfy enum value set: [NONE, AWS_IAM]",
        )
        .into()),
    }
}

pub(crate) async fn create(
    State(api): State<ApiState>,
    PathParam(raw): PathParam,
    query: QueryPairs,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<UrlConfigResponse>), ApiError> {
    let (name, qualifier) = target(&api, &raw, &query)?;
    let req: UrlConfigRequest = read_json(
        &headers,
        body,
        limits::REQUEST_MAX_BYTES,
        "CreateFunctionUrlConfig",
    )
    .await?;
    let auth = auth_type(req.auth_type.as_deref().ok_or_else(|| {
        ServiceError::Validation(
            "1 validation error detected: Value null at 'authType' failed to satisfy constraint: Member must not be null".to_owned(),
        )
    })?)?;
    if let Some(cors) = &req.cors {
        cors.validate()?;
    }
    let invoke_mode = req
        .invoke_mode
        .as_deref()
        .map(InvokeMode::parse)
        .transpose()?
        .unwrap_or_default();
    let now = chrono::Utc::now();
    let url = FunctionUrlConfig {
        url_id: FunctionUrlConfig::new_url_id(),
        function: name.clone(),
        qualifier,
        auth_type: auth,
        cors: req.cors,
        invoke_mode,
        created: now,
        last_modified: now,
    };
    match api.meta.create_function_url(&url).await {
        Ok(()) => {
            tracing::info!(function = %name, qualifier = %url.qualifier, url_id = %url.url_id, "function URL created");
            Ok((StatusCode::CREATED, Json(describe(&api, &url, false))))
        }
        Err(StoreError::AlreadyExists) => {
            let existing = describe(&api, &url, false).function_arn;
            Err(ServiceError::ResourceConflict(format!(
                "Failed to create function url config for [functionArn = {existing}]. Error message:  FunctionUrlConfig exists for this Lambda function"
            ))
            .into())
        }
        Err(StoreError::NotFound) => Err(function_does_not_exist()),
        Err(err) => Err(err.into()),
    }
}

pub(crate) async fn get(
    State(api): State<ApiState>,
    PathParam(raw): PathParam,
    query: QueryPairs,
) -> Result<Json<UrlConfigResponse>, ApiError> {
    let (name, qualifier) = target(&api, &raw, &query)?;
    match api.meta.get_function_url(&name, &qualifier).await? {
        Some(url) => Ok(Json(describe(&api, &url, true))),
        None => Err(url_does_not_exist()),
    }
}

pub(crate) async fn update(
    State(api): State<ApiState>,
    PathParam(raw): PathParam,
    query: QueryPairs,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<UrlConfigResponse>, ApiError> {
    let (name, qualifier) = target(&api, &raw, &query)?;
    let req: UrlConfigRequest = read_json(
        &headers,
        body,
        limits::REQUEST_MAX_BYTES,
        "UpdateFunctionUrlConfig",
    )
    .await?;
    let auth = req.auth_type.as_deref().map(auth_type).transpose()?;
    if let Some(cors) = &req.cors {
        cors.validate()?;
    }
    let invoke_mode = req
        .invoke_mode
        .as_deref()
        .map(InvokeMode::parse)
        .transpose()?;
    if api.meta.get_function(&name).await?.is_none() {
        return Err(function_does_not_exist());
    }
    if qualifier != LATEST && api.meta.get_alias(&name, &qualifier).await?.is_none() {
        return Err(function_does_not_exist());
    }
    let Some(mut url) = api.meta.get_function_url(&name, &qualifier).await? else {
        return Err(url_does_not_exist());
    };
    if let Some(auth) = auth {
        url.auth_type = auth;
    }
    if let Some(cors) = req.cors {
        url.cors = Some(cors);
    }
    if let Some(mode) = invoke_mode {
        url.invoke_mode = mode;
    }
    url.last_modified = chrono::Utc::now();
    match api.meta.update_function_url(&url).await {
        Ok(()) => {
            tracing::info!(function = %name, qualifier = %qualifier, "function URL updated");
            Ok(Json(describe(&api, &url, true)))
        }
        Err(StoreError::NotFound) => Err(url_does_not_exist()),
        Err(err) => Err(err.into()),
    }
}

pub(crate) async fn delete(
    State(api): State<ApiState>,
    PathParam(raw): PathParam,
    query: QueryPairs,
) -> Result<StatusCode, ApiError> {
    let (name, qualifier) = target(&api, &raw, &query)?;
    match api.meta.delete_function_url(&name, &qualifier).await {
        Ok(()) => {
            tracing::info!(function = %name, qualifier = %qualifier, "function URL deleted");
            Ok(StatusCode::NO_CONTENT)
        }
        Err(StoreError::NotFound) => Err(url_does_not_exist()),
        Err(err) => Err(err.into()),
    }
}

pub(crate) async fn list(
    State(api): State<ApiState>,
    PathParam(raw): PathParam,
    query: QueryPairs,
) -> Result<Json<ListUrlConfigsResponse>, ApiError> {
    let name = FunctionRef::parse(&raw)?.unqualified(&api.account)?.clone();
    let limit = match query.get("MaxItems") {
        None => LIST_MAX,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=LIST_MAX).contains(&n) => n,
            _ => {
                return Err(ServiceError::constraint(
                    raw,
                    "maxItems",
                    "Member must have value between 1 and 50",
                )
                .into())
            }
        },
    };
    let after = query.get("Marker").map(paging::decode_marker).transpose()?;
    let page = match api
        .meta
        .list_function_urls(&name, after.as_deref(), limit)
        .await
    {
        Ok(page) => page,
        Err(StoreError::NotFound) => return Err(function_does_not_exist()),
        Err(err) => return Err(err.into()),
    };
    let next_marker = match (page.more, page.urls.last()) {
        (true, Some(last)) => Some(paging::encode_marker(&last.qualifier)),
        _ => None,
    };
    Ok(Json(ListUrlConfigsResponse {
        function_url_configs: page.urls.iter().map(|u| describe(&api, u, true)).collect(),
        next_marker,
    }))
}
