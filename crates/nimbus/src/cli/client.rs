//! A small client of the Lambda management API a Nimbus server speaks (the same paths and JSON
//! shapes as AWS), and the connection flags every client subcommand shares.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use clap::Args;
use reqwest::{Method, RequestBuilder, Response, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::output::OutputFormat;

/// Where `nimbus server` listens unless told otherwise.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:9001";
const API_VERSION: &str = "2015-03-31";
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Uploads of 50 MB zips over slow links must not time out.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);
const PAGE_SIZE: &str = "50";
/// The API version the layer operations live under.
const LAYERS_API_VERSION: &str = "2018-10-31";

/// Flags shared by every client subcommand.
#[derive(Debug, Clone, Args)]
pub struct ClientArgs {
    /// URL of the Nimbus server's API.
    #[arg(long, env = "NIMBUS_ENDPOINT", default_value = DEFAULT_ENDPOINT, value_name = "URL")]
    pub endpoint: String,
    /// Output format: tables for people, or the API's JSON for scripts.
    #[arg(long, env = "NIMBUS_OUTPUT", value_enum, default_value_t = OutputFormat::Table)]
    pub output: OutputFormat,
}

impl ClientArgs {
    /// A client for `--endpoint`.
    pub fn client(&self) -> Result<LambdaClient> {
        LambdaClient::new(&self.endpoint)
    }
}

/// A typed answer together with the JSON it was read from, which `--output json` prints as is.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<T> {
    /// The fields the CLI uses.
    pub typed: T,
    /// Everything the server sent.
    pub json: Value,
}

/// A gateway route as `/_nimbus/routes` returns it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HttpRoute {
    pub route_key: String,
    pub target: String,
}

/// A layer version as the layer API returns it (lenient: unknown fields are ignored).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LayerVersion {
    pub layer_version_arn: String,
    pub version: i64,
    pub description: Option<String>,
    pub created_date: Option<String>,
    pub compatible_runtimes: Vec<String>,
    pub compatible_architectures: Vec<String>,
    pub license_info: Option<String>,
    pub content: Option<LayerContent>,
}

/// `Content` of a published layer version.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LayerContent {
    pub code_sha256: String,
    pub code_size: u64,
}

/// An entry of ListLayers.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LayerSummary {
    pub layer_name: String,
    pub layer_arn: String,
    pub latest_matching_version: LayerVersion,
}

/// PublishLayerVersion's input besides the name and the zip.
#[derive(Debug, Clone, Default)]
pub struct LayerInput {
    pub description: Option<String>,
    pub compatible_runtimes: Vec<String>,
    pub compatible_architectures: Vec<String>,
    pub license_info: Option<String>,
}

/// A message held for a queue or topic, as `/_nimbus/outbox` returns it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HeldMessage {
    pub message_id: String,
    pub target_arn: String,
    pub body: String,
    pub message_attributes: std::collections::BTreeMap<String, HeldAttribute>,
    pub sent_timestamp: String,
}

/// One attribute of a [`HeldMessage`].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct HeldAttribute {
    pub string_value: String,
}

/// A function's configuration as the API returns it (lenient: unknown fields are ignored).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct FunctionConfiguration {
    pub function_name: String,
    pub function_arn: Option<String>,
    pub runtime: Option<String>,
    pub handler: Option<String>,
    pub role: Option<String>,
    pub code_size: Option<u64>,
    pub code_sha256: Option<String>,
    pub description: Option<String>,
    pub timeout: Option<u32>,
    pub memory_size: Option<u32>,
    pub last_modified: Option<String>,
    pub version: Option<String>,
    pub environment: Option<Environment>,
    pub state: Option<String>,
    pub state_reason: Option<String>,
    pub last_update_status: Option<String>,
    pub last_update_status_reason: Option<String>,
    pub revision_id: Option<String>,
    pub architectures: Option<Vec<String>>,
    pub ephemeral_storage: Option<EphemeralStorage>,
    pub package_type: Option<String>,
}

/// `Environment`: in requests the variables to set, in responses the ones set.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Environment {
    /// Variable names and values.
    #[serde(default)]
    pub variables: BTreeMap<String, String>,
}

/// `EphemeralStorage`: the size of `/tmp`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct EphemeralStorage {
    /// Megabytes.
    pub size: Option<u32>,
}

/// GetFunction's answer.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GetFunctionOutput {
    pub configuration: FunctionConfiguration,
    pub code: Option<CodeLocation>,
    pub tags: Option<BTreeMap<String, String>>,
}

/// Where GetFunction says the code can be downloaded.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CodeLocation {
    pub repository_type: Option<String>,
    pub location: Option<String>,
}

/// `Code` of CreateFunction and the body of UpdateFunctionCode: a zip, base64 in JSON.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ZipCode {
    zip_file: String,
}

impl ZipCode {
    /// Encodes the zip's bytes.
    pub fn new(zip: &[u8]) -> ZipCode {
        ZipCode {
            zip_file: base64::engine::general_purpose::STANDARD.encode(zip),
        }
    }
}

/// Settings of a function: part of CreateFunction's body (`None` takes the server's default),
/// and UpdateFunctionConfiguration's whole body (only the `Some` ones change).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FunctionSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handler: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<Environment>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Layer version ARNs, in order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<String>>,
}

impl FunctionSettings {
    /// Nothing to change.
    pub fn is_empty(&self) -> bool {
        *self == FunctionSettings::default()
    }
}

/// CreateFunction's body.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct CreateFunctionRequest {
    /// The new function's name.
    pub function_name: String,
    /// Its code.
    pub code: ZipCode,
    /// Runtime, Handler and Role are required by the API.
    #[serde(flatten)]
    pub settings: FunctionSettings,
}

/// An alias as the API returns it (`AliasConfiguration`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AliasConfiguration {
    pub alias_arn: Option<String>,
    pub name: String,
    pub function_version: Option<String>,
    pub description: Option<String>,
    pub routing_config: Option<RoutingConfig>,
    pub revision_id: Option<String>,
}

/// `RoutingConfig` of an alias: a second version and its share of invocations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RoutingConfig {
    /// Version → weight (0.0–1.0).
    #[serde(default)]
    pub additional_version_weights: BTreeMap<String, f64>,
}

/// The body of CreateAlias (with `name`) and UpdateAlias (without): only the `Some` members
/// are sent, so an update changes only those.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct AliasInput {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// `Some` with no weights removes the routing on update.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_config: Option<RoutingConfig>,
}

/// `AccountLimit` of GetAccountSettings: what the CLI shows of it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AccountLimit {
    pub concurrent_executions: Option<u32>,
    pub unreserved_concurrent_executions: Option<u32>,
}

/// GetAccountSettings' answer, as far as the CLI reads it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AccountSettings {
    pub account_limit: AccountLimit,
}

/// `Concurrency`: a function's reserved concurrency, absent when it has none.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Concurrency {
    pub reserved_concurrent_executions: Option<u32>,
}

/// An error answer of the API: `ResourceNotFoundException: Function not found: arn:…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// The `x-amzn-ErrorType` code, e.g. `ResourceNotFoundException`, when the server sent one.
    pub code: Option<String>,
    /// The body's `message` / `Message`, or its text.
    pub message: String,
}

impl ApiError {
    /// Whether this says the function (or other resource) does not exist.
    pub fn is_not_found(&self) -> bool {
        self.code.as_deref() == Some("ResourceNotFoundException")
    }

    /// The API error inside an error chain, if that is what it is.
    pub fn find(err: &anyhow::Error) -> Option<&ApiError> {
        err.downcast_ref::<ApiError>()
    }

    fn parse(status: u16, error_type: Option<&str>, body: &[u8]) -> ApiError {
        let json: Option<Value> = serde_json::from_slice(body).ok();
        let field = |name: &str| json.as_ref()?.get(name)?.as_str().map(str::to_owned);
        let code = error_type
            .map(|header| {
                // botocore: drop a `:<url>` suffix, keep what follows a `#` namespace.
                let code = header.split(':').next().unwrap_or(header);
                code.rsplit('#').next().unwrap_or(code).trim().to_owned()
            })
            .or_else(|| field("__type"))
            .filter(|code| !code.is_empty());
        let message = field("message")
            .or_else(|| field("Message"))
            .unwrap_or_else(|| {
                String::from_utf8_lossy(body)
                    .trim()
                    .chars()
                    .take(500)
                    .collect()
            });
        ApiError {
            status,
            code,
            message,
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = reqwest::StatusCode::from_u16(self.status)
            .map_or_else(|_| self.status.to_string(), |s| s.to_string());
        match (&self.code, self.message.is_empty()) {
            (Some(code), false) => write!(f, "{code}: {}", self.message),
            (Some(code), true) => write!(f, "{code} (HTTP {status})"),
            (None, false) => write!(f, "HTTP {status}: {}", self.message),
            (None, true) => write!(f, "HTTP {status}"),
        }
    }
}

impl std::error::Error for ApiError {}

/// What Invoke returned.
#[derive(Debug, Clone, PartialEq)]
pub struct InvokeOutput {
    /// The response body (the function's result or its error JSON).
    pub payload: Vec<u8>,
    /// `Unhandled` when the function failed.
    pub function_error: Option<String>,
    /// The version that ran.
    pub executed_version: Option<String>,
    /// The invocation's log tail, decoded, when it was asked for.
    pub log: Option<String>,
}

/// One log event as FilterLogEvents returns it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// The stream (one per environment).
    pub log_stream_name: String,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// The line.
    pub message: String,
    /// The event's id, increasing.
    pub event_id: String,
}

/// Typed calls of the Lambda REST API on one endpoint.
#[derive(Debug, Clone)]
pub struct LambdaClient {
    http: reqwest::Client,
    base: Url,
    endpoint: String,
}

impl LambdaClient {
    /// A client for `endpoint`, e.g. `http://127.0.0.1:9001` (`127.0.0.1:9001` works too).
    pub fn new(endpoint: &str) -> Result<LambdaClient> {
        let endpoint = endpoint.trim().trim_end_matches('/');
        let with_scheme = if endpoint.contains("://") {
            endpoint.to_owned()
        } else {
            format!("http://{endpoint}")
        };
        let base = Url::parse(&with_scheme)
            .with_context(|| format!("parse the endpoint URL {endpoint:?}"))?;
        match base.scheme() {
            "http" => {}
            "https" => bail!("endpoint {endpoint}: this build of nimbus speaks plain http only"),
            other => bail!("endpoint {endpoint}: unsupported scheme {other:?}, expected http"),
        }
        if base.cannot_be_a_base() || base.query().is_some() {
            bail!("endpoint {endpoint} is not a base URL like http://127.0.0.1:9001");
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("nimbus-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .context("build the HTTP client")?;
        Ok(LambdaClient {
            http,
            base,
            endpoint: with_scheme,
        })
    }

    /// The endpoint this client talks to, as given (with a scheme).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// CreateFunction.
    pub async fn create_function(
        &self,
        input: &CreateFunctionRequest,
    ) -> Result<Answer<FunctionConfiguration>> {
        let url = self.url(&["functions"]);
        self.send_json(self.http.post(url).json(input))
            .await
            .with_context(|| format!("create function {}", input.function_name))
    }

    /// GetFunction. A missing function is an [`ApiError`] for which `is_not_found()` holds.
    pub async fn get_function(&self, name: &str) -> Result<Answer<GetFunctionOutput>> {
        let url = self.url(&["functions", name]);
        self.send_json(self.http.get(url))
            .await
            .with_context(|| format!("get function {name}"))
    }

    /// UpdateFunctionCode with a zip.
    pub async fn update_function_code(
        &self,
        name: &str,
        zip: &[u8],
    ) -> Result<Answer<FunctionConfiguration>> {
        let url = self.url(&["functions", name, "code"]);
        self.send_json(self.http.put(url).json(&ZipCode::new(zip)))
            .await
            .with_context(|| format!("update the code of function {name}"))
    }

    /// UpdateFunctionConfiguration.
    pub async fn update_function_configuration(
        &self,
        name: &str,
        settings: &FunctionSettings,
    ) -> Result<Answer<FunctionConfiguration>> {
        let url = self.url(&["functions", name, "configuration"]);
        self.send_json(self.http.put(url).json(settings))
            .await
            .with_context(|| format!("update the configuration of function {name}"))
    }

    /// ListFunctions, following `NextMarker` through every page; the JSON is all pages'
    /// functions as one `{"Functions": [...]}`.
    pub async fn list_functions(&self) -> Result<Answer<Vec<FunctionConfiguration>>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Page {
            #[serde(default)]
            functions: Vec<FunctionConfiguration>,
            next_marker: Option<String>,
        }
        let (mut typed, mut json) = (Vec::new(), Vec::new());
        let mut marker: Option<String> = None;
        loop {
            // The trailing slash is the path ListFunctions has in AWS's model.
            let mut url = self.url(&["functions", ""]);
            url.query_pairs_mut().append_pair("MaxItems", PAGE_SIZE);
            if let Some(marker) = &marker {
                url.query_pairs_mut().append_pair("Marker", marker);
            }
            let page: Answer<Page> = self
                .send_json(self.http.get(url))
                .await
                .context("list functions")?;
            typed.extend(page.typed.functions);
            if let Some(Value::Array(functions)) = page.json.get("Functions") {
                json.extend(functions.iter().cloned());
            }
            match page.typed.next_marker.filter(|next| !next.is_empty()) {
                Some(next) if marker.as_ref() == Some(&next) => {
                    bail!("list functions: the server returned the same NextMarker twice ({next})")
                }
                Some(next) => marker = Some(next),
                None => {
                    let json = serde_json::json!({ "Functions": json });
                    return Ok(Answer { typed, json });
                }
            }
        }
    }

    /// DeleteFunction (all versions and aliases).
    pub async fn delete_function(&self, name: &str) -> Result<()> {
        let url = self.url(&["functions", name]);
        self.send(self.http.request(Method::DELETE, url))
            .await
            .with_context(|| format!("delete function {name}"))?;
        Ok(())
    }

    /// PublishVersion: a version from `$LATEST` as it is now (or the newest version, if nothing
    /// changed since it was published).
    pub async fn publish_version(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<Answer<FunctionConfiguration>> {
        let url = self.url(&["functions", name, "versions"]);
        let mut body = serde_json::Map::new();
        if let Some(description) = description {
            body.insert("Description".into(), description.into());
        }
        self.send_json(self.http.post(url).json(&body))
            .await
            .with_context(|| format!("publish a version of function {name}"))
    }

    /// ListVersionsByFunction through every page; the JSON is `{"Versions": [...]}`.
    pub async fn list_versions(&self, name: &str) -> Result<Answer<Vec<FunctionConfiguration>>> {
        self.list_all(&["functions", name, "versions"], &[], "Versions")
            .await
            .with_context(|| format!("list the versions of function {name}"))
    }

    /// CreateAlias.
    pub async fn create_alias(
        &self,
        name: &str,
        input: &AliasInput,
    ) -> Result<Answer<AliasConfiguration>> {
        let url = self.url(&["functions", name, "aliases"]);
        self.send_json(self.http.post(url).json(input))
            .await
            .with_context(|| format!("create an alias of function {name}"))
    }

    /// UpdateAlias: changes the members `input` carries.
    pub async fn update_alias(
        &self,
        name: &str,
        alias: &str,
        input: &AliasInput,
    ) -> Result<Answer<AliasConfiguration>> {
        let url = self.url(&["functions", name, "aliases", alias]);
        self.send_json(self.http.put(url).json(input))
            .await
            .with_context(|| format!("update alias {alias} of function {name}"))
    }

    /// GetAlias.
    pub async fn get_alias(&self, name: &str, alias: &str) -> Result<Answer<AliasConfiguration>> {
        let url = self.url(&["functions", name, "aliases", alias]);
        self.send_json(self.http.get(url))
            .await
            .with_context(|| format!("get alias {alias} of function {name}"))
    }

    /// DeleteAlias.
    pub async fn delete_alias(&self, name: &str, alias: &str) -> Result<()> {
        let url = self.url(&["functions", name, "aliases", alias]);
        self.send(self.http.delete(url))
            .await
            .with_context(|| format!("delete alias {alias} of function {name}"))?;
        Ok(())
    }

    /// ListAliases through every page, only those pointing at `version` when given; the JSON
    /// is `{"Aliases": [...]}`.
    pub async fn list_aliases(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Answer<Vec<AliasConfiguration>>> {
        let filter: Vec<(&str, &str)> = version
            .map(|v| ("FunctionVersion", v))
            .into_iter()
            .collect();
        self.list_all(&["functions", name, "aliases"], &filter, "Aliases")
            .await
            .with_context(|| format!("list the aliases of function {name}"))
    }

    /// PutFunctionConcurrency (API version 2017-10-31).
    pub async fn put_function_concurrency(
        &self,
        name: &str,
        reserved: u32,
    ) -> Result<Answer<Concurrency>> {
        let url = self.url_at("2017-10-31", &["functions", name, "concurrency"]);
        let body = serde_json::json!({ "ReservedConcurrentExecutions": reserved });
        self.send_json(self.http.put(url).json(&body))
            .await
            .with_context(|| format!("reserve concurrency for function {name}"))
    }

    /// GetFunctionConcurrency (API version 2019-09-30).
    pub async fn get_function_concurrency(&self, name: &str) -> Result<Answer<Concurrency>> {
        let url = self.url_at("2019-09-30", &["functions", name, "concurrency"]);
        self.send_json(self.http.get(url))
            .await
            .with_context(|| format!("get the reserved concurrency of function {name}"))
    }

    /// DeleteFunctionConcurrency (API version 2017-10-31).
    pub async fn delete_function_concurrency(&self, name: &str) -> Result<()> {
        let url = self.url_at("2017-10-31", &["functions", name, "concurrency"]);
        self.send(self.http.delete(url))
            .await
            .with_context(|| format!("remove the reserved concurrency of function {name}"))?;
        Ok(())
    }

    /// GetAccountSettings (API version 2016-08-19).
    pub async fn get_account_settings(&self) -> Result<Answer<AccountSettings>> {
        let url = self.url_at("2016-08-19", &["account-settings", ""]);
        self.send_json(self.http.get(url))
            .await
            .context("get the account settings")
    }

    /// `<endpoint>/_nimbus/routes`, the gateway's routes (a Nimbus endpoint, not AWS's).
    fn routes_url(&self) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("_nimbus").push("routes");
        }
        url
    }

    /// Add or replace a gateway route.
    pub async fn put_route(&self, route_key: &str, target: &str) -> Result<Answer<HttpRoute>> {
        let body = serde_json::json!({ "RouteKey": route_key, "Target": target });
        self.send_json(self.http.put(self.routes_url()).json(&body))
            .await
            .with_context(|| format!("add route {route_key}"))
    }

    /// Every gateway route; the JSON is `{"Routes": [...]}`.
    pub async fn list_routes(&self) -> Result<Answer<Vec<HttpRoute>>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Routes {
            routes: Vec<HttpRoute>,
        }
        let answer: Answer<Routes> = self
            .send_json(self.http.get(self.routes_url()))
            .await
            .context("list the routes")?;
        Ok(Answer {
            typed: answer.typed.routes,
            json: answer.json,
        })
    }

    /// PublishLayerVersion with a zip.
    pub async fn publish_layer_version(
        &self,
        name: &str,
        zip: &[u8],
        input: &LayerInput,
    ) -> Result<Answer<LayerVersion>> {
        let url = self.url_at(LAYERS_API_VERSION, &["layers", name, "versions"]);
        let mut body = serde_json::json!({
            "Content": {"ZipFile": base64::engine::general_purpose::STANDARD.encode(zip)},
        });
        if let Some(d) = &input.description {
            body["Description"] = d.clone().into();
        }
        if let Some(l) = &input.license_info {
            body["LicenseInfo"] = l.clone().into();
        }
        if !input.compatible_runtimes.is_empty() {
            body["CompatibleRuntimes"] = input.compatible_runtimes.clone().into();
        }
        if !input.compatible_architectures.is_empty() {
            body["CompatibleArchitectures"] = input.compatible_architectures.clone().into();
        }
        self.send_json(self.http.post(url).json(&body))
            .await
            .with_context(|| format!("publish a version of layer {name}"))
    }

    /// GetLayerVersion.
    pub async fn get_layer_version(
        &self,
        name: &str,
        version: u64,
    ) -> Result<Answer<LayerVersion>> {
        let version = version.to_string();
        let url = self.url_at(LAYERS_API_VERSION, &["layers", name, "versions", &version]);
        self.send_json(self.http.get(url))
            .await
            .with_context(|| format!("get version {version} of layer {name}"))
    }

    /// ListLayers through every page; the JSON is `{"Layers": [...]}`.
    pub async fn list_layers(&self) -> Result<Answer<Vec<LayerSummary>>> {
        self.list_all_at(LAYERS_API_VERSION, &["layers"], &[], "Layers")
            .await
            .context("list the layers")
    }

    /// ListLayerVersions through every page; the JSON is `{"LayerVersions": [...]}`.
    pub async fn list_layer_versions(&self, name: &str) -> Result<Answer<Vec<LayerVersion>>> {
        self.list_all_at(
            LAYERS_API_VERSION,
            &["layers", name, "versions"],
            &[],
            "LayerVersions",
        )
        .await
        .with_context(|| format!("list the versions of layer {name}"))
    }

    /// DeleteLayerVersion.
    pub async fn delete_layer_version(&self, name: &str, version: u64) -> Result<()> {
        let version = version.to_string();
        let url = self.url_at(LAYERS_API_VERSION, &["layers", name, "versions", &version]);
        self.send(self.http.delete(url))
            .await
            .with_context(|| format!("delete version {version} of layer {name}"))?;
        Ok(())
    }

    /// Messages held for queues and topics (all, or one target's), oldest first.
    pub async fn held_messages(
        &self,
        target: Option<&str>,
        limit: usize,
    ) -> Result<Answer<Vec<HeldMessage>>> {
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Held {
            messages: Vec<HeldMessage>,
        }
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push("_nimbus").push("outbox");
        }
        url.query_pairs_mut()
            .append_pair("MaxItems", &limit.clamp(1, 1000).to_string());
        if let Some(target) = target {
            url.query_pairs_mut().append_pair("TargetArn", target);
        }
        let answer: Answer<Held> = self
            .send_json(self.http.get(url))
            .await
            .context("list the held messages")?;
        Ok(Answer {
            typed: answer.typed.messages,
            json: answer.json,
        })
    }

    /// Remove a gateway route.
    pub async fn delete_route(&self, route_key: &str) -> Result<()> {
        let mut url = self.routes_url();
        url.query_pairs_mut().append_pair("RouteKey", route_key);
        self.send(self.http.delete(url))
            .await
            .with_context(|| format!("remove route {route_key}"))?;
        Ok(())
    }

    /// Every page of a `Marker`/`NextMarker` list under `segments`, its items gathered from the
    /// member `member`; the JSON is `{member: [all items]}`.
    async fn list_all<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
        member: &str,
    ) -> Result<Answer<Vec<T>>> {
        self.list_all_at(API_VERSION, segments, query, member).await
    }

    /// [`list_all`](Self::list_all) for an operation under another API version.
    async fn list_all_at<T: DeserializeOwned>(
        &self,
        version: &str,
        segments: &[&str],
        query: &[(&str, &str)],
        member: &str,
    ) -> Result<Answer<Vec<T>>> {
        let (mut typed, mut json) = (Vec::new(), Vec::new());
        let mut marker: Option<String> = None;
        loop {
            let mut url = self.url_at(version, segments);
            url.query_pairs_mut()
                .extend_pairs(query)
                .append_pair("MaxItems", PAGE_SIZE);
            if let Some(marker) = &marker {
                url.query_pairs_mut().append_pair("Marker", marker);
            }
            let page: Answer<Value> = self.send_json(self.http.get(url)).await?;
            if let Some(Value::Array(items)) = page.json.get(member) {
                for item in items {
                    typed.push(
                        T::deserialize(item).with_context(|| {
                            format!("read an item of the server's {member} list")
                        })?,
                    );
                    json.push(item.clone());
                }
            }
            let next = page
                .json
                .get("NextMarker")
                .and_then(Value::as_str)
                .filter(|next| !next.is_empty())
                .map(str::to_owned);
            match next {
                Some(next) if marker.as_ref() == Some(&next) => {
                    bail!("the server returned the same NextMarker twice ({next})")
                }
                Some(next) => marker = Some(next),
                None => {
                    let mut all = serde_json::Map::new();
                    all.insert(member.to_owned(), Value::Array(json));
                    return Ok(Answer {
                        typed,
                        json: Value::Object(all),
                    });
                }
            }
        }
    }

    /// Invoke (RequestResponse); `log_tail` asks for the last 4 KB of the log.
    pub async fn invoke(
        &self,
        name: &str,
        payload: Vec<u8>,
        log_tail: bool,
    ) -> Result<InvokeOutput> {
        let url = self.url(&["functions", name, "invocations"]);
        let mut request = self.http.post(url).body(payload);
        if log_tail {
            request = request.header("X-Amz-Log-Type", "Tail");
        }
        let response = self
            .send(request)
            .await
            .with_context(|| format!("invoke function {name}"))?;
        let header = |h: &str| {
            response
                .headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let function_error = header("x-amz-function-error");
        let executed_version = header("x-amz-executed-version");
        let log = header("x-amz-log-result")
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned());
        let payload = response
            .bytes()
            .await
            .map_err(|err| self.transport_error(err))?
            .to_vec();
        Ok(InvokeOutput {
            payload,
            function_error,
            executed_version,
            log,
        })
    }

    /// CloudWatch Logs FilterLogEvents on this server: events of `group` after `next_token`,
    /// at or after `start_ms`. Returns the events and the token to continue from.
    pub async fn filter_log_events(
        &self,
        group: &str,
        start_ms: Option<i64>,
        next_token: Option<&str>,
    ) -> Result<(Vec<LogLine>, Option<String>)> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Page {
            #[serde(default)]
            events: Vec<LogLine>,
            next_token: Option<String>,
        }
        let mut body = serde_json::json!({ "logGroupName": group });
        if let Some(start) = start_ms {
            body["startTime"] = start.into();
        }
        if let Some(token) = next_token {
            body["nextToken"] = token.into();
        }
        let mut url = self.base.clone();
        url.set_path("/");
        let request = self
            .http
            .post(url)
            .header("X-Amz-Target", "Logs_20140328.FilterLogEvents")
            .header("Content-Type", "application/x-amz-json-1.1")
            .body(body.to_string());
        let page: Answer<Page> = self
            .send_json(request)
            .await
            .with_context(|| format!("read the log group {group}"))?;
        Ok((page.typed.events, page.typed.next_token))
    }

    /// `<endpoint>/2015-03-31/<segments…>`, each segment percent-encoded.
    fn url(&self, segments: &[&str]) -> Url {
        self.url_at(API_VERSION, segments)
    }

    /// `<endpoint>/<api version>/<segments…>`: a few operations live under other versions.
    fn url_at(&self, version: &str, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().push(version).extend(segments);
        }
        url
    }

    async fn send_json<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<Answer<T>> {
        let response = self.send(request).await?;
        let body = response
            .bytes()
            .await
            .map_err(|err| self.transport_error(err))?;
        let shown = || {
            let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            format!("read the server's answer {text:?}")
        };
        let json: Value = serde_json::from_slice(&body).with_context(shown)?;
        let typed = T::deserialize(&json).with_context(shown)?;
        Ok(Answer { typed, json })
    }

    async fn send(&self, request: RequestBuilder) -> Result<Response> {
        let response = request
            .send()
            .await
            .map_err(|err| self.transport_error(err))?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let error_type = response
            .headers()
            .get("x-amzn-ErrorType")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let body = response.bytes().await.unwrap_or_default();
        Err(ApiError::parse(status.as_u16(), error_type.as_deref(), &body).into())
    }

    fn transport_error(&self, err: reqwest::Error) -> anyhow::Error {
        let endpoint = &self.endpoint;
        if err.is_connect() {
            let mut cause: &dyn std::error::Error = &err;
            while let Some(source) = cause.source() {
                cause = source;
            }
            anyhow!(
                "no Nimbus server answered at {endpoint} ({cause}); start one with `nimbus server`, \
                 or point --endpoint (NIMBUS_ENDPOINT) at a running one"
            )
        } else if err.is_timeout() {
            anyhow!(
                "the Nimbus server at {endpoint} did not answer within {} s",
                REQUEST_TIMEOUT.as_secs()
            )
        } else {
            anyhow::Error::new(err).context(format!("talk to the Nimbus server at {endpoint}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_percent_encoded_under_the_api_version() -> Result<()> {
        let client = LambdaClient::new("127.0.0.1:9001/")?;
        assert_eq!(
            client.url(&["functions", "a b/c?d", "code"]).as_str(),
            "http://127.0.0.1:9001/2015-03-31/functions/a%20b%2Fc%3Fd/code"
        );
        assert_eq!(
            client.url(&["functions", ""]).as_str(),
            "http://127.0.0.1:9001/2015-03-31/functions/"
        );
        let prefixed = LambdaClient::new("http://host:1/prefix")?;
        assert_eq!(
            prefixed.url(&["functions"]).as_str(),
            "http://host:1/prefix/2015-03-31/functions"
        );
        assert!(LambdaClient::new("https://host").is_err());
        Ok(())
    }

    #[test]
    fn api_errors_read_like_aws_errors() {
        let body = br#"{"Type":"User","Message":"Function not found: arn:aws:lambda:us-east-1:000000000000:function:f"}"#;
        let err = ApiError::parse(404, Some("ResourceNotFoundException:http://internal"), body);
        assert!(err.is_not_found());
        assert_eq!(
            err.to_string(),
            "ResourceNotFoundException: Function not found: arn:aws:lambda:us-east-1:000000000000:function:f"
        );
        let err = ApiError::parse(
            400,
            Some("aws#InvalidParameterValueException"),
            br#"{"message":"bad"}"#,
        );
        assert_eq!(err.to_string(), "InvalidParameterValueException: bad");
        let err = ApiError::parse(502, None, b"upstream down\n");
        assert_eq!(err.to_string(), "HTTP 502 Bad Gateway: upstream down");
        let err = ApiError::parse(500, None, b"");
        assert_eq!(err.to_string(), "HTTP 500 Internal Server Error");
    }

    #[test]
    fn api_error_survives_context() {
        let err = anyhow::Error::from(ApiError::parse(
            404,
            Some("ResourceNotFoundException"),
            b"{}",
        ))
        .context("get function f");
        assert!(ApiError::find(&err).is_some_and(ApiError::is_not_found));
    }

    #[test]
    fn configuration_parses_leniently() -> Result<()> {
        let json = serde_json::json!({
            "FunctionName": "f", "MemorySize": 256, "CodeSha256": "abc=", "Timeout": null,
            "Environment": {"Variables": {"AA": "1"}}, "TracingConfig": {"Mode": "PassThrough"}
        });
        let config = FunctionConfiguration::deserialize(&json)?;
        assert_eq!(config.memory_size, Some(256));
        assert_eq!(config.code_sha256.as_deref(), Some("abc="));
        assert_eq!(config.timeout, None);
        assert_eq!(config.environment.map(|env| env.variables.len()), Some(1));
        Ok(())
    }

    #[test]
    fn create_body_has_the_wire_shape() -> Result<()> {
        let request = CreateFunctionRequest {
            function_name: "f".to_owned(),
            code: ZipCode::new(b"PK"),
            settings: FunctionSettings {
                runtime: Some("python3.12".to_owned()),
                memory_size: Some(256),
                ..FunctionSettings::default()
            },
        };
        let expected = serde_json::json!({
            "FunctionName": "f", "Code": {"ZipFile": "UEs="}, "Runtime": "python3.12", "MemorySize": 256
        });
        assert_eq!(serde_json::to_value(&request)?, expected);
        Ok(())
    }
}
