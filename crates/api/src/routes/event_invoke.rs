//! Put/Get/Update/Delete/ListFunctionEventInvokeConfig(s): retries, maximum event age and
//! destinations of asynchronous invocation, at `/2019-09-25/functions/{name}/event-invoke-config`.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use chrono::Utc;
use nimbus_core::queue::EventInvokeConfig;
use nimbus_core::{limits, FunctionName, FunctionRef, ServiceError, StoreError};
use serde::{Deserialize, Serialize};

use super::extract::{PathParam, QueryPairs};
use crate::body::read_json;
use crate::error::ApiError;
use crate::ApiState;

/// The request body of Put and Update.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
pub(crate) struct EventInvokeConfigInput {
    maximum_retry_attempts: Option<i64>,
    maximum_event_age_in_seconds: Option<i64>,
    destination_config: Option<DestinationConfig>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct DestinationConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    on_success: Option<Destination>,
    #[serde(skip_serializing_if = "Option::is_none")]
    on_failure: Option<Destination>,
}

#[derive(Debug, Default, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct Destination {
    #[serde(skip_serializing_if = "Option::is_none")]
    destination: Option<String>,
}

/// `FunctionEventInvokeConfig`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct EventInvokeConfigOutput {
    /// Epoch seconds (rest-json's timestamp format).
    last_modified: f64,
    function_arn: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum_retry_attempts: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    maximum_event_age_in_seconds: Option<u32>,
    destination_config: DestinationConfig,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListOutput {
    function_event_invoke_configs: Vec<EventInvokeConfigOutput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_marker: Option<String>,
}

/// The function and qualifier named by the path and `Qualifier`, checked to exist.
async fn target(
    api: &ApiState,
    raw: &str,
    query: &QueryPairs,
) -> Result<(FunctionName, Option<String>), ApiError> {
    let reference = FunctionRef::parse(raw)?.with_qualifier_param(query.get("Qualifier"))?;
    if !reference.belongs_to(&api.account) {
        return Err(ServiceError::function_not_found(&reference.arn(&api.account)).into());
    }
    if api.meta.get_function(&reference.name).await?.is_none() {
        return Err(ServiceError::function_not_found(&reference.arn(&api.account)).into());
    }
    let qualifier = reference
        .qualifier
        .map(|q| q.to_string())
        .filter(|q| q != "$LATEST");
    Ok((reference.name, qualifier))
}

fn output(api: &ApiState, config: &EventInvokeConfig) -> EventInvokeConfigOutput {
    let destination = |arn: &Option<String>| {
        arn.clone().map(|arn| Destination {
            destination: Some(arn),
        })
    };
    EventInvokeConfigOutput {
        last_modified: config.last_modified.timestamp_millis() as f64 / 1000.0,
        function_arn: api.account.qualified_function_arn(
            &config.function,
            config.qualifier.as_deref().unwrap_or("$LATEST"),
        ),
        maximum_retry_attempts: config.maximum_retry_attempts,
        maximum_event_age_in_seconds: config.maximum_event_age_seconds,
        destination_config: DestinationConfig {
            on_success: destination(&config.on_success),
            on_failure: destination(&config.on_failure),
        },
    }
}

fn not_found(api: &ApiState, name: &FunctionName, qualifier: Option<&str>) -> ApiError {
    let arn = api
        .account
        .qualified_function_arn(name, qualifier.unwrap_or("$LATEST"));
    ServiceError::ResourceNotFound(format!(
        "The function {arn} doesn't have an EventInvokeConfig"
    ))
    .into()
}

/// Apply `input` over `base` (Put starts from nothing, Update from what is stored).
fn apply(
    api: &ApiState,
    mut base: EventInvokeConfig,
    input: EventInvokeConfigInput,
) -> Result<EventInvokeConfig, ApiError> {
    if let Some(n) = input.maximum_retry_attempts {
        if !(0..=2).contains(&n) {
            return Err(ServiceError::constraint(
                n,
                "maximumRetryAttempts",
                "Member must have value less than or equal to 2",
            )
            .into());
        }
        base.maximum_retry_attempts = u32::try_from(n).ok();
    }
    if let Some(n) = input.maximum_event_age_in_seconds {
        if !(60..=21_600).contains(&n) {
            let bound = if n < 60 {
                "Member must have value greater than or equal to 60"
            } else {
                "Member must have value less than or equal to 21600"
            };
            return Err(ServiceError::constraint(n, "maximumEventAgeInSeconds", bound).into());
        }
        base.maximum_event_age_seconds = u32::try_from(n).ok();
    }
    if let Some(destinations) = input.destination_config {
        if let Some(d) = destinations.on_success {
            base.on_success = checked_destination(api, d.destination)?;
        }
        if let Some(d) = destinations.on_failure {
            base.on_failure = checked_destination(api, d.destination)?;
        }
    }
    base.last_modified = Utc::now();
    Ok(base)
}

/// Destinations are functions of this account, or SQS queues and SNS topics, whose messages
/// Nimbus holds (it hosts no queues or topics yet; `nimbus dead-letters` lists them). Other
/// targets (EventBridge, S3) are refused rather than accepted and never delivered to.
fn checked_destination(api: &ApiState, arn: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(arn) = arn.filter(|a| !a.is_empty()) else {
        return Ok(None);
    };
    let function = arn
        .starts_with("arn:")
        .then(|| FunctionRef::parse(&arn).ok())
        .flatten()
        .filter(|r| r.belongs_to(&api.account));
    if function.is_none() && !nimbus_core::arn::is_queue_or_topic(&arn) {
        return Err(ServiceError::InvalidParameterValue(format!(
            "The destination ARN {arn} is invalid: Nimbus delivers to Lambda functions of this \
             account (arn:aws:lambda:{}:{}:function:NAME) and holds messages for SQS queues and \
             SNS topics",
            api.account.region, api.account.account_id
        ))
        .into());
    }
    Ok(Some(arn))
}

fn empty(function: FunctionName, qualifier: Option<String>) -> EventInvokeConfig {
    EventInvokeConfig {
        function,
        qualifier,
        maximum_retry_attempts: None,
        maximum_event_age_seconds: None,
        on_success: None,
        on_failure: None,
        last_modified: Utc::now(),
    }
}

pub(crate) async fn put(
    State(api): State<ApiState>,
    PathParam(raw): PathParam,
    query: QueryPairs,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<EventInvokeConfigOutput>, ApiError> {
    let (name, qualifier) = target(&api, &raw, &query).await?;
    let input: EventInvokeConfigInput = read_json(
        &headers,
        body,
        limits::REQUEST_MAX_BYTES,
        "PutFunctionEventInvokeConfig",
    )
    .await?;
    let config = apply(&api, empty(name, qualifier), input)?;
    api.events.put_invoke_config(&config).await?;
    Ok(Json(output(&api, &config)))
}

pub(crate) async fn update(
    State(api): State<ApiState>,
    PathParam(raw): PathParam,
    query: QueryPairs,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<EventInvokeConfigOutput>, ApiError> {
    let (name, qualifier) = target(&api, &raw, &query).await?;
    let input: EventInvokeConfigInput = read_json(
        &headers,
        body,
        limits::REQUEST_MAX_BYTES,
        "UpdateFunctionEventInvokeConfig",
    )
    .await?;
    let stored = api
        .events
        .get_invoke_config(&name, qualifier.as_deref())
        .await?;
    let base = stored.unwrap_or_else(|| empty(name, qualifier));
    let config = apply(&api, base, input)?;
    api.events.put_invoke_config(&config).await?;
    Ok(Json(output(&api, &config)))
}

pub(crate) async fn get(
    State(api): State<ApiState>,
    PathParam(raw): PathParam,
    query: QueryPairs,
) -> Result<Json<EventInvokeConfigOutput>, ApiError> {
    let (name, qualifier) = target(&api, &raw, &query).await?;
    match api
        .events
        .get_invoke_config(&name, qualifier.as_deref())
        .await?
    {
        Some(config) => Ok(Json(output(&api, &config))),
        None => Err(not_found(&api, &name, qualifier.as_deref())),
    }
}

pub(crate) async fn delete(
    State(api): State<ApiState>,
    PathParam(raw): PathParam,
    query: QueryPairs,
) -> Result<StatusCode, ApiError> {
    let (name, qualifier) = target(&api, &raw, &query).await?;
    match api
        .events
        .delete_invoke_config(&name, qualifier.as_deref())
        .await
    {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(StoreError::NotFound) => Err(not_found(&api, &name, qualifier.as_deref())),
        Err(err) => Err(err.into()),
    }
}

pub(crate) async fn list(
    State(api): State<ApiState>,
    PathParam(raw): PathParam,
    query: QueryPairs,
) -> Result<Json<ListOutput>, ApiError> {
    let (name, _) = target(&api, &raw, &QueryPairs(Vec::new())).await?;
    let max_items = match query.get("MaxItems") {
        None => 50,
        Some(text) => match text.parse::<usize>() {
            Ok(n @ 1..=50) => n,
            _ => {
                return Err(ServiceError::constraint(
                    text,
                    "maxItems",
                    "Member must have value less than or equal to 50",
                )
                .into())
            }
        },
    };
    let start = match query.get("Marker") {
        None => 0,
        Some(marker) => marker.parse::<usize>().map_err(|_| {
            ApiError(ServiceError::InvalidParameterValue(
                "Invalid Marker.".to_owned(),
            ))
        })?,
    };
    let all = api.events.list_invoke_configs(&name).await?;
    let page: Vec<_> = all.iter().skip(start).take(max_items).collect();
    let next = start + page.len();
    Ok(Json(ListOutput {
        function_event_invoke_configs: page.into_iter().map(|c| output(&api, c)).collect(),
        next_marker: (next < all.len()).then(|| next.to_string()),
    }))
}
