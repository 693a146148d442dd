//! Function operations: CreateFunction, GetFunction, GetFunctionConfiguration, ListFunctions,
//! UpdateFunctionCode, UpdateFunctionConfiguration, DeleteFunction.
//!
//! Get and Delete take a qualifier (a `?Qualifier=` or a `:qualifier` suffix on the name):
//! `$LATEST`, a published version number or, for Get, an alias. The updates change `$LATEST`
//! only; published versions never change.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use base64::Engine as _;
use bytes::Bytes;
use chrono::Utc;
use nimbus_core::{
    layer, limits, package, validate, CodeRef, Function, FunctionName, FunctionRef, FunctionState,
    FunctionVersion, Qualifier, ServiceError, StoreError,
};

use super::extract::{PathParam, QueryPairs};
use super::paging;
use crate::body::read_json;
use crate::error::ApiError;
use crate::model::{
    CodeInput, CodeLocation, Concurrency, CreateFunctionRequest, FunctionConfiguration,
    GetFunctionResponse, ListFunctionsResponse, UpdateFunctionCodeRequest,
    UpdateFunctionConfigurationRequest,
};
use crate::ApiState;

/// Resolve a path's function reference (plus `?Qualifier=`) to a name on this server, for
/// operations that change `$LATEST`: any other qualifier names nothing they can change.
fn resolve(api: &ApiState, raw: &str, query: &QueryPairs) -> Result<FunctionName, ApiError> {
    let r = FunctionRef::parse(raw)?.with_qualifier_param(query.get("Qualifier"))?;
    Ok(r.latest(&api.account)?.clone())
}

/// The version a (possibly qualified) reference names, and its configuration as Lambda shows
/// it through that reference: an alias or an explicit `$LATEST` qualifies the ARN.
async fn load_qualified(
    api: &ApiState,
    raw: &str,
    query: &QueryPairs,
) -> Result<(Function, FunctionConfiguration), ApiError> {
    let r = FunctionRef::parse(raw)?.with_qualifier_param(query.get("Qualifier"))?;
    let (name, qualifier) = r.local(&api.account)?;
    let not_found = || ApiError(ServiceError::function_not_found(&r.arn(&api.account)));
    let version = match qualifier {
        None | Some(Qualifier::Latest) => FunctionVersion::Latest,
        Some(Qualifier::Version(n)) => FunctionVersion::Published(*n),
        Some(Qualifier::Alias(alias)) => api
            .meta
            .get_alias(name, alias)
            .await?
            .and_then(|a| a.primary())
            .ok_or_else(not_found)?,
    };
    let function = match version {
        FunctionVersion::Latest => api.meta.get_function(name).await?,
        FunctionVersion::Published(n) => api.meta.get_function_version(name, n).await?,
    }
    .ok_or_else(not_found)?;
    let config = FunctionConfiguration::of(&function, &api.account);
    let config = match qualifier {
        Some(q @ (Qualifier::Latest | Qualifier::Alias(_))) => {
            config.named_by(&q.to_string(), &function, &api.account)
        }
        _ => config,
    };
    Ok((function, config))
}

async fn load(api: &ApiState, name: &FunctionName) -> Result<Function, ApiError> {
    api.meta
        .get_function(name)
        .await?
        .ok_or_else(|| ServiceError::function_not_found(&api.account.function_arn(name)).into())
}

/// Publish `$LATEST` as it is at `revision` (just written by this request), for the `Publish`
/// flag of CreateFunction and UpdateFunctionCode.
async fn publish_now(
    api: &ApiState,
    name: &FunctionName,
    revision: &str,
) -> Result<Function, ApiError> {
    match api
        .meta
        .publish_version(name, None, Some(revision), "")
        .await
    {
        Ok(version) => {
            tracing::info!(function = %name, version = %version.version, "version published");
            Ok(version)
        }
        Err(StoreError::RevisionMismatch) => Err(revision_mismatch()),
        Err(StoreError::NotFound) => {
            Err(ServiceError::function_not_found(&api.account.function_arn(name)).into())
        }
        Err(err) => Err(err.into()),
    }
}

/// Look up the layer version ARNs of a `Layers` list; Lambda's errors for too many, unknown
/// and repeated layers.
async fn resolve_layers(
    api: &ApiState,
    arns: Option<Vec<String>>,
) -> Result<Option<Vec<layer::LayerRef>>, ApiError> {
    let Some(arns) = arns else {
        return Ok(None);
    };
    validate::check_layer_count(arns.len())?;
    let mut resolved: Vec<layer::LayerRef> = Vec::with_capacity(arns.len());
    let mut names = std::collections::HashSet::new();
    for arn in arns {
        let missing = || {
            ApiError(ServiceError::InvalidParameterValue(format!(
                "Layer version {arn} does not exist."
            )))
        };
        let (name, version) =
            layer::parse_layer_version_arn(&arn, &api.account).ok_or_else(missing)?;
        let found = api
            .meta
            .get_layer_version(&name, version)
            .await?
            .ok_or_else(missing)?;
        if !names.insert(name) {
            return Err(ServiceError::InvalidParameterValue(format!(
                "Two different versions of the same layer are not allowed to be referenced in the same function. {arn}"
            ))
            .into());
        }
        resolved.push(layer::LayerRef {
            arn,
            content: found.content,
        });
    }
    Ok(Some(resolved))
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
    decode_and_inspect(&encoded).await
}

/// A base64 zip from a request (function code or layer content), decoded and checked by the
/// same rules: size, paths, links, compression ratio, 250 MB unzipped. Stores nothing.
pub(super) async fn decode_and_inspect(
    encoded: &str,
) -> Result<(Bytes, package::PackageInfo), ApiError> {
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
    let mut shape = req.settings;
    let layers = resolve_layers(&api, shape.layers.take()).await?;
    let settings = nimbus_core::validate::SettingsInput {
        layers,
        ..shape.into_input(req.architectures)
    }
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
    layer::check_unzipped_total(&code, &settings.layers)?;
    let function = Function {
        name,
        version: FunctionVersion::Latest,
        settings,
        code,
        state: FunctionState::Active,
        revision_id: uuid::Uuid::new_v4().to_string(),
        last_modified: Utc::now(),
    };
    match api.meta.create_function(&function, &tags).await {
        Ok(()) => {
            tracing::info!(function = %function.name, "function created");
            let shown = if req.publish == Some(true) {
                publish_now(&api, &function.name, &function.revision_id).await?
            } else {
                function
            };
            Ok((
                StatusCode::CREATED,
                Json(FunctionConfiguration::of(&shown, &api.account)),
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
    let (function, configuration) = load_qualified(&api, &raw, &query).await?;
    let name = function.name.clone();
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
    let reserved = api.meta.get_function_concurrency(&name).await?;
    Ok(Json(GetFunctionResponse {
        configuration,
        code: CodeLocation {
            repository_type: "S3",
            location: format!("http://{host}{path}"),
        },
        tags: (!tags.is_empty()).then_some(tags),
        concurrency: reserved.map(|n| Concurrency {
            reserved_concurrent_executions: Some(i64::from(n)),
        }),
    }))
}

pub(crate) async fn get_configuration(
    State(api): State<ApiState>,
    PathParam(raw): PathParam,
    query: QueryPairs,
) -> Result<Json<FunctionConfiguration>, ApiError> {
    let (_, configuration) = load_qualified(&api, &raw, &query).await?;
    Ok(Json(configuration))
}

pub(crate) async fn list(
    State(api): State<ApiState>,
    query: QueryPairs,
) -> Result<Json<ListFunctionsResponse>, ApiError> {
    let max_items = paging::max_items(&query, limits::LIST_PAGE_MAX)?;
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
    paging::encode_marker(name.as_str())
}

fn decode_marker(marker: &str) -> Result<FunctionName, ApiError> {
    let text = paging::decode_marker(marker)?;
    FunctionName::new(&text).map_err(|_| {
        ApiError(ServiceError::InvalidParameterValue(format!(
            "Invalid pagination marker: {marker}"
        )))
    })
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

pub(super) fn revision_mismatch() -> ApiError {
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
        layer::check_unzipped_total(&code, &f.settings.layers)?;
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
    let shown = if req.publish == Some(true) {
        publish_now(&api, &name, &updated.revision_id).await?
    } else {
        updated
    };
    Ok(Json(FunctionConfiguration::of(&shown, &api.account)))
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
    let mut shape = req.settings;
    let layers = resolve_layers(&api, shape.layers.take()).await?;
    let input = nimbus_core::validate::SettingsInput {
        layers,
        ..shape.into_input(None)
    };
    let updated = modify(&api, &name, req.revision_id.as_deref(), |f| {
        let settings = input.clone().apply_to(&f.settings)?;
        layer::check_unzipped_total(&f.code, &settings.layers)?;
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
    let (name, qualifier) = r.local(&api.account)?;
    let name = name.clone();
    match qualifier {
        None => {}
        Some(Qualifier::Latest) => {
            return Err(ServiceError::InvalidParameterValue(
                "$LATEST version cannot be deleted without deleting the function.".to_owned(),
            )
            .into())
        }
        Some(Qualifier::Alias(_)) => {
            return Err(ServiceError::InvalidParameterValue(
                "Deletion of aliases is not currently supported.".to_owned(),
            )
            .into())
        }
        Some(Qualifier::Version(n)) => return delete_version(&api, &name, *n).await,
    }
    match api.meta.delete_function(&name).await {
        Ok(()) => {
            tracing::info!(function = %name, "function deleted");
            api.invoker.retire(&name).await;
            // Its queued events and async settings go with it: a function created later under
            // the same name starts clean, as on Lambda.
            if let Err(error) = api.events.forget_function(&name).await {
                tracing::warn!(%error, function = %name, "could not drop the function's async state");
            }
            Ok(StatusCode::NO_CONTENT)
        }
        Err(StoreError::NotFound) => {
            Err(ServiceError::function_not_found(&api.account.function_arn(&name)).into())
        }
        Err(err) => Err(err.into()),
    }
}

/// DeleteFunction with a version number: that version goes, the function and everything else
/// stay. As on Lambda, a version that does not exist (any more) is no error.
async fn delete_version(
    api: &ApiState,
    name: &FunctionName,
    version: u64,
) -> Result<StatusCode, ApiError> {
    match api.meta.delete_function_version(name, version).await {
        Ok(()) => {
            tracing::info!(function = %name, version, "function version deleted");
            api.invoker.retire(name).await;
            Ok(StatusCode::NO_CONTENT)
        }
        Err(StoreError::InUse(aliases)) => Err(ServiceError::ResourceConflict(format!(
            "Unable to delete version because the following aliases reference it: [{}]",
            aliases.join(", ")
        ))
        .into()),
        Err(StoreError::NotFound) => {
            if api.meta.get_function(name).await?.is_some() {
                Ok(StatusCode::NO_CONTENT)
            } else {
                Err(ServiceError::function_not_found(&api.account.function_arn(name)).into())
            }
        }
        Err(err) => Err(err.into()),
    }
}
