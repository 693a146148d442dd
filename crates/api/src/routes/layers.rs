//! Layers (`lambda-compat.md` §5): PublishLayerVersion, GetLayerVersion, GetLayerVersionByArn,
//! ListLayers, ListLayerVersions and DeleteLayerVersion, with the shapes of the SDK model.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::Json;
use chrono::Utc;
use nimbus_core::layer::{self, LayerVersion};
use nimbus_core::{limits, BlobId, CodeRef, ServiceError, StoreError};
use serde::{Deserialize, Serialize};

use super::extract::QueryPairs;
use super::paging;
use crate::body::read_json;
use crate::error::ApiError;
use crate::ApiState;

/// Most items per ListLayers / ListLayerVersions page (the API's own cap).
const PAGE_MAX: usize = 50;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct PublishRequest {
    description: Option<String>,
    content: Option<ContentInput>,
    compatible_runtimes: Option<Vec<String>>,
    license_info: Option<String>,
    compatible_architectures: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ContentInput {
    zip_file: Option<String>,
    #[serde(rename = "S3Bucket")]
    s3_bucket: Option<String>,
    #[serde(rename = "S3Key")]
    s3_key: Option<String>,
}

/// `LayerVersionContentOutput`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ContentOutput {
    location: String,
    code_sha256: String,
    code_size: u64,
}

/// PublishLayerVersion's and GetLayerVersion's answer.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct LayerVersionResponse {
    content: ContentOutput,
    layer_arn: String,
    layer_version_arn: String,
    description: String,
    created_date: String,
    version: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    compatible_runtimes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    license_info: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    compatible_architectures: Vec<String>,
}

/// `LayerVersionsListItem`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct LayerVersionItem {
    layer_version_arn: String,
    version: u64,
    description: String,
    created_date: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    compatible_runtimes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    license_info: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    compatible_architectures: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListLayerVersionsResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    next_marker: Option<String>,
    layer_versions: Vec<LayerVersionItem>,
}

/// `LayersListItem`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct LayerItem {
    layer_name: String,
    layer_arn: String,
    latest_matching_version: LayerVersionItem,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
pub(crate) struct ListLayersResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    next_marker: Option<String>,
    layers: Vec<LayerItem>,
}

pub(crate) async fn publish(
    State(api): State<ApiState>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<LayerVersionResponse>), ApiError> {
    let name = layer::layer_name_of(&raw, &api.account)?;
    let req: PublishRequest = read_json(
        &headers,
        body,
        limits::CODE_REQUEST_MAX_BYTES,
        "PublishLayerVersion",
    )
    .await?;
    let description = req.description.unwrap_or_default();
    if description.chars().count() > 256 {
        return Err(ServiceError::constraint(
            &description,
            "description",
            "Member must have length less than or equal to 256",
        )
        .into());
    }
    if let Some(license) = &req.license_info {
        if license.chars().count() > 512 {
            return Err(ServiceError::constraint(
                license,
                "licenseInfo",
                "Member must have length less than or equal to 512",
            )
            .into());
        }
    }
    let compatible_runtimes = req.compatible_runtimes.unwrap_or_default();
    check_runtimes(&compatible_runtimes)?;
    let compatible_architectures = req.compatible_architectures.unwrap_or_default();
    check_architectures(&compatible_architectures)?;
    let content = store_content(&api, req.content).await?;
    let stored = api
        .meta
        .publish_layer_version(&LayerVersion {
            name,
            version: 0,
            description,
            license_info: req.license_info,
            compatible_runtimes,
            compatible_architectures,
            created: Utc::now(),
            content,
        })
        .await?;
    tracing::info!(layer = %stored.name, version = stored.version, "layer version published");
    Ok((StatusCode::CREATED, Json(response(&api, &headers, &stored))))
}

pub(crate) async fn get(
    State(api): State<ApiState>,
    Path((raw, version)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<LayerVersionResponse>, ApiError> {
    let name = layer::layer_name_of(&raw, &api.account)?;
    let version = version_number(&version)?;
    let found = find(&api, &name, version).await?;
    Ok(Json(response(&api, &headers, &found)))
}

/// `GET /2018-10-31/layers`: ListLayers, or GetLayerVersionByArn with `find=LayerVersion`.
pub(crate) async fn list_or_find(
    State(api): State<ApiState>,
    query: QueryPairs,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    if query.get("find") == Some("LayerVersion") {
        let arn = query.get("Arn").unwrap_or_default();
        let (name, version) = layer::parse_layer_version_arn(arn, &api.account).ok_or_else(|| {
            ServiceError::constraint(
                arn,
                "arn",
                "Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:[a-z]{2}((-gov)|(-iso([a-z]?)))?-[a-z]+-\\d{1}:\\d{12}:layer:[a-zA-Z0-9-_]+:[0-9]+)|(arn:[a-zA-Z0-9-]+:lambda:::awslayer:[a-zA-Z0-9-_]+)",
            )
        })?;
        let found = find(&api, &name, version).await?;
        return Ok(Json(to_value(response(&api, &headers, &found))?));
    }
    let filter = Filter::from_query(&query)?;
    let max_items = paging::max_items(&query, PAGE_MAX)?;
    let after = query.get("Marker").map(paging::decode_marker).transpose()?;
    let all = api.meta.list_layer_versions(None).await?;
    // Newest version first within each name: the first match per name is the latest one.
    let mut layers: Vec<LayerItem> = Vec::new();
    for version in all.iter().filter(|v| filter.matches(v)) {
        if layers.last().is_some_and(|l| l.layer_name == version.name) {
            continue;
        }
        layers.push(LayerItem {
            layer_name: version.name.clone(),
            layer_arn: api.account.layer_arn(&version.name),
            latest_matching_version: item(&api, version),
        });
    }
    let start = after.map_or(0, |a| layers.partition_point(|l| l.layer_name <= a));
    let mut page: Vec<LayerItem> = layers.into_iter().skip(start).collect();
    let next_marker = (page.len() > max_items).then(|| {
        page.truncate(max_items);
        paging::encode_marker(page.last().map_or("", |l| l.layer_name.as_str()))
    });
    Ok(Json(to_value(ListLayersResponse {
        next_marker,
        layers: page,
    })?))
}

pub(crate) async fn list_versions(
    State(api): State<ApiState>,
    Path(raw): Path<String>,
    query: QueryPairs,
) -> Result<Json<ListLayerVersionsResponse>, ApiError> {
    let name = layer::layer_name_of(&raw, &api.account)?;
    let filter = Filter::from_query(&query)?;
    let max_items = paging::max_items(&query, PAGE_MAX)?;
    let after = match query.get("Marker") {
        None => None,
        Some(m) => Some(paging::decode_marker(m)?.parse::<u64>().map_err(|_| {
            ApiError(ServiceError::InvalidParameterValue(format!(
                "Invalid pagination marker: {m}"
            )))
        })?),
    };
    let versions: Vec<LayerVersionItem> = api
        .meta
        .list_layer_versions(Some(&name))
        .await?
        .iter()
        .filter(|v| filter.matches(v) && after.is_none_or(|a| v.version < a))
        .map(|v| item(&api, v))
        .collect();
    let mut page = versions;
    let next_marker = (page.len() > max_items).then(|| {
        page.truncate(max_items);
        paging::encode_marker(&page.last().map_or(0, |v| v.version).to_string())
    });
    Ok(Json(ListLayerVersionsResponse {
        next_marker,
        layer_versions: page,
    }))
}

pub(crate) async fn delete(
    State(api): State<ApiState>,
    Path((raw, version)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let name = layer::layer_name_of(&raw, &api.account)?;
    let version = version_number(&version)?;
    // Deleting what is not there succeeds, as on Lambda. Functions that use the version keep
    // their own reference to its archive, so they go on running.
    match api.meta.delete_layer_version(&name, version).await {
        Ok(()) => {
            tracing::info!(layer = %name, version, "layer version deleted");
            Ok(StatusCode::NO_CONTENT)
        }
        Err(StoreError::NotFound) => Ok(StatusCode::NO_CONTENT),
        Err(err) => Err(err.into()),
    }
}

async fn find(api: &ApiState, name: &str, version: u64) -> Result<LayerVersion, ApiError> {
    api.meta
        .get_layer_version(name, version)
        .await?
        .ok_or_else(|| {
            ApiError(ServiceError::ResourceNotFound(
                "The resource you requested does not exist.".to_owned(),
            ))
        })
}

fn version_number(raw: &str) -> Result<u64, ApiError> {
    raw.parse::<u64>().map_err(|_| {
        ServiceError::InvalidParameterValue(format!("Invalid layer version number: {raw}")).into()
    })
}

fn to_value<T: Serialize>(value: T) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(value)
        .map_err(|e| ServiceError::Service(format!("could not encode the answer: {e}")).into())
}

/// `CompatibleRuntime` / `CompatibleArchitecture` filters of the List operations.
struct Filter {
    runtime: Option<String>,
    architecture: Option<String>,
}

impl Filter {
    fn from_query(query: &QueryPairs) -> Result<Self, ApiError> {
        let runtime = query.get("CompatibleRuntime").map(str::to_owned);
        if let Some(r) = &runtime {
            check_runtimes(std::slice::from_ref(r))?;
        }
        let architecture = query.get("CompatibleArchitecture").map(str::to_owned);
        if let Some(a) = &architecture {
            check_architectures(std::slice::from_ref(a))?;
        }
        Ok(Self {
            runtime,
            architecture,
        })
    }

    fn matches(&self, v: &LayerVersion) -> bool {
        self.runtime
            .as_ref()
            .is_none_or(|r| v.compatible_runtimes.contains(r))
            && self
                .architecture
                .as_ref()
                .is_none_or(|a| v.compatible_architectures.contains(a))
    }
}

fn check_runtimes(runtimes: &[String]) -> Result<(), ApiError> {
    if runtimes.len() > 15 {
        return Err(ServiceError::constraint(
            format!("{runtimes:?}"),
            "compatibleRuntimes",
            "Member must have length less than or equal to 15",
        )
        .into());
    }
    // Informational: a layer may name runtimes this server does not run (java21, ruby3.3).
    for runtime in runtimes {
        let plausible = runtime.len() <= 32
            && runtime.starts_with(|c: char| c.is_ascii_lowercase())
            && runtime
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.');
        if !plausible {
            return Err(ServiceError::constraint(
                runtime,
                "compatibleRuntimes",
                "Member must satisfy enum value set of Lambda runtime identifiers",
            )
            .into());
        }
    }
    Ok(())
}

fn check_architectures(architectures: &[String]) -> Result<(), ApiError> {
    if architectures.len() > 2 {
        return Err(ServiceError::constraint(
            format!("{architectures:?}"),
            "compatibleArchitectures",
            "Member must have length less than or equal to 2",
        )
        .into());
    }
    for a in architectures {
        if a != "x86_64" && a != "arm64" {
            return Err(ServiceError::constraint(
                a,
                "compatibleArchitectures",
                "Member must satisfy enum value set: [x86_64, arm64]",
            )
            .into());
        }
    }
    Ok(())
}

/// Decode, check (the same rules as function code: no escaping paths or links, no bombs,
/// 250 MB unzipped) and store a layer archive.
async fn store_content(api: &ApiState, content: Option<ContentInput>) -> Result<CodeRef, ApiError> {
    let content = content.ok_or_else(|| {
        ServiceError::InvalidParameterValue("Please provide a source for the layer content.".into())
    })?;
    if content.s3_bucket.is_some() || content.s3_key.is_some() {
        return Err(ServiceError::InvalidParameterValue(
            "S3 content locations (S3Bucket/S3Key) are not supported yet because Nimbus has no object storage; upload the zip in Content.ZipFile instead."
                .to_owned(),
        )
        .into());
    }
    let encoded = content.zip_file.ok_or_else(|| {
        ServiceError::InvalidParameterValue("Please provide a source for the layer content.".into())
    })?;
    let (zip, info) = super::functions::decode_and_inspect(&encoded).await?;
    let size = zip.len() as u64;
    let id: BlobId = api.blobs.put(zip).await?;
    Ok(CodeRef {
        sha256_hex: id.as_hex().to_owned(),
        size,
        unzipped_size: info.unzipped_size,
    })
}

fn item(api: &ApiState, v: &LayerVersion) -> LayerVersionItem {
    LayerVersionItem {
        layer_version_arn: api.account.layer_version_arn(&v.name, v.version),
        version: v.version,
        description: v.description.clone(),
        created_date: nimbus_core::time::last_modified(v.created),
        compatible_runtimes: v.compatible_runtimes.clone(),
        license_info: v.license_info.clone(),
        compatible_architectures: v.compatible_architectures.clone(),
    }
}

fn response(api: &ApiState, headers: &HeaderMap, v: &LayerVersion) -> LayerVersionResponse {
    // The download link points back at the address the caller used to reach us.
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:9001");
    let path = api
        .code_urls
        .sign(&v.name, &v.content.sha256_hex, Utc::now().timestamp());
    LayerVersionResponse {
        content: ContentOutput {
            location: format!("http://{host}{path}"),
            code_sha256: v.content.sha256_base64(),
            code_size: v.content.size,
        },
        layer_arn: api.account.layer_arn(&v.name),
        layer_version_arn: api.account.layer_version_arn(&v.name, v.version),
        description: v.description.clone(),
        created_date: nimbus_core::time::last_modified(v.created),
        version: v.version,
        compatible_runtimes: v.compatible_runtimes.clone(),
        license_info: v.license_info.clone(),
        compatible_architectures: v.compatible_architectures.clone(),
    }
}
