//! The gateway's HTTP routes, a Nimbus endpoint (not an AWS API): `PUT /_nimbus/routes` with
//! `{"RouteKey": "GET /users/{id}", "Target": "function[:alias]"}` adds or replaces a route,
//! `GET /_nimbus/routes` lists them, `DELETE /_nimbus/routes?RouteKey=…` removes one. Errors use
//! the Lambda error format of the rest of the API.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use nimbus_core::url::HttpRoute;
use nimbus_core::{limits, FunctionRef, ServiceError, StoreError};
use serde::{Deserialize, Serialize};

use super::extract::QueryPairs;
use crate::body::read_json;
use crate::error::ApiError;
use crate::gateway::{RouteKey, RouteTable};
use crate::ApiState;

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RouteBody {
    route_key: Option<String>,
    target: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct RouteList {
    routes: Vec<RouteBody>,
}

fn parse_key(raw: &str) -> Result<RouteKey, ApiError> {
    RouteKey::parse(raw).map_err(|err| {
        ServiceError::InvalidParameterValue(format!("Invalid RouteKey: {err}")).into()
    })
}

pub(crate) async fn put(
    State(api): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<RouteBody>, ApiError> {
    let req: RouteBody = read_json(&headers, body, limits::REQUEST_MAX_BYTES, "PutRoute").await?;
    let missing = |field: &str| {
        ApiError(ServiceError::InvalidParameterValue(format!(
            "{field} is required, e.g. {{\"RouteKey\": \"GET /users/{{id}}\", \"Target\": \"my-function\"}}"
        )))
    };
    let raw_key = req.route_key.ok_or_else(|| missing("RouteKey"))?;
    let target = req.target.ok_or_else(|| missing("Target"))?;
    let key = parse_key(&raw_key)?;
    let function = FunctionRef::parse(&target).map_err(|err| {
        ServiceError::InvalidParameterValue(format!(
            "Target {target:?} is not a function name or ARN: {}",
            err.message()
        ))
    })?;
    function.local(&api.account)?;
    // Refuse a route that would shadow another with the same method and path shape
    // (`GET /a/{x}` and `GET /a/{y}`), as API Gateway does; same key replaces.
    let canonical = key.to_string();
    let mut table = RouteTable::new();
    for existing in api.meta.list_routes().await? {
        if existing.route_key == canonical {
            continue;
        }
        if let Ok(existing_key) = RouteKey::parse(&existing.route_key) {
            let _ = table.insert(existing_key, ());
        }
    }
    table
        .insert(key, ())
        .map_err(|err| ServiceError::ResourceConflict(err.to_string()))?;
    api.meta
        .put_route(&HttpRoute {
            route_key: canonical.clone(),
            target: target.clone(),
            updated: chrono::Utc::now(),
        })
        .await?;
    api.routes.invalidate();
    tracing::info!(route = %canonical, target = %target, "route set");
    Ok(Json(RouteBody {
        route_key: Some(canonical),
        target: Some(target),
    }))
}

pub(crate) async fn list(State(api): State<ApiState>) -> Result<Json<RouteList>, ApiError> {
    let routes = api.meta.list_routes().await?;
    Ok(Json(RouteList {
        routes: routes
            .into_iter()
            .map(|r| RouteBody {
                route_key: Some(r.route_key),
                target: Some(r.target),
            })
            .collect(),
    }))
}

pub(crate) async fn delete(
    State(api): State<ApiState>,
    query: QueryPairs,
) -> Result<StatusCode, ApiError> {
    let raw = query.get("RouteKey").ok_or_else(|| {
        ApiError(ServiceError::InvalidParameterValue(
            "RouteKey is required: DELETE /_nimbus/routes?RouteKey=GET%20/users/{id}".to_owned(),
        ))
    })?;
    let key = parse_key(raw)?.to_string();
    match api.meta.delete_route(&key).await {
        Ok(()) => {
            api.routes.invalidate();
            tracing::info!(route = %key, "route removed");
            Ok(StatusCode::NO_CONTENT)
        }
        Err(StoreError::NotFound) => {
            Err(ServiceError::ResourceNotFound(format!("Route not found: {key}")).into())
        }
        Err(err) => Err(err.into()),
    }
}
