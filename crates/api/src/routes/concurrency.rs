//! Reserved concurrency: PutFunctionConcurrency, GetFunctionConcurrency,
//! DeleteFunctionConcurrency (note the two API versions in their paths).
//!
//! A reservation is carved out of the account's limit ([`ApiState::concurrency_limit`]): the
//! function may run that many at once and never more, and the others share what is left, of
//! which Lambda keeps at least 100 unreserved.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use nimbus_core::{limits, FunctionName, FunctionRef, ServiceError, StoreError};

use super::extract::PathParam;
use crate::body::read_json;
use crate::error::ApiError;
use crate::model::Concurrency;
use crate::ApiState;

/// Lambda keeps this much of the account's concurrency unreserved (all of it, on an account
/// whose limit is smaller).
const UNRESERVED_MIN: u32 = 100;

/// Serialises reservations: the check that the account can afford one and the write must not
/// interleave with another's, or two could together leave less than the minimum unreserved.
/// One process serves a data directory, so a process-wide lock is enough.
static RESERVATIONS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn function_of(api: &ApiState, raw: &str) -> Result<FunctionName, ApiError> {
    Ok(FunctionRef::parse(raw)?.unqualified(&api.account)?.clone())
}

fn not_found(api: &ApiState, name: &FunctionName) -> ApiError {
    ServiceError::function_not_found(&api.account.function_arn(name)).into()
}

pub(crate) async fn put(
    State(api): State<ApiState>,
    PathParam(raw): PathParam,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Concurrency>, ApiError> {
    let name = function_of(&api, &raw)?;
    let req: Concurrency = read_json(
        &headers,
        body,
        limits::REQUEST_MAX_BYTES,
        "PutFunctionConcurrency",
    )
    .await?;
    let requested = req.reserved_concurrent_executions.ok_or_else(|| {
        ServiceError::Validation(
            "1 validation error detected: Value null at 'reservedConcurrentExecutions' failed to satisfy constraint: Member must not be null"
                .to_owned(),
        )
    })?;
    if requested < 0 {
        return Err(ServiceError::constraint(
            requested,
            "reservedConcurrentExecutions",
            "Member must have value greater than or equal to 0",
        )
        .into());
    }
    let _serialised = RESERVATIONS.lock().await;
    if api.meta.get_function(&name).await?.is_none() {
        return Err(not_found(&api, &name));
    }
    let limit = api.concurrency_limit;
    let floor = UNRESERVED_MIN.min(limit);
    let own = api.meta.get_function_concurrency(&name).await?.unwrap_or(0);
    let others = api
        .meta
        .total_reserved_concurrency()
        .await?
        .saturating_sub(u64::from(own));
    let available = u64::from(limit - floor).saturating_sub(others);
    let reserved = u32::try_from(requested)
        .ok()
        .filter(|r| u64::from(*r) <= available)
        .ok_or_else(|| {
            ServiceError::InvalidParameterValue(format!(
                "Specified ReservedConcurrentExecutions for function decreases account's UnreservedConcurrentExecution below its minimum value of [{floor}]."
            ))
        })?;
    match api
        .meta
        .put_function_concurrency(&name, Some(reserved))
        .await
    {
        Ok(()) => {
            tracing::info!(function = %name, reserved, "reserved concurrency set");
            Ok(Json(Concurrency {
                reserved_concurrent_executions: Some(i64::from(reserved)),
            }))
        }
        Err(StoreError::NotFound) => Err(not_found(&api, &name)),
        Err(err) => Err(err.into()),
    }
}

pub(crate) async fn get(
    State(api): State<ApiState>,
    PathParam(raw): PathParam,
) -> Result<Json<Concurrency>, ApiError> {
    let name = function_of(&api, &raw)?;
    if api.meta.get_function(&name).await?.is_none() {
        return Err(not_found(&api, &name));
    }
    let reserved = api.meta.get_function_concurrency(&name).await?;
    Ok(Json(Concurrency {
        reserved_concurrent_executions: reserved.map(i64::from),
    }))
}

pub(crate) async fn delete(
    State(api): State<ApiState>,
    PathParam(raw): PathParam,
) -> Result<StatusCode, ApiError> {
    let name = function_of(&api, &raw)?;
    let _serialised = RESERVATIONS.lock().await;
    match api.meta.put_function_concurrency(&name, None).await {
        Ok(()) => {
            tracing::info!(function = %name, "reserved concurrency removed");
            Ok(StatusCode::NO_CONTENT)
        }
        Err(StoreError::NotFound) => Err(not_found(&api, &name)),
        Err(err) => Err(err.into()),
    }
}
