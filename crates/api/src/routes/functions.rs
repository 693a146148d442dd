//! Function operations: CreateFunction, GetFunction, GetFunctionConfiguration, ListFunctions,
//! UpdateFunctionCode, UpdateFunctionConfiguration, DeleteFunction.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use base64::Engine as _;
use bytes::Bytes;
use chrono::Utc;
use nimbus_core::{
    limits, package, validate, CodeRef, Function, FunctionName, FunctionRef, FunctionState,
    Qualifier, ServiceError, StoreError,
};

use super::extract::{PathParam, QueryPairs};
use crate::body::read_json;
use crate::error::ApiError;
use crate::model::{
    CodeInput, CodeLocation, CreateFunctionRequest, FunctionConfiguration, GetFunctionResponse,
    ListFunctionsResponse, UpdateFunctionCodeRequest, UpdateFunctionConfigurationRequest,
};
use crate::ApiState;

/// Resolve a path's function reference (plus `?Qualifier=`) to a name on this server.
/// Only `$LATEST` exists until versions arrive; any other qualifier names nothing.
fn resolve(api: &ApiState, raw: &str, query: &QueryPairs) -> Result<FunctionName, ApiError> {
    let r = FunctionRef::parse(raw)?.with_qualifier_param(query.get("Qualifier"))?;
    Ok(r.latest(&api.account)?.clone())
}

async fn load(api: &ApiState, name: &FunctionName) -> Result<Function, ApiError> {
    api.meta
        .get_function(name)
        .await?
        .ok_or_else(|| ServiceError::function_not_found(&api.account.function_arn(name)).into())
}

fn unsupported_publish() -> ApiError {
    ServiceError::InvalidParameterValue(
        "Publish is not available yet: Nimbus does not publish versions until versions and aliases are supported."
            .to_owned(),
    )
    .into()
}

/// Decode and check a code package from a request, storing nothing.
async fn check_code(code: CodeInput) -> Result<(Bytes, package::PackageInfo), ApiError> {
    if code.image_uri.is_some() {
        return Err(ServiceError::InvalidParameterValue(
            "Container images are not supported; upload a zip package in Code.ZipFile.".to_owned(),
        )
        .into());
    }
    if code.s3_bucket.is_some() || code.s3_key.is_some() || code.s3_object_version.is_some() {
        return Err(ServiceError::InvalidParameterValue(
            "S3 code locations (S3Bucket/S3Key) are not supported yet because Nimbus has no object storage; upload the zip in Code.ZipFile instead."
                .to_owned(),
        )
        .into());
    }
    let encoded = code.zip_file.ok_or_else(|| {
        ServiceError::InvalidParameterValue("Please provide a source for function code.".to_owned())
    })?;
    let zip = base64::engine::general_purpose::STANDARD
        .decode(encoded.as_bytes())
        .map_err(|err| {
            ServiceError::InvalidRequestContent(format!("ZipFile is not valid base64: {err}"))
        })?;
    if zip.len() as u64 > limits::ZIP_MAX_BYTES {
        return Err(ServiceError::RequestTooLarge(format!(
            "Zipped size must be smaller than {} bytes",
            limits::ZIP_MAX_BYTES
        ))
        .into());
    }
    let zip = Bytes::from(zip);
    let inspected = zip.clone();
    // Inspection decompresses every entry: CPU work that must not stall the async workers.
    let info = tokio::task::spawn_blocking(move || package::inspect(&inspected))
        .await
        .map_err(|err| {
            tracing::error!(error = %err, "package inspection panicked");
            ServiceError::Service("An internal error occurred while reading the package.".into())
        })??;
    Ok((zip, info))
}

/// Decode, check and store a code package; returns its reference once the blob is durable.
async fn store_code(api: &ApiState, code: CodeInput) -> Result<CodeRef, ApiError> {
    let (zip, info) = check_code(code).await?;
    let size = zip.len() as u64;
    let id = api.blobs.put(zip).await?;
    Ok(CodeRef {
        sha256_hex: id.as_hex().to_owned(),
        size,
        unzipped_size: info.unzipped_size,
    })
}

pub(crate) async fn create(
    State(api): State<ApiState>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<FunctionConfiguration>), ApiError> {
    let req: CreateFunctionRequest = read_json(
        &headers,
        body,
        limits::CODE_REQUEST_MAX_BYTES,
        "CreateFunction",
    )
    .await?;
    let r = FunctionRef::parse(&req.function_name)?;
    if r.qualifier.is_some() || !r.belongs_to(&api.account) {
        return Err(ServiceError::InvalidParameterValue(format!(
            "FunctionName {} must be a name or an unqualified ARN of this account and region.",
            req.function_name
        ))
        .into());
    }
    let name = r.name;
    if req.publish == Some(true) {
        return Err(unsupported_publish());
    }
    if let Some(kind) = &req.settings.package_type {
        if kind != "Zip" {
            return Err(ServiceError::InvalidParameterValue(format!(
                "PackageType {kind} is not supported; Nimbus runs Zip packages."
            ))
            .into());
        }
    }
    let tags = req.tags.unwrap_or_default();
    validate::validate_tags(&tags)?;
    let settings = req
        .settings
        .into_input(req.architectures)
        .for_create(&name)?;
    api.invoker.check_runtime(&settings.runtime)?;
    let code = req.code.ok_or_else(|| {
        ServiceError::InvalidParameterValue("Please provide a source for function code.".into())
    })?;
    // A cheap early answer for the common mistake; the store's unique key is the real guard.
    if api.meta.get_function(&name).await?.is_some() {
        return Err(already_exists(&name));
    }
    let code = store_code(&api, code).await?;
    let function = Function {
        name,
        settings,
        code,
        state: FunctionState::Active,
        revision_id: uuid::Uuid::new_v4().to_string(),
        last_modified: Utc::now(),
    };
    match api.meta.create_function(&function, &tags).await {
        Ok(()) => {
            tracing::info!(function = %function.name, "function created");
            Ok((
                StatusCode::CREATED,
                Json(FunctionConfiguration::of(&function, &api.account)),
            ))
        }
        Err(StoreError::AlreadyExists) => Err(already_exists(&function.name)),
        Err(err) => Err(err.into()),
    }
}

fn already_exists(name: &FunctionName) -> ApiError {
    ServiceError::ResourceConflict(format!("Function already exist: {name}")).into()
}

pub(crate) async fn get(
    State(api): State<ApiState>,
    PathParam(raw): PathParam,
    query: QueryPairs,
    headers: HeaderMap,
) -> Result<Json<GetFunctionResponse>, ApiError> {
    let name = resolve(&api, &raw, &query)?;
    let function = load(&api, &name).await?;
    let tags = match api.meta.get_tags(&name).await {
        Ok(tags) => tags,
        Err(StoreError::NotFound) => {
            return Err(ServiceError::function_not_found(&api.account.function_arn(&name)).into())
        }
        Err(err) => return Err(err.into()),
    };
    // The link points back at the address the caller used to reach us.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:9001");
    let path = api.code_urls.sign(
        name.as_str(),
        &function.code.sha256_hex,
        Utc::now().timestamp(),
    );
    Ok(Json(GetFunctionResponse {
        configuration: FunctionConfiguration::of(&function, &api.account),
        code: CodeLocation {
            repository_type: "S3",
            location: format!("http://{host}{path}"),
        },
        tags: (!tags.is_empty()).then_some(tags),
    }))
}

pub(crate) async fn get_configuration(
    State(api): State<ApiState>,
    PathParam(raw): PathParam,
    query: QueryPairs,
) -> Result<Json<FunctionConfiguration>, ApiError> {
    let name = resolve(&api, &raw, &query)?;
    let function = load(&api, &name).await?;
    Ok(Json(FunctionConfiguration::of(&function, &api.account)))
}

pub(crate) async fn list(
    State(api): State<ApiState>,
    query: QueryPairs,
) -> Result<Json<ListFunctionsResponse>, ApiError> {
    let max_items = match query.get("MaxItems") {
        None => limits::LIST_PAGE_MAX,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if (1..=10_000).contains(&n) => {
                usize::try_from(n).map_or(limits::LIST_PAGE_MAX, |n| n.min(limits::LIST_PAGE_MAX))
            }
            _ => {
                return Err(ServiceError::constraint(
                    raw,
                    "maxItems",
                    "Member must have value between 1 and 10000",
                )
                .into())
            }
        },
    };
    if let Some(v) = query.get("FunctionVersion") {
        if v != "ALL" {
            return Err(ServiceError::constraint(
                v,
                "functionVersion",
                "Member must satisfy enum value set: [ALL]",
            )
            .into());
        }
    }
    let after = query.get("Marker").map(decode_marker).transpose()?;
    let page = api.meta.list_functions(after.as_ref(), max_items).await?;
    let next_marker = match (page.more, page.functions.last()) {
        (true, Some(last)) => Some(encode_marker(&last.name)),
        _ => None,
    };
    Ok(Json(ListFunctionsResponse {
        functions: page
            .functions
            .iter()
            .map(|f| FunctionConfiguration::for_list(f, &api.account))
            .collect(),
        next_marker,
    }))
}

/// Markers are opaque to clients: the last name of the page, base64url-encoded.
fn encode_marker(name: &FunctionName) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(name.as_str())
}

fn decode_marker(marker: &str) -> Result<FunctionName, ApiError> {
    let invalid = || {
        ApiError(ServiceError::InvalidParameterValue(format!(
            "Invalid pagination marker: {marker}"
        )))
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(marker)
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    FunctionName::new(&text).map_err(|_| invalid())
}

/// Read-modify-write of a function under optimistic concurrency. With a caller's RevisionId a
/// concurrent change is the caller's conflict (412); without one, retry on the fresh state.
async fn modify(
    api: &ApiState,
    name: &FunctionName,
    expected: Option<&str>,
    change: impl Fn(&Function) -> Result<Function, ApiError>,
) -> Result<Function, ApiError> {
    loop {
        let current = load(api, name).await?;
        if expected.is_some_and(|rev| rev != current.revision_id) {
            return Err(revision_mismatch());
        }
        let mut next = change(&current)?;
        next.revision_id = uuid::Uuid::new_v4().to_string();
        next.last_modified = Utc::now();
        match api.meta.update_function(&next, &current.revision_id).await {
            Ok(()) => return Ok(next),
            Err(StoreError::RevisionMismatch) if expected.is_none() => continue,
            Err(StoreError::RevisionMismatch) => return Err(revision_mismatch()),
            Err(StoreError::NotFound) => {
                return Err(
                    ServiceError::function_not_found(&api.account.function_arn(name)).into(),
                )
            }
            Err(err) => return Err(err.into()),
        }
    }
}

fn revision_mismatch() -> ApiError {
    ServiceError::PreconditionFailed(
        "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id"
            .to_owned(),
    )
    .into()
}

pub(crate) async fn update_code(
    State(api): State<ApiState>,
    PathParam(raw): PathParam,
    query: QueryPairs,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<FunctionConfiguration>, ApiError> {
    let name = resolve(&api, &raw, &query)?;
    let req: UpdateFunctionCodeRequest = read_json(
        &headers,
        body,
        limits::CODE_REQUEST_MAX_BYTES,
        "UpdateFunctionCode",
    )
    .await?;
    if req.publish == Some(true) {
        return Err(unsupported_publish());
    }
    let current = load(&api, &name).await?;
    let settings = nimbus_core::validate::SettingsInput {
        architectures: req.architectures,
        ..Default::default()
    }
    .apply_to(&current.settings)?;
    if req.dry_run == Some(true) {
        check_code(req.code).await?;
        return Ok(Json(FunctionConfiguration::of(&current, &api.account)));
    }
    let code = store_code(&api, req.code).await?;
    let updated = modify(&api, &name, req.revision_id.as_deref(), |f| {
        Ok(Function {
            code: code.clone(),
            settings: nimbus_core::FunctionSettings {
                architecture: settings.architecture,
                ..f.settings.clone()
            },
            ..f.clone()
        })
    })
    .await?;
    tracing::info!(function = %name, sha256 = %updated.code.sha256_hex, "function code updated");
    api.invoker.retire(&name).await;
    Ok(Json(FunctionConfiguration::of(&updated, &api.account)))
}

pub(crate) async fn update_configuration(
    State(api): State<ApiState>,
    PathParam(raw): PathParam,
    query: QueryPairs,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<FunctionConfiguration>, ApiError> {
    let name = resolve(&api, &raw, &query)?;
    let req: UpdateFunctionConfigurationRequest = read_json(
        &headers,
        body,
        limits::REQUEST_MAX_BYTES,
        "UpdateFunctionConfiguration",
    )
    .await?;
    if let Some(kind) = &req.settings.package_type {
        if kind != "Zip" {
            return Err(ServiceError::InvalidParameterValue(format!(
                "PackageType {kind} is not supported."
            ))
            .into());
        }
    }
    let input = req.settings.into_input(None);
    let updated = modify(&api, &name, req.revision_id.as_deref(), |f| {
        let settings = input.clone().apply_to(&f.settings)?;
        if settings.runtime != f.settings.runtime {
            api.invoker.check_runtime(&settings.runtime)?;
        }
        Ok(Function {
            settings,
            ..f.clone()
        })
    })
    .await?;
    tracing::info!(function = %name, "function configuration updated");
    api.invoker.retire(&name).await;
    Ok(Json(FunctionConfiguration::of(&updated, &api.account)))
}

pub(crate) async fn delete(
    State(api): State<ApiState>,
    PathParam(raw): PathParam,
    query: QueryPairs,
) -> Result<StatusCode, ApiError> {
    let r = FunctionRef::parse(&raw)?.with_qualifier_param(query.get("Qualifier"))?;
    if r.qualifier == Some(Qualifier::Latest) {
        return Err(ServiceError::InvalidParameterValue(
            "$LATEST version cannot be deleted without deleting the function.".to_owned(),
        )
        .into());
    }
    let name = resolve(&api, &raw, &query)?;
    match api.meta.delete_function(&name).await {
        Ok(()) => {
            tracing::info!(function = %name, "function deleted");
            api.invoker.retire(&name).await;
            Ok(StatusCode::NO_CONTENT)
        }
        Err(StoreError::NotFound) => {
            Err(ServiceError::function_not_found(&api.account.function_arn(&name)).into())
        }
        Err(err) => Err(err.into()),
    }
}
