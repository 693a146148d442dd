//! Aliases: CreateAlias, GetAlias, UpdateAlias, DeleteAlias, ListAliases.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use nimbus_core::alias::{validate_alias_name, validate_version};
use nimbus_core::{limits, Alias, FunctionName, FunctionRef, ServiceError, StoreError};

use super::extract::{PathPair, PathParam, QueryPairs};
use super::functions::revision_mismatch;
use super::paging;
use crate::body::read_json;
use crate::error::ApiError;
use crate::model::{
    AliasConfiguration, CreateAliasRequest, ListAliasesResponse, UpdateAliasRequest,
};
use crate::ApiState;

/// The function an alias operation names; aliases belong to the function as a whole.
fn function_of(api: &ApiState, raw: &str) -> Result<FunctionName, ApiError> {
    Ok(FunctionRef::parse(raw)?.unqualified(&api.account)?.clone())
}

fn function_not_found(api: &ApiState, name: &FunctionName) -> ApiError {
    ServiceError::function_not_found(&api.account.function_arn(name)).into()
}

fn alias_not_found(api: &ApiState, name: &FunctionName, alias: &str) -> ApiError {
    ServiceError::alias_not_found(&api.account.qualified_function_arn(name, alias)).into()
}

fn missing(field: &str) -> ApiError {
    ServiceError::Validation(format!(
        "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
    ))
    .into()
}

/// The store refused an alias as naming something that does not exist: say which, as Lambda
/// does (the function, or the version by its qualified ARN).
async fn missing_target(api: &ApiState, alias: &Alias) -> ApiError {
    let name = &alias.function;
    match api.meta.get_function(name).await {
        Ok(Some(_)) => {}
        Ok(None) => return function_not_found(api, name),
        Err(err) => return err.into(),
    }
    for version in alias.published_versions() {
        match api.meta.get_function_version(name, version).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                return ServiceError::function_not_found(
                    &api.account
                        .qualified_function_arn(name, &version.to_string()),
                )
                .into()
            }
            Err(err) => return err.into(),
        }
    }
    // Everything exists now: it was deleted and recreated meanwhile. Report the function.
    function_not_found(api, name)
}

pub(crate) async fn create(
    State(api): State<ApiState>,
    PathParam(raw): PathParam,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<AliasConfiguration>), ApiError> {
    let name = function_of(&api, &raw)?;
    let req: CreateAliasRequest =
        read_json(&headers, body, limits::REQUEST_MAX_BYTES, "CreateAlias").await?;
    let alias = Alias {
        name: req.name.ok_or_else(|| missing("name"))?,
        function: name.clone(),
        function_version: req
            .function_version
            .ok_or_else(|| missing("functionVersion"))?,
        description: req.description.unwrap_or_default(),
        routing: req
            .routing_config
            .and_then(|r| r.additional_version_weights)
            .unwrap_or_default(),
        revision_id: uuid::Uuid::new_v4().to_string(),
    };
    alias.validate()?;
    match api.meta.create_alias(&alias).await {
        Ok(()) => {
            tracing::info!(function = %name, alias = %alias.name, version = %alias.function_version, "alias created");
            Ok((
                StatusCode::CREATED,
                Json(AliasConfiguration::of(&alias, &api.account)),
            ))
        }
        Err(StoreError::AlreadyExists) => Err(ServiceError::ResourceConflict(format!(
            "Alias already exists: {}",
            api.account.qualified_function_arn(&name, &alias.name)
        ))
        .into()),
        Err(StoreError::NotFound) => Err(missing_target(&api, &alias).await),
        Err(err) => Err(err.into()),
    }
}

/// The alias, or Lambda's not-found answer.
async fn load(api: &ApiState, name: &FunctionName, alias: &str) -> Result<Alias, ApiError> {
    match api.meta.get_alias(name, alias).await? {
        Some(found) => Ok(found),
        None => Err(absent(api, name, alias).await),
    }
}

/// Lambda's answer for an alias that is not there: about the function when that is missing,
/// else about the alias.
async fn absent(api: &ApiState, name: &FunctionName, alias: &str) -> ApiError {
    match api.meta.get_function(name).await {
        Ok(Some(_)) => alias_not_found(api, name, alias),
        Ok(None) => function_not_found(api, name),
        Err(err) => err.into(),
    }
}

pub(crate) async fn get(
    State(api): State<ApiState>,
    PathPair(raw, alias): PathPair,
) -> Result<Json<AliasConfiguration>, ApiError> {
    let name = function_of(&api, &raw)?;
    validate_alias_name(&alias)?;
    let found = load(&api, &name, &alias).await?;
    Ok(Json(AliasConfiguration::of(&found, &api.account)))
}

pub(crate) async fn update(
    State(api): State<ApiState>,
    PathPair(raw, alias): PathPair,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<AliasConfiguration>, ApiError> {
    let name = function_of(&api, &raw)?;
    validate_alias_name(&alias)?;
    let req: UpdateAliasRequest =
        read_json(&headers, body, limits::REQUEST_MAX_BYTES, "UpdateAlias").await?;
    // Read-modify-write under the alias's revision. With the caller's RevisionId a concurrent
    // change is the caller's conflict (412); without one, retry on the fresh alias.
    loop {
        let current = load(&api, &name, &alias).await?;
        if req
            .revision_id
            .as_deref()
            .is_some_and(|r| r != current.revision_id)
        {
            return Err(revision_mismatch());
        }
        let mut next = current.clone();
        if let Some(version) = &req.function_version {
            next.function_version.clone_from(version);
        }
        if let Some(description) = &req.description {
            next.description.clone_from(description);
        }
        if let Some(routing) = &req.routing_config {
            // `RoutingConfig: {}` or empty weights remove the routing.
            next.routing = routing
                .additional_version_weights
                .clone()
                .unwrap_or_default();
        }
        next.revision_id = uuid::Uuid::new_v4().to_string();
        next.validate()?;
        match api
            .meta
            .update_alias(&next, Some(&current.revision_id))
            .await
        {
            Ok(()) => {
                tracing::info!(function = %name, alias = %alias, version = %next.function_version, "alias updated");
                return Ok(Json(AliasConfiguration::of(&next, &api.account)));
            }
            Err(StoreError::RevisionMismatch) if req.revision_id.is_none() => continue,
            Err(StoreError::RevisionMismatch) => return Err(revision_mismatch()),
            Err(StoreError::NotFound) => {
                // Either the alias went away meanwhile, or a version it would route to is missing.
                if api.meta.get_alias(&name, &alias).await?.is_none() {
                    return Err(absent(&api, &name, &alias).await);
                }
                return Err(missing_target(&api, &next).await);
            }
            Err(err) => return Err(err.into()),
        }
    }
}

pub(crate) async fn delete(
    State(api): State<ApiState>,
    PathPair(raw, alias): PathPair,
) -> Result<StatusCode, ApiError> {
    let name = function_of(&api, &raw)?;
    validate_alias_name(&alias)?;
    match api.meta.delete_alias(&name, &alias).await {
        Ok(()) => {
            tracing::info!(function = %name, alias = %alias, "alias deleted");
            Ok(StatusCode::NO_CONTENT)
        }
        // Deleting an alias that is not there is no error on Lambda (DeleteAlias has no
        // not-found error); a function that is not there is.
        Err(StoreError::NotFound) => {
            if api.meta.get_function(&name).await?.is_some() {
                Ok(StatusCode::NO_CONTENT)
            } else {
                Err(function_not_found(&api, &name))
            }
        }
        Err(err) => Err(err.into()),
    }
}

pub(crate) async fn list(
    State(api): State<ApiState>,
    PathParam(raw): PathParam,
    query: QueryPairs,
) -> Result<Json<ListAliasesResponse>, ApiError> {
    let name = function_of(&api, &raw)?;
    let limit = paging::max_items(&query, limits::LIST_PAGE_MAX)?;
    let version = query.get("FunctionVersion");
    if let Some(v) = version {
        validate_version(v, "functionVersion")?;
    }
    let after = query.get("Marker").map(paging::decode_marker).transpose()?;
    let page = match api
        .meta
        .list_aliases(&name, version, after.as_deref(), limit)
        .await
    {
        Ok(page) => page,
        Err(StoreError::NotFound) => return Err(function_not_found(&api, &name)),
        Err(err) => return Err(err.into()),
    };
    let next_marker = match (page.more, page.aliases.last()) {
        (true, Some(last)) => Some(paging::encode_marker(&last.name)),
        _ => None,
    };
    Ok(Json(ListAliasesResponse {
        aliases: page
            .aliases
            .iter()
            .map(|a| AliasConfiguration::of(a, &api.account))
            .collect(),
        next_marker,
    }))
}
